//! The device's own flows: the audit trail, and the factory reset asked for from the web
//! (the admin's password again — counted like a sign-in — and the word ERASE).

use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;

use crate::app::App;
use crate::auth::Secret;
use crate::error::Error;
use crate::model::AuditEvent;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactoryResetRequest {
    pub password: Secret,
    pub confirm: String,
}

/// Audit events, newest first.
pub async fn audit(app: &App) -> Result<Vec<AuditEvent>, Error> {
    Ok(app.data()?.audit_events().await?)
}

/// Which audit events to show: by event name and by user (exact), and by text found
/// anywhere in the event (its name, user, address or detail; any case, `_` matching a
/// space: `failed` finds every failure); empty = all.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub event: Option<String>,
    pub user: Option<String>,
    pub text: Option<String>,
}

impl AuditFilter {
    fn text_matches(&self, e: &AuditEvent) -> bool {
        let Some(want) = self
            .text
            .as_deref()
            .map(|t| t.trim().to_lowercase().replace('_', " "))
        else {
            return true;
        };
        [
            Some(e.event.as_str()),
            e.username.as_deref(),
            e.ip.as_deref(),
            e.detail.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|f| f.to_lowercase().replace('_', " ").contains(&want))
    }
}

/// The events that pass `f`, newest first.
pub async fn audit_filtered(app: &App, f: &AuditFilter) -> Result<Vec<AuditEvent>, Error> {
    let all = audit(app).await?;
    Ok(all
        .into_iter()
        .filter(|e| f.event.as_deref().is_none_or(|x| e.event == x))
        .filter(|e| {
            f.user
                .as_deref()
                .is_none_or(|u| e.username.as_deref() == Some(u))
        })
        .filter(|e| f.text_matches(e))
        .collect())
}

