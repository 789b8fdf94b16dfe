//! Brute-force limits (spec §5), in RAM:
//! - per address: `lockout_failures` failed logins within `lockout_window` block that
//!   address for `lockout_block` (429 with the seconds left). IPv6 peers are counted per
//!   /64, since one host usually owns a whole /64 and could otherwise rotate addresses.
//! - per account: after `account_slowdown_after` consecutive failures from anywhere, each
//!   attempt on that account waits one more `account_slowdown_step`, capped at
//!   `account_slowdown_max`. Never a hard lock: an attacker must not be able to lock the
//!   real admin out of the box.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::config::Policy;

/// Addresses tracked at once; beyond this the entry idle longest is dropped.
const MAX_ADDRESSES: usize = 16_384;
/// Accounts (including non-existent usernames) tracked at once.
const MAX_ACCOUNTS: usize = 4096;

/// What a failed attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Attempts left before this address is blocked.
    AttemptsLeft(u32),
    /// This failure blocked the address for this long.
    Locked(Duration),
}

#[derive(Default)]
struct AddrState {
    failures: VecDeque<Duration>,
    blocked_until: Option<Duration>,
    last_seen: Duration,
}

#[derive(Default)]
struct State {
    addrs: HashMap<IpAddr, AddrState>,
    accounts: HashMap<String, u32>,
}

