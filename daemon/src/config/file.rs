//! The config file as people write it: every key optional, with its default. Unknown
//! keys are found by [`unknown_keys`] against [`KEYS`], so that all of them are reported
//! at once (a unit test holds [`KEYS`] to the structs' fields).

use std::path::PathBuf;

use serde::Deserialize;

/// Every table of the file and its keys: the sections of [`ConfigFile`] and the tables
/// inside them (`directory.radius` is an array of tables).
pub const KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "server",
            "storage",
            "network",
            "policy",
            "control",
            "reset",
            "recovery",
            "audit",
            "log",
            "i18n",
            "access",
            "directory",
        ],
    ),
    (
        "access",
        &[
            "admin_networks",
            "user_networks",
            "probation_s",
            "alerts_per_hour",
            "sign_in",
        ],
    ),
    (
        "directory",
        &[
            "timeout_s",
            "retries",
            "radius_admin_attribute",
            "radius_admin_value",
            "radius_user_value",
            "radius",
            "ldap",
        ],
    ),
    (
        "directory.radius",
        &["address", "secret", "ca", "client_cert", "client_key"],
    ),
    (
        "directory.ldap",
        &[
            "url",
            "ca",
            "bind_dn",
            "bind_password",
            "base_dn",
            "user_filter",
            "admin_group",
            "user_group",
        ],
    ),
    ("i18n", &["default"]),
    ("audit", &["syslog"]),
    ("recovery", &["button", "drill_days", "drill_retry_s"]),
    ("reset", &["erase_paths"]),
    (
        "server",
        &[
            "http",
            "https",
            "tls_cert",
            "tls_key",
            "public_url",
            "cloud",
            "header_timeout_s",
            "body_timeout_s",
            "tls_handshake_timeout_s",
            "max_connections",
            "max_connections_per_address",
            "allowed_hosts",
            "https_only",
        ],
    ),
    (
        "storage",
        &["board_db", "data_db", "state_dir", "cache_capacity"],
    ),
    ("network", &["lan_subnets", "lan_interfaces", "block_with"]),
    (
        "policy",
        &[
            "lockout_failures",
            "lockout_window_s",
            "lockout_block_s",
            "account_slowdown_after",
            "account_slowdown_step_ms",
            "account_slowdown_max_ms",
            "password_min_len",
            "password_max_len",
            "session_idle_s",
            "session_absolute_s",
            "hash_concurrency",
            "hash_queue",
            "argon2_m_kib",
            "argon2_t",
            "reset_token_ttl_min",
            "forgot_per_address",
            "forgot_address_window_s",
            "forgot_mails_per_account",
            "forgot_account_window_s",
            "require_2fa_for_admin",
        ],
    ),
    ("control", &["socket"]),
    ("log", &["level"]),
];

/// The path of every key in `table` (at `path`, "" for the file) that [`KEYS`] does not
/// know, in file order of the tables: `server.colour`, `directory.radius[1].port`.
pub fn unknown_keys(path: &str, table: &toml::Table, out: &mut Vec<String>) {
    let known = KEYS
        .iter()
        .find(|(p, _)| *p == path)
        .map_or(&[][..], |k| k.1);
    for (k, v) in table {
        let at = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        if !known.contains(&k.as_str()) {
            out.push(at);
            continue;
        }
        let nested = |t: &toml::Table, shown: &str, out: &mut Vec<String>| {
            if KEYS.iter().any(|(p, _)| *p == at) {
                let mut inner = Vec::new();
                unknown_keys(&at, t, &mut inner);
                out.extend(
                    inner
                        .into_iter()
                        .map(|u| format!("{shown}{}", &u[at.len()..])),
                );
            }
        };
        match v {
            toml::Value::Table(t) => nested(t, &at, out),
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let toml::Value::Table(t) = item {
                        nested(t, &format!("{at}[{i}]"), out);
                    }
                }
            }
            _ => {}
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    pub server: ServerFile,
    pub storage: StorageFile,
    pub network: NetworkFile,
    pub policy: PolicyFile,
    pub control: ControlFile,
    pub reset: ResetFile,
    pub recovery: RecoveryFile,
    pub audit: AuditFile,
    pub log: LogFile,
    pub i18n: I18nFile,
    pub access: AccessFile,
    pub directory: DirectoryFile,
}

/// `[directory]`: fleet sign-in from the company's RADIUS servers or LDAP directory
/// (spec §11); nothing configured: local accounts only.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct DirectoryFile {
    /// Per try of one server.
    pub timeout_s: u64,
    /// Tries after the first, per server (RADIUS over UDP).
    pub retries: u64,
    /// The reply attribute (`Class`, `Filter-Id` or a number) that grants the admin
    /// role when it has `radius_admin_value`.
    pub radius_admin_attribute: String,
    pub radius_admin_value: String,
    /// Unset: every other accepted user is a user; set: only those with this value of
    /// the same attribute, the rest are refused.
    pub radius_user_value: Option<String>,
    pub radius: Vec<RadiusFile>,
    pub ldap: Option<LdapFile>,
}

