//! Firmware upgrades: every state directory a released firmware wrote
//! (`tests/fixtures/<version>/`, made by `make fixture`) opens with this binary, and
//! the owner finds everything as it was: the password and the second factor sign in,
//! SMTP, the confirmed email, the recovery codes and the extension are there.

use std::path::{Path, PathBuf};

use pbx_e2e::{totp, Daemon, TempDir};
use serde_json::{json, Value};

pub fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/fixtures")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("fixture.json").exists())
        .collect();
    found.sort();
    found
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for e in std::fs::read_dir(from).expect("read").flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

#[tokio::test]
async fn every_committed_fixture_opens_with_this_firmware_as_the_owner_left_it() {
    let all = fixtures();
    assert!(!all.is_empty(), "no fixture under tests/fixtures");
    for fixture in all {
        let name = fixture
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let about: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture.join("fixture.json")).expect("fixture.json"),
        )
        .expect("json");
        let dir = TempDir::new(&format!("upgrade-{name}"));
        let state = dir.path().join("state");
        copy_tree(&fixture.join("state"), &state);
        let d = Daemon::start(&state);
        assert_eq!(d.client().get("/healthz").await.text(), "ok\n", "{name}");

        // The password, then the phone's code.
        let password = about["admin_password"].as_str().expect("password");
        let mut c = d.client();
        let r = c.login("admin", password).await;
        assert_eq!(
            (r.status, r.json()["two_factor_required"].clone()),
            (200, json!(true)),
            "{name}: {}",
            r.text()
        );
        let secret = about["totp_secret"].as_str().expect("secret");
        let r = c
            .post_json(
                "/api/v1/login/2fa",
                &json!({ "code": totp::code(secret, totp::now()) }),
            )
            .await;
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        c.csrf = r.json()["csrf_token"].as_str().map(str::to_string);
        assert_eq!(r.json()["must_change_password"], false, "{name}");

        // SMTP as it was saved (the password kept, never shown).
        let smtp = c.get("/api/v1/settings/smtp").await.json();
        for key in ["host", "port", "security", "username", "timeout_s"] {
            assert_eq!(smtp[key], about["smtp"][key], "{name}: smtp {key}: {smtp}");
        }
        assert_eq!(smtp["password_set"], true, "{name}: {smtp}");

        // The email, still confirmed; the codes, all unused.
        assert_eq!(
            c.get("/api/v1/profile").await.json()["email"],
            about["email"]
        );
        let ready = c.get("/api/v1/recovery").await.json();
        assert!(ready["email_confirmed_at"].is_u64(), "{name}: {ready}");
        let codes = about["recovery_codes"].as_array().expect("codes").len();
        assert_eq!(ready["codes_left"], codes, "{name}: {ready}");

        // The extension, which signs in with its own password.
        let accounts = c.get("/api/v1/accounts").await.json();
        let ext = &about["extension"];
        assert!(
            accounts
                .as_array()
                .expect("list")
                .iter()
                .any(|a| a["username"] == ext["username"]),
            "{name}: {accounts}"
        );
        let r = d
            .client_from("127.0.0.31")
            .login(
                ext["username"].as_str().expect("user"),
                ext["password"].as_str().expect("password"),
            )
            .await;
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        assert_eq!(d.stop(), Some(0), "{name}");
    }
}

/// What an A/B updater asks before it commits a new slot: the overlay's mark-good hook
/// runs `ctl selftest` against the running daemon; it exits 0 on a healthy box and 1,
/// naming the check, when the TLS key is broken.
#[tokio::test]
async fn the_mark_good_hook_passes_a_healthy_box_and_fails_a_broken_key_by_name() {
    let dir = TempDir::new("selftest");
    let d = Daemon::start(&dir.path().join("state"));
    let (code, answer) = d.ctl(&["selftest"]);
    assert_eq!((code, &answer["ok"]), (0, &json!(true)), "{answer}");
    let names: Vec<&str> = answer["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["check"].as_str())
        .collect();
    assert_eq!(
        names,
        ["stores", "board", "hash", "tls", "config"],
        "{answer}"
    );
    let hook =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../rootfs-overlay/etc/pbx-authd/mark-good");
    let run_hook = || {
        std::process::Command::new("sh")
            .arg(&hook)
            .env("PBX_AUTHD", pbx_e2e::daemon::binary())
            .env("PBX_CTL_SOCKET", d.ctl_socket())
            .env("PBX_SELFTEST_WAIT", "5")
            .output()
            .expect("the hook runs")
    };
    let good = run_hook();
    assert_eq!(good.status.code(), Some(0), "{good:?}");

    std::fs::write(dir.path().join("state/tls/key.pem"), "not a key").expect("break it");
    let (code, answer) = d.ctl(&["selftest"]);
    assert_eq!((code, &answer["ok"]), (1, &json!(false)), "{answer}");
    let failed: Vec<&str> = answer["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .filter_map(|c| c["check"].as_str())
        .collect();
    assert_eq!(failed, ["tls"], "{answer}");
    let bad = run_hook();
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
}
