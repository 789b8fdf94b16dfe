//! LDAP sign-in (RFC 4511, RFC 4513): search-then-bind over LDAPS or StartTLS. The
//! service account binds and finds the one entry the user filter matches (the typed
//! name escaped, [`filter::escape`]), the groups that give a role are looked up (the
//! entry's `memberOf`, else the group's `member`/`uniqueMember`/`memberUid`), and then
//! the user's own bind checks the password — a role, or the lack of one, is told only
//! to whoever has the password. An empty password is never sent: a simple bind with
//! none is an "unauthenticated bind" that many servers let through (RFC 4513 §5.1.2).
//!
//! Hand-written over our rustls stream: the LDAP crate (ldap3 0.12 with its rustls
//! feature) brings url/idna, x509-parser and nom, measured in docs/fleet.md.

use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ldapwire::ber::{
    self, int, put, tlv, Cursor, ENUMERATED, INTEGER, OCTET_STRING, SEQUENCE,
};
use crate::ldapwire::filter;

/// The largest message read (an entry with its groups is a few KB).
const MAX_MESSAGE: usize = 256 * 1024;

/// What one sign-in needs to know.
pub struct Settings<'a> {
    pub host: &'a str,
    pub port: u16,
    /// `ldap://...?starttls`: plain LDAP upgraded before anything else is sent.
    pub starttls: bool,
    /// The CA the server's certificate must chain to.
    pub ca: Vec<CertificateDer<'static>>,
    pub timeout: Duration,
    pub bind_dn: &'a str,
    pub bind_password: &'a str,
    pub base_dn: &'a str,
    /// With `{username}`.
    pub user_filter: &'a str,
    pub admin_group: &'a str,
    pub user_group: Option<&'a str>,
}

/// What the directory said of a name and password.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Admin,
    User,
    /// The password is right; no group of the box has the user.
    NoRole,
    /// No such user, or a wrong password.
    Rejected,
}

/// Where it failed: the stage names what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LdapError {
    #[error("connect: {0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the service account's bind was refused: {0}")]
    ServiceBind(String),
    #[error("search: {0}")]
    Search(String),
    #[error("the server's answer: {0}")]
    Protocol(String),
}

/// An LDAPResult: its code and the server's words.
struct Done {
    code: i64,
    message: String,
}

impl Done {
    fn read(c: &mut Cursor<'_>) -> Result<Done, LdapError> {
        let bad = |_| LdapError::Protocol("a malformed result".into());
        let code = c.int(ENUMERATED).map_err(bad)?;
        c.expect(OCTET_STRING).map_err(bad)?;
        let message = String::from_utf8_lossy(c.expect(OCTET_STRING).map_err(bad)?).into();
        Ok(Done { code, message })
    }

    fn words(&self) -> String {
        let name = match self.code {
            1 => "operationsError",
            32 => "noSuchObject",
            34 => "invalidDNSyntax",
            48 => "inappropriateAuthentication",
            49 => "invalidCredentials",
            50 => "insufficientAccessRights",
            53 => "unwillingToPerform",
            _ => "",
        };
        format!("result {} {name} {}", self.code, self.message)
            .trim()
            .to_string()
    }
}

/// An entry a search found: its DN and the values of the attributes asked for.
struct Entry {
    dn: String,
    attrs: Vec<(String, Vec<String>)>,
}

impl Entry {
    fn values<'e>(&'e self, name: &'e str) -> impl Iterator<Item = &'e str> {
        self.attrs
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.iter().map(String::as_str))
    }
}

/// Two DNs the same but for case and the spaces after separators.
pub fn dn_eq(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split(',')
            .map(|p| p.trim().to_lowercase())
            .collect::<Vec<_>>()
    };
    norm(a) == norm(b)
}

struct Conn<S> {
    s: S,
    id: i64,
    timeout: Duration,
}

