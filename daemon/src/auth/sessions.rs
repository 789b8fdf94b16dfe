//! Sessions in RAM (spec §3: no flash wear per login; a restart signs everyone out).
//! The map is keyed by the SHA-256 of the session id, so the cookie value itself is not
//! kept and lookups do not compare secrets byte by byte.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Bytes;
use serde::Serialize;

use crate::clock::Clock;
use crate::model::Role;

/// Most sessions kept at once; the oldest is dropped beyond this.
const MAX_SESSIONS: usize = 1024;
/// Most sessions of one account; its oldest is dropped beyond this.
const MAX_PER_ACCOUNT: usize = 16;

/// What a request carries away from a session lookup: shared strings, so a lookup
/// copies no text.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub username: Arc<str>,
    pub role: Role,
    pub must_change_password: bool,
    /// `policy.require_2fa_for_admin` and no second factor yet: only enrollment is open.
    pub must_enroll_2fa: bool,
    pub csrf_token: Arc<str>,
    /// The session as the API shows it (login answer, `GET /api/v1/session`), encoded
    /// once: none of it changes while the session lives.
    pub view: Bytes,
    created: Duration,
    last_active: Duration,
}

pub struct Sessions {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("must_change_password", &self.must_change_password)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct View<'a> {
    username: &'a str,
    role: &'static str,
    must_change_password: bool,
    #[serde(
        rename = "two_factor_enrollment_required",
        skip_serializing_if = "is_false"
    )]
    must_enroll_2fa: bool,
    csrf_token: &'a str,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A session's key in the map: the SHA-256 of its cookie value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    pub fn of(id: &str) -> SessionKey {
        SessionKey(super::token_digest(id))
    }
}

struct Inner {
    map: HashMap<SessionKey, Session>,
    idle: Duration,
    absolute: Duration,
}

impl Inner {
    fn live(&self, s: &Session, now: Duration) -> bool {
        live(s, now, self.idle, self.absolute)
    }
}

fn live(s: &Session, now: Duration, idle: Duration, absolute: Duration) -> bool {
    now.saturating_sub(s.last_active) < idle && now.saturating_sub(s.created) < absolute
}

/// A new session's cookie value (shown once) and its state.
pub struct NewSession {
    pub id: String,
    pub session: Session,
}

impl Sessions {
    pub fn new(clock: Arc<dyn Clock>, idle: Duration, absolute: Duration) -> Sessions {
        Sessions {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                idle,
                absolute,
            }),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a consistent map (every mutation is a
        // single insert/remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// New expiry limits (config reload); they apply to existing sessions too.
    pub fn set_limits(&self, idle: Duration, absolute: Duration) {
        let mut inner = self.lock();
        inner.idle = idle;
        inner.absolute = absolute;
    }

    pub fn create(&self, username: &str, role: Role, must_change_password: bool) -> NewSession {
        self.create_with(username, role, must_change_password, false)
    }

    /// [`Sessions::create`], for an account that must first enroll a second factor.
    pub fn create_with(
        &self,
        username: &str,
        role: Role,
        must_change_password: bool,
        must_enroll_2fa: bool,
    ) -> NewSession {
        let now = self.clock.mono();
        let id = super::random_token();
        let csrf_token = super::random_token();
        let view = serde_json::to_vec(&View {
            username,
            role: role.as_str(),
            must_change_password,
            must_enroll_2fa,
            csrf_token: &csrf_token,
        })
        .unwrap_or_default();
        let session = Session {
            username: username.into(),
            role,
            must_change_password,
            must_enroll_2fa,
            csrf_token: csrf_token.into(),
            view: view.into(),
            created: now,
            last_active: now,
        };
        let mut inner = self.lock();
        let Inner {
            map,
            idle,
            absolute,
        } = &mut *inner;
        map.retain(|_, s| live(s, now, *idle, *absolute));
        let mut mine: Vec<(SessionKey, Duration)> = map
            .iter()
            .filter(|(_, s)| &*s.username == username)
            .map(|(k, s)| (*k, s.created))
            .collect();
        if mine.len() >= MAX_PER_ACCOUNT {
            mine.sort_by_key(|(_, c)| *c);
            map.remove(&mine[0].0);
        }
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_active)
                .map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        map.insert(SessionKey::of(&id), session.clone());
        NewSession { id, session }
    }

    /// [`Sessions::get_key`] by the cookie value itself.
    #[cfg(test)]
    pub fn get(&self, id: &str, touch: bool) -> Option<Session> {
        self.get_key(&SessionKey::of(id), touch)
    }

