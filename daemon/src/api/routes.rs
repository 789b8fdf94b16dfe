//! The route table: every path, its methods, the access each needs and its handler, side
//! by side ([`ROUTES`]). The router finds the entry, answers 405 with an `Allow` derived
//! from the table when only the method is wrong, applies the entry's access (the API's
//! [`Guard`], or a page's [`Need`]) and only then runs the handler — a handler never
//! picks its own guard.
//!
//! To add a route: one line here, and a handler `fn(app, req, Call)` in the flow's file.

use std::sync::Arc;

use hyper::Method;

use super::call::{Call, Reply, Req};
use super::guard::{Guard, Guard::*};
use super::http::Ctx;
use super::pages::{self, Need};
use super::{access, accounts, device, login, recovery, sessions, settings, Handler, Step};
use crate::app::App;

/// A handler that answers at once (nothing to wait for).
pub type Now = fn(&Arc<App>, &Req, Call) -> Reply;
/// A handler that awaits (flash, hashing, mail): its future, boxed.
pub type Later = fn(Arc<App>, Req, Call) -> Handler;

#[derive(Clone, Copy)]
pub enum Run {
    Now(Now),
    Later(Later),
    /// A page of the web UI, served as it is once its [`Need`] is met.
    Page(crate::i18n::Page),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Api(Guard),
    Page(Need),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Exact(&'static str),
    /// The prefix and one more segment (an account's name, a session's id).
    Under(&'static str),
}

impl Path {
    fn tail<'p>(&self, path: &'p str) -> Option<&'p str> {
        match *self {
            Path::Exact(p) => (p == path).then_some(""),
            Path::Under(p) => path.strip_prefix(p),
        }
    }
}

/// The methods a route answers; GET answers HEAD too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum M {
    Get,
    Post,
    Put,
    Delete,
}

impl M {
    const ALL: [M; 4] = [M::Get, M::Post, M::Put, M::Delete];

    fn accepts(self, m: &Method) -> bool {
        match self {
            M::Get => m == Method::GET || m == Method::HEAD,
            M::Post => m == Method::POST,
            M::Put => m == Method::PUT,
            M::Delete => m == Method::DELETE,
        }
    }

    fn allow(self) -> &'static str {
        match self {
            M::Get => "GET, HEAD",
            M::Post => "POST",
            M::Put => "PUT",
            M::Delete => "DELETE",
        }
    }

    /// Whether requests with this method change state (and so need CSRF when signed).
    pub fn changes(self) -> bool {
        self != M::Get
    }
}

pub struct Route {
    pub method: M,
    pub path: Path,
    pub access: Access,
    pub run: Run,
}

const fn r(method: M, path: &'static str, access: Access, run: Run) -> Route {
    Route {
        method,
        path: Path::Exact(path),
        access,
        run,
    }
}

const fn under(method: M, path: &'static str, access: Access, run: Run) -> Route {
    Route {
        method,
        path: Path::Under(path),
        access,
        run,
    }
}

/// `later!(module::handler)`: an awaiting handler, boxed behind `dyn` so that no
/// handler's state machine is inlined into the code that polls it (hyper's dispatch loop
/// at opt-level 3 would, at a cost in bytes: docs/performance.md). It owns what it needs.
macro_rules! later {
    ($f:path) => {
        Run::Later(|app, req, call| Box::pin(async move { $f(&app, req, call).await }))
    };
}

const fn api(g: Guard) -> Access {
    Access::Api(g)
}

const fn page(n: Need) -> Access {
    Access::Page(n)
}

use M::{Delete, Get, Post, Put};

