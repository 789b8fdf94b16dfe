//! The embedded web UI (plain HTML/CSS/JS, no build step), `/healthz`, and the
//! recovery-readiness view the dashboard banner reads.

use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::http::{self, Body};
use crate::app::App;
use crate::model::Role;
use crate::model::{Health, Reason};

/// A page of the web UI: the head every page shares (`web/head.html`), then the page's
/// own file from its `<title>` on, joined at compile time.
macro_rules! web_page {
    ($file:literal) => {
        concat!(
            include_str!("../web/head.html"),
            include_str!(concat!("../web/", $file))
        )
    };
}
pub(crate) use web_page;

const LOGIN: &str = web_page!("login.html");
const DASHBOARD: &str = web_page!("index.html");
const PROFILE: &str = web_page!("profile.html");
const SETTINGS_EMAIL: &str = web_page!("settings-email.html");
const FACTORY_RESET: &str = web_page!("factory-reset.html");
const ACCOUNTS: &str = web_page!("accounts.html");
const SESSIONS: &str = web_page!("sessions.html");
const AUDIT: &str = web_page!("audit.html");
const DEVICE: &str = web_page!("device.html");
const DEGRADED: &str = web_page!("degraded.html");
const DEGRADED_FULL: &str = web_page!("degraded-full.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

pub fn healthz(app: &App) -> Response<Body> {
    match &app.health() {
        Health::Ok => http::response(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
        Health::Degraded(why) => http::response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            format!("degraded: {why}\n"),
        ),
    }
}

pub fn asset(path: &str) -> Option<Response<Body>> {
    let (ct, body) = match path {
        "/static/app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "/static/style.css" => ("text/css; charset=utf-8", STYLE_CSS),
        _ => return None,
    };
    Some(http::response(
        StatusCode::OK,
        ct,
        Bytes::from_static(body.as_bytes()),
    ))
}

/// A page that needs a signed-in user; without one, the login page.
pub fn page(app: &App, req: &Request<Incoming>, path: &str) -> Response<Body> {
    match &app.health() {
        Health::Degraded(Reason::FlashFull) => {
            return http::html(StatusCode::SERVICE_UNAVAILABLE, DEGRADED_FULL)
        }
        Health::Degraded(_) => return http::html(StatusCode::SERVICE_UNAVAILABLE, DEGRADED),
        Health::Ok => {}
    }
    match path {
        "/login" => http::html(StatusCode::OK, LOGIN),
        _ => match super::guard::authed(app, req.headers()) {
            Err(_) => http::redirect("/login"),
            Ok(a)
                if (a.session.must_change_password || a.session.must_enroll_2fa)
                    && path != "/profile" =>
            {
                http::redirect("/profile")
            }
            Ok(_) if path == "/profile" => http::html(StatusCode::OK, PROFILE),
            Ok(_) if path == "/sessions" => http::html(StatusCode::OK, SESSIONS),
            Ok(a) if path != "/" && a.session.role != Role::Admin => http::redirect("/"),
            Ok(_) if path == "/settings/email" => http::html(StatusCode::OK, SETTINGS_EMAIL),
            Ok(_) if path == "/factory-reset" => http::html(StatusCode::OK, FACTORY_RESET),
            Ok(_) if path == "/accounts" => http::html(StatusCode::OK, ACCOUNTS),
            Ok(_) if path == "/audit" => http::html(StatusCode::OK, AUDIT),
            Ok(_) if path == "/device" => http::html(StatusCode::OK, DEVICE),
            Ok(_) => http::html(StatusCode::OK, DASHBOARD),
        },
    }
}
