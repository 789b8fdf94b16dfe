//! The daemon's shared state ([`App`]) and how it comes up: open the board DB and the
//! data DB, create `admin` on first boot, or fall back to the *degraded* state when the
//! flash cannot be trusted — never to a default password, never into a crash loop.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use pbx_board::Board;

use crate::auth::device::DeviceKey;
use crate::auth::lockout::Limiter;
use crate::auth::password::Hasher;
use crate::auth::presession::PreSessions;
use crate::auth::recovery::Recovery;
use crate::auth::sessions::Sessions;
use crate::clock::{Clock, Floored};
use crate::config::Config;
use crate::error::Error;
use crate::mail::outbox::Outbox;
use crate::model::{BoardInfo, ClockFloor, Health, Lifecycle, Reason};
use crate::store::{DataDb, Setting, Store, StoreError};
use crate::syslog::Syslog;

/// Directory requests in flight at once: each waits on the network, not the CPU, but
/// a flood of sign-ins must not hold sockets without end.
const DIRECTORY_SLOTS: usize = 8;

pub struct App {
    config: RwLock<Arc<Config>>,
    clock: Arc<Floored>,
    board: Arc<dyn Board>,
    /// Factory data, when readable.
    board_info: Option<BoardInfo>,
    data: Option<Store>,
    /// Signs device cookies; its secret lives in the data DB (none while that is
    /// unwritable at a first start).
    device_key: Option<DeviceKey>,
    /// Serving, resetting or degraded (how the stores opened, or an erase that failed).
    lifecycle: RwLock<Lifecycle>,
    hasher: Hasher,
    sessions: Sessions,
    presessions: PreSessions,
    syslog: Syslog,
    firewall: crate::firewall::Firewall,
    limiter: Limiter,
    failure_log: crate::auth::failure_log::FailureLog,
    recovery: Recovery,
    outbox: Outbox,
    /// The bound listener addresses (ports resolved), for reset links.
    http_addr: Option<SocketAddr>,
    https_addr: Option<SocketAddr>,
    /// When the daemon started (for `ctl status`).
    started_at: u64,
    /// The device's hostname, read at start (a Host header may name it).
    hostname: String,
    /// The config file it was started with (`None`: the embedded dev config).
    config_path: Option<std::path::PathBuf>,
    /// The trusted networks, HTTPS-only, and the change on probation (spec §10).
    access: crate::auth::trust::Live,
    /// Directory requests in flight at most (spec §11): beyond them, 503 at once.
    directory_slots: tokio::sync::Semaphore,
    /// Where fleet sign-in asks: the page's saved settings, else the config's.
    directory: RwLock<Arc<crate::config::directory::Directory>>,
}

