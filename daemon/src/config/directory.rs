//! Fleet sign-in's settings validated (spec §11): from [`DirectorySettings`] (the config
//! file's `[directory]` or the Directory page) to the [`Directory`] that sign-in asks,
//! or every problem with its field, in words of every language (the config check
//! prints them in English with `directory.` before the field).

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::i18n::{k, Key, Msg};
use crate::model::{DirectorySettings, LdapSettings, RadiusSettings};

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

/// A certificate or key in PEM: the text itself, or (from the config file) the path of
/// a file that holds it, read when used.
#[derive(Clone, PartialEq, Eq)]
pub struct Pem(pub String);

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_text() {
            f.write_str("(PEM)")
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

impl Pem {
    fn is_text(&self) -> bool {
        self.0.trim_start().starts_with("-----BEGIN")
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        if self.is_text() {
            Ok(self.0.as_bytes().to_vec())
        } else {
            std::fs::read(&self.0).map_err(|e| format!("{}: {e}", self.0))
        }
    }

    /// The certificates in it (at least one).
    pub fn certs(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        let certs: Vec<_> = CertificateDer::pem_slice_iter(&self.bytes()?)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{self:?}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("{self:?}: no CERTIFICATE block"));
        }
        Ok(certs)
    }

    pub fn key(&self) -> Result<PrivateKeyDer<'static>, String> {
        PrivateKeyDer::from_pem_slice(&self.bytes()?).map_err(|e| format!("{self:?}: {e}"))
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
    pub fn parse(s: &str) -> Option<RadiusAddress> {
        let Some(rest) = s.strip_prefix("radsec://") else {
            return s.parse::<SocketAddr>().ok().map(RadiusAddress::Udp);
        };
        let (host, port) = host_port(rest, 2083)?;
        Some(RadiusAddress::Tls { host, port })
    }
}

/// `HOST[:PORT]` (an IPv6 address in brackets), lower case; `default` without a port.
fn host_port(rest: &str, default: u16) -> Option<(String, u16)> {
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
            (h, p.parse::<u16>().ok().filter(|p| *p > 0)?)
        }
        _ => (rest, default),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', ' ', '@', '?']) {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

/// One RADIUS server as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusServer {
    pub address: RadiusAddress,
    pub secret: Hidden,
    /// RadSec: the CA its certificate must chain to.
    pub ca: Option<Pem>,
    /// RadSec: the box's certificate and key.
    pub client: Option<(Pem, Pem)>,
}

/// The LDAP directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ldap {
    /// As written (shown, and named in messages).
    pub url: String,
    pub host: String,
    pub port: u16,
    /// `ldap://...?starttls` (else LDAPS).
    pub starttls: bool,
    pub ca: Pem,
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
        Directory {
            timeout: Duration::from_secs(3),
            retries: 1,
            radius_admin_attribute: 25,
            radius_admin_value: "pbx-admin".into(),
            radius_user_value: None,
            radius: Vec::new(),
            ldap: None,
        }
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

/// RADIUS attribute names the settings may use for the role (RFC 2865 §5), or a number.
pub fn attribute_type(name: &str) -> Option<u8> {
    match name.to_ascii_lowercase().as_str() {
        "class" => Some(25),
        "filter-id" => Some(11),
        "reply-message" => Some(18),
        n => n.parse().ok().filter(|t| *t > 0),
    }
}

/// A problem with one field (`radius[0].secret`, `ldap.url`), in words.
#[derive(Debug, Clone)]
pub struct Bad {
    pub field: String,
    pub msg: Msg,
}

#[derive(Default)]
struct Found(Vec<Bad>);

impl Found {
    fn bad(&mut self, field: &str, key: Key) -> Msg {
        let _ = self;
        Msg::new(key).arg("field", field)
    }

    fn push(&mut self, field: &str, msg: Msg) {
        self.0.push(Bad {
            field: field.to_string(),
            msg,
        });
    }

    fn say(&mut self, field: &str, key: Key) {
        let m = self.bad(field, key);
        self.push(field, m);
    }

    fn range(&mut self, field: &str, v: u64, lo: u64, hi: u64) -> u64 {
        if !(lo..=hi).contains(&v) {
            let m = self
                .bad(field, k::MSG_DIR_RANGE)
                .arg("value", v)
                .arg("lo", lo)
                .arg("hi", hi);
            self.push(field, m);
        }
        v.clamp(lo, hi)
    }

    /// A PEM given as text must hold what it should; a path is read when used.
    fn pem(&mut self, field: &str, v: &str, key: bool) -> Option<Pem> {
        if v.trim().is_empty() {
            return None;
        }
        let pem = Pem(v.trim().to_string());
        let ok = !pem.is_text()
            || if key {
                pem.key().is_ok()
            } else {
                pem.certs().is_ok()
            };
        if !ok {
            self.say(
                field,
                if key {
                    k::MSG_DIR_BAD_KEY
                } else {
                    k::MSG_DIR_BAD_PEM
                },
            );
        }
        Some(pem)
    }
}

