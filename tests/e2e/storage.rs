//! Flash: acknowledged writes survive SIGKILL; a damaged data DB gives the degraded
//! state, never a crash and never a default password.

use std::time::Duration;

use pbx_e2e::Daemon;

use pbx_e2e::TempDir;

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

/// A tmpfs of `size` mounted on `at` for one test (the data DB's own small "flash");
/// unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).expect("mount point");
        let st = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("mount runs (root is needed to mount a tmpfs)");
        assert!(st.success(), "mount -t tmpfs on {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system holding `dir` with one file; returns its path.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let p = dir.join("filler");
    let mut f = std::fs::File::create(&p).expect("filler");
    let block = [0u8; 4096];
    loop {
        if let Err(e) = f.write_all(&block) {
            assert_eq!(e.raw_os_error(), Some(28), "ENOSPC: {e}");
            return p;
        }
    }
}

#[tokio::test]
async fn flash_faults_fail_cleanly_and_the_next_write_succeeds() {
    const PW: &str = "violet lantern by the river";
    let dir = TempDir::new("faults");
    let state = dir.path().join("state");
    // The data DB on its own small tmpfs: a real file system that really fills up.
    let flash = Tmpfs::mount(&state.join("data.db"), "4m");
    let d = Daemon::start(&state);
    change_initial(&d, PW).await;
    let mut c = d.client();
    assert_eq!(c.login("admin", PW).await.status, 200);
    let profile = |mail: &str| serde_json::json!({ "email": mail });
    let mut acked = "before@pbx.test".to_string();
    assert_eq!(
        c.send_json("PUT", "/api/v1/profile", &profile(&acked))
            .await
            .status,
        200
    );

    // Full flash: writes go on into log space sled allocated earlier; the first one
    // that needs new space is refused, whole.
    let filler = fill(&flash.0);
    let mut refused = None;
    for n in 0..20_000 {
        let mail = format!("fill{n}@pbx.test");
        let r = c.send_json("PUT", "/api/v1/profile", &profile(&mail)).await;
        if r.status != 200 {
            refused = Some((r, mail));
            break;
        }
        acked = mail;
    }
    let (r, refused_mail) = refused.expect("a write on a full flash is refused");
    assert_eq!(r.status, 507, "{}", r.text());
    assert_eq!(r.json()["error"], "storage_full");
    assert!(
        r.json()["message"].as_str().unwrap_or("").contains("full"),
        "{}",
        r.text()
    );
    let r = c
        .post_json(
            "/api/v1/password",
            &serde_json::json!({"current_password": PW, "new_password": "a refused new password"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (507, "storage_full".into())
    );
    // Reads and sign-in go on (the admin can reach the box to free space).
    let r = c.get("/api/v1/profile").await;
    assert_eq!(
        (r.status, r.json()["email"].clone()),
        (200, acked.clone().into())
    );
    let mut other = d.client_from("127.0.0.9");
    assert_eq!(other.login("admin", PW).await.status, 200);
    assert_eq!(
        d.client_from("127.0.0.10")
            .login("admin", "a refused new password")
            .await
            .status,
        401
    );
    // Space freed: the next write works.
    std::fs::remove_file(filler).expect("free space");
    acked = "after-full@pbx.test".into();
    assert_eq!(
        c.send_json("PUT", "/api/v1/profile", &profile(&acked))
            .await
            .status,
        200
    );
    assert_eq!(
        c.get("/api/v1/profile").await.json()["email"],
        acked.as_str()
    );

    // One failing write (EIO) injected into the running daemon.
    tokio::time::sleep(Duration::from_millis(1500)).await; // sled's 1 s flush is idle
    let mut tracer = std::process::Command::new("strace")
        .args(["-f", "-o", "/dev/null", "-e", "trace=pwrite64"])
        .args(["-e", "inject=pwrite64:error=EIO:when=1", "-p"])
        .arg(d.pid().to_string())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("strace runs");
    let mut attached = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(tracer.stderr.as_mut().expect("stderr")),
        &mut attached,
    )
    .expect("strace reports the attach");
    assert!(attached.contains("attached"), "{attached}");
    let r = c
        .send_json("PUT", "/api/v1/profile", &profile("eio@pbx.test"))
        .await;
    let _ = tracer.kill();
    let _ = tracer.wait();
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.json()["error"], "storage_error");
    let r = c.get("/api/v1/profile").await;
    assert_eq!(
        r.json()["email"],
        acked.as_str(),
        "the failed write is nowhere"
    );
    acked = "after-eio@pbx.test".into();
    assert_eq!(
        c.send_json("PUT", "/api/v1/profile", &profile(&acked))
            .await
            .status,
        200
    );

    // After a restart: everything acknowledged, nothing refused.
    assert_eq!(d.stop(), Some(0));
    let d = Daemon::start(&state);
    let mut c = d.client();
    assert_eq!(c.login("admin", PW).await.status, 200);
    let email = c.get("/api/v1/profile").await.json()["email"].clone();
    assert_eq!(email, acked.as_str());
    assert_ne!(email, refused_mail.as_str());
    assert_eq!(d.stop(), Some(0));
}

