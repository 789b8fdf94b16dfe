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
    Ok(app.data()?.run(|d| d.audit_events()).await?)
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
        return Err(Error::InvalidRequest(
            "Type ERASE (in capitals) to confirm that all settings and data will be erased.".into(),
        ));
    }
    // A wrong password here counts like a failed sign-in.
    super::login::verify_password(app, ip, username, body.password, None).await?;
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
}
