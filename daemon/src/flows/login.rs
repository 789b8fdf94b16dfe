//! Sign-in and password change (which ends every session of the account and revokes its
//! reset links). The brute-force limits, the account slow-down and device cookies are
//! applied in [`verify_password`], the one password check of every path.

use std::net::IpAddr;

use serde::Deserialize;

use crate::app::App;
use crate::auth::device;
use crate::auth::failure_log::{Due, Record};
use crate::auth::lockout::{DeviceId, Failure, Refused, PROTECT_AFTER};
use crate::auth::password::Lane;
use crate::auth::sessions::{NewSession, Origin, Session};
use crate::auth::shown_username;
use crate::auth::Secret;
use crate::error::Error;
use crate::model::AuditKind;
use crate::model::{Account, Role};

/// Longest username accepted (extension numbers and `admin` are far shorter).
const MAX_USERNAME: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: Secret,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    pub current_password: Secret,
    pub new_password: Secret,
}

pub(super) fn failed(app: &App, ip: IpAddr, username: &str, failure: Failure) -> Error {
    let shown = shown_username(username);
    match failure {
        Failure::AttemptsLeft(n) => {
            let key = crate::auth::lockout::addr_key(ip);
            if app.failure_log().record(key, &shown, app.clock().mono()) == Record::Write {
                app.audit(AuditKind::LoginFailed, Some(&shown), Some(ip), None);
            }
            Error::InvalidCredentials {
                attempts_left: Some(n),
            }
        }
        Failure::Locked(d) => {
            tracing::warn!(%ip, "address blocked after repeated failed logins");
            if app.firewall().active() && !crate::flows::local::LocalRule::now(app).on_segment(ip) {
                app.firewall().block(ip, d);
            }
            app.audit(
                AuditKind::LoginLocked,
                Some(&shown),
                Some(ip),
                Some("address blocked"),
            );
            crate::flows::alerts::alert(
                app,
                crate::model::AlertKind::AddressBlocked,
                None,
                vec![
                    ("ip", ip.to_string()),
                    ("user", shown.to_string()),
                    ("minutes", d.as_secs().div_ceil(60).to_string()),
                ],
            );
            Error::Locked { retry_after: d }
        }
    }
}

/// Writes the failed sign-ins aggregated in RAM to the audit trail, each a window
/// after the first (one summary per address, one overflow when the budget was spent).
pub async fn failure_summaries(app: std::sync::Arc<App>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        write_failure_summaries(&app);
    }
}

/// One pass of [`failure_summaries`]: what is due now goes to the audit trail.
pub fn write_failure_summaries(app: &App) {
    let minutes = app.config().policy.lockout_window.as_secs().div_ceil(60);
    for due in app.failure_log().due(app.clock().mono()) {
        match due {
                Due::Summary { ip, more, users } => app.audit(
                    AuditKind::LoginFailed,
                    None,
                    Some(ip),
                    Some(&format!(
                        "{more} more failed sign-ins from this address within {minutes} min (usernames tried: {})",
                        users.join(", ")
                    )),
                ),
                Due::Overflow {
                    failures,
                    addresses,
                } => app.audit(
                    AuditKind::AuditOverflow,
                    None,
                    None,
                    Some(&format!(
                        "{failures} failed sign-ins from {addresses} addresses within {minutes} min were counted but not recorded one by one"
                    )),
                ),
            }
    }
}

/// The answer to an attempt the limits refuse before anything is checked.
pub(super) fn refused(r: Refused) -> Error {
    match r {
        Refused::Wait(d) => Error::Locked { retry_after: d },
        Refused::Protected => Error::AccountProtected,
    }
}

/// Checks `username`'s password under the brute-force limits: the attempt counts from
/// before its hash, a failure counts for the address and the account, and a failure's
/// answer waits its turn in the account's slow-down (unless a device cookie carries
/// it). A right password is answered at once. Every path that checks a
/// password — sign-in, password change, email change, factory reset — goes through here.
pub async fn verify_password(
    app: &App,
    ip: IpAddr,
    username: &str,
    password: Secret,
    device: Option<DeviceId>,
) -> Result<Account, Error> {
    match check_password(app, ip, username, password, device).await? {
        Checked::Right(a) => Ok(a),
        Checked::Challenge(_) => Err(Error::DirectoryCodeNeeded),
    }
}

