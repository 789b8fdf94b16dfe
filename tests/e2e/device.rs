//! The simulated board: reset button, crash-safe factory reset, control socket,
//! recovery press, audit trail, web factory reset.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use pbx_e2e::smtp::SmtpServer;
use pbx_e2e::{Daemon, Opts, TempDir};
use serde_json::json;

use crate::recovery::{admin_ready, daemon_with, use_smtp, ADMIN_MAIL, ADMIN_PW};
use crate::{change_initial, fresh, initial};

const PARTITIONS: [&str; 2] = ["userdata", "voicemail"];

fn partition(dir: &std::path::Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(format!("state/mtd/{name}.img"))).expect("simulated partition")
}

fn all_ff(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| b == 0xFF)
}

fn led(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("state/leds/status")).unwrap_or_default()
}

/// After a reset: partitions 0xFF, erase paths gone, no marker, label password back
/// with a forced change, the old password refused.
async fn assert_factory_fresh(dir: &std::path::Path, d: &Daemon, label: &str, old: &str) {
    for p in PARTITIONS {
        assert!(all_ff(&partition(dir, p)), "{p} erased to 0xFF");
    }
    assert!(!dir.join("state/userfiles").exists(), "erase paths removed");
    assert!(!dir.join("state/reset-pending").exists(), "marker removed");
    assert_eq!(d.client().get("/healthz").await.status, 200);
    assert_eq!(
        d.client().login("admin", old).await.status,
        401,
        "old password gone"
    );
    let r = d.client().login("admin", label).await;
    assert_eq!(r.status, 200, "label password works again: {}", r.text());
    assert_eq!(r.json()["must_change_password"], true);
}

#[tokio::test]
async fn long_press_erases_user_data_and_the_box_comes_back() {
    let smtp = SmtpServer::start();
    let dir = TempDir::new("button-reset");
    let mut d = daemon_with(&dir, &smtp, None);
    let label = initial(&d);
    let pid = d.pid();
    let mut c = admin_ready(&d).await;
    use_smtp(&mut c, &smtp, 5).await;
    for p in PARTITIONS {
        assert!(!all_ff(&partition(dir.path(), p)), "{p} holds data before");
    }
    assert!(dir.path().join("state/userfiles/greeting.txt").exists());

    let (code, answer) = d.ctl(&["button", "--held-ms", "12000"]);
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["action"], "factory-reset");
    assert_eq!(answer["started"], true);

    // The simulated reboot re-executes the same process, which serves again.
    d.wait_for_start();
    assert_eq!(d.pid(), pid, "re-executed in place");
    assert_factory_fresh(dir.path(), &d, &label, ADMIN_PW).await;
    // SMTP settings went with the data DB.
    let mut c = change_initial(&d, "fresh start after reset").await;
    assert_eq!(
        c.login("admin", "fresh start after reset").await.status,
        200
    );
    let s = c.get("/api/v1/settings/smtp").await.json();
    assert_eq!(s["configured"], false, "{s}");
    assert_eq!(c.get("/api/v1/recovery").await.json()["email_bound"], false);
}

#[tokio::test]
async fn sigkill_inside_the_erase_20_times_and_the_next_start_finishes_it() {
    let mut interrupted = 0;
    for run in 0..20u64 {
        let dir = TempDir::new("crash-erase");
        let state = dir.path().join("state");
        let opts = Opts {
            config: None,
            // 8 chunks of 16 KiB per partition, two partitions, 8 ms each: ~130 ms.
            env: vec![("PBX_SIM_ERASE_DELAY_MS".into(), "8".into())],
        };
        let d = Daemon::start_opts(&state, &opts);
        let label = initial(&d);
        change_initial(&d, ADMIN_PW).await;
        let (code, answer) = d.ctl(&["factory-reset", "--yes"]);
        assert_eq!((code, &answer["started"]), (0, &json!(true)), "{answer}");
        // Kill at a different point of the erase each run, once the marker is down.
        let deadline = Instant::now() + Duration::from_secs(5);
        // Millisecond steps, so that each run kills at another point of the erase.
        while !state.join("reset-pending").exists() {
            assert!(Instant::now() < deadline, "erase never started");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(run * 6)).await;
        if state.join("reset-pending").exists() {
            interrupted += 1;
        }
        kill(d.pid(), Signal::SIGKILL).expect("SIGKILL");
        d.kill9();

        let d = Daemon::start(&state);
        assert_factory_fresh(dir.path(), &d, &label, ADMIN_PW).await;
    }
    println!("erase interrupted by SIGKILL in {interrupted} of 20 runs; all 20 completed at the next start");
    assert!(
        interrupted >= 10,
        "the kills must land inside the erase: {interrupted}"
    );
}

