//! What the ways back in hold in RAM, owned here and changed only through methods: the
//! Forgot Password limits (per address with its coarser network, and per account for
//! the mails sent), the change of the button's mode waiting for its press at the box,
//! and the wake-up of the recovery-check schedule.
//!
//! The rules that use it live in `flows/recovery/`; the state sits below [`App`]
//! (which holds it) so that the layers keep pointing one way.
//!
//! [`App`]: crate::app::App

use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::config::Policy;
use crate::model::PendingMode;
use crate::window::{AddressLimits, Windows};

#[derive(Default)]
pub struct Recovery {
    forgot_by_addr: Mutex<AddressLimits>,
    mails_by_account: Mutex<Windows<String>>,
    button_change: Mutex<Option<PendingMode>>,
    drill_wake: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Recovery {
    /// Counts a Forgot Password request from `ip` (at `now`, the app's monotonic clock);
    /// `Err(wait)` when its address, its network or all new requests together are over
    /// the limit. An address seen for the first time is never refused by the others'.
    pub fn allow_forgot(&self, ip: IpAddr, now: Duration, p: &Policy) -> Result<(), Duration> {
        lock(&self.forgot_by_addr).hit(
            crate::auth::lockout::addr_key(ip),
            net_key(ip),
            now,
            p.forgot_per_address,
            p.forgot_address_window,
        )
    }

    /// Counts a recovery mail to `username`; false when its cap in the window is reached.
    pub fn allow_mail_to(&self, username: &str, now: Duration, p: &Policy) -> bool {
        lock(&self.mails_by_account)
            .hit(
                &username.to_string(),
                now,
                p.forgot_mails_per_account,
                p.forgot_account_window,
            )
            .is_ok()
    }

    /// Sets the change waiting for its press (a newer request replaces an older one).
    pub fn request_change(&self, change: PendingMode) {
        *lock(&self.button_change) = Some(change);
    }

    /// The change waiting for its press if it has not lapsed at `now`; a lapsed one is
    /// dropped and returned as `Err`.
    pub fn pending(&self, now: Duration) -> Result<Option<PendingMode>, PendingMode> {
        let mut slot = lock(&self.button_change);
        match *slot {
            Some(p) if now < p.until => Ok(Some(p)),
            Some(p) => {
                *slot = None;
                Err(p)
            }
            None => Ok(None),
        }
    }

    /// Takes the change waiting for its press, whether it is confirmed or cancelled.
    pub fn take_pending(&self) -> Option<PendingMode> {
        lock(&self.button_change).take()
    }

    /// The recovery-check schedule changed out of turn (a check sent now).
    pub fn wake_drill(&self) {
        self.drill_wake.notify_one();
    }

    /// Resolves at the next [`Self::wake_drill`].
    pub async fn drill_woken(&self) {
        self.drill_wake.notified().await;
    }
}

/// The coarser network an address is also limited under: its /48 for IPv6 (one site
/// usually owns a whole /48 and could rotate through its /64s); none for IPv4.
fn net_key(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            Some(IpAddr::V6((u128::from(v6) & !((1u128 << 80) - 1)).into()))
        }
        _ => None,
    }
}
