//! Forgot Password, the reset link (page and API), and the readiness view.

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use std::sync::Arc;

use hyper::{Request, Response, StatusCode};

use super::call::{Call, Reply, Req};
use super::http::{self, Body, Ctx};
use crate::app::App;
use crate::error::Error;
use crate::flows::recovery::{self, ForgotRequest, ResetRequest};

use crate::i18n::page;

/// `GET /confirm-email?token=…`: a page that posts the token (a mail scanner that only
/// fetches the link confirms nothing).
pub fn confirm_page(app: &Arc<App>, req: &Req, _: Call) -> Reply {
    Ok(no_referrer(super::pages::serve(
        app,
        req.headers(),
        page::CONFIRM_EMAIL,
    )))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmForm {
    token: crate::auth::Secret,
}

/// `POST /confirm-email`: 204, the address proven; 200 `{already_confirmed, confirmed_at}`
/// for a link opened before.
pub async fn confirm_email(app: &App, req: Req, _: Call) -> Reply {
    let form: ConfirmForm = http::read_json(req).await?;
    Ok(no_referrer(
        match recovery::email::confirm(app, form.token.expose()).await? {
            recovery::email::Confirmed::Now => http::no_content(),
            recovery::email::Confirmed::Already { at } => http::json(
                StatusCode::OK,
                &serde_json::json!({ "already_confirmed": true, "confirmed_at": at }),
            ),
        },
    ))
}

/// `POST /recovery/check`: sends the "Recovery check" now; the outcome, and when the
/// next one (or the retry) is due.
pub async fn check_now(app: &App, req: Req, _: Call) -> Reply {
    let lang = super::pages::lang(app, req.headers());
    let (outcome, _) = recovery::email::tick(app, true).await?;
    let drill = recovery::email::drill_state(app).await?;
    let body = match outcome {
        Some(r) => {
            let mut v = super::settings::mail_outcome(r.as_ref().err(), lang);
            v["next_due"] = drill.next_due.into();
            v
        }
        None => serde_json::json!({
            "ok": false,
            "message": crate::i18n::t(lang, crate::i18n::k::MSG_CHECK_OFF),
        }),
    };
    Ok(http::json(StatusCode::OK, &body))
}

/// `GET /recovery-codes`: the page that generates and prints them (the session is
/// checked by its API call).
pub fn codes_page(app: &Arc<App>, req: &Req, _: Call) -> Reply {
    Ok(super::pages::serve(
        app,
        req.headers(),
        page::RECOVERY_CODES,
    ))
}

/// `GET /recovery`: everyone learns whether recovery is available; an admin also why not.
pub async fn status(app: &App, req: Req, call: Call) -> Reply {
    let role = call.who().map(|a| a.session.role);
    let mut view = recovery::readiness_for(app, role).await?;
    // The unset clock in the reader's language (the stored view says it in English).
    if let (Some(reads), Some(floor)) = (
        view["clock"]["reads"].as_u64(),
        view["clock"]["floor"].as_u64(),
    ) {
        let lang = super::pages::lang(app, req.headers());
        view["clock"]["message"] = Error::ClockUnset { reads, floor }.message(lang).into();
    }
    Ok(http::json(StatusCode::OK, &view))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ButtonForm {
    mode: crate::model::ButtonMode,
    password: crate::auth::Secret,
}

/// `PUT /recovery/button`: 202 — the change waits for a press at the box.
pub async fn button_put(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let form: ButtonForm = http::read_json(req).await?;
    let pending = recovery::button::request_change(
        app,
        call.ip(),
        &a.session.username,
        form.password,
        form.mode,
    )
    .await?;
    Ok(http::json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "pending": pending }),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordForm {
    password: crate::auth::Secret,
}

/// `POST /recovery-codes`: a fresh set for the signed-in account, shown this once, with
/// what the printed sheet names (model, serial, date).
pub async fn codes_post(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let form: PasswordForm = http::read_json(req).await?;
    let codes =
        recovery::codes::generate(app, call.ip(), &a.session.username, form.password).await?;
    let board = app.board_info();
    let mut r = http::json(
        StatusCode::OK,
        &serde_json::json!({
            "username": &*a.session.username,
            "codes": codes,
            "model": board.map(|b| b.model.as_str()),
            "serial": board.map(|b| b.serial.as_str()),
            "generated_at": app.clock().unix(),
        }),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `POST /recover-with-code`: 204, the code used up and every session of the account ended.
pub async fn recover_with_code(app: &App, req: Req, call: Call) -> Reply {
    let body: recovery::codes::CodeRecovery = http::read_json(req).await?;
    recovery::codes::recover(app, call.ip(), body).await?;
    let mut r = http::no_content();
    http::clear_session_cookie(&mut r, call.ctx.https);
    Ok(r)
}

pub async fn forgot(app: &App, req: Req, call: Call) -> Reply {
    let body: ForgotRequest = http::read_json(req).await?;
    recovery::forgot(app, call.ip(), body).await?;
    Ok(http::json(StatusCode::ACCEPTED, &serde_json::json!({})))
}

fn no_referrer(mut r: Response<Body>) -> Response<Body> {
    r.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// `POST /reset`: every answer, the errors too, carries `Referrer-Policy: no-referrer`.
pub async fn reset(app: &App, req: Req, call: Call) -> Reply {
    let lang = super::pages::lang(app, req.headers());
    let r = match reset_inner(app, call.ctx, req).await {
        Ok(r) => r,
        Err(e) => http::error_response(&e, lang),
    };
    Ok(no_referrer(r))
}

async fn reset_inner(app: &App, ctx: Ctx, req: Request<Incoming>) -> Result<Response<Body>, Error> {
    let body: ResetRequest = http::read_json(req).await?;
    recovery::reset(app, ctx.peer.ip(), body).await?;
    let mut r = http::no_content();
    http::clear_session_cookie(&mut r, ctx.https);
    Ok(r)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkForm {
    token: crate::auth::Secret,
}

/// `POST /reset/check`: 200 with whose link it is and until when, or 410 `token_invalid`
/// (403 `not_local` from outside): nothing is consumed.
pub async fn reset_check(app: &App, req: Req, call: Call) -> Reply {
    let lang = super::pages::lang(app, req.headers());
    let r = async {
        let form: LinkForm = http::read_json(req).await?;
        let view = recovery::reset::check_link(app, call.ip(), &form.token).await?;
        Ok::<_, Error>(http::json(StatusCode::OK, &view))
    }
    .await
    .unwrap_or_else(|e| http::error_response(&e, lang));
    Ok(no_referrer(r))
}

/// `GET /reset?token=…`: the form, or a page naming the allowed networks.
pub fn reset_page(app: &Arc<App>, req: &Req, call: Call) -> Reply {
    let lang = super::pages::lang(app, req.headers());
    let r = match recovery::check_local(app, call.ip()) {
        Ok(()) => http::html(StatusCode::OK, crate::i18n::page(page::RESET, lang)),
        Err(Error::NotLocal { subnets }) => {
            let list = if subnets.is_empty() {
                "the PBX's own network".to_string()
            } else {
                subnets.join(", ")
            };
            http::html_owned(
                StatusCode::FORBIDDEN,
                crate::i18n::page(page::NOT_LOCAL, lang)
                    .replace("{{$subnets}}", &http::escape(&list)),
            )
        }
        Err(e) => http::error_response(&e, lang),
    };
    Ok(no_referrer(r))
}

pub fn forgot_page(app: &Arc<App>, req: &Req, _: Call) -> Reply {
    Ok(super::pages::serve(app, req.headers(), page::FORGOT))
}