impl App {
    /// Opens the data DB and prepares the state, given what reading the board DB gave
    /// (the caller opens sled once for it: every sled open costs RAM that is not
    /// returned). Blocking flash I/O: call before the runtime serves requests.
    pub fn start(
        config: Config,
        board_info: Result<BoardInfo, StoreError>,
        board: Arc<dyn Board>,
        clock: Arc<dyn Clock>,
    ) -> App {
        let clock = Arc::new(Floored::new(clock, None));
        let (board_info, data, health) = open_stores(&config, board_info, clock.as_ref());
        if let Some(d) = &data {
            match d.blocking().setting::<ClockFloor>(ClockFloor::KEY) {
                Ok(Some(ClockFloor(stored))) => clock.raise(stored),
                Ok(None) => {}
                Err(e) => tracing::warn!("clock floor unreadable: {e}"),
            }
        }
        if let Some(u) = clock.unset() {
            tracing::warn!(
                reads = %crate::clock::format_utc(u.reads),
                floor = %crate::clock::format_utc(u.floor),
                "the system clock is unset (below the newest time this box has seen)"
            );
        }
        let shared: Arc<dyn Clock> = clock.clone();
        match &health {
            Health::Ok => tracing::info!(board = board.kind(), "stores open"),
            Health::Degraded(why) => tracing::error!("degraded: {why}"),
        }
        let device_key = data.as_ref().map(Store::blocking).and_then(device_key);
        let access = access_at_start(
            data.as_ref().map(Store::blocking),
            &config,
            clock.unix(),
            clock.mono(),
        );
        let directory = directory_at_start(data.as_ref().map(Store::blocking), &config);
        let p = config.policy.clone();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_ascii_lowercase())
            .unwrap_or_default();
        App {
            device_key,
            hasher: Hasher::new(p.hash_concurrency, p.hash_queue, p.hash_cost),
            sessions: Sessions::new(Arc::clone(&shared), p.session_idle, p.session_absolute),
            presessions: PreSessions::new(Arc::clone(&shared)),
            syslog: Syslog::new(&hostname),
            firewall: crate::firewall::Firewall::new(config.network.block_with),
            failure_log: crate::auth::failure_log::FailureLog::new(p.lockout_window),
            limiter: Limiter::new(shared, p),
            recovery: Recovery::default(),
            outbox: Outbox::default(),
            http_addr: None,
            https_addr: None,
            started_at: clock.unix(),
            hostname,
            config_path: None,
            access,
            directory_slots: tokio::sync::Semaphore::new(DIRECTORY_SLOTS),
            directory: RwLock::new(Arc::new(directory)),
            config: RwLock::new(Arc::new(config)),
            clock,
            board,
            board_info,
            data,
            lifecycle: RwLock::new(match health {
                Health::Ok => Lifecycle::Serving,
                Health::Degraded(why) => Lifecycle::Degraded(why),
            }),
        }
    }

    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Applies a reloaded config (SIGHUP). Listener addresses, storage paths and the
    /// hashing settings need a restart; everything else takes effect now.
    pub fn reload(&self, new: Config) {
        let old = self.config();
        if old.server.http != new.server.http || old.server.https != new.server.https {
            tracing::warn!("listener addresses changed: they take effect at the next restart");
        }
        if old.storage.data_db != new.storage.data_db
            || old.storage.board_db != new.storage.board_db
        {
            tracing::warn!("storage paths changed: they take effect at the next restart");
        }
        if old.network.block_with != new.network.block_with {
            tracing::warn!("network.block_with changed: it takes effect at the next restart");
        }
        let hashing = |p: &crate::config::Policy| (p.hash_concurrency, p.hash_queue, p.hash_cost);
        if hashing(&old.policy) != hashing(&new.policy) {
            tracing::warn!(
                "hashing settings (hash_concurrency, hash_queue, argon2_*) changed: they take \
                 effect at the next restart"
            );
        }
        self.sessions
            .set_limits(new.policy.session_idle, new.policy.session_absolute);
        self.limiter.set_policy(new.policy.clone());
        if old.syslog != new.syslog {
            self.syslog.configure(new.syslog.clone());
        }
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
    }

    /// The trusted networks, HTTPS-only and the probation in force.
    pub fn access(&self) -> &crate::auth::trust::Live {
        &self.access
    }

    /// Where fleet sign-in asks now.
    pub fn directory(&self) -> Arc<crate::config::directory::Directory> {
        Arc::clone(&self.directory.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// New directory settings take effect (saved on the page, or a config reload).
    pub fn set_directory(&self, d: crate::config::directory::Directory) {
        *self.directory.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(d);
    }

    /// A place for one directory request, if one is free.
    pub fn directory_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.directory_slots.try_acquire().ok()
    }

    /// Records an audit event; best effort (a full flash must not block a login).
    pub fn audit(
        &self,
        kind: crate::model::AuditKind,
        username: Option<&str>,
        ip: Option<std::net::IpAddr>,
        detail: Option<&str>,
    ) {
        let ev = crate::model::AuditEvent {
            at: self.clock.unix(),
            event: kind.name().into(),
            username: username.map(str::to_string),
            ip: ip.map(|i| i.to_string()),
            detail: detail.map(str::to_string),
            clock_unset: self.clock.unset().is_some(),
        };
        self.syslog.forward(&ev);
        let Some(data) = &self.data else { return };
        if let Err(e) = data.blocking().audit(&ev) {
            tracing::warn!("audit event {} not recorded: {e}", kind.name());
        }
    }

    /// The wall clock never below the floor, and the monotonic clock.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The clock's floor: whether the clock is unset, what to save.
    pub fn time(&self) -> &Floored {
        &self.clock
    }

    pub fn board(&self) -> &dyn Board {
        self.board.as_ref()
    }

    /// Factory data, when readable.
    pub fn board_info(&self) -> Option<&BoardInfo> {
        self.board_info.as_ref()
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The kernel's share of the address lockout (`network.block_with`).
    pub fn firewall(&self) -> &crate::firewall::Firewall {
        &self.firewall
    }

    /// The remote syslog sender (`audit.syslog`).
    pub fn syslog(&self) -> &Syslog {
        &self.syslog
    }

    /// Sign-ins waiting for their second factor.
    pub fn presessions(&self) -> &PreSessions {
        &self.presessions
    }

    /// Failed sign-ins aggregated for the audit trail.
    pub fn failure_log(&self) -> &crate::auth::failure_log::FailureLog {
        &self.failure_log
    }

    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// What the ways back in hold in RAM (limits, the pending button change).
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Mail waiting for the worker.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Records the bound listener addresses (ports resolved), for reset links.
    pub fn set_listen_addrs(&mut self, http: Option<SocketAddr>, https: Option<SocketAddr>) {
        self.http_addr = http;
        self.https_addr = https;
    }

    /// Records the config file the daemon was started with (for `ctl selftest`).
    pub fn set_config_path(&mut self, path: Option<std::path::PathBuf>) {
        self.config_path = path;
    }

    pub fn config_path(&self) -> Option<&std::path::Path> {
        self.config_path.as_deref()
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// When the daemon started (Unix seconds, for `ctl status`).
    pub fn started_at(&self) -> u64 {
        self.started_at
    }

    /// Marks a factory reset as under way; false if one already is (later presses and
    /// requests are ignored, and the API answers 503 until the reboot).
    pub fn begin_reset(&self) -> bool {
        let mut state = self.lifecycle.write().unwrap_or_else(|e| e.into_inner());
        if *state == Lifecycle::Resetting {
            return false;
        }
        *state = Lifecycle::Resetting;
        true
    }

    pub fn is_resetting(&self) -> bool {
        self.lifecycle() == Lifecycle::Resetting
    }

    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The device's hostname (lower case; empty if unknown).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The key of device cookies, when the data DB holds one.
    pub fn device_key(&self) -> Option<&DeviceKey> {
        self.device_key.as_ref()
    }

    /// Whether the daemon can sign people in, and if not, why.
    pub fn health(&self) -> Health {
        match self.lifecycle() {
            Lifecycle::Serving | Lifecycle::Resetting => Health::Ok,
            Lifecycle::Degraded(why) => Health::Degraded(why),
        }
    }

    /// A factory reset could not erase the user data: sign-in stops (the old password
    /// must not keep working behind a reset reported as done) and every status says why;
    /// a new reset may be tried.
    pub fn reset_failed(&self, why: String) {
        *self.lifecycle.write().unwrap_or_else(|e| e.into_inner()) =
            Lifecycle::Degraded(Reason::ResetFailed(why));
    }

    /// The data DB, or the degraded reason as an error.
    pub fn data(&self) -> Result<Store, Error> {
        match (&self.data, &self.health()) {
            (Some(d), Health::Ok) => Ok(d.clone()),
            (_, Health::Degraded(why)) => Err(Error::Degraded(why.to_string())),
            (None, Health::Ok) => Err(Error::Internal("data DB missing".into())),
        }
    }
}

impl Setting for ClockFloor {
    const KEY: &'static str = "clock_floor";
}

impl Setting for crate::model::AccessRecord {
    const KEY: &'static str = "access";
}

impl Setting for crate::model::DirectorySettings {
    const KEY: &'static str = "directory";
}

/// Where fleet sign-in asks at start (blocking, before serving): the page's saved
/// settings, else the config's; unreadable or invalid saved ones fall back to the
/// config's (logged), never to a crash.
pub(crate) fn directory_at_start(
    data: Option<&DataDb>,
    config: &Config,
) -> crate::config::directory::Directory {
    use crate::model::DirectorySettings;
    let saved = data.and_then(
        |d| match d.setting::<DirectorySettings>(DirectorySettings::KEY) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(
                    "the saved directory settings are unreadable ({e}): using the config's"
                );
                None
            }
        },
    );
    match saved.map(|s| crate::config::directory::validate(&s)) {
        Some(Ok(d)) => d,
        Some(Err(bad)) => {
            tracing::error!(
                "the saved directory settings are invalid ({}): using the config's",
                bad[0].msg
            );
            config.directory.clone()
        }
        None => config.directory.clone(),
    }
}

