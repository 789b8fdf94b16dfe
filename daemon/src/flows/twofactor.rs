//! Two-factor sign-in (spec §8, RFC 6238): set up with the password (a secret shown as
//! text and as a QR code), switched on by a first right code, switched off with the
//! password and a code. At sign-in a right password of such an account gets a
//! pre-session; a TOTP code — or an unused recovery code, which is then used up —
//! completes it. Wrong codes count under their own limits, per account and per
//! address, which a right password does not clear: 5 in a row lock the account's
//! second factor (audited, the owner mailed).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::login::LoginOutcome;
use crate::app::App;
use crate::auth::lockout::{self, FactorFailure, FactorRefused};
use crate::auth::{totp, Secret};
use crate::error::Error;
use crate::mail::outbox::MailJob;
use crate::model::AuditKind;
use crate::model::Totp;

#[derive(Serialize)]
pub struct Setup {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

/// A fresh secret for `username`, waiting for its first code (replaces one not yet
/// confirmed). Refused while two-factor sign-in is on: switch it off first.
pub async fn setup(
    app: &App,
    ip: IpAddr,
    username: &str,
    password: Secret,
) -> Result<Setup, Error> {
    let account = super::login::verify_password(app, ip, username, password, None).await?;
    if account.two_factor() {
        return Err(Error::Conflict(crate::i18n::Msg::new(
            crate::i18n::k::MSG_TWO_FACTOR_SIGN_IN_IS,
        )));
    }
    let secret = totp::base32(&totp::new_secret());
    let stored = Totp {
        secret: secret.clone(),
        enabled: false,
        last_step: None,
    };
    app.data()?
        .update_account(username, move |a| a.totp = Some(stored.clone()))
        .await?
        .ok_or(Error::Unauthenticated)?;
    let issuer = match app.board_info() {
        Some(b) => format!("PBX {} {}", b.model, b.serial),
        None => "PBX".into(),
    };
    let otpauth_uri = totp::otpauth_uri(&issuer, username, &secret);
    let qr_svg = crate::qr::svg(&otpauth_uri, 220)
        .ok_or_else(|| Error::Internal("the QR code does not fit".into()))?;
    Ok(Setup {
        secret,
        otpauth_uri,
        qr_svg,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeForm {
    pub code: Secret,
}

/// The first right code switches it on; every session of the account ends (they were
/// opened with the password alone).
pub async fn enable(app: &App, ip: IpAddr, username: &str, code: &Secret) -> Result<(), Error> {
    let account = super::recovery::account(app, username)
        .await?
        .ok_or(Error::Unauthenticated)?;
    let Some(t) = account.totp.filter(|t| !t.enabled) else {
        return Err(Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_SET_UP_TWO_FACTOR_SIGN,
        )));
    };
    if let Some(u) = app.time().unset() {
        return Err(Error::ClockUnset {
            reads: u.reads,
            floor: u.floor,
        });
    }
    let secret = totp::from_base32(&t.secret).unwrap_or_default();
    let Some(step) = totp::verify(&secret, code.expose(), app.clock().unix(), None) else {
        return Err(Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_THAT_CODE_IS_NOT_RIGHT,
        )));
    };
    app.data()?
        .update_account(username, move |a| {
            if let Some(t) = a.totp.as_mut() {
                t.enabled = true;
                t.last_step = Some(step);
            }
            a.new_device_generation();
        })
        .await?;
    let ended = super::end_sign_ins(app, username);
    app.audit(AuditKind::TwoFactorEnabled, Some(username), Some(ip), None);
    tracing::info!(user = %username, ended, "two-factor sign-in on");
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableForm {
    pub password: Secret,
    pub code: Secret,
}

/// Off again: the password and a code (TOTP or recovery code).
pub async fn disable(
    app: &App,
    ip: IpAddr,
    username: &str,
    form: DisableForm,
) -> Result<(), Error> {
    let account = super::login::verify_password(app, ip, username, form.password, None).await?;
    if !account.two_factor() {
        return Err(Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_TWO_FACTOR_SIGN_IN_IS_2,
        )));
    }
    second_factor(app, ip, username, &form.code).await?;
    app.data()?
        .update_account(username, |a| {
            a.totp = None;
            a.new_device_generation();
        })
        .await?;
    app.presessions().remove_user(username);
    app.audit(AuditKind::TwoFactorDisabled, Some(username), Some(ip), None);
    crate::flows::alerts::alert(
        app,
        crate::model::AlertKind::TwoFactorOff,
        Some(username),
        vec![("user", username.to_string()), ("ip", ip.to_string())],
    );
    tracing::info!(user = %username, "two-factor sign-in off");
    Ok(())
}

