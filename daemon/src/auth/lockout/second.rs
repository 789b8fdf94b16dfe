//! The second factor's own limits (spec §5): a wrong code (TOTP or recovery code at
//! the second step) counts per account and per address, apart from the password's
//! counts, so that a right password never forgives it. Only a right second factor
//! clears the account's count.
//! - per account: [`FAILURES`] wrong codes in a row lock that account's second factor
//!   for [`LOCK`], doubled at each lock that follows without a right code in between,
//!   up to [`MAX_LOCK`]. An attacker who has the password can guess ~5 codes per
//!   15 minutes at most (an expected hit after years), and the owner is told by mail.
//!   A recovery code (80 bits) is still checked while the lock holds: the owner's
//!   printed sheet stays a way in.
//! - per address: `lockout_failures` wrong codes within `lockout_window` from one
//!   address (its /64 for IPv6) block the second step from there for `lockout_block`,
//!   whichever accounts they were for.
//!
//! Attempts count from their start, like passwords: parallel codes cannot outrun it.

use std::net::IpAddr;
use std::time::Duration;

use super::{addr_key, Limiter, UserKey, IN_PROGRESS_WAIT};
use crate::window::Window;

/// Wrong codes in a row after which an account's second factor is locked.
pub const FAILURES: u32 = 5;
/// The first lock; each further one without a right code in between is twice as long.
pub const LOCK: Duration = Duration::from_secs(15 * 60);
/// The longest lock: never a lock that outlasts an afternoon.
pub const MAX_LOCK: Duration = Duration::from_secs(4 * 60 * 60);
/// Accounts and addresses tracked at once; idle entries go first, never a lock.
const MAX_TRACKED: usize = 4096;

#[derive(Default)]
pub(super) struct AccountFactor {
    failures: u32,
    pending: u32,
    locked_until: Option<Duration>,
    /// Locks so far without a right code in between (the next one is longer).
    locks: u32,
}

#[derive(Default)]
pub(super) struct AddrFactor {
    failures: Window<UserKey>,
    pending: u32,
    blocked_until: Option<Duration>,
}

#[derive(Default)]
pub(super) struct FactorState {
    accounts: std::collections::HashMap<UserKey, AccountFactor>,
    addrs: std::collections::HashMap<IpAddr, AddrFactor>,
}

/// What a wrong code leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorFailure {
    /// Codes left before the account's second factor (or the address) is locked.
    AttemptsLeft(u32),
    /// This code locked the account's second factor for this long: tell the owner.
    AccountLocked(Duration),
    /// This code blocked the address's second step for this long.
    AddressBlocked(Duration),
}

/// One second-factor check in progress; decide it with [`FactorAttempt::failed`] or
/// [`FactorAttempt::succeeded`]. Dropped undecided, it counts for nothing.
#[must_use]
pub struct FactorAttempt<'a> {
    limiter: &'a Limiter,
    addr: IpAddr,
    user: UserKey,
    decided: bool,
}

impl FactorAttempt<'_> {
    pub fn failed(mut self) -> FactorFailure {
        self.decided = true;
        self.limiter.factor_failed(self.addr, self.user)
    }

    pub fn succeeded(mut self) {
        self.decided = true;
        self.limiter.factor_succeeded(self.addr, self.user);
    }
}

impl Drop for FactorAttempt<'_> {
    fn drop(&mut self) {
        if !self.decided {
            let mut st = self.limiter.factor_lock();
            if let Some(a) = st.accounts.get_mut(&self.user) {
                a.pending = a.pending.saturating_sub(1);
            }
            if let Some(a) = st.addrs.get_mut(&self.addr) {
                a.pending = a.pending.saturating_sub(1);
            }
        }
    }
}

/// Why a second-factor check is refused before it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorRefused {
    /// The account's second factor is locked (wrong codes from anywhere).
    Account(Duration),
    /// This address sent too many wrong codes (or has every slot in progress).
    Address(Duration),
}

