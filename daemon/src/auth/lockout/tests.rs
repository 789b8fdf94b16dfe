//! Unit tests of `lockout.rs`.

use super::*;
use crate::clock::ManualClock;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn setup() -> (Arc<ManualClock>, Limiter) {
    let clock = Arc::new(ManualClock::default());
    (clock.clone(), Limiter::new(clock, Policy::default()))
}

fn fail(l: &Limiter, a: IpAddr, user: &str) -> Failure {
    l.begin(a, user, None).expect("not blocked").failed()
}

#[test]
fn five_failures_in_ten_minutes_block_the_address_for_ten_minutes() {
    let (clock, l) = setup();
    let a = ip("192.0.2.7");
    for left in [4, 3, 2, 1] {
        assert_eq!(fail(&l, a, "admin"), Failure::AttemptsLeft(left));
        clock.advance(Duration::from_secs(60));
    }
    assert_eq!(
        fail(&l, a, "admin"),
        Failure::Locked(Duration::from_secs(600))
    );
    assert_eq!(
        l.begin(a, "admin", None).err(),
        Some(Duration::from_secs(600))
    );
    clock.advance(Duration::from_secs(599));
    assert_eq!(
        l.begin(a, "admin", None).err(),
        Some(Duration::from_secs(1))
    );
    assert!(
        l.begin(ip("192.0.2.8"), "admin", None).is_ok(),
        "other addresses unaffected"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        fail(&l, a, "admin"),
        Failure::AttemptsLeft(4),
        "fresh count"
    );
}

/// What the server sheds between requests: a blocked address for exactly its block,
/// nobody else, before, during or after it (the lock-free answer while nothing is
/// blocked must not hide a block).
#[test]
fn blocked_for_tells_a_blocked_address_for_exactly_its_block() {
    let (clock, l) = setup();
    let (a, b) = (ip("192.0.2.7"), ip("192.0.2.8"));
    clock.advance(Duration::from_secs(5));
    assert_eq!(l.blocked_for(a), None, "nothing blocked yet");
    for _ in 0..5 {
        fail(&l, a, "admin");
    }
    assert_eq!(l.blocked_for(a), Some(Duration::from_secs(600)));
    assert_eq!(l.blocked_for(b), None, "other addresses unaffected");
    clock.advance(Duration::from_millis(599_999));
    assert_eq!(l.blocked_for(a), Some(Duration::from_millis(1)));
    clock.advance(Duration::from_millis(1));
    assert_eq!(l.blocked_for(a), None, "the block is over");
    for _ in 0..5 {
        fail(&l, b, "admin");
    }
    assert_eq!(
        l.blocked_for(b),
        Some(Duration::from_secs(600)),
        "a later block"
    );
    assert_eq!(l.blocked_for(a), None);
}

#[test]
fn failures_older_than_the_window_do_not_count() {
    let (clock, l) = setup();
    let a = ip("192.0.2.7");
    for _ in 0..4 {
        fail(&l, a, "admin");
    }
    clock.advance(Duration::from_secs(600));
    assert_eq!(fail(&l, a, "admin"), Failure::AttemptsLeft(4));
}

#[test]
fn success_forgives_only_that_usernames_failures() {
    let (_c, l) = setup();
    let a = ip("192.0.2.7");
    for _ in 0..2 {
        fail(&l, a, "admin");
    }
    fail(&l, a, "1001");
    // A valid extension login does not forgive the guesses at admin.
    l.begin(a, "1001", None).expect("slot").succeeded();
    assert_eq!(fail(&l, a, "admin"), Failure::AttemptsLeft(2));
    l.begin(a, "admin", None).expect("slot").succeeded();
    assert_eq!(fail(&l, a, "admin"), Failure::AttemptsLeft(4));
}

#[test]
fn attempts_in_progress_count_before_their_hash() {
    let (_c, l) = setup();
    let a = ip("192.0.2.9");
    let running: Vec<_> = (0..5)
        .map(|_| l.begin(a, "admin", None).expect("five slots"))
        .collect();
    assert_eq!(
        l.begin(a, "admin", None).err(),
        Some(IN_PROGRESS_WAIT),
        "the sixth waits"
    );
    // One gives up undecided (busy hasher): its slot comes back uncounted.
    let mut running = running.into_iter();
    drop(running.next());
    let again = l.begin(a, "admin", None).expect("slot returned");
    let outcomes: Vec<_> = running.chain([again]).map(Attempt::failed).collect();
    assert_eq!(outcomes[4], Failure::Locked(Duration::from_secs(600)));
}

