//! Fleet sign-in (spec §11): a name that is no local account is asked of the company's
//! RADIUS servers (and LDAP directory), under the same brute-force limits as a local
//! password — the caller ([`crate::flows::login`]) counts the attempt before a request
//! is sent. An accepted user gets a local record (no password: its role, where it came
//! from, its own second factor and language), so that sessions, two-factor, alerts and
//! the audit trail treat it as any account. The local admin never depends on this.

use std::net::IpAddr;

use crate::app::App;
use crate::auth::presession::Challenge;
use crate::config::directory::{Directory, RadiusAddress};
use crate::directory::radius::{self, attr, code, AccessRequest, AskError};
use crate::directory::radsec;
use crate::error::Error;
use crate::model::{Account, AuditKind, Role};

/// What the directory said of a name and password.
#[derive(Debug)]
pub enum Verdict {
    Accepted {
        role: Role,
        via: String,
    },
    Rejected,
    /// It wants a one-time code ([`Challenge`]) before it decides.
    Challenge(Challenge),
    /// Accepted, with no role on this box.
    NoRole {
        via: String,
    },
}

/// The name a directory user has on this box: lower case (directories compare names
/// without case), so that `Admin` can never stand beside the local `admin`.
pub fn canonical(name: &str) -> String {
    name.to_lowercase()
}

/// Whether `name` (as typed) is asked of the directory: one is configured, the name is
/// one a directory user may have, and no local account has it in any case. `local`:
/// the account of that exact name, if any (its networks were checked already). A name
/// the box does not know yet is asked only from an address trusted for some role (spec
/// §10): from elsewhere it is an unknown name like any, and nothing is sent.
pub async fn asked(
    app: &App,
    peer: IpAddr,
    name: &str,
    local: Option<&Account>,
) -> Result<bool, Error> {
    if !app.directory().configured() {
        // A directory user's record then signs in nobody (it holds no password).
        return Ok(false);
    }
    if let Some(a) = local {
        return Ok(a.directory.is_some());
    }
    if !valid_name(name) {
        return Ok(false);
    }
    let trusted = [Role::Admin, Role::User]
        .into_iter()
        .any(|r| crate::flows::gate::admit(app, r, None, peer).is_ok());
    if !trusted {
        return Ok(false);
    }
    let lower = canonical(name);
    let data = app.data()?;
    if let Some(a) = data.account(&lower).await? {
        return Ok(a.directory.is_some());
    }
    // Local names may have capitals (`Tech1`): none may be stood beside.
    let taken = data
        .accounts()
        .await?
        .iter()
        .any(|a| a.directory.is_none() && canonical(&a.username) == lower);
    Ok(!taken)
}