/// What a password check found.
#[allow(clippy::large_enum_variant)] // short-lived, moved once
pub(super) enum Checked {
    Right(Account),
    /// A directory user's server wants a one-time code before it decides.
    Challenge(crate::auth::presession::Challenge),
}

/// [`verify_password`], a directory's challenge kept for the sign-in page. A name that
/// is no local account goes to the directory, if one is configured
/// ([`crate::flows::directory`]), once the attempt is counted: its reject is a wrong
/// password like any other, its silence 503 and not counted.
pub(super) async fn check_password(
    app: &App,
    ip: IpAddr,
    username: &str,
    password: Secret,
    device: Option<DeviceId>,
) -> Result<Checked, Error> {
    let data = app.data()?;
    let local = crate::flows::local::is_local(app, ip);
    let attempt = app
        .limiter()
        .begin_from(ip, local, username, device)
        .map_err(refused)?;
    // Longer names are never accounts: no lookup, the same hash as an unknown user.
    let mut account = if username.len() <= MAX_USERNAME {
        data.account(username).await?
    } else {
        None
    };
    let ok = if crate::flows::directory::asked(app, ip, username, account.as_ref()).await? {
        use crate::flows::directory::{ask, Verdict};
        match ask(app, username, password.expose().as_bytes(), None).await? {
            Verdict::Accepted { role, via } => {
                let a = crate::flows::directory::admitted(app, ip, username, role, via).await?;
                account = Some(a);
                true
            }
            Verdict::Rejected => false,
            // The password was right: neither a failure nor a success yet.
            Verdict::Challenge(c) => return Ok(Checked::Challenge(c)),
            Verdict::NoRole { via } => {
                tracing::info!(%ip, "the directory ({via}) accepted a user with no role here");
                return Err(Error::DirectoryNoRole);
            }
        }
    } else {
        app.hasher()
            .verify_from(
                if attempt.by_device() {
                    Lane::Known
                } else if local {
                    Lane::Local
                } else {
                    Lane::Other
                },
                password,
                account.as_ref().map(|a| a.password_hash.clone()),
            )
            .await
            .map_err(|_| Error::Busy)?
    };
    let known = account.is_some();
    match account {
        Some(a) if ok => {
            attempt.succeeded();
            Ok(Checked::Right(a))
        }
        _ => {
            tracing::info!(%ip, "password check failed");
            let slowed = !attempt.by_device();
            // Counted before the delay: leaving early does not escape it.
            let failure = attempt.failed();
            if app.limiter().announce_protection(username) {
                let shown = shown_username(username);
                tracing::warn!(user = %shown, "account protected after {PROTECT_AFTER} failed sign-ins in a row: only known browsers and the local network may try it");
                app.audit(
                    AuditKind::AccountProtected,
                    Some(&shown),
                    Some(ip),
                    Some(&format!("{PROTECT_AFTER} failed sign-ins in a row")),
                );
                if known {
                    crate::flows::alerts::alert(
                        app,
                        crate::model::AlertKind::AccountCap,
                        Some(username),
                        vec![
                            ("user", shown.to_string()),
                            ("ip", ip.to_string()),
                            ("n", PROTECT_AFTER.to_string()),
                        ],
                    );
                }
            }
            if let (false, Some(id), Failure::AttemptsLeft(0)) = (slowed, device, failure) {
                void_device(app, username, id).await;
            }
            if slowed {
                app.limiter().wait_turn(username).await;
            }
            Err(failed(app, ip, username, failure))
        }
    }
}

/// A successful sign-in: the session, and a new device cookie for this browser.
pub struct SignedIn {
    pub new: NewSession,
    pub device_cookie: Option<String>,
    /// The account's own language, if it chose one: the browser's pages follow it.
    pub language: Option<crate::i18n::Lang>,
}

/// What a right password leads to.
pub enum LoginOutcome {
    SignedIn(SignedIn),
    /// The account has two-factor sign-in: a pre-session (its cookie value) waits for
    /// the code ([`crate::flows::twofactor::complete_login`]).
    SecondFactor {
        presession: String,
    },
    /// A directory user's server wants a one-time code (its `Reply-Message` says
    /// which): a pre-session waits for it ([`crate::flows::twofactor::complete_login`]).
    DirectoryCode {
        presession: String,
        message: Option<String>,
    },
}

