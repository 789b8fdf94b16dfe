//! Sessions in RAM (spec §3: no flash wear per login; a restart signs everyone out).
//! The map is keyed by the SHA-256 of the session id, so the cookie value itself is not
//! kept and lookups do not compare secrets byte by byte.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// An installer's session: the owner's settings are out of its reach.
    pub installer: bool,
    pub csrf_token: Arc<str>,
    /// Where and with what it signed in, for the Sessions page.
    pub origin: Arc<Origin>,
    created: Duration,
    last_active: Duration,
}

/// Where a session signed in from: the peer address and the browser's User-Agent (cut
/// to 160 characters), and when (Unix seconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: Option<std::net::IpAddr>,
    pub agent: String,
    pub started_at: u64,
    /// A directory user's: the server that admitted it (empty: a local account).
    pub via: String,
}

/// A session as the Sessions page lists it; `id` names it for revoking (a prefix of the
/// digest of its cookie: it does not reveal the cookie).
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub id: String,
    pub username: String,
    pub ip: Option<std::net::IpAddr>,
    pub browser: String,
    pub started_at: u64,
    pub last_seen_at: u64,
    pub current: bool,
    /// A directory user's session: the server that admitted it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub via: String,
}

impl Session {
    /// When it was created (monotonic): a change on probation is confirmed only by a
    /// session created after it.
    pub fn created(&self) -> std::time::Duration {
        self.created
    }
}

impl SessionKey {
    /// The id the Sessions page shows: the first 8 bytes of the digest, hex.
    pub fn id(&self) -> String {
        self.0[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A short name for a User-Agent: the browser, not the whole string.
pub fn browser_name(agent: &str) -> String {
    const KNOWN: [(&str, &str); 8] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("python", "Python"),
    ];
    let name = KNOWN
        .iter()
        .find(|(needle, _)| agent.contains(needle))
        .map(|(_, n)| (*n).to_string())
        .unwrap_or_else(|| {
            agent
                .split([' ', '/'])
                .next()
                .unwrap_or_default()
                .to_string()
        });
    let os = ["Windows", "Android", "iPhone", "Mac OS X", "Linux"]
        .into_iter()
        .find(|o| agent.contains(o));
    match (name.is_empty(), os) {
        (true, _) => "unknown".into(),
        (false, Some(o)) => format!("{name} on {}", o.replace("Mac OS X", "macOS")),
        (false, None) => name,
    }
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

/// What a completed sign-in grants a session: whose, with what role, and what it must
/// do first.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    pub username: &'a str,
    pub role: Role,
    pub must_change_password: bool,
    /// `policy.require_2fa_for_admin` and no second factor yet.
    pub must_enroll_2fa: bool,
    /// An installer's account.
    pub installer: bool,
}

impl<'a> Grant<'a> {
    /// Nothing pending.
    pub fn of(username: &'a str, role: Role) -> Grant<'a> {
        Grant {
            username,
            role,
            must_change_password: false,
            must_enroll_2fa: false,
            installer: false,
        }
    }

    /// The initial or a temporary password still to be replaced.
    pub fn changing_password(self, must: bool) -> Grant<'a> {
        Grant {
            must_change_password: must,
            ..self
        }
    }
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

    /// A new session for what a sign-in granted, opened from `origin`.
    pub fn create(&self, grant: Grant<'_>, mut origin: Origin) -> NewSession {
        let Grant {
            username,
            role,
            must_change_password,
            must_enroll_2fa,
            installer,
        } = grant;
        let now = self.clock.mono();
        origin.started_at = self.clock.unix();
        if origin.agent.len() > 160 {
            let cut = (0..=160)
                .rev()
                .find(|&i| origin.agent.is_char_boundary(i))
                .unwrap_or(0);
            origin.agent.truncate(cut);
        }
        let id = super::random_token();
        let csrf_token = super::random_token();
        let session = Session {
            username: username.into(),
            role,
            must_change_password,
            must_enroll_2fa,
            installer,
            csrf_token: csrf_token.into(),
            origin: Arc::new(origin),
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

    /// The live sessions of `username` (every account's for `None`), newest first;
    /// `current` marks the caller's.
    pub fn list(&self, username: Option<&str>, current: &SessionKey) -> Vec<Listed> {
        let (now, unix) = (self.clock.mono(), self.clock.unix());
        let inner = self.lock();
        let mut out: Vec<Listed> = inner
            .map
            .iter()
            .filter(|(_, s)| inner.live(s, now))
            .filter(|(_, s)| username.is_none_or(|u| &*s.username == u))
            .map(|(k, s)| Listed {
                id: k.id(),
                username: s.username.to_string(),
                ip: s.origin.ip,
                browser: browser_name(&s.origin.agent),
                started_at: s.origin.started_at,
                via: s.origin.via.clone(),
                last_seen_at: unix.saturating_sub(now.saturating_sub(s.last_active).as_secs()),
                current: k == current,
            })
            .collect();
        out.sort_by_key(|l| std::cmp::Reverse(l.started_at));
        out
    }

    /// Ends the session listed as `id` if it belongs to `username` (any account's for
    /// `None`); returns whether one ended.
    pub fn remove_id(&self, id: &str, username: Option<&str>) -> bool {
        let mut inner = self.lock();
        let key = inner
            .map
            .iter()
            .find(|(k, s)| {
                crate::auth::ct_eq(k.id().as_bytes(), id.as_bytes())
                    && username.is_none_or(|u| &*s.username == u)
            })
            .map(|(k, _)| *k);
        key.is_some_and(|k| inner.map.remove(&k).is_some())
    }

    /// Ends every session of `username` but `keep`; returns how many.
    pub fn remove_others(&self, username: &str, keep: &SessionKey) -> usize {
        let map = &mut self.lock().map;
        let before = map.len();
        map.retain(|k, s| &*s.username != username || k == keep);
        before - map.len()
    }

    pub fn count(&self) -> usize {
        self.lock().map.len()
    }
}

#[cfg(test)]
mod tests;
