//! The ways back in that keep the data (spec §6, §8): the button's credential-only
//! reset and the change of its mode, confirmed at the box.

use std::time::Duration;

use pbx_e2e::smtp::SmtpServer;
use pbx_e2e::{Daemon, TempDir};
use serde_json::json;

use crate::initial;
use crate::recovery::{admin_ready, daemon_with, use_smtp, ADMIN_MAIL, ADMIN_PW};
use crate::security::EXT_PW;

fn led(d: &Daemon) -> String {
    std::fs::read_to_string(d.state_dir.join("leds/status")).unwrap_or_default()
}

fn mtd(d: &Daemon, name: &str) -> Vec<u8> {
    std::fs::read(d.state_dir.join(format!("mtd/{name}.img"))).expect("simulated partition")
}

#[tokio::test]
async fn a_short_press_puts_the_label_password_back_and_keeps_every_other_byte() {
    let smtp = SmtpServer::start();
    let dir = TempDir::new("credentials-press");
    let d = daemon_with(&dir, &smtp, None);
    let label = initial(&d);
    let mut admin = admin_ready(&d).await;
    use_smtp(&mut admin, &smtp, 5).await;
    crate::security::add_extension(&mut admin).await;
    let mut ext = d.client();
    assert_eq!(ext.login("1001", EXT_PW).await.status, 200);
    let userdata = mtd(&d, "userdata");
    let greeting = std::fs::read(d.state_dir.join("userfiles/greeting.txt")).expect("user file");

    let (code, a) = d.ctl(&["button", "--held-ms", "5000"]);
    assert_eq!(
        (code, a["action"].clone()),
        (0, json!("credentials-reset")),
        "{a}"
    );
    assert_eq!(led(&d), "credentials-reset");

    // The admin's sessions ended; the extension's did not.
    assert_eq!(admin.get("/api/v1/session").await.status, 401);
    assert_eq!(ext.get("/api/v1/session").await.status, 200);
    // The label password signs in, and must be replaced; the old one is gone.
    assert_eq!(d.client().login("admin", ADMIN_PW).await.status, 401);
    let r = admin.login("admin", &label).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["must_change_password"], true);
    let new_pw = "violet kettle under the stairs";
    let r = admin
        .post_json(
            "/api/v1/password",
            &json!({"current_password": label, "new_password": new_pw}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(admin.login("admin", new_pw).await.status, 200);

    // Everything else is as it was.
    let s = admin.get("/api/v1/settings/smtp").await.json();
    assert_eq!(
        (s["host"].clone(), s["password_set"].clone()),
        (json!("127.0.0.1"), json!(true)),
        "{s}"
    );
    assert_eq!(
        admin.get("/api/v1/profile").await.json()["email"],
        ADMIN_MAIL
    );
    let accounts = admin.get("/api/v1/accounts").await.json();
    assert!(
        accounts
            .as_array()
            .expect("list")
            .iter()
            .any(|a| a["username"] == "1001"),
        "{accounts}"
    );
    assert_eq!(mtd(&d, "userdata"), userdata, "partition untouched");
    assert_eq!(
        std::fs::read(d.state_dir.join("userfiles/greeting.txt")).expect("user file kept"),
        greeting
    );
    let audit = admin.get("/api/v1/audit").await.json();
    assert!(
        audit
            .as_array()
            .expect("list")
            .iter()
            .any(|e| e["event"] == "credentials_reset"),
        "{audit}"
    );

    // The owner hears of it at the bound address.
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    let notice = mails
        .iter()
        .find(|m| m.subject() == "Admin password reset with the reset button")
        .expect("notice mail");
    assert_eq!(
        notice.header("X-Envelope-Rcpt").as_deref(),
        Some(ADMIN_MAIL)
    );
    let body = notice.body();
    assert!(
        body.contains("SIM") && body.contains("Data was kept"),
        "{body}"
    );
}

#[tokio::test]
async fn with_the_press_off_a_short_press_changes_nothing() {
    let smtp = SmtpServer::start();
    let dir = TempDir::new("press-off");
    let d = daemon_with(&dir, &smtp, Some("[recovery]\nbutton = \"off\"\n"));
    let mut c = admin_ready(&d).await;
    let (code, a) = d.ctl(&["button", "--held-ms", "5000"]);
    assert_eq!((code, a["action"].clone()), (0, json!("ignored")), "{a}");
    assert!(a["reason"].as_str().expect("reason").contains("off"), "{a}");
    assert_eq!(led(&d), "off", "the LED as it was at start");
    assert_eq!(c.get("/api/v1/session").await.status, 200, "session kept");
    assert_eq!(d.client().login("admin", ADMIN_PW).await.status, 200);
    let r = c.get("/api/v1/recovery").await.json();
    assert_eq!(r["button"]["mode"], "off", "{r}");
    assert!(smtp.mails().is_empty(), "nothing mailed");
}

#[tokio::test]
async fn changing_the_press_needs_the_password_and_a_press_at_the_box() {
    let dir = TempDir::new("press-mode");
    let state = dir.path().join("state");
    let d = Daemon::start(&state);
    let mut c = crate::change_initial(&d, ADMIN_PW).await;
    assert_eq!(c.login("admin", ADMIN_PW).await.status, 200);
    let ask = |mode: &str, pw: &str| json!({"mode": mode, "password": pw});

    let r = c
        .send_json(
            "PUT",
            "/api/v1/recovery/button",
            &ask("off", "not my password"),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("invalid_credentials"))
    );
    let r = c
        .send_json(
            "PUT",
            "/api/v1/recovery/button",
            &ask("sometimes", ADMIN_PW),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = c
        .send_json("PUT", "/api/v1/recovery/button", &ask("off", ADMIN_PW))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        r.json()["pending"],
        json!({"mode": "off", "expires_in_s": 120})
    );
    let status = c.get("/api/v1/recovery").await.json();
    assert_eq!(status["button"]["mode"], "credentials", "not yet: {status}");
    assert_eq!(status["button"]["pending"]["mode"], "off", "{status}");

    // A bump shorter than 1 s neither confirms nor resets.
    let (_, a) = d.ctl(&["button", "--held-ms", "900"]);
    assert_eq!(a["action"], "ignored", "{a}");
    // A 2 s press confirms the change and does nothing else: the password stays.
    let (code, a) = d.ctl(&["button", "--held-ms", "2000"]);
    assert_eq!(
        (code, a),
        (
            0,
            json!({"ok": true, "action": "button-mode-confirmed", "mode": "off"})
        )
    );
    assert_eq!(led(&d), "button-mode-confirmed");
    assert_eq!(c.get("/api/v1/session").await.status, 200, "session kept");
    let status = c.get("/api/v1/recovery").await.json();
    assert_eq!(status["button"], json!({"mode": "off"}), "{status}");
    let (_, a) = d.ctl(&["button", "--held-ms", "5000"]);
    assert_eq!(a["action"], "ignored", "off now: {a}");

    // Stored: a restart keeps it. A stolen session (no CSRF header) cannot ask at all.
    let pid = d.pid();
    assert_eq!(d.stop(), Some(0), "daemon {pid} stopped");
    let d = Daemon::start(&state);
    let mut c = d.client();
    assert_eq!(c.login("admin", ADMIN_PW).await.status, 200);
    assert_eq!(
        c.get("/api/v1/recovery").await.json()["button"]["mode"],
        "off"
    );
    let r = c
        .send(
            "PUT",
            "/api/v1/recovery/button",
            &[("content-type", "application/json")],
            Some(ask("credentials", ADMIN_PW).to_string().into_bytes()),
        )
        .await;
    assert_eq!((r.status, r.json()["error"].clone()), (403, json!("csrf")));
    // Back to credentials, confirmed by a 1 s press.
    let r = c
        .send_json(
            "PUT",
            "/api/v1/recovery/button",
            &ask("credentials", ADMIN_PW),
        )
        .await;
    assert_eq!(r.status, 202);
    let (_, a) = d.ctl(&["button", "--held-ms", "1000"]);
    assert_eq!(a["action"], "button-mode-confirmed", "{a}");
    assert_eq!(
        c.get("/api/v1/recovery").await.json()["button"]["mode"],
        "credentials"
    );
}