/// The access rules at start (blocking, before serving): the saved record, else the
/// config's; an unreadable record falls back to the config, never to a lock.
pub(crate) fn access_at_start(
    data: Option<&DataDb>,
    config: &Config,
    now_unix: u64,
    mono: std::time::Duration,
) -> crate::auth::trust::Live {
    use crate::model::AccessRecord;
    let record = data.and_then(|d| match d.setting::<AccessRecord>(AccessRecord::KEY) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("the saved access settings are unreadable ({e}): using the config's");
            None
        }
    });
    let fallback = config.access_settings();
    crate::auth::trust::Live::restore(record, &fallback, config.access.probation, now_unix, mono)
}

/// The device-cookie key from the data DB, made on first use (erased with the data DB,
/// so a factory reset voids every device cookie).
fn device_key(data: &DataDb) -> Option<DeviceKey> {
    const KEY: &str = "device_cookie_key";
    use base64ct::{Base64, Encoding};
    let stored = match data.setting::<String>(KEY) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("device cookies off: cannot read their key: {e}");
            return None;
        }
    };
    let secret = match stored.and_then(|s| Base64::decode_vec(&s).ok()) {
        Some(s) if s.len() == 32 => s,
        _ => {
            let s = crate::auth::random_bytes::<32>();
            if let Err(e) = data.put_setting(KEY, &Base64::encode_string(&s)) {
                tracing::warn!("device cookies off: cannot store their key: {e}");
                return None;
            }
            s.to_vec()
        }
    };
    Some(DeviceKey::new(&secret))
}

