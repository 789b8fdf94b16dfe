//! The audit trail and the factory reset from the web UI.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;

use crate::app::App;
use crate::auth::Secret;
use crate::error::Error;
use crate::http::{self, Body, Ctx};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactoryResetRequest {
    pub password: Secret,
    pub confirm: String,
}

pub fn audit(app: &App, req: &Request<Incoming>) -> Result<Response<Body>, Error> {
    super::admin_read(app, req.headers())?;
    let events = app.data()?.audit_events()?;
    Ok(http::json(StatusCode::OK, &events))
}

/// `POST /factory-reset`: the admin's password again and the word ERASE, then 202 and
/// the erase runs; the box reboots when it is done.
pub async fn factory_reset(
    app: &Arc<App>,
    ctx: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Body>, Error> {
    let a = super::admin(app, req.headers())?;
    let body: FactoryResetRequest = http::read_json(req).await?;
    if body.confirm != "ERASE" {
        return Err(Error::InvalidRequest(
            "Type ERASE (in capitals) to confirm that all settings and data will be erased.".into(),
        ));
    }
    // A wrong password here counts like a failed sign-in.
    super::login::verify_password(app, ctx.peer.ip(), &a.session.username, body.password, None)
        .await?;
    let started = crate::factory_reset::start(app, &format!("web UI by {}", a.session.username));
    Ok(http::json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "erasing": true, "started": started }),
    ))
}