/// The id of the request's device cookie if it marks a known browser of `username`:
/// signed by this box, of the account's current device generation, not too old, and
/// live (see [`crate::auth::device`]).
async fn known_device(
    app: &App,
    username: &str,
    device_cookie: Option<&str>,
) -> Result<Option<DeviceId>, Error> {
    let Some(presented) = app
        .device_key()
        .zip(device_cookie)
        .and_then(|(k, c)| k.verify(c, username))
    else {
        return Ok(None);
    };
    let account = app.data()?.account(username).await?;
    let now = app.clock().unix();
    Ok(account
        .filter(|a| presented.known_to(a, now))
        .map(|_| presented.id))
}

/// `device_cookie`: the `pbx_device` cookie the request carried, if any.
pub async fn login(
    app: &App,
    ip: IpAddr,
    req: LoginRequest,
    device_cookie: Option<&str>,
    agent: &str,
) -> Result<LoginOutcome, Error> {
    let device = if req.username.len() <= MAX_USERNAME {
        known_device(app, &req.username, device_cookie).await?
    } else {
        None
    };
    if req.username.len() <= MAX_USERNAME {
        if let Some(a) = app.data()?.account(&req.username).await? {
            crate::flows::gate::admit_account(app, &a, ip)?;
            if crate::flows::gate::expired(app, &a) {
                return Err(Error::InstallerExpired);
            }
        }
    }
    let account = match check_password(app, ip, &req.username, req.password, device).await? {
        Checked::Right(a) => a,
        Checked::Challenge(c) => {
            let message = c.message.clone();
            let presession = app.presessions().create_challenge(&req.username, agent, c);
            return Ok(LoginOutcome::DirectoryCode {
                presession,
                message,
            });
        }
    };
    proceed(app, ip, account, device, agent).await
}

/// After the password (and a directory's code): a directory user's networks (its role
/// is known only now), a disabled account, the second factor, the session.
pub(super) async fn proceed(
    app: &App,
    ip: IpAddr,
    account: Account,
    device: Option<DeviceId>,
    agent: &str,
) -> Result<LoginOutcome, Error> {
    if account.directory.is_some() {
        crate::flows::gate::admit_account(app, &account, ip)?;
    }
    if account.disabled {
        tracing::info!(%ip, user = %account.username, "sign-in of a disabled account");
        return Err(Error::AccountDisabled);
    }
    if account.two_factor() {
        tracing::info!(%ip, user = %account.username, "password right; the second factor is owed");
        let presession = app.presessions().create(
            &account.username,
            account.role,
            account.must_change_password,
            agent,
            device,
        );
        return Ok(LoginOutcome::SecondFactor { presession });
    }
    let enroll = account.role == Role::Admin && app.access().rules().require_2fa_for_admin;
    tracing::info!(%ip, user = %account.username, known_device = device.is_some(), "password right");
    let grant = Grant {
        session: crate::auth::sessions::Grant {
            username: &account.username,
            role: account.role,
            must_change_password: account.must_change_password,
            must_enroll_2fa: enroll,
            installer: account.installer.is_some(),
        },
        known_device: device,
    };
    Ok(LoginOutcome::SignedIn(
        signed_in(app, ip, grant, agent).await,
    ))
}

/// What a completed sign-in grants.
pub struct Grant<'a> {
    pub session: crate::auth::sessions::Grant<'a>,
    /// The browser's device cookie, if it carried a known one: it keeps it.
    pub known_device: Option<DeviceId>,
}