/// Checks a second factor of `username` under its own limits (per account and per
/// address, see [`crate::auth::lockout`]'s second-factor part): a TOTP code of a step
/// not used before (the step is then recorded), or an unused recovery code (then used
/// up). Both are checked in the same compare-and-swap that records them; a wrong code
/// writes nothing to flash.
pub async fn second_factor(
    app: &App,
    ip: IpAddr,
    username: &str,
    code: &Secret,
) -> Result<(), Error> {
    let typed = code.expose().to_string();
    let recovery = crate::auth::recovery_code::digest(&typed);
    check_factor(app, ip, username, typed, recovery).await
}

/// [`second_factor`] for the phone's code only, where a recovery code already stood in
/// for the other factor (code recovery on a two-factor account).
pub async fn phone_code(app: &App, ip: IpAddr, username: &str, code: &Secret) -> Result<(), Error> {
    check_factor(app, ip, username, code.expose().to_string(), None).await
}

/// `recovery`: the digest of the typed code if it has the form of a recovery code and
/// one may stand in here.
async fn check_factor(
    app: &App,
    ip: IpAddr,
    username: &str,
    typed: String,
    recovery: Option<String>,
) -> Result<(), Error> {
    // A clock below its floor cannot check a phone's code: said in words and never
    // counted, so a box without a clock does not lock its owner out. A recovery code
    // does not need the clock.
    let unset = app.time().unset();
    if let (Some(u), None) = (unset, &recovery) {
        return Err(Error::ClockUnset {
            reads: u.reads,
            floor: u.floor,
        });
    }
    let attempt = app
        .limiter()
        .begin_factor(ip, username, recovery.is_some())
        .map_err(|r| match r {
            FactorRefused::Account(d) => Error::SecondFactorLocked {
                retry_after: d,
                account: true,
            },
            FactorRefused::Address(d) => Error::SecondFactorLocked {
                retry_after: d,
                account: false,
            },
        })?;
    let now = app.clock().unix();
    let result = app
        .data()?
        .update_account(username, move |a| {
            if let Some(t) = a.totp.as_mut().filter(|t| t.enabled && unset.is_none()) {
                let secret = totp::from_base32(&t.secret).unwrap_or_default();
                if let Some(step) = totp::verify(&secret, &typed, now, t.last_step) {
                    t.last_step = Some(step);
                    return true;
                }
            }
            let Some(w) = &recovery else { return false };
            let before = a.recovery_codes.len();
            a.recovery_codes.retain(|c| c != w);
            a.recovery_codes.len() < before
        })
        .await?;
    if result.is_some_and(|u| u.decided) {
        attempt.succeeded();
        return Ok(());
    }
    tracing::info!(%ip, "second factor refused");
    let shown = crate::auth::shown_username(username);
    Err(match attempt.failed() {
        FactorFailure::AttemptsLeft(n) => {
            app.audit(AuditKind::TwoFactorFailed, Some(&shown), Some(ip), None);
            Error::InvalidCredentials {
                attempts_left: Some(n),
            }
        }
        FactorFailure::AccountLocked(d) => {
            let minutes = d.as_secs().div_ceil(60);
            tracing::warn!(%ip, user = %shown, minutes, "second factor locked after wrong codes");
            app.audit(
                AuditKind::TwoFactorLocked,
                Some(&shown),
                Some(ip),
                Some(&format!(
                    "{minutes} min after {} wrong codes",
                    lockout::FACTOR_FAILURES
                )),
            );
            crate::flows::alerts::raise(
                app,
                crate::model::AlertKind::FactorLocked,
                None,
                MailJob::FactorLocked {
                    username: username.to_string(),
                    ip,
                    minutes,
                },
            );
            Error::InvalidCredentials {
                attempts_left: Some(0),
            }
        }
        FactorFailure::AddressBlocked(d) => {
            tracing::warn!(%ip, "address blocked after repeated wrong codes");
            app.audit(
                AuditKind::TwoFactorFailed,
                Some(&shown),
                Some(ip),
                Some("address blocked"),
            );
            Error::SecondFactorLocked {
                retry_after: d,
                account: false,
            }
        }
    })
}

