//! Who may reach the admin (SPEC §10) against the binary: trusted networks by every way
//! in, the probation of a change that can lock the admin out (reverting, confirmed by a
//! newer session, across a restart), HTTPS-only and `__Host-` cookies, installer
//! accounts that expire while signed in, and the alerts at a real SMTP server.

use std::time::Duration;

use pbx_e2e::{Client, Daemon, Opts, SmtpServer, TempDir};
use serde_json::{json, Value};

use crate::recovery::{ADMIN_MAIL, ADMIN_PW};

fn start(dir: &TempDir, config: &str) -> Daemon {
    let opts = Opts {
        config: Some(config.to_string()),
        env: Vec::new(),
    };
    Daemon::start_opts(&dir.path().join("state"), &opts)
}

/// Replaces the label password from `client` and signs in again with [`ADMIN_PW`].
async fn owner(d: &Daemon, mut c: Client) -> Client {
    let label = crate::initial(d);
    let r = c.login("admin", &label).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c
        .post_json(
            "/api/v1/password",
            &json!({"current_password": label, "new_password": ADMIN_PW}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(c.login("admin", ADMIN_PW).await.status, 200);
    c
}

fn access(admin: &[&str], https_only: bool) -> Value {
    json!({
        "admin_networks": admin, "user_networks": [], "https_only": https_only,
        "require_2fa_for_admin": false, "current_password": ADMIN_PW,
    })
}

fn events(audit: &Value) -> Vec<String> {
    crate::audit_field(audit, "event")
}

/// An admin sign-in from an untrusted loopback address is refused by every way in (the
/// password, a stolen session cookie, a recovery code), naming the networks and the
/// address in words; from a trusted one it works; extensions keep their own (open) list.
#[tokio::test]
async fn admins_sign_in_only_from_their_trusted_networks() {
    let dir = TempDir::new("access-trusted");
    let d = start(&dir, "[access]\nadmin_networks = [\"127.0.0.2/32\"]\n");
    let mut outside = d.client_from("127.0.0.1");
    let r = outside.login("admin", &crate::initial(&d)).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], "not_trusted_network");
    assert_eq!(body["networks"], json!(["127.0.0.2/32"]));
    let msg = body["message"].as_str().expect("message");
    assert!(
        msg.contains("127.0.0.2/32") && msg.contains("127.0.0.1") && msg.contains("reset button"),
        "{msg}"
    );
    // In the admin's language too.
    let r = outside
        .send(
            "POST",
            "/api/v1/login",
            &[
                ("content-type", "application/json"),
                ("accept-language", "de"),
            ],
            Some(
                json!({"username": "admin", "password": "x"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert!(
        r.json()["message"]
            .as_str()
            .expect("de")
            .contains("Ihre Adresse 127.0.0.1"),
        "{}",
        r.text()
    );

    let mut inside = owner(&d, d.client_from("127.0.0.2")).await;
    // The session cookie carried to an untrusted address is refused there.
    outside.cookie = inside.cookie.clone();
    outside.csrf = inside.csrf.clone();
    let r = outside.get("/api/v1/session").await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("not_trusted_network"))
    );
    assert_eq!(inside.get("/api/v1/session").await.status, 200);

    // A recovery code is a way in too.
    let codes = inside
        .post_json("/api/v1/recovery-codes", &json!({"password": ADMIN_PW}))
        .await;
    assert_eq!(codes.status, 200, "{}", codes.text());
    let code = codes.json()["codes"][0].as_str().expect("code").to_string();
    let r = d
        .client_from("127.0.0.1")
        .post_json(
            "/api/v1/recover-with-code",
            &json!({"username": "admin", "code": code, "new_password": "another calm evening"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("not_trusted_network"))
    );

    // Extensions have their own list (open here): one signs in from anywhere.
    let r = inside
        .post_json(
            "/api/v1/accounts",
            &json!({"username": "1001", "role": "user", "password": "temporary pass 1001"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        d.client_from("127.0.0.1")
            .login("1001", "temporary pass 1001")
            .await
            .status,
        200
    );
    let audit = inside.get("/api/v1/audit").await.json();
    assert!(
        events(&audit).contains(&"login_untrusted".to_string()),
        "{audit}"
    );

    // The second-factor step: a password right from the trusted address, its code sent
    // from elsewhere with the pre-session cookie, is refused before the code is checked.
    let secret = crate::twofactor::enroll(&mut inside).await;
    let mut first = d.client_from("127.0.0.2");
    let r = first.login("admin", ADMIN_PW).await;
    assert_eq!(r.json()["two_factor_required"], true, "{}", r.text());
    let mut carried = d.client_from("127.0.0.1");
    carried.presession = first.presession.clone();
    // The next step's code (the current one was used up by the enrolment).
    let code = pbx_e2e::totp::code(&secret, pbx_e2e::totp::now() + 30);
    let r = carried
        .post_json("/api/v1/login/2fa", &json!({"code": code}))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("not_trusted_network"))
    );
    let r = first
        .post_json("/api/v1/login/2fa", &json!({"code": code}))
        .await;
    assert_eq!(
        r.status,
        200,
        "the same code from the trusted address: {}",
        r.text()
    );
}

/// A change that locks the admin out reverts by itself after `access.probation_s`
/// (audited, mailed); the same change confirmed from a session signed in after it, under
/// it, stays. The session that made it cannot confirm it.
#[tokio::test]
async fn a_change_reverts_after_its_probation_unless_a_new_session_confirms_it() {
    let dir = TempDir::new("access-probation");
    let d = start(&dir, "[access]\nprobation_s = 3\n");
    let mut c = owner(&d, d.client()).await;
    let r = c
        .send_json(
            "PUT",
            "/api/v1/settings/access",
            &access(&["127.0.0.2/32"], false),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["probation"]["changes"], json!(["admin_networks"]), "{v}");
    assert_eq!(v["probation"]["reverts_in_s"], 3);
    assert_eq!(v["probation"]["confirmable"], false);
    assert_eq!(v["you_are_trusted"], false);
    // Locked out at once: the change applies now.
    assert_eq!(c.get("/api/v1/session").await.status, 403);
    pbx_e2e::poll_until_async(Duration::from_secs(10), "the revert", || async {
        let mut probe = d.client();
        probe.cookie = c.cookie.clone();
        (probe.get("/api/v1/session").await.status == 200).then_some(())
    })
    .await;
    assert!(events(&c.get("/api/v1/audit").await.json()).contains(&"access_reverted".into()));
    // The record on flash follows the rules in RAM (saved right after).
    pbx_e2e::poll_until_async(Duration::from_secs(5), "the reverted record", || async {
        let mut probe = d.client();
        probe.cookie = c.cookie.clone();
        let v = probe.get("/api/v1/settings/access").await.json();
        (v["admin_networks"] == json!([]) && v.get("probation").is_none()).then_some(())
    })
    .await;

    // Again; the old session from the trusted address cannot confirm, a new one can.
    let mut before = d.client_from("127.0.0.2");
    assert_eq!(before.login("admin", ADMIN_PW).await.status, 200);
    let r = c
        .send_json(
            "PUT",
            "/api/v1/settings/access",
            &access(&["127.0.0.2/32"], false),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = before
        .post_json("/api/v1/settings/access/confirm", &json!({}))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (409, json!("confirm_from_new_session"))
    );
    let mut after = d.client_from("127.0.0.2");
    assert_eq!(after.login("admin", ADMIN_PW).await.status, 200);
    let v = after.get("/api/v1/settings/access").await.json();
    assert_eq!(v["probation"]["confirmable"], true, "{v}");
    let r = after
        .post_json("/api/v1/settings/access/confirm", &json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let r = d.client().login("admin", ADMIN_PW).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("not_trusted_network"))
    );
    let audit = after.get("/api/v1/audit").await.json();
    assert!(
        events(&audit).contains(&"access_confirmed".into()),
        "{audit}"
    );
}

/// The deadline is on flash: a restart during probation keeps counting, and the change
/// still reverts on time.
#[tokio::test]
async fn a_restart_during_probation_keeps_the_countdown() {
    let dir = TempDir::new("access-restart");
    let config = "[access]\nprobation_s = 6\n";
    let d = start(&dir, config);
    let mut c = owner(&d, d.client()).await;
    let r = c
        .send_json(
            "PUT",
            "/api/v1/settings/access",
            &access(&["127.0.0.2/32"], false),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.stop(), Some(0));
    let d = start(&dir, config);
    let r = d.client().login("admin", ADMIN_PW).await;
    assert_eq!(
        r.status,
        403,
        "still on probation after the restart: {}",
        r.text()
    );
    let mut trusted = d.client_from("127.0.0.2");
    assert_eq!(trusted.login("admin", ADMIN_PW).await.status, 200);
    let v = trusted.get("/api/v1/settings/access").await.json();
    let left = v["probation"]["reverts_in_s"].as_u64().expect("left");
    assert!(left <= 6, "{v}");
    pbx_e2e::poll_until_async(
        Duration::from_secs(12),
        "the revert after the restart",
        || async { (d.client().login("admin", ADMIN_PW).await.status == 200).then_some(()) },
    )
    .await;
}

/// HTTPS-only, `__Host-` cookies and the `local` entry with real non-loopback peers, in
/// a private network namespace made by the test (tests/scripts/netns-access.sh).
#[test]
fn https_only_and_the_local_entry_in_a_private_namespace() {
    pbx_e2e::in_netns_expect(
        "netns-access.sh",
        "netns-access",
        &[
            "outsider page 308 https://10.99.0.1:8443/login?next=x",
            "outsider healthz 200",
            "outsider login 308 https://10.99.0.1:8443/api/v1/login",
            "segment page 308 https://10.99.0.1:8443/login",
            "loopback page 200",
            "outsider https sign-in 403 not_trusted_network -",
            "segment https sign-in 200 - Path=/ HttpOnly Secure",
        ],
    );
}

/// Over HTTPS the session, device and pre-session cookies carry `__Host-`; the plain
/// names are not read there (a plain-HTTP page could have planted them).
#[tokio::test]
async fn cookies_over_https_carry_the_host_prefix() {
    let (_dir, d) = crate::fresh("access-host-cookies");
    let mut c = d.tls_client();
    let r = c.login("admin", &crate::initial(&d)).await;
    assert_eq!(r.status, 200);
    let cookies = r.set_cookies();
    for name in ["__Host-pbx_session=", "__Host-pbx_device="] {
        let c = cookies
            .iter()
            .find(|c| c.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {cookies:?}"));
        assert!(
            c.contains("; Path=/") && c.contains("; Secure") && !c.contains("Domain"),
            "{c}"
        );
    }
    assert_eq!(c.get("/api/v1/session").await.status, 200);
    let value = c.cookie.clone().expect("cookie");
    let mut planted = d.tls_client();
    planted.cookie = Some(value.trim_start_matches("__Host-").to_string());
    assert_eq!(
        planted.get("/api/v1/session").await.status,
        401,
        "the plain name is not read over HTTPS"
    );
}

/// An installer account for one hour: password shown once, forced change, kept off the
/// owner's settings; its deadline passes while it is signed in (the wall clock moved on
/// with libfaketime): its session ends and the account goes, audited. Another one is
/// ended early by the owner.
#[tokio::test]
async fn an_installer_account_expires_while_signed_in() {
    let dir = TempDir::new("access-installer");
    let jump = dir.path().join("faketime");
    std::fs::write(&jump, "+0\n").expect("faketime file");
    let opts = Opts {
        config: None,
        env: crate::clock::faked(&[
            ("FAKETIME_TIMESTAMP_FILE", jump.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".into()),
        ]),
    };
    let d = Daemon::start_opts(&dir.path().join("state"), &opts);
    let mut c = owner(&d, d.client()).await;
    let issue = |name: &str, hours: u64| json!({"username": name, "role": "admin", "hours": hours, "current_password": ADMIN_PW});
    let bad = c.post_json("/api/v1/installers", &issue("tech", 169)).await;
    assert_eq!(
        (bad.status, bad.json()["error"].clone()),
        (400, json!("invalid_request"))
    );
    assert!(
        bad.json()["message"].as_str().expect("msg").contains("168"),
        "{}",
        bad.text()
    );
    let r = c.post_json("/api/v1/installers", &issue("tech", 1)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let issued = r.json();
    let password = issued["password"].as_str().expect("password").to_string();
    assert_eq!(password.len(), 24);
    let until = issued["expires_at"].as_u64().expect("until");
    let list = c.get("/api/v1/accounts").await.json();
    let tech = list
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["username"] == "tech")
        .expect("tech")
        .clone();
    assert_eq!(tech["installer"]["until"], until);
    assert!(
        !list.to_string().contains(&password),
        "shown once, never again"
    );

    let mut t = d.client();
    assert_eq!(t.login("tech", &password).await.status, 200);
    let own = "installer own words 7";
    let r = t
        .post_json(
            "/api/v1/password",
            &json!({"current_password": password, "new_password": own}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(t.login("tech", own).await.status, 200);
    // An admin's reads, not the owner's settings.
    assert_eq!(t.get("/api/v1/accounts").await.status, 200);
    for (method, path, body) in [
        (
            "POST",
            "/api/v1/accounts",
            json!({"username": "x1", "role": "user", "password": "temporary pass x1"}),
        ),
        ("PUT", "/api/v1/settings/access", access(&[], false)),
        (
            "PUT",
            "/api/v1/recovery/button",
            json!({"mode": "off", "password": own}),
        ),
        ("POST", "/api/v1/installers", issue("t2", 1)),
        (
            "PUT",
            "/api/v1/accounts/admin",
            json!({"email": "evil@x.test"}),
        ),
        (
            "POST",
            "/api/v1/factory-reset",
            json!({"password": own, "confirm": "ERASE"}),
        ),
    ] {
        let r = t.send_json(method, path, &body).await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (403, json!("forbidden")),
            "{method} {path}: {}",
            r.text()
        );
    }
    // Two hours later on the box's clock: the watcher ends it within a second or two.
    std::fs::write(&jump, "+2h\n").expect("jump");
    pbx_e2e::poll_until_async(Duration::from_secs(10), "the installer's end", || async {
        let mut probe = d.client();
        probe.cookie = t.cookie.clone();
        (probe.get("/api/v1/session").await.status == 401).then_some(())
    })
    .await;
    assert_eq!(
        t.login("tech", own).await.status,
        401,
        "the account is gone"
    );
    let audit = c.get("/api/v1/audit").await.json();
    let ended = audit
        .as_array()
        .expect("audit")
        .iter()
        .find(|e| e["event"] == "installer_ended")
        .expect("installer_ended")
        .clone();
    assert_eq!(
        (ended["username"].clone(), ended["detail"].clone()),
        (json!("tech"), json!("its time is over"))
    );

    // Ended early by the owner.
    let r = c.post_json("/api/v1/installers", &issue("tech2", 3)).await;
    let pw2 = r.json()["password"].as_str().expect("pw").to_string();
    let mut t2 = d.client();
    assert_eq!(t2.login("tech2", &pw2).await.status, 200);
    let csrf = c.csrf.clone().expect("csrf");
    let r = c
        .send(
            "DELETE",
            "/api/v1/installers/tech2",
            &[("x-csrf-token", csrf.as_str())],
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        t2.get("/api/v1/session").await.status,
        401,
        "its session ended"
    );
    let r = c
        .send(
            "DELETE",
            "/api/v1/installers/admin",
            &[("x-csrf-token", csrf.as_str())],
            None,
        )
        .await;
    assert_eq!(r.status, 404, "only installers are ended here");
}

/// Alerts at a real SMTP server: a sign-in from a new browser, an address blocked (the
/// rest of the hour summarised, not mailed), two-factor... here the ones a test can
/// cause quickly: new device, address blocked, recovery codes, a change reverted, an
/// admin-role account created, an installer's sign-in; and the opt-out holds.
#[tokio::test]
async fn alerts_reach_the_owner_at_a_real_smtp_server() {
    let smtp = SmtpServer::start();
    let dir = TempDir::new("access-alerts");
    let d = crate::recovery::daemon_with(
        &dir,
        &smtp,
        Some("[access]\nprobation_s = 2\nalerts_per_hour = 50\n"),
    );
    let mut c = crate::recovery::admin_ready(&d).await;
    crate::recovery::use_smtp(&mut c, &smtp, 5).await;
    let subjects = |n: usize| {
        let smtp = &smtp;
        async move {
            smtp.wait_for(n, Duration::from_secs(15))
                .await
                .into_iter()
                .filter(|m| m.header("To").is_some_and(|t| t.contains(ADMIN_MAIL)))
                .map(|m| m.subject())
                .collect::<Vec<_>>()
        }
    };
    let base = smtp.mails().len();

    // A new browser.
    assert_eq!(
        d.client_from("127.0.0.3")
            .login("admin", ADMIN_PW)
            .await
            .status,
        200
    );
    let got = subjects(base + 1).await;
    assert!(
        got.iter().any(|s| s == "New sign-in to the PBX as admin"),
        "{got:?}"
    );

    // Turned off: no more of those; the mail says where it can be turned off.
    let r = c
        .send_json(
            "PUT",
            "/api/v1/profile/alerts",
            &json!({"alerts": {"new_device": false}, "current_password": ADMIN_PW}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["alerts"]["new_device"], false);
    let r = c
        .send_json(
            "PUT",
            "/api/v1/profile/alerts",
            &json!({"alerts": {"smtp_changed": false}, "current_password": ADMIN_PW}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("invalid_request"))
    );
    assert_eq!(
        d.client_from("127.0.0.4")
            .login("admin", ADMIN_PW)
            .await
            .status,
        200
    );

    // An address blocked: five wrong passwords from 127.0.0.9.
    let mut guesser = d.client_from("127.0.0.9");
    for _ in 0..5 {
        guesser.login("admin", "wrong guess here").await;
    }
    // New recovery codes.
    let r = c
        .post_json("/api/v1/recovery-codes", &json!({"password": ADMIN_PW}))
        .await;
    assert_eq!(r.status, 200);
    // A change reverted after its probation.
    let r = c
        .send_json("PUT", "/api/v1/settings/access", &access(&["local"], true))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // An admin-role account, issued as an installer, and its sign-in.
    let r = c
        .post_json(
            "/api/v1/installers",
            &json!({"username": "tech", "role": "admin", "hours": 2, "current_password": ADMIN_PW}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let pw = r.json()["password"].as_str().expect("pw").to_string();
    assert_eq!(d.client().login("tech", &pw).await.status, 200);

    let want = [
        "PBX blocked an address after failed sign-ins",
        "New recovery codes for admin",
        "PBX access change reverted",
        "Admin account created",
        "Installer tech signed in to the PBX",
    ];
    let mut got = Vec::new();
    for _ in 0..30 {
        got = subjects(base + 1 + want.len()).await;
        if want.iter().all(|w| got.iter().any(|s| s == w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for w in want {
        assert!(got.iter().any(|s| s == w), "{w:?} not in {got:?}");
    }
    assert_eq!(
        got.iter().filter(|s| s.starts_with("New sign-in")).count(),
        1,
        "the second new browser was not mailed after the opt-out: {got:?}"
    );
    let mails = smtp.mails();
    let blocked = mails
        .iter()
        .find(|m| m.subject().starts_with("PBX blocked an address"))
        .expect("blocked");
    assert!(blocked.body().contains("127.0.0.9"), "{}", blocked.body());
    assert!(
        blocked.body().contains("turn off this kind of alert"),
        "{}",
        blocked.body()
    );
    let reverted = mails
        .iter()
        .find(|m| m.subject() == "PBX access change reverted")
        .expect("reverted");
    assert!(
        reverted
            .body()
            .contains("it was not confirmed from a new sign-in in time"),
        "{}",
        reverted.body()
    );
    assert!(
        reverted.body().contains("sign-in only over HTTPS"),
        "{}",
        reverted.body()
    );
    pbx_e2e::smtp::assert_standard_headers(&reverted.raw);
}

/// The profile page with its alert switches drawn.
async fn open_alerts(b: &mut pbx_e2e::webdriver::Browser, d: &Daemon) {
    crate::ui::open(b, d, "/profile").await;
    b.wait_until(
        "!document.getElementById('alerts-section').hidden",
        "the alerts section",
    )
    .await;
}

/// The Access page and the profile's alert switches in Chromium: a risky change shows
/// its countdown and what reverts, cannot be confirmed from the session that made it,
/// and is kept from a new sign-in; an installer account is opened (its password shown
/// once) and ended from its row; an alert turned off stays off after a reload.
#[tokio::test]
async fn the_access_page_and_the_alert_switches_in_the_browser() {
    use pbx_e2e::webdriver::Browser;
    let (_dir, d) = crate::fresh("access-ui");
    crate::change_initial(&d, ADMIN_PW).await;
    let mut b = Browser::start().await;
    crate::ui::admin_in(&mut b, &d).await;
    crate::ui::open(&mut b, &d, "/access").await;
    b.wait_for_text("#no-installers", "No installer account is open.")
        .await;
    assert_eq!(
        b.eval("return document.getElementById('probation').hidden;")
            .await,
        json!(true)
    );
    // HTTPS-only on: risky, on probation (loopback is exempt, so this browser stays in).
    b.click("#https-only").await;
    b.type_into("#access-password", ADMIN_PW).await;
    b.click("#access-form button[type=submit]").await;
    b.wait_for_text("#notice", "on probation").await;
    let text = b
        .wait_for_text("#probation-text", "sign-in only over HTTPS")
        .await;
    assert!(
        text.contains("made by admin") && text.contains("undo themselves in"),
        "{text}"
    );
    let how = b.text("#probation-how").await;
    assert!(how.contains("sign out, sign in again"), "{how}");
    assert_eq!(
        b.eval("return document.getElementById('confirm-button').hidden;")
            .await,
        json!(true)
    );
    b.shot("access-probation").await;
    // A new sign-in may keep it.
    b.click("#logout").await;
    b.wait_for_path("/login").await;
    b.wait_ready().await;
    crate::ui::sign_in_as(&mut b, "admin", ADMIN_PW).await;
    crate::ui::open(&mut b, &d, "/access").await;
    b.wait_for_text("#probation-how", "keep them here").await;
    b.click("#confirm-button").await;
    b.wait_for_text("#notice", "Confirmed: the new settings stay.")
        .await;
    b.wait_until(
        "document.getElementById('probation').hidden",
        "the probation box gone",
    )
    .await;
    assert_eq!(
        b.eval("return document.getElementById('https-only').checked;")
            .await,
        json!(true)
    );

    // An installer account, its password shown once, ended from its row.
    b.type_into("#inst-username", "tech").await;
    b.type_into("#inst-hours", "4").await;
    b.type_into("#inst-password", ADMIN_PW).await;
    b.click("#installer-form button[type=submit]").await;
    let issued = b
        .wait_for_text("#inst-notice", "Give tech this password")
        .await;
    assert!(issued.contains("shown only now"), "{issued}");
    b.wait_for_text("#installer-rows", "tech").await;
    b.shot("access-installer").await;
    b.click("#installer-rows button.danger").await;
    b.wait_for_text("#inst-notice", "The installer account tech is ended")
        .await;
    b.wait_until(
        "document.getElementById('installer-rows').children.length === 0",
        "the row gone",
    )
    .await;

    // The profile's alert switches: one turned off stays off; the owner's ones cannot be.
    open_alerts(&mut b, &d).await;
    assert_eq!(
        b.eval("return document.getElementById('alert-smtp_changed').disabled;")
            .await,
        json!(true)
    );
    b.click("#alert-new_device").await;
    b.type_into("#alerts_password", ADMIN_PW).await;
    b.click("#alerts-form button[type=submit]").await;
    b.wait_for_text("#alerts-notice", "Alerts saved.").await;
    open_alerts(&mut b, &d).await;
    assert_eq!(
        b.eval("return document.getElementById('alert-new_device').checked;")
            .await,
        json!(false)
    );
    b.shot("profile-alerts").await;
    b.quit().await;
}

/// The hourly cap (`access.alerts_per_hour = 1`): alerts beyond it are not mailed but
/// counted, and mailed as one summary when the hour is over (the box's monotonic clock
/// moved two hours on with libfaketime); the next hour mails again.
#[tokio::test]
async fn alerts_beyond_the_hourly_cap_come_as_one_summary() {
    let smtp = SmtpServer::start();
    let dir = TempDir::new("access-alert-cap");
    let jump = dir.path().join("faketime");
    std::fs::write(&jump, "+0\n").expect("faketime file");
    let opts = Opts {
        config: Some("[access]\nalerts_per_hour = 1\n".into()),
        env: vec![
            ("SSL_CERT_FILE".into(), smtp.ca.display().to_string()),
            (
                "LD_PRELOAD".into(),
                "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1".into(),
            ),
            ("FAKETIME_TIMESTAMP_FILE".into(), jump.display().to_string()),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
        ],
    };
    let d = Daemon::start_opts(&dir.path().join("state"), &opts);
    let mut c = crate::recovery::admin_ready(&d).await;
    crate::recovery::use_smtp(&mut c, &smtp, 5).await;
    // The setup's own sign-ins spent this hour's one mail: these three are held.
    for n in 11..14 {
        let from = format!("127.0.0.{n}");
        assert_eq!(
            d.client_from(&from).login("admin", ADMIN_PW).await.status,
            200
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let new_sign_ins = || {
        smtp.mails()
            .into_iter()
            .filter(|m| m.subject() == "New sign-in to the PBX as admin")
            .count()
    };
    assert_eq!(new_sign_ins(), 0, "over the cap: not mailed one by one");
    std::fs::write(&jump, "+2h\n").expect("jump");
    let summary = pbx_e2e::poll_until(Duration::from_secs(15), "the held-alerts summary", || {
        smtp.mails()
            .into_iter()
            .find(|m| m.subject().starts_with("PBX held back"))
    })
    .await;
    let body = summary.body();
    let line = body
        .lines()
        .find(|l| l.starts_with("- New sign-in to the PBX as admin: "))
        .unwrap_or_else(|| panic!("{body}"));
    let held: u32 = line
        .rsplit(": ")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .expect("count");
    assert!(held >= 3, "{body}");
    pbx_e2e::smtp::assert_standard_headers(&summary.raw);
    // A new hour: mailed again.
    let mut c = d.client_from("127.0.0.20");
    assert_eq!(c.login("admin", ADMIN_PW).await.status, 200);
    pbx_e2e::poll_until(
        Duration::from_secs(10),
        "a new sign-in mailed in the new hour",
        || (new_sign_ins() == 1).then_some(()),
    )
    .await;
    let audit = c.get("/api/v1/audit").await.json();
    assert!(events(&audit).contains(&"alerts_held".into()), "{audit}");
}

/// Two more alerts at a real SMTP server: two-factor sign-in turned off, and a factory
/// reset asked from the web — mailed before the erase starts (the erase takes the mail
/// settings with it).
#[tokio::test]
async fn two_factor_off_and_a_web_factory_reset_are_mailed_before_the_erase() {
    let smtp = SmtpServer::start();
    let dir = TempDir::new("access-alert-reset");
    let mut d = crate::recovery::daemon_with(&dir, &smtp, None);
    let mut c = crate::recovery::admin_ready(&d).await;
    crate::recovery::use_smtp(&mut c, &smtp, 5).await;
    let secret = crate::twofactor::enroll(&mut c).await;
    let mut s = d.client();
    let r = s.login("admin", ADMIN_PW).await;
    assert_eq!(r.json()["two_factor_required"], true, "{}", r.text());
    let code = pbx_e2e::totp::code(&secret, pbx_e2e::totp::now() + 30);
    let r = s
        .post_json("/api/v1/login/2fa", &json!({"code": code}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.csrf = r.json()["csrf_token"].as_str().map(str::to_string);
    // The phone's next codes are used up: a recovery code stands in for it.
    let codes = s
        .post_json("/api/v1/recovery-codes", &json!({"password": ADMIN_PW}))
        .await;
    let code = codes.json()["codes"][0].as_str().expect("code").to_string();
    let r = s
        .post_json(
            "/api/v1/2fa/disable",
            &json!({"password": ADMIN_PW, "code": code}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let off = pbx_e2e::poll_until(Duration::from_secs(10), "the 2FA-off alert", || {
        smtp.mails()
            .into_iter()
            .find(|m| m.subject() == "Two-factor sign-in turned off for admin")
    })
    .await;
    assert!(
        off.body().contains("127.0.0.1") && off.body().contains("turn off this kind"),
        "{}",
        off.body()
    );

    let r = s
        .post_json(
            "/api/v1/factory-reset",
            &json!({"password": ADMIN_PW, "confirm": "ERASE"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    // The answer came after the mail was handed over: it is there already.
    let reset = smtp
        .mails()
        .into_iter()
        .find(|m| m.subject() == "Factory reset of the PBX requested from the web")
        .expect("mailed before the erase");
    assert!(
        reset.body().contains("\"admin\"") && !reset.body().contains("turn off this kind"),
        "{}",
        reset.body()
    );
    d.wait_for_start();
}

/// The owner at the box always gets back in: with the admins' list excluding every
/// address the owner has, the button's credential reset (a 3-8 s press) clears it and
/// the label password signs in from anywhere again.
#[tokio::test]
async fn the_buttons_credential_reset_clears_the_admin_networks() {
    let dir = TempDir::new("access-button");
    let d = start(&dir, "[access]\nadmin_networks = [\"192.0.2.0/24\"]\n");
    let label = crate::initial(&d);
    let r = d.client().login("admin", &label).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("not_trusted_network"))
    );
    let (code, answer) = d.ctl(&["button", "--held-ms", "5000"]);
    assert_eq!(
        (code, answer["action"].clone()),
        (0, json!("credentials-reset")),
        "{answer}"
    );
    let mut c = d.client();
    let r = c.login("admin", &label).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.get("/api/v1/audit").await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("password_change_required")),
        "the label password is replaced first"
    );
    let v = owner_after_reset(&d, &label).await;
    assert_eq!(v["admin_networks"], json!([]), "{v}");
}

/// Replaces the label password after a credential reset and reads the access settings.
async fn owner_after_reset(d: &Daemon, label: &str) -> Value {
    let mut c = d.client();
    assert_eq!(c.login("admin", label).await.status, 200);
    let r = c
        .post_json(
            "/api/v1/password",
            &json!({"current_password": label, "new_password": ADMIN_PW}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(c.login("admin", ADMIN_PW).await.status, 200);
    let audit = c.get("/api/v1/audit").await.json();
    assert!(
        audit
            .as_array()
            .expect("audit")
            .iter()
            .any(|e| e["event"] == "access_changed"
                && e["detail"] == "admin_networks cleared by the reset button"),
        "{audit}"
    );
    c.get("/api/v1/settings/access").await.json()
}
