//! Brute-force limits (spec §5), in RAM:
//! - per address: `lockout_failures` failed attempts within `lockout_window` block that
//!   address for `lockout_block` (429 with the seconds left). IPv6 peers are counted per
//!   /64, since one host usually owns a whole /64 and could otherwise rotate addresses.
//!   An attempt counts from the moment it starts ([`Limiter::begin`]), before its hash:
//!   parallel guesses from one address get `lockout_failures` hashes, not one each.
//!   A success clears only that username's own failures from that address, so a valid
//!   extension login does not forgive guesses at the admin.
//! - per account: after `account_slowdown_after` consecutive failures from anywhere, each
//!   failed attempt's answer on that account waits one more `account_slowdown_step`,
//!   capped at `account_slowdown_max`, and the waits are served one after another
//!   ([`Limiter::wait_turn`]). The hash comes first and a right password is answered at
//!   once: never a hard lock, an attacker must not be able to lock the real admin out
//!   of the box. The failure counts before its delay, so a client that leaves early
//!   does not escape it; parallel guesses from one address are bounded by its lockout.
//! - per account, NIST SP 800-63B's cap: after [`PROTECT_AFTER`] consecutive failures
//!   (from every address, those in progress counted too) the account is *protected*:
//!   an attempt is accepted only with a valid device cookie or from the local network
//!   (the same rule as the reset link); the rest get [`Refused::Protected`] until a
//!   success through one of those, or a recovery (button, reset link, recovery code:
//!   [`Limiter::forgive_account`]), clears the count.
//! - per device cookie (OWASP "device cookies", [`super::device`]): an attempt carrying a
//!   valid cookie for the username it tries skips the address block and the account
//!   slow-down and has a small lockout of its own: [`DEVICE_FAILURES`] failures void
//!   the cookie (for good: the flow removes it from the account's live cookies; a full
//!   table never forgets one with failures).
//!
//! Usernames are kept only as keyed 64-bit hashes ([`UserKey`]), never raw.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::config::Policy;
use crate::window::Window;

/// Addresses tracked at once; beyond this the idle entries go, never an active block.
const MAX_ADDRESSES: usize = 16_384;
/// Accounts (including non-existent usernames) tracked at once.
const MAX_ACCOUNTS: usize = 4096;
/// Device cookies tracked at once (those with failures or attempts in progress).
const MAX_DEVICES: usize = 4096;
/// Failures with one device cookie after which it no longer exempts anything.
pub const DEVICE_FAILURES: u32 = 5;
/// Consecutive failures on one account after which only a known browser or the local
/// network may try it (NIST SP 800-63B 5.2.2: "no more than 100").
pub const PROTECT_AFTER: u32 = 100;
/// The wait told to a client whose address has every attempt slot in progress: those
/// attempts end within a hash or two.
const IN_PROGRESS_WAIT: Duration = Duration::from_secs(1);
/// The longest a failed attempt's answer waits in its account's slow-down (the queue of
/// failures ahead of it included), so that no connection is held for many minutes.
pub const MAX_TURN_WAIT: Duration = Duration::from_secs(60);

/// One account's queue of slowed-down attempts.
#[derive(Default)]
struct Gate {
    turn: tokio::sync::Mutex<()>,
    waiting: std::sync::atomic::AtomicU32,
}

/// Why an attempt was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The address is blocked (or has all its attempts in progress) for this long.
    Wait(Duration),
    /// The account takes attempts only from a known browser or the local network.
    Protected,
}

/// What a failed attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Attempts left before this address (or device cookie) is blocked.
    AttemptsLeft(u32),
    /// This failure blocked the address for this long.
    Locked(Duration),
}

/// A username as the limiter keeps it: a keyed hash, so a 16 KiB "username" costs
/// 8 bytes and no name is ever stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserKey(u64);

/// The random nonce of a valid device cookie (see [`super::device`]).
pub type DeviceId = [u8; 16];

#[derive(Default)]
struct AddrState {
    /// When each failure happened, and on which username.
    failures: Window<UserKey>,
    /// Attempts started and not yet decided.
    pending: u32,
    blocked_until: Option<Duration>,
    last_seen: Duration,
}

#[derive(Default)]
struct DeviceState {
    failures: u32,
    pending: u32,
}

/// One account's streak: failures in a row (from anywhere) and attempts in progress.
#[derive(Default, Clone, Copy)]
struct AccountState {
    failures: u32,
    pending: u32,
    /// The protection was told (audit, log) for this streak.
    announced: bool,
}

#[derive(Default)]
struct State {
    addrs: HashMap<IpAddr, AddrState>,
    accounts: HashMap<UserKey, AccountState>,
    devices: HashMap<DeviceId, DeviceState>,
}

