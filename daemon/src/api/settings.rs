//! `/api/v1/settings/smtp` (+ `/test`) and `/api/v1/profile`.

use hyper::StatusCode;

use super::call::{Call, Reply, Req};
use super::http::{self};
use crate::app::App;
use crate::flows::profile::{self, ProfileForm};
use crate::flows::smtp::{self, SmtpForm};

pub async fn smtp_get(app: &App, _: Req, _: Call) -> Reply {
    Ok(http::json(StatusCode::OK, &smtp::get(app).await?))
}

pub async fn smtp_put(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let form: SmtpForm = http::read_json(req).await?;
    let view = smtp::save(app, call.ip(), &a.session.username, form).await?;
    Ok(http::json(StatusCode::OK, &view))
}

pub async fn smtp_test(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let form: SmtpForm = http::read_json(req).await?;
    let outcome = smtp::test(app, call.ip(), &a.session.username, form).await?;
    Ok(http::json(StatusCode::OK, &outcome))
}

pub async fn profile_get(app: &App, _: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let (username, email, two_factor) = profile::get(app, &a.session.username).await?;
    Ok(http::json(
        StatusCode::OK,
        &serde_json::json!({ "username": username, "email": email, "two_factor": two_factor }),
    ))
}

pub async fn profile_put(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let form: ProfileForm = http::read_json(req).await?;
    let email = profile::set_email(app, call.ip(), &a.session.username, form).await?;
    Ok(http::json(
        StatusCode::OK,
        &serde_json::json!({ "username": &*a.session.username, "email": email }),
    ))
}
