//! Trusted networks (spec §10): where each role may sign in from. A list of entries,
//! each a CIDR subnet, a single address, or `local` (loopback and the box's own LAN
//! segment, one switch on the page); an empty list means anywhere. Pure: the caller
//! says whether a peer is on the local segment, so every case is tested without a
//! network.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use pbx_board::Subnet;

/// The entry that stands for loopback and the box's own LAN segment.
pub const LOCAL: &str = "local";

/// Most entries in one list (a page of networks, not a firewall).
pub const MAX_ENTRIES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// Loopback and the box's own LAN segment (never the cloud switch's "everyone").
    Local,
    Subnet(Subnet),
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Net::Local => f.write_str(LOCAL),
            Net::Subnet(s) => write!(f, "{s}"),
        }
    }
}

/// One role's trusted networks; empty: anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetList(Vec<Net>);

impl NetList {
    /// Parses the entries as people write them (`192.168.1.0/24`, `10.0.0.5`, `fd00::/64`,
    /// `local`); the first bad one is named. A /0 is refused: it would be "anywhere"
    /// spelt so that it looks like a restriction.
    pub fn parse(entries: &[String]) -> Result<NetList, String> {
        if entries.len() > MAX_ENTRIES {
            return Err(format!("at most {MAX_ENTRIES} entries"));
        }
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let e = e.trim();
            let net = if e.eq_ignore_ascii_case(LOCAL) {
                Net::Local
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                let full = if ip.is_ipv4() { 32 } else { 128 };
                Net::Subnet(Subnet::new(ip, full).map_err(|err| format!("{e:?}: {err}"))?)
            } else {
                let s: Subnet = e.parse().map_err(|err| format!("{e:?}: {err}"))?;
                if s.prefix() == 0 {
                    return Err(format!(
                        "{e:?} is every address: leave the list empty to allow anywhere"
                    ));
                }
                Net::Subnet(s)
            };
            if !out.contains(&net) {
                out.push(net);
            }
        }
        Ok(NetList(out))
    }

    /// Anywhere.
    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `peer` may sign in; `on_segment` is asked only when a `local` entry
    /// decides it (it reads the interfaces).
    pub fn allows(&self, peer: IpAddr, on_segment: impl FnOnce(IpAddr) -> bool) -> bool {
        if self.0.is_empty() {
            return true;
        }
        if self
            .0
            .iter()
            .any(|n| matches!(n, Net::Subnet(s) if s.contains(peer)))
        {
            return true;
        }
        self.0.contains(&Net::Local) && on_segment(peer)
    }

    /// The entries as stored and shown (`local` first where present).
    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(Net::to_string).collect()
    }

    pub fn has_local(&self) -> bool {
        self.0.contains(&Net::Local)
    }

    /// The subnets only (what the `local` entry does not cover).
    pub fn subnets(&self) -> impl Iterator<Item = &Subnet> {
        self.0.iter().filter_map(|n| match n {
            Net::Subnet(s) => Some(s),
            Net::Local => None,
        })
    }
}

/// The access rules in force: the admin's saved settings, else the config's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub admin: NetList,
    pub user: NetList,
    pub https_only: bool,
    pub require_2fa_for_admin: bool,
}

impl Rules {
    /// The rules of `s`; the first bad entry named with its setting.
    pub fn of(s: &crate::model::AccessSettings) -> Result<Rules, crate::i18n::Msg> {
        let list = |field: &'static str, l: &[String]| {
            NetList::parse(l).map_err(|e| {
                crate::i18n::Msg::new(crate::i18n::k::MSG_ACCESS_BAD_NETWORK)
                    .arg("field", field)
                    .arg("problem", e)
            })
        };
        Ok(Rules {
            admin: list("admin_networks", &s.admin_networks)?,
            user: list("user_networks", &s.user_networks)?,
            https_only: s.https_only,
            require_2fa_for_admin: s.require_2fa_for_admin,
        })
    }
}

/// A change on probation as the running daemon keeps it (monotonic clock: a wall clock
/// set back cannot stretch it, one set forward only ends it sooner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnProbation {
    /// When it was applied: only sessions created after this may confirm it.
    pub began: Duration,
    /// When it reverts.
    pub until: Duration,
}

/// What every request reads: the rules and the probation, swapped whole on a change.
#[derive(Default)]
pub struct Live {
    rules: RwLock<Arc<Rules>>,
    /// `rules.https_only`, read by every plain-HTTP request without a lock.
    https_only: AtomicBool,
    probation: Mutex<Option<OnProbation>>,
    /// Unix seconds of the next installer account's end (`u64::MAX`: none).
    next_installer_end: AtomicU64,
}

