//! `/api/v1/settings/smtp` (+ `/test`), `/api/v1/settings/directory` (+ `/test`) and
//! `/api/v1/profile`.

use hyper::StatusCode;

use super::call::{Call, Reply, Req};
use super::http::{self};
use crate::app::App;
use crate::error::Error;
use crate::flows::profile::{self, ProfileForm};
use crate::flows::smtp::{self, SmtpForm};

pub async fn smtp_get(app: &App, _: Req, _: Call) -> Reply {
    Ok(http::json(StatusCode::OK, &smtp::get(app).await?))
}

pub async fn smtp_put(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let form: SmtpForm = http::read_json(req).await?;
    let view = smtp::save(app, call.ip(), &a.session.username, form).await?;
    Ok(http::json(StatusCode::OK, &view))
}

pub async fn smtp_test(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let lang = super::pages::lang(app, req.headers());
    let form: SmtpForm = http::read_json(req).await?;
    let outcome = smtp::test(app, call.ip(), &a.session.username, form).await?;
    Ok(http::json(
        StatusCode::OK,
        &mail_outcome(outcome.error.as_ref(), lang),
    ))
}

/// `{ok: true}`, or `{ok: false, stage, message, detail}`: the sentence in the reader's
/// language, the system's own words (`os error 111`) beside it.
pub fn mail_outcome(
    error: Option<&crate::mail::transport::MailError>,
    lang: crate::i18n::Lang,
) -> serde_json::Value {
    match error {
        None => serde_json::json!({ "ok": true }),
        Some(e) => serde_json::json!({
            "ok": false,
            "stage": e.stage,
            "message": e.said.text(lang),
            "detail": e.detail,
        }),
    }
}

pub async fn profile_get(app: &App, _: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let account = profile::get(app, &a.session.username).await?;
    let alerts = crate::flows::alerts::switches(&account);
    Ok(http::json(
        StatusCode::OK,
        &serde_json::json!({
            "username": account.username,
            "email": account.email,
            "two_factor": account.two_factor(),
            "alerts": alerts_map(&alerts),
            "alerts_always_on": alerts.iter().filter(|s| !s.optional).map(|s| s.kind).collect::<Vec<_>>(),
        }),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LanguageForm {
    language: String,
}

/// `POST /language`: the picker. Sets the language cookie; signed in with the CSRF
/// header, also the account's own choice, which its mails follow. 204; 400 for a
/// language this firmware does not speak.
pub async fn language_post(app: &App, req: Req, call: Call) -> Reply {
    let headers = req.headers().clone();
    let form: LanguageForm = http::read_json(req).await?;
    let lang = crate::i18n::Lang::from_tag(&form.language)
        .filter(|l| l.shipped())
        .ok_or_else(|| {
            let codes: Vec<&str> = crate::i18n::Lang::shipped_all().map(|l| l.code()).collect();
            Error::InvalidRequest(
                crate::i18n::Msg::new(crate::i18n::k::MSG_NOT_A_LANGUAGE)
                    .arg("language", &form.language)
                    .arg("languages", codes.join(", ")),
            )
        })?;
    // Only with the CSRF header: a page without the session's token (Forgot Password
    // opened while signed in) still sets the cookie.
    if let Ok(Some(a)) = super::guard::check(app, super::guard::Guard::Csrf, &headers, &call.ctx) {
        profile::set_language(app, &a.session.username, lang).await?;
    }
    let mut r = http::no_content();
    http::set_lang_cookie(&mut r, lang, call.ctx.https);
    Ok(r)
}

/// `PUT /profile/alerts {alerts: {kind: bool}, current_password}`: which alert mails
/// the account wants (the password again: a stolen session must not silence them).
pub async fn alerts_put(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let form: profile::AlertsForm = http::read_json(req).await?;
    let alerts = profile::set_alerts(app, call.ip(), &a.session.username, form).await?;
    Ok(http::json(
        StatusCode::OK,
        &serde_json::json!({ "alerts": alerts_map(&alerts) }),
    ))
}

/// `{kind: on}` of the alert switches.
fn alerts_map(switches: &[crate::flows::alerts::Switch]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for s in switches {
        m.insert(s.kind.into(), s.on.into());
    }
    m.into()
}

pub async fn profile_put(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let form: ProfileForm = http::read_json(req).await?;
    let email = profile::set_email(app, call.ip(), &a.session.username, form).await?;
    Ok(http::json(
        StatusCode::OK,
        &serde_json::json!({ "username": &*a.session.username, "email": email }),
    ))
}

/// `GET /settings/directory`: fleet sign-in's settings, never a secret.
pub async fn directory_get(app: &App, _: Req, _: Call) -> Reply {
    let view = crate::flows::directory_settings::view(app).await?;
    Ok(http::json(StatusCode::OK, &view))
}

/// `PUT /settings/directory` (the owner, with the password).
pub async fn directory_put(app: &App, req: Req, call: Call) -> Reply {
    let a = call.authed()?;
    let form = http::read_json(req).await?;
    let view =
        crate::flows::directory_settings::save(app, call.ip(), &a.session.username, form).await?;
    Ok(http::json(StatusCode::OK, &view))
}

/// `POST /settings/directory/test {username, password}` → `{ok, stage?, message}`.
pub async fn directory_test(app: &App, req: Req, call: Call) -> Reply {
    call.authed()?;
    let lang = super::pages::lang(app, req.headers());
    let form = http::read_json(req).await?;
    let outcome = crate::flows::directory_settings::test(app, call.ip(), lang, form).await?;
    Ok(http::json(StatusCode::OK, &outcome))
}
