//! Sign-in over HTTP: `POST /login` (session and device cookies), `/logout`,
//! `GET /session`, `POST /password`, and the second factor: `POST /login/2fa`,
//! `/2fa/setup`, `/2fa/enable`, `/2fa/disable`. Decode, call [`crate::flows::login`] or
//! [`crate::flows::twofactor`], encode.

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};

use std::sync::Arc;

use super::call::{Call, Reply, Req};
use super::http::{self, Body, Ctx};
use crate::app::App;
use crate::auth::sessions::Session;
use crate::flows::login::{self, LoginOutcome, LoginRequest, PasswordRequest};
use crate::flows::twofactor::{self, CodeForm, DisableForm};

pub async fn post_login(app: &App, req: Req, call: Call) -> Reply {
    let device = http::device_cookie(req.headers(), call.ctx.https).map(str::to_string);
    let agent = user_agent(&req);
    let body: LoginRequest = http::read_json(req).await?;
    let outcome = login::login(app, call.ip(), body, device.as_deref(), &agent).await?;
    Ok(answer(outcome, call.ctx, false))
}

/// The answer of a sign-in step: the session (`code_step`: the pre-session cookie
/// cleared), or the pre-session of the code owed (the box's second factor, or the
/// directory's one-time code with its message).
fn answer(outcome: LoginOutcome, ctx: Ctx, code_step: bool) -> Response<Body> {
    let (presession, body) = match outcome {
        LoginOutcome::SignedIn(done) => {
            let mut r = signed_in(done, ctx);
            if code_step {
                http::set_presession_cookie(&mut r, None, ctx.https);
            }
            return r;
        }
        LoginOutcome::SecondFactor { presession } => (
            presession,
            serde_json::json!({ "two_factor_required": true }),
        ),
        LoginOutcome::DirectoryCode {
            presession,
            message,
        } => (
            presession,
            serde_json::json!({
                "two_factor_required": true,
                "directory_code": true,
                "message": message,
            }),
        ),
    };
    let mut r = http::json(StatusCode::OK, &body);
    http::set_presession_cookie(&mut r, Some(&presession), ctx.https);
    r
}

/// The browser's User-Agent (for the Sessions page), or empty.
fn user_agent(req: &Request<Incoming>) -> String {
    req.headers()
        .get(hyper::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The answer of a completed sign-in: the session view and its cookies.
/// A session as the API shows it (the sign-in answer, `GET /api/v1/session`).
#[derive(serde::Serialize)]
struct View<'a> {
    username: &'a str,
    role: &'static str,
    must_change_password: bool,
    #[serde(
        rename = "two_factor_enrollment_required",
        skip_serializing_if = "is_false"
    )]
    must_enroll_2fa: bool,
    /// An installer's session: the owner's settings are not offered.
    #[serde(skip_serializing_if = "is_false")]
    installer: bool,
    csrf_token: &'a str,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn view(s: &Session) -> Response<Body> {
    http::json(
        StatusCode::OK,
        &View {
            username: &s.username,
            role: s.role.as_str(),
            must_change_password: s.must_change_password,
            must_enroll_2fa: s.must_enroll_2fa,
            installer: s.installer,
            csrf_token: &s.csrf_token,
        },
    )
}

fn signed_in(done: login::SignedIn, ctx: Ctx) -> Response<Body> {
    let mut r = view(&done.new.session);
    http::set_session_cookie(&mut r, &done.new.id, ctx.https);
    if let Some(c) = done.device_cookie {
        http::set_device_cookie(&mut r, &c, ctx.https);
    }
    if let Some(lang) = done.language {
        http::set_lang_cookie(&mut r, lang, ctx.https);
    }
    r
}

/// `POST /login/2fa {code}`: completes a sign-in that owes its second factor.
pub async fn post_login_2fa(app: &App, req: Req, call: Call) -> Reply {
    let pre = http::presession_cookie(req.headers(), call.ctx.https).map(str::to_string);
    let form: CodeForm = http::read_json(req).await?;
    let outcome = twofactor::complete_login(app, call.ip(), pre.as_deref(), &form.code).await?;
    Ok(answer(outcome, call.ctx, true))
}

/// `POST /2fa/setup {password}`: the secret, its URI and QR code.
pub async fn post_2fa_setup(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Form {
        password: crate::auth::Secret,
    }
    let form: Form = http::read_json(req).await?;
    let setup = twofactor::setup(app, call.ip(), &a.session.username, form.password).await?;
    let mut r = http::json(StatusCode::OK, &setup);
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

/// `POST /2fa/enable {code}`: 204, and the account signs in again (with its code).
pub async fn post_2fa_enable(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let form: CodeForm = http::read_json(req).await?;
    twofactor::enable(app, call.ip(), &a.session.username, &form.code).await?;
    let mut r = http::no_content();
    http::clear_session_cookie(&mut r, call.ctx.https);
    Ok(r)
}

/// `POST /2fa/disable {password, code}`: 204.
pub async fn post_2fa_disable(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let form: DisableForm = http::read_json(req).await?;
    twofactor::disable(app, call.ip(), &a.session.username, form).await?;
    Ok(http::no_content())
}

pub fn post_logout(app: &Arc<App>, _: &Req, call: Call) -> Reply {
    let a = call.authed()?;
    app.sessions().remove_key(&a.key);
    let mut r = http::no_content();
    http::clear_session_cookie(&mut r, call.ctx.https);
    Ok(r)
}

pub fn get_session(_: &Arc<App>, _: &Req, call: Call) -> Reply {
    let a = call.authed()?;
    Ok(view(&a.session))
}

pub async fn post_password(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let body: PasswordRequest = http::read_json(req).await?;
    let ended = login::change_password(app, call.ip(), &a.session, body).await?;
    let mut r = http::no_content();
    // 204 has no body: the headers tell the UI that this session is gone too.
    r.headers_mut()
        .insert("x-pbx-sessions-ended", HeaderValue::from(ended));
    http::clear_session_cookie(&mut r, call.ctx.https);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// What the sign-in answer and `GET /api/v1/session` show of a session.
    #[tokio::test]
    async fn the_session_view_names_the_user_role_pending_change_and_csrf_token() {
        let clock = std::sync::Arc::new(crate::clock::ManualClock::default());
        let sessions = crate::auth::sessions::Sessions::new(
            clock,
            std::time::Duration::from_secs(1800),
            std::time::Duration::from_secs(43_200),
        );
        let grant = crate::auth::sessions::Grant::of("1001", crate::model::Role::User);
        let n = sessions.create(grant.changing_password(true), Default::default());
        let body = view(&n.session).into_body().collect().await.expect("body");
        let v: serde_json::Value = serde_json::from_slice(&body.to_bytes()).expect("json");
        assert_eq!(
            v,
            serde_json::json!({
                "username": "1001",
                "role": "user",
                "must_change_password": true,
                "csrf_token": &*n.session.csrf_token,
            })
        );
    }
}
