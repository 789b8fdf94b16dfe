//! The command line: check-config, provision, --help.

use std::process::Command;

use pbx_e2e::daemon::binary;
use pbx_e2e::TempDir;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary())
        .args(args)
        .output()
        .expect("run pbx-authd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_accepts_the_shipped_file_and_lists_every_problem() {
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rootfs-overlay/etc/pbx-authd/pbx-authd.toml"
    );
    let (code, out, _) = run(&["check-config", "--config", shipped]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with(": ok\n"), "{out}");

    let dir = TempDir::new("check-config");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nhttps = [\"443\"]\ncolour = 1\n[policy]\nlockout_failures = 0\n[storage]\ncache_capacity = 99999999\n",
    )
    .expect("write");
    let (code, out, _) = run(&["check-config", "--config", bad.to_str().expect("utf-8")]);
    assert_eq!(code, 1);
    for key in [
        "server.colour",
        "server.https[0]",
        "policy.lockout_failures",
        "storage.cache_capacity",
    ] {
        assert!(
            out.contains(&format!(": {key}: ")),
            "{key} missing in:\n{out}"
        );
    }
    assert!(out.contains("4 problem(s)"), "{out}");

    let (code, out, _) = run(&["check-config", "--config", "/nonexistent/pbx.toml"]);
    assert_eq!(code, 1);
    assert!(out.contains("cannot read config file"), "{out}");
}

#[test]
fn provision_prints_the_password_once_and_refuses_to_overwrite() {
    let dir = TempDir::new("provision");
    let db = dir.path().join("board.db");
    let db = db.to_str().expect("utf-8");
    let args = [
        "provision",
        "--board-db",
        db,
        "--model",
        "S50",
        "--serial",
        "S50-000123",
        "--mac",
        "02:00:5e:00:53:01",
    ];
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let pw = out
        .strip_prefix("initial admin password: ")
        .and_then(|s| s.strip_suffix('\n'))
        .expect("one line with the password");
    assert_eq!(pw.len(), 14);
    // It timed one hash at the default cost, for the factory to see a slow board.
    let timing = err
        .lines()
        .find_map(|l| l.strip_prefix("argon2id hash on this machine: "))
        .expect("the hash timing on stderr");
    let timing: serde_json::Value = serde_json::from_str(timing).expect("json");
    assert_eq!(
        (timing["m_kib"].as_u64(), timing["t"].as_u64()),
        (Some(19_456), Some(2))
    );
    assert!(
        timing["ms_per_hash"].as_f64().is_some_and(|ms| ms > 0.0),
        "{timing}"
    );
    // Only the hash is on flash.
    for e in std::fs::read_dir(db).expect("db dir").flatten() {
        if e.path().is_file() {
            let bytes = std::fs::read(e.path()).expect("read");
            assert!(
                !bytes.windows(pw.len()).any(|w| w == pw.as_bytes()),
                "plain password in {:?}",
                e.path()
            );
        }
    }
    let (code, out, err) = run(&args);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "no second password: {out}");
    assert!(err.contains("already provisioned"), "{err}");

    let (code, _, err) = run(&[
        "provision",
        "--board-db",
        "/tmp/x",
        "--model",
        "S",
        "--serial",
        "1",
        "--mac",
        "nope",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("not a MAC address"), "{err}");
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["check-config", "--help"],
        &["provision", "--help"],
    ] {
        let (code, out, _) = run(args);
        assert_eq!(code, 0, "{args:?}");
        assert!(out.contains("Usage:"), "{args:?}: {out}");
    }
    let (_, out, _) = run(&["--help"]);
    assert!(
        out.contains("--dev") && out.contains("check-config") && out.contains("provision"),
        "{out}"
    );
}

/// The README's first command: `--dev` with the default, relative state dir.
#[test]
fn dev_mode_with_the_default_state_dir_serves_the_login_page() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = TempDir::new("default-state-dir");
    let mut child = Command::new(binary())
        .current_dir(dir.path())
        .args(["--dev", "--http", "127.0.0.1:0", "--https", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut http = None;
    let mut lines = Vec::new();
    for line in stdout.lines() {
        let line = line.expect("line");
        if let Some(a) = line.strip_prefix("listening: http://") {
            http = Some(a.trim_end_matches('/').to_string());
            break;
        }
        lines.push(line);
    }
    let Some(http) = http else {
        let mut err = String::new();
        let _ = child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err);
        panic!("did not start: {lines:?}\n{err}");
    };
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("initial admin password: ")),
        "{lines:?}"
    );
    let mut s = std::net::TcpStream::connect(&http).expect("connect");
    s.write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        dir.path().join(".pbx-dev/board.db").exists(),
        "state in ./.pbx-dev"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert_eq!(child.wait().expect("exit").code(), Some(0));
}
