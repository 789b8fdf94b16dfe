//! The only layer that knows HTTP. A request walks one way: [`route`] (Host check) → the
//! route table ([`routes`]: the entry for method and path, its access applied) → the
//! flow's file here, which decodes the body → `crate::flows::<flow>` (the rules) → back
//! as a value, which the file here encodes ([`http`]). Unknown paths are 404, known paths
//! with the wrong method 405 with an `Allow` derived from the table.
//!
//! - [`routes`]: every route with its access and handler.
//! - [`http`]: bodies (content type, size, deadline), responses, security headers, cookies.
//! - [`guard`]: session, CSRF, forced change, admin — the guards the table names.
//! - [`login`] (and the second factor), [`accounts`], [`sessions`], [`settings`] (SMTP,
//!   profile), [`recovery`], [`device`],
//!   [`pages`] (the embedded web UI and `/healthz`).

pub mod access;
pub mod accounts;
pub mod call;
pub mod device;
pub mod guard;
pub mod http;
pub mod login;
pub mod pages;
pub mod recovery;
pub mod routes;
pub mod sessions;
pub mod settings;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::app::App;
use crate::error::Error;
use http::{Body, Ctx};
use pbx_http1::Answer;

/// The answer to one request. The page path and every other handler that does not wait
/// answer at once (no state machine built, moved and polled for it: that was a third of
/// the page path's instructions); a handler that awaits (flash, hashing, mail) is boxed,
/// and `busy()` is called for it: its token lives until the answer is ready (the
/// server's header clock stops meanwhile).
pub fn route<B: Send + 'static>(
    app: &Arc<App>,
    ctx: Ctx,
    req: Request<Incoming>,
    busy: impl FnOnce() -> B,
) -> Answer {
    let is_api = req.uri().path().starts_with("/api/");
    let hint = pages::LangHint::of(req.headers());
    match dispatch(app, ctx, req) {
        Step::Done(result) => Answer::ready(answer(app, result, is_api, &hint)),
        Step::Wait(handler) => {
            let token = busy();
            let app = Arc::clone(app);
            Answer::Waiting(Box::pin(async move {
                let r = answer(&app, handler.await, is_api, &hint);
                drop(token);
                r
            }))
        }
    }
}

/// `error` as JSON, and the connection closed after it (an address shed between
/// requests, see [`crate::server`]).
pub fn closing<B>(app: &App, error: &Error, req: &Request<B>) -> Response<Body> {
    let mut r = http::error_response(error, pages::lang(app, req.headers()));
    r.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    r
}

/// Whether `req` comes from a browser this box knows: it carries a live session or a
/// device cookie this box signed. What a connection past the full pool must show to
/// be served ([`crate::server`]); the sign-in itself checks the device cookie fully.
pub fn known_browser<B>(app: &App, req: &Request<B>, https: bool) -> bool {
    let h = req.headers();
    guard::session(app, h, https).is_ok()
        || app
            .device_key()
            .zip(http::device_cookie(h, https))
            .is_some_and(|(key, value)| key.signed(value))
}

/// The response for a handler's result: errors as JSON under `/api/`, as text for pages,
/// in the request's language.
fn answer(
    app: &App,
    result: Result<Response<Body>, Error>,
    is_api: bool,
    hint: &pages::LangHint,
) -> Response<Body> {
    match result {
        Ok(r) => r,
        Err(e) if !is_api && matches!(e, Error::NotFound | Error::Misdirected) => http::response(
            e.status(),
            "text/plain; charset=utf-8",
            format!("{}\n", e.message(hint.lang(app))),
        ),
        Err(e) => http::error_response(&e, hint.lang(app)),
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

/// `server.https_only` (spec §10): plain HTTP from anywhere but loopback is answered a
/// 308 to the same path and query on HTTPS, at the name the browser used. `None` (served
/// as it is): loopback, or no HTTPS listener to send it to.
#[cold]
fn to_https<B>(app: &App, ctx: &Ctx, req: &Request<B>) -> Option<Response<Body>> {
    let peer = match ctx.peer.ip() {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ctx.peer.ip(), Into::into),
        v4 => v4,
    };
    if peer.is_loopback() {
        return None;
    }
    let port = app.https_addr()?.port();
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| match h.strip_prefix('[') {
            Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or_default()),
            None => h.split(':').next().unwrap_or_default().to_string(),
        })
        .filter(|h| !h.is_empty())
        .or_else(|| app.config().public_host())
        .unwrap_or_else(|| app.hostname().to_string());
    let rest = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let to = if port == 443 {
        format!("https://{host}{rest}")
    } else {
        format!("https://{host}:{port}{rest}")
    };
    Some(http::redirect_permanent(&to))
}

/// A handler that awaits (flash, hashing, mail), boxed and behind `dyn` (see
/// [`routes`]'s `later!`). It owns what it needs (the app, the request).
pub type Handler = Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send>>;

/// What the router found: the answer, or the handler to wait for.
enum Step {
    Done(Result<Response<Body>, Error>),
    Wait(Handler),
}

/// The Host check, the reset in progress, then the table ([`routes`]).
fn dispatch(app: &Arc<App>, ctx: Ctx, req: Request<Incoming>) -> Step {
    let path = req.uri().path();
    // Before anything else (the DNS-rebinding defence).
    if path != "/healthz" && !host_allowed(app, req.headers()) {
        return Step::Done(Err(Error::Misdirected));
    }
    if !ctx.https && path != "/healthz" && app.access().https_only() {
        if let Some(r) = to_https(app, &ctx, &req) {
            return Step::Done(Ok(r));
        }
    }
    if path.starts_with("/api/") && app.is_resetting() {
        // From the moment an erase starts until the reboot, nothing is signed in or
        // changed: whatever was written now would be erased, or half of it.
        return Step::Done(Err(Error::ResetInProgress));
    }
    match routes::find(req.method(), path) {
        routes::Found::Route(route, tail) => {
            let tail = tail.to_owned();
            routes::run(app, ctx, req, route, tail)
        }
        routes::Found::WrongMethod(allow) => Step::Done(Err(Error::MethodNotAllowed { allow })),
        routes::Found::NotFound => Step::Done(Err(Error::NotFound)),
    }
}
