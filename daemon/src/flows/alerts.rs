//! Alerts (spec §10): what someone watching the box wants to hear at once — a sign-in
//! from a new browser, an address blocked, an account protected, a second factor locked
//! or turned off, new recovery codes, the button's credential reset, a factory reset
//! asked from the web, new SMTP settings, a new admin-role account, a change reverted
//! after its probation, an installer's sign-in. Each is also an audit event (written
//! where it happens); the mail goes to the owner's confirmed address and, for one about
//! another account, to that account's. The first seven kinds can be turned off on the
//! profile; at most `access.alerts_per_hour` mails go out an hour, the rest are counted
//! and mailed as one summary when the hour is over.

use std::net::IpAddr;

use serde::Serialize;

use crate::app::App;
use crate::mail::outbox::{MailJob, Verdict};
use crate::model::{Account, AlertKind, AuditKind};

/// Mails `job` (an alert of `kind`) unless the hour's budget is spent; `blocked`: the
/// address of an address block (the hour's later ones are summarised).
pub fn raise(app: &App, kind: AlertKind, blocked: Option<IpAddr>, job: MailJob) {
    let cap = app.config().access.alerts_per_hour;
    let user = match &job {
        MailJob::Alert { user, .. } => user.as_deref(),
        MailJob::FactorLocked { username, .. } => Some(username.as_str()),
        _ => None,
    };
    match app
        .outbox()
        .alerts()
        .admit(kind.name(), user, blocked, app.clock().mono(), cap)
    {
        Verdict::Send => app.outbox().enqueue(job),
        Verdict::Held => {
            tracing::info!(
                kind = kind.name(),
                "alert held: this hour's alert mails are spent"
            )
        }
        Verdict::Aggregated => {}
    }
}

/// An alert whose mail is the texts of `kind` with `args` (`{user}`, `{ip}`, ...) filled
/// in; `user`: the account it is about.
pub fn alert(app: &App, kind: AlertKind, user: Option<&str>, args: Vec<(&'static str, String)>) {
    let job = MailJob::Alert {
        kind,
        user: user.map(str::to_string),
        args,
    };
    let blocked = match kind {
        AlertKind::AddressBlocked => args_ip(&job),
        _ => None,
    };
    raise(app, kind, blocked, job);
}

fn args_ip(job: &MailJob) -> Option<IpAddr> {
    match job {
        MailJob::Alert { args, .. } => args
            .iter()
            .find(|(n, _)| *n == "ip")
            .and_then(|(_, v)| v.parse().ok()),
        _ => None,
    }
}

/// Queues what an hour that is over owes: the summary of held alerts and of the
/// addresses blocked after the first (called every few seconds).
pub fn hourly(app: &App) {
    let due = app.outbox().alerts().due(app.clock().mono());
    if !due.held.is_empty() {
        let n: u32 = due.held.iter().map(|(_, _, c)| c).sum();
        let list = due
            .held
            .iter()
            .map(|(k, u, c)| {
                format!(
                    "{k} {}×{c}",
                    u.as_deref().map(|u| format!("{u} ")).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        app.audit(
            AuditKind::AlertsHeld,
            None,
            None,
            Some(&format!("{n} alert mails held back: {list}")),
        );
        app.outbox().enqueue(MailJob::AlertsHeld { held: due.held });
    }
    if !due.blocked.is_empty() {
        app.outbox().enqueue(MailJob::BlockedSummary {
            blocked: due.blocked,
        });
    }
}

/// Whether `account` wants alerts of `kind` (the last kinds always come).
pub fn wants(account: &Account, kind: AlertKind) -> bool {
    !kind.optional() || !account.alerts_off.iter().any(|k| k == kind.name())
}

/// The profile's switches: every kind, on or off, and which may be turned off.
#[derive(Debug, Serialize)]
pub struct Switch {
    pub kind: &'static str,
    pub on: bool,
    pub optional: bool,
}

pub fn switches(account: &Account) -> Vec<Switch> {
    AlertKind::ALL
        .into_iter()
        .map(|k| Switch {
            kind: k.name(),
            on: wants(account, k),
            optional: k.optional(),
        })
        .collect()
}

/// The alert kinds an account turns off after the profile's `{kind: bool}` (kinds it
/// does not name keep their state): an unknown kind, or turning off one that always
/// comes, is refused in words.
pub fn alerts_off(
    current: &[String],
    wanted: &std::collections::BTreeMap<String, bool>,
) -> Result<Vec<String>, crate::error::Error> {
    let mut off: Vec<String> = current
        .iter()
        .filter(|k| !wanted.contains_key(k.as_str()))
        .cloned()
        .collect();
    for (name, on) in wanted {
        let kind = AlertKind::from_name(name).ok_or_else(|| {
            crate::error::Error::InvalidRequest(
                crate::i18n::Msg::new(crate::i18n::k::MSG_ALERT_UNKNOWN).arg("kind", name),
            )
        })?;
        if !on && !kind.optional() {
            return Err(crate::error::Error::InvalidRequest(
                crate::i18n::Msg::new(crate::i18n::k::MSG_ALERT_ALWAYS).arg("kind", name),
            ));
        }
        if !on {
            off.push(kind.name().to_string());
        }
    }
    Ok(off)
}
