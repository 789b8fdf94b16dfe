//! Who is asking: the caller's session from its cookie, the CSRF header of
//! state-changing requests, the forced password change, the admin role. Each route of
//! the table ([`super::routes`]) names one [`Guard`]; the router applies it with
//! [`check`] before the handler runs, so no handler picks its own.

use hyper::header::HeaderMap;

use super::http::{self, Ctx};
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
    /// The owner's settings (accounts, installers, SMTP, access, the button, the
    /// factory reset): [`Guard::Admin`], not an installer's session.
    Owner,
}

/// Applies `guard` to a request: the caller it lets in (`None` for anyone). A session
/// used from outside the trusted networks of its role is refused (`not_trusted_network`;
/// for [`Guard::Optional`]: treated as none).
pub fn check(
    app: &App,
    guard: Guard,
    headers: &HeaderMap,
    ctx: &Ctx,
) -> Result<Option<Authed>, Error> {
    let h = (headers, ctx);
    match guard {
        Guard::Public => Ok(None),
        Guard::Optional => Ok(authed(app, h).ok()),
        Guard::Session => authed(app, h).map(Some),
        Guard::Csrf => authed_csrf(app, h).map(Some),
        Guard::Enrolling => authed_enrolling(app, h).map(Some),
        Guard::Full => authed_full(app, h).map(Some),
        Guard::AdminRead => admin_read(app, h).map(Some),
        Guard::Admin => admin(app, h).map(Some),
        Guard::Owner => owner(app, h).map(Some),
    }
}

/// A request's headers and its connection.
type Asked<'a> = (&'a HeaderMap, &'a Ctx);

/// A caller with a live session.
pub struct Authed {
    /// The session's key (digest of the cookie value).
    pub key: SessionKey,
    pub session: Session,
}

/// A live session, used from within the trusted networks of its role.
pub fn authed(app: &App, (headers, ctx): Asked<'_>) -> Result<Authed, Error> {
    let a = session(app, headers, ctx.https)?;
    crate::flows::gate::admit(app, a.session.role, None, ctx.peer.ip())?;
    Ok(a)
}

/// The live session the request's cookie names, wherever the request comes from.
pub fn session(app: &App, headers: &HeaderMap, https: bool) -> Result<Authed, Error> {
    let id = http::session_cookie(headers, https).ok_or(Error::Unauthenticated)?;
    let key = SessionKey::of(id);
    let touch = !headers.contains_key(POLL_HEADER);
    let session = app
        .sessions()
        .get_key(&key, touch)
        .ok_or(Error::Unauthenticated)?;
    Ok(Authed { key, session })
}

/// A state-changing request: live session plus the session's CSRF token in the header.
fn authed_csrf(app: &App, h: Asked<'_>) -> Result<Authed, Error> {
    let headers = h.0;
    let a = authed(app, h)?;
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
fn authed_full(app: &App, h: Asked<'_>) -> Result<Authed, Error> {
    let a = authed_csrf(app, h)?;
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
fn authed_enrolling(app: &App, h: Asked<'_>) -> Result<Authed, Error> {
    let a = authed_csrf(app, h)?;
    if a.session.must_change_password {
        return Err(Error::PasswordChangeRequired);
    }
    Ok(a)
}

/// [`authed_full`] for an administrator.
fn admin(app: &App, h: Asked<'_>) -> Result<Authed, Error> {
    let a = authed_full(app, h)?;
    if a.session.role != crate::model::Role::Admin {
        return Err(Error::Forbidden);
    }
    Ok(a)
}

/// Admin reads (GET): a session without the forced change pending, no CSRF header.
fn admin_read(app: &App, h: Asked<'_>) -> Result<Authed, Error> {
    let a = authed(app, h)?;
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

/// [`admin`], not an installer.
fn owner(app: &App, h: Asked<'_>) -> Result<Authed, Error> {
    let a = admin(app, h)?;
    if a.session.installer {
        return Err(Error::Forbidden);
    }
    Ok(a)
}