#[tokio::test]
async fn presses_outside_the_windows_and_during_an_erase_are_ignored() {
    let dir = TempDir::new("presses");
    let opts = Opts {
        config: None,
        env: vec![("PBX_SIM_ERASE_DELAY_MS".into(), "25".into())],
    };
    let mut d = Daemon::start_opts(&dir.path().join("state"), &opts);
    for (ms, reason) in [
        ("2999", "too short"),
        ("9999", "between"),
        ("30001", "stuck"),
    ] {
        let (code, a) = d.ctl(&["button", "--held-ms", ms]);
        assert_eq!(code, 0);
        assert_eq!(a["action"], "ignored", "{ms}: {a}");
        assert!(
            a["reason"].as_str().expect("reason").contains(reason),
            "{ms}: {a}"
        );
    }
    for p in PARTITIONS {
        assert!(
            !all_ff(&partition(dir.path(), p)),
            "nothing erased by ignored presses"
        );
    }
    let (_, a) = d.ctl(&["button", "--held-ms", "10000"]);
    assert_eq!(a["started"], true);
    let (_, a) = d.ctl(&["button", "--held-ms", "5000"]);
    assert_eq!(a["action"], "ignored", "{a}");
    assert!(a["reason"]
        .as_str()
        .expect("reason")
        .contains("in progress"));
    let (_, a) = d.ctl(&["button", "--held-ms", "20000"]);
    assert_eq!(a["action"], "ignored", "{a}");
    let (_, a) = d.ctl(&["factory-reset", "--yes"]);
    assert_eq!(a["started"], false, "a second reset does not start: {a}");
    d.wait_for_start();
    assert_eq!(d.client().get("/healthz").await.status, 200);
}

#[tokio::test]
async fn control_socket_is_root_only_and_survives_bad_input() {
    use std::io::{BufRead, BufReader, Write};
    let (dir, d) = fresh("ctl-peer");
    let sock = d.ctl_socket();
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let as_nobody = || {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(pbx_e2e::daemon::binary())
            .args(["ctl", "--socket"])
            .arg(&sock)
            .arg("status")
            .output()
            .expect("setpriv runs the client as nobody")
    };
    let out = as_nobody();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
    // Even with the file (and its private directory) opened up, the daemon checks the
    // peer's credentials itself.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    std::fs::set_permissions(
        dir.path().join("state"),
        std::fs::Permissions::from_mode(0o711),
    )
    .expect("chmod");
    let out = as_nobody();
    assert_eq!(out.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON answer");
    assert_eq!(answer["error"], "forbidden", "{answer}");

    let mut s = std::os::unix::net::UnixStream::connect(&sock).expect("connect as root");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut ask = |line: &str| {
        s.write_all(line.as_bytes()).expect("write");
        let mut answer = String::new();
        r.read_line(&mut answer).expect("answer line");
        serde_json::from_str::<serde_json::Value>(&answer).expect("JSON")
    };
    for bad in [
        "not json\n",
        "{\"cmd\":\"format-disk\"}\n",
        "{\"cmd\":\"button\"}\n",
        "\n",
    ] {
        let a = ask(bad);
        assert_eq!(
            (a["ok"].clone(), a["error"].clone()),
            (json!(false), json!("bad_request")),
            "{bad:?}: {a}"
        );
    }
    let a = ask("{\"cmd\":\"status\"}\n");
    assert_eq!(a["ok"], true, "same connection still works: {a}");
    assert_eq!(a["state"], "ok");
    assert_eq!(a["model"], "SIM");
    let a = ask(&format!("{}\n", "x".repeat(5000)));
    assert_eq!(a["error"], "bad_request");
    assert_eq!(d.client().get("/healthz").await.status, 200, "daemon alive");
    drop(dir);
}