    /// The live session for the digest of a cookie value. `touch` = false for
    /// background polling, which must not keep an unattended session alive.
    pub fn get_key(&self, key: &SessionKey, touch: bool) -> Option<Session> {
        let key = *key;
        let now = self.clock.mono();
        let mut inner = self.lock();
        let live = inner.map.get(&key).map(|s| inner.live(s, now))?;
        if !live {
            inner.map.remove(&key);
            return None;
        }
        let s = inner.map.get_mut(&key)?;
        if touch {
            s.last_active = now;
        }
        Some(s.clone())
    }

    pub fn remove_key(&self, key: &SessionKey) -> bool {
        self.lock().map.remove(key).is_some()
    }

    /// Ends every session of an account; returns how many there were.
    pub fn remove_user(&self, username: &str) -> usize {
        let map = &mut self.lock().map;
        let before = map.len();
        map.retain(|_, s| &*s.username != username);
        before - map.len()
    }

    pub fn count(&self) -> usize {
        self.lock().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn setup() -> (Arc<ManualClock>, Sessions) {
        let clock = Arc::new(ManualClock::default());
        let s = Sessions::new(
            clock.clone(),
            Duration::from_secs(30 * 60),
            Duration::from_secs(12 * 3600),
        );
        (clock, s)
    }

    #[test]
    fn the_api_view_is_the_sessions_own_and_debug_hides_the_token() {
        let (_clock, s) = setup();
        let n = s.create("1001", Role::User, true);
        let v: serde_json::Value = serde_json::from_slice(&n.session.view).expect("json");
        assert_eq!(
            v,
            serde_json::json!({
                "username": "1001",
                "role": "user",
                "must_change_password": true,
                "csrf_token": &*n.session.csrf_token,
            })
        );
        assert_eq!(
            s.get_key(&SessionKey::of(&n.id), true).map(|g| g.view),
            Some(n.session.view.clone())
        );
        let debug = format!("{:?}", n.session);
        assert!(!debug.contains(&*n.session.csrf_token), "{debug}");
    }

    #[test]
    fn idle_expiry_after_30_minutes_without_activity() {
        let (clock, s) = setup();
        let n = s.create("admin", Role::Admin, false);
        clock.advance(Duration::from_secs(29 * 60));
        assert!(s.get(&n.id, true).is_some(), "29 min idle: still valid");
        clock.advance(Duration::from_secs(29 * 60));
        assert!(
            s.get(&n.id, true).is_some(),
            "activity reset the idle timer"
        );
        clock.advance(Duration::from_secs(30 * 60));
        assert!(s.get(&n.id, true).is_none(), "30 min idle: expired");
    }

    #[test]
    fn background_polling_does_not_refresh_idle_time() {
        let (clock, s) = setup();
        let n = s.create("admin", Role::Admin, false);
        for _ in 0..5 {
            clock.advance(Duration::from_secs(5 * 60));
            assert!(s.get(&n.id, false).is_some());
        }
        clock.advance(Duration::from_secs(5 * 60));
        assert!(
            s.get(&n.id, false).is_none(),
            "30 min of polling only: expired"
        );
    }

    #[test]
    fn absolute_expiry_after_12_hours_despite_activity() {
        let (clock, s) = setup();
        let n = s.create("admin", Role::Admin, false);
        for _ in 0..(12 * 4 - 1) {
            clock.advance(Duration::from_secs(15 * 60));
            assert!(s.get(&n.id, true).is_some());
        }
        clock.advance(Duration::from_secs(15 * 60));
        assert!(s.get(&n.id, true).is_none());
    }

    #[test]
    fn remove_user_ends_only_that_accounts_sessions() {
        let (_c, s) = setup();
        let a1 = s.create("admin", Role::Admin, false);
        let a2 = s.create("admin", Role::Admin, false);
        let u = s.create("1001", Role::User, false);
        assert_eq!(s.remove_user("admin"), 2);
        assert!(s.get(&a1.id, true).is_none());
        assert!(s.get(&a2.id, true).is_none());
        assert!(s.get(&u.id, true).is_some());
    }

    #[test]
    fn per_account_cap_drops_the_oldest() {
        let (clock, s) = setup();
        let first = s.create("admin", Role::Admin, false);
        for _ in 0..MAX_PER_ACCOUNT {
            clock.advance(Duration::from_secs(1));
            s.create("admin", Role::Admin, false);
        }
        assert!(s.get(&first.id, true).is_none());
        assert_eq!(s.count(), MAX_PER_ACCOUNT);
    }
}
