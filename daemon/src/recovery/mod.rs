//! Password recovery by email (spec §1.2, §4, §5): readiness, Forgot Password, the reset
//! link and its single-use token, and the mail worker that sends off-request.
//!
//! - [`mailer`]: SMTP (lettre) or the dev outbox, with failure stages.
//! - [`mail`]: the texts (`Find Password`, the change notice).
//! - [`localnet`]: who may open a reset link.
//!
//! `POST /forgot` answers 202 before it looks anything up: the account lookup, the email
//! comparison, the token and the mail all happen in the worker, so the answer is the same
//! bytes after the same work whether or not the pair matched.

pub mod localnet;
pub mod mail;
pub mod mailer;

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::app::App;
use crate::auth::{token_digest, Secret};
use crate::error::Error;
use crate::model::{ResetToken, Role, ADMIN};
use crate::store::{Consumed, DataDb};
use lettre::message::Mailbox;
use mailer::{MailError, SmtpSettings, Stage, Transport};

/// Mail jobs waiting for the worker; beyond this, new ones are dropped (and logged).
const QUEUE: usize = 64;
/// Addresses / accounts tracked by the rate limits at once.
const MAX_TRACKED: usize = 4096;

pub const SMTP_KEY: &str = "smtp";
pub const LAST_TEST_KEY: &str = "smtp_last_test";

/// The outcome of the last test mail, kept for the readiness view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastTest {
    pub ok: bool,
    pub at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

#[derive(Debug)]
pub enum MailJob {
    Forgot {
        username: String,
        email: String,
        ip: IpAddr,
    },
    PasswordChanged {
        username: String,
        ip: IpAddr,
    },
    /// Tells the old recovery address that it no longer is one.
    EmailChanged {
        username: String,
        old: String,
        new: Option<String>,
        ip: IpAddr,
    },
}

/// Sliding-window counters keyed by address or account.
struct Windows<K> {
    map: HashMap<K, VecDeque<Duration>>,
}

impl<K: Hash + Eq + Clone> Windows<K> {
    fn new() -> Self {
        Windows {
            map: HashMap::new(),
        }
    }

