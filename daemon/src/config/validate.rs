//! From the file as written ([`ConfigFile`]) to the runtime [`Config`], one function per
//! section; every problem is collected with its key path, none stops the others.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use pbx_board::Subnet;

use super::file::{
    ConfigFile, LogFile, NetworkFile, PolicyFile, RecoveryFile, ResetFile, ServerFile, StorageFile,
};
use super::{
    Config, Control, Network, Problem, Problems, Reset, Server, Storage, TlsFiles,
    MAX_CACHE_CAPACITY,
};

/// The problems found so far.
#[derive(Default)]
pub(super) struct Report(Vec<Problem>);

impl Report {
    pub(super) fn bad(&mut self, key: &str, message: String) {
        self.0.push(Problem {
            key: key.into(),
            message,
        });
    }

    /// `v` within `lo..=hi`, or a problem (and the value clamped, so later checks work).
    pub(super) fn range(&mut self, key: &str, v: u64, lo: u64, hi: u64) -> u64 {
        if v < lo || v > hi {
            self.bad(key, format!("{v} is out of range {lo}..={hi}"));
        }
        v.clamp(lo, hi)
    }

    pub(super) fn secs(&mut self, key: &str, v: u64, lo: u64, hi: u64) -> Duration {
        Duration::from_secs(self.range(key, v, lo, hi))
    }
}

/// Turns a parsed file into a runtime config, or lists every problem with its key.
pub(super) fn validate(file: &ConfigFile) -> Result<Config, Problems> {
    let mut r = Report::default();
    let server = server(&file.server, &mut r);
    let tls = tls(&file.server, &file.storage, &mut r);
    let storage = storage(&file.storage, &mut r);
    let reset = reset(&file.storage, &file.reset, &mut r);
    let network = network(&file.network, &mut r);
    let control = control(file, &mut r);
    let log_level = log(&file.log, &mut r);
    let policy = policy(&file.policy, &mut r);
    let recovery = recovery(&file.recovery, &mut r);
    let access = access(&file.access, &mut r);
    let directory = super::directory::validate(&file.directory).unwrap_or_else(|bad| {
        for mut b in bad {
            // The message names its field: the file's full key, once.
            let key = format!("directory.{}", b.field);
            b.msg.args[0].1 = key.clone();
            let text = b.msg.text(crate::i18n::Lang::En);
            let text = text.strip_prefix(&format!("{key}: ")).unwrap_or(&text);
            r.bad(&key, text.to_string());
        }
        super::directory::Directory::default()
    });
    let syslog = file.audit.syslog.as_deref().and_then(|t| {
        super::SyslogTarget::parse(t)
            .map_err(|e| r.bad("audit.syslog", e))
            .ok()
    });
    let language = match crate::i18n::Lang::ALL
        .into_iter()
        .find(|l| l.code() == file.i18n.default)
    {
        Some(l) if l.shipped() => l,
        _ => {
            let codes: Vec<&str> = crate::i18n::Lang::shipped_all().map(|l| l.code()).collect();
            r.bad(
                "i18n.default",
                format!(
                    "{:?} is not one of the languages {}",
                    file.i18n.default,
                    codes.join(", ")
                ),
            );
            crate::i18n::Lang::En
        }
    };
    if !r.0.is_empty() {
        return Err(Problems(r.0));
    }
    Ok(Config {
        access,
        directory,
        directory_settings: file.directory.clone(),
        language,
        server,
        tls,
        storage,
        network,
        policy,
        control,
        reset,
        recovery,
        syslog,
        log_level,
        dev: false,
    })
}

fn access(f: &super::file::AccessFile, r: &mut Report) -> super::AccessConfig {
    use super::netlist::NetList;
    let mut nets = |key: &str, list: &[String]| {
        NetList::parse(list).unwrap_or_else(|e| {
            r.bad(key, e);
            NetList::default()
        })
    };
    let admin_networks = nets("access.admin_networks", &f.admin_networks);
    let user_networks = nets("access.user_networks", &f.user_networks);
    super::AccessConfig {
        admin_networks,
        user_networks,
        probation: r.secs("access.probation_s", f.probation_s, 1, 86_400),
        alerts_per_hour: r.range("access.alerts_per_hour", f.alerts_per_hour, 1, 1000) as u32,
        directory_only: match f.sign_in.as_str() {
            "local+directory" => false,
            "directory" => true,
            other => {
                r.bad(
                    "access.sign_in",
                    format!("{other:?} is not \"local+directory\" or \"directory\""),
                );
                false
            }
        },
    }
}

