//! Voice first (issue 14): the daemon's hashing gives every core to the PBX first, and
//! `bench-hash` tells what one hash costs on the machine it runs on.

use std::process::Command;

use pbx_e2e::daemon::binary;
use pbx_e2e::Daemon;

use crate::fresh;

/// `(name, policy, nice)` of each thread of `d`, from `/proc/<pid>/task/*/stat`
/// (fields 2, 41 and 19; policy 0 = SCHED_OTHER, 5 = SCHED_IDLE).
fn threads(d: &Daemon) -> Vec<(String, u32, i32)> {
    let dir = format!("/proc/{}/task", d.pid());
    let mut out = Vec::new();
    for task in std::fs::read_dir(dir).expect("task dir") {
        let path = task.expect("task").path().join("stat");
        let Ok(stat) = std::fs::read_to_string(&path) else {
            continue; // the thread ended meanwhile
        };
        let open = stat.find('(').expect("(");
        let close = stat.rfind(')').expect(")");
        let name = stat[open + 1..close].to_string();
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // f[0] is field 3.
        out.push((
            name,
            f[41 - 3].parse().expect("policy"),
            f[19 - 3].parse().expect("nice"),
        ));
    }
    out
}

/// This process's nice, from `/proc/self/stat` (field 19).
fn inherited_nice() -> i32 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 1..];
    rest.split_whitespace()
        .nth(19 - 3)
        .and_then(|n| n.parse().ok())
        .expect("nice")
}

#[tokio::test]
async fn hashing_threads_run_under_sched_idle_and_the_http_threads_do_not() {
    let (_dir, d) = fresh("sched-idle");
    assert_eq!(
        d.ctl(&["status"]).1["hash_priority"],
        serde_json::json!(null)
    );
    let mut c = d.client();
    // A wrong password: one argon2 verification; the worker then stays 10 s idle.
    assert_eq!(c.login("admin", "not the password").await.status, 401);
    let all = threads(&d);
    // The daemon inherits this test's nice (0, or what `nice make test` gave).
    let base = inherited_nice();
    let hashing: Vec<_> = all.iter().filter(|t| t.0 == "argon2").collect();
    assert!(!hashing.is_empty(), "no hashing thread: {all:?}");
    for t in &hashing {
        assert_eq!(
            (t.1, t.2),
            (5, base),
            "hashing thread not SCHED_IDLE: {all:?}"
        );
    }
    // Everything else (the runtime that answers HTTP, /healthz, the button) is normal.
    for t in all.iter().filter(|t| t.0 != "argon2") {
        assert_eq!((t.1, t.2), (0, base), "{all:?}");
    }
    assert_eq!(d.ctl(&["status"]).1["hash_priority"], "idle");
    assert_eq!(d.client().get("/healthz").await.status, 200);
}

fn bench_hash(config: &str) -> (bool, String, String) {
    let dir = pbx_e2e::TempDir::new("bench-hash");
    let path = dir.path().join("pbx-authd.toml");
    std::fs::write(&path, config).expect("config");
    let out = Command::new(binary())
        .args(["bench-hash", "--rounds", "3", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn bench_hash_prints_the_time_of_one_hash_with_the_configured_parameters() {
    let (ok, stdout, stderr) = bench_hash("[policy]\nargon2_m_kib = 7168\nargon2_t = 5\n");
    assert!(ok, "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(v["algorithm"], "argon2id");
    assert_eq!(
        (v["m_kib"].as_u64(), v["t"].as_u64(), v["p"].as_u64()),
        (Some(7168), Some(5), Some(1))
    );
    assert_eq!(v["rounds"], 3);
    let ms = v["ms_per_hash"].as_f64().expect("ms_per_hash");
    assert!(ms > 0.0, "{v}");
    assert_eq!(v["over_1s"], ms > 1000.0, "{v}");

    // Below OWASP's minimums: refused with the key, nothing timed.
    let (ok, stdout, stderr) = bench_hash("[policy]\nargon2_m_kib = 8192\nargon2_t = 1\n");
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("policy.argon2_m_kib") && stderr.contains("below OWASP"),
        "{stderr}"
    );
}
