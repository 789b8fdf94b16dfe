//! Configuration: the TOML file as written by people ([`file::ConfigFile`]) and the
//! validated runtime [`Config`] that the rest of the daemon uses and that cannot hold a
//! bad value, in sections as the file has them.
//!
//! - [`file`]: the file's structure, every key with its default.
//! - [`validate`]: file → `Config`, one function per section.
//! - [`dev`]: the embedded config of `--dev`.
//!
//! - [`read`]: the parsed TOML table into those structs, by hand.
//!
//! Unknown keys are errors, like `deny_unknown_fields`, but all of them are collected
//! (every key no struct reads, [`read::Reader`]) so that `check-config` lists every
//! unknown key at once instead of stopping at the first. Every value problem is
//! reported with its key path.

mod dev;
pub mod directory;
pub mod file;
pub mod netlist;
mod read;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pbx_board::Subnet;

use crate::model::ButtonMode;

use file::{ConfigFile, PolicyFile};

/// Default config path of the appliance.
pub const DEFAULT_PATH: &str = "/etc/pbx-authd/pbx-authd.toml";
/// Default control socket (`control.socket`, and `ctl --socket`).
pub const DEFAULT_SOCKET: &str = "/run/pbx-authd.sock";

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

/// Where the HTTPS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// True when no certificate was configured: a self-signed one is generated at these paths.
    pub generate: bool,
}

/// `[server]`: listeners, timeouts, connection limits, the names the box answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub http: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
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
    /// `server.https_only` as the file says (the admin's choice on the page wins).
    pub https_only: bool,
}

/// `[storage]`: where the two databases and the daemon's state live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub board_db: PathBuf,
    pub data_db: PathBuf,
    pub state_dir: PathBuf,
    pub cache_capacity: u64,
}

/// `[network]`: what counts as the PBX's own network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub lan_subnets: Vec<Subnet>,
    pub lan_interfaces: Option<Vec<String>>,
    pub block_with: BlockWith,
}

/// `network.block_with`: where blocked addresses are dropped ([`crate::firewall`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockWith {
    /// In the daemon only: closed at accept.
    #[default]
    Daemon,
    /// In the kernel too: an nftables set.
    Nftables,
}

/// `[control]`: the Unix control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub socket: PathBuf,
}

/// `[reset]`: what a factory reset erases besides the data DB and the profile's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    pub erase_paths: Vec<PathBuf>,
}

/// argon2id's cost for new password hashes (`policy.argon2_m_kib`, `policy.argon2_t`;
/// one lane). Stored hashes keep the cost they were made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    pub m_kib: u32,
    pub t: u32,
}

impl HashCost {
    /// OWASP's argon2id minimums (Password Storage Cheat Sheet): equally strong pairs of
    /// memory (KiB) and passes, one lane. A cost must reach one of them.
    pub const OWASP_MINIMUMS: [HashCost; 5] = [
        HashCost {
            m_kib: 47_104,
            t: 1,
        },
        HashCost {
            m_kib: 19_456,
            t: 2,
        },
        HashCost {
            m_kib: 12_288,
            t: 3,
        },
        HashCost { m_kib: 9_216, t: 4 },
        HashCost { m_kib: 7_168, t: 5 },
    ];

    pub fn meets_owasp(self) -> bool {
        Self::OWASP_MINIMUMS
            .iter()
            .any(|m| self.m_kib >= m.m_kib && self.t >= m.t)
    }
}

impl Default for HashCost {
    /// m=19456 KiB, t=2 (spec §5).
    fn default() -> Self {
        HashCost::OWASP_MINIMUMS[1]
    }
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
    pub hash_cost: HashCost,
    pub reset_token_ttl: Duration,
    /// Forgot-password requests per address per window; beyond: 429.
    pub forgot_per_address: u32,
    pub forgot_address_window: Duration,
    /// Recovery mails per account per window; further requests still answer 202.
    pub forgot_mails_per_account: u32,
    pub forgot_account_window: Duration,
    pub require_2fa_for_admin: bool,
}

impl Default for Policy {
    fn default() -> Self {
        validate::policy(&PolicyFile::default(), &mut validate::Report::default())
    }
}

/// `[recovery]`: the ways back in that need no mail server (the button) and the drill
/// that keeps the email one proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// The button's mode a box starts with (and returns to after a factory reset); a
    /// change confirmed at the box is stored in the data DB and wins over it.
    pub button: ButtonMode,
    /// "Recovery check" mail period; `None` = off.
    pub drill: Option<Duration>,
    /// First retry after a failed drill mail.
    pub drill_retry: Duration,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        validate::recovery(
            &file::RecoveryFile::default(),
            &mut validate::Report::default(),
        )
    }
}