/// The session of a completed sign-in, and a device cookie for a browser that had none
/// (kept among the account's live cookies, the oldest retired beyond
/// [`device::PER_ACCOUNT`]); audited.
pub async fn signed_in(app: &App, ip: IpAddr, mut grant: Grant<'_>, agent: &str) -> SignedIn {
    let username = grant.session.username;
    tracing::info!(%ip, user = %username, "login");
    let account = match app.data() {
        Ok(data) => data.account(username).await.ok().flatten(),
        Err(_) => None,
    };
    grant.session.installer = account.as_ref().is_some_and(|a| a.installer.is_some());
    let via = account
        .as_ref()
        .and_then(|a| a.directory.clone())
        .unwrap_or_default();
    let origin = Origin {
        ip: Some(ip),
        agent: agent.to_string(),
        started_at: 0,
        via: via.clone(),
    };
    let new = app.sessions().create(grant.session, origin);
    let browser = crate::auth::sessions::browser_name(agent);
    let device_cookie = match grant.known_device {
        Some(_) => {
            let detail = (!via.is_empty()).then(|| format!("via {via}"));
            app.audit(
                AuditKind::Login,
                Some(username),
                Some(ip),
                detail.as_deref(),
            );
            None
        }
        None => {
            let detail = match via.as_str() {
                "" => format!("new browser ({browser})"),
                v => format!("new browser ({browser}), via {v}"),
            };
            app.audit(AuditKind::Login, Some(username), Some(ip), Some(&detail));
            crate::flows::alerts::alert(
                app,
                crate::model::AlertKind::NewDevice,
                Some(username),
                vec![
                    ("user", username.to_string()),
                    ("ip", ip.to_string()),
                    ("browser", browser.clone()),
                ],
            );
            mint_device_cookie(app, username).await
        }
    };
    if let Some(i) = account.as_ref().and_then(|a| a.installer.as_ref()) {
        crate::flows::alerts::alert(
            app,
            crate::model::AlertKind::InstallerSignIn,
            Some(username),
            vec![
                ("user", username.to_string()),
                ("ip", ip.to_string()),
                ("browser", browser),
                ("until", crate::clock::format_utc(i.until)),
            ],
        );
    }
    let language = account.and_then(|a| {
        a.language
            .as_deref()
            .and_then(crate::i18n::Lang::from_tag)
            .filter(|l| l.shipped())
    });
    SignedIn {
        new,
        device_cookie,
        language,
    }
}

/// A new device cookie for `username`, its id stored among the account's live ones
/// (flushed: one write per new browser, none per sign-in of a known one). None when it
/// cannot be stored: the sign-in goes on without one.
async fn mint_device_cookie(app: &App, username: &str) -> Option<String> {
    let key = app.device_key()?;
    let data = app.data().ok()?;
    let now = app.clock().unix();
    let generation = data.account(username).await.ok().flatten()?.device_gen;
    let (value, id) = key.issue(username, generation, now);
    let text = device::id_text(&id);
    let stored = data
        .update_account(username, move |a| {
            // Another generation began meanwhile: this cookie is void already.
            if a.device_gen == generation && !a.devices.contains(&text) {
                a.devices.push(text.clone());
                let over = a.devices.len().saturating_sub(device::PER_ACCOUNT);
                a.devices.drain(..over);
            }
            a.devices.contains(&text)
        })
        .await;
    match stored {
        Ok(Some(u)) if u.decided => Some(value),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(user = %username, "device cookie not stored: {e}");
            None
        }
    }
}

/// Five failures with one device cookie void it for good: its id leaves the account's
/// live cookies (a restart, which empties the limiter's table, does not revive it).
async fn void_device(app: &App, username: &str, id: DeviceId) {
    let Ok(data) = app.data() else { return };
    let text = device::id_text(&id);
    if let Err(e) = data
        .update_account(username, move |a| a.devices.retain(|x| *x != text))
        .await
    {
        tracing::warn!(user = %username, "voiding a device cookie: {e}");
    }
    tracing::warn!(user = %username, "device cookie voided after repeated failures");
}