/// The settings as sign-in uses them, or every problem found.
pub fn validate(s: &DirectorySettings) -> Result<Directory, Vec<Bad>> {
    let mut f = Found::default();
    let radius_admin_attribute = attribute_type(&s.radius_admin_attribute).unwrap_or_else(|| {
        let m = f
            .bad("radius_admin_attribute", k::MSG_DIR_ATTRIBUTE)
            .arg("value", &s.radius_admin_attribute);
        f.push("radius_admin_attribute", m);
        25
    });
    if s.radius_admin_value.is_empty() {
        f.say("radius_admin_value", k::MSG_DIR_ADMIN_VALUE);
    }
    if s.radius.len() > 2 {
        f.say("radius", k::MSG_DIR_TOO_MANY);
    }
    let radius = s
        .radius
        .iter()
        .take(2)
        .enumerate()
        .filter_map(|(i, r)| radius(&format!("radius[{i}]"), r, &mut f))
        .collect();
    let timeout = Duration::from_secs(f.range("timeout_s", s.timeout_s, 1, 30));
    let retries = f.range("retries", s.retries, 0, 5) as u32;
    let ldap = s.ldap.as_ref().and_then(|l| ldap(l, &mut f));
    if !f.0.is_empty() {
        return Err(f.0);
    }
    Ok(Directory {
        timeout,
        retries,
        radius_admin_attribute,
        radius_admin_value: s.radius_admin_value.clone(),
        radius_user_value: s.radius_user_value.clone().filter(|v| !v.is_empty()),
        radius,
        ldap,
    })
}

fn radius(key: &str, s: &RadiusSettings, f: &mut Found) -> Option<RadiusServer> {
    let field = |name: &str| format!("{key}.{name}");
    let address = RadiusAddress::parse(&s.address);
    if address.is_none() {
        let m = f
            .bad(&field("address"), k::MSG_DIR_RADIUS_ADDRESS)
            .arg("value", &s.address);
        f.push(&field("address"), m);
    }
    if s.secret.is_empty() {
        f.say(&field("secret"), k::MSG_DIR_RADIUS_SECRET);
    }
    let tls = matches!(address, Some(RadiusAddress::Tls { .. }));
    let ca = f.pem(&field("ca"), &s.ca, false);
    let cert = f.pem(&field("client_cert"), &s.client_cert, false);
    let client_key = f.pem(&field("client_key"), &s.client_key, true);
    if tls && ca.is_none() {
        f.say(&field("ca"), k::MSG_DIR_RADSEC_CA);
    }
    if !tls && address.is_some() && (ca.is_some() || cert.is_some() || client_key.is_some()) {
        f.say(&field("ca"), k::MSG_DIR_RADSEC_ONLY);
    }
    if cert.is_some() != client_key.is_some() {
        f.say(&field("client_key"), k::MSG_DIR_CLIENT_PAIR);
    }
    Some(RadiusServer {
        address: address?,
        secret: Hidden(s.secret.clone()),
        ca,
        client: cert.zip(client_key),
    })
}

/// `ldaps://HOST[:PORT]` (636) or `ldap://HOST[:PORT]?starttls` (389): host, port,
/// StartTLS.
pub fn ldap_url(url: &str) -> Option<(String, u16, bool)> {
    if let Some(r) = url.strip_prefix("ldaps://") {
        return host_port(r, 636).map(|(h, p)| (h, p, false));
    }
    let r = url.strip_prefix("ldap://")?.strip_suffix("?starttls")?;
    host_port(r, 389).map(|(h, p)| (h, p, true))
}

fn ldap(l: &LdapSettings, f: &mut Found) -> Option<Ldap> {
    let url = ldap_url(&l.url);
    if url.is_none() {
        let m = f.bad("ldap.url", k::MSG_DIR_LDAP_URL).arg("value", &l.url);
        f.push("ldap.url", m);
    }
    let ca = f.pem("ldap.ca", &l.ca, false);
    if ca.is_none() {
        f.say("ldap.ca", k::MSG_DIR_LDAP_CA);
    }
    for (name, v) in [
        ("ldap.base_dn", &l.base_dn),
        ("ldap.admin_group", &l.admin_group),
    ] {
        if v.trim().is_empty() {
            f.say(name, k::MSG_DIR_MUST_BE_SET);
        }
    }
    let sample = l
        .user_filter
        .replace("{username}", "x")
        .contains("x")
        .then(|| crate::ldapwire::filter::encode(&l.user_filter.replace("{username}", "x")));
    let problem = match sample {
        _ if !l.user_filter.contains("{username}") => Some("{username} is missing".to_string()),
        Some(Err(e)) => Some(e),
        _ => None,
    };
    if let Some(problem) = problem {
        let m = f
            .bad("ldap.user_filter", k::MSG_DIR_USER_FILTER)
            .arg("value", &l.user_filter)
            .arg("placeholder", "{username}")
            .arg("problem", problem);
        f.push("ldap.user_filter", m);
    }
    let (host, port, starttls) = url?;
    Some(Ldap {
        url: l.url.clone(),
        host,
        port,
        starttls,
        ca: ca?,
        bind_dn: l.bind_dn.clone(),
        bind_password: Hidden(l.bind_password.clone()),
        base_dn: l.base_dn.clone(),
        user_filter: l.user_filter.clone(),
        admin_group: l.admin_group.clone(),
        user_group: l.user_group.clone().filter(|g| !g.is_empty()),
    })
}
