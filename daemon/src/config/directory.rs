//! `[directory]` validated (spec §11): the RADIUS servers and the LDAP directory that
//! fleet sign-in asks, each problem with its key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::file::{DirectoryFile, LdapFile, RadiusFile};
use super::validate::Report;

/// A shared secret or bind password: compared and sent, never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Hidden(pub String);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "(hidden)"
        })
    }
}

/// Where a RADIUS server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RadiusAddress {
    /// RFC 2865 over UDP.
    Udp(SocketAddr),
    /// RFC 6614 (RadSec): RADIUS over TLS on TCP; the certificate must name `host`.
    Tls { host: String, port: u16 },
}

impl std::fmt::Display for RadiusAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RadiusAddress::Udp(a) => write!(f, "{a}"),
            RadiusAddress::Tls { host, port } => write!(f, "radsec://{host}:{port}"),
        }
    }
}

impl RadiusAddress {
    /// `IP:PORT` or `radsec://HOST:PORT` (port 2083 when left out).
    pub fn parse(s: &str) -> Result<RadiusAddress, String> {
        if let Some(rest) = s.strip_prefix("radsec://") {
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse() {
                    Ok(p) if p > 0 => (h, p),
                    _ => return Err(format!("{s:?}: the port must be a number 1-65535")),
                },
                _ => (rest, 2083),
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || host.contains(['/', ' ', '@', '?']) {
                return Err(format!("{s:?} must be radsec://HOST:PORT"));
            }
            return Ok(RadiusAddress::Tls {
                host: host.to_ascii_lowercase(),
                port,
            });
        }
        s.parse::<SocketAddr>()
            .map(RadiusAddress::Udp)
            .map_err(|_| {
                format!(
                    "{s:?} is neither IP:PORT (UDP, e.g. \"10.0.0.5:1812\") nor radsec://HOST:PORT"
                )
            })
    }
}

/// One RADIUS server as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusServer {
    pub address: RadiusAddress,
    pub secret: Hidden,
    pub ca: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// `[directory.ldap]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ldap {
    /// As written (shown, and named in messages).
    pub url: String,
    pub host: String,
    pub port: u16,
    /// `ldap://...?starttls` (else LDAPS).
    pub starttls: bool,
    pub ca: PathBuf,
    pub bind_dn: String,
    pub bind_password: Hidden,
    pub base_dn: String,
    pub user_filter: String,
    pub admin_group: String,
    pub user_group: Option<String>,
}

/// Fleet sign-in: nothing configured means local accounts only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    pub timeout: Duration,
    pub retries: u32,
    /// The reply attribute's type and the value that grant the admin role.
    pub radius_admin_attribute: u8,
    pub radius_admin_value: String,
    pub radius_user_value: Option<String>,
    pub radius: Vec<RadiusServer>,
    pub ldap: Option<Ldap>,
}

impl Default for Directory {
    fn default() -> Self {
        directory(&DirectoryFile::default(), &mut Report::default())
    }
}

impl Directory {
    /// Something to ask.
    pub fn configured(&self) -> bool {
        !self.radius.is_empty() || self.ldap.is_some()
    }

    /// How long one sign-in may wait for the directory at most: every server's tries
    /// (over UDP; a RadSec server's connect, handshake and reply), then the LDAP
    /// directory's connect, binds and search.
    pub fn deadline(&self) -> Duration {
        let tries: u32 = self
            .radius
            .iter()
            .map(|s| match s.address {
                RadiusAddress::Udp(_) => 1 + self.retries,
                RadiusAddress::Tls { .. } => 3,
            })
            .sum();
        let ldap = if self.ldap.is_some() { 4 } else { 0 };
        self.timeout * (tries + ldap).max(1)
    }
}

/// RADIUS attribute names the config may use for the role (RFC 2865 §5), or a number.
pub fn attribute_type(name: &str) -> Option<u8> {
    match name.to_ascii_lowercase().as_str() {
        "class" => Some(25),
        "filter-id" => Some(11),
        "reply-message" => Some(18),
        n => n.parse().ok().filter(|t| *t > 0),
    }
}

