//! Sessions: the API view, idle and absolute expiry, polling, caps, listing.

use super::*;
use crate::clock::ManualClock;

fn setup() -> (Arc<ManualClock>, Sessions) {
    let clock = Arc::new(ManualClock::default());
    let s = Sessions::new(
        clock.clone(),
        Duration::from_secs(30 * 60),
        Duration::from_secs(12 * 3600),
    );
    (clock, s)
}

#[test]
fn a_lookup_gives_the_session_back_and_debug_hides_the_token() {
    let (_clock, s) = setup();
    let n = s.create(
        Grant::of("1001", Role::User).changing_password(true),
        Default::default(),
    );
    assert_eq!(
        s.get_key(&SessionKey::of(&n.id), true),
        Some(n.session.clone())
    );
    let debug = format!("{:?}", n.session);
    assert!(!debug.contains(&*n.session.csrf_token), "{debug}");
}

#[test]
fn idle_expiry_after_30_minutes_without_activity() {
    let (clock, s) = setup();
    let n = s.create(Grant::of("admin", Role::Admin), Default::default());
    clock.advance(Duration::from_secs(29 * 60));
    assert!(s.get(&n.id, true).is_some(), "29 min idle: still valid");
    clock.advance(Duration::from_secs(29 * 60));
    assert!(
        s.get(&n.id, true).is_some(),
        "activity reset the idle timer"
    );
    clock.advance(Duration::from_secs(30 * 60));
    assert!(s.get(&n.id, true).is_none(), "30 min idle: expired");
}

#[test]
fn background_polling_does_not_refresh_idle_time() {
    let (clock, s) = setup();
    let n = s.create(Grant::of("admin", Role::Admin), Default::default());
    for _ in 0..5 {
        clock.advance(Duration::from_secs(5 * 60));
        assert!(s.get(&n.id, false).is_some());
    }
    clock.advance(Duration::from_secs(5 * 60));
    assert!(
        s.get(&n.id, false).is_none(),
        "30 min of polling only: expired"
    );
}

#[test]
fn absolute_expiry_after_12_hours_despite_activity() {
    let (clock, s) = setup();
    let n = s.create(Grant::of("admin", Role::Admin), Default::default());
    for _ in 0..(12 * 4 - 1) {
        clock.advance(Duration::from_secs(15 * 60));
        assert!(s.get(&n.id, true).is_some());
    }
    clock.advance(Duration::from_secs(15 * 60));
    assert!(s.get(&n.id, true).is_none());
}

#[test]
fn remove_user_ends_only_that_accounts_sessions() {
    let (_c, s) = setup();
    let a1 = s.create(Grant::of("admin", Role::Admin), Default::default());
    let a2 = s.create(Grant::of("admin", Role::Admin), Default::default());
    let u = s.create(Grant::of("1001", Role::User), Default::default());
    assert_eq!(s.remove_user("admin"), 2);
    assert!(s.get(&a1.id, true).is_none());
    assert!(s.get(&a2.id, true).is_none());
    assert!(s.get(&u.id, true).is_some());
}

#[test]
fn per_account_cap_drops_the_oldest() {
    let (clock, s) = setup();
    let first = s.create(Grant::of("admin", Role::Admin), Default::default());
    for _ in 0..MAX_PER_ACCOUNT {
        clock.advance(Duration::from_secs(1));
        s.create(Grant::of("admin", Role::Admin), Default::default());
    }
    assert!(s.get(&first.id, true).is_none());
    assert_eq!(s.count(), MAX_PER_ACCOUNT);
}

#[test]
fn sessions_are_listed_with_their_origin_and_revoked_by_id() {
    let (clock, s) = setup();
    let origin = |ip: &str, agent: &str| Origin {
        ip: Some(ip.parse().expect("ip")),
        agent: agent.into(),
        started_at: 0,
        via: String::new(),
    };
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let a = s.create(
        Grant::of("admin", Role::Admin),
        origin("192.0.2.1", firefox),
    );
    clock.advance(Duration::from_secs(60));
    let b = s.create(
        Grant::of("admin", Role::Admin),
        origin("192.0.2.2", "curl/8.5.0"),
    );
    let u = s.create(Grant::of("1001", Role::User), origin("192.0.2.3", "x"));
    let me = SessionKey::of(&a.id);
    let mine = s.list(Some("admin"), &me);
    assert_eq!(mine.len(), 2);
    assert_eq!(
        (mine[0].browser.as_str(), mine[0].current),
        ("curl", false),
        "newest first"
    );
    assert_eq!(
        (mine[1].browser.as_str(), mine[1].current),
        ("Firefox on Linux", true)
    );
    assert_eq!(mine[1].ip, Some("192.0.2.1".parse().expect("ip")));
    assert_eq!(mine[0].last_seen_at, mine[0].started_at);
    assert_eq!(s.list(None, &me).len(), 3, "an admin sees every account's");
    // Someone else's id is not the caller's to end.
    let theirs = SessionKey::of(&u.id).id();
    assert!(!s.remove_id(&theirs, Some("admin")));
    assert!(s.remove_id(&SessionKey::of(&b.id).id(), Some("admin")));
    assert!(s.get(&b.id, false).is_none());
    let c = s.create(Grant::of("admin", Role::Admin), Default::default());
    assert_eq!(s.remove_others("admin", &me), 1);
    assert!(s.get(&c.id, false).is_none() && s.get(&a.id, false).is_some());
    assert!(s.get(&u.id, false).is_some());
}

#[test]
fn browsers_get_short_names() {
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    assert_eq!(browser_name(chrome), "Chrome on Windows");
    let edge =
        "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0";
    assert_eq!(browser_name(edge), "Edge on Windows");
    let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1";
    assert_eq!(browser_name(safari), "Safari on iPhone");
    assert_eq!(browser_name(""), "unknown");
}