pub struct Limiter {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    policy: Mutex<Policy>,
    keys: RandomState,
    /// One gate per account whose attempts are being slowed down: the delays are served
    /// in turn, not all at once.
    gates: Mutex<HashMap<UserKey, Arc<Gate>>>,
    /// The second factor's counts, apart from the password's ([`second`]).
    factor: Mutex<second::FactorState>,
    /// When the latest address block ends (monotonic ms): until then
    /// [`Limiter::blocked_for`] looks an address up; after it, with nothing blocked, it
    /// answers without the lock (it runs for every request on the page path).
    blocks_end_ms: std::sync::atomic::AtomicU64,
}

/// A monotonic reading in whole milliseconds.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The key an address is counted under: itself for IPv4, its /64 for IPv6.
pub fn addr_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// Which limit an attempt is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Track {
    Address(IpAddr),
    Device(DeviceId),
}

/// One sign-in attempt in progress. Decide it with [`Attempt::failed`] or
/// [`Attempt::succeeded`]; dropped undecided (busy hasher, client gone), it gives its
/// slot back without counting.
#[must_use]
pub struct Attempt<'a> {
    limiter: &'a Limiter,
    track: Track,
    user: UserKey,
    /// Counted in the account's attempts in progress (not a device cookie's).
    on_account: bool,
    decided: bool,
}

impl Attempt<'_> {
    /// Whether a device cookie carries this attempt (no account slow-down applies).
    pub fn by_device(&self) -> bool {
        matches!(self.track, Track::Device(_))
    }

    pub fn failed(mut self) -> Failure {
        self.decided = true;
        self.limiter.fail(self.track, self.user, self.on_account)
    }

    pub fn succeeded(mut self) {
        self.decided = true;
        self.limiter.succeed(self.track, self.user);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.decided {
            self.limiter.release(self.track, self.user, self.on_account);
        }
    }
}

