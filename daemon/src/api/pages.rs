//! The embedded web UI (plain HTML/CSS/JS, no build step), `/healthz`, and the
//! recovery-readiness view the dashboard banner reads.

use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use std::sync::Arc;

use super::call::{Call, Reply, Req};
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

pub(super) const LOGIN: &str = web_page!("login.html");
pub(super) const DASHBOARD: &str = web_page!("index.html");
pub(super) const PROFILE: &str = web_page!("profile.html");
pub(super) const SETTINGS_EMAIL: &str = web_page!("settings-email.html");
pub(super) const FACTORY_RESET: &str = web_page!("factory-reset.html");
pub(super) const ACCOUNTS: &str = web_page!("accounts.html");
pub(super) const SESSIONS: &str = web_page!("sessions.html");
pub(super) const AUDIT: &str = web_page!("audit.html");
pub(super) const DEVICE: &str = web_page!("device.html");
const DEGRADED: &str = web_page!("degraded.html");
const DEGRADED_FULL: &str = web_page!("degraded-full.html");
const DEGRADED_NEWER: &str = web_page!("degraded-newer.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");

/// Who may see a page of the web UI. A box that cannot sign anyone in shows its
/// degraded page instead of any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The sign-in page.
    Anyone,
    /// Signed in, even with a forced change pending: the page where it is done.
    Pending,
    /// Signed in, nothing pending (else the profile page, where it is).
    SignedIn,
    /// [`Need::SignedIn`] as an administrator (else the dashboard).
    Admin,
}

/// What a caller gets instead of a page they may not see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instead {
    /// The box cannot sign anyone in: the degraded page for why.
    Degraded(&'static str),
    /// To sign in, to the forced change, or to the dashboard.
    Redirect(&'static str),
}

impl Instead {
    pub fn response(self) -> Response<Body> {
        match self {
            Instead::Degraded(page) => http::html(StatusCode::SERVICE_UNAVAILABLE, page),
            Instead::Redirect(to) => http::redirect(to),
        }
    }
}

/// Whether the caller may see a page that needs `need`.
pub fn admit(app: &App, headers: &hyper::HeaderMap, need: Need) -> Result<(), Instead> {
    match &app.health() {
        Health::Degraded(why) => {
            return Err(Instead::Degraded(match why {
                Reason::FlashFull => DEGRADED_FULL,
                // A factory reset would erase what the newer firmware can still read.
                Reason::NewerFormat(_) => DEGRADED_NEWER,
                _ => DEGRADED,
            }));
        }
        Health::Ok => {}
    }
    if need == Need::Anyone {
        return Ok(());
    }
    let a = super::guard::authed(app, headers).map_err(|_| Instead::Redirect("/login"))?;
    let pending = a.session.must_change_password || a.session.must_enroll_2fa;
    if pending && need != Need::Pending {
        return Err(Instead::Redirect("/profile"));
    }
    if need == Need::Admin && a.session.role != Role::Admin {
        return Err(Instead::Redirect("/"));
    }
    Ok(())
}

pub fn serve(page: &'static str) -> Response<Body> {
    http::html(StatusCode::OK, page)
}

pub fn healthz(app: &Arc<App>, _: &Req, _: Call) -> Reply {
    Ok(match &app.health() {
        // Still 200 (the box signs in), but said: phone codes cannot be checked.
        Health::Ok => match app.time().unset() {
            None => http::response(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
            Some(u) => http::response(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                format!(
                    "ok; clock unset: it reads {}, before {} (the newest time this box has seen)\n",
                    crate::clock::format_utc(u.reads),
                    crate::clock::format_utc(u.floor)
                ),
            ),
        },
        Health::Degraded(why) => http::response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            format!("degraded: {why}\n"),
        ),
    })
}

pub fn app_js(_: &Arc<App>, _: &Req, _: Call) -> Reply {
    Ok(asset("text/javascript; charset=utf-8", APP_JS))
}

pub fn style_css(_: &Arc<App>, _: &Req, _: Call) -> Reply {
    Ok(asset("text/css; charset=utf-8", STYLE_CSS))
}

fn asset(content_type: &'static str, body: &'static str) -> Response<Body> {
    http::response(
        StatusCode::OK,
        content_type,
        Bytes::from_static(body.as_bytes()),
    )
}
