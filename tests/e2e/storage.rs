//! Flash: acknowledged writes survive SIGKILL; a damaged data DB gives the degraded
//! state, never a crash and never a default password.

use std::time::{Duration, Instant};

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
        let deadline = Instant::now() + Duration::from_secs(10);
        // Millisecond steps: the stop must come while the data DB is being opened.
        while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
            assert!(Instant::now() < deadline, "never listened");
            tokio::time::sleep(Duration::from_millis(1)).await;
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
async fn a_full_flash_refuses_a_write_whole_and_frees_up_cleanly() {
    const PW: &str = "violet lantern by the river";
    let dir = TempDir::new("faults");
    let state = dir.path().join("state");
    // The data DB on its own small tmpfs: a real file system that really fills up.
    let flash = Tmpfs::mount(&state.join("data.db"), "4m");
    let d = Daemon::start(&state);
    change_initial(&d, PW).await;
    let mut c = d.client();
    assert_eq!(c.login("admin", PW).await.status, 200);
    let profile = |mail: &str| serde_json::json!({ "email": mail, "current_password": PW });
    // The fill loop writes SMTP settings that differ only in their timeout: where mail
    // goes stays the same, so no password check per write, and thousands of writes stay
    // quick. The first save (where mail goes) needs the password.
    let smtp = |timeout: u64| {
        serde_json::json!({"host": "mail.pbx.test", "port": 587, "security": "starttls",
            "username": "", "password": "", "from": "pbx@pbx.test", "timeout_s": timeout})
    };
    let mut first = smtp(1);
    first["current_password"] = PW.into();
    let r = c.send_json("PUT", "/api/v1/settings/smtp", &first).await;
    assert_eq!(r.status, 200, "{}", r.text());
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
    let mut acked_timeout = 1;
    for n in 0..20_000u64 {
        let timeout = 1 + (n + 1) % 60;
        let r = c
            .send_json("PUT", "/api/v1/settings/smtp", &smtp(timeout))
            .await;
        if r.status != 200 {
            refused = Some((r, timeout));
            break;
        }
        acked_timeout = timeout;
    }
    let (r, refused_timeout) = refused.expect("a write on a full flash is refused");
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
    let r = c
        .send_json("PUT", "/api/v1/profile", &profile("refused@pbx.test"))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (507, "storage_full".into())
    );
    // Reads and sign-in go on (the admin can reach the box to free space).
    assert_eq!(
        c.get("/api/v1/settings/smtp").await.json()["timeout_s"],
        acked_timeout
    );
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

    // After a restart: everything acknowledged, nothing refused.
    assert_eq!(d.stop(), Some(0));
    let d = Daemon::start(&state);
    let mut c = d.client();
    assert_eq!(c.login("admin", PW).await.status, 200);
    let email = c.get("/api/v1/profile").await.json()["email"].clone();
    assert_eq!(email, acked.as_str());
    let timeout = c.get("/api/v1/settings/smtp").await.json()["timeout_s"].clone();
    assert_eq!(timeout, acked_timeout);
    assert_ne!(timeout, refused_timeout);
    assert_eq!(d.stop(), Some(0));
}

