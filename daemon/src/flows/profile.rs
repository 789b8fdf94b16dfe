//! The account's own profile: its recovery email.

use std::net::IpAddr;

use serde::Deserialize;

use crate::app::App;
use crate::error::Error;
use crate::flows::recovery::MailJob;
use crate::mail::address::Email;
use crate::model::AuditKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileForm {
    /// The recovery email; empty or null unbinds it.
    pub email: Option<String>,
    /// Changing where reset links go needs the password again: a stolen session must
    /// not be able to redirect the way back in.
    pub current_password: crate::auth::Secret,
}

/// The signed-in account.
pub async fn get(app: &App, username: &str) -> Result<crate::model::Account, Error> {
    app.data()?
        .account(username)
        .await?
        .ok_or(Error::Unauthenticated)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsForm {
    pub alerts: std::collections::BTreeMap<String, bool>,
    pub current_password: crate::auth::Secret,
}

/// Turns alert kinds on or off for `username` (its password first); the new state.
pub async fn set_alerts(
    app: &App,
    ip: std::net::IpAddr,
    username: &str,
    form: AlertsForm,
) -> Result<Vec<crate::flows::alerts::Switch>, Error> {
    let account =
        super::login::verify_password(app, ip, username, form.current_password, None).await?;
    let off = crate::flows::alerts::alerts_off(&account.alerts_off, &form.alerts)?;
    let updated = app
        .data()?
        .update_account(username, move |a| a.alerts_off = off.clone())
        .await?
        .ok_or(Error::Unauthenticated)?;
    Ok(crate::flows::alerts::switches(&updated.account))
}

/// Stores the language `username` chose for its pages and mails.
pub async fn set_language(app: &App, username: &str, lang: crate::i18n::Lang) -> Result<(), Error> {
    let code = lang.code().to_string();
    app.data()?
        .update_account(username, move |a| a.language = Some(code.clone()))
        .await?;
    Ok(())
}

/// Binds, changes or removes `username`'s recovery email: the current password again
/// (counted like a sign-in), the account's reset tokens revoked in the same write, and
/// a notice to the old address. Returns the address now bound.
pub async fn set_email(
    app: &App,
    ip: IpAddr,
    username: &str,
    form: ProfileForm,
) -> Result<Option<String>, Error> {
    let email = Email::parse_optional(form.email.as_deref())?.map(Email::into_string);
    let before =
        super::login::verify_password(app, ip, username, form.current_password, None).await?;
    let data = app.data()?;
    let new_email = email.clone();
    let now = app.clock().unix();
    // Reset links mailed to the old address die with the change; a new address starts
    // unconfirmed.
    let account = data
        .update_account_revoking_tokens(username, move |acc| {
            if acc.email != new_email {
                acc.email_confirmed_at = None;
                acc.email_check = None;
                acc.email_bound_at = new_email.as_ref().map(|_| now);
            }
            acc.email = new_email.clone();
        })
        .await?
        .ok_or(Error::Unauthenticated)?
        .account;
    tracing::info!(user = %account.username, bound = email.is_some(), "recovery email changed");
    app.audit(
        AuditKind::RecoveryEmailChanged,
        Some(&account.username),
        Some(ip),
        None,
    );
    let changed = before.email != email;
    if let Some(old) = before.email.filter(|old| Some(old) != email.as_ref()) {
        app.outbox().enqueue(MailJob::EmailChanged {
            username: account.username.clone(),
            old,
            new: email.clone(),
            ip,
        });
    }
    if changed && email.is_some() {
        app.outbox().enqueue(MailJob::ConfirmEmail {
            username: account.username.clone(),
        });
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::testkit::{ip, secret, TestApp, ADMIN_PW};
    use crate::model::ADMIN;

    fn form(email: &str, password: &str) -> ProfileForm {
        ProfileForm {
            email: Some(email.into()),
            current_password: secret(password),
        }
    }

    #[tokio::test]
    async fn a_new_recovery_address_needs_the_password_and_tells_the_old_one() {
        let t = TestApp::ready("flow-profile").await;
        let app = &t.app;
        let mut queue = app.outbox().take_worker_queue().expect("queue");
        let a = ip("192.0.2.9");
        set_email(app, a, ADMIN, form("old@pbx.test", ADMIN_PW))
            .await
            .expect("bound");
        let data = app.data().expect("data");
        let now = app.clock().unix();
        t.admin_token([7; 32]);
        assert!(matches!(
            set_email(app, a, ADMIN, form("thief@evil.test", "not the password")).await,
            Err(Error::InvalidCredentials { .. })
        ));
        assert_eq!(
            get(app, ADMIN).await.expect("read").email.as_deref(),
            Some("old@pbx.test")
        );
        assert!(matches!(
            set_email(app, a, ADMIN, form("not an address", ADMIN_PW)).await,
            Err(Error::InvalidRequest(_))
        ));
        let now_bound = set_email(app, a, ADMIN, form("new@pbx.test", ADMIN_PW))
            .await
            .expect("changed");
        assert_eq!(now_bound.as_deref(), Some("new@pbx.test"));
        assert!(
            data.token_valid([7; 32], now)
                .await
                .expect("read")
                .is_none(),
            "link revoked"
        );
        let mut jobs = std::iter::from_fn(|| queue.try_recv().ok());
        let mut confirms = 0;
        let changed = jobs.find(|j| {
            confirms += usize::from(matches!(j, MailJob::ConfirmEmail { .. }));
            matches!(j, MailJob::EmailChanged { .. })
        });
        assert_eq!(
            confirms, 1,
            "the first address was sent its confirmation link"
        );
        assert!(
            matches!(jobs.next(), Some(MailJob::ConfirmEmail { .. })),
            "and the new one"
        );
        let account = data.account(ADMIN).await.expect("read").expect("admin");
        assert_eq!(account.email_confirmed_at, None);
        assert_eq!(account.email_bound_at, Some(app.clock().unix()));
        match changed {
            Some(MailJob::EmailChanged { old, new, .. }) => {
                assert_eq!(old, "old@pbx.test");
                assert_eq!(new.as_deref(), Some("new@pbx.test"));
            }
            other => panic!("no notice to the old address: {other:?}"),
        }
    }
}
