//! HTTP plumbing shared by the handlers: reading a JSON body (content type, 16 KiB
//! limit), building JSON, HTML and error responses with the security headers, and
//! the session cookie.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::LazyLock;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;

pub use pbx_http1::Body;

/// Largest request body accepted (spec §4).
pub const BODY_LIMIT: usize = 16 * 1024;
/// A too-large body up to this size is read and dropped (frame by frame, never held)
/// before the 413 is sent, so the client reliably receives the answer instead of a
/// connection reset.
const DRAIN_LIMIT: u64 = 1024 * 1024;

pub const SESSION_COOKIE: &str = "pbx_session";
/// The cookie the language picker sets (and signing in, to the account's choice).
pub const LANG_COOKIE: &str = "pbx_lang";

/// What the server knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// The TCP peer; the only address trusted for limits and the local-network rule.
    pub peer: SocketAddr,
    pub https: bool,
}

/// Whether a Content-Type header says JSON (`application/json`, any parameters).
pub fn is_json(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// Decodes a request body already read and size-checked.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidJson(e.to_string()))
}

/// When the body of a request must have arrived: set by the server from
/// `server.body_timeout_s` as the headers are read. A body that stalls (a declared
/// length never sent) is answered 408 and its connection closed, so slow clients cannot
/// hold connections — the pool of the whole web UI — for ever.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub tokio::time::Instant);

/// Reads and decodes a JSON request body.
pub async fn read_json<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, Error> {
    decode_json(&read_body(req).await?)
}

/// The body of a JSON request, within its deadline and size limit. Not generic: one
/// copy of the reading state machine for every body type.
async fn read_body(req: Request<Incoming>) -> Result<hyper::body::Bytes, Error> {
    let deadline = req.extensions().get::<BodyDeadline>().copied();
    match deadline {
        Some(BodyDeadline(at)) => tokio::time::timeout_at(at, read_body_inner(req))
            .await
            .map_err(|_| Error::RequestTimeout)?,
        None => read_body_inner(req).await,
    }
}

async fn read_body_inner(req: Request<Incoming>) -> Result<hyper::body::Bytes, Error> {
    if !is_json(req.headers().get(header::CONTENT_TYPE)) {
        return Err(Error::UnsupportedMediaType);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = req.into_body();
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        if declared.is_some_and(|n| n <= DRAIN_LIMIT) {
            drain(&mut body).await;
        }
        return Err(Error::BodyTooLarge);
    }
    let mut held = Held(0);
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            Error::InvalidRequest(crate::i18n::Msg::new(
                crate::i18n::k::MSG_THE_REQUEST_BODY_WAS_CUT,
            ))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if out.len() + data.len() > BODY_LIMIT {
            return Err(Error::BodyTooLarge);
        }
        if !held.take(data.len()) {
            return Err(Error::Overloaded);
        }
        out.extend_from_slice(&data);
    }
    Ok(out.into())
}

/// Reads a too-large body and drops each piece as it comes, up to [`DRAIN_LIMIT`]:
/// the connection holds no more than hyper's read buffer, however many send one.
async fn drain(body: &mut Incoming) {
    let mut seen = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > DRAIN_LIMIT {
                return;
            }
        }
    }
}

/// Request-body bytes held in memory at once, over every connection: 64 bodies at the
/// 16 KiB limit. Beyond it a body is answered 503 rather than buffered, so the pool of
/// connections cannot add up to more memory than the box has.
const BODY_BUDGET: usize = 1024 * 1024;
static BODY_BYTES: AtomicUsize = AtomicUsize::new(0);

/// The share of [`BODY_BUDGET`] one body being read holds; given back when dropped.
struct Held(usize);

impl Held {
    fn take(&mut self, n: usize) -> bool {
        if BODY_BYTES.fetch_add(n, Relaxed) + n > BODY_BUDGET {
            BODY_BYTES.fetch_sub(n, Relaxed);
            return false;
        }
        self.0 += n;
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        BODY_BYTES.fetch_sub(self.0, Relaxed);
    }
}

// Header values of every response, validated once at compile time: cloning a static
// one copies two pointers, where `from_static` at run time checked every byte of the
// policy on every request (3 % of the page path's time).
static NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
static DENY: HeaderValue = HeaderValue::from_static("DENY");
static NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
static PAGE_CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
);
static SAME_ORIGIN: HeaderValue = HeaderValue::from_static("same-origin");
static HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
static JSON: HeaderValue = HeaderValue::from_static("application/json");
static TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// The headers every answer carries, for one content type.
fn base_headers(content_type: &HeaderValue) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(6);
    h.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF.clone());
    h.insert(header::X_FRAME_OPTIONS, DENY.clone());
    h.insert(header::CACHE_CONTROL, NO_STORE.clone());
    h.insert(header::CONTENT_TYPE, content_type.clone());
    h
}