/// Where audit events also go as syslog lines (`audit.syslog`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    Udp(String),
    Tcp(String),
}

impl SyslogTarget {
    /// `udp://HOST:PORT` or `tcp://HOST:PORT`.
    pub fn parse(s: &str) -> Result<SyslogTarget, String> {
        let (make, rest): (fn(String) -> SyslogTarget, &str) =
            if let Some(r) = s.strip_prefix("udp://") {
                (SyslogTarget::Udp, r)
            } else if let Some(r) = s.strip_prefix("tcp://") {
                (SyslogTarget::Tcp, r)
            } else {
                return Err(format!("{s:?} must start with udp:// or tcp://"));
            };
        let port_ok = rest
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok || rest.contains(['/', ' ', '@']) {
            return Err(format!("{s:?} must be udp://HOST:PORT or tcp://HOST:PORT"));
        }
        Ok(make(rest.to_string()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub server: Server,
    pub tls: TlsFiles,
    pub storage: Storage,
    pub network: Network,
    pub policy: Policy,
    pub control: Control,
    pub reset: Reset,
    pub recovery: RecoveryConfig,
    /// `audit.syslog`: audit events also as syslog lines there.
    pub syslog: Option<SyslogTarget>,
    pub log_level: tracing::Level,
    /// Simulated board (`--dev`).
    pub dev: bool,
    /// `i18n.default`: the pages' language when the browser asks for none of ours, and
    /// the mails' when the account chose none.
    pub language: crate::i18n::Lang,
    pub access: AccessConfig,
    /// `[directory]`: fleet sign-in (the admin's saved settings win).
    pub directory: directory::Directory,
    /// ... as the file writes it (the Directory page shows it until it saves its own).
    pub directory_settings: crate::model::DirectorySettings,
}

/// `[access]`: the trusted networks as the file says (the admin's choice on the page
/// wins), the probation of risky changes, the alerts' hourly cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    pub admin_networks: netlist::NetList,
    pub user_networks: netlist::NetList,
    pub probation: Duration,
    pub alerts_per_hour: u32,
    /// `access.sign_in = "directory"`: only directory users, and the local admin from
    /// the PBX's own network or the box itself.
    pub directory_only: bool,
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

    /// The access settings the file gives (the admin's saved ones win, spec §10).
    pub fn access_settings(&self) -> crate::model::AccessSettings {
        crate::model::AccessSettings {
            admin_networks: self.access.admin_networks.entries(),
            user_networks: self.access.user_networks.entries(),
            https_only: self.server.https_only,
            require_2fa_for_admin: self.policy.require_2fa_for_admin,
            sign_in: crate::model::sign_in_text(self.access.directory_only).into(),
        }
    }

    /// The host part of `public_url` (no scheme, port or brackets), lower case.
    pub fn public_host(&self) -> Option<String> {
        let rest = self.server.public_url.as_deref()?.split("://").nth(1)?;
        let host = if let Some(v6) = rest.strip_prefix('[') {
            v6.split(']').next()?
        } else {
            rest.split(':').next()?
        };
        (!host.is_empty()).then(|| host.to_ascii_lowercase())
    }

    /// Parses and validates config text, collecting every problem found.
    pub fn parse(text: &str) -> Result<Config, Problems> {
        let syntax = |e: toml::de::Error| {
            Problems(vec![Problem {
                key: key_at(text, e.span()).unwrap_or_else(|| "(file)".into()),
                message: e.message().to_string(),
            }])
        };
        let table: toml::Table = text.parse().map_err(syntax)?;
        Config::from_table(&table, text)
    }

    /// Validates a parsed table; `text`, where it came from, gives the line of a value
    /// of the wrong type (empty: none).
    pub fn from_table(table: &toml::Table, text: &str) -> Result<Config, Problems> {
        let found = std::cell::RefCell::new(Vec::new());
        let file = read::Reader::new(table, text, &found).read_all(ConfigFile::read);
        let mut problems = found.into_inner();
        match validate::validate(&file) {
            Ok(c) if problems.is_empty() => Ok(c),
            Ok(_) => Err(Problems(problems)),
            Err(Problems(more)) => {
                problems.extend(more);
                Err(Problems(problems))
            }
        }
    }
}

pub(crate) fn key_at(text: &str, span: Option<std::ops::Range<usize>>) -> Option<String> {
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
mod tests;
