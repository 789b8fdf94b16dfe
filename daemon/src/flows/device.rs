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
pub fn audit(app: &App) -> Result<Vec<AuditEvent>, Error> {
    Ok(app.data()?.audit_events()?)
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