impl Limiter {
    fn factor_lock(&self) -> std::sync::MutexGuard<'_, FactorState> {
        self.factor.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a second-factor check of `username` from `ip`, counted before it is made.
    /// `recovery_code`: the code has the form of a recovery code (80 bits, not 6
    /// digits): the account's lock does not hold it back, so an attacker with the
    /// password cannot lock the owner out — only the address limits apply.
    pub fn begin_factor(
        &self,
        ip: IpAddr,
        username: &str,
        recovery_code: bool,
    ) -> Result<FactorAttempt<'_>, FactorRefused> {
        let p = self.policy();
        let now = self.clock.mono();
        let user = self.user_key(username);
        let k = addr_key(ip);
        let mut st = self.factor_lock();
        Self::evict_factor(&mut st, now, p.lockout_window);
        if let Some(a) = st.accounts.get_mut(&user).filter(|_| !recovery_code) {
            match a.locked_until {
                Some(until) if until > now => return Err(FactorRefused::Account(until - now)),
                Some(_) => a.locked_until = None,
                None => {}
            }
            if a.failures.saturating_add(a.pending) >= FAILURES {
                return Err(FactorRefused::Account(IN_PROGRESS_WAIT));
            }
        }
        if let Some(a) = st.addrs.get_mut(&k) {
            match a.blocked_until {
                Some(until) if until > now => return Err(FactorRefused::Address(until - now)),
                Some(_) => a.blocked_until = None,
                None => {}
            }
            a.failures.slide(now, p.lockout_window);
            if a.failures.count().saturating_add(a.pending) >= p.lockout_failures {
                return Err(FactorRefused::Address(IN_PROGRESS_WAIT));
            }
        }
        if st.accounts.len() >= MAX_TRACKED && !st.accounts.contains_key(&user)
            || st.addrs.len() >= MAX_TRACKED && !st.addrs.contains_key(&k)
        {
            // Every entry is a lock or in use: a new one waits rather than one of those
            // being forgotten.
            return Err(FactorRefused::Address(p.lockout_block));
        }
        st.accounts.entry(user).or_default().pending += 1;
        st.addrs.entry(k).or_default().pending += 1;
        Ok(FactorAttempt {
            limiter: self,
            addr: k,
            user,
            decided: false,
        })
    }

    /// Forgets entries that hold nothing: no lock, nothing pending, no failure left in
    /// the window (accounts keep their count until a right code).
    fn evict_factor(st: &mut FactorState, now: Duration, window: Duration) {
        if st.accounts.len() >= MAX_TRACKED {
            st.accounts.retain(|_, a| {
                a.pending > 0 || a.failures > 0 || a.locked_until.is_some_and(|u| u > now)
            });
        }
        if st.addrs.len() >= MAX_TRACKED {
            st.addrs.retain(|_, a| {
                a.failures.slide(now, window);
                a.pending > 0 || a.failures.count() > 0 || a.blocked_until.is_some_and(|u| u > now)
            });
        }
    }

    fn factor_failed(&self, k: IpAddr, user: UserKey) -> FactorFailure {
        let p = self.policy();
        let now = self.clock.mono();
        let mut st = self.factor_lock();
        let a = st.accounts.entry(user).or_default();
        a.pending = a.pending.saturating_sub(1);
        a.failures = a.failures.saturating_add(1);
        let account_left = FAILURES.saturating_sub(a.failures);
        let locked = if account_left == 0 {
            let lock = LOCK.saturating_mul(1u32 << a.locks.min(8)).min(MAX_LOCK);
            a.locks = a.locks.saturating_add(1);
            a.failures = 0;
            a.locked_until = Some(now + lock);
            Some(lock)
        } else {
            None
        };
        let ad = st.addrs.entry(k).or_default();
        ad.pending = ad.pending.saturating_sub(1);
        ad.failures.push(now, user);
        let count = ad.failures.count();
        let addr_left = p.lockout_failures.saturating_sub(count);
        if addr_left == 0 {
            ad.failures.clear();
            ad.blocked_until = Some(now + p.lockout_block);
        }
        match locked {
            Some(d) => FactorFailure::AccountLocked(d),
            None if addr_left == 0 => FactorFailure::AddressBlocked(p.lockout_block),
            None => FactorFailure::AttemptsLeft(account_left.min(addr_left)),
        }
    }

    /// A right code: the account's count and its locks so far are forgiven, and this
    /// account's wrong codes from this address; nobody else's.
    fn factor_succeeded(&self, k: IpAddr, user: UserKey) {
        let mut st = self.factor_lock();
        st.accounts.remove(&user);
        if let Some(a) = st.addrs.get_mut(&k) {
            a.pending = a.pending.saturating_sub(1);
            a.failures.retain(|u| *u != user);
        }
    }
}