#[test]
fn ipv6_addresses_in_one_64_share_a_counter() {
    let (_c, l) = setup();
    for i in 1..=5u8 {
        fail(&l, ip(&format!("2001:db8::{i}")), "admin");
    }
    assert!(l.begin(ip("2001:db8::ffff"), "admin", None).is_err());
    assert!(l.begin(ip("2001:db8:0:1::1"), "admin", None).is_ok());
}

#[test]
fn account_slows_down_after_20_failures_capped_at_30s_never_locked() {
    let (clock, l) = setup();
    for i in 0..20u32 {
        // Spread over many addresses, as a distributed attack would be.
        fail(
            &l,
            ip(&format!("10.0.{}.{}", i / 200, i % 200 + 1)),
            "admin",
        );
    }
    assert_eq!(l.account_delay("admin"), Duration::ZERO);
    fail(&l, ip("10.1.0.1"), "admin");
    assert_eq!(l.account_delay("admin"), Duration::from_secs(1));
    fail(&l, ip("10.1.0.2"), "admin");
    assert_eq!(l.account_delay("admin"), Duration::from_secs(2));
    for i in 0..100u32 {
        fail(
            &l,
            ip(&format!("10.2.{}.{}", i / 200, i % 200 + 1)),
            "admin",
        );
    }
    assert_eq!(l.account_delay("admin"), Duration::from_secs(30), "capped");
    clock.advance(Duration::from_secs(3600));
    assert_eq!(l.account_delay("other"), Duration::ZERO);
    // The real admin from a clean address still gets in and resets the streak.
    l.begin(ip("192.0.2.1"), "admin", None)
        .expect("clean address")
        .succeeded();
    assert_eq!(l.account_delay("admin"), Duration::ZERO);
}