#[tokio::test]
async fn an_io_error_fails_one_write_cleanly_and_the_next_write_succeeds() {
    const PW: &str = "violet lantern by the river";
    let dir = TempDir::new("faults-eio");
    let state = dir.path().join("state");
    let d = Daemon::start(&state);
    change_initial(&d, PW).await;
    let mut c = d.client();
    assert_eq!(c.login("admin", PW).await.status, 200);
    let profile = |mail: &str| serde_json::json!({ "email": mail, "current_password": PW });
    let mut acked = "before@pbx.test".to_string();
    assert_eq!(
        c.send_json("PUT", "/api/v1/profile", &profile(&acked))
            .await
            .status,
        200
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

    // After a restart: the write after the fault is there, the failed one is not.
    assert_eq!(d.stop(), Some(0));
    let d = Daemon::start(&state);
    let mut c = d.client();
    assert_eq!(c.login("admin", PW).await.status, 200);
    let email = c.get("/api/v1/profile").await.json()["email"].clone();
    assert_eq!(email, acked.as_str());
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
    let mail = serde_json::json!({ "email": "before@pbx.test", "current_password": PW });
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
    // The RAM copy of the password hashes is as private as the flash.
    let copy = std::env::temp_dir().join(format!("pbx-authd-{}-data-readonly", d.pid()));
    assert!(
        copy.is_dir(),
        "{} exists while the flash is full",
        copy.display()
    );
    crate::security::assert_private(&copy);
    assert_eq!(
        c.get("/api/v1/profile").await.json()["email"],
        "before@pbx.test"
    );
    let after = serde_json::json!({ "email": "after@pbx.test", "current_password": PW });
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

/// A reset asked for on a full flash (the moment the button is the only way back):
/// the data DB goes first to make room for the marker, and the box comes back fresh.
#[tokio::test]
async fn factory_reset_on_a_full_flash_erases_and_comes_back() {
    const PW: &str = "violet lantern by the river";
    let dir = TempDir::new("reset-full");
    let state = dir.path().join("state");
    let _flash = Tmpfs::mount(&state, "8m");
    let mut d = Daemon::start(&state);
    let label = d.initial_password.clone().expect("first start");
    change_initial(&d, PW).await;
    // Voicemail (an erase path) filled the flash.
    let filler = fill(&state.join("userfiles"));
    let (code, answer) = d.ctl(&["factory-reset", "--yes"]);
    assert_eq!(code, 0, "{answer}");
    d.wait_for_start();
    let mut c = d.client();
    assert_eq!(
        c.login("admin", PW).await.status,
        401,
        "old password erased"
    );
    let r = c.login("admin", &label).await;
    assert_eq!(
        r.status,
        200,
        "label password after the reset: {}",
        r.text()
    );
    assert_eq!(r.json()["must_change_password"], true);
    assert!(!state.join("reset-pending").exists());
    assert!(
        !filler.exists(),
        "the voicemail that filled the flash is erased"
    );
    assert_eq!(d.stop(), Some(0));
}

/// The data DB cannot be removed (here: one of its files is immutable): the marker stays, the
/// box does not reboot into the old password, it says why; at the next start the same.
#[tokio::test]
async fn a_reset_that_cannot_erase_the_data_db_keeps_the_marker_and_says_so() {
    const PW: &str = "violet lantern by the river";
    let dir = TempDir::new("reset-ro");
    let state = dir.path().join("state");
    let d = Daemon::start(&state);
    let label = d.initial_password.clone().expect("first start");
    change_initial(&d, PW).await;
    // One file of the data DB that cannot be removed (ext4 immutable flag).
    let conf = state.join("data.db/conf");
    let ro = Immutable::set(&conf);
    let pid = d.pid();
    let (code, answer) = d.ctl(&["factory-reset", "--yes"]);
    assert_eq!(code, 0, "{answer}");
    let status = pbx_e2e::poll_until(Duration::from_secs(10), "no failed-reset report", || {
        let (_, s) = d.ctl(&["status"]);
        (s["state"] == "degraded").then_some(s)
    })
    .await;
    assert_eq!(d.pid(), pid, "no reboot when nothing was erased");
    let reason = status["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("factory reset could not"), "{status}");
    assert!(state.join("reset-pending").exists(), "marker kept");
    assert_eq!(
        std::fs::read_to_string(state.join("leds/status")).unwrap_or_default(),
        "error"
    );
    let r = d.client().login("admin", PW).await;
    assert_eq!(r.status, 503, "{}", r.text());
    let h = d.client().get("/healthz").await;
    assert_eq!(h.status, 503);
    assert!(h.text().contains("factory reset could not"), "{}", h.text());
    assert_eq!(d.stop(), Some(0));

    // The next start finds the marker, cannot erase either: degraded, not a crash loop.
    let d = Daemon::start(&state);
    let h = d.client().get("/healthz").await;
    assert_eq!(h.status, 503, "{}", h.text());
    assert!(h.text().contains("factory reset could not"), "{}", h.text());
    assert_eq!(d.stop(), Some(0));

    // Once the flash can be written, the interrupted reset finishes at start.
    drop(ro);
    let d = Daemon::start(&state);
    let r = d.client().login("admin", &label).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["must_change_password"], true);
    assert!(!state.join("reset-pending").exists());
}

/// `chattr +i` on a file for one test; cleared on drop.
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn set(p: &std::path::Path) -> Immutable {
        let st = std::process::Command::new("chattr")
            .arg("+i")
            .arg(p)
            .status()
            .expect("chattr runs (e2fsprogs; root)");
        assert!(st.success(), "chattr +i {}", p.display());
        Immutable(p.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}