/// Every stored byte of the data DB, to show what is (not) in it.
fn data_db_bytes(d: &Daemon) -> Vec<u8> {
    let mut all = Vec::new();
    let mut dirs = vec![d.state_dir.join("data.db")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).expect("data DB dir").flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                all.extend(std::fs::read(e.path()).unwrap_or_default());
            }
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn recovery_codes_are_shown_once_in_their_format_and_kept_hashed() {
    let smtp = SmtpServer::start();
    let dir = TempDir::new("codes");
    let d = daemon_with(&dir, &smtp, None);
    let mut c = admin_ready(&d).await;
    use_smtp(&mut c, &smtp, 5).await;
    assert_eq!(c.get("/api/v1/recovery").await.json()["codes_left"], 0);

    let r = c
        .post_json(
            "/api/v1/recovery-codes",
            &json!({"password": "not my password"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("invalid_credentials"))
    );
    let r = c
        .post_json("/api/v1/recovery-codes", &json!({"password": ADMIN_PW}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let sheet = r.json();
    assert_eq!(
        (sheet["model"].clone(), sheet["serial"].clone()),
        (json!("SIM"), json!("SIM-0001"))
    );
    let codes: Vec<String> = sheet["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|v| v.as_str().expect("code").to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    let crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    for code in &codes {
        let groups: Vec<&str> = code.split('-').collect();
        assert!(
            groups.len() == 4
                && groups
                    .iter()
                    .all(|g| g.len() == 4 && g.chars().all(|ch| crockford.contains(ch))),
            "{code}: four groups of four base32 symbols = 80 bits"
        );
    }
    let mut distinct = codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    assert_eq!(c.get("/api/v1/recovery").await.json()["codes_left"], 10);
    let stored = data_db_bytes(&d);
    for code in &codes {
        assert!(
            !contains(&stored, code) && !contains(&stored, &code.replace('-', "")),
            "{code} stored in clear"
        );
    }
}

/// A new sheet of codes for the signed-in admin.
async fn generate_codes(c: &mut pbx_e2e::Client) -> Vec<String> {
    let r = c
        .post_json("/api/v1/recovery-codes", &json!({"password": ADMIN_PW}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|v| v.as_str().expect("code").to_string())
        .collect()
}

#[tokio::test]
async fn a_recovery_code_works_once_typed_any_way_and_a_new_sheet_voids_the_old() {
    let smtp = SmtpServer::start();
    let dir = TempDir::new("codes-use");
    let d = daemon_with(&dir, &smtp, None);
    let mut c = admin_ready(&d).await;
    use_smtp(&mut c, &smtp, 5).await;
    let codes = generate_codes(&mut c).await;

    // Generating again voids the old set.
    let fresh = generate_codes(&mut c).await;
    let recover =
        |code: &str, pw: &str| json!({"username": "admin", "code": code, "new_password": pw});
    let new_pw = "copper lantern in the hall";
    let mut anon = d.client();
    let r = anon
        .post_json("/api/v1/recover-with-code", &recover(&codes[0], new_pw))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (410, json!("code_invalid")),
        "old set void"
    );
    let r = anon
        .post_json("/api/v1/recover-with-code", &recover(&fresh[1], "short"))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("weak_password"))
    );
    // Typed in lower case, without dashes: the same code.
    let typed = fresh[1].replace('-', " ").to_lowercase();
    let r = anon
        .post_json("/api/v1/recover-with-code", &recover(&typed, new_pw))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        c.get("/api/v1/session").await.status,
        401,
        "the admin's sessions ended"
    );
    assert_eq!(d.client().login("admin", ADMIN_PW).await.status, 401);
    let mut c = d.client();
    let r = c.login("admin", new_pw).await;
    assert_eq!(
        (r.status, r.json()["must_change_password"].clone()),
        (200, json!(false))
    );
    assert_eq!(c.get("/api/v1/recovery").await.json()["codes_left"], 9);
    let r = anon
        .post_json(
            "/api/v1/recover-with-code",
            &recover(&fresh[1], "another fine evening"),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (410, json!("code_invalid")),
        "used up"
    );
    // Besides the alerts (new recovery codes, a new browser), the notice of the change.
    let changed = pbx_e2e::poll_until(Duration::from_secs(10), "the change notice", || {
        smtp.mails()
            .into_iter()
            .find(|m| m.subject() == "Your password was changed")
    })
    .await;
    assert!(
        changed.body().contains("with a recovery code"),
        "{}",
        changed.body()
    );
    let audit = c.get("/api/v1/audit").await.json();
    assert!(
        audit
            .as_array()
            .expect("list")
            .iter()
            .any(|e| e["event"] == "password_reset" && e["detail"] == "recovery code"),
        "{audit}"
    );
}

