//! `pbx-authd ctl selftest`: what an A/B updater (RAUC, SWUpdate, Mender) asks before it
//! commits a new firmware slot, answered by the running daemon (its stores are open and
//! locked: no second process could read them). Each check names what it looked at; the
//! answer's `ok` is whether all passed, and `ctl` exits 0 or 1 with it.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::app::App;
use crate::model::{Health, ADMIN};

/// One check's outcome: its name, whether it passed, and what it found, in words.
fn check(name: &str, outcome: Result<String, String>) -> Value {
    match outcome {
        Ok(detail) => json!({"check": name, "ok": true, "detail": detail}),
        Err(detail) => json!({"check": name, "ok": false, "detail": detail}),
    }
}

pub async fn run(app: &Arc<App>) -> Value {
    let config = app.config();
    let checks = vec![
        check("stores", stores(app).await),
        check(
            "board",
            app.board_info()
                .map(|b| format!("factory data of {} {}", b.model, b.serial))
                .ok_or_else(|| "no factory data: the box needs `pbx-authd provision`".into()),
        ),
        check("hash", hash_memory(app, meminfo_kib("MemTotal:"))),
        check(
            "tls",
            crate::tls::check(&config.tls)
                .map(|()| format!("{} and its key load", config.tls.cert.display()))
                .map_err(|e| e.to_string()),
        ),
        check("config", config_file(app)),
    ];
    let ok = checks.iter().all(|c| c["ok"] == true);
    json!({"ok": ok, "action": "selftest", "checks": checks})
}

/// The data DB is open and readable, and `admin` is in it.
async fn stores(app: &App) -> Result<String, String> {
    if let Health::Degraded(why) = app.health() {
        return Err(format!("degraded: {why}"));
    }
    let data = app.data().map_err(|e| e.to_string())?;
    match data.account(ADMIN).await {
        Ok(Some(_)) => Ok(format!(
            "the data DB reads, format {}, admin present",
            crate::store::FORMAT
        )),
        Ok(None) => Err("the admin account is missing".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Every hash the daemon runs at once (`hash_concurrency`, and the trusted lanes' one)
/// fits in the box's memory with room to spare (half of it: Asterisk and the rest of
/// the box need the other half).
fn hash_memory(app: &App, total_kib: Option<u64>) -> Result<String, String> {
    let p = &app.config().policy;
    let need = u64::from(p.hash_cost.m_kib) * hashes_at_once(p);
    let Some(total) = total_kib else {
        return Ok(format!(
            "{need} KiB for hashing; the box's memory is unknown"
        ));
    };
    let detail = format!(
        "{} hash(es) of {} KiB = {need} KiB of {total} KiB",
        hashes_at_once(p),
        p.hash_cost.m_kib
    );
    if need * 2 <= total {
        Ok(detail)
    } else {
        Err(format!(
            "{detail}: more than half the memory (lower policy.argon2_m_kib or \
             policy.hash_concurrency)"
        ))
    }
}

/// Hashes that may run at once: `hash_concurrency` workers and the trusted lanes' own.
fn hashes_at_once(p: &crate::config::Policy) -> u64 {
    p.hash_concurrency as u64 + 1
}

/// The config file the daemon was started with still validates (the next start, or a
/// SIGHUP, would read it).
fn config_file(app: &App) -> Result<String, String> {
    let Some(path) = app.config_path() else {
        return Ok("the embedded config (--dev)".into());
    };
    crate::config::Config::load(path)
        .map(|_| format!("{} validates", path.display()))
        .map_err(|p| format!("{}: {p}", path.display()))
}

/// A field of /proc/meminfo, in KiB.
fn meminfo_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::testkit::TestApp;

    #[test]
    fn hashing_that_needs_more_than_half_the_memory_fails_the_check() {
        let t = TestApp::new("selftest-memory");
        let p = &t.app.config().policy;
        let need = u64::from(p.hash_cost.m_kib) * (p.hash_concurrency as u64 + 1);
        assert!(hash_memory(&t.app, Some(need * 2)).is_ok());
        let refused = hash_memory(&t.app, Some(need * 2 - 1)).expect_err("too little memory");
        assert!(refused.contains("lower policy.argon2_m_kib"), "{refused}");
        assert!(
            hash_memory(&t.app, None).is_ok(),
            "unknown memory is no failure"
        );
    }

    #[tokio::test]
    async fn a_healthy_box_passes_and_a_broken_key_fails_by_name() {
        let t = TestApp::ready("selftest").await;
        let tls = crate::tls::Tls::new(t.app.config().tls.clone(), &["localhost".into()]);
        assert!(tls.is_ok());
        let answer = run(&t.app).await;
        assert_eq!(answer["ok"], true, "{answer}");
        std::fs::write(&t.app.config().tls.key, "not a key").expect("break the key");
        let answer = run(&t.app).await;
        assert_eq!(answer["ok"], false, "{answer}");
        let failed: Vec<&str> = answer["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .filter(|c| c["ok"] == false)
            .filter_map(|c| c["check"].as_str())
            .collect();
        assert_eq!(failed, ["tls"], "{answer}");
    }
}
