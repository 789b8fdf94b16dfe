//! The mail waiting for the worker, kept by the [`App`](crate::app::App): [`MailJob`]s in
//! a bounded queue ([`Outbox`]). What bounds what gets queued (the Forgot Password
//! limits) is [`crate::auth::recovery`].

use std::net::IpAddr;
use std::sync::Mutex;

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
}

/// The mail waiting for the worker.
pub struct Outbox {
    queue: mpsc::Sender<MailJob>,
    worker_rx: Mutex<Option<mpsc::Receiver<MailJob>>>,
}

impl Default for Outbox {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Outbox {
            queue: tx,
            worker_rx: Mutex::new(Some(rx)),
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

    pub fn enqueue(&self, job: MailJob) {
        if let Err(e) = self.queue.try_send(job) {
            tracing::warn!("mail queue full; a mail was dropped: {e}");
        }
    }
}
