//! Recovery's state in RAM, held by the [`App`](crate::app::App): the Forgot Password
//! rate limits (sliding windows per address and per account) and the queue of mail for
//! the worker. Apart from the flows so that the app's state does not import them back.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::window::Window;

/// Mail jobs waiting for the worker; beyond this, new ones are dropped (and logged).
const QUEUE: usize = 64;
/// Addresses / accounts tracked by the rate limits at once.
const MAX_TRACKED: usize = 4096;

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
pub struct Windows<K> {
    map: HashMap<K, Window>,
}

impl<K> Default for Windows<K> {
    fn default() -> Self {
        Windows {
            map: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Windows<K> {
    /// Counts one event; `Err(wait)` when `limit` events already fell in the window.
    pub fn hit(
        &mut self,
        key: &K,
        now: Duration,
        limit: u32,
        window: Duration,
    ) -> Result<(), Duration> {
        if !self.map.contains_key(key) && self.map.len() >= MAX_TRACKED {
            self.map
                .retain(|_, w| w.last().is_some_and(|t| now.saturating_sub(t) < window));
            if self.map.len() >= MAX_TRACKED {
                return Err(window);
            }
        }
        let w = self.map.entry(key.clone()).or_default();
        w.slide(now, window);
        if w.count() >= limit {
            return Err(w.wait(now, window));
        }
        w.push(now, ());
        Ok(())
    }
}

pub struct Recovery {
    pub forgot_by_addr: Mutex<Windows<IpAddr>>,
    pub mails_by_account: Mutex<Windows<String>>,
    queue: mpsc::Sender<MailJob>,
    worker_rx: Mutex<Option<mpsc::Receiver<MailJob>>>,
}

impl Default for Recovery {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Recovery {
            forgot_by_addr: Mutex::new(Windows::default()),
            mails_by_account: Mutex::new(Windows::default()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_limit_and_slide() {
        let mut w = Windows::default();
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
        let mut w = Windows::default();
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