impl Limiter {
    pub fn new(clock: Arc<dyn Clock>, policy: Policy) -> Limiter {
        Limiter {
            state: Mutex::new(State::default()),
            clock,
            policy: Mutex::new(policy),
            keys: RandomState::new(),
            gates: Mutex::new(HashMap::new()),
            factor: Mutex::new(second::FactorState::default()),
            blocks_end_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn policy(&self) -> Policy {
        self.policy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_policy(&self, policy: Policy) {
        *self.policy.lock().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// A name's counters, whatever its letter case: a directory compares names without
    /// case, so `Tech1` and `TECH1` are the same guesses at the same account.
    pub fn user_key(&self, username: &str) -> UserKey {
        UserKey(self.keys.hash_one(username.to_lowercase()))
    }

    /// [`Limiter::begin_from`] an address on the local network, where the account cap
    /// does not apply (recovery codes, which work only from there). `Err(wait)` when the
    /// address is blocked or has all its attempts in progress.
    pub fn begin(
        &self,
        ip: IpAddr,
        username: &str,
        device: Option<DeviceId>,
    ) -> Result<Attempt<'_>, Duration> {
        self.begin_from(ip, true, username, device)
            .map_err(|r| match r {
                Refused::Wait(d) => d,
                // Never from the local network.
                Refused::Protected => IN_PROGRESS_WAIT,
            })
    }

    /// Starts an attempt on `username` from `ip` (`local`: on the PBX's own network),
    /// counted before any hash is computed. `device`: the id of a valid device cookie
    /// for this username, if the request carried one. Refused when the address is
    /// blocked or has all its attempts in progress, or when the account is protected
    /// and neither a device cookie nor the local network carries the attempt.
    pub fn begin_from(
        &self,
        ip: IpAddr,
        local: bool,
        username: &str,
        device: Option<DeviceId>,
    ) -> Result<Attempt<'_>, Refused> {
        let user = self.user_key(username);
        let mut st = self.lock();
        if let Some(id) = device {
            if !st.devices.contains_key(&id) && st.devices.len() >= MAX_DEVICES {
                // Only an entry that holds nothing may go: one with failures would
                // come back clean, a voided one would regain its exemption. With none
                // to spare, this cookie gets no device treatment.
                let drop = st
                    .devices
                    .iter()
                    .find(|(_, d)| d.pending == 0 && d.failures == 0)
                    .map(|(k, _)| *k);
                if let Some(k) = drop {
                    st.devices.remove(&k);
                }
            }
            if st.devices.len() < MAX_DEVICES || st.devices.contains_key(&id) {
                let d = st.devices.entry(id).or_default();
                if d.failures + d.pending < DEVICE_FAILURES {
                    d.pending += 1;
                    return Ok(Attempt {
                        limiter: self,
                        track: Track::Device(id),
                        user,
                        on_account: false,
                        decided: false,
                    });
                }
            }
            // A voided (or busy) cookie: the address rules apply.
        }
        let p = self.policy();
        let now = self.clock.mono();
        let k = addr_key(ip);
        if !st.addrs.contains_key(&k) && st.addrs.len() >= MAX_ADDRESSES {
            Self::evict_addresses(&mut st, now, p.lockout_window);
            if st.addrs.len() >= MAX_ADDRESSES {
                // Every entry is an active block or in use: a new address waits rather
                // than one of those being forgotten.
                return Err(Refused::Wait(p.lockout_block));
            }
        }
        let streak = st.accounts.get(&user).copied().unwrap_or_default();
        let a = st.addrs.entry(k).or_default();
        a.last_seen = now;
        match a.blocked_until {
            Some(until) if until > now => return Err(Refused::Wait(until - now)),
            Some(_) => a.blocked_until = None,
            None => {}
        }
        a.failures.slide(now, p.lockout_window);
        let used = a.failures.count().saturating_add(a.pending);
        if used >= p.lockout_failures {
            return Err(Refused::Wait(IN_PROGRESS_WAIT));
        }
        if !local && streak.failures.saturating_add(streak.pending) >= PROTECT_AFTER {
            return Err(Refused::Protected);
        }
        a.pending += 1;
        Self::account_entry(&mut st, user).pending += 1;
        Ok(Attempt {
            limiter: self,
            track: Track::Address(k),
            user,
            on_account: true,
            decided: false,
        })
    }

    /// How long `ip`'s address stays blocked, if it is (the accept loop closes its
    /// connections: a blocked address costs no parsing).
    pub fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let now = self.clock.mono();
        if millis(now)
            >= self
                .blocks_end_ms
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return None;
        }
        let st = self.lock();
        st.addrs
            .get(&addr_key(ip))
            .and_then(|a| a.blocked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Whether `username` takes attempts only from a known browser or the local network.
    pub fn protected(&self, username: &str) -> bool {
        let user = self.user_key(username);
        self.lock()
            .accounts
            .get(&user)
            .is_some_and(|a| a.failures >= PROTECT_AFTER)
    }

    /// True once per streak, when the account has just become protected: the caller
    /// tells the audit trail and the log.
    pub fn announce_protection(&self, username: &str) -> bool {
        let user = self.user_key(username);
        let mut st = self.lock();
        match st.accounts.get_mut(&user) {
            Some(a) if a.failures >= PROTECT_AFTER && !a.announced => {
                a.announced = true;
                true
            }
            _ => false,
        }
    }

    /// A recovery replaced the account's password (button, reset link, recovery code):
    /// its streak of failures is over, the protection lifted.
    pub fn forgive_account(&self, username: &str) {
        let user = self.user_key(username);
        let mut st = self.lock();
        if let Some(a) = st.accounts.get_mut(&user) {
            a.failures = 0;
            a.announced = false;
        }
        Self::drop_idle_account(&mut st, user);
    }

    /// Drops idle entries (no block, nothing pending, last seen a window ago), then, if
    /// still full, the idle entry seen longest ago — never an active block.
    fn evict_addresses(st: &mut State, now: Duration, window: Duration) {
        let active = |a: &AddrState| a.blocked_until.is_some_and(|u| u > now) || a.pending > 0;
        st.addrs
            .retain(|_, a| active(a) || now.saturating_sub(a.last_seen) < window);
        if st.addrs.len() >= MAX_ADDRESSES {
            if let Some(old) = st
                .addrs
                .iter()
                .filter(|(_, a)| !active(a))
                .min_by_key(|(_, a)| a.last_seen)
                .map(|(k, _)| *k)
            {
                st.addrs.remove(&old);
            }
        }
    }

    /// How long an attempt on `username` must wait before it is checked.
    pub fn account_delay(&self, username: &str) -> Duration {
        let p = self.policy();
        let user = self.user_key(username);
        let fails = self.lock().accounts.get(&user).map_or(0, |a| a.failures);
        let over = fails.saturating_sub(p.account_slowdown_after);
        p.account_slowdown_step
            .saturating_mul(over)
            .min(p.account_slowdown_max)
    }

    /// Serves the account's slow-down of a *failed* attempt before its answer: the
    /// failures on one account are answered one after another, each a delay later, so N
    /// parallel guesses wait N delays for their answers. A right password never comes
    /// here: it is answered at once, so an attacker cannot lock the owner out with the
    /// slow-down. No answer is held longer than [`MAX_TURN_WAIT`].
    pub async fn wait_turn(&self, username: &str) {
        use std::sync::atomic::Ordering::SeqCst;
        let delay = self.account_delay(username);
        if delay.is_zero() {
            return;
        }
        let user = self.user_key(username);
        let gate = Arc::clone(
            self.gates
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(user)
                .or_default(),
        );
        gate.waiting.fetch_add(1, SeqCst);
        let _ = tokio::time::timeout(MAX_TURN_WAIT, async {
            let _turn = gate.turn.lock().await;
            // The delay as it is now: failures before this one may have added to it.
            tokio::time::sleep(self.account_delay(username)).await;
        })
        .await;
        gate.waiting.fetch_sub(1, SeqCst);
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map and this caller hold it: nobody waits, the gate can go.
        if Arc::strong_count(&gate) == 2 {
            gates.remove(&user);
        }
    }

    /// The account's entry; with the table full, the least-failed idle entry goes
    /// first: the ones worth remembering are under attack.
    fn account_entry(st: &mut State, user: UserKey) -> &mut AccountState {
        if !st.accounts.contains_key(&user) && st.accounts.len() >= MAX_ACCOUNTS {
            if let Some(k) = st
                .accounts
                .iter()
                .filter(|(_, a)| a.pending == 0)
                .min_by_key(|(_, a)| a.failures)
                .map(|(k, _)| *k)
            {
                st.accounts.remove(&k);
            }
        }
        st.accounts.entry(user).or_default()
    }

    /// An entry with no failures and nothing in progress holds nothing: it goes.
    fn drop_idle_account(st: &mut State, user: UserKey) {
        if st
            .accounts
            .get(&user)
            .is_some_and(|a| a.failures == 0 && a.pending == 0)
        {
            st.accounts.remove(&user);
        }
    }

    fn fail(&self, track: Track, user: UserKey, on_account: bool) -> Failure {
        let p = self.policy();
        let now = self.clock.mono();
        let mut st = self.lock();
        let a = Self::account_entry(&mut st, user);
        a.failures = a.failures.saturating_add(1);
        if on_account {
            a.pending = a.pending.saturating_sub(1);
        }
        match track {
            Track::Device(id) => {
                let d = st.devices.entry(id).or_default();
                d.pending = d.pending.saturating_sub(1);
                d.failures = d.failures.saturating_add(1);
                Failure::AttemptsLeft(DEVICE_FAILURES.saturating_sub(d.failures))
            }
            Track::Address(k) => {
                let a = st.addrs.entry(k).or_default();
                a.pending = a.pending.saturating_sub(1);
                a.last_seen = now;
                a.failures.push(now, user);
                let count = a.failures.count();
                if count >= p.lockout_failures {
                    a.failures.clear();
                    a.blocked_until = Some(now + p.lockout_block);
                    let end = millis(now + p.lockout_block) + 1;
                    self.blocks_end_ms
                        .fetch_max(end, std::sync::atomic::Ordering::Relaxed);
                    Failure::Locked(p.lockout_block)
                } else {
                    Failure::AttemptsLeft(p.lockout_failures - count)
                }
            }
        }
    }

    /// A correct password: this username's failures from this address (or with this
    /// device cookie) and the account's streak are forgiven; nobody else's.
    fn succeed(&self, track: Track, user: UserKey) {
        let mut st = self.lock();
        if let Some(a) = st.accounts.get_mut(&user) {
            a.failures = 0;
            a.announced = false;
            if matches!(track, Track::Address(_)) {
                a.pending = a.pending.saturating_sub(1);
            }
        }
        Self::drop_idle_account(&mut st, user);
        match track {
            Track::Device(id) => {
                st.devices.remove(&id);
            }
            Track::Address(k) => {
                if let Some(a) = st.addrs.get_mut(&k) {
                    a.pending = a.pending.saturating_sub(1);
                    a.failures.retain(|u| *u != user);
                }
            }
        }
    }

    fn release(&self, track: Track, user: UserKey, on_account: bool) {
        let mut st = self.lock();
        if on_account {
            if let Some(a) = st.accounts.get_mut(&user) {
                a.pending = a.pending.saturating_sub(1);
            }
            Self::drop_idle_account(&mut st, user);
        }
        match track {
            Track::Device(id) => {
                if let Some(d) = st.devices.get_mut(&id) {
                    d.pending = d.pending.saturating_sub(1);
                }
            }
            Track::Address(k) => {
                if let Some(a) = st.addrs.get_mut(&k) {
                    a.pending = a.pending.saturating_sub(1);
                }
            }
        }
    }
}

mod second;
pub use second::{
    FactorAttempt, FactorFailure, FactorRefused, FAILURES as FACTOR_FAILURES, LOCK as FACTOR_LOCK,
};

#[cfg(test)]
mod tests;
