//! Two-factor sign-in against the binary (spec §8): enrollment, the pre-session, codes
//! from the test's own authenticator, replay, recovery codes in place of a code, and
//! what each way back in does to the second factor.

use pbx_e2e::totp;
use pbx_e2e::{Client, Daemon, Opts, TempDir};
use serde_json::{json, Value};

use crate::recovery::ADMIN_PW;
use crate::{change_initial, initial};

/// Enrolls `c`'s account; returns the secret. `c` is signed out afterwards.
pub async fn enroll(c: &mut Client) -> String {
    let r = c
        .post_json(
            "/api/v1/2fa/setup",
            &json!({"password": "wrong password here"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("invalid_credentials"))
    );
    let r = c
        .post_json("/api/v1/2fa/setup", &json!({"password": ADMIN_PW}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let s = r.json();
    let secret = s["secret"].as_str().expect("secret").to_string();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    let uri = s["otpauth_uri"].as_str().expect("uri");
    assert!(
        uri.starts_with("otpauth://totp/PBX%20SIM%20SIM-0001:admin?secret=")
            && uri.contains(&secret)
            && uri.contains("digits=6&period=30"),
        "{uri}"
    );
    assert!(s["qr_svg"]
        .as_str()
        .expect("svg")
        .starts_with("<svg xmlns="));
    let r = c
        .post_json("/api/v1/2fa/enable", &json!({"code": "abcdef"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = c
        .post_json(
            "/api/v1/2fa/enable",
            &json!({"code": totp::code(&secret, totp::now())}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        c.get("/api/v1/session").await.status,
        401,
        "signed out: sign in with a code"
    );
    secret
}

/// The admin (password [`ADMIN_PW`]) signed in, with a fresh sheet of recovery codes.
async fn admin_with_codes(d: &Daemon) -> (pbx_e2e::Client, Vec<String>) {
    let mut c = change_initial(d, ADMIN_PW).await;
    assert_eq!(c.login("admin", ADMIN_PW).await.status, 200);
    let codes = c
        .post_json("/api/v1/recovery-codes", &json!({"password": ADMIN_PW}))
        .await
        .json()["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|v| v.as_str().expect("code").to_string())
        .collect();
    (c, codes)
}

/// A password sign-in that owes its code: the answer, and the pre-session cookie.
async fn password_step(c: &mut Client, password: &str) -> Value {
    let r = c.login("admin", password).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

async fn code_step(c: &mut Client, code: &str) -> pbx_e2e::Resp {
    c.post_json("/api/v1/login/2fa", &json!({ "code": code }))
        .await
}

#[tokio::test]
async fn a_password_then_a_code_signs_in_and_each_way_back_in_keeps_or_drops_the_factor() {
    let dir = TempDir::new("2fa");
    let mut d = Daemon::start(&dir.path().join("state"));
    let label = initial(&d);
    let (mut c, codes) = admin_with_codes(&d).await;
    let secret = enroll(&mut c).await;

    // The password alone: a pre-session that grants nothing else.
    let mut b = d.client();
    let r = b.login("admin", ADMIN_PW).await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"two_factor_required": true}))
    );
    let cookies = r.set_cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let pre = &cookies[0];
    assert!(
        pre.starts_with("pbx_2fa=")
            && pre.contains("Max-Age=300")
            && pre.contains("HttpOnly")
            && pre.contains("SameSite=Strict"),
        "{pre}"
    );
    let pre_value = pre.split(';').next().expect("pair").to_string();
    let with_pre = |path: &'static str| {
        let mut raw = d.client();
        let cookie = pre_value.clone();
        async move {
            raw.send("GET", path, &[("cookie", cookie.as_str())], None)
                .await
                .status
        }
    };
    assert_eq!(with_pre("/api/v1/session").await, 401);
    assert_eq!(with_pre("/api/v1/audit").await, 401);

    // A wrong code counts like a wrong password; the right one signs in.
    // (The client keeps the pre-session cookie, as a browser would.)
    let r = code_step(&mut b, "000000").await;
    // The step of the enabling code is used up: the phone's next code (one step ahead
    // is within the accepted skew), rather than waiting up to 30 s.
    let code_now = totp::code(&secret, totp::now() + 30);
    if code_now != "000000" {
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (401, json!("invalid_credentials"))
        );
        assert_eq!(r.json()["attempts_left"], 4);
    }
    let r = code_step(&mut b, &code_now).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["username"], "admin");
    assert!(r.json()["csrf_token"].is_string());
    let set = r.set_cookies();
    assert!(
        set.iter()
            .any(|c| c.starts_with("pbx_session=") && c.contains("HttpOnly")),
        "{set:?}"
    );
    assert!(
        set.iter()
            .any(|c| c.starts_with("pbx_2fa=;") && c.contains("Max-Age=0")),
        "{set:?}"
    );

    // The same code again: refused (replay). A recovery code stands in, once.
    let mut e = d.client_from("127.0.0.44");
    password_step(&mut e, ADMIN_PW).await;
    let r = code_step(&mut e, &code_now).await;
    assert_eq!(r.status, 401, "replayed code: {}", r.text());
    let r = code_step(&mut e, &codes[0]).await;
    assert_eq!(r.status, 200, "recovery code: {}", r.text());
    password_step(&mut e, ADMIN_PW).await;
    assert_eq!(code_step(&mut e, &codes[0]).await.status, 401, "used up");

    // The button's credential reset removes it: the label password alone signs in.
    let (_, a) = d.ctl(&["button", "--held-ms", "5000"]);
    assert_eq!(a["action"], "credentials-reset", "{a}");
    let r = d.client_from("127.0.0.46").login("admin", &label).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["must_change_password"], true, "{}", r.text());
    assert!(r.json().get("two_factor_required").is_none());

    // Enrolled again, then a factory reset removes everything.
    let mut g = change_initial(&d, ADMIN_PW).await;
    assert_eq!(g.login("admin", ADMIN_PW).await.status, 200);
    enroll(&mut g).await;
    let (_, a) = d.ctl(&["factory-reset", "--yes"]);
    assert_eq!(a["started"], true, "{a}");
    d.wait_for_start();
    let r = d.client().login("admin", &label).await;
    assert_eq!(
        (r.status, r.json()["must_change_password"].clone()),
        (200, json!(true))
    );
}

#[tokio::test]
async fn a_mailed_reset_link_keeps_the_second_factor() {
    let dir = TempDir::new("2fa-link");
    let d = Daemon::start(&dir.path().join("state"));
    let mut c = crate::recovery::admin_ready(&d).await;
    enroll(&mut c).await;
    let r = d
        .client()
        .post_json(
            "/api/v1/forgot",
            &json!({"username": "admin", "email": crate::recovery::ADMIN_MAIL}),
        )
        .await;
    assert_eq!(r.status, 202);
    let mail = d
        .outbox_mail("no reset mail", |m| m.contains("Subject: Find Password"))
        .await;
    let token = pbx_e2e::link_token(&mail);
    let new_pw = "violet kettle under the stairs";
    let r = d
        .client()
        .post_json(
            "/api/v1/reset",
            &json!({"token": token, "new_password": new_pw}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let mut b = d.client();
    assert_eq!(
        password_step(&mut b, new_pw).await,
        json!({"two_factor_required": true})
    );
}

#[tokio::test]
async fn the_policy_makes_the_admin_enroll_before_anything_else() {
    let dir = TempDir::new("2fa-policy");
    let d = Daemon::start_opts(
        &dir.path().join("state"),
        &Opts {
            config: Some("[policy]\nrequire_2fa_for_admin = true\n".into()),
            env: Vec::new(),
        },
    );
    let mut c = change_initial(&d, ADMIN_PW).await;
    let r = c.login("admin", ADMIN_PW).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["two_factor_enrollment_required"],
        true,
        "{}",
        r.text()
    );
    let r = c.get("/api/v1/settings/smtp").await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("two_factor_enrollment_required"))
    );
    let page = c.get("/").await;
    assert_eq!(
        (page.status, page.header("location").as_deref()),
        (303, Some("/profile"))
    );
    enroll(&mut c).await;
    let r = c.login("admin", ADMIN_PW).await;
    assert_eq!(r.json(), json!({"two_factor_required": true}));
}