// Built once, cloned per response: a clone copies the entries without hashing a name.
static JSON_HEADERS: LazyLock<HeaderMap> = LazyLock::new(|| base_headers(&JSON));
static TEXT_HEADERS: LazyLock<HeaderMap> = LazyLock::new(|| base_headers(&TEXT));
static PAGE_HEADERS: LazyLock<HeaderMap> = LazyLock::new(|| {
    let mut h = base_headers(&HTML);
    h.insert(header::CONTENT_SECURITY_POLICY, PAGE_CSP.clone());
    h.insert(header::REFERRER_POLICY, SAME_ORIGIN.clone());
    h
});

fn with_headers(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

pub fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let headers = match content_type {
        "application/json" => JSON_HEADERS.clone(),
        "text/plain; charset=utf-8" => TEXT_HEADERS.clone(),
        other => base_headers(&HeaderValue::from_static(other)),
    };
    with_headers(status, headers, body.into())
}

/// A JSON body encoded earlier (e.g. a session's view).
pub fn json_bytes(status: StatusCode, body: Bytes) -> Response<Body> {
    with_headers(status, JSON_HEADERS.clone(), body)
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes(status, bytes.into()),
        Err(e) => error_response(&Error::Internal(e.to_string()), crate::i18n::Lang::En),
    }
}

pub fn no_content() -> Response<Body> {
    let mut r = json_bytes(StatusCode::NO_CONTENT, Bytes::new());
    r.headers_mut().remove(header::CONTENT_TYPE);
    r
}

/// The JSON error body `{error, message, ...}` with the headers a client acts on.
pub fn error_response(e: &Error, lang: crate::i18n::Lang) -> Response<Body> {
    if e.is_server_fault() {
        tracing::error!(code = e.code(), "request failed: {e}");
    }
    let mut body = serde_json::json!({ "error": e.code(), "message": e.message(lang) });
    match e {
        Error::InvalidCredentials {
            attempts_left: Some(n),
        } => body["attempts_left"] = (*n).into(),
        Error::WeakPassword { reasons } => {
            body["reasons"] = reasons
                .iter()
                .map(|m| m.text(lang))
                .collect::<Vec<_>>()
                .into()
        }
        Error::NotTrustedNetwork {
            networks, local, ..
        } => {
            let local = local.then(|| crate::auth::trust::LOCAL.to_string());
            body["networks"] = local
                .into_iter()
                .chain(networks.iter().cloned())
                .collect::<Vec<_>>()
                .into()
        }
        Error::ClockUnset { reads, floor } => {
            body["clock_reads"] = (*reads).into();
            body["clock_floor"] = (*floor).into();
        }
        _ => {}
    }
    if let Some(s) = e.retry_after() {
        body["retry_after_s"] = s.into();
    }
    let mut r = json(e.status(), &body);
    if let Some(s) = e.retry_after() {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    if let Error::MethodNotAllowed { allow } = e {
        if let Ok(v) = HeaderValue::from_str(allow) {
            r.headers_mut().insert(header::ALLOW, v);
        }
    }
    if matches!(e, Error::RequestTimeout) {
        // The rest of that body may still come: the connection cannot be reused.
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

/// An HTML page with a strict Content-Security-Policy: only our own scripts and styles.
/// The embedded pages are served from the binary without a copy.
pub fn html(status: StatusCode, page: &'static str) -> Response<Body> {
    html_bytes(status, Bytes::from_static(page.as_bytes()))
}

/// [`html`] for a page filled in at run time (escape what goes in with [`escape`]).
pub fn html_owned(status: StatusCode, page: String) -> Response<Body> {
    html_bytes(status, Bytes::from(page))
}

fn html_bytes(status: StatusCode, page: Bytes) -> Response<Body> {
    with_headers(status, PAGE_HEADERS.clone(), page)
}

pub fn redirect(to: &'static str) -> Response<Body> {
    let mut r = response(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        Bytes::new(),
    );
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

/// 308 Permanent Redirect to `to` (the method and body are kept).
pub fn redirect_permanent(to: &str) -> Response<Body> {
    let mut r = response(
        StatusCode::PERMANENT_REDIRECT,
        "text/plain; charset=utf-8",
        Bytes::new(),
    );
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Whether a Host header value is `a.b.c.d` or `a.b.c.d:port` (each part 0-255), from
/// its bytes: no text check, no parser.
pub fn is_ipv4_host(host: &[u8]) -> bool {
    let addr = match host.iter().position(|&b| b == b':') {
        Some(i) => {
            let port = &host[i + 1..];
            if port.is_empty() || port.len() > 5 || !port.iter().all(u8::is_ascii_digit) {
                return false;
            }
            &host[..i]
        }
        None => host,
    };
    let mut parts = 0;
    for part in addr.split(|&b| b == b'.') {
        parts += 1;
        let ok = (1..=3).contains(&part.len())
            && part.iter().all(u8::is_ascii_digit)
            && (part.len() < 3 || part <= b"255".as_slice())
            && (part.len() == 1 || part[0] != b'0');
        if !ok || parts > 4 {
            return false;
        }
    }
    parts == 4
}

/// Whether a Host header value (`name[:port]`, `a.b.c.d[:port]`, `[v6][:port]`) names
/// this box: an IP literal, `localhost`, or one of `names` (any case, trailing dot).
pub fn host_is_ours<'a>(host: &str, names: impl IntoIterator<Item = &'a str>) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        return port_ok && v6.parse::<std::net::Ipv6Addr>().is_ok();
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return false,
            None => host,
        }
    };
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || names
            .into_iter()
            .any(|n| !n.is_empty() && n.eq_ignore_ascii_case(name))
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The name a cookie has on this scheme: over HTTPS the `__Host-` prefix (spec §10),
/// which a browser only accepts with `Secure`, `Path=/` and no `Domain` — so neither a
/// plain-HTTP page nor another host of the domain can plant one (session fixation).
pub fn cookie_name(base: &'static str, https: bool) -> &'static str {
    use crate::auth::{device, presession};
    match (https, base) {
        (false, _) => base,
        (true, SESSION_COOKIE) => "__Host-pbx_session",
        (true, device::COOKIE) => "__Host-pbx_device",
        (true, presession::COOKIE) => "__Host-pbx_2fa",
        (true, other) => other,
    }
}

/// The session cookie value from the request, if any: over HTTPS only the prefixed one.
pub fn session_cookie(headers: &HeaderMap, https: bool) -> Option<&str> {
    cookie(headers, cookie_name(SESSION_COOKIE, https))
}

/// The pre-session cookie (a sign-in owing its second factor).
pub fn presession_cookie(headers: &HeaderMap, https: bool) -> Option<&str> {
    cookie(headers, cookie_name(crate::auth::presession::COOKIE, https))
}

/// The device cookie: over HTTPS the prefixed one, else one a browser kept from before
/// the prefix (an upgrade must not turn every known browser into a stranger; the value
/// is signed and bound to its account, so a planted one knows only its own account).
pub fn device_cookie(headers: &HeaderMap, https: bool) -> Option<&str> {
    let base = crate::auth::device::COOKIE;
    cookie(headers, cookie_name(base, https)).or_else(|| cookie(headers, base))
}

/// The value of cookie `name` from the request, if any.
/// Bytes, not `to_str`: that would first check every byte of every cookie the browser
/// sends; only the wanted value has to be text.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_in(headers.get_all(header::COOKIE).iter(), name)
}

/// [`cookie`] in `Cookie` header values kept apart from their request.
pub fn cookie_in<'a>(values: impl Iterator<Item = &'a HeaderValue>, name: &str) -> Option<&'a str> {
    values
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .filter_map(|kv| {
            let eq = kv.iter().position(|&b| b == b'=')?;
            Some((kv[..eq].trim_ascii(), &kv[eq + 1..]))
        })
        .find(|(k, _)| *k == name.as_bytes())
        .and_then(|(_, v)| std::str::from_utf8(v.trim_ascii()).ok())
}

