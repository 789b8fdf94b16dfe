//! The mail waiting for the worker, kept by the [`App`](crate::app::App): [`MailJob`]s in
//! a bounded queue ([`Outbox`]). What bounds what gets queued (the Forgot Password
//! limits) is [`crate::auth::recovery`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::model::AlertKind;

use tokio::sync::mpsc;

/// Mail jobs waiting for the worker; beyond this, new ones are dropped (and logged).
const QUEUE: usize = 64;

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
        /// How it was replaced (`mail.how_*`), in the recipient's words.
        how: crate::i18n::Key,
    },
    /// Tells the old recovery address that it no longer is one.
    EmailChanged {
        username: String,
        old: String,
        new: Option<String>,
        ip: IpAddr,
    },
    /// Mails a confirmation link to the account's newly bound address.
    ConfirmEmail { username: String },
    /// Tells the admin's bound address that the button put the label password back.
    CredentialsReset { at: u64 },
    /// Tells the admin's confirmed address, through the settings replaced (`old`), that
    /// mail now goes another way (`route`).
    SmtpChanged {
        old: Box<crate::mail::transport::SmtpSettings>,
        by: String,
        ip: IpAddr,
        route: String,
    },
    /// Tells the admin's confirmed address that another admin-role account was created.
    AdminCreated {
        username: String,
        by: String,
        ip: IpAddr,
    },
    /// Tells an account's confirmed address that wrong codes locked its second factor.
    FactorLocked {
        username: String,
        ip: IpAddr,
        minutes: u64,
    },
    /// An alert (spec §10) to the owner's confirmed address and, for one about an
    /// account, to that account's: the texts of `kind` with `args` filled in.
    Alert {
        kind: AlertKind,
        /// The account it is about, if any.
        user: Option<String>,
        args: Vec<(&'static str, String)>,
    },
    /// The alerts held back beyond the hour's budget: (kind, the account it was about,
    /// how many).
    AlertsHeld { held: Vec<Held> },
    /// The addresses blocked in the hour after the one mailed: (address, blocks).
    BlockedSummary { blocked: Vec<(IpAddr, u32)> },
}

/// The alerts' hourly budget over every kind (`access.alerts_per_hour`), what was held
/// back beyond it (mailed as one summary when the hour is over), and the blocked
/// addresses of the hour (the first mailed at once, the rest as one summary).
#[derive(Default)]
pub struct AlertBudget {
    inner: Mutex<Budget>,
}

#[derive(Default)]
struct Budget {
    /// When the current hour began (monotonic), if an alert came in it.
    window: Option<Duration>,
    sent: u32,
    held: BTreeMap<(&'static str, Option<String>), u32>,
    /// The blocks of the hour after the first one mailed: when it began, per address.
    blocked: Option<(Duration, BTreeMap<IpAddr, u32>)>,
}

/// The hour of the budget and of the blocked-address summary.
pub const HOUR: Duration = Duration::from_secs(3600);

/// What the budget says about one alert.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Over the hour's budget: counted for the summary.
    Held,
    /// An address blocked within the hour of the last one mailed: counted for the
    /// blocked-address summary.
    Aggregated,
}

/// Alerts of one kind about one account (`None`: about the box, or past the first
/// [`HELD_NAMED`] accounts) held back: (kind name, account, how many).
pub type Held = (&'static str, Option<String>, u32);

/// Accounts named in the held summary; the rest are counted under their kind.
const HELD_NAMED: usize = 32;

/// What is due when an hour is over.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Alerts held back.
    pub held: Vec<Held>,
    /// Addresses blocked after the first: (address, blocks), most blocks first.
    pub blocked: Vec<(IpAddr, u32)>,
}

impl AlertBudget {
    fn lock(&self) -> std::sync::MutexGuard<'_, Budget> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an alert of `kind` (`blocked`: the address, for an address block) goes
    /// out now, at `now` (monotonic), under `cap` mails an hour.
    pub fn admit(
        &self,
        kind: &'static str,
        user: Option<&str>,
        blocked: Option<IpAddr>,
        now: Duration,
        cap: u32,
    ) -> Verdict {
        let mut b = self.lock();
        if let Some(ip) = blocked {
            match &mut b.blocked {
                Some((since, per)) if now < *since + HOUR => {
                    *per.entry(ip).or_default() += 1;
                    return Verdict::Aggregated;
                }
                _ => b.blocked = Some((now, BTreeMap::new())),
            }
        }
        match b.window {
            Some(w) if now < w + HOUR => {}
            _ => {
                b.window = Some(now);
                b.sent = 0;
            }
        }
        if b.sent >= cap {
            let named = user
                .filter(|_| b.held.len() < HELD_NAMED)
                .map(str::to_string);
            *b.held.entry((kind, named)).or_default() += 1;
            return Verdict::Held;
        }
        b.sent += 1;
        Verdict::Send
    }

