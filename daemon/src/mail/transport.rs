//! Outgoing mail: SMTP through lettre (STARTTLS, implicit TLS or none, AUTH), or — on the
//! simulated board until SMTP is configured — `.eml` files in the outbox directory.
//!
//! A failed send is reported with the *stage* that failed (dns, connect, tls, auth,
//! send) and a sentence a PBX admin can act on. The stages are found by doing the first
//! steps ourselves before handing over to lettre: resolve the host, connect, and read
//! the greeting, which tells an implicit-TLS port from a plain/STARTTLS one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::time::{timeout_at, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    None,
    Starttls,
    Tls,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Security::None => "none",
            Security::Starttls => "starttls",
            Security::Tls => "tls",
        }
    }
}

/// SMTP settings as stored in the data DB. The password is write-only for the API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub password: String,
    pub from: String,
    pub timeout_s: u64,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("from", &self.from)
            .field("timeout_s", &self.timeout_s)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Dns,
    Connect,
    Tls,
    Auth,
    Send,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailError {
    pub stage: Stage,
    pub message: String,
}

impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.stage, self.message)
    }
}

fn fail(stage: Stage, message: impl Into<String>) -> MailError {
    MailError {
        stage,
        message: message.into(),
    }
}

/// A failure whose cause is text the peer sent (a banner, a server response): the
/// caller — possibly probing an internal port — gets a fixed hint; the peer's words go
/// to the log only.
fn fail_quoting(stage: Stage, hint: String, peer_said: &str) -> MailError {
    tracing::warn!(?stage, "SMTP peer said: {}", peer_said.trim());
    fail(stage, hint)
}

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum Transport {
    Smtp(SmtpSettings),
    /// `--dev` without SMTP settings: one `.eml` file per mail.
    Outbox(PathBuf),
}

impl Transport {
    pub fn from_address(&self) -> String {
        match self {
            Transport::Smtp(s) => s.from.clone(),
            Transport::Outbox(_) => "PBX <pbx@localhost>".into(),
        }
    }

    pub async fn send(&self, msg: Message) -> Result<(), MailError> {
        match self {
            Transport::Smtp(s) => send_smtp(s, msg).await,
            Transport::Outbox(dir) => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || write_eml(&dir, &msg.formatted()))
                    .await
                    .map_err(|e| fail(Stage::Send, e.to_string()))?
                    .map_err(|e| fail(Stage::Send, format!("cannot write to the outbox: {e}")))
            }
        }
    }
}

fn write_eml(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static N: AtomicU32 = AtomicU32::new(0);
    std::fs::create_dir_all(dir)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let name = format!("{now}-{}.eml", N.fetch_add(1, Ordering::SeqCst));
    crate::fsutil::write_atomic(&dir.join(name), bytes, 0o600)
}