impl Live {
    /// At start: the saved record's rules (else `fallback`'s, the config's) and its change
    /// on probation with the time it has left — never more than `max` (a clock set back
    /// while the box was off cannot stretch it); past its deadline, due at once.
    pub fn restore(
        record: Option<crate::model::AccessRecord>,
        fallback: &crate::model::AccessSettings,
        max: Duration,
        now_unix: u64,
        mono: Duration,
    ) -> Live {
        let fallback = || Rules::of(fallback).unwrap_or_default();
        let Some(record) = record else {
            return Live::new(fallback(), None);
        };
        let rules = match Rules::of(&record.settings) {
            Ok(r) => r,
            Err(m) => {
                tracing::error!(
                    "the saved access settings are not valid here ({m}): using the config's"
                );
                return Live::new(fallback(), None);
            }
        };
        let probation = record.probation.map(|p| {
            let left = p.reverts_at.saturating_sub(now_unix).min(max.as_secs());
            tracing::warn!(changes = %p.changes.join(", "), left_s = left, "a change is on probation");
            OnProbation {
                began: mono,
                until: mono + Duration::from_secs(left),
            }
        });
        Live::new(rules, probation)
    }

    pub fn new(rules: Rules, probation: Option<OnProbation>) -> Live {
        Live {
            https_only: AtomicBool::new(rules.https_only),
            rules: RwLock::new(Arc::new(rules)),
            probation: Mutex::new(probation),
            next_installer_end: AtomicU64::new(0),
        }
    }

    pub fn rules(&self) -> Arc<Rules> {
        Arc::clone(&self.rules.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// New rules, and the probation they are on (`None`: in force for good).
    pub fn set(&self, rules: Rules, probation: Option<OnProbation>) {
        self.https_only.store(rules.https_only, Relaxed);
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
        *self.probation.lock().unwrap_or_else(|e| e.into_inner()) = probation;
    }

    /// Whether plain HTTP is sent to HTTPS (but from loopback).
    pub fn https_only(&self) -> bool {
        self.https_only.load(Relaxed)
    }

    pub fn probation(&self) -> Option<OnProbation> {
        *self.probation.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next installer account's end is due at `now` (Unix seconds): the list is
    /// to be read again.
    pub fn installer_due(&self, now: u64) -> bool {
        now >= self.next_installer_end.load(Relaxed)
    }

    pub fn set_next_installer_end(&self, at: Option<u64>) {
        self.next_installer_end
            .store(at.unwrap_or(u64::MAX), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(e: &[&str]) -> NetList {
        NetList::parse(&e.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("parses")
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn an_empty_list_is_anywhere() {
        assert!(list(&[]).allows(ip("203.0.113.9"), |_| false));
        assert!(list(&[]).is_open());
    }

    #[test]
    fn subnets_single_addresses_and_mapped_v4_peers() {
        let l = list(&["192.168.1.0/24", "10.0.0.5", "fd00:1::/64"]);
        assert!(l.allows(ip("192.168.1.200"), |_| false));
        assert!(l.allows(ip("::ffff:192.168.1.7"), |_| false));
        assert!(l.allows(ip("10.0.0.5"), |_| false));
        assert!(!l.allows(ip("10.0.0.6"), |_| false));
        assert!(l.allows(ip("fd00:1::42"), |_| false));
        assert!(
            !l.allows(ip("127.0.0.1"), |_| true),
            "loopback only by `local`"
        );
        assert_eq!(
            l.entries(),
            ["192.168.1.0/24", "10.0.0.5/32", "fd00:1::/64"]
        );
    }

    #[test]
    fn local_asks_the_segment_only_when_it_decides() {
        let l = list(&["LOCAL", "10.1.0.0/16"]);
        assert!(l.has_local());
        assert!(l.allows(ip("10.1.2.3"), |_| panic!("a subnet decided it")));
        assert!(l.allows(ip("127.0.0.1"), |p| p.is_loopback()));
        assert!(!l.allows(ip("203.0.113.1"), |_| false));
        assert_eq!(l.entries(), ["local", "10.1.0.0/16"]);
    }

    #[test]
    fn bad_entries_are_named() {
        let bad = |e: &str| NetList::parse(&[e.to_string()]).expect_err(e);
        assert!(bad("192.168.1.0/33").contains("192.168.1.0/33"));
        assert!(bad("office").contains("office"));
        assert!(bad("0.0.0.0/0").contains("leave the list empty"));
        assert!(NetList::parse(&vec!["10.0.0.1".to_string(); MAX_ENTRIES + 1]).is_err());
    }
}