/// Changes the caller's password; returns how many sessions of the account ended.
pub async fn change_password(
    app: &App,
    ip: IpAddr,
    session: &Session,
    req: PasswordRequest,
) -> Result<usize, Error> {
    let data = app.data()?;
    if data
        .account(&session.username)
        .await?
        .is_some_and(|a| a.directory.is_some())
    {
        return Err(Error::DirectoryPassword);
    }
    let account = verify_password(app, ip, &session.username, req.current_password, None).await?;
    let hash = crate::flows::hash_new_password(app, req.new_password, &account.username).await?;
    let now = app.clock().unix();
    // Applied to the record as it is now: the email may have changed while we hashed.
    // Outstanding reset links die with the old password.
    let updated = data
        .update_account_revoking_tokens(&account.username, move |a| {
            a.apply_new_password(&hash, now)
        })
        .await?;
    if updated.is_none() {
        return Err(Error::Unauthenticated);
    }
    let ended = super::end_sign_ins(app, &session.username);
    app.audit(
        AuditKind::PasswordChanged,
        Some(&session.username),
        Some(ip),
        None,
    );
    tracing::info!(%ip, user = %session.username, ended, "password changed; sessions ended");
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::testkit::{ip, secret, TestApp, ADMIN_PW, LABEL};
    use crate::model::{Role, ADMIN};

    fn req(password: &str) -> LoginRequest {
        LoginRequest {
            username: ADMIN.into(),
            password: secret(password),
        }
    }

    #[tokio::test]
    async fn five_failures_lock_the_address_and_the_known_browser_still_gets_in() {
        let t = TestApp::ready("flow-login").await;
        let (app, a) = (&t.app, ip("192.0.2.5"));
        let Ok(LoginOutcome::SignedIn(first)) = login(app, a, req(ADMIN_PW), None, "test").await
        else {
            panic!("signed in");
        };
        let cookie = first
            .device_cookie
            .expect("a device cookie for the browser");
        for left in [4, 3, 2, 1] {
            match verify_password(app, a, ADMIN, secret("wrong wrong wrong"), None).await {
                Err(Error::InvalidCredentials {
                    attempts_left: Some(n),
                }) => assert_eq!(n, left),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            verify_password(app, a, ADMIN, secret("wrong wrong wrong"), None).await,
            Err(Error::Locked { .. })
        ));
        assert!(matches!(
            login(app, a, req(ADMIN_PW), None, "test").await,
            Err(Error::Locked { .. })
        ));
        let again = login(app, a, req(ADMIN_PW), Some(&cookie), "test").await;
        assert!(again.is_ok(), "the device cookie exempts from the block");
        // The label password no longer works; unknown users get the same answer.
        assert!(matches!(
            login(app, ip("192.0.2.6"), req(LABEL), None, "test").await,
            Err(Error::InvalidCredentials { .. })
        ));
    }

    /// `n` wrong passwords on the admin at once, five from each internet-side address
    /// from `first` on (documentation addresses, never on this machine's networks).
    async fn wrong_at_once(app: &std::sync::Arc<App>, first: u32, n: u32) -> Vec<Error> {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            let app = std::sync::Arc::clone(app);
            let a = ip(&format!("203.0.113.{}", first + i / 5));
            set.spawn(async move {
                verify_password(&app, a, ADMIN, secret("not the passphrase"), None)
                    .await
                    .expect_err("a wrong password")
            });
        }
        set.join_all().await
    }

    fn codes(errors: &[Error]) -> Vec<&'static str> {
        let mut c: Vec<_> = errors.iter().map(Error::code).collect();
        c.sort_unstable();
        c
    }

    /// Issue 27 (NIST SP 800-63B's cap): after 100 failures in a row on the admin, from
    /// 24 internet-side addresses in parallel waves, the account takes attempts only
    /// from a known browser or the local network; the rest are refused before any hash
    /// (`account_protected`, the right password too, counted from the start: a wave
    /// that crosses 100 gets exactly the hashes left). A success through either way, or
    /// a recovery, lifts it.
    #[tokio::test]
    async fn a_hundred_failures_in_a_row_leave_the_account_to_known_browsers_and_the_lan() {
        let t = TestApp::ready("flow-protect").await;
        let app = &t.app;
        let mut mail = app.outbox().take_worker_queue().expect("the queue");
        let mut policy = app.config().policy.clone();
        policy.account_slowdown_step = std::time::Duration::ZERO;
        app.limiter().set_policy(policy);
        let outside = ip("198.51.100.20");
        let Ok(LoginOutcome::SignedIn(first)) = login(app, outside, req(ADMIN_PW), None, "t").await
        else {
            panic!("signed in");
        };
        let cookie = first.device_cookie.expect("a device cookie");
        let protect = |from: u32| async move {
            // 90 in nine waves of ten, then twenty at once of which ten are hashed.
            for wave in 0..9 {
                let got = wrong_at_once(app, from + wave * 2, 10).await;
                assert!(
                    codes(&got)
                        .iter()
                        .all(|c| *c == "invalid_credentials" || *c == "locked"),
                    "{got:?}"
                );
            }
            let got = codes(&wrong_at_once(app, from + 18, 20).await);
            let hashed = got.iter().filter(|c| **c != "account_protected").count();
            assert_eq!(hashed, 10, "exactly the ten hashes left: {got:?}");
            assert!(app.limiter().protected(ADMIN));
        };
        protect(1).await;
        let checks = app.hasher().checks();
        let r = login(app, ip("198.51.100.21"), req(ADMIN_PW), None, "t").await;
        let Err(e) = r else { panic!("refused") };
        assert_eq!((e.status().as_u16(), e.code()), (429, "account_protected"));
        assert!(
            e.message(crate::i18n::Lang::En)
                .contains("browser that signed in to it before"),
            "{e}"
        );
        assert_eq!(app.hasher().checks(), checks, "refused before any hash");
        assert_eq!(t.audit_count("account_protected").await, 1, "told once");
        // Alerted once (and the addresses blocked on the way, the first of them).
        let mut alerts = Vec::new();
        while let Ok(job) = mail.try_recv() {
            if let crate::mail::outbox::MailJob::Alert { kind, user, .. } = job {
                alerts.push((kind, user));
            }
        }
        let cap = (crate::model::AlertKind::AccountCap, Some(ADMIN.to_string()));
        assert_eq!(
            alerts.iter().filter(|a| **a == cap).count(),
            1,
            "{alerts:?}"
        );
        assert_eq!(
            alerts
                .iter()
                .filter(|a| a.0 == crate::model::AlertKind::AddressBlocked)
                .count(),
            1,
            "the rest of the hour's blocks summarised: {alerts:?}"
        );

        // The known browser gets in from outside; its success lifts the protection.
        let known = login(app, outside, req(ADMIN_PW), Some(&cookie), "t").await;
        assert!(known.is_ok(), "known browser");
        assert!(!app.limiter().protected(ADMIN));
        assert!(login(app, ip("198.51.100.22"), req(ADMIN_PW), None, "t")
            .await
            .is_ok());

        // The local network (here loopback) gets in too, and lifts it.
        protect(31).await;
        assert!(login(app, ip("127.0.0.1"), req(ADMIN_PW), None, "t")
            .await
            .is_ok());
        assert!(login(app, ip("198.51.100.23"), req(ADMIN_PW), None, "t")
            .await
            .is_ok());

        // So do the ways back in: the reset link and recovery code (after_reset), and
        // the button's credential reset.
        protect(61).await;
        crate::flows::recovery::reset::after_reset(
            app,
            ADMIN.into(),
            ip("127.0.0.1"),
            crate::flows::recovery::reset::Way::Link,
        );
        assert!(!app.limiter().protected(ADMIN), "a reset link lifts it");
        protect(91).await;
        crate::flows::recovery::button::reset_admin_credentials(app, "test")
            .await
            .expect("credential reset");
        assert!(!app.limiter().protected(ADMIN), "the button lifts it");
        assert!(login(app, ip("198.51.100.24"), req(LABEL), None, "t")
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn a_password_change_ends_the_sessions_and_kills_the_reset_links() {
        let t = TestApp::ready("flow-change").await;
        let app = &t.app;
        let data = app.data().expect("data");
        let now = app.clock().unix();
        t.admin_token([9; 32]);
        let s = app.sessions().create(
            crate::auth::sessions::Grant::of(ADMIN, Role::Admin),
            Default::default(),
        );
        app.sessions().create(
            crate::auth::sessions::Grant::of(ADMIN, Role::Admin),
            Default::default(),
        );
        let change = |current: &str| PasswordRequest {
            current_password: secret(current),
            new_password: secret("a brand new passphrase"),
        };
        assert!(matches!(
            change_password(app, ip("192.0.2.7"), &s.session, change("wrong wrong")).await,
            Err(Error::InvalidCredentials { .. })
        ));
        let ended = change_password(app, ip("192.0.2.7"), &s.session, change(ADMIN_PW))
            .await
            .expect("changed");
        assert_eq!(ended, 2);
        assert!(data
            .token_valid([9; 32], now)
            .await
            .expect("read")
            .is_none());
        let a = data.account(ADMIN).await.expect("read").expect("admin");
        assert!(!a.must_change_password);
    }
}