/// Sends one message, all stages within `timeout_s` + 1 s.
pub async fn send_smtp(s: &SmtpSettings, msg: Message) -> Result<(), MailError> {
    let t = Duration::from_secs(s.timeout_s);
    let deadline = Instant::now() + t + Duration::from_secs(1);
    let late = |stage: Stage, what: &str| {
        fail(
            stage,
            format!("{what} took longer than the timeout of {} s", s.timeout_s),
        )
    };

    // dns
    let addrs: Vec<std::net::SocketAddr> =
        match timeout_at(deadline, tokio::net::lookup_host((s.host.as_str(), s.port))).await {
            Err(_) => return Err(late(Stage::Dns, "looking up the server name")),
            Ok(Err(e)) => {
                return Err(fail(
                    Stage::Dns,
                    format!("cannot resolve {:?}: {e}; check the server name", s.host),
                ))
            }
            Ok(Ok(a)) => a.collect(),
        };

    // connect
    let mut probe = match timeout_at(deadline, tokio::net::TcpStream::connect(&addrs[..])).await {
        Err(_) => return Err(late(Stage::Connect, "connecting to the server")),
        Ok(Err(e)) => {
            return Err(fail(
                Stage::Connect,
                format!(
                    "cannot connect to {}:{} ({e}); check the server name, the port and any firewall between the PBX and the server",
                    s.host, s.port
                ),
            ))
        }
        Ok(Ok(c)) => c,
    };

    // The greeting tells which protocol the port speaks: plain/STARTTLS servers talk
    // first ("220 ..."), implicit-TLS servers wait for the client's TLS hello.
    let mut buf = [0u8; 256];
    let greet_deadline = deadline.min(Instant::now() + t.min(Duration::from_secs(3)));
    let greeting = match timeout_at(greet_deadline, probe.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    };
    drop(probe);
    match (s.security, &greeting) {
        (Security::Starttls | Security::None, None) => {
            return Err(fail(
                Stage::Tls,
                format!(
                    "the server on port {} sent no SMTP greeting: it expects implicit TLS; choose TLS instead of {}",
                    s.port,
                    if s.security == Security::Starttls { "STARTTLS" } else { "no encryption" }
                ),
            ))
        }
        (Security::Tls, Some(g)) if g.starts_with("220") => {
            return Err(fail(
                Stage::Tls,
                format!(
                    "the server on port {} speaks plain SMTP first: it expects STARTTLS (usually port 587), not implicit TLS; choose STARTTLS instead of TLS",
                    s.port
                ),
            ))
        }
        (Security::Starttls | Security::None, Some(g)) if !g.starts_with("220") => {
            return Err(fail_quoting(
                Stage::Connect,
                format!(
                    "the server on port {} did not greet as an SMTP server; check the server name and the port",
                    s.port
                ),
                g,
            ))
        }
        _ => {}
    }

    let tls = || {
        TlsParameters::builder(s.host.clone())
            .build_rustls()
            .map_err(|e| fail(Stage::Tls, format!("cannot set up TLS: {e}")))
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
        .port(s.port)
        .timeout(Some(t))
        .hello_name(ClientId::Domain("pbx.local".into()))
        .tls(match s.security {
            Security::None => Tls::None,
            Security::Starttls => Tls::Required(tls()?),
            Security::Tls => Tls::Wrapper(tls()?),
        });
    if !s.username.is_empty() {
        builder = builder.credentials(Credentials::new(s.username.clone(), s.password.clone()));
    }
    let transport = builder.build();
    match timeout_at(deadline, transport.send(msg)).await {
        Err(_) => Err(late(Stage::Send, "talking to the server")),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(classify(&e, s)),
    }
}

fn classify(e: &lettre::transport::smtp::Error, s: &SmtpSettings) -> MailError {
    let text = e.to_string();
    if let Some(code) = e.status() {
        let code = code.to_string();
        return if ["530", "534", "535", "538", "454"].contains(&code.as_str()) {
            fail_quoting(
                Stage::Auth,
                format!("the server refused the login ({code}); check the username and password"),
                &text,
            )
        } else {
            fail_quoting(
                Stage::Send,
                format!("the server refused the message ({code}); check the sender address and that the server relays for this login"),
                &text,
            )
        };
    }
    if e.is_tls() {
        return fail(
            Stage::Tls,
            format!("TLS with {} failed: {text}; the server's certificate must be valid for this name and trusted by the PBX", s.host),
        );
    }
    let lower = text.to_lowercase();
    if lower.contains("authentication") || lower.contains("mechanism") {
        return fail_quoting(
            Stage::Auth,
            "cannot log in; the server may only allow login after STARTTLS or TLS".into(),
            &text,
        );
    }
    if lower.contains("starttls") || lower.contains("tls") {
        return fail_quoting(
            Stage::Tls,
            format!("the server may not offer STARTTLS on port {}", s.port),
            &text,
        );
    }
    if e.is_timeout() {
        return fail_quoting(Stage::Send, "the server stopped answering".into(), &text);
    }
    fail_quoting(
        Stage::Send,
        "the conversation with the server failed; see the PBX log for its answer".into(),
        &text,
    )
}

/// Parses an email address as lettre will use it.
pub fn parse_address(addr: &str) -> Option<Mailbox> {
    let a = addr.trim();
    if a.is_empty() || a.len() > 254 || a.contains(['\r', '\n']) {
        return None;
    }
    a.parse::<Mailbox>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_debug_hides_the_password() {
        let s = SmtpSettings {
            host: "mail.example.com".into(),
            port: 587,
            security: Security::Starttls,
            username: "pbx".into(),
            password: "hunter2-smtp".into(),
            from: "pbx@example.com".into(),
            timeout_s: 10,
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn addresses_are_validated() {
        assert!(parse_address("admin@example.com").is_some());
        assert!(parse_address("PBX <pbx@example.com>").is_some());
        assert!(parse_address("not an address").is_none());
        assert!(parse_address("a@b\r\nBcc: x@y").is_none());
        assert!(parse_address("").is_none());
    }
}