    /// Counts one event; `Err(wait)` when `limit` events already fell in the window.
    fn hit(
        &mut self,
        key: &K,
        now: Duration,
        limit: u32,
        window: Duration,
    ) -> Result<(), Duration> {
        if !self.map.contains_key(key) && self.map.len() >= MAX_TRACKED {
            self.map
                .retain(|_, q| q.back().is_some_and(|t| now.saturating_sub(*t) < window));
            if self.map.len() >= MAX_TRACKED {
                return Err(window);
            }
        }
        let q = self.map.entry(key.clone()).or_default();
        while q.front().is_some_and(|t| now.saturating_sub(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= limit as usize {
            let oldest = q.front().copied().unwrap_or(now);
            return Err(window.saturating_sub(now.saturating_sub(oldest)));
        }
        q.push_back(now);
        Ok(())
    }
}

pub struct Recovery {
    forgot_by_addr: Mutex<Windows<IpAddr>>,
    mails_by_account: Mutex<Windows<String>>,
    queue: mpsc::Sender<MailJob>,
    worker_rx: Mutex<Option<mpsc::Receiver<MailJob>>>,
}

impl Default for Recovery {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Recovery {
            forgot_by_addr: Mutex::new(Windows::new()),
            mails_by_account: Mutex::new(Windows::new()),
            queue: tx,
            worker_rx: Mutex::new(Some(rx)),
        }
    }
}

impl Recovery {
    /// The worker's end of the queue; taken once by [`crate::run`].
    pub fn take_worker_queue(&self) -> Option<mpsc::Receiver<MailJob>> {
        self.worker_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    pub fn enqueue(&self, job: MailJob) {
        if let Err(e) = self.queue.try_send(job) {
            tracing::warn!("mail queue full; a mail was dropped: {e}");
        }
    }
}

/// What the dashboard and `GET /recovery` show.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub available: bool,
    pub smtp_configured: bool,
    /// Dev mode without SMTP: mail goes to the outbox directory.
    pub outbox: bool,
    pub email_bound: bool,
    pub last_test: Option<LastTest>,
}

/// Where mail goes now: saved SMTP settings, else the dev outbox, else nowhere.
pub fn transport(app: &App, data: &DataDb) -> Result<Option<Transport>, Error> {
    if let Some(s) = data.setting::<SmtpSettings>(SMTP_KEY)? {
        return Ok(Some(Transport::Smtp(s)));
    }
    let config = app.config();
    Ok(config
        .dev
        .then(|| Transport::Outbox(config.storage.state_dir.join("outbox"))))
}

pub fn readiness(app: &App) -> Result<Readiness, Error> {
    let data = app.data()?;
    let smtp = data.setting::<SmtpSettings>(SMTP_KEY)?.is_some();
    let outbox = !smtp && app.config().dev;
    let email_bound = data.account(ADMIN)?.is_some_and(|a| a.email.is_some());
    Ok(Readiness {
        available: (smtp || outbox) && email_bound,
        smtp_configured: smtp,
        outbox,
        email_bound,
        last_test: data.setting::<LastTest>(LAST_TEST_KEY)?,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotRequest {
    pub username: String,
    pub email: String,
}

/// `POST /forgot`: rate limit, readiness, then queue — never a lookup on the request path.
pub fn forgot(app: &App, ip: IpAddr, req: ForgotRequest) -> Result<(), Error> {
    let p = app.config().policy.clone();
    let now = app.clock.mono();
    app.recovery
        .forgot_by_addr
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .hit(
            &crate::auth::lockout::addr_key(ip),
            now,
            p.forgot_per_address,
            p.forgot_address_window,
        )
        .map_err(|d| Error::RateLimited { retry_after: d })?;
    if !readiness(app)?.available {
        return Err(Error::RecoveryNotConfigured);
    }
    if req.username.len() <= 64 && req.email.len() <= 254 {
        app.recovery.enqueue(MailJob::Forgot {
            username: req.username,
            email: req.email,
            ip,
        });
    }
    tracing::info!(%ip, "forgot-password request queued");
    app.audit("forgot_request", None, Some(ip), None);
    Ok(())
}

/// The base of reset links: `public_url`, else the HTTPS listener's address (the first
/// LAN IPv4 when it listens on all addresses). Never the request's Host header.
pub fn link_base(app: &App) -> String {
    let config = app.config();
    if let Some(u) = &config.server.public_url {
        return u.clone();
    }
    let (scheme, addr) = match (app.https_addr, app.http_addr) {
        (Some(a), _) => ("https", a),
        (None, Some(a)) => ("http", a),
        (None, None) => return "https://127.0.0.1".into(),
    };
    let ip = if addr.ip().is_unspecified() {
        app.board
            .interfaces()
            .ok()
            .and_then(|l| l.into_iter().find(|i| i.addr.is_ipv4()).map(|i| i.addr))
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
    } else {
        addr.ip()
    };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
}

fn device_name(app: &App) -> String {
    match &app.board_info {
        Some(b) => format!("the PBX {} (serial {})", b.model, b.serial),
        None => "the PBX".into(),
    }
}

/// Issues a token for `username` and mails the link to `to`. Shared by Forgot Password
/// and the recovery press of the reset button.
pub async fn send_reset_link(
    app: &App,
    username: &str,
    to: &str,
    ip: &str,
) -> Result<(), MailError> {
    let internal = |m: String| MailError {
        stage: Stage::Send,
        message: m,
    };
    let data = app.data().map_err(|e| internal(e.to_string()))?;
    let transport = transport(app, &data)
        .map_err(|e| internal(e.to_string()))?
        .ok_or_else(|| internal("no mail transport configured".into()))?;
    let config = app.config();
    let token = crate::auth::random_token();
    let now = app.clock.unix();
    let ttl = config.policy.reset_token_ttl.as_secs();
    let record = ResetToken {
        username: username.to_string(),
        expires_at: now + ttl,
        issued_ip: ip.to_string(),
        issued_at: now,
    };
    let digest = token_digest(&token);
    let store = Arc::clone(&data);
    tokio::task::spawn_blocking(move || store.issue_token(digest, &record, now))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(|e| internal(e.to_string()))?;
    let link = format!("{}/reset?token={token}", link_base(app));
    let from = mailer::parse_address(&transport.from_address())
        .ok_or_else(|| internal("the sender address is invalid".into()))?;
    let to = mailer::parse_address(to)
        .ok_or_else(|| internal("the recipient address is invalid".into()))?;
    let msg = mail::find_password(
        &from,
        &to,
        &mail::FindPassword {
            username,
            device: &device_name(app),
            link: &link,
            expires_at: now + ttl,
            ttl_min: ttl / 60,
            requested_from: ip,
            cloud: config.server.cloud,
        },
    )
    .map_err(internal)?;
    transport.send(msg).await
}

async fn handle_forgot(app: &App, username: &str, email: &str, ip: IpAddr) {
    let account = match app
        .data()
        .and_then(|d| d.account(username).map_err(Error::from))
    {
        Ok(Some(a)) => a,
        Ok(None) => {
            tracing::info!(%ip, "forgot-password request matched no account");
            return;
        }
        Err(e) => {
            tracing::error!("forgot-password: {e}");
            return;
        }
    };
    let matches = account
        .email
        .as_deref()
        .is_some_and(|bound| bound.trim().eq_ignore_ascii_case(email.trim()));
    if !matches {
        tracing::info!(%ip, "forgot-password request matched no account");
        return;
    }
    let p = app.config().policy.clone();
    let limited = app
        .recovery
        .mails_by_account
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .hit(
            &account.username,
            app.clock.mono(),
            p.forgot_mails_per_account,
            p.forgot_account_window,
        )
        .is_err();
    if limited {
        tracing::warn!(user = %account.username, "recovery mail limit reached; request ignored");
        return;
    }
    let to = account.email.clone().unwrap_or_default();
    match send_reset_link(app, &account.username, &to, &ip.to_string()).await {
        Ok(()) => tracing::info!(user = %account.username, %ip, "recovery mail sent"),
        Err(e) => {
            tracing::error!(user = %account.username, stage = ?e.stage, "recovery mail failed: {}", e.message)
        }
    }
}

/// Sends a notice to `to` if mail works; `what` names it in the log.
async fn send_notice(
    app: &App,
    username: &str,
    to: &str,
    what: &str,
    build: impl FnOnce(&Mailbox, &Mailbox) -> Result<lettre::Message, String>,
) {
    let Ok(data) = app.data() else { return };
    let Some(to) = mailer::parse_address(to) else {
        return;
    };
    let Ok(Some(transport)) = transport(app, &data) else {
        return;
    };
    let Some(from) = mailer::parse_address(&transport.from_address()) else {
        return;
    };
    let msg = match build(&from, &to) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("cannot build the {what}: {e}");
            return;
        }
    };
    match transport.send(msg).await {
        Ok(()) => tracing::info!(user = %username, "{what} sent"),
        Err(e) => {
            tracing::error!(user = %username, stage = ?e.stage, "{what} failed: {}", e.message)
        }
    }
}

async fn handle_changed(app: &App, username: &str, ip: IpAddr) {
    let Ok(Some(account)) = app
        .data()
        .and_then(|d| d.account(username).map_err(Error::from))
    else {
        return;
    };
    let Some(to) = account.email else { return };
    let (device, at) = (device_name(app), app.clock.unix());
    send_notice(app, username, &to, "password-change notice", |from, to| {
        mail::password_changed(from, to, username, &device, at, &ip.to_string())
    })
    .await;
}

/// Sends queued mail one at a time, off the request path.
pub async fn mail_worker(app: Arc<App>, mut rx: mpsc::Receiver<MailJob>) {
    while let Some(job) = rx.recv().await {
        match job {
            MailJob::Forgot {
                username,
                email,
                ip,
            } => handle_forgot(&app, &username, &email, ip).await,
            MailJob::PasswordChanged { username, ip } => handle_changed(&app, &username, ip).await,
            MailJob::EmailChanged {
                username,
                old,
                new,
                ip,
            } => {
                let (device, at) = (device_name(&app), app.clock.unix());
                send_notice(&app, &username, &old, "email-change notice", |from, to| {
                    mail::email_changed(
                        from,
                        to,
                        &username,
                        &device,
                        new.as_deref(),
                        at,
                        &ip.to_string(),
                    )
                })
                .await;
            }
        }
    }
}

/// The subnets a reset link opens from, for the refusal message.
pub fn allowed_subnets(app: &App) -> Vec<String> {
    let config = app.config();
    let mut list: Vec<String> = own_subnets(app, &config)
        .iter()
        .map(|s| s.to_string())
        .collect();
    list.extend(
        config
            .network
            .lan_subnets
            .iter()
            .filter(|s| s.prefix() > 0)
            .map(|s| s.to_string()),
    );
    list.sort();
    list.dedup();
    list
}

/// The subnets of the interfaces that make up the PBX's own network
/// (`network.lan_interfaces`; prefix-0 ones never count).
fn own_subnets(app: &App, config: &crate::config::Config) -> Vec<pbx_board::Subnet> {
    app.board
        .interfaces()
        .unwrap_or_default()
        .iter()
        .filter(|i| localnet::interface_is_lan(&i.name, config.network.lan_interfaces.as_deref()))
        .filter(|i| i.subnet.prefix() > 0)
        .map(|i| i.subnet)
        .collect()
}

/// The local-network rule for this peer, with this box's interfaces.
pub fn check_local(app: &App, peer: IpAddr) -> Result<(), Error> {
    let config = app.config();
    let own = own_subnets(app, &config);
    if localnet::allowed(peer, &own, &config.network.lan_subnets, config.server.cloud) {
        Ok(())
    } else {
        tracing::warn!(%peer, "reset link opened from outside the local network");
        Err(Error::NotLocal {
            subnets: allowed_subnets(app),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub token: Secret,
    pub new_password: Secret,
}

/// `POST /reset`: local rule, token, password rules, then the atomic swap.
pub async fn reset(app: &App, peer: IpAddr, req: ResetRequest) -> Result<(), Error> {
    check_local(app, peer)?;
    let data = app.data()?;
    let digest = token_digest(req.token.expose());
    let now = app.clock.unix();
    let token = data.token_valid(&digest, now)?.ok_or(Error::TokenInvalid)?;
    let hash = app
        .hash_new_password(req.new_password, &token.username)
        .await?;
    let store = Arc::clone(&data);
    let consumed = crate::flows::blocking(move || store.consume_token(&digest, now, &hash)).await?;
    let account = match consumed {
        Consumed::Done(a) => a,
        Consumed::Invalid => return Err(Error::TokenInvalid),
    };
    let ended = app.sessions.remove_user(&account.username);
    app.audit(
        "password_reset",
        Some(&account.username),
        Some(peer),
        Some("reset link"),
    );
    tracing::info!(user = %account.username, %peer, ended, "password reset with a mailed link");
    app.recovery.enqueue(MailJob::PasswordChanged {
        username: account.username,
        ip: peer,
    });
    Ok(())
}

/// Admins see the full readiness; everyone else only whether recovery is available.
pub fn readiness_for(app: &App, role: Option<Role>) -> Result<serde_json::Value, Error> {
    let r = readiness(app)?;
    Ok(match role {
        Some(Role::Admin) => {
            serde_json::to_value(&r).map_err(|e| Error::Internal(e.to_string()))?
        }
        _ => serde_json::json!({ "available": r.available }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_limit_and_slide() {
        let mut w = Windows::new();
        let win = Duration::from_secs(900);
        for i in 0..5u64 {
            assert!(w.hit(&"a", Duration::from_secs(i), 5, win).is_ok());
        }
        assert_eq!(
            w.hit(&"a", Duration::from_secs(10), 5, win),
            Err(Duration::from_secs(890))
        );
        assert!(
            w.hit(&"b", Duration::from_secs(10), 5, win).is_ok(),
            "per key"
        );
        assert!(
            w.hit(&"a", Duration::from_secs(900), 5, win).is_ok(),
            "first one slid out"
        );
    }

    /// A full table limits new addresses only: those already tracked keep their count.
    #[test]
    fn a_full_table_limits_new_keys_not_everyone() {
        let mut w = Windows::new();
        let win = Duration::from_secs(900);
        let now = Duration::from_secs(1);
        for k in 0..MAX_TRACKED as u32 {
            assert!(w.hit(&k, now, 5, win).is_ok());
        }
        assert!(w.hit(&u32::MAX, now, 5, win).is_err(), "new key limited");
        assert!(w.hit(&7, now, 5, win).is_ok(), "known key goes on");
        assert!(
            w.hit(&u32::MAX, now + win, 5, win).is_ok(),
            "room again once the window passed"
        );
    }
}
