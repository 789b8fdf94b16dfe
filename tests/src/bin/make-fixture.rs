//! Makes an upgrade fixture: a state directory written by a released `pbx-authd`, with
//! everything an owner sets up — the label password replaced, SMTP with AUTH, a confirmed
//! recovery email, two-factor sign-in on, recovery codes, an extension — and
//! `fixture.json` saying what a later firmware must find in it.
//!
//! Usage: `PBX_AUTHD_BIN=path/to/released/pbx-authd make-fixture tests/fixtures/<version>`
//! (`make fixture FIXTURE_BIN=… FIXTURE_VERSION=…`). The directory is committed; the e2e
//! test `upgrade::` opens every committed one with the current binary.

use pbx_e2e::{totp, Daemon};
use serde_json::json;

const PASSWORD: &str = "fixture owner passphrase 1";
const EXTENSION_PASSWORD: &str = "extension passphrase 1001";
const EMAIL: &str = "owner@pbx.test";
const SMTP_PASSWORD: &str = "smtp-secret-fixture";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: make-fixture OUT_DIR"),
    );
    assert!(!out.exists(), "{} exists already", out.display());
    let state = out.join("state");
    let d = Daemon::start(&state);
    let label = d
        .initial_password
        .clone()
        .expect("first boot prints the label password");
    let mut c = d.client();
    let ok = |r: &pbx_e2e::Resp, want: u16, what: &str| {
        assert_eq!(r.status, want, "{what}: {}", r.text());
    };

    // The label password replaced.
    ok(
        &c.login("admin", &label).await,
        200,
        "sign-in with the label password",
    );
    let r = c
        .post_json(
            "/api/v1/password",
            &json!({"current_password": label, "new_password": PASSWORD}),
        )
        .await;
    ok(&r, 204, "password change");
    ok(&c.login("admin", PASSWORD).await, 200, "sign-in");

    // A recovery email, confirmed through its link (the dev outbox: no SMTP yet).
    let r = c
        .send_json(
            "PUT",
            "/api/v1/profile",
            &json!({"email": EMAIL, "current_password": PASSWORD}),
        )
        .await;
    ok(&r, 200, "recovery email");
    let mail = d
        .outbox_mail("no confirmation mail", |m| {
            m.contains("Subject: Confirm your recovery email")
        })
        .await;
    let token = &pbx_e2e::link_token(&mail);
    let r = c
        .post_json("/api/v1/confirm-email", &json!({ "token": token }))
        .await;
    ok(&r, 204, "email confirmed");

    // SMTP with AUTH.
    let smtp = json!({
        "host": "mail.pbx.test", "port": 587, "security": "starttls",
        "username": "pbx", "password": SMTP_PASSWORD, "from": "PBX <pbx@pbx.test>",
        "timeout_s": 7, "current_password": PASSWORD,
    });
    ok(
        &c.send_json("PUT", "/api/v1/settings/smtp", &smtp).await,
        200,
        "SMTP settings",
    );

    // Recovery codes, and an extension.
    let r = c
        .post_json("/api/v1/recovery-codes", &json!({"password": PASSWORD}))
        .await;
    ok(&r, 200, "recovery codes");
    let codes = r.json()["codes"].clone();
    let r = c
        .post_json(
            "/api/v1/accounts",
            &json!({"username": "1001", "role": "user", "password": EXTENSION_PASSWORD}),
        )
        .await;
    ok(&r, 201, "extension");

    // Two-factor sign-in last (it ends the session).
    let r = c
        .post_json("/api/v1/2fa/setup", &json!({"password": PASSWORD}))
        .await;
    ok(&r, 200, "2FA setup");
    let secret = r.json()["secret"].as_str().expect("secret").to_string();
    let r = c
        .post_json(
            "/api/v1/2fa/enable",
            &json!({"code": totp::code(&secret, totp::now())}),
        )
        .await;
    ok(&r, 204, "2FA on");
    let version = c.get("/healthz").await;
    ok(&version, 200, "healthz");
    assert_eq!(d.stop(), Some(0), "a clean stop");

    // Only what a box keeps: the stores and the certificate (the simulated board makes
    // the rest again).
    for kept in std::fs::read_dir(&state).expect("state").flatten() {
        let name = kept.file_name().to_string_lossy().into_owned();
        if !["board.db", "data.db", "tls"].contains(&name.as_str()) {
            let p = kept.path();
            let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
        }
    }
    let binary = pbx_e2e::daemon::binary();
    let made_by = std::process::Command::new(&binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let about = json!({
        "made_by": made_by,
        "commit": std::env::var("FIXTURE_COMMIT").unwrap_or_default(),
        "admin_password": PASSWORD,
        "totp_secret": secret,
        "recovery_codes": codes,
        "email": EMAIL,
        "smtp": {"host": "mail.pbx.test", "port": 587, "security": "starttls", "username": "pbx", "timeout_s": 7},
        "extension": {"username": "1001", "password": EXTENSION_PASSWORD},
    });
    std::fs::write(
        out.join("fixture.json"),
        serde_json::to_string_pretty(&about).expect("json") + "\n",
    )
    .expect("fixture.json");
    println!("fixture written to {}", out.display());
}
