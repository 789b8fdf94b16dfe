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

pub async fn route(app: Arc<App>, ctx: Ctx, req: Request<Incoming>) -> Response<Body> {
    // The path is borrowed from the request, which the handler consumes: keep the
    // (already parsed, shared) URI instead of copying the path into a String.
    let uri = req.uri().clone();
    let path = uri.path();
    let is_api = path.starts_with("/api/");
    let result = dispatch(&app, ctx, req, path).await;
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

/// A handler that awaits (flash, hashing, mail), boxed and behind `dyn`: boxed, because
/// its future is large, and an unboxed one would make every request's future — moved a
/// few times on its way into hyper — as large as the largest (3 KiB), pages and session
/// checks included; behind `dyn`, because hyper's dispatch loop (built at opt-level 3)
/// would otherwise inline every handler's state machine into itself: +37 KB for issue
/// 12's five handlers alone, measured with `nm` on the x86_64 firmware.
type Handler<'a> = Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send + 'a>>;

fn boxed<'a>(f: impl Future<Output = Result<Response<Body>, Error>> + Send + 'a) -> Handler<'a> {
    Box::pin(f)
}

/// The handlers that await are [`boxed`].
async fn dispatch(
    app: &Arc<App>,
    ctx: Ctx,
    req: Request<Incoming>,
    path: &str,
) -> Result<Response<Body>, Error> {
    // Before anything else. Cost on the page path, measured against 2b31ab0: +491
    // instructions per request (callgrind, +1.9 %) for all of issue 9's checks, and 6-8 %
    // fewer requests/s in a wrk A/B, the rest of it code layout under opt-level "z".
    if path != "/healthz" && !host_allowed(app, req.headers()) {
        return Err(Error::Misdirected);
    }
    if path.starts_with("/api/") && app.is_resetting() {
        // From the moment an erase starts until the reboot, nothing is signed in or
        // changed: whatever was written now would be erased, or half of it.
        return Err(Error::ResetInProgress);
    }
    let m = req.method().clone();
    let get = m == Method::GET || m == Method::HEAD;
    let (post, put, delete) = (m == Method::POST, m == Method::PUT, m == Method::DELETE);
    if let Some(id) = path.strip_prefix("/api/v1/sessions/") {
        return match () {
            _ if delete => sessions::delete_one(app, ctx, &req, id),
            _ => Err(Error::MethodNotAllowed { allow: "DELETE" }),
        };
    }
    if let Some(name) = path.strip_prefix("/api/v1/accounts/") {
        return match () {
            _ if delete => boxed(accounts::delete(app, req, name)).await,
            _ if put => boxed(accounts::update(app, req, name)).await,
            _ => Err(Error::MethodNotAllowed {
                allow: "PUT, DELETE",
            }),
        };
    }
    match path {
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
        "/api/v1/login" if post => boxed(login::post_login(app, ctx, req)).await,
        "/api/v1/login/2fa" if post => boxed(login::post_login_2fa(app, ctx, req)).await,
        "/api/v1/2fa/setup" if post => boxed(login::post_2fa_setup(app, ctx, req)).await,
        "/api/v1/2fa/enable" if post => boxed(login::post_2fa_enable(app, ctx, req)).await,
        "/api/v1/2fa/disable" if post => boxed(login::post_2fa_disable(app, ctx, req)).await,
        "/api/v1/logout" if post => login::post_logout(app, ctx, &req),
        "/api/v1/session" if get => login::get_session(app, &req),
        "/api/v1/password" if post => boxed(login::post_password(app, ctx, req)).await,
        "/api/v1/recovery" if get => boxed(recovery::status(app, req.headers())).await,
        "/api/v1/recovery/button" if put => boxed(recovery::button_put(app, ctx, req)).await,
        "/api/v1/confirm-email" if post => boxed(recovery::confirm_email(app, req)).await,
        "/api/v1/recovery/check" if post => boxed(recovery::check_now(app, req)).await,
        "/api/v1/recovery-codes" if post => boxed(recovery::codes_post(app, ctx, req)).await,
        "/api/v1/recover-with-code" if post => {
            boxed(recovery::recover_with_code(app, ctx, req)).await
        }
        "/api/v1/forgot" if post => boxed(recovery::forgot(app, ctx, req)).await,
        "/api/v1/reset" if post => boxed(recovery::reset(app, ctx, req)).await,
        "/api/v1/settings/smtp" if get => boxed(settings::smtp_get(app, req.headers())).await,
        "/api/v1/settings/smtp" if put => boxed(settings::smtp_put(app, req)).await,
        "/api/v1/settings/smtp/test" if post => boxed(settings::smtp_test(app, req)).await,
        "/api/v1/profile" if get => boxed(settings::profile_get(app, req.headers())).await,
        "/api/v1/profile" if put => boxed(settings::profile_put(app, ctx, req)).await,
        "/api/v1/accounts" if get => boxed(accounts::list(app, req.headers())).await,
        "/api/v1/accounts" if post => boxed(accounts::create(app, req)).await,
        "/api/v1/sessions" if get => sessions::list(app, req.headers()),
        "/api/v1/sessions" if delete => sessions::delete_others(app, ctx, &req),
        "/api/v1/audit" if get => boxed(device::audit(app, &req)).await,
        "/api/v1/audit.csv" if get => boxed(device::audit_csv(app, &req)).await,
        "/api/v1/device" if get => boxed(device::info(app, req.headers())).await,
        "/api/v1/factory-reset" if post => boxed(device::factory_reset(app, ctx, req)).await,
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
    }
}

#[cfg(test)]
mod tests {
    /// Every request's future is moved a few times on its way into hyper: an unboxed
    /// awaiting handler would make it 3 KiB for every page and session check.
    #[test]
    fn the_request_future_stays_small() {
        use crate::api::http::Ctx;
        use crate::app::App;
        use hyper::body::Incoming;
        use hyper::Request;
        use std::sync::Arc;
        fn size<F, Fut>(_: F) -> usize
        where
            F: Fn(Arc<App>, Ctx, Request<Incoming>) -> Fut,
        {
            std::mem::size_of::<Fut>()
        }
        let n = size(super::route);
        assert!(n <= 1536, "route future is {n} bytes");
    }
}