/// A box that boots with its flash full (a voicemail archive filled it): sled's open
/// writes, so nothing could be opened and the admin was locked out. Now the factory data
/// and the user data are read from RAM copies: sign-in works, writes answer 507, and
/// once space is freed the next write works without a restart.
#[tokio::test]
async fn a_box_that_starts_with_a_full_flash_lets_the_admin_in() {
    const PW: &str = "violet lantern by the river";
    let dir = TempDir::new("fullstart");
    let state = dir.path().join("state");
    let data = Tmpfs::mount(&state.join("data.db"), "4m");
    let board = Tmpfs::mount(&state.join("board.db"), "4m");
    let d = Daemon::start(&state);
    change_initial(&d, PW).await;
    let mut c = d.client();
    assert_eq!(c.login("admin", PW).await.status, 200);
    let mail = serde_json::json!({ "email": "before@pbx.test" });
    assert_eq!(
        c.send_json("PUT", "/api/v1/profile", &mail).await.status,
        200
    );
    assert_eq!(d.stop(), Some(0));
    let fillers = [fill(&data.0), fill(&board.0)];

    let d = Daemon::start(&state);
    let mut c = d.client();
    assert_eq!(c.get("/healthz").await.status, 200);
    let r = c.login("admin", PW).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["must_change_password"], false);
    assert_eq!(
        c.get("/api/v1/profile").await.json()["email"],
        "before@pbx.test"
    );
    let after = serde_json::json!({ "email": "after@pbx.test" });
    let r = c.send_json("PUT", "/api/v1/profile", &after).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (507, "storage_full".into())
    );
    for f in fillers {
        std::fs::remove_file(f).expect("free space");
    }
    assert_eq!(
        c.send_json("PUT", "/api/v1/profile", &after).await.status,
        200,
        "flash again, without a restart"
    );
    assert_eq!(d.stop(), Some(0));
    let d = Daemon::start(&state);
    let mut c = d.client();
    assert_eq!(c.login("admin", PW).await.status, 200);
    assert_eq!(
        c.get("/api/v1/profile").await.json()["email"],
        "after@pbx.test"
    );
    assert_eq!(d.stop(), Some(0));
}

/// First boot on a full flash: nothing to read yet, so sign-in cannot work; the box says
/// why and does not advise a factory reset, which would not help.
#[tokio::test]
async fn first_boot_on_a_full_flash_says_so_and_does_not_advise_a_reset() {
    let dir = TempDir::new("fullfirst");
    let state = dir.path().join("state");
    let data = Tmpfs::mount(&state.join("data.db"), "1m");
    let filler = fill(&data.0);
    let d = Daemon::start(&state);
    let mut c = d.client();
    let r = c.get("/healthz").await;
    assert_eq!(r.status, 503);
    assert!(r.text().contains("the flash is full"), "{}", r.text());
    let r = c.get("/login").await;
    assert_eq!(r.status, 503);
    assert!(r.text().contains("storage is full"), "{}", r.text());
    assert!(!r.text().contains("hold the reset button"), "{}", r.text());
    let r = c.login("admin", &initial(&d)).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (503, "degraded".into())
    );
    // Space freed, service restarted: first boot completes.
    std::fs::remove_file(filler).expect("free space");
    assert_eq!(d.stop(), Some(0));
    let d = Daemon::start(&state);
    assert_eq!(d.client().get("/healthz").await.status, 200);
    assert_eq!(d.stop(), Some(0));
}
