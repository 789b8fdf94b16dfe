//! Extension accounts: the admin lists, creates and deletes them, so that "username or
//! extension number" on the Forgot Password page means something.

use serde::Deserialize;

use crate::app::App;
use crate::auth::Secret;
use crate::error::Error;
use crate::mail::address::Email;
use crate::model::{Account, Role, ADMIN};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub username: String,
    pub role: Role,
    pub password: Secret,
    #[serde(default)]
    pub email: Option<String>,
}

/// Extension numbers and simple names: 1–32 of `a-z A-Z 0-9 . _ -`.
fn valid_username(u: &str) -> bool {
    (1..=32).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

pub async fn list(app: &App) -> Result<Vec<Account>, Error> {
    Ok(app.data()?.run(|d| d.accounts()).await?)
}

/// Creates an extension account with a temporary password (must change at first
/// sign-in). `by`: the admin who asked, for the log.
pub async fn create(app: &App, by: &str, body: NewAccount) -> Result<Account, Error> {
    if !valid_username(&body.username) {
        return Err(Error::InvalidRequest(
            "The username must be 1-32 letters, digits, dots, dashes or underscores (an extension number such as 1001).".into(),
        ));
    }
    let email = Email::parse_optional(body.email.as_deref())?.map(Email::into_string);
    let data = app.data()?;
    let name = body.username.clone();
    if data.run(move |d| d.account(&name)).await?.is_some() {
        return Err(Error::Conflict(format!(
            "The account {:?} already exists.",
            body.username
        )));
    }
    let password_hash = app.hash_new_password(body.password, &body.username).await?;
    let now = app.clock().unix();
    let account = Account {
        username: body.username,
        role: body.role,
        password_hash,
        email: email.clone(),
        // The admin chose this password; its owner replaces it at first sign-in.
        must_change_password: true,
        created_at: now,
        password_changed_at: now,
        recovery_codes: Vec::new(),
        email_confirmed_at: None,
        email_bound_at: email.as_ref().map(|_| now),
        email_check: None,
        totp: None,
        device_gen: 0,
        devices: Vec::new(),
    };
    let store = data.clone();
    let saved = account.clone();
    // Checked again in the same step as the write: two creations cannot both win.
    if !store.run(move |d| d.insert_new_account(&saved)).await? {
        return Err(Error::Conflict(format!(
            "The account {:?} already exists.",
            account.username
        )));
    }
    tracing::info!(by = %by, user = %account.username, "account created");
    if account.email.is_some() {
        app.recovery()
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
}

/// The admin changes an extension account: a temporary password (every session of the
/// account ends, its reset links die) and/or its recovery email (a confirmation link
/// goes to the new address).
pub async fn update(
    app: &App,
    by: &str,
    username: &str,
    change: AccountChange,
) -> Result<Account, Error> {
    if username == ADMIN {
        return Err(Error::InvalidRequest(
            "The admin account changes its own password and email on its Profile page.".into(),
        ));
    }
    let email = match change.email.as_deref() {
        None => None,
        Some(e) => Some(Email::parse_optional(Some(e))?.map(Email::into_string)),
    };
    let hash = match change.password {
        Some(p) => Some(app.hash_new_password(p, username).await?),
        None => None,
    };
    let now = app.clock().unix();
    let name = username.to_string();
    let (new_hash, new_email) = (hash.clone(), email.clone());
    let before = super::recovery::account(app, username)
        .await?
        .ok_or(Error::NotFound)?;
    let account = app
        .data()?
        .run(move |d| {
            d.update_account_revoking_tokens(&name, |a| {
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
            })
        })
        .await?
        .ok_or(Error::NotFound)?;
    if hash.is_some() {
        crate::flows::end_sign_ins(app, username);
        app.audit("temporary_password_set", Some(username), None, Some(by));
    }
    if email.is_some() && before.email != account.email && account.email.is_some() {
        app.recovery()
            .enqueue(crate::flows::recovery::MailJob::ConfirmEmail {
                username: username.to_string(),
            });
    }
    tracing::info!(by = %by, user = %username, "account changed");
    Ok(account)
}

/// Deletes an extension account: its reset tokens go with it, its sessions end.
pub async fn delete(app: &App, by: &str, username: &str) -> Result<(), Error> {
    if username == ADMIN {
        return Err(Error::InvalidRequest(
            "The admin account cannot be deleted.".into(),
        ));
    }
    let data = app.data()?;
    let name = username.to_string();
    let existed = data.run(move |d| d.delete_account(&name)).await?;
    if !existed {
        return Err(Error::NotFound);
    }
    crate::flows::end_sign_ins(app, username);
    tracing::info!(by = %by, user = %username, "account deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::testkit::{secret, TestApp};

    fn new(name: &str, password: &str) -> NewAccount {
        NewAccount {
            username: name.into(),
            role: Role::User,
            password: secret(password),
            email: Some("ext@pbx.test".into()),
        }
    }

    #[tokio::test]
    async fn extensions_are_created_once_with_a_temporary_password_and_deleted() {
        let t = TestApp::ready("flow-accounts").await;
        let app = &t.app;
        assert!(matches!(
            create(app, "admin", new("1001", "short")).await,
            Err(Error::WeakPassword { .. })
        ));
        assert!(matches!(
            create(app, "admin", new("10 01", "desk phone by the window")).await,
            Err(Error::InvalidRequest(_))
        ));
        let a = create(app, "admin", new("1001", "desk phone by the window"))
            .await
            .expect("created");
        assert!(
            a.must_change_password,
            "the owner replaces it at first sign-in"
        );
        assert!(matches!(
            create(app, "admin", new("1001", "desk phone by the window")).await,
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            delete(app, "admin", ADMIN).await,
            Err(Error::InvalidRequest(_))
        ));
        app.sessions().create("1001", Role::User, true);
        delete(app, "admin", "1001").await.expect("deleted");
        assert_eq!(app.sessions().count(), 0, "its sessions ended");
        assert!(list(app)
            .await
            .expect("list")
            .iter()
            .all(|a| a.username != "1001"));
        assert!(matches!(
            delete(app, "admin", "1001").await,
            Err(Error::NotFound)
        ));
    }
}