pub(super) fn directory(f: &DirectoryFile, r: &mut Report) -> Directory {
    let radius_admin_attribute = attribute_type(&f.radius_admin_attribute).unwrap_or_else(|| {
        r.bad(
            "directory.radius_admin_attribute",
            format!(
                "{:?} is not Class, Filter-Id or an attribute number 1-255",
                f.radius_admin_attribute
            ),
        );
        25
    });
    if f.radius_admin_value.is_empty() {
        r.bad(
            "directory.radius_admin_value",
            "must not be empty: it is what a reply must carry to grant the admin role".into(),
        );
    }
    if f.radius.len() > 2 {
        r.bad(
            "directory.radius",
            format!(
                "{} servers: at most 2 (a main one and its fallback)",
                f.radius.len()
            ),
        );
    }
    let radius = f
        .radius
        .iter()
        .take(2)
        .enumerate()
        .filter_map(|(i, s)| radius(&format!("directory.radius[{i}]"), s, r))
        .collect();
    Directory {
        timeout: r.secs("directory.timeout_s", f.timeout_s, 1, 30),
        retries: r.range("directory.retries", f.retries, 0, 5) as u32,
        radius_admin_attribute,
        radius_admin_value: f.radius_admin_value.clone(),
        radius_user_value: f.radius_user_value.clone().filter(|v| !v.is_empty()),
        radius,
        ldap: f.ldap.as_ref().and_then(|l| ldap(l, r)),
    }
}

fn radius(key: &str, s: &RadiusFile, r: &mut Report) -> Option<RadiusServer> {
    let address = RadiusAddress::parse(&s.address)
        .map_err(|e| r.bad(&format!("{key}.address"), e))
        .ok();
    if s.secret.is_empty() {
        r.bad(
            &format!("{key}.secret"),
            "the shared secret is missing (RadSec's is \"radsec\" by RFC 6614)".into(),
        );
    }
    let tls = matches!(address, Some(RadiusAddress::Tls { .. }));
    if tls && s.ca.is_none() {
        r.bad(
            &format!("{key}.ca"),
            "a RadSec server needs the CA (PEM file) that signed its certificate".into(),
        );
    }
    if !tls && (s.ca.is_some() || s.client_cert.is_some() || s.client_key.is_some()) {
        r.bad(
            &format!("{key}.ca"),
            "ca, client_cert and client_key are for radsec:// servers only".into(),
        );
    }
    if s.client_cert.is_some() != s.client_key.is_some() {
        r.bad(
            &format!("{key}.client_key"),
            "client_cert and client_key go together".into(),
        );
    }
    Some(RadiusServer {
        address: address?,
        secret: Hidden(s.secret.clone()),
        ca: s.ca.clone(),
        client_cert: s.client_cert.clone(),
        client_key: s.client_key.clone(),
    })
    .filter(|_| !s.secret.is_empty())
}

/// `ldaps://HOST[:PORT]` (636) or `ldap://HOST[:PORT]?starttls` (389): host, port,
/// StartTLS.
pub fn ldap_url(url: &str) -> Result<(String, u16, bool), String> {
    let (rest, starttls, default) = if let Some(r) = url.strip_prefix("ldaps://") {
        (r, false, 636)
    } else if let Some(r) = url
        .strip_prefix("ldap://")
        .and_then(|r| r.strip_suffix("?starttls"))
    {
        (r, true, 389)
    } else {
        return Err(format!(
            "{url:?} must be ldaps://HOST:PORT or ldap://HOST:PORT?starttls (passwords never go unencrypted)"
        ));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => match p.parse::<u16>() {
            Ok(p) if p > 0 => (h, p),
            _ => return Err(format!("{url:?}: the port must be a number 1-65535")),
        },
        _ => (rest, default),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', ' ', '@', '?']) {
        return Err(format!("{url:?} has no host name"));
    }
    Ok((host.to_ascii_lowercase(), port, starttls))
}

fn ldap(l: &LdapFile, r: &mut Report) -> Option<Ldap> {
    let url = ldap_url(&l.url)
        .map_err(|e| r.bad("directory.ldap.url", e))
        .ok();
    if l.ca.is_none() {
        r.bad(
            "directory.ldap.ca",
            "the CA (PEM file) that signed the directory's certificate is missing".into(),
        );
    }
    let mut need = |key: &str, v: &str| {
        if v.is_empty() {
            r.bad(&format!("directory.ldap.{key}"), "must be set".into());
        }
    };
    need("base_dn", &l.base_dn);
    need("admin_group", &l.admin_group);
    if !l.user_filter.contains("{username}") {
        r.bad(
            "directory.ldap.user_filter",
            format!(
                "{:?} must contain {{username}}, e.g. \"(uid={{username}})\"",
                l.user_filter
            ),
        );
    }
    let (host, port, starttls) = url?;
    Some(Ldap {
        url: l.url.clone(),
        host,
        port,
        starttls,
        ca: l.ca.clone()?,
        bind_dn: l.bind_dn.clone(),
        bind_password: Hidden(l.bind_password.clone()),
        base_dn: l.base_dn.clone(),
        user_filter: l.user_filter.clone(),
        admin_group: l.admin_group.clone(),
        user_group: l.user_group.clone().filter(|g| !g.is_empty()),
    })
}
