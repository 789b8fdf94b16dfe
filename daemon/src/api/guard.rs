//! Who is asking: the caller's session from its cookie, the CSRF header of
//! state-changing requests, the forced password change, the admin role.

use hyper::header::HeaderMap;

use super::http;
use crate::app::App;
use crate::auth::sessions::{Session, SessionKey};
use crate::error::Error;

/// Requests from background polling send this header so they do not keep an
/// unattended session alive (spec §5).
pub const POLL_HEADER: &str = "x-pbx-poll";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A caller with a live session.
pub struct Authed {
    /// The session's key (digest of the cookie value).
    pub key: SessionKey,
    pub session: Session,
}

pub fn authed(app: &App, headers: &HeaderMap) -> Result<Authed, Error> {
    let id = http::session_cookie(headers).ok_or(Error::Unauthenticated)?;
    let key = SessionKey::of(id);
    let touch = !headers.contains_key(POLL_HEADER);
    let session = app
        .sessions()
        .get_key(&key, touch)
        .ok_or(Error::Unauthenticated)?;
    Ok(Authed { key, session })
}

/// A state-changing request: live session plus the session's CSRF token in the header.
pub fn authed_csrf(app: &App, headers: &HeaderMap) -> Result<Authed, Error> {
    let a = authed(app, headers)?;
    let sent = headers
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .ok_or(Error::Csrf)?;
    if !crate::auth::ct_eq(sent, a.session.csrf_token.as_bytes()) {
        return Err(Error::Csrf);
    }
    Ok(a)
}

/// Like [`authed_csrf`], and the account has replaced its initial password: everything
/// but the password change itself waits for that.
pub fn authed_full(app: &App, headers: &HeaderMap) -> Result<Authed, Error> {
    let a = authed_csrf(app, headers)?;
    if a.session.must_change_password {
        return Err(Error::PasswordChangeRequired);
    }
    if a.session.must_enroll_2fa {
        return Err(Error::TwoFactorEnrollmentRequired);
    }
    Ok(a)
}

/// Setting up a second factor: allowed while its enrollment is required (that is what
/// the session is for), not before the initial password is replaced.
pub fn authed_enrolling(app: &App, headers: &HeaderMap) -> Result<Authed, Error> {
    let a = authed_csrf(app, headers)?;
    if a.session.must_change_password {
        return Err(Error::PasswordChangeRequired);
    }
    Ok(a)
}

/// [`authed_full`] for an administrator.
pub fn admin(app: &App, headers: &HeaderMap) -> Result<Authed, Error> {
    let a = authed_full(app, headers)?;
    if a.session.role != crate::model::Role::Admin {
        return Err(Error::Forbidden);
    }
    Ok(a)
}

/// Admin reads (GET): a session without the forced change pending, no CSRF header.
pub fn admin_read(app: &App, headers: &HeaderMap) -> Result<Authed, Error> {
    let a = authed(app, headers)?;
    if a.session.role != crate::model::Role::Admin {
        return Err(Error::Forbidden);
    }
    if a.session.must_change_password {
        return Err(Error::PasswordChangeRequired);
    }
    if a.session.must_enroll_2fa {
        return Err(Error::TwoFactorEnrollmentRequired);
    }
    Ok(a)
}
