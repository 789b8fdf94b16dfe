//! Walks the route table: every route's access is what the table says, for callers of
//! each kind, through the same checks the router applies.

use hyper::header::{HeaderMap, HeaderValue, COOKIE};

use super::*;
use crate::flows::testkit::TestApp;
use crate::model::Role;

/// Headers of a caller signed in as `role` (nothing pending), with or without the
/// session's CSRF token.
fn caller(t: &TestApp, role: Role, csrf: bool) -> HeaderMap {
    let name = if role == Role::Admin { "admin" } else { "1001" };
    signed(t, crate::auth::sessions::Grant::of(name, role), csrf)
}

fn signed(t: &TestApp, grant: crate::auth::sessions::Grant<'_>, csrf: bool) -> HeaderMap {
    let s = t.app.sessions().create(grant, Default::default());
    let mut h = HeaderMap::new();
    let cookie = format!("{}={}", super::super::http::SESSION_COOKIE, s.id);
    h.insert(COOKIE, HeaderValue::from_str(&cookie).expect("cookie"));
    if csrf {
        let token = HeaderValue::from_str(&s.session.csrf_token).expect("token");
        h.insert(super::super::guard::CSRF_HEADER, token);
    }
    h
}

/// What the router's access check answers: `Ok` (the handler would run), the API error,
/// or where a page redirects.
fn admitted(t: &TestApp, route: &Route, headers: &HeaderMap) -> Result<(), String> {
    let ctx = super::super::http::Ctx {
        peer: "192.0.2.7:50000".parse().expect("peer"),
        https: false,
    };
    match route.access {
        Access::Api(g) => super::super::guard::check(&t.app, g, headers, &ctx)
            .map(|_| ())
            .map_err(|e| e.code().to_string()),
        Access::Page(n) => pages::admit(&t.app, headers, &ctx, n).map_err(|i| match i {
            pages::Instead::Redirect(to) => format!("redirect {to}"),
            other => format!("{other:?}"),
        }),
    }
}

fn name(r: &Route) -> String {
    format!("{:?} {:?}", r.method, r.path)
}

const PUBLIC: [Guard; 2] = [Guard::Public, Guard::Optional];

#[tokio::test]
async fn without_a_session_only_public_routes_and_the_sign_in_page_answer() {
    let t = TestApp::ready("routes-anonymous").await;
    for route in ROUTES {
        let got = admitted(&t, route, &HeaderMap::new());
        let want = match route.access {
            Access::Api(g) if PUBLIC.contains(&g) => Ok(()),
            Access::Api(_) => Err("unauthenticated".to_string()),
            Access::Page(Need::Anyone) => Ok(()),
            Access::Page(_) => Err("redirect /login".to_string()),
        };
        assert_eq!(got, want, "{}", name(route));
    }
}

#[tokio::test]
async fn a_user_session_gets_403_on_every_admin_route_and_the_dashboard_for_admin_pages() {
    let t = TestApp::ready("routes-user").await;
    let user = caller(&t, Role::User, true);
    let admin = caller(&t, Role::Admin, true);
    let mut admin_routes = 0;
    for route in ROUTES {
        let is_admin = matches!(
            route.access,
            Access::Api(Guard::Admin | Guard::AdminRead | Guard::Owner) | Access::Page(Need::Admin)
        );
        let want = match route.access {
            _ if !is_admin => Ok(()),
            Access::Page(_) => Err("redirect /".to_string()),
            Access::Api(_) => Err("forbidden".to_string()),
        };
        assert_eq!(admitted(&t, route, &user), want, "{}", name(route));
        assert_eq!(admitted(&t, route, &admin), Ok(()), "{}", name(route));
        admin_routes += usize::from(is_admin);
    }
    // Seven admin pages and 21 admin API routes: a new one is counted here on purpose.
    assert_eq!(admin_routes, 28, "admin-only routes in the table");
}

/// An installer's admin session (spec §10): every admin route but the owner's settings —
/// accounts, installers, SMTP, access, the directory, the button, the factory reset.
#[tokio::test]
async fn an_installer_gets_403_on_the_owners_settings_only() {
    let t = TestApp::ready("routes-installer").await;
    let mut grant = crate::auth::sessions::Grant::of("inst", Role::Admin);
    grant.installer = true;
    let installer = signed(&t, grant, true);
    let mut owner_routes = Vec::new();
    for route in ROUTES {
        let want = match route.access {
            Access::Api(Guard::Owner) => Err("forbidden".to_string()),
            _ => Ok(()),
        };
        assert_eq!(admitted(&t, route, &installer), want, "{}", name(route));
        if want.is_err() {
            owner_routes.push(name(route));
        }
    }
    assert_eq!(
        owner_routes,
        [
            "Put Exact(\"/api/v1/recovery/button\")",
            "Put Exact(\"/api/v1/settings/smtp\")",
            "Put Exact(\"/api/v1/settings/access\")",
            "Post Exact(\"/api/v1/settings/access/confirm\")",
            "Put Exact(\"/api/v1/settings/directory\")",
            "Post Exact(\"/api/v1/settings/directory/test\")",
            "Post Exact(\"/api/v1/installers\")",
            "Delete Under(\"/api/v1/installers/\")",
            "Post Exact(\"/api/v1/accounts\")",
            "Post Exact(\"/api/v1/factory-reset\")",
        ]
    );
}

