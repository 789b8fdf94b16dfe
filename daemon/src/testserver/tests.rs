//! API behaviour over time, through the real server in-process, the clock moved by the
//! test: no sleeping.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::Served;
use crate::flows::testkit::ADMIN_PW;

fn login_body(user: &str, password: &str) -> String {
    serde_json::json!({ "username": user, "password": password }).to_string()
}

#[tokio::test]
async fn an_address_block_ends_when_its_time_has_passed() {
    let s = Served::start("inproc-lockout").await;
    let guesser = Ipv4Addr::new(127, 0, 0, 21);
    let wrong = login_body("admin", "not the password");
    for i in 0..4 {
        let r = s
            .request_from(guesser, "POST", "/api/v1/login", &[], &wrong)
            .await;
        assert_eq!(r.status, 401, "attempt {i}: {}", r.body);
    }
    // The fifth failure blocks the address; the right password from it waits too.
    let r = s
        .request_from(guesser, "POST", "/api/v1/login", &[], &wrong)
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    let right = login_body("admin", ADMIN_PW);
    let r = s
        .request_from(guesser, "POST", "/api/v1/login", &[], &right)
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (429, Some("locked")),
        "{}",
        r.body
    );
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=600).contains(&wait), "{wait}");
    // Another address is not blocked meanwhile.
    assert!(s.sign_in("admin", ADMIN_PW).await.is_ok());
    s.advance(Duration::from_secs(wait));
    let r = s
        .request_from(guesser, "POST", "/api/v1/login", &[], &right)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn a_session_ends_after_30_idle_minutes_and_lives_while_used() {
    let s = Served::start("inproc-session").await;
    let session = s.sign_in("admin", ADMIN_PW).await.expect("signed in");
    for _ in 0..3 {
        s.advance(Duration::from_secs(29 * 60));
        let r = s.request("GET", "/api/v1/session", &session, "").await;
        assert_eq!(r.status, 200, "used within 30 minutes: {}", r.body);
    }
    // Background polling does not keep it alive.
    s.advance(Duration::from_secs(29 * 60));
    let mut polled = session.clone();
    polled.push("X-PBX-Poll: 1".into());
    assert_eq!(
        s.request("GET", "/api/v1/session", &polled, "")
            .await
            .status,
        200
    );
    s.advance(Duration::from_secs(2 * 60));
    let r = s.request("GET", "/api/v1/session", &session, "").await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("unauthenticated"))
    );
}

/// Issue 24 (low; failed on the old code: one audit event per failure, so a flood
/// rolled the 1000-event ring over): failed sign-ins are aggregated in RAM, one event
/// for the first of an address in a window and one summary with the count after it.
/// (Moved here from the e2e suite, where it waited a 10 s window.)
#[tokio::test]
async fn failed_sign_ins_are_one_event_per_address_and_window_with_a_count() {
    let s = Served::start("inproc-failures").await;
    let admin = s.sign_in("admin", ADMIN_PW).await.expect("signed in");
    let guesser = Ipv4Addr::new(127, 0, 0, 123);
    for user in ["admin", "root", "admin", " =1+1"] {
        let body = login_body(user, "guess-guess-guess");
        let r = s
            .request_from(guesser, "POST", "/api/v1/login", &[], &body)
            .await;
        assert_eq!(r.status, 401);
    }
    let failed = |audit: serde_json::Value| -> Vec<serde_json::Value> {
        let list = audit.as_array().cloned().unwrap_or_default();
        list.into_iter()
            .filter(|e| e["event"] == "login_failed" && e["ip"] == "127.0.0.123")
            .collect()
    };
    let now = failed(s.request("GET", "/api/v1/audit", &admin, "").await.json());
    assert_eq!(now.len(), 1, "only the first, at once: {now:?}");
    assert_eq!(now[0]["username"], "admin");
    // The window passes; the worker's next pass writes the summary.
    s.advance(Duration::from_secs(600));
    crate::flows::login::write_failure_summaries(&s.t.app);
    let events = failed(s.request("GET", "/api/v1/audit", &admin, "").await.json());
    let summary = events
        .iter()
        .find(|e| e["detail"].is_string())
        .expect("summary");
    let detail = summary["detail"].as_str().unwrap_or_default();
    assert_eq!(
        detail,
        "3 more failed sign-ins from this address within 10 min (usernames tried: admin, root,  =1+1)"
    );
    // The CSV neutralises a formula after leading spaces too.
    let body = login_body(" =1+1", "guess-guess-guess");
    let other = Ipv4Addr::new(127, 0, 0, 124);
    assert_eq!(
        s.request_from(other, "POST", "/api/v1/login", &[], &body)
            .await
            .status,
        401
    );
    let csv = s
        .request("GET", "/api/v1/audit.csv?event=login_failed", &admin, "")
        .await
        .body;
    assert!(csv.contains(",login_failed,' =1+1,127.0.0.124,"), "{csv}");
}
