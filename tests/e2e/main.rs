//! End-to-end tests of the real `pbx-authd` binary on loopback: one test binary, one
//! module per flow.

mod access;
mod admin;
mod browser;
mod cli;
pub mod clock;
mod device;
mod directory;
mod http_input;
mod keyboard;
mod login;
mod overlay;
mod password;
pub mod recovery;
mod security;
mod storage;
mod timeouts;
mod tls;
pub mod twofactor;
pub mod ui;
pub mod upgrade;
mod voice;
mod ways_back;

use pbx_e2e::{Client, Daemon, TempDir};

/// A fresh daemon on a fresh simulated board, with its state dir.
pub fn fresh(tag: &str) -> (TempDir, Daemon) {
    let dir = TempDir::new(tag);
    let d = Daemon::start(&dir.path().join("state"));
    assert!(
        d.initial_password.is_some(),
        "first start prints the initial password"
    );
    (dir, d)
}

pub fn initial(d: &Daemon) -> String {
    d.initial_password
        .clone()
        .expect("first start of this state dir")
}

/// Logs in as admin with the label password and replaces it with `new`; returns a
/// client that is signed out (the change ended the session).
pub async fn change_initial(d: &Daemon, new: &str) -> Client {
    let mut c = d.client();
    assert_eq!(c.login("admin", &initial(d)).await.status, 200);
    let r = c
        .post_json(
            "/api/v1/password",
            &serde_json::json!({"current_password": initial(d), "new_password": new}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    c
}

/// Each entry's `field` (`"event"`, `"detail"`, ...) of an audit trail as
/// `GET /api/v1/audit` answers it (newest first).
pub fn audit_field(audit: &serde_json::Value, field: &str) -> Vec<String> {
    audit
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e[field].as_str().map(str::to_string))
        .collect()
}
