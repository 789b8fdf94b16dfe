//! The config file as people write it: every key optional, with its default, each
//! struct read from its table by its `read` (the key names are written there once;
//! what no `read` asks for is an unknown key, see [`super::read`]).

use std::path::PathBuf;

use super::read::Reader;

#[derive(Debug, Default)]
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

/// `[directory]` (spec §11): [`crate::model::DirectorySettings`], as the Directory page
/// saves it too.
pub type DirectoryFile = crate::model::DirectorySettings;
pub type RadiusFile = crate::model::RadiusSettings;
pub type LdapFile = crate::model::LdapSettings;

/// `[access]`: who may reach the admin (spec §10).
#[derive(Debug)]
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

#[derive(Debug)]
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

#[derive(Debug, Default)]
pub struct AuditFile {
    /// `udp://HOST:PORT` or `tcp://HOST:PORT`: every audit event also as a syslog line.
    pub syslog: Option<String>,
}

#[derive(Debug)]
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

#[derive(Debug, Default)]
pub struct ResetFile {
    /// Files or directories of user data removed by a factory reset (besides the data DB
    /// and the partitions named in the board profile).
    pub erase_paths: Vec<PathBuf>,
}

#[derive(Debug)]
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

#[derive(Debug)]
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

#[derive(Debug, Default)]
pub struct NetworkFile {
    pub lan_subnets: Vec<String>,
    /// Interfaces whose subnets are the PBX's own network (a trailing `*` matches any
    /// rest); unset: all but `ppp*`, `wg*`, `tun*`, `docker*`.
    pub lan_interfaces: Option<Vec<String>>,
    /// Where blocked addresses are dropped: "daemon" (the default) or "nftables".
    pub block_with: Option<String>,
}

#[derive(Debug)]
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

#[derive(Debug)]
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

#[derive(Debug)]
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

impl ConfigFile {
    pub fn read(r: &Reader<'_>) -> ConfigFile {
        ConfigFile {
            server: r.section("server", ServerFile::read),
            storage: r.section("storage", StorageFile::read),
            network: r.section("network", NetworkFile::read),
            policy: r.section("policy", PolicyFile::read),
            control: r.section("control", ControlFile::read),
            reset: r.section("reset", ResetFile::read),
            recovery: r.section("recovery", RecoveryFile::read),
            audit: r.section("audit", AuditFile::read),
            log: r.section("log", LogFile::read),
            i18n: r.section("i18n", I18nFile::read),
            access: r.section("access", AccessFile::read),
            directory: r.section("directory", DirectoryFile::read),
        }
    }
}

impl DirectoryFile {
    pub fn read(r: &Reader<'_>) -> DirectoryFile {
        let d = DirectoryFile::default();
        crate::model::DirectorySettings {
            timeout_s: r.u64("timeout_s", d.timeout_s),
            retries: r.u64("retries", d.retries),
            radius_admin_attribute: r.string("radius_admin_attribute", d.radius_admin_attribute),
            radius_admin_value: r.string("radius_admin_value", d.radius_admin_value),
            radius_user_value: r.opt_string("radius_user_value"),
            radius: r.sections("radius", RadiusFile::read),
            ldap: r.opt_section("ldap", LdapFile::read),
        }
    }
}

impl RadiusFile {
    pub fn read(r: &Reader<'_>) -> RadiusFile {
        let d = RadiusFile::default();
        RadiusFile {
            address: r.string("address", d.address),
            secret: r.string("secret", d.secret),
            ca: r.string("ca", d.ca),
            client_cert: r.string("client_cert", d.client_cert),
            client_key: r.string("client_key", d.client_key),
        }
    }
}

impl LdapFile {
    pub fn read(r: &Reader<'_>) -> LdapFile {
        let d = LdapFile::default();
        LdapFile {
            url: r.string("url", d.url),
            ca: r.string("ca", d.ca),
            bind_dn: r.string("bind_dn", d.bind_dn),
            bind_password: r.string("bind_password", d.bind_password),
            base_dn: r.string("base_dn", d.base_dn),
            user_filter: r.string("user_filter", d.user_filter),
            admin_group: r.string("admin_group", d.admin_group),
            user_group: r.opt_string("user_group"),
        }
    }
}

impl AccessFile {
    pub fn read(r: &Reader<'_>) -> AccessFile {
        let d = AccessFile::default();
        AccessFile {
            admin_networks: r.strings("admin_networks", d.admin_networks),
            user_networks: r.strings("user_networks", d.user_networks),
            probation_s: r.u64("probation_s", d.probation_s),
            alerts_per_hour: r.u64("alerts_per_hour", d.alerts_per_hour),
            sign_in: r.string("sign_in", d.sign_in),
        }
    }
}

impl I18nFile {
    pub fn read(r: &Reader<'_>) -> I18nFile {
        let d = I18nFile::default();
        I18nFile {
            default: r.string("default", d.default),
        }
    }
}