/// Every route. The pages come first: the page path is the one under load.
#[rustfmt::skip]
pub static ROUTES: &[Route] = &[
    r(Get, "/", page(Need::SignedIn), Run::Page(pages::DASHBOARD)),
    r(Get, "/login", page(Need::Anyone), Run::Page(pages::LOGIN)),
    r(Get, "/profile", page(Need::Pending), Run::Page(pages::PROFILE)),
    r(Get, "/sessions", page(Need::SignedIn), Run::Page(pages::SESSIONS)),
    r(Get, "/settings/email", page(Need::Admin), Run::Page(pages::SETTINGS_EMAIL)),
    r(Get, "/factory-reset", page(Need::Admin), Run::Page(pages::FACTORY_RESET)),
    r(Get, "/accounts", page(Need::Admin), Run::Page(pages::ACCOUNTS)),
    r(Get, "/audit", page(Need::Admin), Run::Page(pages::AUDIT)),
    r(Get, "/device", page(Need::Admin), Run::Page(pages::DEVICE)),
    r(Get, "/access", page(Need::Admin), Run::Page(pages::ACCESS)),
    r(Get, "/directory", page(Need::Admin), Run::Page(pages::DIRECTORY)),
    r(Get, crate::i18n::APP_JS_PATH, api(Public), Run::Now(pages::app_js)),
    r(Get, crate::i18n::STYLE_CSS_PATH, api(Public), Run::Now(pages::style_css)),
    under(Get, "/static/l10n.", api(Public), Run::Now(pages::l10n_js)),
    r(Get, "/favicon.ico", api(Public), Run::Now(pages::favicon)),
    r(Get, "/healthz", api(Public), Run::Now(pages::healthz)),
    r(Get, "/forgot", api(Public), Run::Now(recovery::forgot_page)),
    r(Get, "/recovery-codes", api(Public), Run::Now(recovery::codes_page)),
    r(Get, "/confirm-email", api(Public), Run::Now(recovery::confirm_page)),
    r(Get, "/reset", api(Public), Run::Now(recovery::reset_page)),
    r(Post, "/api/v1/login", api(Public), later!(login::post_login)),
    r(Post, "/api/v1/login/2fa", api(Public), later!(login::post_login_2fa)),
    r(Post, "/api/v1/2fa/setup", api(Enrolling), later!(login::post_2fa_setup)),
    r(Post, "/api/v1/2fa/enable", api(Enrolling), later!(login::post_2fa_enable)),
    r(Post, "/api/v1/2fa/disable", api(Full), later!(login::post_2fa_disable)),
    r(Post, "/api/v1/logout", api(Csrf), Run::Now(login::post_logout)),
    r(Get, "/api/v1/session", api(Session), Run::Now(login::get_session)),
    r(Post, "/api/v1/password", api(Csrf), later!(login::post_password)),
    r(Get, "/api/v1/recovery", api(Optional), later!(recovery::status)),
    r(Put, "/api/v1/recovery/button", api(Owner), later!(recovery::button_put)),
    r(Post, "/api/v1/recovery/check", api(Admin), later!(recovery::check_now)),
    r(Post, "/api/v1/confirm-email", api(Public), later!(recovery::confirm_email)),
    r(Post, "/api/v1/recovery-codes", api(Full), later!(recovery::codes_post)),
    r(Post, "/api/v1/recover-with-code", api(Public), later!(recovery::recover_with_code)),
    r(Post, "/api/v1/forgot", api(Public), later!(recovery::forgot)),
    r(Post, "/api/v1/reset", api(Public), later!(recovery::reset)),
    r(Post, "/api/v1/reset/check", api(Public), later!(recovery::reset_check)),
    r(Get, "/api/v1/settings/smtp", api(AdminRead), later!(settings::smtp_get)),
    r(Put, "/api/v1/settings/smtp", api(Owner), later!(settings::smtp_put)),
    r(Get, "/api/v1/settings/access", api(AdminRead), later!(access::get)),
    r(Put, "/api/v1/settings/access", api(Owner), later!(access::put)),
    r(Post, "/api/v1/settings/access/confirm", api(Owner), later!(access::confirm)),
    r(Get, "/api/v1/settings/directory", api(AdminRead), later!(settings::directory_get)),
    r(Put, "/api/v1/settings/directory", api(Owner), later!(settings::directory_put)),
    r(Post, "/api/v1/settings/directory/test", api(Owner), later!(settings::directory_test)),
    r(Post, "/api/v1/installers", api(Owner), later!(access::issue)),
    under(Delete, "/api/v1/installers/", api(Owner), later!(access::end)),
    r(Post, "/api/v1/settings/smtp/test", api(Admin), later!(settings::smtp_test)),
    r(Get, "/api/v1/profile", api(Session), later!(settings::profile_get)),
    r(Post, "/api/v1/language", api(Optional), later!(settings::language_post)),
    r(Put, "/api/v1/profile", api(Full), later!(settings::profile_put)),
    r(Put, "/api/v1/profile/alerts", api(Full), later!(settings::alerts_put)),
    r(Get, "/api/v1/accounts", api(AdminRead), later!(accounts::list)),
    r(Post, "/api/v1/accounts", api(Owner), later!(accounts::create)),
    under(Put, "/api/v1/accounts/", api(Admin), later!(accounts::update)),
    under(Delete, "/api/v1/accounts/", api(Admin), later!(accounts::delete)),
    r(Get, "/api/v1/sessions", api(Session), Run::Now(sessions::list)),
    r(Delete, "/api/v1/sessions", api(Csrf), Run::Now(sessions::delete_others)),
    under(Delete, "/api/v1/sessions/", api(Csrf), Run::Now(sessions::delete_one)),
    r(Get, "/api/v1/audit", api(AdminRead), later!(device::audit)),
    r(Get, "/api/v1/audit.csv", api(AdminRead), later!(device::audit_csv)),
    r(Get, "/api/v1/device", api(AdminRead), later!(device::info)),
    r(Post, "/api/v1/factory-reset", api(Owner), later!(device::factory_reset)),
];

