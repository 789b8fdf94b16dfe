//! Test harness for `pbx-e2e`: starts the real `pbx-authd` binary on ephemeral loopback
//! ports ([`Daemon`]), talks HTTP/HTTPS to it from a chosen loopback source address
//! ([`Client`]), and drives headless Chromium through chromedriver ([`webdriver`]).
//! Everything stays on 127.0.0.0/8.

pub mod client;
pub mod daemon;
pub mod smtp;
pub mod totp;
pub mod webdriver;

pub use client::{Client, Resp};
pub use daemon::{Daemon, Opts};
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
