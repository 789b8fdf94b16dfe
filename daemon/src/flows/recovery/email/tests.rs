//! The confirmation link and the drill's schedule, with a [`ManualClock`]: days pass in
//! microseconds. Mail goes to the simulated board's outbox directory.

use std::time::Duration;

use super::*;
use crate::flows::profile::{set_email, ProfileForm};
use crate::flows::testkit::{ip, secret, TestApp, ADMIN_PW};
use crate::model::ADMIN;

const DAY: Duration = Duration::from_secs(86_400);

fn outbox(app: &App) -> std::path::PathBuf {
    app.config().storage.state_dir.join("outbox")
}

/// (subject, token) of every mail in the outbox, oldest first.
fn mails(app: &App) -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(outbox(app))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort_by_key(|p| {
        let name = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let mut parts = name.split('-').map(|n| n.parse::<u128>().unwrap_or(0));
        (parts.next(), parts.next())
    });
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("eml");
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default()
                .to_string();
            let token = text
                .split("confirm-email?token=")
                .nth(1)
                .and_then(|t| t.split_whitespace().next())
                .unwrap_or_default()
                .to_string();
            (subject, token)
        })
        .collect()
}

async fn bound(tag: &str) -> TestApp {
    let t = TestApp::ready(tag).await;
    let form = ProfileForm {
        email: Some("owner@pbx.test".into()),
        current_password: secret(ADMIN_PW),
    };
    set_email(&t.app, ip("192.0.2.9"), ADMIN, form)
        .await
        .expect("bound");
    t
}

async fn readiness(app: &App) -> super::super::Readiness {
    super::super::readiness(app).await.expect("readiness")
}

#[tokio::test]
async fn the_link_proves_the_address_once_and_a_newer_link_replaces_it() {
    let t = bound("email-confirm").await;
    let app = &t.app;
    assert_eq!(
        readiness(app).await.email_confirmed_at,
        None,
        "bound, not proven"
    );
    assert!(send_check(app, ADMIN, Why::Bound).await.expect("sent"));
    assert!(send_check(app, ADMIN, Why::Bound).await.expect("sent"));
    let m = mails(app);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].0, "Confirm your recovery email");
    assert!(
        matches!(confirm(app, &m[0].1).await, Err(Error::TokenInvalid)),
        "replaced"
    );
    let at = app.clock().unix();
    assert_eq!(
        confirm(app, &m[1].1).await.expect("confirmed"),
        Confirmed::Now
    );
    assert_eq!(readiness(app).await.email_confirmed_at, Some(at));
    // A second click (or a mail client's preview) says so, a day later too, and
    // changes nothing.
    t.clock.advance(Duration::from_secs(86_400));
    assert_eq!(
        confirm(app, &m[1].1).await.expect("said"),
        Confirmed::Already { at },
        "used"
    );
    assert_eq!(readiness(app).await.email_confirmed_at, Some(at));
    // A link lapses after 7 days.
    send_check(app, ADMIN, Why::Bound).await.expect("sent");
    t.clock.advance(Duration::from_secs(CHECK_TTL));
    let late = mails(app).pop().expect("mail").1;
    assert!(matches!(
        confirm(app, &late).await,
        Err(Error::TokenInvalid)
    ));
}

