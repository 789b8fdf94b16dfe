//! Trusted networks in force (spec §10): where each role may sign in from — the lists
//! ([`NetList`], from the config or the Access page), HTTPS-only, required 2FA — and the
//! change on probation, as every request reads them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub use crate::config::netlist::{Net, NetList, LOCAL, MAX_ENTRIES};

/// The access rules in force: the admin's saved settings, else the config's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub admin: NetList,
    pub user: NetList,
    pub https_only: bool,
    pub require_2fa_for_admin: bool,
    /// `access.sign_in = "directory"`: only directory users, and the local admin from
    /// the PBX's own network or the box itself.
    pub directory_only: bool,
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
            directory_only: s.sign_in == crate::model::sign_in_text(true),
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
