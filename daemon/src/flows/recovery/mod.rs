//! Password recovery by email (spec §1.2, §4, §5), as flows without HTTP:
//!
//! - this file: readiness (is a way back in ready?). What the rules keep in RAM (the
//!   rate limits, the pending button change) is [`crate::auth::recovery`]; the mail
//!   queue they fill is [`crate::mail::outbox`].
//! - [`forgot`]: Forgot Password — answered 202 before anything is looked up; the
//!   lookup, the email comparison, the token and the mail happen in the worker, so the
//!   answer is the same bytes after the same work whether or not the pair matched.
//! - [`reset`]: the reset link — the local-network rule ([`crate::flows::local`]) and the
//!   single-use token.
//! - [`button`]: the recovery press (credential-only reset, mail, off) and the change
//!   of its mode, confirmed at the box.
//! - [`codes`]: offline recovery codes (generated with the password, one of them and
//!   a new password get the account back from the local network).
//! - [`email`]: the recovery address proven by a confirmation link, and the periodic
//!   "Recovery check" drill that keeps it proven.
//! - [`worker`]: sends queued mail off the request path (reset links, notices).
//!
//! The mail itself (texts, SMTP/outbox) is [`crate::mail`].

pub mod button;
pub mod codes;
pub mod email;
pub mod forgot;
pub mod reset;
pub mod worker;

pub use crate::mail::outbox::MailJob;
pub use forgot::{forgot, send_reset_link, ForgotRequest};
pub use reset::{check_local, reset, ResetRequest};
pub use worker::mail_worker;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::Error;
use crate::i18n::Lang;
use crate::mail::message::Head;
use crate::mail::transport::{self as mailer, MailError, SmtpSettings, Stage, Transport};
use crate::model::{Account, Role, ADMIN};
use crate::store::{Setting, Store};
use lettre::message::Mailbox;

/// The saved SMTP route of recovery mail.
impl Setting for SmtpSettings {
    const KEY: &'static str = "smtp";
}

impl Setting for LastTest {
    const KEY: &'static str = "smtp_last_test";
}

/// The outcome of the last test mail, kept for the readiness view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastTest {
    pub ok: bool,
    pub at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

/// What the dashboard and `GET /recovery` show.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub available: bool,
    pub smtp_configured: bool,
    /// Dev mode without SMTP: mail goes to the outbox directory.
    pub outbox: bool,
    pub email_bound: bool,
    pub last_test: Option<LastTest>,
    /// When the admin's address was last proven (its link opened); `None`: unconfirmed.
    pub email_confirmed_at: Option<u64>,
    /// Unconfirmed past the drill period and its grace: recovery by email may not work.
    pub email_stale: bool,
    /// The drill's schedule and last outcome.
    pub drill: email::Drill,
    /// Unused offline recovery codes of the admin account.
    pub codes_left: usize,
    /// What the recovery press does, and a change waiting for its press.
    pub button: button::ButtonState,
    /// The clock reads below the newest time this box has seen (phone codes cannot be
    /// checked); `None` when it is set.
    pub clock: Option<ClockUnset>,
    /// Email recovery works now: a way to send, an address, proven by its link and not
    /// stale. The one answer the dashboard, the banner and `ctl status` show.
    pub email_ready: bool,
    /// What email recovery still needs, in the order to do it (the dashboard links each
    /// to where it is done): `smtp` (save the email settings), `bind` (bind a recovery
    /// email to the admin), `confirm` (open the link of the confirmation mail), `stale`
    /// (not confirmed for too long: send a recovery check), `check_failed` (the last
    /// recovery check mail could not be sent).
    pub missing: Vec<&'static str>,
}

/// An unset clock, for the pages: what it reads and the floor, in Unix seconds and words.
#[derive(Debug, Clone, Serialize)]
pub struct ClockUnset {
    pub reads: u64,
    pub floor: u64,
    pub message: String,
}

/// Whether the clock is unset now, as the pages and `ctl status` show it.
pub fn clock_unset(app: &App) -> Option<ClockUnset> {
    app.time().unset().map(|u| ClockUnset {
        reads: u.reads,
        floor: u.floor,
        message: Error::ClockUnset {
            reads: u.reads,
            floor: u.floor,
        }
        .to_string(),
    })
}

/// Where mail goes now: saved SMTP settings, else the dev outbox, else nowhere.
pub async fn transport(app: &App, data: &Store) -> Result<Option<Transport>, Error> {
    if let Some(s) = data.setting::<SmtpSettings>().await? {
        return Ok(Some(Transport::Smtp(s)));
    }
    let config = app.config();
    Ok(config
        .dev
        .then(|| Transport::Outbox(config.storage.state_dir.join("outbox"))))
}

/// Where one mail goes: the transport now and both addresses, parsed.
pub struct Envelope {
    pub transport: Transport,
    pub head: Head,
}

