//! Offline recovery codes (spec §8): ten single-use codes of 80 bits, shown once, kept
//! only as SHA-256 in the account; one of them and a new password get the account back
//! from the PBX's own network, with no mail server involved.

use std::net::IpAddr;

use serde::Deserialize;

use super::check_local;
use crate::app::App;
use crate::auth::Secret;
use crate::error::Error;
use crate::model::AuditKind;

use crate::auth::recovery_code::new_code;
pub use crate::auth::recovery_code::{digest, COUNT};

/// Replaces the account's codes with a fresh set (the password again, counted like a
/// sign-in); returns the codes — the only time they exist outside the user's hands.
pub async fn generate(
    app: &App,
    ip: IpAddr,
    username: &str,
    password: Secret,
) -> Result<Vec<String>, Error> {
    let account = super::super::login::verify_password(app, ip, username, password, None).await?;
    // A code would sign it in without the directory, which may have revoked it.
    if account.directory.is_some() {
        return Err(Error::DirectoryPassword);
    }
    let codes: Vec<String> = (0..COUNT).map(|_| new_code()).collect();
    let digests: Vec<String> = codes.iter().filter_map(|c| digest(c)).collect();
    app.data()?
        .update_account(username, move |a| a.recovery_codes = digests.clone())
        .await?
        .ok_or(Error::Unauthenticated)?;
    app.audit(
        AuditKind::RecoveryCodesGenerated,
        Some(username),
        Some(ip),
        None,
    );
    tracing::info!(user = %username, "new recovery codes generated");
    crate::flows::alerts::alert(
        app,
        crate::model::AlertKind::CodesRegenerated,
        Some(username),
        vec![("user", username.to_string()), ("ip", ip.to_string())],
    );
    Ok(codes)
}

/// How many unused codes `username` has.
pub async fn left(app: &App, username: &str) -> Result<usize, Error> {
    Ok(super::account(app, username)
        .await?
        .map_or(0, |a| a.recovery_codes.len()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRecovery {
    pub username: String,
    pub code: Secret,
    pub new_password: Secret,
    /// The phone's current code: needed too on an account with two-factor sign-in (a
    /// recovery code stands in for one factor only).
    #[serde(default)]
    pub totp: Option<Secret>,
}

/// `POST /recover-with-code`: the local-network rule, the address lockout (a wrong code
/// is a failed sign-in), the password rules, then the code consumed and the new password
/// set in one compare-and-swap — a code works once even when two requests race.
pub async fn recover(app: &App, peer: IpAddr, req: CodeRecovery) -> Result<(), Error> {
    check_local(app, peer)?;
    let attempt = app
        .limiter()
        .begin(peer, &req.username, None)
        .map_err(|d| Error::Locked { retry_after: d })?;
    let wanted = digest(req.code.expose());
    let account = match &wanted {
        Some(_) if req.username.len() <= 64 => super::account(app, &req.username).await?,
        _ => None,
    };
    let holds = |codes: &[String], w: &str| {
        codes.iter().fold(false, |hit, c| {
            hit | crate::auth::ct_eq(c.as_bytes(), w.as_bytes())
        })
    };
    if let Some(a) = &account {
        crate::flows::gate::admit_account(app, a, peer)?;
    }
    let (Some(wanted), Some(account)) = (wanted, account) else {
        attempt.failed();
        return Err(Error::CodeInvalid);
    };
    if !holds(&account.recovery_codes, &wanted) {
        attempt.failed();
        tracing::info!(%peer, "recovery code refused");
        return Err(Error::CodeInvalid);
    }
    if account.two_factor() {
        // The code stood in for the password; the phone is still owed. Nothing is used
        // up until both are right.
        let totp = req.totp.as_ref().ok_or(Error::TotpRequired)?;
        crate::flows::twofactor::phone_code(app, peer, &account.username, totp).await?;
    }
    let hash = crate::flows::hash_new_password(app, req.new_password, &account.username).await?;
    let now = app.clock().unix();
    let used = app
        .data()?
        .update_account_revoking_tokens(&account.username, move |a| {
            let before = a.recovery_codes.len();
            a.recovery_codes.retain(|c| c != &wanted);
            let hit = a.recovery_codes.len() < before;
            if hit {
                a.apply_new_password(&hash, now);
            }
            hit
        })
        .await?;
    if !used.is_some_and(|u| u.decided) {
        return Err(Error::CodeInvalid);
    }
    attempt.succeeded();
    super::reset::after_reset(app, account.username, peer, super::reset::Way::Code);
    Ok(())
}
