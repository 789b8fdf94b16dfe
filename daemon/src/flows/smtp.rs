//! SMTP settings: validated from the form, saved (the password write-only, reused only
//! for the server it was saved for), and tried with a test mail whose outcome the
//! readiness view remembers.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::Error;
use crate::flows::recovery::LastTest;
use crate::mail::message as mail;
use crate::mail::outbox::MailJob;
use crate::mail::transport::{self as mailer, Security, SmtpSettings};
use crate::model::AuditKind;
use crate::model::ADMIN;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpForm {
    pub host: String,
    pub port: u16,
    pub security: Security,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Option<crate::auth::Secret>,
    pub from: String,
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    /// Test mail only: recipient (default: the admin's bound email).
    #[serde(default)]
    pub to: Option<String>,
    /// The acting admin's password: needed to change where mail goes (host, port,
    /// security, username, sender), since reset links and notices travel that way.
    #[serde(default)]
    pub current_password: Option<crate::auth::Secret>,
}

fn default_timeout() -> u64 {
    10
}

/// What `GET /settings/smtp` shows: never the password.
#[derive(Serialize)]
pub struct SmtpView {
    pub configured: bool,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub password_set: bool,
    pub from: String,
    pub timeout_s: u64,
}

impl SmtpView {
    fn of(s: Option<&SmtpSettings>) -> SmtpView {
        match s {
            Some(s) => SmtpView {
                configured: true,
                host: s.host.clone(),
                port: s.port,
                security: s.security,
                username: s.username.clone(),
                password_set: !s.password.is_empty(),
                from: s.from.clone(),
                timeout_s: s.timeout_s,
            },
            None => SmtpView {
                configured: false,
                host: String::new(),
                port: 587,
                security: Security::Starttls,
                username: String::new(),
                password_set: false,
                from: String::new(),
                timeout_s: 10,
            },
        }
    }
}

/// Validates the form into settings, taking the stored password when none was sent.
fn validate(form: SmtpForm, stored: Option<&SmtpSettings>) -> Result<SmtpSettings, Error> {
    let host = form.host.trim().to_string();
    if host.is_empty() || host.len() > 253 || host.contains(|c: char| c.is_whitespace() || c == '/')
    {
        return Err(Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_ENTER_THE_SMTP_SERVER_S,
        )));
    }
    if form.port == 0 {
        return Err(Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_THE_PORT_MUST_BE_BETWEEN,
        )));
    }
    if !(1..=60).contains(&form.timeout_s) {
        return Err(Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_THE_TIMEOUT_MUST_BE_BETWEEN,
        )));
    }
    if mailer::parse_address(&form.from).is_none() {
        return Err(Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_THE_SENDER_ADDRESS_IS_NOT,
        )));
    }
    if form.username.len() > 256
        || form
            .password
            .as_ref()
            .is_some_and(|p| p.expose().len() > 256)
    {
        return Err(Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_THE_USERNAME_OR_PASSWORD_IS,
        )));
    }
    let username = form.username.trim().to_string();
    // The write-only password goes only where it was saved for: the same server, port,
    // user and security. Otherwise a caller could have it sent (in clear, with
    // security "none") to a host of their choosing.
    let password = match (form.password, stored) {
        (Some(p), _) => p.expose().to_string(),
        (None, _) if username.is_empty() => String::new(),
        (None, None) => String::new(),
        (None, Some(s)) if s.password.is_empty() => String::new(),
        (None, Some(s))
            if s.host.eq_ignore_ascii_case(&host)
                && s.port == form.port
                && s.username == username
                && s.security == form.security =>
        {
            s.password.clone()
        }
        (None, Some(_)) => return Err(Error::PasswordRequired),
    };
    Ok(SmtpSettings {
        host,
        port: form.port,
        security: form.security,
        username,
        password,
        from: form.from.trim().to_string(),
        timeout_s: form.timeout_s,
    })
}

/// The stored settings as the form shows them.
pub async fn get(app: &App) -> Result<SmtpView, Error> {
    Ok(SmtpView::of(stored(app).await?.as_ref()))
}

async fn stored(app: &App) -> Result<Option<SmtpSettings>, Error> {
    Ok(app.data()?.setting::<SmtpSettings>().await?)
}

/// Whether `new` sends mail another way than `old` (no settings yet counts as another
/// way): another server, port, security, login or sender.
fn route_changes(old: Option<&SmtpSettings>, new: &SmtpSettings) -> bool {
    old.is_none_or(|o| {
        !o.host.eq_ignore_ascii_case(&new.host)
            || o.port != new.port
            || o.security != new.security
            || o.username != new.username
            || o.from != new.from
    })
}

