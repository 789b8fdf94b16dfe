//! Installer access (spec §10): the owner issues an account for 1–168 hours, with a
//! password shown once (replaced by the installer at the first sign-in), the admin or
//! user role and optionally networks of its own. Each of its sign-ins is mailed to the
//! owner; at its end its sessions end and the account is removed (audited), or the
//! owner ends it early. An installer cannot create accounts nor change the owner's
//! email, SMTP, the access settings or the button (the routes' `Owner` guard).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::auth::trust::NetList;
use crate::auth::Secret;
use crate::error::Error;
use crate::i18n::{k, Msg};
use crate::model::{AuditKind, Installer, Role};

/// Longest installer access, in hours (a week).
pub const MAX_HOURS: u64 = 168;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInstaller {
    pub username: String,
    pub role: Role,
    pub hours: u64,
    #[serde(default)]
    pub networks: Vec<String>,
    pub current_password: Secret,
}

/// Shown once: the installer's password is never stored or shown again.
#[derive(Serialize)]
pub struct Issued {
    pub username: String,
    pub password: String,
    pub expires_at: u64,
}

/// A password of 20 letters and digits in groups of four (~100 bits), easy to read out
/// over the phone: no 0/o, 1/l/i.
fn one_time_password() -> String {
    const SET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let raw = crate::auth::random_bytes::<20>();
    let mut out = String::with_capacity(24);
    for (i, b) in raw.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        // 31 symbols: the modulo bias of a byte is below 1 %, the length makes up for it.
        out.push(SET[usize::from(*b) % SET.len()] as char);
    }
    out
}

/// Issues an installer account (the owner's password first).
pub async fn issue(app: &App, ip: IpAddr, by: &str, req: NewInstaller) -> Result<Issued, Error> {
    crate::flows::login::verify_password(app, ip, by, req.current_password, None).await?;
    if !(1..=MAX_HOURS).contains(&req.hours) {
        return Err(Error::InvalidRequest(
            Msg::new(k::MSG_INSTALLER_HOURS).arg("max", MAX_HOURS),
        ));
    }
    if !super::accounts::valid_username(&req.username) {
        return Err(Error::InvalidRequest(Msg::new(
            k::MSG_THE_USERNAME_MUST_BE_1,
        )));
    }
    let networks = NetList::parse(&req.networks)
        .map_err(|e| {
            Error::InvalidRequest(
                Msg::new(k::MSG_ACCESS_BAD_NETWORK)
                    .arg("field", "networks")
                    .arg("problem", e),
            )
        })?
        .entries();
    let password = one_time_password();
    let hash = app
        .hasher()
        .hash(Secret::new(password.clone()))
        .await
        .map_err(|_| Error::Busy)?;
    let now = app.clock().unix();
    let until = now + req.hours * 3600;
    let mut account = crate::model::Account::fresh(req.username, req.role, hash, None, now);
    account.installer = Some(Installer {
        until,
        by: by.to_string(),
        networks,
    });
    let account = super::accounts::insert(app, ip, by, account).await?;
    app.audit(
        AuditKind::InstallerCreated,
        Some(&account.username),
        Some(ip),
        Some(&format!(
            "for {} h by {by}, until {}",
            req.hours,
            crate::clock::format_utc(until)
        )),
    );
    schedule(app).await;
    Ok(Issued {
        username: account.username,
        password,
        expires_at: until,
    })
}

/// Ends an installer's access now (its sessions end, the account goes).
pub async fn end(app: &App, ip: Option<IpAddr>, by: &str, username: &str) -> Result<(), Error> {
    let data = app.data()?;
    let account = data.account(username).await?.ok_or(Error::NotFound)?;
    if account.installer.is_none() {
        return Err(Error::NotFound);
    }
    data.delete_account(username).await?;
    crate::flows::end_sign_ins(app, username);
    app.audit(AuditKind::InstallerEnded, Some(username), ip, Some(by));
    tracing::info!(user = %username, "installer access ended: {by}");
    schedule(app).await;
    Ok(())
}

/// Reads when the next installer account ends (after a change of the list or at start).
pub async fn schedule(app: &App) {
    let next = match app.data() {
        Ok(d) => match d.accounts().await {
            Ok(list) => list
                .iter()
                .filter_map(|a| a.installer.as_ref().map(|i| i.until))
                .min(),
            Err(e) => {
                tracing::warn!("installer accounts unreadable: {e}");
                // Read again at the next tick.
                Some(0)
            }
        },
        Err(_) => None,
    };
    app.access().set_next_installer_end(next);
}

/// Ends every installer account whose time is up (called once a second).
pub async fn end_expired(app: &App) {
    let now = app.clock().unix();
    if !app.access().installer_due(now) {
        return;
    }
    let Ok(data) = app.data() else { return };
    let expired: Vec<String> = match data.accounts().await {
        Ok(list) => list
            .into_iter()
            .filter(|a| a.installer.as_ref().is_some_and(|i| i.until <= now))
            .map(|a| a.username)
            .collect(),
        Err(_) => Vec::new(),
    };
    for name in expired {
        if let Err(e) = end(app, None, "its time is over", &name).await {
            tracing::error!(user = %name, "ending an expired installer account: {e}");
        }
    }
    schedule(app).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_time_passwords_are_readable_and_differ() {
        let a = super::one_time_password();
        let b = super::one_time_password();
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        assert!(a.split('-').all(|g| g.len() == 4));
        assert!(!a.contains(['0', 'o', '1', 'l', 'i']));
    }
}
