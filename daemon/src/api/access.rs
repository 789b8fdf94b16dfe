//! `/api/v1/settings/access` (+ `/confirm`) and `/api/v1/installers`: who may reach the
//! admin, the change on probation, installer accounts (spec §10).

use hyper::StatusCode;

use super::call::{Call, Reply, Req};
use super::http;
use crate::app::App;
use crate::flows::access::{self, AccessUpdate};
use crate::flows::installers::{self, NewInstaller};

pub async fn get(app: &App, _: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let view = access::view(app, a.session.created(), call.ip()).await?;
    Ok(http::json(StatusCode::OK, &view))
}

pub async fn put(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let body: AccessUpdate = http::read_json(req).await?;
    let view = access::update(
        app,
        &a.session.username,
        call.ip(),
        a.session.created(),
        body,
    )
    .await?;
    Ok(http::json(StatusCode::OK, &view))
}

pub async fn confirm(app: &App, _: Req, call: Call) -> Reply {
    let a = call.authed()?;
    access::confirm(app, &a.session.username, call.ip(), a.session.created()).await?;
    Ok(http::no_content())
}

pub async fn issue(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let body: NewInstaller = http::read_json(req).await?;
    let issued = installers::issue(app, call.ip(), &a.session.username, body).await?;
    Ok(http::json(StatusCode::CREATED, &issued))
}

pub async fn end(app: &App, _: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let by = format!("ended early by {}", a.session.username);
    installers::end(app, Some(call.ip()), &by, &call.tail).await?;
    Ok(http::no_content())
}