impl AuditFile {
    pub fn read(r: &Reader<'_>) -> AuditFile {
        AuditFile {
            syslog: r.opt_string("syslog"),
        }
    }
}

impl RecoveryFile {
    pub fn read(r: &Reader<'_>) -> RecoveryFile {
        let d = RecoveryFile::default();
        RecoveryFile {
            button: r.string("button", d.button),
            drill_days: r.u64("drill_days", d.drill_days),
            drill_retry_s: r.u64("drill_retry_s", d.drill_retry_s),
        }
    }
}

impl ResetFile {
    pub fn read(r: &Reader<'_>) -> ResetFile {
        ResetFile {
            erase_paths: r.paths("erase_paths"),
        }
    }
}

impl ServerFile {
    pub fn read(r: &Reader<'_>) -> ServerFile {
        let d = ServerFile::default();
        ServerFile {
            http: r.strings("http", d.http),
            https: r.strings("https", d.https),
            tls_cert: r.opt_path("tls_cert"),
            tls_key: r.opt_path("tls_key"),
            public_url: r.opt_string("public_url"),
            cloud: r.bool("cloud", d.cloud),
            header_timeout_s: r.u64("header_timeout_s", d.header_timeout_s),
            body_timeout_s: r.u64("body_timeout_s", d.body_timeout_s),
            tls_handshake_timeout_s: r.u64("tls_handshake_timeout_s", d.tls_handshake_timeout_s),
            max_connections: r.u64("max_connections", d.max_connections),
            max_connections_per_address: r
                .u64("max_connections_per_address", d.max_connections_per_address),
            allowed_hosts: r.strings("allowed_hosts", d.allowed_hosts),
            https_only: r.bool("https_only", d.https_only),
        }
    }
}

impl StorageFile {
    pub fn read(r: &Reader<'_>) -> StorageFile {
        let d = StorageFile::default();
        StorageFile {
            board_db: r.path("board_db", d.board_db),
            data_db: r.path("data_db", d.data_db),
            state_dir: r.path("state_dir", d.state_dir),
            cache_capacity: r.u64("cache_capacity", d.cache_capacity),
        }
    }
}

impl NetworkFile {
    pub fn read(r: &Reader<'_>) -> NetworkFile {
        let d = NetworkFile::default();
        NetworkFile {
            lan_subnets: r.strings("lan_subnets", d.lan_subnets),
            lan_interfaces: r.opt_strings("lan_interfaces"),
            block_with: r.opt_string("block_with"),
        }
    }
}

impl PolicyFile {
    pub fn read(r: &Reader<'_>) -> PolicyFile {
        let d = PolicyFile::default();
        PolicyFile {
            lockout_failures: r.u64("lockout_failures", d.lockout_failures),
            lockout_window_s: r.u64("lockout_window_s", d.lockout_window_s),
            lockout_block_s: r.u64("lockout_block_s", d.lockout_block_s),
            account_slowdown_after: r.u64("account_slowdown_after", d.account_slowdown_after),
            account_slowdown_step_ms: r.u64("account_slowdown_step_ms", d.account_slowdown_step_ms),
            account_slowdown_max_ms: r.u64("account_slowdown_max_ms", d.account_slowdown_max_ms),
            password_min_len: r.u64("password_min_len", d.password_min_len),
            password_max_len: r.u64("password_max_len", d.password_max_len),
            session_idle_s: r.u64("session_idle_s", d.session_idle_s),
            session_absolute_s: r.u64("session_absolute_s", d.session_absolute_s),
            hash_concurrency: r.u64("hash_concurrency", d.hash_concurrency),
            hash_queue: r.u64("hash_queue", d.hash_queue),
            argon2_m_kib: r.u64("argon2_m_kib", d.argon2_m_kib),
            argon2_t: r.u64("argon2_t", d.argon2_t),
            reset_token_ttl_min: r.u64("reset_token_ttl_min", d.reset_token_ttl_min),
            forgot_per_address: r.u64("forgot_per_address", d.forgot_per_address),
            forgot_address_window_s: r.u64("forgot_address_window_s", d.forgot_address_window_s),
            forgot_mails_per_account: r.u64("forgot_mails_per_account", d.forgot_mails_per_account),
            forgot_account_window_s: r.u64("forgot_account_window_s", d.forgot_account_window_s),
            require_2fa_for_admin: r.bool("require_2fa_for_admin", d.require_2fa_for_admin),
        }
    }
}

impl ControlFile {
    pub fn read(r: &Reader<'_>) -> ControlFile {
        let d = ControlFile::default();
        ControlFile {
            socket: r.path("socket", d.socket),
        }
    }
}

impl LogFile {
    pub fn read(r: &Reader<'_>) -> LogFile {
        let d = LogFile::default();
        LogFile {
            level: r.string("level", d.level),
        }
    }
}
