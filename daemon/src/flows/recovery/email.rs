//! A recovery email that is proven to work (spec §8): binding an address mails a
//! confirmation link (single use, kept as SHA-256, 7 days); only a confirmed address
//! counts as ready. Every `recovery.drill_days` a "Recovery check" mail with a fresh link
//! goes to each bound admin address; a failed send is retried with backoff and shown;
//! unconfirmed for `drill_days + 7` days, the address is reported stale (banner, `ctl
//! status`, audit). The schedule is stored, so it survives restarts.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{envelope, forgot::link_base, send_error};
use crate::app::App;
use crate::auth::{random_token, token_digest};
use crate::error::Error;
use crate::mail::message as mail;
use crate::mail::transport::{MailError, Stage};
use crate::model::AuditKind;
use crate::model::{EmailCheck, Role};

/// How long a confirmation link works.
pub const CHECK_TTL: u64 = 7 * 86_400;
/// Grace after a missed drill before the address counts as stale.
pub const STALE_GRACE: u64 = 7 * 86_400;
/// The longest wait between retries of a failed drill.
const MAX_RETRY: u64 = 6 * 3600;

impl crate::store::Setting for Drill {
    const KEY: &'static str = "recovery_drill";
}

/// The drill's schedule and its last outcome, stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drill {
    /// Unix seconds of the next send (a retry after a failure); 0: not scheduled yet.
    pub next_due: u64,
    #[serde(default)]
    pub last_sent: Option<u64>,
    /// Failed sends in a row.
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub last_error: Option<DrillError>,
    /// The confirmation time (or binding time) a stale report was audited for, so it is
    /// written once per lapse.
    #[serde(default)]
    pub stale_reported: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillError {
    pub at: u64,
    pub stage: Stage,
    pub message: String,
}

/// Why a confirmation link is mailed: binding an address, or the periodic drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Bound,
    Drill,
}

/// Mails a fresh confirmation link to `username`'s bound address (replacing the older
/// link). `Ok(false)`: no address bound.
pub async fn send_check(app: &App, username: &str, why: Why) -> Result<bool, MailError> {
    let data = app.data().map_err(|e| send_error(e.to_string()))?;
    let Some(account) = super::account(app, username)
        .await
        .map_err(|e| send_error(e.to_string()))?
    else {
        return Ok(false);
    };
    let lang = account.mail_lang(app.config().language);
    let Some(email) = account.email else {
        return Ok(false);
    };
    let envelope = envelope(app, &email, lang).await?;
    let token = random_token();
    let now = app.clock().unix();
    let check = EmailCheck {
        digest: crate::auth::hex(&token_digest(&token)),
        expires_at: now + CHECK_TTL,
        used_at: None,
    };
    let bound = email.clone();
    data.update_account(&account.username, move |a| {
        // Only for the address it was made for.
        if a.email.as_deref() == Some(bound.as_str()) {
            a.email_check = Some(check.clone());
        }
    })
    .await
    .map_err(|e| send_error(e.to_string()))?;
    let link = format!("{}/confirm-email?token={token}", link_base(app));
    let msg = mail::email_check(
        &envelope.head,
        &mail::EmailCheckText {
            username: &account.username,
            link: &link,
            expires_at: now + CHECK_TTL,
            drill: why == Why::Drill,
        },
    )
    .map_err(send_error)?;
    envelope.transport.send(msg).await?;
    tracing::info!(user = %account.username, drill = (why == Why::Drill), "recovery email check sent");
    Ok(true)
}

/// `POST /confirm-email`: the link was opened; the address is proven. Grants nothing
/// else. One answer (410) for unknown, used and lapsed links.
pub async fn confirm(app: &App, token: &str) -> Result<Confirmed, Error> {
    let wanted = crate::auth::hex(&token_digest(token));
    let now = app.clock().unix();
    let data = app.data()?;
    let accounts = data.accounts().await?;
    let holder = accounts.into_iter().find(|a| {
        a.email_check.as_ref().is_some_and(|c| {
            crate::auth::ct_eq(c.digest.as_bytes(), wanted.as_bytes())
                && (c.used_at.is_some() || c.expires_at > now)
        })
    });
    let Some(holder) = holder else {
        return Err(Error::TokenInvalid);
    };
    // Opened before (a second click, a mail client's preview): said, nothing changed.
    if let Some(at) = holder.email_check.as_ref().and_then(|c| c.used_at) {
        return Ok(Confirmed::Already { at });
    }
    let used = data
        .update_account(&holder.username, move |a| {
            let check = a
                .email_check
                .as_mut()
                .filter(|c| c.digest == wanted && c.used_at.is_none());
            let ours = check.is_some();
            if let Some(c) = check {
                c.used_at = Some(now);
                a.email_confirmed_at = Some(now);
            }
            ours
        })
        .await?;
    if !used.is_some_and(|u| u.decided) {
        return Err(Error::TokenInvalid);
    }
    app.audit(
        AuditKind::RecoveryEmailConfirmed,
        Some(&holder.username),
        None,
        holder.email.as_deref(),
    );
    tracing::info!(user = %holder.username, "recovery email confirmed");
    Ok(Confirmed::Now)
}