/// Three failures on admin's slow-down at once: the time until each was answered.
async fn three_turns(l: &Arc<Limiter>) -> (Vec<Duration>, Duration) {
    let start = tokio::time::Instant::now();
    let waits: Vec<_> = (0..3)
        .map(|_| {
            let l = Arc::clone(l);
            tokio::spawn(async move {
                l.wait_turn("admin").await;
                start.elapsed()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for w in waits {
        outcomes.push(w.await.expect("wait"));
    }
    (outcomes, start.elapsed())
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_slowdown_is_served_one_attempt_after_another() {
    let (_c, l) = setup();
    let l = Arc::new(l);
    for i in 0..21u32 {
        fail(&l, ip(&format!("10.0.0.{}", i + 1)), "admin");
    }
    assert_eq!(l.account_delay("admin"), Duration::from_secs(1));
    let (outcomes, took) = three_turns(&l).await;
    let secs: Vec<u64> = outcomes.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, vec![1, 2, 3], "answered one after another");
    assert_eq!(took, Duration::from_secs(3), "three delays in turn");
    assert!(l.gates.lock().expect("gates").is_empty(), "gate removed");
    // At 30 s each, the third in the queue would wait 90 s: it is answered at 60 s.
    for i in 0..40u32 {
        fail(&l, ip(&format!("10.0.1.{}", i + 1)), "admin");
    }
    assert_eq!(l.account_delay("admin"), Duration::from_secs(30));
    let (_, took) = three_turns(&l).await;
    assert_eq!(
        took, MAX_TURN_WAIT,
        "two served in turn, the third cut at the cap"
    );
}

#[test]
fn a_device_cookie_skips_the_address_block_and_has_its_own_five() {
    let (_c, l) = setup();
    let a = ip("192.0.2.20");
    for _ in 0..5 {
        fail(&l, a, "admin");
    }
    assert!(l.begin(a, "admin", None).is_err(), "address blocked");
    let id = [7u8; 16];
    let t = l
        .begin(a, "admin", Some(id))
        .expect("device cookie exempts");
    assert!(t.by_device());
    assert_eq!(t.failed(), Failure::AttemptsLeft(4));
    for left in [3, 2, 1, 0] {
        assert_eq!(
            l.begin(a, "admin", Some(id)).expect("cookie").failed(),
            Failure::AttemptsLeft(left)
        );
    }
    assert!(
        l.begin(a, "admin", Some(id)).is_err(),
        "voided: the address block applies again"
    );
    // A success with a cookie clears that cookie's count.
    let other = [8u8; 16];
    l.begin(a, "admin", Some(other)).expect("c").failed();
    l.begin(a, "admin", Some(other)).expect("c").succeeded();
    for _ in 0..4 {
        l.begin(a, "admin", Some(other)).expect("c").failed();
    }
    assert!(l.begin(a, "admin", Some(other)).is_ok());
}

#[test]
fn long_usernames_cost_a_key_not_their_bytes() {
    let (_c, l) = setup();
    let long = "x".repeat(16 * 1024);
    fail(&l, ip("192.0.2.30"), &long);
    assert_eq!(l.lock().accounts.len(), 1);
}

#[test]
fn a_full_table_never_forgets_an_active_block() {
    let (clock, l) = setup();
    let first = ip("10.0.0.1");
    for _ in 0..5 {
        fail(&l, first, "admin");
    }
    for i in 1..MAX_ADDRESSES as u32 {
        let a = IpAddr::V4((0x0B00_0000 + i).into());
        for _ in 0..5 {
            fail(&l, a, "admin");
        }
    }
    clock.advance(Duration::from_secs(60));
    assert_eq!(l.lock().addrs.len(), MAX_ADDRESSES);
    // A new address cannot push out a block: it waits instead.
    assert!(l.begin(ip("192.0.2.99"), "admin", None).is_err());
    assert!(l.begin(first, "admin", None).is_err(), "still blocked");
    // Once the blocks have run out, new addresses are tracked again.
    clock.advance(Duration::from_secs(600));
    assert!(l.begin(ip("192.0.2.99"), "admin", None).is_ok());
}

fn factor_fail(l: &Limiter, a: IpAddr, user: &str) -> FactorFailure {
    l.begin_factor(a, user, false).expect("not locked").failed()
}

#[test]
fn five_wrong_codes_lock_the_accounts_second_factor_from_everywhere_and_the_lock_grows() {
    let (clock, l) = setup();
    // Each code from its own address: the account's count is what locks.
    for (n, left) in [4, 3, 2, 1].into_iter().enumerate() {
        let a = ip(&format!("192.0.2.{}", 10 + n));
        assert_eq!(
            factor_fail(&l, a, "admin"),
            FactorFailure::AttemptsLeft(left)
        );
    }
    assert_eq!(
        factor_fail(&l, ip("192.0.2.20"), "admin"),
        FactorFailure::AccountLocked(FACTOR_LOCK)
    );
    assert_eq!(
        l.begin_factor(ip("203.0.113.1"), "admin", false).err(),
        Some(FactorRefused::Account(FACTOR_LOCK)),
        "a new address too"
    );
    assert!(
        l.begin_factor(ip("203.0.113.1"), "other", false).is_ok(),
        "another account is not touched"
    );
    // A recovery code (80 bits) is still checked: the owner's sheet stays a way in.
    assert!(l.begin_factor(ip("203.0.113.1"), "admin", true).is_ok());
    // After the lock, five more wrong codes lock it twice as long.
    clock.advance(FACTOR_LOCK);
    for n in 0..4 {
        factor_fail(&l, ip(&format!("198.51.100.{n}")), "admin");
    }
    assert_eq!(
        factor_fail(&l, ip("198.51.100.9"), "admin"),
        FactorFailure::AccountLocked(FACTOR_LOCK * 2)
    );
    // A right code (after the lock) forgives the count and the growth.
    clock.advance(FACTOR_LOCK * 2);
    l.begin_factor(ip("198.51.100.9"), "admin", false)
        .expect("lock over")
        .succeeded();
    for _ in 0..4 {
        factor_fail(&l, ip("192.0.2.99"), "admin");
    }
    clock.advance(Duration::from_secs(601));
    assert_eq!(
        factor_fail(&l, ip("192.0.2.98"), "admin"),
        FactorFailure::AccountLocked(FACTOR_LOCK)
    );
}

#[test]
fn a_right_password_does_not_forgive_wrong_codes() {
    let (_clock, l) = setup();
    let a = ip("192.0.2.7");
    for round in 0..2u32 {
        l.begin(a, "admin", None).expect("free").succeeded();
        for i in 0..2u32 {
            let left = 4 - (round * 2 + i);
            assert_eq!(
                factor_fail(&l, a, "admin"),
                FactorFailure::AttemptsLeft(left)
            );
        }
    }
    l.begin(a, "admin", None).expect("free").succeeded();
    assert_eq!(
        factor_fail(&l, a, "admin"),
        FactorFailure::AccountLocked(FACTOR_LOCK)
    );
}

#[test]
fn wrong_codes_from_one_address_block_it_whichever_accounts_they_were_for() {
    let (_clock, l) = setup();
    let a = ip("2001:db8:1:2::5");
    for (n, left) in [4, 3, 2, 1].into_iter().enumerate() {
        assert_eq!(
            factor_fail(&l, a, &format!("10{n}")),
            FactorFailure::AttemptsLeft(left)
        );
    }
    assert_eq!(
        factor_fail(&l, ip("2001:db8:1:2::6"), "104"),
        FactorFailure::AddressBlocked(Duration::from_secs(600)),
        "the same /64"
    );
    assert_eq!(
        l.begin_factor(a, "105", true).err(),
        Some(FactorRefused::Address(Duration::from_secs(600)))
    );
    assert!(l.begin_factor(ip("2001:db8:9::1"), "105", false).is_ok());
}

#[test]
fn parallel_codes_get_five_checks_not_one_each() {
    let (_clock, l) = setup();
    let started: Vec<_> = (0..20)
        .map(|n| l.begin_factor(ip(&format!("192.0.2.{n}")), "admin", false))
        .collect();
    assert_eq!(started.iter().filter(|a| a.is_ok()).count(), 5);
    drop(started);
    // Undecided attempts (a client gone) count for nothing.
    for _ in 0..4 {
        factor_fail(&l, ip("192.0.2.50"), "admin");
    }
}

/// Issue 24 item 3: a full table of device cookies never forgets one with failures (it
/// would come back clean) and gives a new cookie no device treatment instead.
#[test]
fn a_full_device_table_never_revives_a_voided_cookie() {
    let (_c, l) = setup();
    let a = ip("192.0.2.30");
    let voided = [1u8; 16];
    for _ in 0..DEVICE_FAILURES {
        l.begin(a, "admin", Some(voided)).expect("cookie").failed();
    }
    for n in 0..(MAX_DEVICES as u32 - 1) {
        let mut id = [2u8; 16];
        id[..4].copy_from_slice(&n.to_be_bytes());
        let t = l.begin(a, "admin", Some(id)).expect("cookie");
        assert!(t.by_device());
        assert_eq!(t.failed(), Failure::AttemptsLeft(DEVICE_FAILURES - 1));
    }
    // Full of cookies with failures: a new one is served by the address rules.
    let t = l
        .begin(ip("192.0.2.31"), "admin", Some([3u8; 16]))
        .expect("address");
    assert!(!t.by_device(), "no device treatment when the table is full");
    drop(t);
    let t = l
        .begin(ip("192.0.2.32"), "admin", Some(voided))
        .expect("address");
    assert!(!t.by_device(), "the voided cookie stays void");
}

/// A directory compares names without case: guesses at `Tech1`, `TECH1` and `tech1`
/// count for one account (the slow-down is not escaped by changing case).
#[test]
fn an_accounts_counters_ignore_letter_case() {
    let (_clock, l) = setup();
    for i in 0..21u32 {
        let name = ["tech1", "Tech1", "TECH1"][i as usize % 3];
        fail(&l, ip(&format!("10.3.0.{}", i + 1)), name);
    }
    assert_eq!(l.account_delay("tech1"), Duration::from_secs(1));
    assert_eq!(l.account_delay("TeCh1"), Duration::from_secs(1));
}
