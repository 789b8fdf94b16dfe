//! The reset link: only from the PBX's own network (unless cloud), a valid single-use
//! token, the password rules, then the token and the new hash in one transaction.

use std::net::IpAddr;

use serde::Deserialize;

use super::MailJob;
use crate::app::App;
use crate::auth::{token_digest, Secret};
use crate::error::Error;
use crate::flows::local::{is_local, own_subnets};
use crate::model::AuditKind;
use crate::store::Consumed;

/// The subnets a reset link opens from, for the refusal message.
pub fn allowed_subnets(app: &App) -> Vec<String> {
    let config = app.config();
    let mut list: Vec<String> = own_subnets(app, &config)
        .iter()
        .map(|s| s.to_string())
        .collect();
    list.extend(
        config
            .network
            .lan_subnets
            .iter()
            .filter(|s| s.prefix() > 0)
            .map(|s| s.to_string()),
    );
    list.sort();
    list.dedup();
    list
}

/// The local-network rule for this peer, with this box's interfaces.
pub fn check_local(app: &App, peer: IpAddr) -> Result<(), Error> {
    if is_local(app, peer) {
        Ok(())
    } else {
        tracing::warn!(%peer, "reset link opened from outside the local network");
        Err(Error::NotLocal {
            subnets: allowed_subnets(app),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub token: Secret,
    pub new_password: Secret,
}

/// What the reset page shows before anyone types a password: whose link it is, until
/// when it works, and which box this is (its serial is on the label).
#[derive(Debug, serde::Serialize)]
pub struct LinkView {
    pub username: String,
    pub expires_at: u64,
    pub model: Option<String>,
    pub serial: Option<String>,
}

/// `POST /reset/check`: the local rule and the token, consuming nothing, so that a dead
/// link says so when the page opens.
pub async fn check_link(app: &App, peer: IpAddr, token: &Secret) -> Result<LinkView, Error> {
    check_local(app, peer)?;
    let data = app.data()?;
    let now = app.clock().unix();
    let token = data
        .token_valid(token_digest(token.expose()), now)
        .await?
        .ok_or(Error::TokenInvalid)?;
    let board = app.board_info();
    Ok(LinkView {
        username: token.username,
        expires_at: token.expires_at,
        model: board.map(|b| b.model.clone()),
        serial: board.map(|b| b.serial.clone()),
    })
}

/// `POST /reset`: local rule, token, password rules, then the atomic swap.
pub async fn reset(app: &App, peer: IpAddr, req: ResetRequest) -> Result<(), Error> {
    check_local(app, peer)?;
    let data = app.data()?;
    let digest = token_digest(req.token.expose());
    let now = app.clock().unix();
    let token = data
        .token_valid(digest, now)
        .await?
        .ok_or(Error::TokenInvalid)?;
    if let Some(a) = data.account(&token.username).await? {
        crate::flows::gate::admit_account(app, &a, peer)?;
    }
    let hash = crate::flows::hash_new_password(app, req.new_password, &token.username).await?;
    let account = match data.consume_token(digest, now, hash).await? {
        Consumed::Done(a) => a,
        Consumed::Invalid => return Err(Error::TokenInvalid),
    };
    after_reset(app, account.username, peer, Way::Link);
    Ok(())
}

/// How a forgotten password was replaced.
#[derive(Debug, Clone, Copy)]
pub enum Way {
    Link,
    Code,
}

/// After a password was set without the old one: every session of the account ends,
/// the audit trail and the log say how, and the account's address gets a notice.
pub fn after_reset(app: &App, username: String, peer: IpAddr, way: Way) {
    let (detail, how) = match way {
        Way::Link => ("reset link", crate::i18n::k::MAIL_HOW_LINK),
        Way::Code => ("recovery code", crate::i18n::k::MAIL_HOW_CODE),
    };
    let ended = crate::flows::end_sign_ins(app, &username);
    app.limiter().forgive_account(&username);
    app.audit(
        AuditKind::PasswordReset,
        Some(&username),
        Some(peer),
        Some(detail),
    );
    tracing::info!(user = %username, %peer, ended, "password reset with a {detail}");
    app.outbox().enqueue(MailJob::PasswordChanged {
        username,
        ip: peer,
        how,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::testkit::{ip, secret, TestApp, ADMIN_PW};
    use crate::model::ADMIN;

    fn req(token: &str, password: &str) -> ResetRequest {
        ResetRequest {
            token: secret(token),
            new_password: secret(password),
        }
    }

    #[tokio::test]
    async fn a_reset_link_works_once_from_the_local_network() {
        let t = TestApp::ready("flow-reset").await;
        let app = &t.app;
        let mut queue = app.outbox().take_worker_queue().expect("queue");
        t.admin_token(token_digest("the-token"));
        assert!(matches!(
            reset(
                app,
                ip("203.0.113.7"),
                req("the-token", "a brand new passphrase")
            )
            .await,
            Err(Error::NotLocal { .. })
        ));
        assert!(matches!(
            reset(
                app,
                ip("127.0.0.1"),
                req("other-token", "a brand new passphrase")
            )
            .await,
            Err(Error::TokenInvalid)
        ));
        assert!(matches!(
            reset(app, ip("127.0.0.1"), req("the-token", "short")).await,
            Err(Error::WeakPassword { .. })
        ));
        app.sessions().create(
            crate::auth::sessions::Grant::of(ADMIN, crate::model::Role::Admin),
            Default::default(),
        );
        reset(
            app,
            ip("127.0.0.1"),
            req("the-token", "a brand new passphrase"),
        )
        .await
        .expect("reset");
        assert_eq!(app.sessions().count(), 0, "every session ended");
        assert!(matches!(
            reset(
                app,
                ip("127.0.0.1"),
                req("the-token", "another new passphrase")
            )
            .await,
            Err(Error::TokenInvalid)
        ));
        let verify = |pw: &str| {
            crate::flows::login::verify_password(app, ip("192.0.2.30"), ADMIN, secret(pw), None)
        };
        assert!(verify("a brand new passphrase").await.is_ok());
        assert!(verify(ADMIN_PW).await.is_err());
        assert!(matches!(
            queue.try_recv(),
            Ok(MailJob::PasswordChanged { .. })
        ));
        // A link older than its lifetime is refused with the same answer.
        t.admin_token(token_digest("late-token"));
        t.clock.advance(std::time::Duration::from_secs(601));
        assert!(matches!(
            reset(
                app,
                ip("127.0.0.1"),
                req("late-token", "yet another passphrase")
            )
            .await,
            Err(Error::TokenInvalid)
        ));
    }
}
