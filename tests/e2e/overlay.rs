//! The rootfs overlay: scripts pass shellcheck, the overlay adds no system directories,
//! and the busybox init script starts, reloads and stops the real daemon.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pbx_e2e::daemon::binary;
use pbx_e2e::{Client, TempDir};

fn overlay() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rootfs-overlay")
}

fn scripts() -> Vec<PathBuf> {
    let o = overlay();
    let mut v: Vec<PathBuf> = ["etc/init.d", "etc/rc.button"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(o.join(d))
                .expect("overlay dir")
                .flatten()
                .map(|e| e.path())
        })
        .collect();
    // The updater's mark-good hook.
    v.push(o.join("etc/pbx-authd/mark-good"));
    v.sort();
    v
}

#[test]
fn overlay_scripts_pass_shellcheck_and_add_no_system_dirs() {
    let list = scripts();
    assert!(list.len() >= 3, "{list:?}");
    let out = Command::new("shellcheck")
        .args(&list)
        .output()
        .expect("shellcheck runs (make test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for d in ["bin", "lib", "sbin", "usr/bin", "usr/lib", "usr/sbin"] {
        assert!(!overlay().join(d).exists(), "overlay must not ship /{d}");
    }
    for s in &list {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s).expect("script").permissions().mode();
        assert!(mode & 0o111 != 0, "{} is executable", s.display());
    }
    // The systemd unit leaves Asterisk the CPU and bounds the daemon's memory.
    let unit = std::fs::read_to_string(overlay().join("etc/systemd/system/pbx-authd.service"))
        .expect("unit");
    for line in [
        "CPUWeight=50",
        "Nice=5",
        "MemoryMax=128M",
        "MemoryHigh=112M",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
    }
    // procd sets the same nice value.
    let procd = std::fs::read_to_string(overlay().join("etc/init.d/pbx-authd")).expect("procd");
    assert!(procd.contains("procd_set_param nice 5"), "{procd}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

fn busybox() -> String {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("busybox not found: install busybox-static (make test does)")
}

#[tokio::test]
async fn busybox_init_script_starts_reloads_and_stops_the_daemon() {
    let root = TempDir::new("rootfs");
    let r = root.path();
    // A temporary root: the overlay plus a provisioned board and a config for loopback.
    let status = Command::new("cp")
        .arg("-a")
        .arg(overlay().join("etc"))
        .arg(r)
        .status()
        .expect("cp");
    assert!(status.success());
    for d in ["factory", "var/lib/pbx-authd", "var/run", "var/log", "bin"] {
        std::fs::create_dir_all(r.join(d)).expect("mkdir");
    }
    let prov = Command::new(binary())
        .args(["provision", "--board-db"])
        .arg(r.join("factory/board.db"))
        .args([
            "--model",
            "S50",
            "--serial",
            "S50-INIT",
            "--mac",
            "02:00:00:00:50:01",
        ])
        .output()
        .expect("provision");
    assert!(prov.status.success(), "{prov:?}");
    let (http, https) = (free_port(), free_port());
    let config = r.join("etc/pbx-authd/pbx-authd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nhttp = [\"127.0.0.1:{http}\"]\nhttps = [\"127.0.0.1:{https}\"]\n\
             [storage]\nboard_db = \"{r}/factory/board.db\"\ndata_db = \"{r}/var/lib/pbx-authd/data.db\"\n\
             state_dir = \"{r}/var/lib/pbx-authd\"\n[control]\nsocket = \"{r}/var/run/pbx-authd.sock\"\n",
            r = r.display()
        ),
    )
    .expect("config");
    // busybox's start-stop-daemon, not Debian's.
    std::os::unix::fs::symlink(busybox(), r.join("bin/start-stop-daemon")).expect("symlink");
    let script = r.join("etc/init.d/S50pbx-authd");
    let run = |action: &str| {
        Command::new(busybox())
            .arg("sh")
            .arg(&script)
            .arg(action)
            .env("PATH", format!("{}:/usr/bin:/bin", r.join("bin").display()))
            .env("DAEMON", binary())
            .env("CONFIG", &config)
            .env("PIDFILE", r.join("var/run/pbx-authd.pid"))
            .env("LOGFILE", r.join("var/log/pbx-authd.log"))
            .output()
            .expect("init script runs")
    };
    let log = || std::fs::read_to_string(r.join("var/log/pbx-authd.log")).unwrap_or_default();
    let addr = format!("127.0.0.1:{http}").parse().expect("addr");

    let out = run("start");
    assert!(out.status.success(), "{out:?}");
    pbx_e2e::poll_until_async(
        Duration::from_secs(15),
        "daemon did not come up",
        || async { tokio::net::TcpStream::connect(addr).await.ok().map(drop) },
    )
    .await;
    let h = Client::http(addr).get("/healthz").await;
    assert_eq!((h.status, h.text().as_str()), (200, "ok\n"), "{}", log());
    let pid: i32 = std::fs::read_to_string(r.join("var/run/pbx-authd.pid"))
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid");
    // The recorded pid is the daemon itself, at nice 5: Asterisk (nice 0) goes first
    // (5 above what this test was started with: `nice make test` adds to both).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect(")") + 1..]
        .split_whitespace()
        .collect();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm");
    let own = std::fs::read_to_string("/proc/self/stat").expect("own stat");
    let base: i32 = own[own.rfind(')').expect(")") + 1..]
        .split_whitespace()
        .nth(19 - 3)
        .and_then(|n| n.parse().ok())
        .expect("own nice");
    let want = (base + 5).min(19).to_string();
    assert_eq!(
        (comm.trim(), fields[19 - 3]),
        ("pbx-authd", want.as_str()),
        "{stat}"
    );
    let out = run("start");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already running"),
        "{out:?}"
    );

    let out = run("reload");
    assert!(out.status.success(), "{out:?}");
    pbx_e2e::poll_until(Duration::from_secs(10), "no reload in the log", || {
        log()
            .contains("configuration and certificate reloaded")
            .then_some(())
    })
    .await;
    assert_eq!(
        Client::http(addr).get("/healthz").await.status,
        200,
        "same process after reload"
    );

    // A broken config is refused by reload and the running daemon keeps its own.
    let good = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("{good}bogus_key = 1\n")).expect("break config");
    let out = run("reload");
    assert!(
        !out.status.success(),
        "reload must refuse a bad config: {out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("bogus_key"),
        "{out:?}"
    );
    std::fs::write(&config, good).expect("restore");

    let out = run("stop");
    assert!(out.status.success(), "{out:?}");
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err(),
        "process gone"
    );
    assert!(!r.join("var/run/pbx-authd.pid").exists());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "port closed"
    );
    assert!(
        log().contains("SIGTERM") && log().contains("stopped"),
        "{}",
        log()
    );
}
