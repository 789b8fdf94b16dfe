//! Configuration: the TOML file as written by people ([`ConfigFile`]) and the validated
//! runtime [`Config`] that the rest of the daemon uses and that cannot hold a bad value.
//!
//! Unknown keys are errors, like `deny_unknown_fields`, but they are collected with
//! `serde_ignored` so that `check-config` lists every unknown key at once instead of
//! stopping at the first. Every value problem is reported with its key path.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pbx_board::Subnet;
use serde::Deserialize;

/// Default config path of the appliance.
pub const DEFAULT_PATH: &str = "/etc/pbx-authd/pbx-authd.toml";

/// One thing wrong with a config file, tied to the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found in a config, in file order where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

// ---------------------------------------------------------------------------------------
// The file as written.

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    pub server: ServerFile,
    pub storage: StorageFile,
    pub network: NetworkFile,
    pub policy: PolicyFile,
    pub control: ControlFile,
    pub reset: ResetFile,
    pub log: LogFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetFile {
    /// Files or directories of user data removed by a factory reset (besides the data DB
    /// and the partitions named in the board profile).
    pub erase_paths: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ServerFile {
    pub http: Vec<String>,
    pub https: Vec<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub public_url: Option<String>,
    pub cloud: bool,
    pub header_timeout_s: u64,
    pub body_timeout_s: u64,
    pub tls_handshake_timeout_s: u64,
    pub max_connections: u64,
    pub max_connections_per_address: u64,
    /// Host names (besides IP literals, `localhost`, the device's hostname and the host
    /// of `public_url`) that requests may be addressed to.
    pub allowed_hosts: Vec<String>,
}

impl Default for ServerFile {
    fn default() -> Self {
        ServerFile {
            http: vec!["0.0.0.0:80".into()],
            https: vec!["0.0.0.0:443".into()],
            tls_cert: None,
            tls_key: None,
            public_url: None,
            cloud: false,
            header_timeout_s: 10,
            body_timeout_s: 10,
            tls_handshake_timeout_s: 10,
            max_connections: 256,
            max_connections_per_address: 64,
            allowed_hosts: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct StorageFile {
    pub board_db: PathBuf,
    pub data_db: PathBuf,
    pub state_dir: PathBuf,
    pub cache_capacity: u64,
}

impl Default for StorageFile {
    fn default() -> Self {
        StorageFile {
            board_db: "/factory/pbx-authd/board.db".into(),
            data_db: "/var/lib/pbx-authd/data.db".into(),
            state_dir: "/var/lib/pbx-authd".into(),
            cache_capacity: 1024 * 1024,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkFile {
    pub lan_subnets: Vec<String>,
    /// Interfaces whose subnets are the PBX's own network (a trailing `*` matches any
    /// rest); unset: all but `ppp*`, `wg*`, `tun*`, `docker*`.
    pub lan_interfaces: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct PolicyFile {
    pub lockout_failures: u64,
    pub lockout_window_s: u64,
    pub lockout_block_s: u64,
    pub account_slowdown_after: u64,
    pub account_slowdown_step_ms: u64,
    pub account_slowdown_max_ms: u64,
    pub password_min_len: u64,
    pub password_max_len: u64,
    pub session_idle_s: u64,
    pub session_absolute_s: u64,
    pub hash_concurrency: u64,
    pub hash_queue: u64,
    pub reset_token_ttl_min: u64,
    pub forgot_per_address: u64,
    pub forgot_address_window_s: u64,
    pub forgot_mails_per_account: u64,
    pub forgot_account_window_s: u64,
}

impl Default for PolicyFile {
    fn default() -> Self {
        PolicyFile {
            lockout_failures: 5,
            lockout_window_s: 600,
            lockout_block_s: 600,
            account_slowdown_after: 20,
            account_slowdown_step_ms: 1000,
            account_slowdown_max_ms: 30_000,
            password_min_len: 10,
            password_max_len: 128,
            session_idle_s: 30 * 60,
            session_absolute_s: 12 * 3600,
            hash_concurrency: 0,
            hash_queue: 16,
            reset_token_ttl_min: 30,
            forgot_per_address: 5,
            forgot_address_window_s: 15 * 60,
            forgot_mails_per_account: 3,
            forgot_account_window_s: 3600,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ControlFile {
    pub socket: PathBuf,
}

impl Default for ControlFile {
    fn default() -> Self {
        ControlFile {
            socket: crate::cli::DEFAULT_SOCKET.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct LogFile {
    pub level: String,
}

impl Default for LogFile {
    fn default() -> Self {
        LogFile {
            level: "info".into(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The validated runtime config.

/// Where the HTTPS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// True when no certificate was configured: a self-signed one is generated at these paths.
    pub generate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub lockout_failures: u32,
    pub lockout_window: Duration,
    pub lockout_block: Duration,
    pub account_slowdown_after: u32,
    pub account_slowdown_step: Duration,
    pub account_slowdown_max: Duration,
    pub password_min_len: usize,
    pub password_max_len: usize,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    /// Argon2 hashes computed at once (the number of cores when the file says 0).
    pub hash_concurrency: usize,
    /// Hash requests allowed to wait for a slot; beyond this: 503 + Retry-After.
    pub hash_queue: usize,
    pub reset_token_ttl: Duration,
    /// Forgot-password requests per address per window; beyond: 429.
    pub forgot_per_address: u32,
    pub forgot_address_window: Duration,
    /// Recovery mails per account per window; further requests still answer 202.
    pub forgot_mails_per_account: u32,
    pub forgot_account_window: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        let mut problems = Vec::new();
        validate_policy(&PolicyFile::default(), &mut problems)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub http: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
    pub tls: TlsFiles,
    /// Base of reset links, without trailing slash; never taken from a request's Host header.
    pub public_url: Option<String>,
    pub cloud: bool,
    pub header_timeout: Duration,
    /// A request's body must have arrived this long after its headers (408 otherwise).
    pub body_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    /// Extra names the Host header may carry (lower case, no port).
    pub allowed_hosts: Vec<String>,
    pub max_connections: usize,
    /// Connections one address (IPv6: one /64) may hold, so that one machine cannot
    /// take the whole pool.
    pub max_connections_per_address: usize,
    pub board_db: PathBuf,
    pub data_db: PathBuf,
    pub state_dir: PathBuf,
    pub cache_capacity: u64,
    pub lan_subnets: Vec<Subnet>,
    pub lan_interfaces: Option<Vec<String>>,
    pub policy: Policy,
    pub control_socket: PathBuf,
    pub erase_paths: Vec<PathBuf>,
    pub log_level: tracing::Level,
    /// Simulated board (`--dev`).
    pub dev: bool,
}

/// Largest sled page cache allowed: the boxes have 256 MiB of RAM shared with the PBX.
pub const MAX_CACHE_CAPACITY: u64 = 2 * 1024 * 1024;

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![Problem {
                key: path.display().to_string(),
                message: format!("cannot read config file: {e}"),
            }])
        })?;
        Config::parse(&text)
    }

    /// The host part of `public_url` (no scheme, port or brackets), lower case.
    pub fn public_host(&self) -> Option<String> {
        let rest = self.public_url.as_deref()?.split("://").nth(1)?;
        let host = if let Some(v6) = rest.strip_prefix('[') {
            v6.split(']').next()?
        } else {
            rest.split(':').next()?
        };
        (!host.is_empty()).then(|| host.to_ascii_lowercase())
    }

    /// Parses and validates config text, collecting every problem found.
    pub fn parse(text: &str) -> Result<Config, Problems> {
        let mut problems = Vec::new();
        let de = toml::Deserializer::new(text);
        let file: ConfigFile = match serde_ignored::deserialize(de, |path| {
            problems.push(Problem {
                key: path.to_string(),
                message: "unknown key".into(),
            })
        }) {
            Ok(f) => f,
            Err(e) => {
                let e: toml::de::Error = e;
                problems.push(Problem {
                    key: key_at(text, e.span()).unwrap_or_else(|| "(file)".into()),
                    message: e.message().to_string(),
                });
                return Err(Problems(problems));
            }
        };
        match Config::validate(file, false) {
            Ok(c) if problems.is_empty() => Ok(c),
            Ok(_) => Err(Problems(problems)),
            Err(Problems(more)) => {
                problems.extend(more);
                Err(Problems(problems))
            }
        }
    }

    /// The embedded config of `--dev`: everything under `state_dir`, loopback listeners.
    /// `overrides` (the text of `--config FILE` given with `--dev`) is laid over it key by
    /// key, e.g. to set `server.public_url` or `server.cloud` in a test.
    pub fn dev(
        state_dir: &Path,
        http: SocketAddr,
        https: SocketAddr,
        overrides: Option<&str>,
    ) -> Result<Config, Problems> {
        let path = |p: PathBuf| toml::Value::String(p.to_string_lossy().into_owned());
        let mut base = toml::Table::new();
        let mut server = toml::Table::new();
        server.insert(
            "http".into(),
            toml::Value::Array(vec![http.to_string().into()]),
        );
        server.insert(
            "https".into(),
            toml::Value::Array(vec![https.to_string().into()]),
        );
        let mut storage = toml::Table::new();
        storage.insert("board_db".into(), path(state_dir.join("board.db")));
        storage.insert("data_db".into(), path(state_dir.join("data.db")));
        storage.insert("state_dir".into(), path(state_dir.to_path_buf()));
        let mut control = toml::Table::new();
        control.insert("socket".into(), path(state_dir.join("ctl.sock")));
        let mut reset = toml::Table::new();
        reset.insert(
            "erase_paths".into(),
            toml::Value::Array(vec![path(state_dir.join("userfiles"))]),
        );
        base.insert("reset".into(), reset.into());
        base.insert("server".into(), server.into());
        base.insert("storage".into(), storage.into());
        base.insert("control".into(), control.into());
        if let Some(text) = overrides {
            let over: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                Problems(vec![Problem {
                    key: key_at(text, e.span()).unwrap_or_else(|| "(file)".into()),
                    message: e.message().to_string(),
                }])
            })?;
            merge(&mut base, over);
        }
        let mut config = Config::parse(&base.to_string())?;
        config.dev = true;
        Ok(config)
    }

    /// Turns a parsed file into a runtime config, or lists every problem with its key.
    pub fn validate(file: ConfigFile, dev: bool) -> Result<Config, Problems> {
        let mut p = Vec::new();
        let mut bad = |key: &str, message: String| {
            p.push(Problem {
                key: key.into(),
                message,
            })
        };
        let s = &file.server;
        let mut addrs = |key: &str, list: &[String]| -> Vec<SocketAddr> {
            let mut out = Vec::new();
            for (i, a) in list.iter().enumerate() {
                match a.parse::<SocketAddr>() {
                    Ok(sa) => out.push(sa),
                    Err(_) => bad(
                        &format!("{key}[{i}]"),
                        format!("{a:?} is not ADDRESS:PORT (e.g. \"0.0.0.0:443\" or \"[::]:443\")"),
                    ),
                }
            }
            out
        };
        let http = addrs("server.http", &s.http);
        let https = addrs("server.https", &s.https);
        if s.http.is_empty() && s.https.is_empty() {
            bad(
                "server.https",
                "no listener configured: set server.http and/or server.https".into(),
            );
        }
        let tls = match (&s.tls_cert, &s.tls_key) {
            (Some(cert), Some(key)) => TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                generate: false,
            },
            (None, None) => TlsFiles {
                cert: file.storage.state_dir.join("tls/cert.pem"),
                key: file.storage.state_dir.join("tls/key.pem"),
                generate: true,
            },
            (Some(_), None) => {
                bad(
                    "server.tls_key",
                    "tls_cert is set, so tls_key must be set too".into(),
                );
                TlsFiles {
                    cert: PathBuf::new(),
                    key: PathBuf::new(),
                    generate: false,
                }
            }
            (None, Some(_)) => {
                bad(
                    "server.tls_cert",
                    "tls_key is set, so tls_cert must be set too".into(),
                );
                TlsFiles {
                    cert: PathBuf::new(),
                    key: PathBuf::new(),
                    generate: false,
                }
            }
        };
        let public_url = match &s.public_url {
            None => None,
            Some(u) => match check_public_url(u) {
                Ok(u) => Some(u),
                Err(m) => {
                    bad("server.public_url", m);
                    None
                }
            },
        };
        let mut secs = |key: &str, v: u64, lo: u64, hi: u64| -> Duration {
            if v < lo || v > hi {
                bad(key, format!("{v} is out of range {lo}..={hi}"));
            }
            Duration::from_secs(v.clamp(lo, hi))
        };
        let header_timeout = secs("server.header_timeout_s", s.header_timeout_s, 1, 120);
        let body_timeout = secs("server.body_timeout_s", s.body_timeout_s, 1, 120);
        let tls_handshake_timeout = secs(
            "server.tls_handshake_timeout_s",
            s.tls_handshake_timeout_s,
            1,
            120,
        );
        if s.max_connections_per_address == 0 || s.max_connections_per_address > s.max_connections {
            bad(
                "server.max_connections_per_address",
                format!(
                    "{} is out of range 1..=server.max_connections",
                    s.max_connections_per_address
                ),
            );
        }
        if !(1..=65_536).contains(&s.max_connections) {
            bad(
                "server.max_connections",
                format!("{} is out of range 1..=65536", s.max_connections),
            );
        }
        let st = &file.storage;
        for (key, path) in [
            ("storage.board_db", &st.board_db),
            ("storage.data_db", &st.data_db),
            ("storage.state_dir", &st.state_dir),
            ("control.socket", &file.control.socket),
        ] {
            if path.as_os_str().is_empty() {
                bad(key, "must not be empty".into());
            }
        }
        if !(64 * 1024..=MAX_CACHE_CAPACITY).contains(&st.cache_capacity) {
            bad(
                "storage.cache_capacity",
                format!(
                    "{} bytes is out of range 65536..={MAX_CACHE_CAPACITY} (2 MiB)",
                    st.cache_capacity
                ),
            );
        }
        // What a factory reset erases, with symlinks and `..` resolved: never the board
        // DB, a system directory or the binary's own directory.
        let keep = crate::fsutil::kept_paths(&st.board_db);
        let mut targets = vec![("storage.data_db".to_string(), &st.data_db)];
        for (i, p) in file.reset.erase_paths.iter().enumerate() {
            let key = format!("reset.erase_paths[{i}]");
            if p.is_absolute() {
                targets.push((key, p));
            } else {
                bad(&key, format!("{} must be an absolute path", p.display()));
            }
        }
        for (key, p) in targets {
            match crate::fsutil::resolve(p) {
                Err(e) => bad(&key, format!("{}: {e}", p.display())),
                Ok(real) => {
                    if let Some(why) = crate::fsutil::forbidden_target(&real, &keep) {
                        bad(
                            &key,
                            format!(
                                "{} (resolved: {}) must not be erased by a factory reset: {why}",
                                p.display(),
                                real.display()
                            ),
                        );
                    }
                }
            }
        }
        let mut allowed_hosts = Vec::new();
        for (i, h) in s.allowed_hosts.iter().enumerate() {
            let name = h.trim().trim_end_matches('.').to_ascii_lowercase();
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if valid {
                allowed_hosts.push(name);
            } else {
                bad(
                    &format!("server.allowed_hosts[{i}]"),
                    format!("{h:?} is not a host name (letters, digits, '-' and '.', no port)"),
                );
            }
        }
        let mut lan_subnets = Vec::new();
        for (i, n) in file.network.lan_subnets.iter().enumerate() {
            match n.parse::<Subnet>() {
                Ok(sn) if sn.prefix() == 0 => bad(
                    &format!("network.lan_subnets[{i}]"),
                    format!("{n:?} would make every address local; name the LAN's own subnet"),
                ),
                Ok(sn) => lan_subnets.push(sn),
                Err(e) => bad(&format!("network.lan_subnets[{i}]"), format!("{n:?}: {e}")),
            }
        }
        let log_level = match file.log.level.as_str() {
            "error" => tracing::Level::ERROR,
            "warn" => tracing::Level::WARN,
            "info" => tracing::Level::INFO,
            "debug" => tracing::Level::DEBUG,
            "trace" => tracing::Level::TRACE,
            other => {
                bad(
                    "log.level",
                    format!("{other:?} is not one of error, warn, info, debug, trace"),
                );
                tracing::Level::INFO
            }
        };
        let policy = validate_policy(&file.policy, &mut p);
        if !p.is_empty() {
            return Err(Problems(p));
        }
        Ok(Config {
            http,
            https,
            tls,
            public_url,
            cloud: s.cloud,
            header_timeout,
            body_timeout,
            tls_handshake_timeout,
            allowed_hosts,
            max_connections: usize::try_from(s.max_connections).unwrap_or(256),
            max_connections_per_address: usize::try_from(s.max_connections_per_address)
                .unwrap_or(64),
            board_db: st.board_db.clone(),
            data_db: st.data_db.clone(),
            state_dir: st.state_dir.clone(),
            cache_capacity: st.cache_capacity,
            lan_subnets,
            lan_interfaces: file.network.lan_interfaces.clone(),
            policy,
            control_socket: file.control.socket.clone(),
            erase_paths: file.reset.erase_paths.clone(),
            log_level,
            dev,
        })
    }
}

/// Lays `over` onto `base`, table by table; other values replace.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn validate_policy(f: &PolicyFile, p: &mut Vec<Problem>) -> Policy {
    let mut num = |key: &str, v: u64, lo: u64, hi: u64| -> u64 {
        if v < lo || v > hi {
            p.push(Problem {
                key: format!("policy.{key}"),
                message: format!("{v} is out of range {lo}..={hi}"),
            });
        }
        v.clamp(lo, hi)
    };
    let secs = Duration::from_secs;
    let ms = Duration::from_millis;
    // The clamps above keep every value far below u32/usize limits.
    let small = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let policy = Policy {
        lockout_failures: small(num("lockout_failures", f.lockout_failures, 1, 100)),
        lockout_window: secs(num("lockout_window_s", f.lockout_window_s, 10, 86_400)),
        lockout_block: secs(num("lockout_block_s", f.lockout_block_s, 10, 86_400)),
        account_slowdown_after: small(num(
            "account_slowdown_after",
            f.account_slowdown_after,
            1,
            10_000,
        )),
        account_slowdown_step: ms(num(
            "account_slowdown_step_ms",
            f.account_slowdown_step_ms,
            0,
            60_000,
        )),
        account_slowdown_max: ms(num(
            "account_slowdown_max_ms",
            f.account_slowdown_max_ms,
            0,
            60_000,
        )),
        password_min_len: size(num("password_min_len", f.password_min_len, 8, 128)),
        password_max_len: size(num("password_max_len", f.password_max_len, 16, 1024)),
        session_idle: secs(num("session_idle_s", f.session_idle_s, 60, 86_400)),
        session_absolute: secs(num(
            "session_absolute_s",
            f.session_absolute_s,
            60,
            7 * 86_400,
        )),
        hash_concurrency: size(num("hash_concurrency", f.hash_concurrency, 0, 64)),
        hash_queue: size(num("hash_queue", f.hash_queue, 0, 1024)),
        reset_token_ttl: secs(60 * num("reset_token_ttl_min", f.reset_token_ttl_min, 5, 1440)),
        forgot_per_address: small(num("forgot_per_address", f.forgot_per_address, 1, 1000)),
        forgot_address_window: secs(num(
            "forgot_address_window_s",
            f.forgot_address_window_s,
            10,
            86_400,
        )),
        forgot_mails_per_account: small(num(
            "forgot_mails_per_account",
            f.forgot_mails_per_account,
            1,
            100,
        )),
        forgot_account_window: secs(num(
            "forgot_account_window_s",
            f.forgot_account_window_s,
            60,
            86_400,
        )),
    };
    if policy.password_min_len > policy.password_max_len {
        p.push(Problem {
            key: "policy.password_min_len".into(),
            message: "must not exceed policy.password_max_len".into(),
        });
    }
    if policy.session_idle > policy.session_absolute {
        p.push(Problem {
            key: "policy.session_idle_s".into(),
            message: "must not exceed policy.session_absolute_s".into(),
        });
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Policy {
        hash_concurrency: if policy.hash_concurrency == 0 {
            cores
        } else {
            policy.hash_concurrency
        },
        ..policy
    }
}

fn check_public_url(u: &str) -> Result<String, String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| format!("{u:?} must start with https:// or http://"))?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains(['/', '?', '#', ' ', '@']) {
        return Err(format!(
            "{u:?} must be a scheme and host[:port] only, e.g. \"https://pbx.example.com\""
        ));
    }
    Ok(u.trim_end_matches('/').to_string())
}

/// The dotted key path at a byte offset of the TOML text, for error messages.
fn key_at(text: &str, span: Option<std::ops::Range<usize>>) -> Option<String> {
    let start = span?.start.min(text.len());
    let mut table = String::new();
    let mut key = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if offset > start {
            break;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim_matches(['[', ' ']).to_string();
            key = None;
        } else if let Some((k, _)) = t.split_once('=') {
            key = Some(k.trim().to_string());
        }
        offset += line.len();
    }
    let line = text[..start].lines().count().max(1);
    Some(match key {
        Some(k) if table.is_empty() => format!("{k} (line {line})"),
        Some(k) => format!("{table}.{k} (line {line})"),
        None => format!("line {line}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let c = Config::parse("").expect("defaults are valid");
        assert_eq!(c.policy.lockout_failures, 5);
        assert_eq!(c.policy.lockout_window, Duration::from_secs(600));
        assert_eq!(c.policy.session_idle, Duration::from_secs(1800));
        assert_eq!(c.policy.session_absolute, Duration::from_secs(12 * 3600));
        assert_eq!(c.policy.reset_token_ttl, Duration::from_secs(30 * 60));
        assert!(c.tls.generate);
        assert!(c.cache_capacity <= MAX_CACHE_CAPACITY);
    }

    #[test]
    fn every_unknown_key_and_bad_value_is_reported_with_its_path() {
        let text = r#"
[server]
http = ["nonsense"]
colour = "blue"
[storage]
cache_capacity = 99999999
[policy]
reset_token_ttl_min = 2
lockout_windw_s = 5
[log]
level = "chatty"
"#;
        let err = Config::parse(text).expect_err("invalid");
        let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"server.colour"), "{keys:?}");
        assert!(keys.contains(&"policy.lockout_windw_s"), "{keys:?}");
        assert!(keys.contains(&"server.http[0]"), "{keys:?}");
        assert!(keys.contains(&"storage.cache_capacity"), "{keys:?}");
        assert!(keys.contains(&"policy.reset_token_ttl_min"), "{keys:?}");
        assert!(keys.contains(&"log.level"), "{keys:?}");
        assert_eq!(err.0.len(), 6, "{err}");
    }

    #[test]
    fn type_error_names_the_key_and_line() {
        let err = Config::parse("[server]\ncloud = \"yes\"\n").expect_err("invalid");
        assert_eq!(err.0.len(), 1);
        assert!(err.0[0].key.starts_with("server.cloud (line 2)"), "{err}");
    }

    #[test]
    fn public_url_must_be_scheme_and_host_only() {
        assert!(Config::parse("[server]\npublic_url = \"https://pbx.example.com/\"\n").is_ok());
        let err = Config::parse("[server]\npublic_url = \"pbx.example.com\"\n").expect_err("bad");
        assert_eq!(err.0[0].key, "server.public_url");
        let err =
            Config::parse("[server]\npublic_url = \"https://a.example/x?y\"\n").expect_err("bad");
        assert_eq!(err.0[0].key, "server.public_url");
    }

    #[test]
    fn half_configured_certificate_is_an_error() {
        let err = Config::parse("[server]\ntls_cert = \"/c.pem\"\n").expect_err("bad");
        assert_eq!(err.0[0].key, "server.tls_key");
    }

    #[test]
    fn dev_config_takes_overrides_and_still_reports_unknown_keys() {
        let dir = Path::new("/tmp/pbx-dev-x");
        let (h, s) = (
            "127.0.0.1:0".parse().expect("a"),
            "127.0.0.1:0".parse().expect("a"),
        );
        let c = Config::dev(dir, h, s, None).expect("dev");
        assert!(c.dev);
        assert_eq!(c.data_db, dir.join("data.db"));
        assert_eq!(c.control_socket, dir.join("ctl.sock"));
        let c = Config::dev(
            dir,
            h,
            s,
            Some("[server]\npublic_url = \"https://pbx.test\"\ncloud = true\n"),
        )
        .expect("dev with overrides");
        assert_eq!(c.public_url.as_deref(), Some("https://pbx.test"));
        assert!(c.cloud);
        assert_eq!(
            c.data_db,
            dir.join("data.db"),
            "untouched keys keep the dev values"
        );
        let err = Config::dev(dir, h, s, Some("[server]\nbogus = 1\n")).expect_err("unknown");
        assert_eq!(err.0[0].key, "server.bogus");
    }

    #[test]
    fn erase_targets_are_checked_with_symlinks_and_dotdot_resolved() {
        let d = std::env::temp_dir().join(format!("pbx-config-erase-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("factory/board.db")).expect("mkdir");
        std::fs::create_dir_all(d.join("data")).expect("mkdir");
        std::os::unix::fs::symlink("/etc", d.join("data/cfg")).expect("symlink");
        std::os::unix::fs::symlink(d.join("factory"), d.join("data/fac")).expect("symlink");
        let cfg = |data_db: &str, erase: &str| {
            format!(
                "[storage]\nboard_db = \"{0}/factory/board.db\"\ndata_db = \"{0}/{data_db}\"\n\
                 [reset]\nerase_paths = [\"{0}/{erase}\"]\n",
                d.display()
            )
        };
        Config::parse(&cfg("data/data.db", "data/voicemail")).expect("plain targets");
        for (data_db, erase, key) in [
            ("data/data.db", "data/../factory", "reset.erase_paths[0]"),
            ("data/data.db", "data/cfg/pbx", "reset.erase_paths[0]"),
            ("data/data.db", "data/fac", "reset.erase_paths[0]"),
            (
                "factory/board.db/data.db",
                "data/voicemail",
                "storage.data_db",
            ),
            ("data/fac/board.db/x", "data/voicemail", "storage.data_db"),
            ("data/data.db", "..", "reset.erase_paths[0]"),
        ] {
            let err = Config::parse(&cfg(data_db, erase)).expect_err(erase);
            assert!(
                err.0.iter().any(|p| p.key == key),
                "{data_db} {erase}: {err}"
            );
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_shipped_default_config_is_valid() {
        let text = include_str!("../../rootfs-overlay/etc/pbx-authd/pbx-authd.toml");
        Config::parse(text).expect("shipped config must validate");
    }
}