async fn read_message<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 2];
    s.read_exact(&mut buf).await?;
    if buf[1] & 0x80 != 0 {
        let n = usize::from(buf[1] & 0x7f).min(4);
        let mut more = vec![0u8; n];
        s.read_exact(&mut more).await?;
        buf.extend(more);
    }
    let len = ber::full_len(&buf).unwrap_or(usize::MAX);
    if len > MAX_MESSAGE || buf[0] != SEQUENCE {
        return Err(std::io::Error::other("not an LDAP message"));
    }
    let have = buf.len();
    buf.resize(len, 0);
    s.read_exact(&mut buf[have..]).await?;
    Ok(buf)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn send(&mut self, op: Vec<u8>) -> Result<i64, LdapError> {
        self.id += 1;
        let mut body = int(INTEGER, self.id);
        body.extend(op);
        let msg = tlv(SEQUENCE, &body);
        let io = |e: std::io::Error| LdapError::Connect(e.to_string());
        tokio::time::timeout(self.timeout, async {
            self.s.write_all(&msg).await?;
            self.s.flush().await
        })
        .await
        .map_err(|_| LdapError::Connect("the server stopped taking data".into()))?
        .map_err(io)?;
        Ok(self.id)
    }

    /// The next message for request `id`: its operation's tag and content.
    async fn recv(&mut self, id: i64) -> Result<(u8, Vec<u8>), LdapError> {
        loop {
            let msg = tokio::time::timeout(self.timeout, read_message(&mut self.s))
                .await
                .map_err(|_| {
                    LdapError::Connect(format!("no answer within {} s", self.timeout.as_secs()))
                })?
                .map_err(|e| LdapError::Protocol(e.to_string()))?;
            let bad = |_| LdapError::Protocol("a malformed message".into());
            let mut c = Cursor(&msg);
            let mut m = Cursor(c.expect(SEQUENCE).map_err(bad)?);
            let got = m.int(INTEGER).map_err(bad)?;
            let (tag, content) = m.take().map_err(bad)?;
            if got == id {
                return Ok((tag, content.to_vec()));
            }
            if got == 0 {
                // A notice of disconnection (RFC 4511 §4.4.1).
                return Err(LdapError::Protocol(
                    "the server ended the connection".into(),
                ));
            }
        }
    }

    async fn bind(&mut self, dn: &str, password: &str) -> Result<Done, LdapError> {
        let mut b = int(INTEGER, 3);
        put(&mut b, OCTET_STRING, dn.as_bytes());
        put(&mut b, 0x80, password.as_bytes());
        let id = self.send(tlv(0x60, &b)).await?;
        match self.recv(id).await? {
            (0x61, c) => Done::read(&mut Cursor(&c)),
            (t, _) => Err(LdapError::Protocol(format!("tag {t:#x} for a bind"))),
        }
    }

    /// Entries under `base` (`scope` 0: the base itself, 2: the subtree) matching
    /// `filter` (BER), with `attrs`; at most `limit`.
    async fn search(
        &mut self,
        base: &str,
        scope: i64,
        filter: &[u8],
        attrs: &[&str],
        limit: i64,
    ) -> Result<(Vec<Entry>, Done), LdapError> {
        let mut b = tlv(OCTET_STRING, base.as_bytes());
        b.extend(int(ENUMERATED, scope));
        b.extend(int(ENUMERATED, 0));
        b.extend(int(INTEGER, limit));
        b.extend(int(INTEGER, self.timeout.as_secs() as i64));
        put(&mut b, ber::BOOLEAN, &[0]);
        b.extend_from_slice(filter);
        let mut list = Vec::new();
        for a in attrs {
            put(&mut list, OCTET_STRING, a.as_bytes());
        }
        put(&mut b, SEQUENCE, &list);
        let id = self.send(tlv(0x63, &b)).await?;
        let mut entries = Vec::new();
        let bad = |_| LdapError::Protocol("a malformed entry".into());
        loop {
            match self.recv(id).await? {
                (0x64, c) => {
                    let mut c = Cursor(&c);
                    let dn = String::from_utf8_lossy(c.expect(OCTET_STRING).map_err(bad)?).into();
                    let mut attrs = Vec::new();
                    let mut list = Cursor(c.expect(SEQUENCE).map_err(bad)?);
                    while !list.is_empty() {
                        let mut a = Cursor(list.expect(SEQUENCE).map_err(bad)?);
                        let name = String::from_utf8_lossy(a.expect(OCTET_STRING).map_err(bad)?);
                        let mut vals = Cursor(a.expect(ber::SET).map_err(bad)?);
                        let mut values = Vec::new();
                        while !vals.is_empty() {
                            let v = vals.expect(OCTET_STRING).map_err(bad)?;
                            values.push(String::from_utf8_lossy(v).into_owned());
                        }
                        attrs.push((name.into_owned(), values));
                    }
                    if entries.len() < 16 {
                        entries.push(Entry { dn, attrs });
                    }
                }
                // A continuation reference (AD's referrals): not followed.
                (0x73, _) => {}
                (0x65, c) => return Ok((entries, Done::read(&mut Cursor(&c))?)),
                (t, _) => return Err(LdapError::Protocol(format!("tag {t:#x} in a search"))),
            }
        }
    }
}