pub struct Limiter {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    policy: Mutex<Policy>,
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

impl Limiter {
    pub fn new(clock: Arc<dyn Clock>, policy: Policy) -> Limiter {
        Limiter {
            state: Mutex::new(State::default()),
            clock,
            policy: Mutex::new(policy),
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

    /// `Err(remaining)` while the address is blocked.
    pub fn check_addr(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = self.clock.mono();
        let mut st = self.lock();
        let Some(a) = st.addrs.get_mut(&addr_key(ip)) else {
            return Ok(());
        };
        match a.blocked_until {
            Some(until) if until > now => Err(until - now),
            Some(_) => {
                a.blocked_until = None;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// How long an attempt on `username` must wait before it is checked.
    pub fn account_delay(&self, username: &str) -> Duration {
        let p = self.policy();
        let fails = self.lock().accounts.get(username).copied().unwrap_or(0);
        let over = fails.saturating_sub(p.account_slowdown_after);
        p.account_slowdown_step
            .saturating_mul(over)
            .min(p.account_slowdown_max)
    }

    pub fn record_failure(&self, ip: IpAddr, username: &str) -> Failure {
        let p = self.policy();
        let now = self.clock.mono();
        let mut st = self.lock();
        if !st.accounts.contains_key(username) && st.accounts.len() >= MAX_ACCOUNTS {
            // Forget the least-failed entry: the ones worth remembering are under attack.
            if let Some(k) = st
                .accounts
                .iter()
                .min_by_key(|(_, n)| **n)
                .map(|(k, _)| k.clone())
            {
                st.accounts.remove(&k);
            }
        }
        let n = st.accounts.entry(username.to_string()).or_insert(0);
        *n = n.saturating_add(1);

        let k = addr_key(ip);
        if !st.addrs.contains_key(&k) && st.addrs.len() >= MAX_ADDRESSES {
            let window = p.lockout_window;
            st.addrs.retain(|_, a| {
                a.blocked_until.is_some_and(|u| u > now) || now.saturating_sub(a.last_seen) < window
            });
            if st.addrs.len() >= MAX_ADDRESSES {
                if let Some(old) = st
                    .addrs
                    .iter()
                    .min_by_key(|(_, a)| a.last_seen)
                    .map(|(k, _)| *k)
                {
                    st.addrs.remove(&old);
                }
            }
        }
        let a = st.addrs.entry(k).or_default();
        a.last_seen = now;
        while a
            .failures
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= p.lockout_window)
        {
            a.failures.pop_front();
        }
        a.failures.push_back(now);
        let count = u32::try_from(a.failures.len()).unwrap_or(u32::MAX);
        if count >= p.lockout_failures {
            a.failures.clear();
            a.blocked_until = Some(now + p.lockout_block);
            Failure::Locked(p.lockout_block)
        } else {
            Failure::AttemptsLeft(p.lockout_failures - count)
        }
    }

    /// A correct password: the address's failures and the account's streak are forgiven.
    pub fn record_success(&self, ip: IpAddr, username: &str) {
        let mut st = self.lock();
        st.addrs.remove(&addr_key(ip));
        st.accounts.remove(username);
    }
}

/// Whole seconds to tell a client to wait, rounded up so it never retries too early.
pub fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn setup() -> (Arc<ManualClock>, Limiter) {
        let clock = Arc::new(ManualClock::default());
        (clock.clone(), Limiter::new(clock, Policy::default()))
    }

    #[test]
    fn five_failures_in_ten_minutes_block_the_address_for_ten_minutes() {
        let (clock, l) = setup();
        let a = ip("192.0.2.7");
        for left in [4, 3, 2, 1] {
            assert_eq!(l.record_failure(a, "admin"), Failure::AttemptsLeft(left));
            clock.advance(Duration::from_secs(60));
        }
        assert_eq!(
            l.record_failure(a, "admin"),
            Failure::Locked(Duration::from_secs(600))
        );
        assert_eq!(l.check_addr(a), Err(Duration::from_secs(600)));
        clock.advance(Duration::from_secs(599));
        assert_eq!(l.check_addr(a), Err(Duration::from_secs(1)));
        assert!(
            l.check_addr(ip("192.0.2.8")).is_ok(),
            "other addresses unaffected"
        );
        clock.advance(Duration::from_secs(1));
        assert!(l.check_addr(a).is_ok(), "block lifted after 10 min");
        assert_eq!(
            l.record_failure(a, "admin"),
            Failure::AttemptsLeft(4),
            "fresh count"
        );
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let (clock, l) = setup();
        let a = ip("192.0.2.7");
        for _ in 0..4 {
            l.record_failure(a, "admin");
        }
        clock.advance(Duration::from_secs(600));
        assert_eq!(l.record_failure(a, "admin"), Failure::AttemptsLeft(4));
    }

    #[test]
    fn success_forgives_the_address() {
        let (_c, l) = setup();
        let a = ip("192.0.2.7");
        for _ in 0..4 {
            l.record_failure(a, "admin");
        }
        l.record_success(a, "admin");
        assert_eq!(l.record_failure(a, "admin"), Failure::AttemptsLeft(4));
    }

    #[test]
    fn ipv6_addresses_in_one_64_share_a_counter() {
        let (_c, l) = setup();
        for i in 1..=5u8 {
            l.record_failure(ip(&format!("2001:db8::{i}")), "admin");
        }
        assert!(l.check_addr(ip("2001:db8::ffff")).is_err());
        assert!(l.check_addr(ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn account_slows_down_after_20_failures_capped_at_30s_never_locked() {
        let (clock, l) = setup();
        for i in 0..20u32 {
            // Spread over many addresses, as a distributed attack would be.
            l.record_failure(ip(&format!("10.0.{}.{}", i / 200, i % 200 + 1)), "admin");
        }
        assert_eq!(l.account_delay("admin"), Duration::ZERO);
        l.record_failure(ip("10.1.0.1"), "admin");
        assert_eq!(l.account_delay("admin"), Duration::from_secs(1));
        l.record_failure(ip("10.1.0.2"), "admin");
        assert_eq!(l.account_delay("admin"), Duration::from_secs(2));
        for i in 0..100u32 {
            l.record_failure(ip(&format!("10.2.{}.{}", i / 200, i % 200 + 1)), "admin");
        }
        assert_eq!(l.account_delay("admin"), Duration::from_secs(30), "capped");
        clock.advance(Duration::from_secs(3600));
        assert_eq!(l.account_delay("other"), Duration::ZERO);
        // The real admin from a clean address still gets in and resets the streak.
        assert!(l.check_addr(ip("192.0.2.1")).is_ok());
        l.record_success(ip("192.0.2.1"), "admin");
        assert_eq!(l.account_delay("admin"), Duration::ZERO);
    }

    #[test]
    fn retry_seconds_round_up() {
        assert_eq!(retry_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_secs(Duration::from_secs(600)), 600);
    }
}
