//! The recovery press and its mode (spec §6): `credentials` puts the admin account back
//! on the label password and keeps every other byte of data; `mail` mails a reset link;
//! `off` does nothing. The mode starts as `recovery.button` in the config; the admin may
//! change it from the web, but only with the password **and** a press at the box within
//! [`CONFIRM_WINDOW`] — a stolen session can neither close this way back in nor open it.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use super::MailJob;
use crate::app::App;
use crate::auth::Secret;
use crate::error::Error;
use crate::model::AuditKind;
use crate::model::{ButtonMode, PendingMode, ADMIN};

/// A confirmed change (absent: the config's value).
impl crate::store::Setting for ButtonMode {
    const KEY: &'static str = "recovery_button";
}

/// How long a requested change waits for its press.
pub const CONFIRM_WINDOW: Duration = Duration::from_secs(120);
/// A confirming press is held at least this long ...
pub const CONFIRM_MIN_MS: u64 = 1_000;
/// ... and at most this long (and always shorter than the recovery press, spec §6).
pub const CONFIRM_MAX_MS: u64 = 2_500;

/// What `GET /recovery` shows an admin about the button.
#[derive(Debug, Clone, Serialize)]
pub struct ButtonState {
    pub mode: ButtonMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PendingView {
    pub mode: ButtonMode,
    pub expires_in_s: u64,
}

/// The mode in force: a confirmed change, else the config's.
pub async fn mode(app: &App) -> ButtonMode {
    let stored = match app.data() {
        Ok(d) => d.setting::<ButtonMode>().await.map_err(Error::from),
        Err(e) => Err(e),
    };
    match stored {
        Ok(Some(m)) => m,
        Ok(None) => app.config().recovery.button,
        Err(e) => {
            tracing::warn!("reading the button mode: {e}; using the config's");
            app.config().recovery.button
        }
    }
}

/// The pending change, if it has not lapsed (a lapsed one is dropped here).
pub fn pending(app: &App) -> Option<PendingMode> {
    app.recovery()
        .pending(app.clock().mono())
        .unwrap_or_else(|lapsed| {
            tracing::info!(
                mode = lapsed.mode.as_str(),
                "button mode change lapsed unconfirmed"
            );
            None
        })
}

pub async fn state(app: &App) -> ButtonState {
    let now = app.clock().mono();
    ButtonState {
        mode: mode(app).await,
        pending: pending(app).map(|p| PendingView {
            mode: p.mode,
            expires_in_s: p.until.saturating_sub(now).as_secs(),
        }),
    }
}

/// Asks for a change of the mode: the admin's password now, a press at the box within
/// [`CONFIRM_WINDOW`]. A newer request replaces a pending one.
pub async fn request_change(
    app: &App,
    ip: IpAddr,
    username: &str,
    password: Secret,
    new: ButtonMode,
) -> Result<PendingView, Error> {
    super::super::login::verify_password(app, ip, username, password, None).await?;
    let until = app.clock().mono() + CONFIRM_WINDOW;
    app.recovery()
        .request_change(PendingMode { mode: new, until });
    app.audit(
        AuditKind::ButtonModeRequested,
        Some(username),
        Some(ip),
        Some(new.as_str()),
    );
    tracing::info!(user = %username, mode = new.as_str(), "button mode change waits for a press");
    Ok(PendingView {
        mode: new,
        expires_in_s: CONFIRM_WINDOW.as_secs(),
    })
}

/// Drops a pending change unconfirmed (`why`: what cancelled it); audited.
pub fn cancel(app: &App, why: &str) {
    if let Some(p) = app.recovery().take_pending() {
        let how = format!("cancelled by {why}");
        noted(app, AuditKind::ButtonModeCancelled, p.mode, &how);
    }
}

/// A 1-2.5 s press while a change is pending: stores it (flushed) and does nothing else.
/// `None` if no change was pending.
pub async fn confirm(app: &App) -> Option<Result<ButtonMode, Error>> {
    let p = pending(app)?;
    let data = match app.data() {
        Ok(d) => d,
        Err(e) => return Some(Err(e)),
    };
    let stored = data.save(p.mode).await;
    // Confirmed or failed, the press used it up.
    app.recovery().take_pending();
    if let Err(e) = stored {
        return Some(Err(e.into()));
    }
    noted(
        app,
        AuditKind::ButtonModeChanged,
        p.mode,
        "confirmed at the box",
    );
    Some(Ok(p.mode))
}

/// What became of a requested change, in the audit trail and the log.
fn noted(app: &App, kind: AuditKind, mode: ButtonMode, how: &str) {
    app.audit(kind, None, None, Some(mode.as_str()));
    tracing::info!(mode = mode.as_str(), "button mode change {how}");
}

/// Every admin-role account but `admin`: its sessions end and it is disabled until
/// `admin` enables it again (one planted with a stolen session must not outlive the
/// owner's press).
async fn disable_other_admins(app: &App) -> Result<(), Error> {
    let data = app.data()?;
    let others: Vec<String> = data
        .accounts()
        .await?
        .into_iter()
        .filter(|a| a.role == crate::model::Role::Admin && a.username != ADMIN)
        .map(|a| a.username)
        .collect();
    for name in &others {
        data.update_account(name, |a| a.disabled = true).await?;
        crate::flows::end_sign_ins(app, name);
    }
    if !others.is_empty() {
        app.audit(
            AuditKind::AdminsDisabled,
            None,
            None,
            Some(&others.join(", ")),
        );
        tracing::warn!(accounts = %others.join(", "), "other admin accounts disabled by the credential reset");
    }
    Ok(())
}

/// The credential-only reset: the admin's password back to the label's (must change)
/// and its second factor removed, its reset tokens revoked in the same flushed write,
/// every admin session ended, all other data kept; audited, and a notice to the bound address if mail works.
pub async fn reset_admin_credentials(app: &App, source: &str) -> Result<(), Error> {
    let label = app
        .board_info()
        .map(|b| b.initial_password_hash.clone())
        .ok_or_else(|| Error::Internal("no factory data: the label password is unknown".into()))?;
    let now = app.clock().unix();
    let data = app.data()?;
    let account = data
        .update_account_revoking_tokens(ADMIN, move |a| {
            a.password_hash = label.clone();
            a.must_change_password = true;
            a.password_changed_at = now;
            // Whoever stands at the box may have lost the phone too.
            a.totp = None;
            a.new_device_generation();
        })
        .await?;
    if account.is_none() {
        return Err(Error::Internal("the admin account is missing".into()));
    }
    let ended = crate::flows::end_sign_ins(app, ADMIN);
    app.limiter().forgive_account(ADMIN);
    disable_other_admins(app).await?;
    app.audit(
        AuditKind::CredentialsReset,
        Some(ADMIN),
        None,
        Some(&format!("reset button ({source}); data kept")),
    );
    tracing::warn!(
        source,
        sessions_ended = ended,
        "admin password reset to the label password with the reset button; data kept"
    );
    if let Err(e) = crate::flows::access::clear_admin_networks(app).await {
        tracing::error!("the admin networks were not cleared: {e}");
    }
    crate::flows::alerts::raise(
        app,
        crate::model::AlertKind::CredentialsReset,
        None,
        MailJob::CredentialsReset { at: now },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::testkit::{ip, secret, TestApp, ADMIN_PW, LABEL};
    use crate::model::Role;

    #[tokio::test]
    async fn a_change_waits_for_its_press_and_lapses_after_two_minutes() {
        let t = TestApp::ready("button-mode").await;
        let app = &t.app;
        let lan = ip("192.168.1.20");
        assert_eq!(
            mode(app).await,
            ButtonMode::Credentials,
            "the config's default"
        );
        assert!(
            confirm(app).await.is_none(),
            "nothing pending: a press confirms nothing"
        );
        assert!(matches!(
            request_change(app, lan, ADMIN, secret("not the password"), ButtonMode::Off).await,
            Err(Error::InvalidCredentials { .. })
        ));
        assert!(pending(app).is_none(), "a wrong password asks for nothing");

        // Without a press the change lapses.
        request_change(app, lan, ADMIN, secret(ADMIN_PW), ButtonMode::Off)
            .await
            .expect("requested");
        assert_eq!(
            mode(app).await,
            ButtonMode::Credentials,
            "not before the press"
        );
        t.clock.advance(CONFIRM_WINDOW - Duration::from_secs(1));
        assert_eq!(state(app).await.pending.map(|p| p.expires_in_s), Some(1));
        t.clock.advance(Duration::from_secs(1));
        assert!(pending(app).is_none(), "lapsed at two minutes");
        assert!(confirm(app).await.is_none());
        assert_eq!(mode(app).await, ButtonMode::Credentials);

        // With the press within the window: stored, and used up.
        request_change(app, lan, ADMIN, secret(ADMIN_PW), ButtonMode::Mail)
            .await
            .expect("requested");
        t.clock.advance(Duration::from_secs(119));
        assert_eq!(
            confirm(app).await.expect("pending").expect("stored"),
            ButtonMode::Mail
        );
        assert_eq!(mode(app).await, ButtonMode::Mail);
        assert!(confirm(app).await.is_none(), "one press, one change");
        let events = app
            .data()
            .expect("data")
            .audit_events()
            .await
            .expect("audit");
        assert_eq!(events[0].event, "button_mode_changed");
        assert_eq!(events[0].detail.as_deref(), Some("mail"));
    }

    #[tokio::test]
    async fn the_credential_reset_puts_the_label_back_and_keeps_the_rest() {
        let t = TestApp::ready("button-credentials").await;
        let app = &t.app;
        let data = app.data().expect("data");
        data.update_account(ADMIN, |a| a.email = Some("owner@pbx.test".into()))
            .await
            .expect("email bound");
        data.blocking()
            .put_setting("smtp_marker", &"kept")
            .expect("setting");
        let mut other =
            crate::model::Account::fresh("1001".into(), Role::User, "x".into(), None, 1);
        other.must_change_password = false;
        data.blocking().put_account(&other).expect("extension");
        t.admin_token([7; 32]);
        app.sessions().create(
            crate::auth::sessions::Grant::of(ADMIN, Role::Admin),
            Default::default(),
        );
        app.sessions().create(
            crate::auth::sessions::Grant::of("1001", Role::User),
            Default::default(),
        );

        reset_admin_credentials(app, "test").await.expect("reset");
        let admin = data.account(ADMIN).await.expect("read").expect("admin");
        assert!(admin.must_change_password);
        assert_eq!(admin.email.as_deref(), Some("owner@pbx.test"), "email kept");
        assert!(crate::auth::password::verify_blocking(
            LABEL,
            &admin.password_hash
        ));
        assert_eq!(
            app.sessions().count(),
            1,
            "only the extension's session is left"
        );
        assert_eq!(data.account("1001").await.expect("read"), Some(other));
        assert_eq!(
            data.blocking()
                .setting::<String>("smtp_marker")
                .expect("read")
                .as_deref(),
            Some("kept")
        );
        assert!(
            data.token_valid([7; 32], app.clock().unix())
                .await
                .expect("read")
                .is_none(),
            "reset links of the admin revoked"
        );
        assert_eq!(
            data.audit_events().await.expect("audit")[0].event,
            "credentials_reset"
        );
    }
}
