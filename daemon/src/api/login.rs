//! Sign-in over HTTP: `POST /login` (session and device cookies), `/logout`,
//! `GET /session`, `POST /password`. Decode, call [`crate::flows::login`], encode.

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};

use super::http::{self, Body, Ctx};
use crate::app::App;
use crate::auth::device;
use crate::error::Error;
use crate::flows::login::{self, LoginRequest, PasswordRequest};

pub async fn post_login(
    app: &App,
    ctx: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Body>, Error> {
    let device = http::cookie(req.headers(), device::COOKIE).map(str::to_string);
    let body: LoginRequest = http::read_json(req).await?;
    let done = login::login(app, ctx.peer.ip(), body, device.as_deref()).await?;
    let mut r = http::json_bytes(StatusCode::OK, done.new.session.view.clone());
    http::set_session_cookie(&mut r, &done.new.id, ctx.https);
    if let Some(c) = done.device_cookie {
        http::set_device_cookie(&mut r, &c, ctx.https);
    }
    Ok(r)
}

pub fn post_logout(app: &App, ctx: Ctx, req: &Request<Incoming>) -> Result<Response<Body>, Error> {
    let a = super::guard::authed_csrf(app, req.headers())?;
    app.sessions().remove_key(&a.key);
    let mut r = http::no_content();
    http::clear_session_cookie(&mut r, ctx.https);
    Ok(r)
}

pub fn get_session(app: &App, req: &Request<Incoming>) -> Result<Response<Body>, Error> {
    let a = super::guard::authed(app, req.headers())?;
    Ok(http::json_bytes(StatusCode::OK, a.session.view.clone()))
}

pub async fn post_password(
    app: &App,
    ctx: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Body>, Error> {
    let a = super::guard::authed_csrf(app, req.headers())?;
    let body: PasswordRequest = http::read_json(req).await?;
    let ended = login::change_password(app, ctx.peer.ip(), &a.session, body).await?;
    let mut r = http::no_content();
    // 204 has no body: the headers tell the UI that this session is gone too.
    r.headers_mut()
        .insert("x-pbx-sessions-ended", HeaderValue::from(ended));
    http::clear_session_cookie(&mut r, ctx.https);
    Ok(r)
}