#[tokio::test]
async fn the_drill_runs_on_schedule_reports_a_stale_address_once_and_retries_with_backoff() {
    let t = bound("email-drill").await;
    let app = &t.app;
    // First look: scheduled 30 days out, nothing sent.
    let (ran, wait) = tick(app, false).await.expect("tick");
    assert!(ran.is_none());
    assert_eq!(wait, DAY * 30);
    assert!(mails(app).is_empty());
    t.clock.advance(DAY * 30 - Duration::from_secs(1));
    assert!(tick(app, false).await.expect("tick").0.is_none(), "not yet");
    t.clock.advance(Duration::from_secs(1));
    assert!(matches!(
        tick(app, false).await.expect("tick").0,
        Some(Ok(()))
    ));
    assert_eq!(
        mails(app).last().map(|m| m.0.as_str()),
        Some("Recovery check")
    );
    assert!(
        !readiness(app).await.email_stale,
        "30 days unconfirmed: not yet stale"
    );

    // Never confirmed, 37 days after binding: stale, audited once.
    t.clock.advance(DAY * 7 + Duration::from_secs(1));
    tick(app, false).await.expect("tick");
    tick(app, false).await.expect("tick");
    assert!(readiness(app).await.email_stale);
    assert_eq!(t.audit_count("recovery_email_stale").await, 1);
    // The drill's link lapsed with the 7 days; the dashboard's "send a check now" mails
    // a fresh one.
    let old = mails(app).pop().expect("drill mail").1;
    assert!(matches!(confirm(app, &old).await, Err(Error::TokenInvalid)));
    assert!(matches!(
        tick(app, true).await.expect("tick").0,
        Some(Ok(()))
    ));
    let token = mails(app).pop().expect("drill mail").1;
    confirm(app, &token)
        .await
        .expect("the drill's link confirms");
    assert!(!readiness(app).await.email_stale);

    // The mail cannot be sent: retried after 300 s, then 600 s, and shown meanwhile.
    std::fs::remove_dir_all(outbox(app)).expect("outbox");
    std::fs::write(outbox(app), b"not a directory").expect("block the outbox");
    t.clock.advance(DAY * 30);
    assert!(matches!(
        tick(app, false).await.expect("tick").0,
        Some(Err(_))
    ));
    let d = drill_state(app).await.expect("drill");
    assert_eq!((d.failures, d.next_due), (1, app.clock().unix() + 300));
    assert!(
        d.last_error
            .as_ref()
            .is_some_and(|e| e.message.contains("outbox")),
        "{d:?}"
    );
    assert!(readiness(app).await.drill.last_error.is_some(), "shown");
    t.clock.advance(Duration::from_secs(299));
    assert!(tick(app, false).await.expect("tick").0.is_none());
    t.clock.advance(Duration::from_secs(1));
    assert!(matches!(
        tick(app, false).await.expect("tick").0,
        Some(Err(_))
    ));
    let d = drill_state(app).await.expect("drill");
    assert_eq!((d.failures, d.next_due), (2, app.clock().unix() + 600));
    std::fs::remove_file(outbox(app)).expect("unblock");
    t.clock.advance(Duration::from_secs(600));
    assert!(matches!(
        tick(app, false).await.expect("tick").0,
        Some(Ok(()))
    ));
    let d = drill_state(app).await.expect("drill");
    assert_eq!((d.failures, d.last_error), (0, None));
    assert_eq!(d.next_due, app.clock().unix() + 30 * 86_400);
    assert_eq!(d.last_sent, Some(app.clock().unix()));
}

#[test]
fn retries_double_up_to_six_hours() {
    let t = TestApp::new("email-backoff");
    let got: Vec<u64> = [1, 2, 3, 7, 8, 30]
        .iter()
        .map(|&n| retry_after(&t.app, n))
        .collect();
    assert_eq!(got, [300, 600, 1200, 19_200, 21_600, 21_600]);
}

#[tokio::test]
async fn an_address_bound_before_confirmation_existed_counts_from_the_first_schedule() {
    let t = TestApp::ready("email-legacy").await;
    let app = &t.app;
    let data = app.data().expect("data");
    data.update_account(ADMIN, |a| a.email = Some("old@pbx.test".into()))
        .await
        .expect("a bound address without a binding time");
    tick(app, false).await.expect("first look");
    let admin = data.account(ADMIN).await.expect("read").expect("admin");
    assert_eq!(admin.email_bound_at, Some(app.clock().unix()));
    std::fs::create_dir_all(outbox(app)).expect("outbox");
    t.clock.advance(DAY * 37 + Duration::from_secs(1));
    tick(app, false).await.expect("tick");
    assert!(readiness(app).await.email_stale);
}