impl Default for DirectoryFile {
    fn default() -> Self {
        DirectoryFile {
            timeout_s: 3,
            retries: 1,
            radius_admin_attribute: "Class".into(),
            radius_admin_value: "pbx-admin".into(),
            radius_user_value: None,
            radius: Vec::new(),
            ldap: None,
        }
    }
}

/// One `[[directory.radius]]` server, asked in the order of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RadiusFile {
    /// `IP:PORT` (UDP) or `radsec://HOST:PORT` (TLS, RFC 6614).
    pub address: String,
    pub secret: String,
    /// RadSec: the CA that signed the server's certificate (PEM).
    pub ca: Option<PathBuf>,
    /// RadSec: the box's own certificate and key, for a server that asks for one.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// `[directory.ldap]`: search-then-bind.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LdapFile {
    /// `ldaps://HOST:PORT` or `ldap://HOST:PORT?starttls`.
    pub url: String,
    pub ca: Option<PathBuf>,
    pub bind_dn: String,
    pub bind_password: String,
    pub base_dn: String,
    /// `{username}` is replaced by the typed name, escaped (RFC 4515).
    pub user_filter: String,
    pub admin_group: String,
    /// Unset: every other user found is a user; set: only members of this group.
    pub user_group: Option<String>,
}

/// `[access]`: who may reach the admin (spec §10).
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct AccessFile {
    /// Where admin-role accounts may sign in from: CIDR subnets, single addresses, or
    /// `local` (loopback and the box's own LAN segment); empty: anywhere.
    pub admin_networks: Vec<String>,
    /// The same for extension (user-role) accounts.
    pub user_networks: Vec<String>,
    /// How long a change that can lock the admin out waits for its confirmation
    /// before it reverts by itself.
    pub probation_s: u64,
    /// Alert mails sent in one hour at most, over all kinds; the rest are summarised.
    pub alerts_per_hour: u64,
    /// `local+directory` or `directory` (only directory users, and the local admin from
    /// the PBX's own network or the box itself).
    pub sign_in: String,
}

impl Default for AccessFile {
    fn default() -> Self {
        AccessFile {
            admin_networks: Vec::new(),
            user_networks: Vec::new(),
            probation_s: 600,
            alerts_per_hour: 10,
            sign_in: "local+directory".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct I18nFile {
    /// The pages' language for a browser that asks for none of the ten, and the mails'
    /// for an account that chose none: `en`, `de`, `fr`, `es`, `it`, `pt-BR`, `ru`,
    /// `tr`, `zh-CN` or `ar`.
    pub default: String,
}

impl Default for I18nFile {
    fn default() -> Self {
        I18nFile {
            default: "en".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuditFile {
    /// `udp://HOST:PORT` or `tcp://HOST:PORT`: every audit event also as a syslog line.
    pub syslog: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RecoveryFile {
    /// What a 3-8 s press of the reset button does: `credentials`, `mail` or `off`.
    pub button: String,
    /// Days between "Recovery check" mails to the bound admin addresses; 0 = off.
    pub drill_days: u64,
    /// First retry after a failed "Recovery check" mail; doubles up to 6 h.
    pub drill_retry_s: u64,
}

impl Default for RecoveryFile {
    fn default() -> Self {
        RecoveryFile {
            button: "credentials".into(),
            drill_days: 30,
            drill_retry_s: 300,
        }
    }
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
    /// Plain HTTP answers `/healthz` and a 308 to HTTPS for the rest, except from
    /// loopback (false with `--dev`).
    pub https_only: bool,
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
            https_only: true,
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
    /// Where blocked addresses are dropped: "daemon" (the default) or "nftables".
    pub block_with: Option<String>,
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
    /// argon2id memory (KiB) and passes for new hashes; at least one of OWASP's pairs.
    pub argon2_m_kib: u64,
    pub argon2_t: u64,
    pub reset_token_ttl_min: u64,
    pub forgot_per_address: u64,
    pub forgot_address_window_s: u64,
    pub forgot_mails_per_account: u64,
    pub forgot_account_window_s: u64,
    /// The admin must set up two-factor sign-in at the next sign-in.
    pub require_2fa_for_admin: bool,
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
            argon2_m_kib: 19_456,
            argon2_t: 2,
            reset_token_ttl_min: 30,
            forgot_per_address: 5,
            forgot_address_window_s: 15 * 60,
            forgot_mails_per_account: 3,
            forgot_account_window_s: 3600,
            require_2fa_for_admin: false,
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
            socket: super::DEFAULT_SOCKET.into(),
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
