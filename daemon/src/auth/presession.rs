//! Sign-ins halfway: the password was right, the second factor is still owed. A
//! pre-session cookie names one for five minutes; it grants nothing but the right to
//! send a code for that account. RAM only, keyed by the SHA-256 of the cookie value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::model::Role;

/// How long a pre-session waits for its code.
pub const TTL: Duration = Duration::from_secs(300);
/// Most pre-sessions at once; the oldest goes beyond this.
const MAX: usize = 256;
/// Most pre-sessions of one account: whoever has its password cannot flush the table
/// (and with it everybody else's halfway sign-ins); its own oldest goes instead.
const PER_ACCOUNT: usize = 4;
/// Wrong codes one pre-session may take before it is dropped (the address lockout
/// counts them too).
const MAX_FAILURES: u32 = 5;
pub const COOKIE: &str = "pbx_2fa";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub username: String,
    pub role: Role,
    pub must_change_password: bool,
    /// The browser's User-Agent, for the session it becomes.
    pub agent: String,
    /// The browser's known device cookie, if it carried one (it keeps it).
    pub device: Option<super::lockout::DeviceId>,
    /// The directory's Access-Challenge this pre-session answers (its code goes to the
    /// RADIUS server, not to the box's TOTP).
    pub challenge: Option<Challenge>,
    started: Duration,
    failures: u32,
}

/// An Access-Challenge (RFC 2865 §4.4) waiting for the user's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The State attribute, sent back with the answer.
    pub state: Vec<u8>,
    /// Which server asked (the answer goes to it).
    pub server: usize,
    /// Its Reply-Message, shown to the user.
    pub message: Option<String>,
}

pub struct PreSessions {
    map: Mutex<HashMap<[u8; 32], Pending>>,
    clock: Arc<dyn Clock>,
}

impl PreSessions {
    pub fn new(clock: Arc<dyn Clock>) -> PreSessions {
        PreSessions {
            map: Mutex::new(HashMap::new()),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Pending>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new pre-session; returns its cookie value.
    pub fn create(
        &self,
        username: &str,
        role: Role,
        must_change_password: bool,
        agent: &str,
        device: Option<super::lockout::DeviceId>,
    ) -> String {
        let now = self.clock.mono();
        let token = super::random_token();
        let mut map = self.lock();
        map.retain(|_, p| now.saturating_sub(p.started) < TTL);
        let own: Vec<([u8; 32], Duration)> = map
            .iter()
            .filter(|(_, p)| p.username == username)
            .map(|(k, p)| (*k, p.started))
            .collect();
        if own.len() >= PER_ACCOUNT {
            if let Some((k, _)) = own.iter().min_by_key(|(_, t)| *t) {
                map.remove(k);
            }
        }
        if map.len() >= MAX {
            if let Some(k) = map.iter().min_by_key(|(_, p)| p.started).map(|(k, _)| *k) {
                map.remove(&k);
            }
        }
        map.insert(
            super::token_digest(&token),
            Pending {
                username: username.into(),
                role,
                must_change_password,
                agent: agent.chars().take(160).collect(),
                device,
                challenge: None,
                started: now,
                failures: 0,
            },
        );
        token
    }

    /// A pre-session that answers the directory's `challenge` for `username`.
    pub fn create_challenge(&self, username: &str, agent: &str, challenge: Challenge) -> String {
        let token = self.create(username, Role::User, false, agent, None);
        if let Some(p) = self.lock().get_mut(&super::token_digest(&token)) {
            p.challenge = Some(challenge);
        }
        token
    }

    /// The live pre-session of a cookie value.
    pub fn get(&self, token: &str) -> Option<Pending> {
        let now = self.clock.mono();
        self.lock()
            .get(&super::token_digest(token))
            .filter(|p| now.saturating_sub(p.started) < TTL)
            .cloned()
    }

    /// Used up by a right code.
    pub fn take(&self, token: &str) -> Option<Pending> {
        self.lock().remove(&super::token_digest(token))
    }

    /// A wrong code: counted, and the pre-session dropped after [`MAX_FAILURES`].
    pub fn failed(&self, token: &str) {
        let key = super::token_digest(token);
        let mut map = self.lock();
        if let Some(p) = map.get_mut(&key) {
            p.failures += 1;
            if p.failures >= MAX_FAILURES {
                map.remove(&key);
            }
        }
    }

    /// Every pre-session of `username` (its second factor was removed or changed).
    pub fn remove_user(&self, username: &str) {
        self.lock().retain(|_, p| p.username != username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_pre_session_lasts_five_minutes_and_five_wrong_codes() {
        let clock = Arc::new(ManualClock::default());
        let p = PreSessions::new(clock.clone());
        let t = p.create("admin", Role::Admin, false, "", None);
        assert_eq!(p.get(&t).map(|x| x.username), Some("admin".into()));
        assert_eq!(p.get("other"), None);
        clock.advance(TTL);
        assert_eq!(p.get(&t), None, "lapsed");
        let t = p.create("admin", Role::Admin, false, "", None);
        for _ in 0..4 {
            p.failed(&t);
        }
        assert!(p.get(&t).is_some());
        p.failed(&t);
        assert_eq!(p.get(&t), None, "dropped after five wrong codes");
        let t = p.create("admin", Role::Admin, false, "", None);
        assert!(p.take(&t).is_some());
        assert!(p.take(&t).is_none(), "once");
    }

    /// Issue 24 (low; failed on the old code: 300 pre-sessions of one account flushed
    /// the other account's): one account keeps at most four.
    #[test]
    fn one_account_cannot_flush_the_others_pre_sessions() {
        let clock = Arc::new(ManualClock::default());
        let p = PreSessions::new(clock.clone());
        let other = p.create("1001", Role::User, false, "", None);
        let mut own = Vec::new();
        for _ in 0..300 {
            clock.advance(Duration::from_millis(1));
            own.push(p.create("admin", Role::Admin, false, "", None));
        }
        assert!(
            p.get(&other).is_some(),
            "another account's pre-session stays"
        );
        let live = own.iter().filter(|t| p.get(t).is_some()).count();
        assert_eq!(live, PER_ACCOUNT);
        assert!(
            p.get(own.last().expect("one")).is_some(),
            "the newest stays"
        );
    }
}
