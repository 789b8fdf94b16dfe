//! `GET /audit` and `POST /factory-reset`.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::HeaderMap;
use hyper::{Request, Response, StatusCode};

use super::guard;
use super::http::{self, Body, Ctx};
use crate::app::App;
use crate::error::Error;
use crate::flows::device::{self, FactoryResetRequest};

pub async fn audit(app: &App, headers: &HeaderMap) -> Result<Response<Body>, Error> {
    guard::admin_read(app, headers)?;
    Ok(http::json(StatusCode::OK, &device::audit(app).await?))
}

/// 202 and the erase runs; the box reboots when it is done.
pub async fn factory_reset(
    app: &Arc<App>,
    ctx: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Body>, Error> {
    let a = guard::admin(app, req.headers())?;
    let body: FactoryResetRequest = http::read_json(req).await?;
    let started = device::factory_reset(app, ctx.peer.ip(), &a.session.username, body).await?;
    Ok(http::json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "erasing": true, "started": started }),
    ))
}
