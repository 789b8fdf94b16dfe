//! The mail worker: sends queued mail one at a time, off the request path — reset links
//! (from [`super::forgot`]) and the notices of a changed password or recovery address
//! and of the button's credential reset.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{mail_lang, MailJob};
use crate::app::App;
use crate::flows::alerts::wants;
use crate::mail::message as mail;
use crate::mail::transport as mailer;
use crate::model::{AlertKind, ADMIN};

/// The account's recovery address if it is confirmed: an unconfirmed one may be
/// anybody's, so alerts go only to a proven one.
async fn confirmed_address(app: &App, username: &str) -> Option<String> {
    let account = super::account(app, username).await.ok()??;
    account
        .email
        .filter(|_| account.email_confirmed_at.is_some())
}

/// Sends a notice to `to` if mail works; `what` names it in the log.
async fn send_notice(
    app: &App,
    username: &str,
    to: &str,
    what: &str,
    build: &(dyn Fn(&mail::Head) -> Result<lettre::Message, String> + Sync),
) {
    let lang = mail_lang(app, username).await;
    let Ok(super::Envelope { transport, head }) = super::envelope(app, to, lang).await else {
        return;
    };
    let msg = match build(&head) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("cannot build the {what}: {e}");
            return;
        }
    };
    match transport.send(msg).await {
        Ok(()) => tracing::info!(user = %username, "{what} sent"),
        Err(e) => {
            tracing::error!(user = %username, stage = ?e.stage, "{what} failed: {}", e.message)
        }
    }
}

async fn handle_changed(app: &App, username: &str, ip: IpAddr, how: crate::i18n::Key) {
    let Ok(Some(account)) = super::account(app, username).await else {
        return;
    };
    let Some(to) = account.email else { return };
    let at = app.clock().unix();
    send_notice(app, username, &to, "password-change notice", &|h| {
        mail::password_changed(h, username, at, &ip.to_string(), how)
    })
    .await;
}

/// The notice of new SMTP settings, through the ones they replaced (the new ones may be
/// an attacker's relay), to the admin's confirmed address.
async fn smtp_changed(app: &App, old: &mailer::SmtpSettings, by: &str, ip: IpAddr, route: &str) {
    let Some(to) = confirmed_address(app, ADMIN)
        .await
        .and_then(|e| mailer::parse_address(&e))
    else {
        return;
    };
    let Some(from) = mailer::parse_address(&old.from) else {
        return;
    };
    let at = app.clock().unix();
    let head = super::head(app, from, to, mail_lang(app, ADMIN).await);
    let msg = match mail::smtp_changed(&head, by, at, &ip.to_string(), route) {
        Ok(m) => m,
        Err(e) => return tracing::error!("cannot build the SMTP-change notice: {e}"),
    };
    match mailer::send_smtp(old, msg).await {
        Ok(()) => tracing::info!("SMTP-change notice sent the old way"),
        Err(e) => tracing::error!(stage = ?e.stage, "SMTP-change notice failed: {}", e.message),
    }
}

