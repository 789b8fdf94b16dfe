//! One match from (method, path) to a handler. Unknown paths are 404, known paths with
//! the wrong method 405 with `Allow`.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use crate::app::App;
use crate::error::Error;
use crate::handlers::{login, pages};
use crate::http::{self, Body, Ctx};

pub async fn route(app: Arc<App>, ctx: Ctx, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let is_api = path.starts_with("/api/");
    let result = dispatch(&app, ctx, req, &path).await;
    match result {
        Ok(r) => r,
        Err(e) if !is_api && matches!(e, Error::NotFound) => {
            http::response(e.status(), "text/plain; charset=utf-8", "Not found.\n")
        }
        Err(e) => http::error_response(&e),
    }
}

async fn dispatch(
    app: &App,
    ctx: Ctx,
    req: Request<Incoming>,
    path: &str,
) -> Result<Response<Body>, Error> {
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    let post = req.method() == Method::POST;
    match path {
        "/healthz" if get => Ok(pages::healthz(app)),
        "/" | "/login" | "/profile" if get => Ok(pages::page(app, &req, path)),
        "/static/app.js" | "/static/style.css" if get => pages::asset(path).ok_or(Error::NotFound),
        "/api/v1/login" if post => login::login_handler(app, ctx, req).await,
        "/api/v1/logout" if post => login::logout_handler(app, ctx, &req),
        "/api/v1/session" if get => login::session_handler(app, &req),
        "/api/v1/password" if post => login::password_handler(app, ctx, req).await,
        "/api/v1/recovery" if get => pages::recovery(app),
        "/healthz" | "/" | "/login" | "/profile" | "/static/app.js" | "/static/style.css"
        | "/api/v1/session" | "/api/v1/recovery" => {
            Err(Error::MethodNotAllowed { allow: "GET, HEAD" })
        }
        "/api/v1/login" | "/api/v1/logout" | "/api/v1/password" => {
            Err(Error::MethodNotAllowed { allow: "POST" })
        }
        _ => Err(Error::NotFound),
    }
}
