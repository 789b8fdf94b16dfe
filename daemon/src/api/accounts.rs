//! `/api/v1/accounts`: list, create and delete extension accounts (admin only).

use hyper::body::Incoming;
use hyper::HeaderMap;
use hyper::{Request, Response, StatusCode};

use super::guard;
use super::http::{self, Body};
use crate::app::App;
use crate::error::Error;
use crate::flows::accounts::{self, NewAccount};
use crate::model::Account;

fn view(a: &Account) -> serde_json::Value {
    serde_json::json!({
        "username": a.username,
        "role": a.role.as_str(),
        "email": a.email,
        "must_change_password": a.must_change_password,
    })
}

pub async fn list(app: &App, headers: &HeaderMap) -> Result<Response<Body>, Error> {
    guard::admin_read(app, headers)?;
    let list: Vec<_> = accounts::list(app).await?.iter().map(view).collect();
    Ok(http::json(StatusCode::OK, &list))
}

pub async fn create(app: &App, req: Request<Incoming>) -> Result<Response<Body>, Error> {
    let a = guard::admin(app, req.headers())?;
    let body: NewAccount = http::read_json(req).await?;
    let account = accounts::create(app, &a.session.username, body).await?;
    Ok(http::json(StatusCode::CREATED, &view(&account)))
}

pub async fn delete(
    app: &App,
    req: Request<Incoming>,
    username: &str,
) -> Result<Response<Body>, Error> {
    let a = guard::admin(app, req.headers())?;
    accounts::delete(app, &a.session.username, username).await?;
    Ok(http::no_content())
}
