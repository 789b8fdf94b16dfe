//! In-process test kit for the flows: a real [`App`] on a temporary sled data DB, a
//! simulated board and a [`ManualClock`] — no HTTP, no daemon process.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use pbx_board::{BoardProfile, SimBoard};

use crate::app::App;
use crate::auth::Secret;
use crate::clock::ManualClock;
use crate::config::Config;
use crate::model::BoardInfo;

/// The password on the simulated label.
pub const LABEL: &str = "label password 4711";
/// What the tests change it to.
pub const ADMIN_PW: &str = "amber tram over the bridge";

pub struct TestApp {
    pub app: Arc<App>,
    pub clock: Arc<ManualClock>,
    dir: PathBuf,
}

pub fn secret(s: &str) -> Secret {
    Secret::new(s.to_string())
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

impl TestApp {
    /// A fresh box: provisioned, first boot done (admin with the label password).
    pub fn new(tag: &str) -> TestApp {
        TestApp::with_data(tag, |_| {})
    }

    /// [`TestApp::new`] on a data DB that `prepare` wrote first (as an earlier or a
    /// later firmware left it).
    pub fn with_data(tag: &str, prepare: impl FnOnce(&crate::store::DataDb)) -> TestApp {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pbx-flows-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let a = "127.0.0.1:0".parse().expect("addr");
        let config = Config::dev(&dir, a, a, None).expect("dev config");
        {
            let guard = crate::app::open_guard_path(&config);
            let db = crate::store::DataDb::open(&config.storage.data_db, 1 << 20, &guard)
                .expect("data DB");
            prepare(&db);
        }
        let info = BoardInfo {
            model: "SIM".into(),
            serial: "SIM-0001".into(),
            mac: "02:00:00:00:00:01".into(),
            initial_password_hash: crate::auth::password::hash_blocking(LABEL),
            hw: BoardProfile::sim(),
        };
        let clock = Arc::new(ManualClock::default());
        let app = App::start(
            config,
            Ok(info),
            Arc::new(SimBoard::new(&dir)),
            clock.clone(),
        );
        TestApp {
            app: Arc::new(app),
            clock,
            dir,
        }
    }

    /// A fresh box whose admin has replaced the label password with [`ADMIN_PW`].
    pub async fn ready(tag: &str) -> TestApp {
        let t = TestApp::new(tag);
        let admin = t
            .app
            .data()
            .expect("data")
            .account(crate::model::ADMIN)
            .await
            .expect("read")
            .expect("admin");
        let hash = crate::auth::password::hash_blocking(ADMIN_PW);
        let now = t.app.clock().unix();
        t.app
            .data()
            .expect("data")
            .update_account(&admin.username, move |a| a.apply_new_password(&hash, now))
            .await
            .expect("write");
        t
    }
}

impl TestApp {
    /// How many events named `event` the audit trail holds.
    pub async fn audit_count(&self, event: &str) -> usize {
        let events = self.app.data().expect("data").audit_events().await;
        events
            .expect("audit")
            .iter()
            .filter(|e| e.event == event)
            .count()
    }

    /// Stores a reset token for `admin` under `digest`, valid 10 minutes from now.
    pub fn admin_token(&self, digest: [u8; 32]) {
        let now = self.app.clock().unix();
        let token = crate::model::ResetToken {
            username: crate::model::ADMIN.into(),
            expires_at: now + 600,
            issued_ip: "127.0.0.1".into(),
            issued_at: now,
        };
        self.app
            .data()
            .expect("data")
            .blocking()
            .issue_token(digest, &token, now)
            .expect("token issued");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