/// Sends queued mail one at a time, off the request path.
pub async fn mail_worker(app: Arc<App>, mut rx: mpsc::Receiver<MailJob>) {
    while let Some(job) = rx.recv().await {
        match job {
            MailJob::Forgot {
                username,
                email,
                ip,
            } => super::forgot::handle_forgot(&app, &username, &email, ip).await,
            MailJob::PasswordChanged { username, ip, how } => {
                handle_changed(&app, &username, ip, how).await
            }
            MailJob::EmailChanged {
                username,
                old,
                new,
                ip,
            } => {
                let at = app.clock().unix();
                send_notice(&app, &username, &old, "email-change notice", &|h| {
                    mail::email_changed(h, &username, new.as_deref(), at, &ip.to_string())
                })
                .await;
            }
            MailJob::ConfirmEmail { username } => {
                match super::email::send_check(&app, &username, super::email::Why::Bound).await {
                    Ok(_) => {}
                    Err(e) => tracing::error!(user = %username, stage = ?e.stage,
                        "recovery email confirmation failed: {}", e.message),
                }
            }
            MailJob::SmtpChanged { old, by, ip, route } => {
                smtp_changed(&app, &old, &by, ip, &route).await
            }
            MailJob::AdminCreated { username, by, ip } => {
                let Some(to) = confirmed_address(&app, ADMIN).await else {
                    continue;
                };
                let at = app.clock().unix();
                send_notice(&app, ADMIN, &to, "admin-created notice", &|h| {
                    mail::admin_created(h, &username, &by, at, &ip.to_string())
                })
                .await;
            }
            MailJob::FactorLocked {
                username,
                ip,
                minutes,
            } => {
                let Some((_, to)) =
                    recipients(&app, Some(AlertKind::FactorLocked), &[username.as_str()])
                        .await
                        .pop()
                else {
                    continue;
                };
                let at = app.clock().unix();
                send_notice(&app, &username, &to, "second-factor lock notice", &|h| {
                    mail::factor_locked(h, &username, at, &ip.to_string(), minutes)
                })
                .await;
            }
            MailJob::CredentialsReset { at } => {
                let Ok(Some(admin)) = super::account(&app, ADMIN).await else {
                    continue;
                };
                if !wants(&admin, AlertKind::CredentialsReset) {
                    continue;
                }
                let Some(to) = admin.email else { continue };
                send_notice(&app, ADMIN, &to, "credential-reset notice", &|h| {
                    mail::credentials_reset(h, at)
                })
                .await;
            }
            MailJob::Alert { kind, user, args } => {
                send_alert(&app, kind, user.as_deref(), &args).await
            }
            MailJob::AlertsHeld { held } => {
                for (name, to) in recipients(&app, None, &[ADMIN]).await {
                    send_notice(&app, &name, &to, "held-alerts summary", &|h| {
                        mail::alerts_held(h, &held)
                    })
                    .await;
                }
            }
            MailJob::BlockedSummary { blocked } => {
                for (name, to) in recipients(&app, Some(AlertKind::AddressBlocked), &[ADMIN]).await
                {
                    send_notice(&app, &name, &to, "blocked-address summary", &|h| {
                        mail::blocked_summary(h, &blocked)
                    })
                    .await;
                }
            }
        }
    }
}

/// Mails an alert to whoever hears of it ([`alert_recipients`]).
pub async fn send_alert(
    app: &App,
    kind: AlertKind,
    user: Option<&str>,
    args: &[(&'static str, String)],
) {
    let args: Vec<(&str, &str)> = args.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let at = app.clock().unix();
    for (name, to) in alert_recipients(app, kind, user).await {
        send_notice(app, &name, &to, kind.name(), &|h| {
            mail::alert(h, kind, at, &args)
        })
        .await;
    }
}

/// Who hears of an alert about `user` (`None`: about the box): the account itself,
/// and the owner for one about the box or an admin-role account.
async fn alert_recipients(app: &App, kind: AlertKind, user: Option<&str>) -> Vec<(String, String)> {
    let Some(user) = user else {
        return recipients(app, Some(kind), &[ADMIN]).await;
    };
    let admin_role = matches!(
        super::account(app, user).await,
        Ok(Some(a)) if a.role == crate::model::Role::Admin
    );
    if admin_role && user != ADMIN {
        recipients(app, Some(kind), &[user, ADMIN]).await
    } else {
        recipients(app, Some(kind), &[user]).await
    }
}

/// Of `names`, those with a confirmed address that want alerts of `kind` (`None`: a
/// summary, always sent): (name, address).
async fn recipients(app: &App, kind: Option<AlertKind>, names: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in names {
        let Ok(Some(a)) = super::account(app, name).await else {
            continue;
        };
        if kind.is_some_and(|k| !wants(&a, k)) {
            continue;
        }
        if let Some(to) = a.email.filter(|_| a.email_confirmed_at.is_some()) {
            out.push((a.username, to));
        }
    }
    out
}