/// `POST /login/2fa`: the pre-session's code; the sign-in completes as a password
/// sign-in would.
pub async fn complete_login(
    app: &App,
    ip: IpAddr,
    presession: Option<&str>,
    code: &Secret,
) -> Result<LoginOutcome, Error> {
    let token = presession.ok_or(Error::Unauthenticated)?;
    let pending = app.presessions().get(token).ok_or(Error::Unauthenticated)?;
    if let Some(c) = &pending.challenge {
        return directory_code(app, ip, token, &pending, c, code).await;
    }
    // The code is not even checked from outside the trusted networks.
    if let Some(a) = app.data()?.account(&pending.username).await? {
        crate::flows::gate::admit_account(app, &a, ip)?;
        if crate::flows::gate::expired(app, &a) {
            return Err(Error::InstallerExpired);
        }
    }
    if let Err(e) = second_factor(app, ip, &pending.username, code).await {
        app.presessions().failed(token);
        return Err(e);
    }
    let p = app
        .presessions()
        .take(token)
        .ok_or(Error::Unauthenticated)?;
    let grant = super::login::Grant {
        session: crate::auth::sessions::Grant::of(&p.username, p.role)
            .changing_password(p.must_change_password),
        known_device: p.device,
    };
    Ok(LoginOutcome::SignedIn(
        super::login::signed_in(app, ip, grant, &p.agent).await,
    ))
}

/// The answer to a directory's Access-Challenge: sent to the server that asked, with
/// its State, counted like a password (the limits of the name and the address apply
/// before it is sent). A wrong code ends the pre-session (the server's State is good
/// for one answer); a further challenge gets a new one.
async fn directory_code(
    app: &App,
    ip: IpAddr,
    token: &str,
    pending: &crate::auth::presession::Pending,
    challenge: &crate::auth::presession::Challenge,
    code: &Secret,
) -> Result<LoginOutcome, Error> {
    use crate::flows::directory::{admitted, ask, Verdict};
    let name = &pending.username;
    let local = crate::flows::local::is_local(app, ip);
    let attempt = app
        .limiter()
        .begin_from(ip, local, name, None)
        .map_err(super::login::refused)?;
    let verdict = ask(app, name, code.expose().as_bytes(), Some(challenge)).await?;
    app.presessions().take(token);
    match verdict {
        Verdict::Accepted { role, via } => {
            let account = admitted(app, ip, name, role, via).await?;
            attempt.succeeded();
            super::login::proceed(app, ip, account, None, &pending.agent).await
        }
        Verdict::Challenge(next) => {
            let message = next.message.clone();
            let presession = app
                .presessions()
                .create_challenge(name, &pending.agent, next);
            Ok(LoginOutcome::DirectoryCode {
                presession,
                message,
            })
        }
        Verdict::Rejected => {
            let failure = attempt.failed();
            Err(super::login::failed(app, ip, name, failure))
        }
        Verdict::NoRole { .. } => Err(Error::DirectoryNoRole),
    }
}

#[cfg(test)]
mod tests;