/// Validates and saves the form (flushed). A change of where mail goes needs `by`'s
/// password (checked under the sign-in limits), is audited, and is told to the admin's
/// confirmed address through the settings it replaces.
pub async fn save(app: &App, ip: IpAddr, by: &str, mut form: SmtpForm) -> Result<SmtpView, Error> {
    let old = stored(app).await?;
    let current_password = form.current_password.take();
    let settings = validate(form, old.as_ref())?;
    let moved = route_changes(old.as_ref(), &settings);
    if moved {
        let password = current_password.ok_or(Error::CurrentPasswordRequired(
            crate::i18n::k::MSG_WHY_SMTP_ROUTE,
        ))?;
        super::login::verify_password(app, ip, by, password, None).await?;
    }
    let view = SmtpView::of(Some(&settings));
    let route = format!(
        "{}:{} ({})",
        settings.host,
        settings.port,
        settings.security.as_str()
    );
    app.data()?.save(settings).await?;
    if moved {
        app.audit(
            AuditKind::SmtpSettingsChanged,
            Some(by),
            Some(ip),
            Some(&route),
        );
        if let Some(old) = old {
            crate::flows::alerts::raise(
                app,
                crate::model::AlertKind::SmtpChanged,
                None,
                MailJob::SmtpChanged {
                    old: Box::new(old),
                    by: by.to_string(),
                    ip,
                    route: route.clone(),
                },
            );
        }
    } else {
        app.audit(
            AuditKind::SmtpSettingsSaved,
            Some(by),
            Some(ip),
            Some(&route),
        );
    }
    tracing::info!(user = %by, moved, "SMTP settings saved");
    Ok(view)
}

/// The outcome of a test mail: `{ok: true}` or `{ok: false, stage, message, detail}`
/// (the API says `message` in the reader's language).
#[derive(Debug)]
pub struct TestOutcome {
    pub ok: bool,
    pub error: Option<mailer::MailError>,
}

/// Sends a test mail with the form's (unsaved) values, within `timeout_s` + 1 s.
pub async fn test(app: &App, ip: IpAddr, by: &str, form: SmtpForm) -> Result<TestOutcome, Error> {
    let data = app.data()?;
    let to_text = match form.to.clone().filter(|t| !t.trim().is_empty()) {
        Some(t) => t,
        None => data
            .account(ADMIN)
            .await?
            .and_then(|a| a.email)
            .ok_or_else(|| {
                Error::InvalidRequest(crate::i18n::Msg::new(
                    crate::i18n::k::MSG_ENTER_A_RECIPIENT_OR_BIND,
                ))
            })?,
    };
    let to = mailer::parse_address(&to_text).ok_or_else(|| {
        Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_THE_RECIPIENT_IS_NOT_A,
        ))
    })?;
    let settings = validate(form, stored(app).await?.as_ref())?;
    let from = mailer::parse_address(&settings.from).ok_or_else(|| {
        Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_THE_SENDER_ADDRESS_IS_NOT_2,
        ))
    })?;
    let lang = crate::flows::recovery::mail_lang(app, by).await;
    let head = crate::flows::recovery::head(app, from, to, lang);
    let msg = mail::test_mail(&head, app.clock().unix()).map_err(|e| {
        Error::InvalidRequest(
            crate::i18n::Msg::new(crate::i18n::k::MSG_TEST_MAIL_UNBUILT).arg("detail", e),
        )
    })?;
    let result = mailer::send_smtp(&settings, msg).await;
    let at = app.clock().unix();
    let (outcome, record) = match &result {
        Ok(()) => (
            TestOutcome {
                ok: true,
                error: None,
            },
            LastTest {
                ok: true,
                at,
                stage: None,
            },
        ),
        Err(e) => (
            TestOutcome {
                ok: false,
                error: Some(e.clone()),
            },
            LastTest {
                ok: false,
                at,
                stage: Some(e.stage),
            },
        ),
    };
    let detail = format!(
        "{}:{} to {}: {}",
        settings.host,
        settings.port,
        to_text,
        if result.is_ok() { "sent" } else { "failed" }
    );
    app.audit(AuditKind::SmtpTestSent, Some(by), Some(ip), Some(&detail));
    match &result {
        Ok(()) => tracing::info!(host = %settings.host, "test mail sent"),
        Err(e) => {
            tracing::warn!(host = %settings.host, stage = ?e.stage, "test mail failed: {}", e.message)
        }
    }
    data.save(record).await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::testkit::{ip, secret, TestApp};

    fn form(host: &str, port: u16, password: Option<&str>) -> SmtpForm {
        SmtpForm {
            host: host.into(),
            port,
            security: Security::Starttls,
            username: "pbx".into(),
            password: password.map(secret),
            from: "pbx@pbx.test".into(),
            timeout_s: 5,
            to: None,
            current_password: Some(secret(crate::flows::testkit::ADMIN_PW)),
        }
    }

    #[tokio::test]
    async fn the_stored_password_is_reused_only_for_its_own_server() {
        let t = TestApp::ready("flow-smtp").await;
        let app = &t.app;
        let view = save(
            app,
            ip("192.0.2.1"),
            "admin",
            form("mail.pbx.test", 587, Some("smtp-secret-1")),
        )
        .await
        .expect("saved");
        assert!(view.password_set);
        // Same server, user and security: kept.
        save(
            app,
            ip("192.0.2.1"),
            "admin",
            form("MAIL.pbx.test", 587, None),
        )
        .await
        .expect("kept");
        let stored = app
            .data()
            .expect("data")
            .blocking()
            .setting::<SmtpSettings>(<SmtpSettings as crate::store::Setting>::KEY)
            .expect("read")
            .expect("set");
        assert_eq!(stored.password, "smtp-secret-1");
        // Another host or port: the password must be typed again.
        for f in [
            form("evil.example", 587, None),
            form("mail.pbx.test", 25, None),
        ] {
            assert!(matches!(
                save(app, ip("192.0.2.1"), "admin", f).await,
                Err(Error::PasswordRequired)
            ));
        }
        let shown = serde_json::to_string(&get(app).await.expect("view")).expect("json");
        assert!(!shown.contains("smtp-secret-1"), "{shown}");
    }
}