    /// What is due at `now`: the held alerts of an hour that is over, the blocked
    /// addresses of an hour that is over; each taken once.
    pub fn due(&self, now: Duration) -> Due {
        let mut b = self.lock();
        let mut due = Due::default();
        if b.window.is_some_and(|w| now >= w + HOUR) && !b.held.is_empty() {
            due.held = std::mem::take(&mut b.held)
                .into_iter()
                .map(|((k, u), n)| (k, u, n))
                .collect();
        }
        if let Some((since, _)) = &b.blocked {
            if now >= *since + HOUR {
                if let Some((_, per)) = b.blocked.take() {
                    let mut list: Vec<(IpAddr, u32)> = per.into_iter().collect();
                    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                    due.blocked = list;
                }
            }
        }
        due
    }
}

/// The mail waiting for the worker.
pub struct Outbox {
    queue: mpsc::Sender<MailJob>,
    worker_rx: Mutex<Option<mpsc::Receiver<MailJob>>>,
    alerts: AlertBudget,
}

impl Default for Outbox {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Outbox {
            queue: tx,
            worker_rx: Mutex::new(Some(rx)),
            alerts: AlertBudget::default(),
        }
    }
}

impl Outbox {
    /// The worker's end of the queue; taken once by [`crate::run`].
    pub fn take_worker_queue(&self) -> Option<mpsc::Receiver<MailJob>> {
        self.worker_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The alerts' hourly budget.
    pub fn alerts(&self) -> &AlertBudget {
        &self.alerts
    }

    pub fn enqueue(&self, job: MailJob) {
        if let Err(e) = self.queue.try_send(job) {
            tracing::warn!("mail queue full; a mail was dropped: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Duration = Duration::from_secs(60);

    #[test]
    fn the_hourly_cap_holds_the_rest_for_one_summary() {
        let b = AlertBudget::default();
        let t0 = Duration::from_secs(10);
        for i in 0..3 {
            assert_eq!(
                b.admit("new_device", Some("1001"), None, t0 + M * i, 3),
                Verdict::Send
            );
        }
        assert_eq!(
            b.admit("new_device", Some("1001"), None, t0 + M * 5, 3),
            Verdict::Held
        );
        assert_eq!(
            b.admit("two_factor_off", Some("admin"), None, t0 + M * 6, 3),
            Verdict::Held
        );
        assert_eq!(
            b.admit("new_device", Some("1001"), None, t0 + M * 7, 3),
            Verdict::Held
        );
        assert_eq!(
            b.due(t0 + M * 59),
            Due::default(),
            "not before the hour is over"
        );
        let due = b.due(t0 + HOUR);
        assert_eq!(
            due.held,
            [
                ("new_device", Some("1001".to_string()), 2),
                ("two_factor_off", Some("admin".to_string()), 1)
            ]
        );
        assert_eq!(b.due(t0 + HOUR), Due::default(), "taken once");
        assert_eq!(
            b.admit("new_device", Some("1001"), None, t0 + HOUR + M, 3),
            Verdict::Send,
            "a new hour"
        );
    }

    #[test]
    fn the_first_block_of_an_hour_is_mailed_the_rest_summarised() {
        let b = AlertBudget::default();
        let (a, c) = (
            "203.0.113.1".parse().expect("ip"),
            "203.0.113.2".parse().expect("ip"),
        );
        let t0 = Duration::from_secs(5);
        assert_eq!(
            b.admit("address_blocked", None, Some(a), t0, 10),
            Verdict::Send
        );
        assert_eq!(
            b.admit("address_blocked", None, Some(c), t0 + M, 10),
            Verdict::Aggregated
        );
        assert_eq!(
            b.admit("address_blocked", None, Some(c), t0 + M * 2, 10),
            Verdict::Aggregated
        );
        assert_eq!(
            b.admit("address_blocked", None, Some(a), t0 + M * 3, 10),
            Verdict::Aggregated
        );
        let due = b.due(t0 + HOUR);
        assert_eq!(due.blocked, [(c, 2), (a, 1)], "most blocks first");
        assert_eq!(
            b.admit("address_blocked", None, Some(a), t0 + HOUR + M, 10),
            Verdict::Send
        );
    }
}
