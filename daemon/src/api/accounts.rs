//! `/api/v1/accounts`: list, create, change and delete extension accounts (admin only).

use hyper::StatusCode;

use super::call::{Call, Reply, Req};
use super::http::{self};
use crate::app::App;
use crate::flows::accounts::{self, NewAccount};
use crate::model::Account;

fn view(a: &Account, last_sign_in: Option<u64>) -> serde_json::Value {
    serde_json::json!({
        "username": a.username,
        "role": a.role.as_str(),
        "email": a.email,
        "email_confirmed": a.email_confirmed_at.is_some(),
        "must_change_password": a.must_change_password,
        "two_factor": a.two_factor(),
        "disabled": a.disabled,
        "last_sign_in": last_sign_in,
        "directory": a.directory,
        "installer": a.installer.as_ref().map(|i| serde_json::json!({
            "until": i.until,
            "by": i.by,
            "networks": i.networks,
        })),
    })
}

/// Every account, with its last sign-in from the audit trail (sign-ins are not written
/// to flash on their own).
pub async fn list(app: &App, _: Req, _: Call) -> Reply {
    let events = crate::flows::device::audit(app).await?;
    let list: Vec<_> = accounts::list(app)
        .await?
        .iter()
        .map(|a| view(a, crate::flows::device::last_sign_in(&events, &a.username)))
        .collect();
    Ok(http::json(StatusCode::OK, &list))
}

/// `PUT /accounts/{name} {password?, email?}`: a temporary password, a recovery email.
pub async fn update(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let body: accounts::AccountChange = http::read_json(req).await?;
    let by = &a.session.username;
    accounts::within_reach(app, a.session.installer, &call.tail).await?;
    let account = accounts::update(app, call.ip(), by, &call.tail, body).await?;
    Ok(http::json(StatusCode::OK, &view(&account, None)))
}

pub async fn create(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let body: NewAccount = http::read_json(req).await?;
    let account = accounts::create(app, call.ip(), &a.session.username, body).await?;
    Ok(http::json(StatusCode::CREATED, &view(&account, None)))
}

pub async fn delete(app: &App, _: Req, call: Call) -> Reply {
    let a = call.authed()?;
    accounts::within_reach(app, a.session.installer, &call.tail).await?;
    accounts::delete(app, call.ip(), &a.session.username, &call.tail).await?;
    Ok(http::no_content())
}
