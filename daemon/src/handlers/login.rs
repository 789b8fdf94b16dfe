//! Sign-in flows: login, logout, the session view, and password change (which ends every
//! session of the account). Brute-force limits and the slow-down are applied here.

use std::net::IpAddr;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;

use crate::app::App;
use crate::auth::lockout::Failure;
use crate::auth::sessions::{NewSession, Session};
use crate::auth::Secret;
use crate::error::Error;
use crate::http::{self, Body, Ctx};

/// Longest username accepted (extension numbers and `admin` are far shorter).
const MAX_USERNAME: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: Secret,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    pub current_password: Secret,
    pub new_password: Secret,
}

fn failed(app: &App, ip: IpAddr, username: &str) -> Error {
    match app.limiter.record_failure(ip, username) {
        Failure::AttemptsLeft(n) => {
            app.audit("login_failed", Some(username), Some(ip), None);
            Error::InvalidCredentials {
                attempts_left: Some(n),
            }
        }
        Failure::Locked(d) => {
            tracing::warn!(%ip, "address blocked after repeated failed logins");
            app.audit(
                "login_locked",
                Some(username),
                Some(ip),
                Some("address blocked"),
            );
            Error::Locked { retry_after: d }
        }
    }
}

pub async fn login(app: &App, ip: IpAddr, req: LoginRequest) -> Result<NewSession, Error> {
    let data = app.data()?;
    app.limiter
        .check_addr(ip)
        .map_err(|d| Error::Locked { retry_after: d })?;
    let username = req.username;
    let delay = app.limiter.account_delay(&username);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let account = if username.len() <= MAX_USERNAME {
        data.account(&username)?
    } else {
        None
    };
    let ok = app
        .hasher
        .verify(
            req.password,
            account.as_ref().map(|a| a.password_hash.clone()),
        )
        .await
        .map_err(|_| Error::Busy)?;
    let account = match account {
        Some(a) if ok => a,
        _ => {
            tracing::info!(%ip, "login failed");
            return Err(failed(app, ip, &username));
        }
    };
    app.limiter.record_success(ip, &username);
    tracing::info!(%ip, user = %account.username, "login");
    app.audit("login", Some(&account.username), Some(ip), None);
    Ok(app.sessions.create(
        &account.username,
        account.role,
        account.must_change_password,
    ))
}

/// Changes the caller's password; returns how many sessions of the account ended.
pub async fn change_password(
    app: &App,
    ip: IpAddr,
    session: &Session,
    req: PasswordRequest,
) -> Result<usize, Error> {
    let data = app.data()?;
    app.limiter
        .check_addr(ip)
        .map_err(|d| Error::Locked { retry_after: d })?;
    let account = data
        .account(&session.username)?
        .ok_or(Error::Unauthenticated)?;
    let ok = app
        .hasher
        .verify(req.current_password, Some(account.password_hash.clone()))
        .await
        .map_err(|_| Error::Busy)?;
    if !ok {
        return Err(failed(app, ip, &account.username));
    }
    let hash = app
        .hash_new_password(req.new_password, &account.username)
        .await?;
    let now = app.clock.unix();
    let store = data.clone();
    let username = account.username.clone();
    // Applied to the record as it is now: the email may have changed while we hashed.
    let updated = super::blocking(move || {
        store.update_account(&username, |a| {
            a.password_hash = hash.clone();
            a.must_change_password = false;
            a.password_changed_at = now;
        })
    })
    .await?;
    if updated.is_none() {
        return Err(Error::Unauthenticated);
    }
    let ended = app.sessions.remove_user(&session.username);
    app.audit("password_changed", Some(&session.username), Some(ip), None);
    tracing::info!(%ip, user = %session.username, ended, "password changed; sessions ended");
    Ok(ended)
}

// ---------------------------------------------------------------------------------------
// HTTP wrappers.

pub async fn login_handler(
    app: &App,
    ctx: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Body>, Error> {
    let body: LoginRequest = http::read_json(req).await?;
    let new = login(app, ctx.peer.ip(), body).await?;
    let mut r = http::json_bytes(StatusCode::OK, new.session.view.clone());
    http::set_session_cookie(&mut r, &new.id, ctx.https);
    Ok(r)
}

pub fn logout_handler(
    app: &App,
    ctx: Ctx,
    req: &Request<Incoming>,
) -> Result<Response<Body>, Error> {
    let a = super::authed_csrf(app, req.headers())?;
    app.sessions.remove_key(&a.key);
    let mut r = http::no_content();
    http::clear_session_cookie(&mut r, ctx.https);
    Ok(r)
}

pub fn session_handler(app: &App, req: &Request<Incoming>) -> Result<Response<Body>, Error> {
    let a = super::authed(app, req.headers())?;
    Ok(http::json_bytes(StatusCode::OK, a.session.view.clone()))
}

pub async fn password_handler(
    app: &App,
    ctx: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Body>, Error> {
    let a = super::authed_csrf(app, req.headers())?;
    let body: PasswordRequest = http::read_json(req).await?;
    let ended = change_password(app, ctx.peer.ip(), &a.session, body).await?;
    let mut r = http::no_content();
    // 204 has no body: the headers tell the UI that this session is gone too.
    r.headers_mut()
        .insert("x-pbx-sessions-ended", HeaderValue::from(ended));
    http::clear_session_cookie(&mut r, ctx.https);
    Ok(r)
}