/// What opening a confirmation link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    /// The address is proven now.
    Now,
    /// The link was opened before, at `at`: the address stays proven.
    Already { at: u64 },
}

/// The address of `a` has gone unconfirmed past the drill period and its grace.
pub fn stale(app: &App, a: &crate::model::Account) -> Option<u64> {
    let period = app.config().recovery.drill?.as_secs();
    a.email.as_ref()?;
    let since = a.email_confirmed_at.or(a.email_bound_at)?;
    (app.clock().unix() > since + period + STALE_GRACE).then_some(since)
}

pub async fn drill_state(app: &App) -> Result<Drill, Error> {
    Ok(app.data()?.setting::<Drill>().await?.unwrap_or_default())
}

/// One look at the schedule: sends the drill when due, reports a stale address once.
/// `now = true` sends whatever the schedule says. Returns the drill's outcome when it
/// ran, and how long until the next look is needed.
pub async fn tick(
    app: &App,
    now: bool,
) -> Result<(Option<Result<(), MailError>>, Duration), Error> {
    let Some(period) = app.config().recovery.drill else {
        return Ok((None, Duration::from_secs(3600)));
    };
    let at = app.clock().unix();
    let mut d = drill_state(app).await?;
    let before = d.clone();
    let mut outcome = None;
    if d.next_due == 0 && !now {
        d.next_due = at + period.as_secs();
        // Addresses bound before confirmation existed count from now.
        let data = app.data()?;
        for a in data.accounts().await? {
            if a.email.is_some() && a.email_bound_at.is_none() {
                data.update_account(&a.username, move |x| {
                    x.email_bound_at = x.email_bound_at.or(Some(at));
                })
                .await?;
            }
        }
    } else if now || at >= d.next_due {
        let r = run_drill(app).await;
        match &r {
            Ok(()) => {
                d.last_sent = Some(at);
                d.failures = 0;
                d.last_error = None;
                d.next_due = at + period.as_secs();
            }
            Err(e) => {
                d.failures = d.failures.saturating_add(1);
                d.last_error = Some(DrillError {
                    at,
                    stage: e.stage,
                    message: e.message.clone(),
                });
                d.next_due = at + retry_after(app, d.failures);
                tracing::error!(stage = ?e.stage, failures = d.failures,
                    "recovery check mail failed: {}; retrying in {} s", e.message, d.next_due - at);
                app.audit(AuditKind::RecoveryCheckFailed, None, None, Some(&e.message));
            }
        }
        outcome = Some(r);
    }
    let admins = app.data()?.accounts().await?;
    for a in admins.iter().filter(|a| a.role == Role::Admin) {
        if let Some(since) = stale(app, a) {
            if d.stale_reported != Some(since) {
                d.stale_reported = Some(since);
                tracing::warn!(user = %a.username, "recovery email not confirmed for too long: recovery by email may not work");
                app.audit(
                    AuditKind::RecoveryEmailStale,
                    Some(&a.username),
                    None,
                    a.email.as_deref(),
                );
            }
        }
    }
    if d != before {
        let stored = d.clone();
        app.data()?.save(stored).await?;
        if now {
            app.recovery().wake_drill();
        }
    }
    Ok((outcome, Duration::from_secs(d.next_due.saturating_sub(at))))
}

/// After `failures` failed sends in a row: `recovery.drill_retry_s` doubled each time,
/// at most six hours.
fn retry_after(app: &App, failures: u32) -> u64 {
    let base = app.config().recovery.drill_retry.as_secs().max(1);
    base.saturating_mul(1u64 << failures.saturating_sub(1).min(20))
        .min(MAX_RETRY.max(base))
}

/// Sends the check to every admin with a bound address; the first failure fails it.
async fn run_drill(app: &App) -> Result<(), MailError> {
    let admins = match app.data() {
        Ok(d) => d.accounts().await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let mut result = Ok(());
    for a in admins
        .iter()
        .filter(|a| a.role == Role::Admin && a.email.is_some())
    {
        if let Err(e) = send_check(app, &a.username, Why::Drill).await {
            result = Err(e);
        }
    }
    result
}

/// Looks at the schedule now and then: at the next due time, at least once a minute
/// (the wall clock may be set late on a box without RTC), and when a check sent out of
/// turn changed it.
pub async fn drill_worker(app: Arc<App>) {
    loop {
        let wait = match tick(&app, false).await {
            Ok((_, wait)) => wait,
            Err(e) => {
                tracing::warn!("recovery check schedule: {e}");
                Duration::from_secs(60)
            }
        };
        let nap = tokio::time::sleep(wait.clamp(Duration::from_secs(1), Duration::from_secs(60)));
        tokio::select! {
            () = nap => {}
            () = app.recovery().drill_woken() => {}
        }
    }
}

#[cfg(test)]
mod tests;