/// A 6-digit code that the authenticator does not show now, nor one step either side.
fn wrong_code(secret: &str) -> String {
    let t = totp::now();
    let shown: Vec<String> = [t - 30, t, t + 30]
        .iter()
        .map(|&u| totp::code(secret, u))
        .collect();
    (0..)
        .map(|n: u32| format!("{:06}", n * 7919 % 1_000_000))
        .find(|c| !shown.contains(c))
        .expect("a code not shown")
}

/// Issue 24 item 1 (failed on the old code: 200 wrong codes, never a 429): a right
/// password does not forgive wrong second-factor codes. Three rounds of the right
/// password and four wrong codes: from the 6th wrong code on, 429 — and then the right
/// code too, from any address, until the lock lapses; audited and mailed.
#[tokio::test]
async fn wrong_codes_lock_the_second_factor_and_a_right_password_does_not_forgive_them() {
    let dir = TempDir::new("2fa-guess");
    let d = Daemon::start(&dir.path().join("state"));
    let mut c = crate::recovery::admin_ready(&d).await;
    let secret = enroll(&mut c).await;
    // The owner's own session from before, to read the audit trail afterwards.
    let mut watch = d.client_from("127.0.0.60");
    password_step(&mut watch, ADMIN_PW).await;
    let r = code_step(&mut watch, &totp::code(&secret, totp::now() + 30)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let bad = wrong_code(&secret);
    let flushes = |d: &Daemon| {
        d.ctl(&["status"]).1["flash_flushes"]
            .as_u64()
            .expect("flushes")
    };
    let before = flushes(&d);
    let mut attacker = d.client_from("127.0.0.61");
    let mut answers = Vec::new();
    for _round in 0..3 {
        assert_eq!(
            password_step(&mut attacker, ADMIN_PW).await,
            json!({"two_factor_required": true}),
            "the password itself is right"
        );
        for _ in 0..4 {
            let r = code_step(&mut attacker, &bad).await;
            answers.push((r.status, r.json()["error"].clone()));
        }
    }
    let expected: Vec<(u16, Value)> = (1..=12)
        .map(|n| {
            if n <= 5 {
                (401, json!("invalid_credentials"))
            } else {
                (429, json!("second_factor_locked"))
            }
        })
        .collect();
    assert_eq!(answers, expected);
    assert_eq!(flushes(&d), before, "a wrong code writes nothing to flash");

    // The owner with the right code from another address: the account's factor is locked.
    let mut owner = d.client_from("127.0.0.62");
    password_step(&mut owner, ADMIN_PW).await;
    let r = code_step(&mut owner, &totp::code(&secret, totp::now() + 30)).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let retry = r.json()["retry_after_s"].as_u64().expect("retry_after_s");
    assert!((14 * 60..=15 * 60).contains(&retry), "{retry}");
    assert_eq!(r.header("retry-after"), Some(retry.to_string()));
    let msg = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(
        msg.contains("wrong codes") && msg.contains("15 min"),
        "{msg}"
    );

    let audit = watch.get("/api/v1/audit").await;
    assert_eq!(audit.status, 200, "{}", audit.text());
    let events = crate::audit_field(&audit.json(), "event");
    assert!(
        events.contains(&"two_factor_locked".to_string()),
        "{events:?}"
    );
    d.outbox_mail("no notice mail", |m| {
        m.contains("Subject: Two-factor sign-in locked")
    })
    .await;
}

/// Issue 24 item 9 (failed on the old code: the code alone set a new password on a
/// two-factor account, 204): one printed sheet is not both factors. On an account with
/// two-factor sign-in, recovery with a code also needs the phone's current code; a
/// second recovery code does not stand in for it. The factor is kept afterwards.
#[tokio::test]
async fn a_recovery_code_stands_in_for_one_factor_only() {
    let dir = TempDir::new("2fa-code-recovery");
    let d = Daemon::start(&dir.path().join("state"));
    let (mut c, codes) = admin_with_codes(&d).await;
    let secret = enroll(&mut c).await;
    let new_pw = "copper lantern in the hall";
    let recover = |extra: Value| {
        let mut body = json!({"username": "admin", "code": codes[1], "new_password": new_pw});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };
    let r = d
        .client()
        .post_json("/api/v1/recover-with-code", &recover(json!({})))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("two_factor_required")),
        "{}",
        r.text()
    );
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("one factor")),
        "{}",
        r.text()
    );
    let r = d
        .client()
        .post_json(
            "/api/v1/recover-with-code",
            &recover(json!({"totp": codes[2]})),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("invalid_credentials")),
        "a second recovery code is not the phone: {}",
        r.text()
    );
    let r = d
        .client()
        .post_json(
            "/api/v1/recover-with-code",
            &recover(json!({"totp": totp::code(&secret, totp::now() + 30)})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let mut f = d.client_from("127.0.0.45");
    assert_eq!(
        password_step(&mut f, new_pw).await,
        json!({"two_factor_required": true}),
        "the second factor is kept"
    );
    // Both recovery codes tried are still unused (the refused attempts consumed nothing)
    // except the one that recovered.
    let r = d
        .client()
        .post_json(
            "/api/v1/recover-with-code",
            &recover(json!({"totp": "123456"})),
        )
        .await;
    assert_eq!(r.status, 410, "used up: {}", r.text());
}
