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

use crate::i18n::{self, page, Lang, Page};

use super::http::LANG_COOKIE;

pub(super) const LOGIN: Page = page::LOGIN;
pub(super) const DASHBOARD: Page = page::INDEX;
pub(super) const PROFILE: Page = page::PROFILE;
pub(super) const SETTINGS_EMAIL: Page = page::SETTINGS_EMAIL;
pub(super) const FACTORY_RESET: Page = page::FACTORY_RESET;
pub(super) const ACCOUNTS: Page = page::ACCOUNTS;
pub(super) const SESSIONS: Page = page::SESSIONS;
pub(super) const AUDIT: Page = page::AUDIT;
pub(super) const DEVICE: Page = page::DEVICE;
pub(super) const ACCESS: Page = page::ACCESS;
pub(super) const DIRECTORY: Page = page::DIRECTORY;

/// The language of a request: the picker's cookie, else the browser's
/// `Accept-Language`, else the box's `i18n.default`.
pub fn lang(app: &App, headers: &hyper::HeaderMap) -> Lang {
    choose(
        app,
        http::cookie(headers, LANG_COOKIE),
        headers.get(hyper::header::ACCEPT_LANGUAGE),
    )
}

fn choose(app: &App, cookie: Option<&str>, accept: Option<&hyper::header::HeaderValue>) -> Lang {
    cookie
        .and_then(Lang::from_tag)
        .filter(|l| l.shipped())
        .or_else(|| {
            accept
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::negotiate)
        })
        .unwrap_or_else(|| app.config().language)
}

/// What a request says about its language, kept (two header values, reference-counted)
/// until an answer needs it: most answers never do.
#[derive(Default)]
pub struct LangHint {
    cookie: Option<hyper::header::HeaderValue>,
    accept: Option<hyper::header::HeaderValue>,
}

impl LangHint {
    pub fn of(headers: &hyper::HeaderMap) -> LangHint {
        LangHint {
            cookie: headers.get(hyper::header::COOKIE).cloned(),
            accept: headers.get(hyper::header::ACCEPT_LANGUAGE).cloned(),
        }
    }

    pub fn lang(&self, app: &App) -> Lang {
        let cookie = http::cookie_in(self.cookie.iter(), LANG_COOKIE);
        choose(app, cookie, self.accept.as_ref())
    }
}

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
    Degraded(Page),
    /// To sign in, to the forced change, or to the dashboard.
    Redirect(&'static str),
}

impl Instead {
    pub fn response(self, lang: Lang) -> Response<Body> {
        match self {
            Instead::Degraded(p) => {
                http::html(StatusCode::SERVICE_UNAVAILABLE, i18n::page(p, lang))
            }
            Instead::Redirect(to) => http::redirect(to),
        }
    }
}

/// Whether the caller may see a page that needs `need`.
pub fn admit(
    app: &App,
    headers: &hyper::HeaderMap,
    ctx: &super::http::Ctx,
    need: Need,
) -> Result<(), Instead> {
    match &app.health() {
        Health::Degraded(why) => {
            return Err(Instead::Degraded(match why {
                Reason::FlashFull => page::DEGRADED_FULL,
                // A factory reset would erase what the newer firmware can still read.
                Reason::NewerFormat(_) => page::DEGRADED_NEWER,
                _ => page::DEGRADED,
            }));
        }
        Health::Ok => {}
    }
    if need == Need::Anyone {
        return Ok(());
    }
    let a = super::guard::authed(app, (headers, ctx)).map_err(|_| Instead::Redirect("/login"))?;
    let pending = a.session.must_change_password || a.session.must_enroll_2fa;
    if pending && need != Need::Pending {
        return Err(Instead::Redirect("/profile"));
    }
    if need == Need::Admin && a.session.role != Role::Admin {
        return Err(Instead::Redirect("/"));
    }
    Ok(())
}

/// A page in the request's language.
pub fn serve(app: &App, headers: &hyper::HeaderMap, p: Page) -> Response<Body> {
    http::html(StatusCode::OK, i18n::page(p, lang(app, headers)))
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

/// A static asset packed at build time: gzipped for every browser that takes gzip,
/// inflated for one that does not; cacheable for a year, as its name changes with its
/// bytes.
fn asset(req: &Req, content_type: &'static str, gz: &'static [u8]) -> Response<Body> {
    let takes_gzip = req
        .headers()
        .get_all(hyper::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            parts
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case("gzip"))
                && !parts.any(|p| p.trim().replace(' ', "") == "q=0")
        });
    let mut r = if takes_gzip {
        let mut r = http::response(StatusCode::OK, content_type, Bytes::from_static(gz));
        r.headers_mut().insert(
            hyper::header::CONTENT_ENCODING,
            hyper::header::HeaderValue::from_static("gzip"),
        );
        r
    } else {
        // A gzip member: 10 bytes of header, the deflate stream, 8 of trailer.
        let raw = i18n::inflate(gz.get(10..gz.len().saturating_sub(8)).unwrap_or_default());
        http::response(StatusCode::OK, content_type, raw)
    };
    let h = r.headers_mut();
    h.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        hyper::header::VARY,
        hyper::header::HeaderValue::from_static("Accept-Encoding"),
    );
    r
}

pub fn app_js(_: &Arc<App>, req: &Req, _: Call) -> Reply {
    Ok(asset(
        req,
        "text/javascript; charset=utf-8",
        i18n::APP_JS_GZ,
    ))
}

pub fn style_css(_: &Arc<App>, req: &Req, _: Call) -> Reply {
    Ok(asset(req, "text/css; charset=utf-8", i18n::STYLE_CSS_GZ))
}

/// `/static/l10n.<version>.<lang>.js`: the page script's texts in one language.
pub fn l10n_js(_: &Arc<App>, req: &Req, _: Call) -> Reply {
    match i18n::l10n_at(req.uri().path()) {
        Some(l) => Ok(asset(
            req,
            "text/javascript; charset=utf-8",
            i18n::l10n_script(l).1,
        )),
        None => Err(crate::error::Error::NotFound),
    }
}

/// `/favicon.ico`: the browser asks for it on every page (a 404 is a console error).
pub fn favicon(_: &Arc<App>, _: &Req, _: Call) -> Reply {
    let mut r = http::response(
        StatusCode::OK,
        "image/x-icon",
        Bytes::from_static(include_bytes!("../web/favicon.ico")),
    );
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("public, max-age=86400"),
    );
    Ok(r)
}