/// Audit events as CSV (RFC 4180), newest first. A cell that a spreadsheet would read
/// as a formula (`=`, `+`, `-`, `@` first, after any spaces) is prefixed with `'`:
/// usernames come from whoever typed at the login form.
pub fn audit_csv(events: &[AuditEvent]) -> String {
    fn cell(v: &str) -> String {
        // After leading spaces too: spreadsheets skip them (" =cmd|' /C calc'!A0").
        let first = v.trim_start_matches([' ', '\u{a0}']);
        let v =
            if v.starts_with(['\t', '\r']) || first.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{v}")
            } else {
                v.to_string()
            };
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v
        }
    }
    let mut out = String::from("at,time_utc,event,username,ip,detail\r\n");
    for e in events {
        let row = [
            e.at.to_string(),
            crate::mail::message::format_utc(e.at),
            e.event.clone(),
            e.username.clone().unwrap_or_default(),
            e.ip.clone().unwrap_or_default(),
            e.detail.clone().unwrap_or_default(),
        ];
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Unix time of `username`'s newest sign-in in the audit trail (`events`: newest first).
pub fn last_sign_in(events: &[AuditEvent], username: &str) -> Option<u64> {
    events
        .iter()
        .find(|e| {
            e.event == crate::model::AuditKind::Login.name()
                && e.username.as_deref() == Some(username)
        })
        .map(|e| e.at)
}

/// What the Device page shows.
#[derive(serde::Serialize)]
pub struct DeviceInfo {
    pub model: Option<String>,
    pub serial: Option<String>,
    pub mac: Option<String>,
    pub firmware_version: &'static str,
    pub firmware_build: &'static str,
    pub uptime_s: u64,
    pub data_db_bytes: Option<u64>,
    pub recovery: Option<serde_json::Value>,
    /// Remote syslog: whether on, lines sent and dropped.
    pub syslog: serde_json::Value,
}

pub async fn info(app: &App) -> DeviceInfo {
    let b = app.board_info();
    let dir = app.config().storage.data_db.clone();
    let bytes = tokio::task::spawn_blocking(move || crate::fsutil::tree_size(&dir))
        .await
        .ok()
        .flatten();
    DeviceInfo {
        model: b.map(|b| b.model.clone()),
        serial: b.map(|b| b.serial.clone()),
        mac: b.map(|b| b.mac.clone()),
        firmware_version: env!("CARGO_PKG_VERSION"),
        firmware_build: env!("PBX_GIT_DESCRIBE"),
        uptime_s: app.clock().unix().saturating_sub(app.started_at()),
        data_db_bytes: bytes,
        recovery: super::recovery::readiness_for(app, Some(crate::model::Role::Admin))
            .await
            .ok(),
        syslog: {
            use std::sync::atomic::Ordering::Relaxed;
            let st = &app.syslog().stats;
            serde_json::json!({
                "enabled": app.syslog().enabled(),
                "sent": st.sent.load(Relaxed),
                "dropped": st.dropped.load(Relaxed),
            })
        },
    }
}

/// Checks the request, then starts the erase (the box reboots when it is done).
/// Returns false when an erase was already under way.
pub async fn factory_reset(
    app: &Arc<App>,
    ip: IpAddr,
    username: &str,
    body: FactoryResetRequest,
) -> Result<bool, Error> {
    if body.confirm != "ERASE" {
        return Err(Error::InvalidRequest(crate::i18n::Msg::new(
            crate::i18n::k::MSG_TYPE_ERASE_IN_CAPITALS_TO,
        )));
    }
    // A wrong password here counts like a failed sign-in.
    super::login::verify_password(app, ip, username, body.password, None).await?;
    // Mailed before the erase starts: the erase takes the mail settings with it.
    let args = vec![("by", username.to_string()), ("ip", ip.to_string())];
    let kind = crate::model::AlertKind::FactoryResetRequested;
    let cap = app.config().access.alerts_per_hour;
    if app
        .outbox()
        .alerts()
        .admit(kind.name(), None, None, app.clock().mono(), cap)
        == crate::mail::outbox::Verdict::Send
    {
        let send = super::recovery::worker::send_alert(app, kind, None, &args);
        if tokio::time::timeout(std::time::Duration::from_secs(15), send)
            .await
            .is_err()
        {
            tracing::warn!("the factory-reset alert did not go out within 15 s");
        }
    }
    Ok(crate::factory_reset::start(
        app,
        &format!("web UI by {username}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::testkit::{ip, secret, TestApp};

    /// (The correct password would start a real erase and reboot the simulated board:
    /// the e2e suite covers that path with the daemon binary.)
    #[tokio::test]
    async fn the_web_reset_wants_erase_and_counts_wrong_passwords_like_sign_ins() {
        let t = TestApp::ready("flow-device").await;
        let a = ip("192.0.2.11");
        let ask = |confirm: &str, password: &str| FactoryResetRequest {
            password: secret(password),
            confirm: confirm.into(),
        };
        assert!(matches!(
            factory_reset(&t.app, a, "admin", ask("erase", "whatever")).await,
            Err(Error::InvalidRequest(_))
        ));
        for _ in 0..4 {
            assert!(matches!(
                factory_reset(&t.app, a, "admin", ask("ERASE", "guess-guess")).await,
                Err(Error::InvalidCredentials { .. })
            ));
        }
        assert!(matches!(
            factory_reset(&t.app, a, "admin", ask("ERASE", "guess-guess")).await,
            Err(Error::Locked { .. })
        ));
        assert!(!t.app.is_resetting());
        let events = audit(&t.app).await.expect("audit");
        assert_eq!(events[0].event, "login_locked", "newest first");
    }

    /// One state: an erase in progress refuses a second; one that failed degrades the box
    /// with the reason (sign-in off) and lets a new reset be tried.
    #[tokio::test]
    async fn the_lifecycle_goes_serving_resetting_degraded_and_back_to_resetting() {
        use crate::model::{Health, Lifecycle, Reason};
        let t = TestApp::ready("flow-lifecycle").await;
        assert_eq!(t.app.lifecycle(), Lifecycle::Serving);
        assert!(t.app.begin_reset());
        assert!(
            !t.app.begin_reset(),
            "a second erase is refused while one runs"
        );
        assert!(t.app.is_resetting());
        t.app.reset_failed("the flash said no".into());
        assert_eq!(
            t.app.health(),
            Health::Degraded(Reason::ResetFailed("the flash said no".into()))
        );
        assert!(
            matches!(t.app.data(), Err(Error::Degraded(_))),
            "sign-in is off"
        );
        assert!(t.app.begin_reset(), "a new reset may be tried");
    }

    /// After a rollback to this firmware: the data DB of a newer one starts the box
    /// degraded with both formats named and the way out (not a factory reset), its page
    /// too; the label password does not sign in.
    #[tokio::test]
    async fn a_newer_firmwares_data_degrades_the_box_with_the_reason_and_no_label_password() {
        use crate::model::{Health, Reason};
        let t = TestApp::with_data("flow-newer-format", |db| {
            db.put_setting("format", &(crate::store::FORMAT + 1))
                .expect("a newer firmware's format");
        });
        let Health::Degraded(why @ Reason::NewerFormat(_)) = t.app.health() else {
            panic!("{:?}", t.app.health());
        };
        let text = why.to_string();
        assert!(
            text.starts_with(&format!(
                "the user data was written by a newer firmware, format {}; this firmware reads \
                 up to format {}: install that firmware again",
                crate::store::FORMAT + 1,
                crate::store::FORMAT
            )) && text.contains("a factory reset would erase it"),
            "{text}"
        );
        assert!(
            matches!(t.app.data(), Err(Error::Degraded(_))),
            "sign-in is off"
        );
        let req = crate::flows::login::LoginRequest {
            username: "admin".into(),
            password: secret(crate::flows::testkit::LABEL),
        };
        assert!(
            crate::flows::login::login(&t.app, ip("192.0.2.12"), req, None, "")
                .await
                .is_err()
        );
    }
}
