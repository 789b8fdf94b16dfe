//! The attacker's first moves (issue 9), each against the real binary: lockout bypass
//! and parallel guessing, device cookies, stalled bodies, SMTP password replay, DNS
//! rebinding, reset tokens after a password change, file modes, long usernames.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use pbx_e2e::smtp::{self, SmtpServer};
use pbx_e2e::{poll_until, Client, Daemon, Opts, TempDir};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::change_initial;
use crate::recovery::{admin_ready, daemon_with, settings, ADMIN_MAIL, ADMIN_PW};

pub const EXT_PW: &str = "desk phone by the window";

fn daemon(dir: &TempDir, config: &str) -> Daemon {
    let opts = Opts {
        config: Some(config.to_string()),
        env: vec![],
    };
    Daemon::start_opts(&dir.path().join("state"), &opts)
}

/// The admin (password [`ADMIN_PW`]) creates extension 1001 and returns its client.
pub async fn with_extension(d: &Daemon) -> Client {
    let mut admin = change_initial(d, ADMIN_PW).await;
    assert_eq!(admin.login("admin", ADMIN_PW).await.status, 200);
    add_extension(&mut admin).await;
    admin
}

/// The signed-in admin creates extension 1001 (password [`EXT_PW`]).
pub async fn add_extension(admin: &mut Client) {
    let r = admin
        .post_json(
            "/api/v1/accounts",
            &json!({"username": "1001", "role": "user", "password": EXT_PW}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Password checks (argon2 verifications) the daemon has run, from `ctl status`.
fn password_checks(d: &Daemon) -> u64 {
    let (code, s) = d.ctl(&["status"]);
    assert_eq!(code, 0, "{s}");
    s["password_checks"]
        .as_u64()
        .unwrap_or_else(|| panic!("ctl status has no password_checks: {s}"))
}

#[tokio::test]
async fn a_valid_extension_login_does_not_reset_the_admin_guess_count() {
    let dir = TempDir::new("lockout-bypass");
    let d = daemon(&dir, "");
    with_extension(&d).await;
    let mut attacker = d.client_from("127.0.3.1");
    for round in 0..2 {
        for left in [4, 3, 2, 1] {
            if round == 1 && left < 4 {
                break;
            }
            let r = attacker.login("admin", "guess-guess-guess").await;
            if round == 0 {
                assert_eq!(r.status, 401, "{}", r.text());
                assert_eq!(r.json()["attempts_left"], left);
            } else {
                // The fifth admin guess, after a valid extension login in between.
                assert_eq!(r.status, 429, "{}", r.text());
                assert_eq!(r.json()["error"], "locked");
            }
        }
        if round == 0 {
            let mut ext = d.client_from("127.0.3.1");
            assert_eq!(ext.login("1001", EXT_PW).await.status, 200);
        }
    }
    // Its own failures are what a success clears: 1001's mistypes from its own desk.
    let mut desk = d.client_from("127.0.3.2");
    for left in [4, 3] {
        assert_eq!(
            desk.login("1001", "mistyped it").await.json()["attempts_left"],
            left
        );
    }
    assert_eq!(desk.login("1001", EXT_PW).await.status, 200);
    assert_eq!(
        desk.login("1001", "mistyped it").await.json()["attempts_left"],
        4
    );
}

#[tokio::test]
async fn two_hundred_parallel_guesses_from_one_address_cost_five_hashes() {
    let dir = TempDir::new("parallel-guesses");
    // Room for every connection: the limit under test is the lockout, not the pool.
    let d = daemon(
        &dir,
        "[server]\nmax_connections = 1024\nmax_connections_per_address = 512\n[policy]\nhash_queue = 1024\n",
    );
    let before = password_checks(&d);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let mut c = d.client_from("127.0.4.1");
        tasks.push(tokio::spawn(async move {
            c.login("admin", "parallel-guess-1234").await.status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("request task"));
    }
    let count = |s: u16| statuses.iter().filter(|&&x| x == s).count();
    let hashes = password_checks(&d) - before;
    println!(
        "200 parallel guesses: {} x 401, {} x 429, {hashes} hashes",
        count(401),
        count(429)
    );
    assert!(hashes <= 5, "{hashes} hashes for one address");
    assert_eq!(count(401), 4, "{statuses:?}");
    assert_eq!(count(429), 196, "{statuses:?}");
}

fn device_cookie_attrs(r: &pbx_e2e::Resp) -> Vec<String> {
    let c = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("pbx_device="))
        .unwrap_or_else(|| panic!("no device cookie: {:?}", r.set_cookies()));
    c.split("; ").map(str::to_string).collect()
}

#[tokio::test]
async fn a_known_browser_gets_past_the_address_block_and_the_account_slowdown() {
    let dir = TempDir::new("device-cookie");
    // Account slow-down after 1 failure, 4 s per further failure: quick to reach.
    let d = daemon(
        &dir,
        "[policy]\naccount_slowdown_after = 1\naccount_slowdown_step_ms = 4000\n",
    );
    change_initial(&d, ADMIN_PW).await;
    let owner_addr = "127.0.5.1";
    let mut browser = d.client_from(owner_addr);
    let r = browser.login("admin", ADMIN_PW).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let attrs = device_cookie_attrs(&r);
    assert!(attrs.iter().any(|a| a == "HttpOnly"), "{attrs:?}");
    assert!(attrs.iter().any(|a| a == "SameSite=Strict"), "{attrs:?}");
    assert!(attrs.iter().any(|a| a == "Path=/"), "{attrs:?}");
    let max_age: u64 = attrs
        .iter()
        .find_map(|a| a.strip_prefix("Max-Age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("long-lived: {attrs:?}"));
    assert!(max_age >= 30 * 86_400, "{max_age}");
    assert!(browser.device_cookie.is_some());

    // Someone at the same address blocks it, and drives the account slow-down up.
    let mut attacker = d.client_from(owner_addr);
    for _ in 0..5 {
        attacker.login("admin", "guess-guess-guess").await;
    }
    assert_eq!(attacker.login("admin", ADMIN_PW).await.status, 429);
    let mut other = d.client_from("127.0.5.2");
    other.login("admin", "guess-guess-guess").await;

    // The owner's browser still gets in at once.
    let start = Instant::now();
    let r = browser.login("admin", ADMIN_PW).await;
    let took = start.elapsed();
    assert_eq!(
        r.status,
        200,
        "device cookie exempts from the block: {}",
        r.text()
    );
    assert!(took < Duration::from_secs(2), "no slow-down: {took:?}");
    // Without it, from a clean address, a wrong password's answer is slowed down (the
    // owner's sign-in ended the streak: the second new failure is the first slowed).
    let start = Instant::now();
    for source in ["127.0.5.4", "127.0.5.5"] {
        assert_eq!(
            d.client_from(source)
                .login("admin", "guess-guess-guess")
                .await
                .status,
            401
        );
    }
    assert!(
        start.elapsed() >= Duration::from_millis(3500),
        "{:?}",
        start.elapsed()
    );

    // The cookie is bound to its username: it does not exempt guesses at 1001.
    let mut stolen = d.client_from(owner_addr);
    stolen.device_cookie = browser.device_cookie.clone();
    assert_eq!(stolen.login("1001", "guess-guess-guess").await.status, 429);

    // Five failures with the cookie void it; then the address block applies again.
    for _ in 0..5 {
        let r = stolen.login("admin", "guess-guess-guess").await;
        assert!(matches!(r.status, 401 | 429), "{}", r.text());
    }
    let r = stolen.login("admin", ADMIN_PW).await;
    assert_eq!(r.status, 429, "voided cookie: {}", r.text());
}

/// Issue 24 item 7 (failed on the old code: the right password waited its turn behind
/// the attackers' slowed guesses, 10 s here, and 429 at the default cap): the account
/// slow-down never refuses or delays a correct password. With the streak at the cap and
/// two guesses queued, the owner from a fresh address (new browser, no cookie) is in
/// within one hash time and a second; the guesses are still answered slowly.
#[tokio::test]
async fn the_right_password_is_never_held_back_by_the_account_slowdown() {
    let dir = TempDir::new("slowdown-owner");
    let d = daemon(
        &dir,
        "[policy]\naccount_slowdown_after = 1\naccount_slowdown_step_ms = 5000\n\
         account_slowdown_max_ms = 5000\n",
    );
    change_initial(&d, ADMIN_PW).await;
    // One hash, timed: a first wrong password is not slowed.
    let start = Instant::now();
    let r = d
        .client_from("127.0.8.1")
        .login("admin", "guess-guess-guess")
        .await;
    let hash_time = start.elapsed();
    assert_eq!(r.status, 401);
    // The second failure reaches the cap: from here on every guess waits 5 s in turn.
    let r = d
        .client_from("127.0.8.2")
        .login("admin", "guess-guess-guess")
        .await;
    assert_eq!(r.status, 401);
    let guesses: Vec<_> = ["127.0.8.3", "127.0.8.4"]
        .into_iter()
        .map(|src| {
            let mut c = d.client_from(src);
            tokio::spawn(async move {
                let start = Instant::now();
                let r = c.login("admin", "guess-guess-guess").await;
                (r.status, start.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let r = d.client_from("127.0.8.9").login("admin", ADMIN_PW).await;
    let took = start.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        took <= hash_time + Duration::from_secs(1),
        "the owner waited {took:?} (one hash: {hash_time:?})"
    );
    for g in guesses {
        let (status, waited) = g.await.expect("guess");
        assert_eq!(status, 401);
        assert!(waited >= Duration::from_millis(4500), "slowed: {waited:?}");
    }
}

/// Blocks `addr` for admin with five wrong passwords (no device cookie).
async fn block(d: &Daemon, addr: &str) {
    let mut c = d.client_from(addr);
    for _ in 0..5 {
        c.login("admin", "guess-guess-guess").await;
    }
    assert_eq!(
        c.login("admin", ADMIN_PW).await.status,
        429,
        "{addr} blocked"
    );
}

/// A sign-in from the blocked `addr` carrying `cookie`: 200/401 if the cookie still
/// exempts it (a known browser), 429 if not.
async fn with_cookie(d: &Daemon, addr: &str, cookie: &str, password: &str) -> u16 {
    let mut c = d.client_from(addr);
    c.device_cookie = Some(cookie.to_string());
    c.login("admin", password).await.status
}

/// Issue 24 item 3 (failed on the old code: three cookies taken before the password
/// change still gave guesses from a blocked address): a password change voids every
/// device cookie of the account; a known browser keeps its cookie (none is minted per
/// sign-in) and at most 8 live cookies are kept per account.
#[tokio::test]
async fn device_cookies_die_with_the_password_and_are_capped_per_account() {
    let dir = TempDir::new("device-revoke");
    let d = daemon(&dir, "");
    change_initial(&d, ADMIN_PW).await;
    let blocked = "127.0.9.9";
    let mut taken = Vec::new();
    for n in 0..3 {
        let mut b = d.client_from(&format!("127.0.9.{}", 10 + n));
        assert_eq!(b.login("admin", ADMIN_PW).await.status, 200);
        taken.push(b.device_cookie.clone().expect("a device cookie"));
    }
    block(&d, blocked).await;
    assert_eq!(
        with_cookie(&d, blocked, &taken[0], "guess-guess-guess").await,
        401,
        "known"
    );
    // A known browser signing in again keeps its cookie: no new one.
    let mut own = d.client_from("127.0.9.20");
    own.device_cookie = Some(taken[1].clone());
    let r = own.login("admin", ADMIN_PW).await;
    assert_eq!(r.status, 200);
    assert!(
        !r.set_cookies().iter().any(|c| c.starts_with("pbx_device=")),
        "{:?}",
        r.set_cookies()
    );
    // The owner changes the password: every cookie from before is void.
    let new_pw = "a fresh passphrase after the theft";
    let r = own
        .post_json(
            "/api/v1/password",
            &json!({"current_password": ADMIN_PW, "new_password": new_pw}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    for c in &taken {
        assert_eq!(
            with_cookie(&d, blocked, c, "guess-guess-guess").await,
            429,
            "void"
        );
    }
    // Nine new browsers: the first one's cookie is retired, the ninth's counts.
    let mut fresh = Vec::new();
    for n in 0..9 {
        let mut b = d.client_from(&format!("127.0.10.{}", 10 + n));
        assert_eq!(b.login("admin", new_pw).await.status, 200);
        fresh.push(b.device_cookie.clone().expect("a device cookie"));
    }
    let blocked = "127.0.10.99";
    let mut c = d.client_from(blocked);
    for _ in 0..5 {
        c.login("admin", "guess-guess-guess").await;
    }
    assert_eq!(
        with_cookie(&d, blocked, &fresh[0], new_pw).await,
        429,
        "retired"
    );
    assert_eq!(
        with_cookie(&d, blocked, &fresh[8], new_pw).await,
        200,
        "live"
    );
}

/// Issue 24 item 3 (failed on the old code: a restart emptied the table and the voided
/// cookie exempted its holder again): five failures void a cookie for good.
#[tokio::test]
async fn a_voided_device_cookie_stays_void_after_a_restart() {
    let dir = TempDir::new("device-void");
    let state = dir.path().join("state");
    let d = daemon(&dir, "");
    change_initial(&d, ADMIN_PW).await;
    let mut b = d.client_from("127.0.11.1");
    assert_eq!(b.login("admin", ADMIN_PW).await.status, 200);
    let cookie = b.device_cookie.clone().expect("cookie");
    block(&d, "127.0.11.9").await;
    for _ in 0..5 {
        assert_eq!(
            with_cookie(&d, "127.0.11.9", &cookie, "guess-guess-guess").await,
            401
        );
    }
    assert_eq!(
        with_cookie(&d, "127.0.11.9", &cookie, ADMIN_PW).await,
        429,
        "voided"
    );
    assert_eq!(d.stop(), Some(0));
    let d = Daemon::start(&state);
    block(&d, "127.0.11.9").await;
    assert_eq!(
        with_cookie(&d, "127.0.11.9", &cookie, ADMIN_PW).await,
        429,
        "still void"
    );
}

#[tokio::test]
async fn stalled_bodies_are_cut_at_the_deadline_and_never_lock_out_the_lan() {
    let dir = TempDir::new("stalled-bodies");
    let d = daemon(&dir, "[server]\nbody_timeout_s = 3\n");
    change_initial(&d, ADMIN_PW).await;
    let started = Instant::now();
    let mut conns = Vec::new();
    for i in 0..300 {
        // Five addresses, 60 connections each (below the 64 per address).
        let source = format!("127.0.6.{}", 1 + i % 5);
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(format!("{source}:0").parse().expect("source"))
            .expect("bind");
        conns.push(tokio::spawn({
            let d_http = d.http;
            async move {
                let mut s = sock.connect(d_http).await.expect("connect");
                let sent = Instant::now();
                let _ = s
                    .write_all(
                        b"POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 16000\r\n\r\n{\"user",
                    )
                    .await;
                let mut answer = Vec::new();
                let read = tokio::time::timeout(
                    Duration::from_secs(30),
                    s.read_to_end(&mut answer),
                )
                .await;
                (sent.elapsed(), read.is_ok(), String::from_utf8_lossy(&answer).into_owned())
            }
        }));
    }
    // Meanwhile a computer at a sixth address signs in, again and again.
    let mut worst = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(5) {
        let t = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            d.client_from("127.0.6.9").login("admin", ADMIN_PW),
        )
        .await
        .expect("the sixth address is answered");
        assert_eq!(r.status, 200, "{}", r.text());
        worst = worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("sign-in from a sixth address during 300 stalled bodies: worst {worst:?}");
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    let mut answered_408 = 0;
    for c in conns {
        let (took, closed, answer) = c.await.expect("stalled connection task");
        assert!(closed, "stalled connection still open after 30 s");
        assert!(took <= Duration::from_secs(3 + 2), "closed after {took:?}");
        if answer.starts_with("HTTP/1.1 408") {
            answered_408 += 1;
        }
    }
    // Connections beyond the five addresses' part of the pool (three quarters) were
    // closed at once without an answer; the others got their 408 at the deadline.
    println!("{answered_408} of 300 stalled connections answered 408");
    assert!(answered_408 >= 150, "{answered_408} answered 408");
}

/// A second SMTP server (another port): it must never see the stored password.
#[tokio::test]
async fn the_stored_smtp_password_goes_only_to_the_server_it_was_saved_for() {
    let smtp = SmtpServer::start();
    let other = SmtpServer::start();
    let dir = TempDir::new("smtp-replay");
    let d = daemon_with(&dir, &smtp, None);
    let mut c = admin_ready(&d).await;
    let saved = settings("127.0.0.1", smtp.plain, "none", smtp::PASSWORD, 5);
    let r = c.send_json("PUT", "/api/v1/settings/smtp", &saved).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let without_password = |port: u16, security: &str, user: &str| {
        let mut s = settings("127.0.0.1", port, security, "", 5);
        s.as_object_mut().expect("object").remove("password");
        s["username"] = user.into();
        s
    };
    // Another port, another user name or another security: the password must be typed.
    for s in [
        without_password(other.plain, "none", smtp::USER),
        without_password(smtp.plain, "none", "someone-else"),
        without_password(smtp.starttls, "starttls", smtp::USER),
    ] {
        let r = c.post_json("/api/v1/settings/smtp/test", &s).await;
        assert_eq!(r.status, 400, "test {s}: {}", r.text());
        assert_eq!(r.json()["error"], "password_required");
        let r = c.send_json("PUT", "/api/v1/settings/smtp", &s).await;
        assert_eq!(r.status, 400, "save {s}: {}", r.text());
        assert_eq!(r.json()["error"], "password_required");
    }
    assert!(
        other.auth_attempts().is_empty(),
        "{:?}",
        other.auth_attempts()
    );
    // The same server, user and security: the stored password is reused.
    let r = c
        .post_json(
            "/api/v1/settings/smtp/test",
            &without_password(smtp.plain, "none", smtp::USER),
        )
        .await;
    assert_eq!(r.json()["ok"], true, "{}", r.text());
    assert_eq!(
        smtp.auth_attempts(),
        vec![(smtp::USER.to_string(), smtp::PASSWORD.to_string())]
    );
    drop(d);
}

/// Issue 24 item 6 (failed on the old code: a session alone saved settings that sent
/// mail elsewhere): where recovery mail goes changes only with the admin's password;
/// the change is audited and told through the old settings.
#[tokio::test]
async fn where_recovery_mail_goes_changes_only_with_the_password_and_is_told_the_old_way() {
    let smtp = SmtpServer::start();
    let relay = SmtpServer::start();
    let dir = TempDir::new("smtp-reroute");
    let d = daemon_with(&dir, &smtp, None);
    let mut c = admin_ready(&d).await;
    let mut first = settings("127.0.0.1", smtp.plain, "none", smtp::PASSWORD, 5);
    first
        .as_object_mut()
        .expect("object")
        .remove("current_password");
    let r = c.send_json("PUT", "/api/v1/settings/smtp", &first).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("current_password_required")),
        "{}",
        r.text()
    );
    first["current_password"] = "not the password".into();
    let r = c.send_json("PUT", "/api/v1/settings/smtp", &first).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("invalid_credentials"))
    );
    first["current_password"] = ADMIN_PW.into();
    let r = c.send_json("PUT", "/api/v1/settings/smtp", &first).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // The same route, another timeout: no password needed.
    let mut same = first.clone();
    same.as_object_mut()
        .expect("object")
        .remove("current_password");
    same["timeout_s"] = 7.into();
    let r = c.send_json("PUT", "/api/v1/settings/smtp", &same).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Another server (a stolen session's relay): refused without the password ...
    let mut other = settings("127.0.0.1", relay.plain, "none", "relay secret", 5);
    other["from"] = "pbx@relay.test".into();
    other
        .as_object_mut()
        .expect("object")
        .remove("current_password");
    let r = c.send_json("PUT", "/api/v1/settings/smtp", &other).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("current_password_required"))
    );
    // ... saved with it, audited, and the old server carries the notice.
    other["current_password"] = ADMIN_PW.into();
    let r = c.send_json("PUT", "/api/v1/settings/smtp", &other).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let audit = c.get("/api/v1/audit").await.json();
    let events = crate::audit_field(&audit, "event");
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "smtp_settings_changed")
            .count(),
        2,
        "the first save and the move: {events:?}"
    );
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    let notice = mails
        .iter()
        .find(|m| m.subject() == "Email settings changed")
        .unwrap_or_else(|| {
            panic!(
                "{:?}",
                mails.iter().map(|m| m.subject()).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        notice.header("X-Envelope-Rcpt").as_deref(),
        Some(ADMIN_MAIL)
    );
    assert!(
        notice
            .body()
            .contains(&format!("127.0.0.1:{}", relay.plain)),
        "{}",
        notice.body()
    );
    assert!(
        relay.mails().is_empty(),
        "nothing through the new relay yet"
    );
}

#[tokio::test]
async fn the_test_mail_does_not_echo_what_other_ports_say() {
    let dir = TempDir::new("smtp-banner");
    let d = daemon(&dir, "");
    let mut c = admin_ready(&d).await;
    // An internal service that greets with something private.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s
                .write_all(b"554 INTERNAL-SECRET-BANNER db=prod-7 version 9.1\r\n")
                .await;
            let mut buf = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
        }
    });
    let r = c
        .post_json(
            "/api/v1/settings/smtp/test",
            &settings("127.0.0.1", port, "none", "any-password", 3),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["ok"], false, "{j}");
    assert_eq!(j["stage"], "connect", "{j}");
    assert!(
        !j["message"]
            .as_str()
            .unwrap_or_default()
            .contains("INTERNAL-SECRET"),
        "{j}"
    );
    assert!(
        d.log_text().contains("INTERNAL-SECRET-BANNER"),
        "the log keeps it"
    );
}

/// The tokens of every `Find Password` mail in the outbox (other mails, such as the
/// notices of a change, go there too).
fn outbox_tokens(dir: &TempDir) -> Vec<String> {
    std::fs::read_dir(dir.path().join("state/outbox"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|m| m.contains("Subject: Find Password"))
        .filter_map(|m| {
            let joined = m.replace("=\r\n", "");
            let at = joined.find("token=")? + "token=".len();
            joined.get(at..at + 43).map(str::to_string)
        })
        .collect()
}

async fn forgot_and_wait(d: &Daemon, dir: &TempDir, username: &str, email: &str) -> String {
    let before = outbox_tokens(dir);
    let r = d
        .client_from("127.0.7.1")
        .post_json(
            "/api/v1/forgot",
            &json!({"username": username, "email": email}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    poll_until(
        Duration::from_secs(10),
        "no Find Password mail in the outbox",
        || outbox_tokens(dir).into_iter().find(|t| !before.contains(t)),
    )
    .await
}

async fn reset_with(d: &Daemon, token: &str) -> u16 {
    d.client()
        .post_json(
            "/api/v1/reset",
            &json!({"token": token, "new_password": "a brand new passphrase"}),
        )
        .await
        .status
}

#[tokio::test]
async fn reset_tokens_die_with_a_password_change_an_email_change_or_the_account() {
    let dir = TempDir::new("token-hygiene");
    let d = daemon(&dir, "");
    let mut admin = admin_ready(&d).await;

    let token = forgot_and_wait(&d, &dir, "admin", ADMIN_MAIL).await;
    let r = admin
        .post_json(
            "/api/v1/password",
            &json!({"current_password": ADMIN_PW, "new_password": "second admin passphrase"}),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        reset_with(&d, &token).await,
        410,
        "password change kills the token"
    );

    let mut admin = d.client();
    assert_eq!(
        admin.login("admin", "second admin passphrase").await.status,
        200
    );
    let token = forgot_and_wait(&d, &dir, "admin", ADMIN_MAIL).await;
    let r = admin
        .send_json(
            "PUT",
            "/api/v1/profile",
            &json!({"email": "new-admin@pbx.test", "current_password": "second admin passphrase"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        reset_with(&d, &token).await,
        410,
        "email change kills the token"
    );

    let r = admin
        .post_json(
            "/api/v1/accounts",
            &json!({"username": "1002", "role": "user", "password": EXT_PW, "email": "ext@pbx.test"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    crate::recovery::confirm_email_of(&d, "ext@pbx.test").await;
    let token = forgot_and_wait(&d, &dir, "1002", "ext@pbx.test").await;
    let r = admin
        .send_json("DELETE", "/api/v1/accounts/1002", &json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        reset_with(&d, &token).await,
        410,
        "deleted account, dead token"
    );
}

/// Issue 24 (low; failed on the old code: the second request voided the owner's first
/// link, and an unconfirmed address got links): reset links go only to a confirmed
/// address; a new request does not void the owner's outstanding link (up to three live
/// links, each single-use), and any password change revokes them all.
#[tokio::test]
async fn reset_links_go_only_to_a_confirmed_address_and_three_stay_live() {
    let dir = TempDir::new("links-live");
    let d = daemon(&dir, "");
    crate::recovery::admin_bound(&d).await;
    let r = d
        .client_from("127.0.7.2")
        .post_json(
            "/api/v1/forgot",
            &json!({"username": "admin", "email": ADMIN_MAIL}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        outbox_tokens(&dir).is_empty(),
        "no link to an unconfirmed address"
    );
    crate::recovery::confirm_email(&d).await;
    let first = forgot_and_wait(&d, &dir, "admin", ADMIN_MAIL).await;
    let second = forgot_and_wait(&d, &dir, "admin", ADMIN_MAIL).await;
    let third = forgot_and_wait(&d, &dir, "admin", ADMIN_MAIL).await;
    assert_eq!(
        reset_with(&d, &first).await,
        204,
        "the first link still works"
    );
    assert_eq!(reset_with(&d, &first).await, 410, "once");
    assert_eq!(
        reset_with(&d, &second).await,
        410,
        "the password change revoked it"
    );
    assert_eq!(reset_with(&d, &third).await, 410, "and this one");
}

#[tokio::test]
async fn changing_the_recovery_email_needs_the_password_and_tells_the_old_address() {
    let dir = TempDir::new("email-change");
    let d = daemon(&dir, "");
    let mut admin = admin_ready(&d).await;
    let r = admin
        .send_json(
            "PUT",
            "/api/v1/profile",
            &json!({"email": "thief@evil.test"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["error"],
        "invalid_json",
        "current_password missing"
    );
    let r = admin
        .send_json(
            "PUT",
            "/api/v1/profile",
            &json!({"email": "thief@evil.test", "current_password": "not the password"}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        admin.get("/api/v1/profile").await.json()["email"],
        ADMIN_MAIL
    );
    let r = admin
        .send_json(
            "PUT",
            "/api/v1/profile",
            &json!({"email": "admin2@pbx.test", "current_password": ADMIN_PW}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let notice = d
        .outbox_mail("no notice to the old address", |m| {
            m.contains(&format!("To: {ADMIN_MAIL}"))
                && m.contains("Subject: Recovery email changed")
        })
        .await;
    assert!(
        notice.contains("Subject: Recovery email changed"),
        "{notice}"
    );
    assert!(notice.contains("admin2@pbx.test"), "{notice}");
}

#[tokio::test]
async fn requests_for_foreign_host_names_get_421() {
    let dir = TempDir::new("rebinding");
    let d = daemon(&dir, "[server]\nallowed_hosts = [\"pbx.office.lan\"]\n");
    let mut c = d.client();
    let evil = [("host", "evil.example")];
    let json_evil = [
        ("host", "evil.example"),
        ("content-type", "application/json"),
    ];
    let body = || Some(br#"{"token":"x","new_password":"y"}"#.to_vec());
    for (method, path, headers, b) in [
        ("GET", "/reset?token=abc", &evil[..], None),
        ("POST", "/api/v1/reset", &json_evil[..], body()),
        (
            "POST",
            "/api/v1/login",
            &json_evil[..],
            Some(br#"{"username":"admin","password":"x"}"#.to_vec()),
        ),
        ("GET", "/", &evil[..], None),
    ] {
        let r = c.send(method, path, headers, b).await;
        assert_eq!(r.status, 421, "{method} {path}: {}", r.text());
    }
    let r = c
        .send(
            "POST",
            "/api/v1/login",
            &json_evil,
            Some(br#"{"username":"admin","password":"x"}"#.to_vec()),
        )
        .await;
    assert_eq!(r.json()["error"], "misdirected");
    // Exempt and allowed names.
    assert_eq!(c.send("GET", "/healthz", &evil, None).await.status, 200);
    let port = d.http.port().to_string();
    for host in [
        "localhost".to_string(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "pbx.office.lan".into(),
        format!("PBX.office.lan:{port}"),
    ] {
        let r = c.send("GET", "/login", &[("host", &host)], None).await;
        assert_eq!(r.status, 200, "Host: {host}");
    }
}

/// Every directory 0700 and every file 0600 under `dir` (the test's own logs aside).
pub fn assert_private(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("daemon-") && name.ends_with(".log") {
            continue;
        }
        let meta = std::fs::symlink_metadata(&p).expect("stat");
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            assert_eq!(mode, 0o700, "{}", p.display());
            assert_private(&p);
        } else if meta.file_type().is_file() {
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }
}

#[tokio::test]
async fn secrets_are_private_after_first_start_and_after_a_factory_reset() {
    let dir = TempDir::new("modes");
    let mut d = daemon(&dir, "");
    let state = dir.path().join("state");
    assert_private(&state);
    assert_eq!(
        std::fs::metadata(&state)
            .expect("state")
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    admin_ready(&d).await;
    assert_private(&state);
    let (code, _) = d.ctl(&["factory-reset", "--yes"]);
    assert_eq!(code, 0);
    d.wait_for_start();
    assert_eq!(d.client().get("/healthz").await.status, 200);
    assert_private(&state);
}

#[tokio::test]
async fn long_usernames_are_invalid_and_never_stored_raw() {
    let dir = TempDir::new("long-names");
    let d = daemon(&dir, "");
    let long = "A".repeat(4000);
    let r = d
        .client_from("127.0.8.1")
        .login(&long, "whatever-password")
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_credentials");
    let mut admin = change_initial(&d, ADMIN_PW).await;
    assert_eq!(admin.login("admin", ADMIN_PW).await.status, 200);
    let audit = admin.get("/api/v1/audit").await;
    assert_eq!(audit.status, 200);
    let events: Vec<Value> = audit.json().as_array().expect("list").clone();
    let failed = events
        .iter()
        .find(|e| e["event"] == "login_failed")
        .unwrap_or_else(|| panic!("{events:?}"));
    let name = failed["username"].as_str().expect("username");
    assert!(name.len() <= 80, "stored {} bytes", name.len());
    assert!(
        !audit.text().contains(&"A".repeat(100)),
        "raw name in the audit"
    );
}

#[tokio::test]
async fn a_wrong_password_on_the_web_factory_reset_counts_for_the_lockout() {
    let dir = TempDir::new("reset-guess");
    let d = daemon(&dir, "");
    change_initial(&d, ADMIN_PW).await;
    let mut c = d.client_from("127.0.9.1");
    assert_eq!(c.login("admin", ADMIN_PW).await.status, 200);
    for _ in 0..5 {
        let r = c
            .post_json(
                "/api/v1/factory-reset",
                &json!({"password": "guess-guess-guess", "confirm": "ERASE"}),
            )
            .await;
        assert!(matches!(r.status, 401 | 429), "{}", r.text());
    }
    let r = d.client_from("127.0.9.1").login("admin", ADMIN_PW).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(!dir.path().join("state/reset-pending").exists());
}

#[tokio::test]
async fn while_a_factory_reset_runs_the_api_answers_503() {
    let dir = TempDir::new("reset-503");
    let mut d = daemon(&dir, "");
    change_initial(&d, ADMIN_PW).await;
    // Enough voicemail that the erase takes a moment.
    let vm = dir.path().join("state/userfiles/archive");
    std::fs::create_dir_all(&vm).expect("mkdir");
    for i in 0..30_000 {
        std::fs::write(vm.join(format!("{i}.wav")), b"RIFF").expect("file");
    }
    let (code, answer) = d.ctl(&["factory-reset", "--yes"]);
    assert_eq!(code, 0, "{answer}");
    let r = d.client().login("admin", ADMIN_PW).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"], "factory_reset_in_progress");
    assert!(r.header("retry-after").is_some());
    d.wait_for_start();
    assert_eq!(
        d.client().login("admin", ADMIN_PW).await.status,
        401,
        "erased"
    );
}

/// Issue 27 (NIST SP 800-63B's cap) with the real binary and real peers, inside a
/// private network namespace made by the test (tests/scripts/netns-protect.sh): after
/// 100 wrong passwords in a row from four outside addresses, a fifth is refused with
/// the right password (429 `account_protected`), the owner's known browser and a
/// computer on the LAN still get in, and each of their successes lifts it. A blocked
/// outside address is closed at accept (no answer at all), and a keep-alive connection
/// of an address that became blocked is answered 429 and closed at its next request.
#[test]
fn a_hundred_failures_leave_the_account_to_known_browsers_and_the_lan() {
    pbx_e2e::in_netns_expect(
        "netns-protect.sh",
        "netns-protect",
        &[
            "owner-outside 200",
            "owner-cookie kept",
            "hundred-1 96x401 4x429",
            "blocked-accept 000",
            "stranger-right-password 429 account_protected",
            "known-browser 200",
            "stranger-after-known 200",
            "hundred-7 96x401 4x429",
            "stranger-right-password-again 429 account_protected",
            "lan 200",
            "stranger-after-lan 200",
            "keepalive-before 200",
            "keepalive-after 429 close eof",
        ],
    );
}

/// Issue 27 (lanes by trust), in a private network namespace
/// (tests/scripts/netns-lanes.sh): one hash at a time and two places in the queue,
/// sixteen outside addresses keep it full with guesses (503 `busy` for most of them);
/// meanwhile the owner's known browser from outside and a computer on the LAN each sign
/// in five times, every time. Seen failing before the local lane: the LAN got 5 × 503.
#[test]
fn a_known_browser_and_the_lan_sign_in_while_a_flood_fills_the_queue() {
    pbx_e2e::in_netns_expect(
        "netns-lanes.sh",
        "netns-lanes",
        &[
            "owner-outside 200",
            "known-during-flood 5x200",
            "lan-during-flood 5x200",
            "flood got 503",
        ],
    );
}

/// Issue 27 (connection slots are a lane too), in a private network namespace
/// (tests/scripts/netns-slots.sh): two outside addresses hold the whole pool of 8 with
/// idle connections. A new outside browser is answered 503 `busy` on a knock slot past
/// the pool and closed, never left waiting; the owner's known browser from outside is
/// served there with its device cookie alone and with its session; the LAN computer is
/// answered from the own segment's slots. With the two knock slots held idle too, an
/// outsider is closed at accept until they are closed after 2 s, and the LAN still gets
/// in. Seen failing before the knock slots: known-device-when-full 000,
/// known-session-when-full 000, outsider-when-full 000 (and lan-when-full 000 before the
/// segment's slots).
#[test]
fn known_browsers_and_the_lan_get_a_connection_when_outsiders_hold_the_whole_pool() {
    pbx_e2e::in_netns_expect(
        "netns-slots.sh",
        "netns-slots",
        &[
            "owner-cookie kept",
            "device-only jar",
            "before 200",
            "outsider-when-full 503 busy",
            "known-device-when-full 200",
            "known-session-when-full 200",
            "lan-when-full 200",
            "known-when-knock-full 000",
            "lan-when-knock-full 200",
            "known-after-knockers-closed 200",
        ],
    );
}

/// Issue 27 (`network.block_with = "nftables"`), with Debian's nftables in a private
/// network namespace (tests/scripts/netns-nft.sh): the daemon's table and rule for its
/// ports; an outside address blocked by the lockout is in the set and dropped by the
/// kernel (connect times out, curl exit 28); a LAN computer's block stays the daemon's;
/// the table goes at stop.
#[test]
fn blocked_outside_addresses_are_dropped_by_nftables_and_the_table_goes_at_stop() {
    pbx_e2e::in_netns_expect(
        "netns-nft.sh",
        "netns-nft",
        &[
            "table 1 rule 2",
            "outsider in the set",
            "lan not in the set",
            "outsider connect exit 28",
            "lan healthz 200",
            "after stop table 0",
        ],
    );
}
