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

use crate::i18n::{k, Msg};
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

/// A mail that did not go out: the stage, what to do in a sentence (said in the
/// reader's language), and the technical detail beside it (`os error 111`: English, as
/// the system said it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailError {
    pub stage: Stage,
    pub said: Msg,
    pub detail: Option<String>,
    /// [`MailError::said`] in English with the detail: for the log, the audit and the
    /// stored outcome of a recovery check.
    pub message: String,
}

impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.stage, self.message)
    }
}

impl MailError {
    pub fn new(stage: Stage, said: Msg, detail: Option<String>) -> MailError {
        let message = match &detail {
            Some(d) => format!("{said} ({d})"),
            None => said.to_string(),
        };
        MailError {
            stage,
            said,
            detail,
            message,
        }
    }

    /// The sentence in `lang`, the detail after it.
    pub fn text(&self, lang: crate::i18n::Lang) -> String {
        match &self.detail {
            Some(d) => format!("{} ({d})", self.said.text(lang)),
            None => self.said.text(lang),
        }
    }
}

fn fail(stage: Stage, said: Msg, detail: impl fmt::Display) -> MailError {
    MailError::new(stage, said, Some(detail.to_string()))
}

/// A failure whose cause is text the peer sent (a banner, a server response): the
/// caller — possibly probing an internal port — gets a fixed hint; the peer's words go
/// to the log only.
fn fail_quoting(stage: Stage, hint: Msg, peer_said: &str) -> MailError {
    tracing::warn!(?stage, "SMTP peer said: {}", peer_said.trim());
    MailError::new(stage, hint, None)
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
                    .map_err(|e| fail(Stage::Send, Msg::new(k::SMTP_OUTBOX), e))?
                    .map_err(|e| fail(Stage::Send, Msg::new(k::SMTP_OUTBOX), e))
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
    let late = |stage: Stage, key| {
        MailError::new(
            stage,
            Msg::new(key)
                .arg("host", &s.host)
                .arg("port", s.port)
                .arg("s", s.timeout_s),
            None,
        )
    };
    let at = |key| Msg::new(key).arg("host", &s.host).arg("port", s.port);

    // dns
    let addrs: Vec<std::net::SocketAddr> =
        match timeout_at(deadline, tokio::net::lookup_host((s.host.as_str(), s.port))).await {
            Err(_) => return Err(late(Stage::Dns, k::SMTP_DNS_TIMEOUT)),
            Ok(Err(e)) => return Err(fail(Stage::Dns, at(k::SMTP_DNS_FAILED), e)),
            Ok(Ok(a)) => a.collect(),
        };

    // connect
    let mut probe = match timeout_at(deadline, tokio::net::TcpStream::connect(&addrs[..])).await {
        Err(_) => return Err(late(Stage::Connect, k::SMTP_CONNECT_TIMEOUT)),
        Ok(Err(e)) => return Err(fail(Stage::Connect, at(k::SMTP_CONNECT_FAILED), e)),
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
            return Err(MailError::new(Stage::Tls, at(k::SMTP_WANTS_TLS), None))
        }
        (Security::Tls, Some(g)) if g.starts_with("220") => {
            return Err(MailError::new(Stage::Tls, at(k::SMTP_WANTS_STARTTLS), None))
        }
        (Security::Starttls | Security::None, Some(g)) if !g.starts_with("220") => {
            return Err(fail_quoting(Stage::Connect, at(k::SMTP_NOT_SMTP), g))
        }
        _ => {}
    }

    let tls = || {
        TlsParameters::builder(s.host.clone())
            .build_rustls()
            .map_err(|e| fail(Stage::Tls, Msg::new(k::SMTP_TLS_SETUP), e))
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
        Err(_) => Err(late(Stage::Send, k::SMTP_SEND_TIMEOUT)),
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
                Msg::new(k::SMTP_AUTH_REFUSED).arg("code", code),
                &text,
            )
        } else {
            fail_quoting(
                Stage::Send,
                Msg::new(k::SMTP_MAIL_REFUSED).arg("code", code),
                &text,
            )
        };
    }
    if e.is_tls() {
        return fail(
            Stage::Tls,
            Msg::new(k::SMTP_TLS_FAILED).arg("host", &s.host),
            text,
        );
    }
    let lower = text.to_lowercase();
    if lower.contains("authentication") || lower.contains("mechanism") {
        return fail_quoting(Stage::Auth, Msg::new(k::SMTP_AUTH_NEEDS_TLS), &text);
    }
    if lower.contains("starttls") || lower.contains("tls") {
        return fail_quoting(
            Stage::Tls,
            Msg::new(k::SMTP_NO_STARTTLS).arg("port", s.port),
            &text,
        );
    }
    if e.is_timeout() {
        return fail_quoting(Stage::Send, Msg::new(k::SMTP_STOPPED), &text);
    }
    fail_quoting(Stage::Send, Msg::new(k::SMTP_FAILED), &text)
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
