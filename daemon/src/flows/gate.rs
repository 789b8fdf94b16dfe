//! Where each account may sign in from (spec §10): the trusted networks of its role and,
//! for an installer, its own networks and its end. Asked by every way in (the password,
//! the second-factor step, a recovery code, a reset link) before anything is hashed or
//! compared, and by the API's guard on every request of a session.

use std::net::IpAddr;

use crate::app::App;
use crate::auth::trust::NetList;
use crate::error::Error;
use crate::model::{Account, AuditKind, Role};

/// Whether `peer` may sign in (or act) as an account of `role` — and, for an installer,
/// from its own networks. Refused: 403 `not_trusted_network`, naming the networks.
pub fn admit(
    app: &App,
    role: Role,
    installer: Option<&NetList>,
    peer: IpAddr,
) -> Result<(), Error> {
    let rules = app.access().rules();
    let list = match role {
        Role::Admin => &rules.admin,
        Role::User => &rules.user,
    };
    let on_segment = |p| crate::flows::local::LocalRule::now(app).on_segment(p);
    let refused = |l: &NetList| Error::NotTrustedNetwork {
        admin: role == Role::Admin,
        networks: l.subnets().map(ToString::to_string).collect(),
        local: l.has_local(),
        ip: peer,
    };
    if !list.allows(peer, on_segment) {
        return Err(refused(list));
    }
    match installer {
        Some(own) if !own.allows(peer, on_segment) => Err(refused(own)),
        _ => Ok(()),
    }
}

/// [`admit`] for an account about to sign in (or recover): its role, and its own
/// networks if it is an installer's. A refusal is audited (aggregated per address).
/// With `access.sign_in = "directory"`, a local account is refused too, but the admin
/// from the PBX's own network or the box itself (403 `directory_only`).
pub fn admit_account(app: &App, account: &Account, peer: IpAddr) -> Result<(), Error> {
    let own = account
        .installer
        .as_ref()
        .map(|i| NetList::parse(&i.networks).unwrap_or_default());
    let directory_only = app.access().rules().directory_only
        && account.directory.is_none()
        && !(account.username == crate::model::ADMIN && crate::flows::local::is_local(app, peer));
    let admitted = if directory_only {
        Err(Error::DirectoryOnly)
    } else {
        admit(app, account.role, own.as_ref(), peer)
    };
    admitted.inspect_err(|_| {
        let key = crate::auth::lockout::addr_key(peer);
        let shown = crate::auth::shown_username(&account.username);
        if app.failure_log().record(key, &shown, app.clock().mono())
            == crate::auth::failure_log::Record::Write
        {
            app.audit(AuditKind::LoginUntrusted, Some(&shown), Some(peer), None);
        }
        tracing::info!(%peer, user = %shown, "sign-in from outside the trusted networks refused");
    })
}

/// Whether an installer account's time is over (refused at sign-in even before the
/// next tick removes it).
pub fn expired(app: &App, account: &crate::model::Account) -> bool {
    account
        .installer
        .as_ref()
        .is_some_and(|i| i.until <= app.clock().unix())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::testkit::{ip, TestApp};
    use crate::model::ADMIN;

    /// `access.sign_in = "directory"`: the local admin only at the box (loopback) or on
    /// its own network, never from outside; other local accounts never; directory users
    /// from anywhere their role's networks allow.
    #[tokio::test]
    async fn directory_only_keeps_the_local_admin_at_the_box() {
        let t = TestApp::ready("gate-directory-only").await;
        let app = &t.app;
        let mut s = app.config().access_settings();
        s.sign_in = crate::model::sign_in_text(true).into();
        app.access()
            .set(crate::auth::trust::Rules::of(&s).expect("rules"), None);
        let admin = app
            .data()
            .expect("data")
            .account(ADMIN)
            .await
            .expect("read")
            .expect("admin");
        assert!(admit_account(app, &admin, ip("127.0.0.1")).is_ok());
        let outside = ip("203.0.113.9");
        assert!(matches!(
            admit_account(app, &admin, outside),
            Err(Error::DirectoryOnly)
        ));
        let mut ext = admin.clone();
        ext.username = "1001".into();
        ext.role = Role::User;
        assert!(matches!(
            admit_account(app, &ext, ip("127.0.0.1")),
            Err(Error::DirectoryOnly)
        ));
        ext.directory = Some("RADIUS 192.0.2.5:1812".into());
        assert!(admit_account(app, &ext, outside).is_ok());
    }
}
