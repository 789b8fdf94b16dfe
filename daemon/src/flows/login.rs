//! Sign-in flows: login, logout, the session view, and password change (which ends every
//! session of the account). Brute-force limits, the slow-down and device cookies are
//! applied here, in [`verify_password`], for every path that checks a password.

use std::net::IpAddr;

use serde::Deserialize;

use crate::app::App;
use crate::auth::lockout::{shown_username, DeviceId, Failure};
use crate::auth::sessions::{NewSession, Session};
use crate::auth::Secret;
use crate::error::Error;
use crate::model::Account;

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

fn failed(app: &App, ip: IpAddr, username: &str, failure: Failure) -> Error {
    let shown = shown_username(username);
    match failure {
        Failure::AttemptsLeft(n) => {
            app.audit("login_failed", Some(&shown), Some(ip), None);
            Error::InvalidCredentials {
                attempts_left: Some(n),
            }
        }
        Failure::Locked(d) => {
            tracing::warn!(%ip, "address blocked after repeated failed logins");
            app.audit(
                "login_locked",
                Some(&shown),
                Some(ip),
                Some("address blocked"),
            );
            Error::Locked { retry_after: d }
        }
    }
}

/// Checks `username`'s password under the brute-force limits: the attempt counts from
/// before its hash, waits its turn in the account's slow-down (unless a device cookie
/// carries it), and a failure counts for the address. Every path that checks a
/// password — sign-in, password change, email change, factory reset — goes through here.
pub async fn verify_password(
    app: &App,
    ip: IpAddr,
    username: &str,
    password: Secret,
    device: Option<DeviceId>,
) -> Result<Account, Error> {
    let data = app.data()?;
    let attempt = app
        .limiter
        .begin(ip, username, device)
        .map_err(|d| Error::Locked { retry_after: d })?;
    if !attempt.by_device() {
        app.limiter
            .wait_turn(username)
            .await
            .map_err(|d| Error::Locked { retry_after: d })?;
    }
    // Longer names are never accounts: no lookup, the same hash as an unknown user.
    let account = if username.len() <= MAX_USERNAME {
        data.account(username)?
    } else {
        None
    };
    let ok = app
        .hasher
        .verify(password, account.as_ref().map(|a| a.password_hash.clone()))
        .await
        .map_err(|_| Error::Busy)?;
    match account {
        Some(a) if ok => {
            attempt.succeeded();
            Ok(a)
        }
        _ => {
            tracing::info!(%ip, "password check failed");
            Err(failed(app, ip, username, attempt.failed()))
        }
    }
}

/// A successful sign-in: the session, and a new device cookie for this browser.
pub struct SignedIn {
    pub new: NewSession,
    pub device_cookie: Option<String>,
}

/// `device_cookie`: the `pbx_device` cookie the request carried, if any.
pub async fn login(
    app: &App,
    ip: IpAddr,
    req: LoginRequest,
    device_cookie: Option<&str>,
) -> Result<SignedIn, Error> {
    let device = app
        .device_key()
        .zip(device_cookie)
        .and_then(|(k, c)| k.verify(c, &req.username));
    let account = verify_password(app, ip, &req.username, req.password, device).await?;
    tracing::info!(%ip, user = %account.username, known_device = device.is_some(), "login");
    app.audit("login", Some(&account.username), Some(ip), None);
    Ok(SignedIn {
        new: app.sessions.create(
            &account.username,
            account.role,
            account.must_change_password,
        ),
        device_cookie: app.device_key().map(|k| k.issue(&account.username)),
    })
}

/// Changes the caller's password; returns how many sessions of the account ended.
pub async fn change_password(
    app: &App,
    ip: IpAddr,
    session: &Session,
    req: PasswordRequest,
) -> Result<usize, Error> {
    let data = app.data()?;
    let account = verify_password(app, ip, &session.username, req.current_password, None).await?;
    let hash = app
        .hash_new_password(req.new_password, &account.username)
        .await?;
    let now = app.clock.unix();
    let store = data.clone();
    let username = account.username.clone();
    // Applied to the record as it is now: the email may have changed while we hashed.
    // Outstanding reset links die with the old password.
    let updated = super::blocking(move || {
        store.update_account_revoking_tokens(&username, |a| a.apply_new_password(&hash, now))
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