/// The file counting starts that died while opening the data DB (see [`DataDb::open`]).
pub fn open_guard_path(config: &Config) -> std::path::PathBuf {
    config.storage.state_dir.join("data-db.opening")
}

/// Nothing is damaged, and a factory reset would be the wrong advice.
fn full_flash() -> Health {
    Health::Degraded(Reason::FlashFull)
}

fn open_stores(
    config: &Config,
    board_info: Result<BoardInfo, StoreError>,
    clock: &dyn Clock,
) -> (Option<BoardInfo>, Option<Store>, Health) {
    let board_info = match board_info {
        Ok(info) => info,
        Err(e @ StoreError::NotProvisioned(_)) => {
            return (
                None,
                None,
                Health::Degraded(Reason::NotProvisioned(e.to_string())),
            )
        }
        Err(e) => {
            return (
                None,
                None,
                Health::Degraded(Reason::FactoryDataUnreadable(e.to_string())),
            )
        }
    };
    let guard = open_guard_path(config);
    let data = match DataDb::open(
        &config.storage.data_db,
        config.storage.cache_capacity,
        &guard,
    ) {
        Ok(d) => d,
        Err(StoreError::Full) => return (Some(board_info), None, full_flash()),
        Err(e @ StoreError::NewerFormat { .. }) => {
            return (
                Some(board_info),
                None,
                Health::Degraded(Reason::NewerFormat(e.to_string())),
            )
        }
        Err(e) => {
            return (
                Some(board_info),
                None,
                Health::Degraded(Reason::DataUnreadable(e.to_string())),
            )
        }
    };
    match data.ensure_admin(&board_info.initial_password_hash, clock.unix()) {
        Ok(true) => tracing::info!("first boot: admin account created from the label password"),
        Ok(false) => {}
        Err(StoreError::Full) => return (Some(board_info), None, full_flash()),
        Err(e) => {
            return (
                Some(board_info),
                None,
                Health::Degraded(Reason::AdminNotCreated(e.to_string())),
            )
        }
    }
    (
        Some(board_info),
        Some(Store::new(Arc::new(data))),
        Health::Ok,
    )
}
