//! The only layer that knows HTTP. A request walks one way: [`route`] (Host check, one
//! match from method and path) → the flow's file here, which decodes the body and checks
//! the caller ([`guard`]) → `crate::flows::<flow>` (the rules) → back as a value, which
//! the file here encodes ([`http`]). Unknown paths are 404, known paths with the wrong
//! method 405 with `Allow`.
//!
//! - [`http`]: bodies (content type, size, deadline), responses, security headers, cookies.
//! - [`guard`]: session, CSRF, forced change, admin.
//! - [`login`] (and the second factor), [`accounts`], [`sessions`], [`settings`] (SMTP,
//!   profile), [`recovery`], [`device`],
//!   [`pages`] (the embedded web UI and `/healthz`).

pub mod accounts;
pub mod device;
pub mod guard;
pub mod http;
pub mod login;
pub mod pages;
pub mod recovery;
pub mod sessions;
pub mod settings;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use crate::app::App;
use crate::error::Error;
use http::{Body, Ctx};

/// The answer to one request: the page path and every other handler that does not wait
/// answers at once (no state machine built, moved and polled for it: that was a third
/// of the page path's instructions); a handler that awaits (flash, hashing, mail) is
/// boxed, and the server waits for it.
pub fn route(app: &Arc<App>, ctx: Ctx, req: Request<Incoming>) -> Routed {
    let is_api = req.uri().path().starts_with("/api/");
    match dispatch(app, ctx, req) {
        Step::Done(result) => Routed::Ready(answer(result, is_api)),
        Step::Wait(handler) => Routed::Waiting(Pending { handler, is_api }),
    }
}

/// See [`route`].
pub enum Routed {
    Ready(Response<Body>),
    Waiting(Pending),
}

/// A handler at work, for the request of a page or of the API.
pub struct Pending {
    handler: Handler,
    is_api: bool,
}

impl Pending {
    pub async fn answer(self) -> Response<Body> {
        answer(self.handler.await, self.is_api)
    }
}

/// The response for a handler's result: errors as JSON under `/api/`, as text for pages.
fn answer(result: Result<Response<Body>, Error>, is_api: bool) -> Response<Body> {
    match result {
        Ok(r) => r,
        Err(e) if !is_api && matches!(e, Error::NotFound | Error::Misdirected) => http::response(
            e.status(),
            "text/plain; charset=utf-8",
            format!("{}\n", e.message()),
        ),
        Err(e) => http::error_response(&e),
    }
}

/// The DNS-rebinding defence (spec §4): a page of another site whose name was rebound
/// to this box's address makes the browser send that site's name as Host. Only names
/// this box answers to pass: IP literals, `localhost`, the device's hostname, the host
/// of `public_url` and `server.allowed_hosts`. A request without Host (HTTP/1.0 tools)
/// cannot come from such a page and passes.
fn host_allowed(app: &App, headers: &hyper::HeaderMap) -> bool {
    let Some(host) = headers.get(hyper::header::HOST) else {
        return true;
    };
    // An IPv4 literal (the page path's common case) is told from its bytes alone.
    if http::is_ipv4_host(host.as_bytes()) {
        return true;
    }
    let Ok(host) = host.to_str() else {
        return false;
    };
    http::host_is_ours(host, []) || host_is_configured(app, host)
}

/// The names from the config and the device: the rare case, kept out of line.
#[cold]
#[inline(never)]
fn host_is_configured(app: &App, host: &str) -> bool {
    let config = app.config();
    let public = config.public_host();
    http::host_is_ours(
        host,
        [app.hostname(), public.as_deref().unwrap_or_default()]
            .into_iter()
            .chain(config.server.allowed_hosts.iter().map(String::as_str)),
    )
}