/// Appends a `Set-Cookie`: HttpOnly, SameSite=Strict, Path=/, Secure on HTTPS;
/// `max_age` in seconds (`None`: a browser-session cookie; `Some(0)`: removed). Over
/// HTTPS the session, device and pre-session cookies take the `__Host-` prefix.
fn add_cookie(
    r: &mut Response<Body>,
    name: &'static str,
    value: &str,
    max_age: Option<u64>,
    https: bool,
) {
    let name = cookie_name(name, https);
    let secure = if https { "; Secure" } else { "" };
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    let v = format!("{name}={value}; Path=/{age}; HttpOnly; SameSite=Strict{secure}");
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The language cookie of the picker (a year; readable by nothing but this box).
pub fn set_lang_cookie(r: &mut Response<Body>, lang: crate::i18n::Lang, https: bool) {
    add_cookie(r, LANG_COOKIE, lang.code(), Some(365 * 86400), https);
}

pub fn set_session_cookie(r: &mut Response<Body>, id: &str, https: bool) {
    add_cookie(r, SESSION_COOKIE, id, None, https);
}

/// The device cookie of a successful sign-in: long-lived, bound to the username.
pub fn set_device_cookie(r: &mut Response<Body>, value: &str, https: bool) {
    let age = crate::auth::device::MAX_AGE_S;
    add_cookie(r, crate::auth::device::COOKIE, value, Some(age), https);
}

pub fn clear_session_cookie(r: &mut Response<Body>, https: bool) {
    add_cookie(r, SESSION_COOKIE, "", Some(0), https);
}

/// The pre-session of a sign-in that owes its second factor (`None`: remove it).
pub fn set_presession_cookie(r: &mut Response<Body>, value: Option<&str>, https: bool) {
    use crate::auth::presession::{COOKIE, TTL};
    match value {
        Some(v) => add_cookie(r, COOKIE, v, Some(TTL.as_secs()), https),
        None => add_cookie(r, COOKIE, "", Some(0), https),
    }
}

#[cfg(test)]
mod tests;
