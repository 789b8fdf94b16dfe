//! Forgot Password: the rate limit and readiness on the request path, then the queue;
//! in the worker the lookup, the token and the `Find Password` mail. Also the reset
//! link's base and the link mail the reset button's recovery press sends.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use super::{envelope, readiness, send_error, MailJob};
use crate::app::App;
use crate::auth::token_digest;
use crate::error::Error;
use crate::mail::message as mail;
use crate::mail::transport::MailError;
use crate::model::AuditKind;
use crate::model::ResetToken;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgotRequest {
    pub username: String,
    pub email: String,
}

/// `POST /forgot`: rate limit, readiness, then queue — never a lookup on the request path.
pub async fn forgot(app: &App, ip: IpAddr, req: ForgotRequest) -> Result<(), Error> {
    app.recovery()
        .allow_forgot(ip, app.clock().mono(), &app.config().policy)
        .map_err(|d| Error::RateLimited { retry_after: d })?;
    if !readiness(app).await?.available {
        return Err(Error::RecoveryNotConfigured);
    }
    if req.username.len() <= 64 && req.email.len() <= 254 {
        app.outbox().enqueue(MailJob::Forgot {
            username: req.username,
            email: req.email,
            ip,
        });
    }
    tracing::info!(%ip, "forgot-password request queued");
    app.audit(AuditKind::ForgotRequest, None, Some(ip), None);
    Ok(())
}

/// The base of reset links: `public_url`, else the HTTPS listener's address (the first
/// LAN IPv4 when it listens on all addresses). Never the request's Host header.
pub fn link_base(app: &App) -> String {
    let config = app.config();
    if let Some(u) = &config.server.public_url {
        return u.clone();
    }
    let (scheme, addr) = match (app.https_addr(), app.http_addr()) {
        (Some(a), _) => ("https", a),
        (None, Some(a)) => ("http", a),
        (None, None) => return "https://127.0.0.1".into(),
    };
    let ip = if addr.ip().is_unspecified() {
        app.board()
            .interfaces()
            .ok()
            .and_then(|l| l.into_iter().find(|i| i.addr.is_ipv4()).map(|i| i.addr))
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
    } else {
        addr.ip()
    };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
}

/// Issues a token for `username` and mails the link to `to`. Shared by Forgot Password
/// and the recovery press of the reset button.
pub async fn send_reset_link(
    app: &App,
    username: &str,
    to: &str,
    ip: &str,
) -> Result<(), MailError> {
    let envelope = envelope(app, to, super::mail_lang(app, username).await).await?;
    let data = app.data().map_err(|e| send_error(e.to_string()))?;
    let config = app.config();
    let token = crate::auth::random_token();
    let now = app.clock().unix();
    let ttl = config.policy.reset_token_ttl.as_secs();
    let record = ResetToken {
        username: username.to_string(),
        expires_at: now + ttl,
        issued_ip: ip.to_string(),
        issued_at: now,
    };
    let digest = token_digest(&token);
    data.issue_token(digest, record, now)
        .await
        .map_err(|e| send_error(e.to_string()))?;
    let link = format!("{}/reset?token={token}", link_base(app));
    let msg = mail::find_password(
        &envelope.head,
        &mail::FindPassword {
            username,
            link: &link,
            expires_at: now + ttl,
            ttl_min: ttl / 60,
            requested_from: ip,
            cloud: config.server.cloud,
        },
    )
    .map_err(send_error)?;
    envelope.transport.send(msg).await
}

pub(super) async fn handle_forgot(app: &App, username: &str, email: &str, ip: IpAddr) {
    let account = match super::account(app, username).await {
        Ok(Some(a)) if a.directory.is_none() => a,
        Ok(Some(_)) => {
            // Its password is the directory's: no link could change it.
            tracing::info!(%ip, "forgot-password request for a directory user: no link");
            return;
        }
        Ok(None) => {
            tracing::info!(%ip, "forgot-password request matched no account");
            return;
        }
        Err(e) => {
            tracing::error!("forgot-password: {e}");
            return;
        }
    };
    let matches = account
        .email
        .as_deref()
        .is_some_and(|bound| bound.trim().eq_ignore_ascii_case(email.trim()));
    if !matches {
        tracing::info!(%ip, "forgot-password request matched no account");
        return;
    }
    if account.email_confirmed_at.is_none() {
        // Only a proven address is a way back in: an unconfirmed one may be a typo, or
        // somebody else's.
        tracing::warn!(user = %account.username, %ip, "forgot-password: the address is not confirmed; no link sent");
        return;
    }
    let allowed =
        app.recovery()
            .allow_mail_to(&account.username, app.clock().mono(), &app.config().policy);
    if !allowed {
        tracing::warn!(user = %account.username, "recovery mail limit reached; request ignored");
        return;
    }
    let to = account.email.clone().unwrap_or_default();
    match send_reset_link(app, &account.username, &to, &ip.to_string()).await {
        Ok(()) => tracing::info!(user = %account.username, %ip, "recovery mail sent"),
        Err(e) => {
            tracing::error!(user = %account.username, stage = ?e.stage, "recovery mail failed: {}", e.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::testkit::{ip, TestApp, ADMIN_PW};
    use crate::model::ADMIN;

    fn req(email: &str) -> ForgotRequest {
        ForgotRequest {
            username: ADMIN.into(),
            email: email.into(),
        }
    }

    #[tokio::test]
    async fn forgot_is_queued_without_a_lookup_and_limited_per_address() {
        let t = TestApp::ready("flow-forgot").await;
        let app = &t.app;
        let mut queue = app.outbox().take_worker_queue().expect("queue");
        let a = ip("192.0.2.21");
        assert!(matches!(
            forgot(app, a, req("admin@pbx.test")).await,
            Err(Error::RecoveryNotConfigured)
        ));
        let form = crate::flows::profile::ProfileForm {
            email: Some("admin@pbx.test".into()),
            current_password: crate::flows::testkit::secret(ADMIN_PW),
        };
        crate::flows::profile::set_email(app, a, ADMIN, form)
            .await
            .expect("bound");
        // A matching and a non-matching pair are the same on the request path.
        for email in ["admin@pbx.test", "nobody@pbx.test"] {
            forgot(app, ip("192.0.2.22"), req(email))
                .await
                .expect("202");
        }
        let mut jobs = 0;
        while let Ok(job) = queue.try_recv() {
            if matches!(job, MailJob::Forgot { .. }) {
                jobs += 1;
            }
        }
        assert_eq!(jobs, 2, "both queued; the worker compares");
        for _ in 0..3 {
            forgot(app, ip("192.0.2.22"), req("x@pbx.test"))
                .await
                .expect("202");
        }
        assert!(matches!(
            forgot(app, ip("192.0.2.22"), req("x@pbx.test")).await,
            Err(Error::RateLimited { .. })
        ));
    }
}