#[tokio::test]
async fn every_signed_in_state_change_needs_the_csrf_token() {
    let t = TestApp::ready("routes-csrf").await;
    let no_token = caller(&t, Role::Admin, false);
    for route in ROUTES.iter().filter(|r| r.method.changes()) {
        let want = match route.access {
            Access::Api(g) if PUBLIC.contains(&g) => Ok(()),
            _ => Err("csrf".to_string()),
        };
        assert_eq!(admitted(&t, route, &no_token), want, "{}", name(route));
    }
}

/// A new state-changing route open to anyone is a decision, not an accident: it must
/// be added here.
#[test]
fn the_state_changes_open_to_anyone_are_exactly_the_ways_in_and_back() {
    let open: Vec<String> = ROUTES
        .iter()
        .filter(|r| r.method.changes() && matches!(r.access, Access::Api(g) if PUBLIC.contains(&g)))
        .map(name)
        .collect();
    let want = [
        "/api/v1/login",
        "/api/v1/login/2fa",
        "/api/v1/confirm-email",
        "/api/v1/recover-with-code",
        "/api/v1/forgot",
        "/api/v1/reset",
        // Reads whether a reset link still works; consumes nothing.
        "/api/v1/reset/check",
        // The language picker before sign-in (a cookie); the account's choice only with
        // a session and its CSRF header.
        "/api/v1/language",
    ]
    .map(|p| format!("Post {:?}", Path::Exact(p)));
    assert_eq!(open, want);
}

#[test]
fn each_method_and_path_is_in_the_table_once_and_allow_comes_from_it() {
    for (i, a) in ROUTES.iter().enumerate() {
        for b in &ROUTES[i + 1..] {
            assert!(
                a.method != b.method || a.path != b.path,
                "{} twice",
                name(a)
            );
        }
    }
    assert_eq!(allow("/api/v1/accounts/1001"), "PUT, DELETE");
    assert_eq!(allow("/api/v1/accounts"), "GET, HEAD, POST");
    assert_eq!(allow("/api/v1/login"), "POST");
    assert_eq!(allow("/healthz"), "GET, HEAD");
    assert!(matches!(find(&Method::GET, "/api/v1/login"), Found::WrongMethod(a) if a == "POST"));
    assert!(matches!(find(&Method::GET, "/nope"), Found::NotFound));
    assert!(matches!(
        find(&Method::DELETE, "/api/v1/sessions/abc"),
        Found::Route(r, "abc") if r.path == Path::Under("/api/v1/sessions/")
    ));
    assert!(matches!(find(&Method::HEAD, "/login"), Found::Route(..)));
}

/// A forced change pending: only the profile page and the routes that do the change
/// (or sign out) let the session in.
#[tokio::test]
async fn a_pending_password_change_admits_only_what_completes_it() {
    let t = TestApp::ready("routes-pending").await;
    let s = t.app.sessions().create(
        crate::auth::sessions::Grant::of("admin", Role::Admin).changing_password(true),
        Default::default(),
    );
    let mut h = HeaderMap::new();
    let cookie = format!("{}={}", super::super::http::SESSION_COOKIE, s.id);
    h.insert(COOKIE, HeaderValue::from_str(&cookie).expect("cookie"));
    let token = HeaderValue::from_str(&s.session.csrf_token).expect("token");
    h.insert(super::super::guard::CSRF_HEADER, token);
    for route in ROUTES {
        let want = match route.access {
            Access::Api(Guard::Public | Guard::Optional | Guard::Session | Guard::Csrf) => Ok(()),
            Access::Api(_) => Err("password_change_required".to_string()),
            Access::Page(Need::Anyone | Need::Pending) => Ok(()),
            Access::Page(_) => Err("redirect /profile".to_string()),
        };
        assert_eq!(admitted(&t, route, &h), want, "{}", name(route));
    }
}

/// The areas that are the administrator's: every route in them is admin-only, whatever
/// is added there later.
#[test]
fn the_administrators_areas_hold_only_admin_routes() {
    let areas = [
        "/api/v1/accounts",
        "/api/v1/settings/",
        "/api/v1/audit",
        "/api/v1/device",
        "/api/v1/factory-reset",
        "/api/v1/recovery/",
        "/api/v1/installers",
        "/accounts",
        "/access",
        "/audit",
        "/device",
        "/factory-reset",
        "/settings/",
    ];
    for route in ROUTES {
        let (Path::Exact(p) | Path::Under(p)) = route.path;
        if areas.iter().any(|a| p.starts_with(a)) {
            assert!(
                matches!(
                    route.access,
                    Access::Api(Guard::Admin | Guard::AdminRead | Guard::Owner)
                        | Access::Page(Need::Admin)
                ),
                "{} is in an admin area but not admin-only",
                name(route)
            );
        }
    }
}