/// Names a directory user may sign in with: 1-64 characters of letters, digits and
/// `. _ - @` (sAMAccountName, uid, user@realm).
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// Asks the directory about `name` / `password`; `resume`: the answer to its challenge.
/// Bounded: at most [`crate::app::App::directory_slot`] requests at once (503 beyond),
/// each within [`Directory::deadline`]. Nobody answering is 503
/// `directory_unavailable` naming the servers.
pub async fn ask(
    app: &App,
    name: &str,
    password: &[u8],
    resume: Option<&Challenge>,
) -> Result<Verdict, Error> {
    let (verdict, silent) = ask_all(app, name, password, resume).await?;
    verdict.ok_or_else(|| Error::DirectoryUnavailable {
        servers: silent
            .iter()
            .map(|s| s.server.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Where asking a server stopped short of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// No connection, or no answer in time.
    Connect,
    /// The TLS settings or handshake (a certificate not trusted, or not given).
    Tls,
    /// Answers came that fail the checks (RADIUS: the Message-Authenticator).
    Reply,
    /// LDAP: the service account's bind was refused.
    ServiceBind,
    /// LDAP: the user search failed (a bad base, filter, or access).
    Search,
}

/// A server that gave no verdict, where and why (for the log and the settings' test).
#[derive(Debug, Clone)]
pub struct Silent {
    pub server: String,
    pub stage: Stage,
    /// The technical detail, in English.
    pub detail: String,
}

/// [`ask`] with what each silent server failed at: the RADIUS servers in turn (the
/// next only when one gives no answer; a Reject is final for RADIUS), then the LDAP
/// directory unless RADIUS accepted. A verdict when every source that was asked gave
/// one (a Reject from RADIUS and no answer from LDAP is no verdict: the user may be
/// LDAP's).
pub async fn ask_all(
    app: &App,
    name: &str,
    password: &[u8],
    resume: Option<&Challenge>,
) -> Result<(Option<Verdict>, Vec<Silent>), Error> {
    let dir = &*app.directory();
    let _slot = app.directory_slot().ok_or(Error::Busy)?;
    let all = async {
        let mut silent = Vec::new();
        let mut rejected = false;
        if !dir.radius.is_empty() {
            match ask_radius(app, dir, name, password, resume, &mut silent).await {
                Some(Verdict::Rejected) => rejected = true,
                Some(v) => return (Some(v), silent),
                None => {}
            }
        }
        let radius_silent = silent.len();
        if let (Some(l), None) = (&dir.ldap, resume) {
            match ask_ldap(l, dir, name, password).await {
                Ok(Verdict::Rejected) => rejected = true,
                Ok(v) => return (Some(v), silent),
                Err(s) => silent.push(s),
            }
        }
        // RADIUS's failover went to an answer: its silent servers are no matter.
        let unanswered = if dir.radius.len() > radius_silent {
            &silent[radius_silent..]
        } else {
            &silent[..]
        };
        let verdict = (rejected && unanswered.is_empty()).then_some(Verdict::Rejected);
        (verdict, silent)
    };
    match tokio::time::timeout(dir.deadline() + std::time::Duration::from_secs(1), all).await {
        Ok(v) => Ok(v),
        Err(_) => Ok((
            None,
            vec![Silent {
                server: names(dir),
                stage: Stage::Connect,
                detail: "no answer in time".into(),
            }],
        )),
    }
}

fn names(dir: &Directory) -> String {
    let mut all: Vec<String> = dir.radius.iter().map(|s| s.address.to_string()).collect();
    all.extend(dir.ldap.iter().map(|l| l.url.clone()));
    all.join(", ")
}

async fn ask_ldap(
    l: &crate::config::directory::Ldap,
    dir: &Directory,
    name: &str,
    password: &[u8],
) -> Result<Verdict, Silent> {
    use crate::directory::ldap::{self, LdapError, Outcome};
    let silent = |stage, detail: String| {
        tracing::warn!(server = %l.url, "LDAP directory gave no usable answer: {detail}");
        Silent {
            server: l.url.clone(),
            stage,
            detail,
        }
    };
    let ca = l.ca.certs().map_err(|e| silent(Stage::Tls, e))?;
    let settings = ldap::Settings {
        host: &l.host,
        port: l.port,
        starttls: l.starttls,
        ca,
        timeout: dir.timeout,
        bind_dn: &l.bind_dn,
        bind_password: &l.bind_password.0,
        base_dn: &l.base_dn,
        user_filter: &l.user_filter,
        admin_group: &l.admin_group,
        user_group: l.user_group.as_deref(),
    };
    let via = format!("LDAP {}", l.url);
    // A password that is no text is no directory's.
    let Ok(password) = std::str::from_utf8(password) else {
        return Ok(Verdict::Rejected);
    };
    match ldap::sign_in(settings, name, password).await {
        Ok(Outcome::Admin) => Ok(Verdict::Accepted {
            role: Role::Admin,
            via,
        }),
        Ok(Outcome::User) => Ok(Verdict::Accepted {
            role: Role::User,
            via,
        }),
        Ok(Outcome::NoRole) => Ok(Verdict::NoRole { via }),
        Ok(Outcome::Rejected) => Ok(Verdict::Rejected),
        Err(e) => {
            let stage = match e {
                LdapError::Connect(_) => Stage::Connect,
                LdapError::Tls(_) => Stage::Tls,
                LdapError::ServiceBind(_) => Stage::ServiceBind,
                LdapError::Search(_) => Stage::Search,
                LdapError::Protocol(_) => Stage::Reply,
            };
            Err(silent(stage, e.to_string()))
        }
    }
}

async fn ask_radius(
    app: &App,
    dir: &Directory,
    name: &str,
    password: &[u8],
    resume: Option<&Challenge>,
    silent: &mut Vec<Silent>,
) -> Option<Verdict> {
    let serial = app
        .board_info()
        .map(|b| b.serial.clone())
        .unwrap_or_default();
    for (i, server) in dir.radius.iter().enumerate() {
        if resume.is_some_and(|c| c.server != i) {
            continue;
        }
        let mut request = AccessRequest {
            id: 0,
            authenticator: [0; 16],
            user: name,
            password,
            nas_identifier: &serial,
            nas_ip: None,
            state: resume.map(|c| c.state.as_slice()),
        };
        let secret = server.secret.0.as_bytes();
        let asked = match &server.address {
            RadiusAddress::Udp(addr) => {
                request.nas_ip = nas_ip(*addr);
                let how = radius::Ask {
                    servers: std::slice::from_ref(addr),
                    secret,
                    timeout: dir.timeout,
                    retries: dir.retries,
                };
                radius::ask(&how, &mut request).await
            }
            RadiusAddress::Tls { host, port } => match radsec_files(server) {
                Ok((ca, client)) => {
                    let tls = radsec::Tls {
                        host,
                        port: *port,
                        ca,
                        client,
                        timeout: dir.timeout,
                    };
                    radsec::ask(tls, secret, &mut request).await
                }
                Err(e) => Err(AskError::Tls(e)),
            },
        };
        let at = &server.address;
        match asked {
            Ok(reply) => return Some(verdict(dir, &reply, i, format!("RADIUS {at}"))),
            Err(AskError::Request(e)) => {
                // Too long a password or name: no server could accept it.
                tracing::info!(server = %at, "RADIUS request not sent: {e}");
                return Some(Verdict::Rejected);
            }
            Err(e) => {
                tracing::warn!(server = %at, "RADIUS server gave no usable answer: {e}");
                let stage = match e {
                    AskError::Refused(_) => Stage::Reply,
                    AskError::Tls(_) => Stage::Tls,
                    _ => Stage::Connect,
                };
                silent.push(Silent {
                    server: at.to_string(),
                    stage,
                    detail: e.to_string(),
                });
            }
        }
    }
    None
}

type Certs = Vec<rustls::pki_types::CertificateDer<'static>>;

/// A RadSec server's CA and the box's client certificate and key, read.
#[allow(clippy::type_complexity)]
fn radsec_files(
    s: &crate::config::directory::RadiusServer,
) -> Result<
    (
        Certs,
        Option<(Certs, rustls::pki_types::PrivateKeyDer<'static>)>,
    ),
    String,
> {
    let ca = s.ca.as_ref().ok_or("no CA")?.certs()?;
    let client = match &s.client {
        Some((cert, key)) => Some((cert.certs()?, key.key()?)),
        None => None,
    };
    Ok((ca, client))
}

/// The box's address towards `server` (NAS-IP-Address), as routing would pick it:
/// a connected UDP socket sends nothing.
fn nas_ip(server: std::net::SocketAddr) -> Option<std::net::Ipv4Addr> {
    let sock = std::net::UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    sock.connect(server).ok()?;
    match sock.local_addr().ok()?.ip() {
        IpAddr::V4(v4) if server.is_ipv4() => Some(v4),
        _ => None,
    }
}

/// What a reply that passed every check means: Accept with the admin value of the role
/// attribute → admin; else a user (only with `radius_user_value`, if set).
fn verdict(dir: &Directory, reply: &radius::Reply, server: usize, via: String) -> Verdict {
    match reply.code {
        code::ACCESS_ACCEPT => {
            let has = |v: &str| {
                reply
                    .values(dir.radius_admin_attribute)
                    .any(|x| x == v.as_bytes())
            };
            if has(&dir.radius_admin_value) {
                Verdict::Accepted {
                    role: Role::Admin,
                    via,
                }
            } else if dir.radius_user_value.as_deref().is_none_or(has) {
                Verdict::Accepted {
                    role: Role::User,
                    via,
                }
            } else {
                Verdict::NoRole { via }
            }
        }
        code::ACCESS_CHALLENGE => Verdict::Challenge(Challenge {
            state: reply
                .values(attr::STATE)
                .next()
                .unwrap_or_default()
                .to_vec(),
            server,
            message: reply.message(),
        }),
        _ => Verdict::Rejected,
    }
}

/// The local record of a user the directory accepted as `role`: made at the first
/// sign-in (audited), its role and origin brought up to date at every one. A local
/// account of the same name is never touched: refused as a wrong password would be.
pub async fn admitted(
    app: &App,
    ip: IpAddr,
    name: &str,
    role: Role,
    via: String,
) -> Result<Account, Error> {
    let data = app.data()?;
    let name = canonical(name);
    for _ in 0..2 {
        let v = via.clone();
        let updated = data
            .update_account(&name, move |a| {
                if a.directory.is_none() {
                    return false;
                }
                a.role = role;
                a.directory = Some(v.clone());
                true
            })
            .await?;
        match updated {
            Some(u) if u.decided => {
                return data.account(&name).await?.ok_or(Error::Unauthenticated);
            }
            Some(_) => {
                tracing::warn!(user = %name, "a directory user with a local account's name refused");
                return Err(Error::InvalidCredentials {
                    attempts_left: None,
                });
            }
            None => {}
        }
        let now = app.clock().unix();
        let mut account = Account::fresh(name.clone(), role, String::new(), None, now);
        account.must_change_password = false;
        account.directory = Some(via.clone());
        if data.insert_new_account(account.clone()).await? {
            app.audit(
                AuditKind::AccountCreated,
                Some(&name),
                Some(ip),
                Some(&format!(
                    "from the directory ({via}), role {}",
                    role.as_str()
                )),
            );
            return Ok(account);
        }
    }
    Err(Error::Internal(format!(
        "directory user {name}: record keeps changing"
    )))
}