/// A mail that could not go out before a server was asked (stage `Send`): why, and the
/// technical detail if there is one.
pub fn send_error(detail: impl std::fmt::Display) -> MailError {
    MailError::new(
        Stage::Send,
        crate::i18n::Msg::new(crate::i18n::k::SMTP_NOT_SENT),
        Some(detail.to_string()),
    )
}

/// A mail that cannot go out for a reason the PBX knows, in words.
fn unsent(key: crate::i18n::Key) -> MailError {
    MailError::new(Stage::Send, crate::i18n::Msg::new(key), None)
}

/// What every mail of this box carries: the addresses, the `Message-ID` host, the
/// recipient's language and the box's model and serial.
pub fn head(app: &App, from: Mailbox, to: Mailbox, lang: Lang) -> Head {
    Head {
        from,
        to,
        host: mail_host(app),
        lang,
        device: app
            .board_info()
            .map(|b| (b.model.clone(), b.serial.clone())),
    }
}

/// The language of `username`'s mail: its own choice, else the box's `i18n.default`.
pub async fn mail_lang(app: &App, username: &str) -> Lang {
    let default = app.config().language;
    match account(app, username).await {
        Ok(Some(a)) => a.mail_lang(default),
        _ => default,
    }
}

/// The envelope of a mail to `to` (in `lang`) through the transport of now.
pub async fn envelope(app: &App, to: &str, lang: Lang) -> Result<Envelope, MailError> {
    let data = app.data().map_err(|e| send_error(e.to_string()))?;
    let transport = transport(app, &data)
        .await
        .map_err(|e| send_error(e.to_string()))?
        .ok_or_else(|| unsent(crate::i18n::k::SMTP_NO_TRANSPORT))?;
    let from = mailer::parse_address(&transport.from_address())
        .ok_or_else(|| unsent(crate::i18n::k::SMTP_BAD_SENDER))?;
    let to = mailer::parse_address(to).ok_or_else(|| unsent(crate::i18n::k::SMTP_BAD_RECIPIENT))?;
    Ok(Envelope {
        transport,
        head: head(app, from, to, lang),
    })
}

pub async fn readiness(app: &App) -> Result<Readiness, Error> {
    let data = app.data()?;
    let smtp = data.setting::<SmtpSettings>().await?.is_some();
    let admin = data.account(ADMIN).await?;
    let last_test = data.setting::<LastTest>().await?;
    let email_bound = admin.as_ref().is_some_and(|a| a.email.is_some());
    let outbox = !smtp && app.config().dev;
    let email_confirmed_at = admin.as_ref().and_then(|a| a.email_confirmed_at);
    let email_stale = admin
        .as_ref()
        .is_some_and(|a| email::stale(app, a).is_some());
    let drill = email::drill_state(app).await?;
    let available = (smtp || outbox) && email_bound;
    let missing: Vec<&'static str> = [
        (!smtp && !outbox, "smtp"),
        (!email_bound, "bind"),
        (email_bound && email_confirmed_at.is_none(), "confirm"),
        (
            email_bound && email_confirmed_at.is_some() && email_stale,
            "stale",
        ),
        (email_bound && drill.last_error.is_some(), "check_failed"),
    ]
    .into_iter()
    .filter_map(|(yes, step)| yes.then_some(step))
    .collect();
    Ok(Readiness {
        email_ready: available && email_confirmed_at.is_some() && !email_stale,
        missing,
        available,
        smtp_configured: smtp,
        outbox,
        email_bound,
        last_test,
        email_confirmed_at,
        email_stale,
        drill,
        codes_left: admin.map_or(0, |a| a.recovery_codes.len()),
        button: button::state(app).await,
        clock: clock_unset(app),
    })
}

/// An account by name, read off the runtime.
pub(super) async fn account(app: &App, username: &str) -> Result<Option<Account>, Error> {
    Ok(app.data()?.account(username).await?)
}

/// The host a mail's `Message-ID` names: the box's hostname, else its serial.
pub fn mail_host(app: &App) -> String {
    let name = match (app.hostname(), app.board_info()) {
        ("", Some(b)) => b.serial.clone(),
        (h, _) => h.to_string(),
    };
    crate::mail::message::id_host(&name)
}

/// Admins see the full readiness; everyone else whether recovery by email is available
/// and what the recovery press does.
pub async fn readiness_for(app: &App, role: Option<Role>) -> Result<serde_json::Value, Error> {
    let r = readiness(app).await?;
    Ok(match role {
        Some(Role::Admin) => {
            serde_json::to_value(&r).map_err(|e| Error::Internal(e.to_string()))?
        }
        // What the button does is no secret from whoever stands at the box: the locked-out
        // owner needs it on the Forgot Password page.
        _ => {
            let mut view = serde_json::json!({ "available": r.available, "button": r.button.mode });
            // An unset clock is no secret: the sign-in page shows why a code cannot work.
            if let Some(c) = r.clock {
                view["clock"] =
                    serde_json::to_value(c).map_err(|e| Error::Internal(e.to_string()))?;
            }
            view
        }
    })
}
