//! Request handlers, one file per flow. Each flow is a plain function returning
//! `Result<T, Error>`; the `*_handler` wrappers only decode, call and encode.
//! Shared here: finding the caller's session and checking the CSRF header.

pub mod login;
pub mod pages;

use hyper::header::HeaderMap;

use crate::app::App;
use crate::auth::sessions::Session;
use crate::error::Error;
use crate::http;

/// Requests from background polling send this header so they do not keep an
/// unattended session alive (spec §5).
pub const POLL_HEADER: &str = "x-pbx-poll";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A caller with a live session.
pub struct Authed {
    pub id: String,
    pub session: Session,
}

pub fn authed(app: &App, headers: &HeaderMap) -> Result<Authed, Error> {
    let id = http::session_cookie(headers).ok_or(Error::Unauthenticated)?;
    let touch = !headers.contains_key(POLL_HEADER);
    let session = app.sessions.get(&id, touch).ok_or(Error::Unauthenticated)?;
    Ok(Authed { id, session })
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
