//! Who is asking: the caller's session from its cookie, the CSRF header of
//! state-changing requests, the forced password change, the admin role. Each route of
//! the table ([`super::routes`]) names one [`Guard`]; the router applies it with
//! [`check`] before the handler runs, so no handler picks its own.

use hyper::header::HeaderMap;

use super::http;
use crate::app::App;
use crate::auth::sessions::{Session, SessionKey};
use crate::error::Error;

/// Requests from background polling send this header so they do not keep an
/// unattended session alive (spec §5).
pub const POLL_HEADER: &str = "x-pbx-poll";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What an API route needs from its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Anyone: sign-in, Forgot Password, the reset link, code recovery.
    Public,
    /// Anyone; a session, if the request has one, is passed on (it may see more).
    Optional,
    /// A live session (reads: no CSRF header, a forced change may be pending).
    Session,
    /// A live session and its CSRF header (sign-out, the password change itself).
    Csrf,
    /// [`Guard::Csrf`], the label password replaced (setting up a required second
    /// factor is what the session is for).
    Enrolling,
    /// [`Guard::Csrf`] with no forced change pending.
    Full,
    /// An administrator's read: session, admin role, no forced change pending.
    AdminRead,
    /// An administrator's change: [`Guard::Full`] and the admin role.
    Admin,
}

/// Applies `guard` to a request's headers: the caller it lets in (`None` for anyone).
pub fn check(app: &App, guard: Guard, headers: &HeaderMap) -> Result<Option<Authed>, Error> {
    match guard {
        Guard::Public => Ok(None),
        Guard::Optional => Ok(authed(app, headers).ok()),
        Guard::Session => authed(app, headers).map(Some),
        Guard::Csrf => authed_csrf(app, headers).map(Some),
        Guard::Enrolling => authed_enrolling(app, headers).map(Some),
        Guard::Full => authed_full(app, headers).map(Some),
        Guard::AdminRead => admin_read(app, headers).map(Some),
        Guard::Admin => admin(app, headers).map(Some),
    }
}

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
fn authed_csrf(app: &App, headers: &HeaderMap) -> Result<Authed, Error> {
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
fn authed_full(app: &App, headers: &HeaderMap) -> Result<Authed, Error> {
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
fn authed_enrolling(app: &App, headers: &HeaderMap) -> Result<Authed, Error> {
    let a = authed_csrf(app, headers)?;
    if a.session.must_change_password {
        return Err(Error::PasswordChangeRequired);
    }
    Ok(a)
}

/// [`authed_full`] for an administrator.
fn admin(app: &App, headers: &HeaderMap) -> Result<Authed, Error> {
    let a = authed_full(app, headers)?;
    if a.session.role != crate::model::Role::Admin {
        return Err(Error::Forbidden);
    }
    Ok(a)
}

/// Admin reads (GET): a session without the forced change pending, no CSRF header.
fn admin_read(app: &App, headers: &HeaderMap) -> Result<Authed, Error> {
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