#[tokio::test]
async fn recovery_press_mails_the_admin_or_shows_not_configured() {
    let smtp = SmtpServer::start();
    let dir = TempDir::new("recovery-press");
    let d = daemon_with(&dir, &smtp, Some("[recovery]\nbutton = \"mail\"\n"));
    let label = initial(&d);

    // Not configured: LED pattern, nothing erased, nothing mailed.
    let (code, a) = d.ctl(&["button", "--held-ms", "5000"]);
    assert_eq!(code, 0);
    assert_eq!(
        (a["action"].clone(), a["sent"].clone()),
        (json!("recovery-mail"), json!(false)),
        "{a}"
    );
    assert_eq!(led(dir.path()), "recovery-not-configured");
    for p in PARTITIONS {
        assert!(!all_ff(&partition(dir.path(), p)));
    }
    assert!(dir.path().join("state/userfiles/greeting.txt").exists());
    assert_eq!(d.client().login("admin", &label).await.status, 200);

    // Configured: a Find Password mail to the bound address.
    let mut c = admin_ready(&d).await;
    use_smtp(&mut c, &smtp, 5).await;
    let (code, a) = d.ctl(&["button", "--held-ms", "3000"]);
    assert_eq!((code, a["sent"].clone()), (0, json!(true)), "{a}");
    assert_eq!(led(dir.path()), "recovery-mail-sent");
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].subject(), "Find Password");
    assert_eq!(
        mails[0].header("X-Envelope-Rcpt").as_deref(),
        Some(ADMIN_MAIL)
    );
    assert!(mails[0].reset_link().is_some());
    let (code, a) = d.ctl(&["recovery-mail"]);
    assert_eq!((code, a["sent"].clone()), (0, json!(true)), "{a}");
    smtp.wait_for(2, Duration::from_secs(10)).await;

    // Both presses are in the audit trail, newest first.
    let audit = c.get("/api/v1/audit").await.json();
    let (events, details) = (
        crate::audit_field(&audit, "event"),
        crate::audit_field(&audit, "detail"),
    );
    assert_eq!(events[0], "recovery_press", "{audit}");
    assert!(
        details.iter().any(|d| d == "recovery not configured")
            && details.iter().any(|d| d == "reset link mailed"),
        "{audit}"
    );
    assert!(
        events.iter().any(|e| e == "login") && events.iter().any(|e| e == "password_changed"),
        "{audit}"
    );
}

#[tokio::test]
async fn web_factory_reset_needs_password_and_erase() {
    let (dir, mut d) = fresh("web-reset");
    let label = initial(&d);
    let mut c = change_initial(&d, ADMIN_PW).await;
    assert_eq!(c.login("admin", ADMIN_PW).await.status, 200);
    let page = c.get("/factory-reset").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("erases all settings and data"));
    let r = c
        .post_json(
            "/api/v1/factory-reset",
            &json!({"password": ADMIN_PW, "confirm": "erase"}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = c
        .post_json(
            "/api/v1/factory-reset",
            &json!({"password": "wrong password here", "confirm": "ERASE"}),
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(!dir.path().join("state/reset-pending").exists());
    let r = c
        .post_json(
            "/api/v1/factory-reset",
            &json!({"password": ADMIN_PW, "confirm": "ERASE"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    d.wait_for_start();
    assert_factory_fresh(dir.path(), &d, &label, ADMIN_PW).await;
}