/// The filter that finds a member of `group` with DN `dn` (and `name`, for the
/// `memberUid` of posixGroups).
fn member_filter(dn: &str, name: &str) -> String {
    let (dn, name) = (filter::escape(dn), filter::escape(name));
    format!("(|(member={dn})(uniqueMember={dn})(memberUid={name}))")
}

/// Whether `user` is in `group`: by its `memberOf`, else by the group's members.
async fn member<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<S>,
    user: &Entry,
    name: &str,
    group: &str,
) -> Result<bool, LdapError> {
    if user.values("memberOf").any(|g| dn_eq(g, group)) {
        return Ok(true);
    }
    let f = filter::encode(&member_filter(&user.dn, name))
        .map_err(|e| LdapError::Search(e.to_string()))?;
    let (hits, done) = c.search(group, 0, &f, &["1.1"], 1).await?;
    match done.code {
        0 | 4 | 32 => Ok(!hits.is_empty()),
        _ => Err(LdapError::Search(format!(
            "group {group}: {}",
            done.words()
        ))),
    }
}

/// Signs `name` in with `password`: search, groups, bind (see the module's text).
pub async fn sign_in(s: Settings<'_>, name: &str, password: &str) -> Result<Outcome, LdapError> {
    let config = super::radsec::client_config(s.ca, None).map_err(LdapError::Tls)?;
    let server = ServerName::try_from(s.host.to_string())
        .map_err(|_| LdapError::Tls(format!("{:?} is not a host name", s.host)))?;
    let filter = filter::encode(&s.user_filter.replace("{username}", &filter::escape(name)))
        .map_err(|e| LdapError::Search(format!("user_filter: {e}")))?;
    let tcp = tokio::time::timeout(s.timeout, TcpStream::connect((s.host, s.port)))
        .await
        .map_err(|_| LdapError::Connect(format!("no answer within {} s", s.timeout.as_secs())))?
        .map_err(|e| LdapError::Connect(e.to_string()))?;
    let mut plain = Conn {
        s: tcp,
        id: 0,
        timeout: s.timeout,
    };
    if s.starttls {
        let mut req = Vec::new();
        put(&mut req, 0x80, b"1.3.6.1.4.1.1466.20037");
        let id = plain.send(tlv(0x77, &req)).await?;
        match plain.recv(id).await? {
            (0x78, c) => {
                let done = Done::read(&mut Cursor(&c))?;
                if done.code != 0 {
                    return Err(LdapError::Tls(format!(
                        "StartTLS refused: {}",
                        done.words()
                    )));
                }
            }
            (t, _) => return Err(LdapError::Protocol(format!("tag {t:#x} for StartTLS"))),
        }
    }
    let tls = tokio::time::timeout(
        s.timeout,
        tokio_rustls::TlsConnector::from(config).connect(server, plain.s),
    )
    .await
    .map_err(|_| LdapError::Tls(format!("no handshake within {} s", s.timeout.as_secs())))?
    .map_err(|e| LdapError::Tls(e.to_string()))?;
    let mut c = Conn {
        s: tls,
        id: plain.id,
        timeout: s.timeout,
    };
    if !s.bind_dn.is_empty() {
        let done = c.bind(s.bind_dn, s.bind_password).await?;
        if done.code != 0 {
            return Err(LdapError::ServiceBind(done.words()));
        }
    }
    let (found, done) = c.search(s.base_dn, 2, &filter, &["memberOf"], 2).await?;
    // 4: sizeLimitExceeded (more than one).
    if found.len() > 1 || done.code == 4 {
        return Err(LdapError::Search(format!(
            "the user filter matches more than one entry for {name:?}"
        )));
    }
    if done.code != 0 && !(done.code == 32 && found.is_empty()) {
        return Err(LdapError::Search(done.words()));
    }
    let Some(user) = found.into_iter().next() else {
        return Ok(Outcome::Rejected);
    };
    let role = if member(&mut c, &user, name, s.admin_group).await? {
        Outcome::Admin
    } else {
        match s.user_group {
            None => Outcome::User,
            Some(g) if member(&mut c, &user, name, g).await? => Outcome::User,
            Some(_) => Outcome::NoRole,
        }
    };
    if password.is_empty() {
        return Ok(Outcome::Rejected);
    }
    let done = c.bind(&user.dn, password).await?;
    let _ = c.send(tlv(0x42, &[])).await;
    if done.code != 0 {
        tracing::info!(user = %user.dn, "LDAP bind refused: {}", done.words());
        return Ok(Outcome::Rejected);
    }
    Ok(role)
}
