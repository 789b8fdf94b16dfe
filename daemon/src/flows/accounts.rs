//! Extension accounts: the admin lists, creates and deletes them, so that "username or
//! extension number" on the Forgot Password page means something.

use std::net::IpAddr;

use serde::Deserialize;

use crate::app::App;
use crate::auth::Secret;
use crate::error::Error;
use crate::flows::recovery::MailJob;
use crate::mail::address::Email;
use crate::model::AuditKind;
use crate::model::{Account, Role, ADMIN};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub username: String,
    pub role: Role,
    pub password: Secret,
    #[serde(default)]
    pub email: Option<String>,
    /// The acting admin's password: needed for an admin-role account.
    #[serde(default)]
    pub current_password: Option<Secret>,
    /// ... and the acting admin's second factor, when it has one.
    #[serde(default)]
    pub code: Option<Secret>,
}

/// Extension numbers and simple names: 1–32 of `a-z A-Z 0-9 . _ -`.
pub(super) fn valid_username(u: &str) -> bool {
    (1..=32).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// An installer changes or deletes extension accounts only: never an admin-role
/// account (the owner's email and password among them) nor another installer.
pub async fn within_reach(app: &App, installer: bool, username: &str) -> Result<(), Error> {
    if !installer {
        return Ok(());
    }
    match app.data()?.account(username).await? {
        Some(a) if a.role == Role::Admin || a.installer.is_some() => Err(Error::Forbidden),
        _ => Ok(()),
    }
}

pub async fn list(app: &App) -> Result<Vec<Account>, Error> {
    Ok(app.data()?.accounts().await?)
}

/// Creates an account with a temporary password (must change at first sign-in). `by`:
/// the admin who asked. An admin-role account needs `by`'s password and second factor
/// (a stolen session must not plant a lasting admin), and is mailed to the owner.
pub async fn create(
    app: &App,
    ip: IpAddr,
    by: &str,
    mut body: NewAccount,
) -> Result<Account, Error> {
    if body.role == Role::Admin {
        let password = body
            .current_password
            .take()
            .ok_or(Error::CurrentPasswordRequired(
                crate::i18n::k::MSG_WHY_ADMIN_ROLE,
            ))?;
        let acting = super::login::verify_password(app, ip, by, password, None).await?;
        if acting.two_factor() {
            let code = body.code.take().ok_or(Error::SecondFactorRequired)?;
            super::twofactor::second_factor(app, ip, by, &code).await?;
        }
    }
    if !valid_username(&body.username) {
        return Err(Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_THE_USERNAME_MUST_BE_1,
        )));
    }
    let email = Email::parse_optional(body.email.as_deref())?.map(Email::into_string);
    let data = app.data()?;
    let name = body.username.clone();
    if data.account(&name).await?.is_some() {
        return Err(Error::Conflict(
            crate::i18n::Msg::new(crate::i18n::k::MSG_ACCOUNT_EXISTS).arg("user", &body.username),
        ));
    }
    let password_hash = crate::flows::hash_new_password(app, body.password, &body.username).await?;
    let now = app.clock().unix();
    let account = Account::fresh(body.username, body.role, password_hash, email, now);
    insert(app, ip, by, account).await
}

