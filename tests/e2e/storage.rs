//! Flash: acknowledged writes survive SIGKILL; a damaged data DB gives the degraded
//! state, never a crash and never a default password.

use std::time::Duration;

use pbx_e2e::Daemon;

use crate::{change_initial, fresh, initial};

#[tokio::test]
async fn new_password_survives_sigkill_right_after_204() {
    let (dir, d) = fresh("sigkill");
    let label = initial(&d);
    change_initial(&d, "violet lantern by the river").await;
    // No drain, no flush at exit: only what was flushed before the 204 survives.
    d.kill9();
    let d = Daemon::start(&dir.path().join("state"));
    assert!(
        d.initial_password.is_none(),
        "second start prints no password"
    );
    let mut c = d.client();
    let r = c.login("admin", "violet lantern by the river").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["must_change_password"], false);
    assert_eq!(d.client().login("admin", &label).await.status, 401);
}

#[tokio::test]
async fn corrupt_data_db_gives_degraded_state_not_a_default_password() {
    let (dir, d) = fresh("corrupt");
    let label = initial(&d);
    change_initial(&d, "violet lantern by the river").await;
    assert_eq!(d.stop(), Some(0), "SIGTERM is a clean exit");

    // Garbage over the data DB's main file.
    let db = dir.path().join("state/data.db/db");
    let len = std::fs::metadata(&db)
        .expect("data DB file")
        .len()
        .max(4096);
    let garbage: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&db, garbage).expect("write garbage");

    for _attempt in 0..2 {
        // Twice: the second start must not crash either (no crash loop).
        let d = Daemon::start(&dir.path().join("state"));
        let mut c = d.client();
        let r = c.get("/healthz").await;
        assert_eq!(r.status, 503);
        assert!(
            r.text().starts_with("degraded: user data unreadable"),
            "{}",
            r.text()
        );
        assert!(r.text().contains("factory reset"), "{}", r.text());

        for pw in [label.as_str(), "violet lantern by the river", "admin"] {
            let r = c.login("admin", pw).await;
            assert_eq!(r.status, 503, "{pw}: {}", r.text());
            assert_eq!(r.json()["error"], "degraded");
            assert!(r.json()["message"]
                .as_str()
                .expect("message")
                .contains("factory reset"));
            assert!(r.set_cookies().is_empty());
        }
        let r = c.get("/login").await;
        assert_eq!(r.status, 503);
        assert!(r.text().contains("factory reset"), "the UI says what to do");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let log = d.log_text();
        assert!(!log.contains("panicked"), "{log}");
        assert_eq!(d.stop(), Some(0), "degraded daemon still stops cleanly");
    }
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let (_dir, d) = fresh("sigterm");
    assert_eq!(d.client().get("/healthz").await.status, 200);
    let log_path = d.log.clone();
    assert_eq!(d.stop(), Some(0));
    let log = std::fs::read_to_string(log_path).expect("log");
    assert!(log.contains("SIGTERM") && log.contains("stopped"), "{log}");
}

/// A stop request that arrives while the data DB is being opened (an init script's
/// `start; stop`, a supervisor's timeout) must not leave the box degraded: found by the
/// benchmark's start-time loop, which stopped the daemon as soon as its port accepted.
#[tokio::test]
async fn sigterm_during_startup_never_degrades_the_box() {
    use nix::sys::signal::{kill, Signal};
    use std::process::{Command, Stdio};
    let (dir, d) = fresh("early-stop");
    let label = initial(&d);
    drop(d);
    let port = |_: ()| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port()
    };
    let (http, https) = (port(()), port(()));
    for _ in 0..20 {
        let mut child = Command::new(pbx_e2e::daemon::binary())
            .args(["--dev", "--state-dir"])
            .arg(dir.path().join("state"))
            .args([
                "--http",
                &format!("127.0.0.1:{http}"),
                "--https",
                &format!("127.0.0.1:{https}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
            assert!(std::time::Instant::now() < deadline, "never listened");
            std::thread::sleep(Duration::from_millis(1));
        }
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        kill(pid, Signal::SIGTERM).expect("SIGTERM");
        let status = child.wait().expect("exit");
        assert_eq!(
            status.code(),
            Some(0),
            "a stop during start-up is a clean stop"
        );
    }
    let d = Daemon::start(&dir.path().join("state"));
    let r = d.client().get("/healthz").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"), "not degraded");
    assert_eq!(d.client().login("admin", &label).await.status, 200);
}