/// What the table says about a request.
pub enum Found<'t> {
    Route(&'static Route, &'t str),
    /// The path is known, not with this method: `Allow` lists those it has.
    WrongMethod(String),
    NotFound,
}

/// The entry for `method` on `path`.
pub fn find<'p>(method: &Method, path: &'p str) -> Found<'p> {
    let mut known = false;
    for route in ROUTES {
        if let Some(tail) = route.path.tail(path) {
            if route.method.accepts(method) {
                return Found::Route(route, tail);
            }
            known = true;
        }
    }
    if !known {
        return Found::NotFound;
    }
    Found::WrongMethod(allow(path))
}

/// The `Allow` header of a known path, from the table.
pub fn allow(path: &str) -> String {
    let on_path = |m: M| {
        ROUTES
            .iter()
            .any(|r| r.method == m && r.path.tail(path).is_some())
    };
    M::ALL
        .into_iter()
        .filter(|&m| on_path(m))
        .map(M::allow)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `route` for `req`: its access first, then its handler.
pub(super) fn run(app: &Arc<App>, ctx: Ctx, req: Req, route: &'static Route, tail: String) -> Step {
    let who = match route.access {
        Access::Page(need) => match pages::admit(app, req.headers(), &ctx, need) {
            Ok(()) => None,
            Err(instead) => {
                return Step::Done(Ok(instead.response(pages::lang(app, req.headers()))))
            }
        },
        Access::Api(guard) => match super::guard::check(app, guard, req.headers(), &ctx) {
            Ok(who) => who,
            Err(e) => return Step::Done(Err(e)),
        },
    };
    let call = Call::new(ctx, who, tail);
    match route.run {
        Run::Page(p) => Step::Done(Ok(pages::serve(app, req.headers(), p))),
        Run::Now(f) => Step::Done(f(app, &req, call)),
        Run::Later(f) => Step::Wait(f(Arc::clone(app), req, call)),
    }
}

#[cfg(test)]
mod tests;
