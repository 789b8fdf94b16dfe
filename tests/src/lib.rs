//! Test harness for `pbx-e2e`: starts the real `pbx-authd` binary on ephemeral loopback
//! ports ([`Daemon`]), talks HTTP/HTTPS to it from a chosen loopback source address
//! ([`Client`]), and drives headless Chromium through chromedriver ([`webdriver`]).
//! Everything stays on 127.0.0.0/8.

pub mod certs;
pub mod client;
pub mod daemon;
pub mod ldap;
pub mod radius;
pub mod smtp;
pub mod totp;
pub mod webdriver;

pub use client::{Client, Resp};

use std::future::Future;
use std::time::{Duration, Instant};

/// The token of the link in a mail (`…?token=<43 characters>`), its soft line breaks
/// (quoted-printable `=\r\n`) joined.
pub fn link_token(mail: &str) -> String {
    let joined = mail.replace("=\r\n", "");
    let at = joined.find("token=").expect("a link with a token") + "token=".len();
    joined[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// How often [`poll_until`] looks again.
const POLL: Duration = Duration::from_millis(20);

/// Waits, without blocking the runtime, until `check` gives a value; at most `within`,
/// else the test fails naming `what` (and what `check` saw last, if it says so).
pub async fn poll_until<T>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} (waited {within:?})");
        tokio::time::sleep(POLL).await;
    }
}

/// [`poll_until`] for a check that awaits (a request, a connection).
pub async fn poll_until_async<T, F: Future<Output = Option<T>>>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} (waited {within:?})");
        tokio::time::sleep(POLL).await;
    }
}
pub use daemon::{Daemon, Opts};

/// Runs `tests/scripts/SCRIPT` with the daemon binary inside a private network
/// namespace (`unshare --net`: nothing there can reach another host) and checks that
/// it printed every line of `expected`; a panic with what it printed otherwise.
pub fn in_netns_expect(script: &str, tag: &str, expected: &[&str]) {
    let lines = in_netns(script, tag);
    for e in expected {
        assert!(
            lines.iter().any(|l| l == e),
            "missing {e:?} in:\n{}",
            lines.join("\n")
        );
    }
}

/// What `tests/scripts/SCRIPT` printed in a private network namespace (see
/// [`in_netns_expect`]).
pub fn in_netns(script: &str, tag: &str) -> Vec<String> {
    let path = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let dir = TempDir::new(tag);
    let out = std::process::Command::new("unshare")
        .args(["--net", "--", "bash", &path])
        .arg(daemon::binary())
        .arg(dir.path())
        .output()
        .expect("unshare runs (root is needed for a network namespace)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(|l| l.trim_end().to_string()).collect()
}
pub use smtp::SmtpServer;

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "pbx-e2e-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir must be creatable");
        TempDir(p)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("PBX_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
