//! Password recovery by email (spec §1.2, §4, §5), as flows without HTTP:
//!
//! - this file: readiness (is a way back in ready?), the rate limits, the mail queue.
//! - [`forgot`]: Forgot Password — answered 202 before anything is looked up; the
//!   lookup, the email comparison, the token and the mail happen in the worker, so the
//!   answer is the same bytes after the same work whether or not the pair matched.
//! - [`reset`]: the reset link — the local-network rule ([`localnet`]) and the
//!   single-use token.
//! - [`worker`]: sends queued mail off the request path (reset links, notices).
//!
//! The mail itself (texts, SMTP/outbox) is [`crate::mail`].

pub mod forgot;
pub mod localnet;
pub mod reset;
pub mod worker;

pub use forgot::{forgot, send_reset_link, ForgotRequest};
pub use reset::{check_local, reset, ResetRequest};
pub use worker::mail_worker;

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::app::App;
use crate::error::Error;
use crate::mail::transport::{SmtpSettings, Stage, Transport};
use crate::model::{Role, ADMIN};
use crate::store::DataDb;

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
pub(super) struct Windows<K> {
    map: HashMap<K, VecDeque<Duration>>,
}

impl<K: Hash + Eq + Clone> Windows<K> {
    pub(super) fn new() -> Self {
        Windows {
            map: HashMap::new(),
        }
    }

    /// Counts one event; `Err(wait)` when `limit` events already fell in the window.
    pub(super) fn hit(
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
    pub(super) forgot_by_addr: Mutex<Windows<IpAddr>>,
    pub(super) mails_by_account: Mutex<Windows<String>>,
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

pub(super) fn device_name(app: &App) -> String {
    match &app.board_info {
        Some(b) => format!("the PBX {} (serial {})", b.model, b.serial),
        None => "the PBX".into(),
    }
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