/// A handler that awaits (flash, hashing, mail), boxed and behind `dyn`: boxed, so that
/// the page path's answer stays small; behind `dyn`, so that no handler's state machine
/// is inlined into the code that polls it (hyper's dispatch loop at opt-level 3 did:
/// +37 KB for issue 12's five handlers alone, measured with `nm` on the x86_64
/// firmware). It owns what it needs (the app, the request).
pub type Handler = Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send>>;

/// What [`dispatch`] found: the answer, or the handler to wait for.
enum Step {
    Done(Result<Response<Body>, Error>),
    Wait(Handler),
}

/// `wait!(app => handler(&app, ...))` returns the handler's future from [`dispatch`],
/// boxed, with its own reference to the app.
macro_rules! wait {
    ($app:ident => $call:expr) => {{
        let $app = Arc::clone($app);
        return Step::Wait(Box::pin(async move { $call.await }));
    }};
}

/// One match from method and path; the handlers that await go through [`wait!`].
fn dispatch(app: &Arc<App>, ctx: Ctx, req: Request<Incoming>) -> Step {
    let path = req.uri().path();
    // Before anything else. Cost on the page path, measured against 2b31ab0: +491
    // instructions per request (callgrind, +1.9 %) for all of issue 9's checks, and 6-8 %
    // fewer requests/s in a wrk A/B, the rest of it code layout under opt-level "z".
    if path != "/healthz" && !host_allowed(app, req.headers()) {
        return Step::Done(Err(Error::Misdirected));
    }
    if path.starts_with("/api/") && app.is_resetting() {
        // From the moment an erase starts until the reboot, nothing is signed in or
        // changed: whatever was written now would be erased, or half of it.
        return Step::Done(Err(Error::ResetInProgress));
    }
    let m = req.method().clone();
    let get = m == Method::GET || m == Method::HEAD;
    let (post, put, delete) = (m == Method::POST, m == Method::PUT, m == Method::DELETE);
    if let Some(id) = path.strip_prefix("/api/v1/sessions/") {
        return Step::Done(match () {
            _ if delete => sessions::delete_one(app, ctx, &req, id),
            _ => Err(Error::MethodNotAllowed { allow: "DELETE" }),
        });
    }
    if let Some(name) = path.strip_prefix("/api/v1/accounts/") {
        let name = name.to_owned();
        return Step::Done(match () {
            _ if delete => wait!(app => accounts::delete(&app, ctx, req, &name)),
            _ if put => wait!(app => accounts::update(&app, ctx, req, &name)),
            _ => Err(Error::MethodNotAllowed {
                allow: "PUT, DELETE",
            }),
        });
    }
    Step::Done(match path {
        "/healthz" if get => Ok(pages::healthz(app)),
        "/" | "/login" | "/profile" | "/settings/email" | "/factory-reset" | "/accounts"
        | "/sessions" | "/audit" | "/device"
            if get =>
        {
            Ok(pages::page(app, &req, path))
        }
        "/forgot" if get => Ok(recovery::forgot_page()),
        "/recovery-codes" if get => Ok(recovery::codes_page()),
        "/confirm-email" if get => Ok(recovery::confirm_page()),
        "/reset" if get => Ok(recovery::reset_page(app, ctx)),
        "/static/app.js" | "/static/style.css" if get => pages::asset(path).ok_or(Error::NotFound),
        "/api/v1/login" if post => wait!(app => login::post_login(&app, ctx, req)),
        "/api/v1/login/2fa" if post => wait!(app => login::post_login_2fa(&app, ctx, req)),
        "/api/v1/2fa/setup" if post => wait!(app => login::post_2fa_setup(&app, ctx, req)),
        "/api/v1/2fa/enable" if post => wait!(app => login::post_2fa_enable(&app, ctx, req)),
        "/api/v1/2fa/disable" if post => wait!(app => login::post_2fa_disable(&app, ctx, req)),
        "/api/v1/logout" if post => login::post_logout(app, ctx, &req),
        "/api/v1/session" if get => login::get_session(app, &req),
        "/api/v1/password" if post => wait!(app => login::post_password(&app, ctx, req)),
        "/api/v1/recovery" if get => wait!(app => recovery::status(&app, req.headers())),
        "/api/v1/recovery/button" if put => wait!(app => recovery::button_put(&app, ctx, req)),
        "/api/v1/confirm-email" if post => wait!(app => recovery::confirm_email(&app, req)),
        "/api/v1/recovery/check" if post => wait!(app => recovery::check_now(&app, req)),
        "/api/v1/recovery-codes" if post => wait!(app => recovery::codes_post(&app, ctx, req)),
        "/api/v1/recover-with-code" if post => {
            wait!(app => recovery::recover_with_code(&app, ctx, req))
        }
        "/api/v1/forgot" if post => wait!(app => recovery::forgot(&app, ctx, req)),
        "/api/v1/reset" if post => wait!(app => recovery::reset(&app, ctx, req)),
        "/api/v1/settings/smtp" if get => wait!(app => settings::smtp_get(&app, req.headers())),
        "/api/v1/settings/smtp" if put => wait!(app => settings::smtp_put(&app, ctx, req)),
        "/api/v1/settings/smtp/test" if post => wait!(app => settings::smtp_test(&app, ctx, req)),
        "/api/v1/profile" if get => wait!(app => settings::profile_get(&app, req.headers())),
        "/api/v1/profile" if put => wait!(app => settings::profile_put(&app, ctx, req)),
        "/api/v1/accounts" if get => wait!(app => accounts::list(&app, req.headers())),
        "/api/v1/accounts" if post => wait!(app => accounts::create(&app, ctx, req)),
        "/api/v1/sessions" if get => sessions::list(app, req.headers()),
        "/api/v1/sessions" if delete => sessions::delete_others(app, ctx, &req),
        "/api/v1/audit" if get => wait!(app => device::audit(&app, &req)),
        "/api/v1/audit.csv" if get => wait!(app => device::audit_csv(&app, &req)),
        "/api/v1/device" if get => wait!(app => device::info(&app, req.headers())),
        "/api/v1/factory-reset" if post => wait!(app => device::factory_reset(&app, ctx, req)),
        "/healthz" | "/" | "/login" | "/profile" | "/settings/email" | "/factory-reset"
        | "/accounts" | "/sessions" | "/audit" | "/device" | "/forgot" | "/reset"
        | "/recovery-codes" | "/confirm-email" | "/static/app.js" | "/static/style.css"
        | "/api/v1/session" | "/api/v1/recovery" | "/api/v1/audit" | "/api/v1/audit.csv"
        | "/api/v1/device" => Err(Error::MethodNotAllowed { allow: "GET, HEAD" }),
        "/api/v1/login"
        | "/api/v1/login/2fa"
        | "/api/v1/2fa/setup"
        | "/api/v1/2fa/enable"
        | "/api/v1/2fa/disable"
        | "/api/v1/logout"
        | "/api/v1/password"
        | "/api/v1/forgot"
        | "/api/v1/reset"
        | "/api/v1/settings/smtp/test"
        | "/api/v1/factory-reset"
        | "/api/v1/recovery-codes"
        | "/api/v1/recover-with-code"
        | "/api/v1/confirm-email"
        | "/api/v1/recovery/check" => Err(Error::MethodNotAllowed { allow: "POST" }),
        "/api/v1/settings/smtp" | "/api/v1/profile" => {
            Err(Error::MethodNotAllowed { allow: "GET, PUT" })
        }
        "/api/v1/accounts" => Err(Error::MethodNotAllowed { allow: "GET, POST" }),
        "/api/v1/sessions" => Err(Error::MethodNotAllowed {
            allow: "GET, DELETE",
        }),
        "/api/v1/recovery/button" => Err(Error::MethodNotAllowed { allow: "PUT" }),
        _ => Err(Error::NotFound),
    })
}
