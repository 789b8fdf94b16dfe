//! Failed sign-ins for the audit trail, aggregated in RAM: the first failure of an
//! address in a window is recorded at once, the rest of that window are counted and
//! written as one summary when the window ends. At most [`BUDGET`] events per window
//! are written for failed sign-ins; beyond that, failures are only counted and one
//! `audit_overflow` event says how many went unlisted. A flood from many addresses so
//! neither wears the flash nor rolls the 1000-event ring over.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Audit events for failed sign-ins per window (firsts and summaries).
pub const BUDGET: u32 = 50;
/// Usernames a summary names (the first distinct ones).
const NAMES: usize = 3;
/// Addresses aggregated at once; beyond this a failure is only counted.
const MAX_OPEN: usize = 1024;

struct Agg {
    since: Duration,
    more: u32,
    users: Vec<String>,
    /// False when the budget was spent at its first failure: nothing was written, and
    /// the whole count goes to the overflow (one address, however many failures).
    listed: bool,
}

#[derive(Default)]
struct State {
    budget_since: Duration,
    written: u32,
    open: HashMap<IpAddr, Agg>,
    unlisted: u64,
    unlisted_addrs: u64,
}

pub struct FailureLog {
    state: Mutex<State>,
    window: Duration,
}

/// What to do with one failed sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Write it now (the first of its address in this window).
    Write,
    /// Counted: it goes into a summary (or the overflow count).
    Counted,
}

/// A summary due for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// `more` failures from `ip` after the first one, naming up to three usernames.
    Summary {
        ip: IpAddr,
        more: u32,
        users: Vec<String>,
    },
    /// `failures` from `addresses` addresses not recorded one by one (budget spent).
    Overflow { failures: u64, addresses: u64 },
}

impl FailureLog {
    pub fn new(window: Duration) -> FailureLog {
        FailureLog {
            state: Mutex::new(State::default()),
            window,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a failed sign-in of `user` (as shown) from `ip` (its limiter key) at `now`.
    pub fn record(&self, ip: IpAddr, user: &str, now: Duration) -> Record {
        let mut st = self.lock();
        if let Some(a) = st.open.get_mut(&ip) {
            a.more = a.more.saturating_add(1);
            if a.users.len() < NAMES && !a.users.iter().any(|u| u == user) {
                a.users.push(user.to_string());
            }
            return Record::Counted;
        }
        if now.saturating_sub(st.budget_since) >= self.window {
            // (A budget window that ended without [`Self::due`] being asked.)
            st.budget_since = now;
            st.written = 0;
        }
        if st.open.len() >= MAX_OPEN {
            st.unlisted = st.unlisted.saturating_add(1);
            st.unlisted_addrs = st.unlisted_addrs.saturating_add(1);
            return Record::Counted;
        }
        let listed = st.written < BUDGET;
        if listed {
            st.written += 1;
        }
        st.open.insert(
            ip,
            Agg {
                since: now,
                more: 0,
                users: vec![user.to_string()],
                listed,
            },
        );
        if listed {
            Record::Write
        } else {
            Record::Counted
        }
    }

    /// The summaries whose window ended by `now`, and the overflow of a budget window
    /// that ended; each summary takes a place in the budget (else it is counted as
    /// unlisted too).
    pub fn due(&self, now: Duration) -> Vec<Due> {
        let mut st = self.lock();
        let window = self.window;
        let ended: Vec<IpAddr> = st
            .open
            .iter()
            .filter(|(_, a)| now.saturating_sub(a.since) >= window)
            .map(|(ip, _)| *ip)
            .collect();
        let mut out = Vec::new();
        for ip in ended {
            let Some(a) = st.open.remove(&ip) else {
                continue;
            };
            if !a.listed {
                st.unlisted = st.unlisted.saturating_add(1 + u64::from(a.more));
                st.unlisted_addrs = st.unlisted_addrs.saturating_add(1);
                continue;
            }
            if a.more == 0 {
                continue;
            }
            if st.written < BUDGET {
                st.written += 1;
                out.push(Due::Summary {
                    ip,
                    more: a.more,
                    users: a.users,
                });
            } else {
                st.unlisted = st.unlisted.saturating_add(u64::from(a.more));
                st.unlisted_addrs = st.unlisted_addrs.saturating_add(1);
            }
        }
        if now.saturating_sub(st.budget_since) >= window {
            if st.unlisted > 0 {
                out.push(Due::Overflow {
                    failures: st.unlisted,
                    addresses: st.unlisted_addrs,
                });
            }
            st.budget_since = now;
            st.written = 0;
            st.unlisted = 0;
            st.unlisted_addrs = 0;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn one_event_per_address_and_window_with_a_count() {
        let log = FailureLog::new(Duration::from_secs(600));
        let s = Duration::from_secs;
        assert_eq!(log.record(ip("192.0.2.1"), "admin", s(1)), Record::Write);
        for n in 0..4 {
            let user = if n % 2 == 0 { "admin" } else { "root" };
            assert_eq!(log.record(ip("192.0.2.1"), user, s(2 + n)), Record::Counted);
        }
        assert_eq!(log.record(ip("192.0.2.2"), "1001", s(3)), Record::Write);
        assert!(log.due(s(300)).is_empty(), "the window is still open");
        assert_eq!(
            log.due(s(601)),
            vec![Due::Summary {
                ip: ip("192.0.2.1"),
                more: 4,
                users: vec!["admin".into(), "root".into()],
            }],
            "192.0.2.2 had one failure: nothing more to say"
        );
        assert_eq!(
            log.record(ip("192.0.2.1"), "admin", s(700)),
            Record::Write,
            "a new window"
        );
    }

    #[test]
    fn a_flood_from_many_addresses_writes_the_budget_and_one_overflow() {
        let log = FailureLog::new(Duration::from_secs(600));
        let s = Duration::from_secs;
        let mut written = 0;
        for n in 0..5000u32 {
            let a = IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
            if log.record(a, "admin", s(1)) == Record::Write {
                written += 1;
            }
        }
        assert_eq!(written, BUDGET);
        assert_eq!(
            log.due(s(601)),
            vec![Due::Overflow {
                failures: 5000 - u64::from(BUDGET),
                addresses: 5000 - u64::from(BUDGET),
            }]
        );
        assert!(log.due(s(1300)).is_empty(), "said once");
    }

    /// An address that keeps failing after the budget is spent is one address in the
    /// overflow, with all its failures (it was counted once per failure before).
    #[test]
    fn the_overflow_counts_addresses_once() {
        let log = FailureLog::new(Duration::from_secs(600));
        let s = Duration::from_secs;
        for n in 0..BUDGET {
            let a = IpAddr::from([10, 0, 0, n as u8]);
            assert_eq!(log.record(a, "admin", s(1)), Record::Write);
        }
        for _ in 0..3 {
            assert_eq!(log.record(ip("192.0.2.9"), "admin", s(2)), Record::Counted);
        }
        assert_eq!(
            log.due(s(602)),
            vec![Due::Overflow {
                failures: 3,
                addresses: 1,
            }]
        );
    }
}