fn server(s: &ServerFile, r: &mut Report) -> Server {
    let mut addrs = |key: &str, list: &[String]| -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for (i, a) in list.iter().enumerate() {
            match a.parse::<SocketAddr>() {
                Ok(sa) => out.push(sa),
                Err(_) => r.bad(
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
        r.bad(
            "server.https",
            "no listener configured: set server.http and/or server.https".into(),
        );
    }
    let public_url = match &s.public_url {
        None => None,
        Some(u) => match check_public_url(u) {
            Ok(u) => Some(u),
            Err(m) => {
                r.bad("server.public_url", m);
                None
            }
        },
    };
    let header_timeout = r.secs("server.header_timeout_s", s.header_timeout_s, 1, 120);
    let body_timeout = r.secs("server.body_timeout_s", s.body_timeout_s, 1, 120);
    let tls_handshake_timeout = r.secs(
        "server.tls_handshake_timeout_s",
        s.tls_handshake_timeout_s,
        1,
        120,
    );
    if s.max_connections_per_address == 0 || s.max_connections_per_address > s.max_connections {
        r.bad(
            "server.max_connections_per_address",
            format!(
                "{} is out of range 1..=server.max_connections",
                s.max_connections_per_address
            ),
        );
    }
    if !(1..=65_536).contains(&s.max_connections) {
        r.bad(
            "server.max_connections",
            format!("{} is out of range 1..=65536", s.max_connections),
        );
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
            r.bad(
                &format!("server.allowed_hosts[{i}]"),
                format!("{h:?} is not a host name (letters, digits, '-' and '.', no port)"),
            );
        }
    }
    Server {
        http,
        https,
        public_url,
        cloud: s.cloud,
        header_timeout,
        body_timeout,
        tls_handshake_timeout,
        allowed_hosts,
        max_connections: usize::try_from(s.max_connections).unwrap_or(256),
        max_connections_per_address: usize::try_from(s.max_connections_per_address).unwrap_or(64),
        https_only: s.https_only,
    }
}

fn tls(s: &ServerFile, st: &StorageFile, r: &mut Report) -> TlsFiles {
    let none = TlsFiles {
        cert: PathBuf::new(),
        key: PathBuf::new(),
        generate: false,
    };
    match (&s.tls_cert, &s.tls_key) {
        (Some(cert), Some(key)) => TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            generate: false,
        },
        (None, None) => TlsFiles {
            cert: st.state_dir.join("tls/cert.pem"),
            key: st.state_dir.join("tls/key.pem"),
            generate: true,
        },
        (Some(_), None) => {
            r.bad(
                "server.tls_key",
                "tls_cert is set, so tls_key must be set too".into(),
            );
            none
        }
        (None, Some(_)) => {
            r.bad(
                "server.tls_cert",
                "tls_key is set, so tls_cert must be set too".into(),
            );
            none
        }
    }
}

fn storage(st: &StorageFile, r: &mut Report) -> Storage {
    for (key, path) in [
        ("storage.board_db", &st.board_db),
        ("storage.data_db", &st.data_db),
        ("storage.state_dir", &st.state_dir),
    ] {
        if path.as_os_str().is_empty() {
            r.bad(key, "must not be empty".into());
        }
    }
    if !(64 * 1024..=MAX_CACHE_CAPACITY).contains(&st.cache_capacity) {
        r.bad(
            "storage.cache_capacity",
            format!(
                "{} bytes is out of range 65536..={MAX_CACHE_CAPACITY} (2 MiB)",
                st.cache_capacity
            ),
        );
    }
    Storage {
        board_db: st.board_db.clone(),
        data_db: st.data_db.clone(),
        state_dir: st.state_dir.clone(),
        cache_capacity: st.cache_capacity,
    }
}

/// What a factory reset erases, with symlinks and `..` resolved: never the board DB, a
/// system directory or the binary's own directory (the data DB is checked here too).
fn reset(st: &StorageFile, f: &ResetFile, r: &mut Report) -> Reset {
    let keep = crate::fsutil::kept_paths(&st.board_db);
    let mut targets = vec![("storage.data_db".to_string(), &st.data_db)];
    for (i, p) in f.erase_paths.iter().enumerate() {
        let key = format!("reset.erase_paths[{i}]");
        if p.is_absolute() {
            targets.push((key, p));
        } else {
            r.bad(&key, format!("{} must be an absolute path", p.display()));
        }
    }
    for (key, p) in targets {
        match crate::fsutil::resolve(p) {
            Err(e) => r.bad(&key, format!("{}: {e}", p.display())),
            Ok(real) => {
                if let Some(why) = crate::fsutil::forbidden_target(&real, &keep) {
                    r.bad(
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
    Reset {
        erase_paths: f.erase_paths.clone(),
    }
}

fn network(f: &NetworkFile, r: &mut Report) -> Network {
    let mut lan_subnets = Vec::new();
    for (i, n) in f.lan_subnets.iter().enumerate() {
        match n.parse::<Subnet>() {
            Ok(sn) if sn.prefix() == 0 => r.bad(
                &format!("network.lan_subnets[{i}]"),
                format!("{n:?} would make every address local; name the LAN's own subnet"),
            ),
            Ok(sn) => lan_subnets.push(sn),
            Err(e) => r.bad(&format!("network.lan_subnets[{i}]"), format!("{n:?}: {e}")),
        }
    }
    use super::BlockWith;
    let block_with = match f.block_with.as_deref() {
        None | Some("daemon") => BlockWith::Daemon,
        Some("nftables") => BlockWith::Nftables,
        Some(other) => {
            r.bad(
                "network.block_with",
                format!("{other:?} is not \"daemon\" or \"nftables\""),
            );
            BlockWith::Daemon
        }
    };
    Network {
        lan_subnets,
        lan_interfaces: f.lan_interfaces.clone(),
        block_with,
    }
}

fn control(f: &ConfigFile, r: &mut Report) -> Control {
    if f.control.socket.as_os_str().is_empty() {
        r.bad("control.socket", "must not be empty".into());
    }
    Control {
        socket: f.control.socket.clone(),
    }
}

fn log(f: &LogFile, r: &mut Report) -> tracing::Level {
    match f.level.as_str() {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        other => {
            r.bad(
                "log.level",
                format!("{other:?} is not one of error, warn, info, debug, trace"),
            );
            tracing::Level::INFO
        }
    }
}

mod rules;
pub(super) use rules::{policy, recovery};

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