/// Stores a new account (refused if the name is taken, checked in the same step as
/// the write: two creations cannot both win); audited, an admin-role one alerted, a
/// bound address asked to confirm.
pub(super) async fn insert(
    app: &App,
    ip: IpAddr,
    by: &str,
    account: Account,
) -> Result<Account, Error> {
    if !app.data()?.insert_new_account(account.clone()).await? {
        return Err(Error::Conflict(
            crate::i18n::Msg::new(crate::i18n::k::MSG_ACCOUNT_EXISTS)
                .arg("user", &account.username),
        ));
    }
    tracing::info!(by = %by, user = %account.username, "account created");
    let detail = match &account.installer {
        Some(i) => format!(
            "installer, role {} by {by}, until {}",
            account.role.as_str(),
            crate::clock::format_utc(i.until)
        ),
        None => format!("role {} by {by}", account.role.as_str()),
    };
    app.audit(
        AuditKind::AccountCreated,
        Some(&account.username),
        Some(ip),
        Some(&detail),
    );
    if account.role == Role::Admin {
        crate::flows::alerts::raise(
            app,
            crate::model::AlertKind::AdminCreated,
            None,
            MailJob::AdminCreated {
                username: account.username.clone(),
                by: by.to_string(),
                ip,
            },
        );
    }
    if account.email.is_some() {
        app.outbox()
            .enqueue(crate::flows::recovery::MailJob::ConfirmEmail {
                username: account.username.clone(),
            });
    }
    Ok(account)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    /// A temporary password: the owner must replace it at the next sign-in.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The recovery email; empty removes it. Absent: unchanged.
    #[serde(default)]
    pub email: Option<String>,
    /// Enables (or disables) an account; the button's credential reset disables every
    /// admin-role account but `admin`.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// The admin changes an extension account: a temporary password (every session of the
/// account ends, its reset links die) and/or its recovery email (a confirmation link
/// goes to the new address).
pub async fn update(
    app: &App,
    ip: IpAddr,
    by: &str,
    username: &str,
    change: AccountChange,
) -> Result<Account, Error> {
    if username == ADMIN {
        return Err(Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_THE_ADMIN_ACCOUNT_CHANGES_ITS,
        )));
    }
    let email = match change.email.as_deref() {
        None => None,
        Some(e) => Some(Email::parse_optional(Some(e))?.map(Email::into_string)),
    };
    let hash = match change.password {
        Some(p) => Some(crate::flows::hash_new_password(app, p, username).await?),
        None => None,
    };
    let now = app.clock().unix();
    let (new_hash, new_email, enabled) = (hash.clone(), email.clone(), change.enabled);
    let before = super::recovery::account(app, username)
        .await?
        .ok_or(Error::NotFound)?;
    let account = app
        .data()?
        .update_account_revoking_tokens(username, move |a| {
            if let Some(h) = &new_hash {
                a.password_hash = h.clone();
                a.must_change_password = true;
                a.password_changed_at = now;
            }
            if let Some(e) = &new_email {
                if &a.email != e {
                    a.email_confirmed_at = None;
                    a.email_check = None;
                    a.email_bound_at = e.as_ref().map(|_| now);
                }
                a.email = e.clone();
            }
            if let Some(on) = enabled {
                a.disabled = !on;
            }
        })
        .await?
        .ok_or(Error::NotFound)?
        .account;
    let by_whom = format!("by {by}");
    if hash.is_some() {
        crate::flows::end_sign_ins(app, username);
        app.audit(
            AuditKind::TemporaryPasswordSet,
            Some(username),
            Some(ip),
            Some(&by_whom),
        );
    }
    if email.is_some() && before.email != account.email {
        app.audit(
            AuditKind::AccountEmailChanged,
            Some(username),
            Some(ip),
            Some(&by_whom),
        );
    }
    if before.disabled != account.disabled {
        if account.disabled {
            crate::flows::end_sign_ins(app, username);
        }
        let kind = if account.disabled {
            AuditKind::AccountDisabled
        } else {
            AuditKind::AccountEnabled
        };
        app.audit(kind, Some(username), Some(ip), Some(&by_whom));
    }
    if email.is_some() && before.email != account.email && account.email.is_some() {
        app.outbox()
            .enqueue(crate::flows::recovery::MailJob::ConfirmEmail {
                username: username.to_string(),
            });
    }
    tracing::info!(by = %by, user = %username, "account changed");
    Ok(account)
}

/// Deletes an account (an extension or another admin): its reset tokens go with it,
/// its sessions end.
pub async fn delete(app: &App, ip: IpAddr, by: &str, username: &str) -> Result<(), Error> {
    if username == ADMIN {
        return Err(Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_THE_ADMIN_ACCOUNT_CANNOT_BE,
        )));
    }
    let data = app.data()?;
    let name = username.to_string();
    let existed = data.delete_account(&name).await?;
    if !existed {
        return Err(Error::NotFound);
    }
    crate::flows::end_sign_ins(app, username);
    app.audit(
        AuditKind::AccountDeleted,
        Some(username),
        Some(ip),
        Some(&format!("by {by}")),
    );
    tracing::info!(by = %by, user = %username, "account deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::testkit::{ip, secret, TestApp};

    fn new(name: &str, password: &str) -> NewAccount {
        NewAccount {
            username: name.into(),
            role: Role::User,
            password: secret(password),
            email: Some("ext@pbx.test".into()),
            current_password: None,
            code: None,
        }
    }

    #[tokio::test]
    async fn extensions_are_created_once_with_a_temporary_password_and_deleted() {
        let t = TestApp::ready("flow-accounts").await;
        let app = &t.app;
        assert!(matches!(
            create(app, ip("192.0.2.1"), "admin", new("1001", "short")).await,
            Err(Error::WeakPassword { .. })
        ));
        assert!(matches!(
            create(
                app,
                ip("192.0.2.1"),
                "admin",
                new("10 01", "desk phone by the window")
            )
            .await,
            Err(Error::InvalidRequest(_))
        ));
        let a = create(
            app,
            ip("192.0.2.1"),
            "admin",
            new("1001", "desk phone by the window"),
        )
        .await
        .expect("created");
        assert!(
            a.must_change_password,
            "the owner replaces it at first sign-in"
        );
        assert!(matches!(
            create(
                app,
                ip("192.0.2.1"),
                "admin",
                new("1001", "desk phone by the window")
            )
            .await,
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            delete(app, ip("192.0.2.1"), "admin", ADMIN).await,
            Err(Error::InvalidRequest(_))
        ));
        app.sessions().create(
            crate::auth::sessions::Grant::of("1001", Role::User).changing_password(true),
            Default::default(),
        );
        delete(app, ip("192.0.2.1"), "admin", "1001")
            .await
            .expect("deleted");
        assert_eq!(app.sessions().count(), 0, "its sessions ended");
        assert!(list(app)
            .await
            .expect("list")
            .iter()
            .all(|a| a.username != "1001"));
        assert!(matches!(
            delete(app, ip("192.0.2.1"), "admin", "1001").await,
            Err(Error::NotFound)
        ));
    }
}