#[tokio::test]
async fn wrong_recovery_codes_count_as_failed_sign_ins() {
    let dir = TempDir::new("codes-lockout");
    let d = Daemon::start(&dir.path().join("state"));
    let mut anon = d.client_from("127.0.0.9");
    for i in 0..5 {
        let r = anon
            .post_json(
                "/api/v1/recover-with-code",
                &json!({"username": "admin", "code": format!("AAAA-AAAA-AAAA-AAA{i}"), "new_password": "copper lantern in the hall"}),
            )
            .await;
        assert_eq!(r.status, 410, "attempt {i}: {}", r.text());
    }
    let r = anon
        .post_json(
            "/api/v1/recover-with-code",
            &json!({"username": "admin", "code": "AAAA-AAAA-AAAA-AAA9", "new_password": "copper lantern in the hall"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (429, json!("locked"))
    );
    assert!(r.header("retry-after").is_some());
    // The address is blocked for sign-ins as well.
    assert_eq!(anon.login("admin", &initial(&d)).await.status, 429);
    assert_eq!(
        d.client_from("127.0.0.10")
            .login("admin", &initial(&d))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn the_recovery_email_is_proven_by_its_link_and_a_failed_check_is_retried() {
    let smtp = SmtpServer::start();
    let dir = TempDir::new("email-proof");
    let d = daemon_with(&dir, &smtp, Some("[recovery]\ndrill_retry_s = 1\n"));
    let mut c = crate::change_initial(&d, ADMIN_PW).await;
    assert_eq!(c.login("admin", ADMIN_PW).await.status, 200);
    use_smtp(&mut c, &smtp, 2).await;
    let r = c
        .send_json(
            "PUT",
            "/api/v1/profile",
            &json!({"email": ADMIN_MAIL, "current_password": ADMIN_PW}),
        )
        .await;
    assert_eq!(r.status, 200);
    let status = c.get("/api/v1/recovery").await.json();
    assert_eq!(status["email_confirmed_at"], json!(null), "{status}");
    assert_eq!(d.ctl(&["status"]).1["recovery_email"], "unconfirmed");

    // The confirmation mail, and its link: a page, then the API call the page makes.
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].subject(), "Confirm your recovery email");
    assert_eq!(
        mails[0].header("X-Envelope-Rcpt").as_deref(),
        Some(ADMIN_MAIL)
    );
    let link = mails[0].link("/confirm-email?token=").expect("link");
    assert!(
        link.starts_with(&format!("https://{}/confirm-email?token=", d.https)),
        "{link}"
    );
    let token = link.split("token=").nth(1).expect("token").to_string();
    let page = d
        .client()
        .get(&format!("/confirm-email?token={token}"))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("referrer-policy").as_deref(),
        Some("no-referrer")
    );
    let mut anon = d.client();
    let r = anon
        .post_json("/api/v1/confirm-email", &json!({"token": token}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.set_cookies().is_empty(), "opening it grants nothing");
    // Opened again (a second click, a mail client's preview): said, nothing granted.
    let r = anon
        .post_json("/api/v1/confirm-email", &json!({"token": token}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["already_confirmed"], json!(true));
    assert!(r.set_cookies().is_empty());
    // A link never mailed is still one answer: 410.
    let r = anon
        .post_json("/api/v1/confirm-email", &json!({"token": "A".repeat(43)}))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (410, json!("token_invalid"))
    );
    let status = c.get("/api/v1/recovery").await.json();
    assert!(status["email_confirmed_at"].is_u64(), "{status}");
    assert_eq!(d.ctl(&["status"]).1["recovery_email"], "confirmed");

    // A check while the mail server hangs: the failure is answered and shown, the
    // daemon carries on, and the retry gets through once the server is back.
    smtp.pause();
    let r = c.post_json("/api/v1/recovery/check", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(answer["stage"].is_string(), "{answer}");
    let status = c.get("/api/v1/recovery").await.json();
    assert!(status["drill"]["failures"].as_u64() >= Some(1), "{status}");
    assert!(
        status["drill"]["last_error"]["message"].is_string(),
        "{status}"
    );
    assert_eq!(d.client().get("/healthz").await.status, 200);
    smtp.resume();
    let drill = pbx_e2e::poll_until(Duration::from_secs(40), "no retry got through", || {
        smtp.mails()
            .into_iter()
            .find(|m| m.subject() == "Recovery check")
    })
    .await;
    assert!(drill.link("/confirm-email?token=").is_some());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = c.get("/api/v1/recovery").await.json();
        if status["drill"]["failures"] == 0 {
            assert_eq!(status["drill"]["last_error"], json!(null), "{status}");
            assert!(status["drill"]["last_sent"].is_u64(), "{status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let audit = c.get("/api/v1/audit").await.json();
    let events = crate::audit_field(&audit, "event");
    assert!(
        events.iter().any(|e| e == "recovery_check_failed")
            && events.iter().any(|e| e == "recovery_email_confirmed"),
        "{audit}"
    );
}

/// Issue 24 item 4 (failed on the old code: the 5 s press confirmed `off` and reset
/// nothing): a pending change of the button's mode cannot hijack the owner's recovery
/// press. Only a 1-2.5 s press confirms; a 3-8 s press always does the recovery action
/// and cancels whatever was pending.
#[tokio::test]
async fn a_pending_mode_change_does_not_swallow_the_recovery_press() {
    let dir = TempDir::new("press-hijack");
    let d = Daemon::start(&dir.path().join("state"));
    let label = crate::initial(&d);
    let mut c = crate::change_initial(&d, ADMIN_PW).await;
    assert_eq!(c.login("admin", ADMIN_PW).await.status, 200);
    let r = c
        .send_json(
            "PUT",
            "/api/v1/recovery/button",
            &json!({"mode": "off", "password": ADMIN_PW}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let (code, a) = d.ctl(&["button", "--held-ms", "5000"]);
    assert_eq!(
        (code, a["action"].clone()),
        (0, json!("credentials-reset")),
        "{a}"
    );
    let mut owner = d.client();
    let r = owner.login("admin", &label).await;
    assert_eq!(r.status, 200, "the label password works: {}", r.text());
    // The change was cancelled: a short press now confirms nothing.
    let (_, a) = d.ctl(&["button", "--held-ms", "2000"]);
    assert_eq!(a["action"], "ignored", "{a}");
    assert_eq!(
        owner.get("/api/v1/recovery").await.json()["button"],
        json!({"mode": "credentials"})
    );
}
