//! Who may reach the admin (spec §10): the trusted networks of each role, HTTPS-only
//! sign-in, and the probation of a change that can lock the admin out — it applies at
//! once and reverts by itself unless a session that signed in after it (and so under
//! it) confirms it. The deadline is on flash; the reset button's recovery press reverts
//! at once, and its credential reset clears the admin networks.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::auth::trust::{OnProbation, Rules};
use crate::auth::Secret;
use crate::error::Error;
use crate::flows::gate::admit;
use crate::model::{sign_in_text, AccessRecord, AccessSettings, AuditKind, Probation, Role};

/// The settings in force: the admin's saved ones, else the config's.
async fn record(app: &App) -> Result<AccessRecord, Error> {
    Ok(match app.data()?.setting::<AccessRecord>().await? {
        Some(r) => r,
        None => AccessRecord {
            settings: app.config().access_settings(),
            probation: None,
        },
    })
}

/// After a config reload: the config's rules, unless the admin saved their own.
pub async fn config_reloaded(app: &App) {
    match app
        .data()
        .map(|d| d.blocking().setting::<AccessRecord>("access"))
    {
        Ok(Ok(None)) => {
            if let Ok(r) = Rules::of(&app.config().access_settings()) {
                app.access().set(r, None);
            }
        }
        Ok(Ok(Some(_))) => {}
        Ok(Err(e)) => tracing::warn!("access settings unreadable after reload: {e}"),
        Err(_) => {}
    }
}

/// `PUT /settings/access`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessUpdate {
    pub admin_networks: Vec<String>,
    pub user_networks: Vec<String>,
    pub https_only: bool,
    pub require_2fa_for_admin: bool,
    /// `local+directory` or `directory`; left out: as it is.
    #[serde(default)]
    pub sign_in: Option<String>,
    pub current_password: Secret,
}

/// What the page shows.
#[derive(Debug, Serialize)]
pub struct AccessView {
    #[serde(flatten)]
    pub settings: AccessSettings,
    /// Where the caller is: the page warns when a list leaves it out.
    pub your_address: String,
    /// Whether the caller's address is within the admin networks.
    pub you_are_trusted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probation: Option<ProbationView>,
}

#[derive(Debug, Serialize)]
pub struct ProbationView {
    pub reverts_at: u64,
    pub reverts_in_s: u64,
    pub changes: Vec<String>,
    pub by: String,
    /// What the settings go back to.
    pub previous: AccessSettings,
    /// Whether the asking session may confirm it (it signed in after the change).
    pub confirmable: bool,
}

/// The settings and the probation as `GET /settings/access` shows them to a session
/// created at `session_created` (monotonic) from `peer`.
pub async fn view(app: &App, session_created: Duration, peer: IpAddr) -> Result<AccessView, Error> {
    let rec = record(app).await?;
    let live = app.access().probation();
    let now = app.clock().mono();
    let you_are_trusted = admit(app, Role::Admin, None, peer).is_ok();
    Ok(AccessView {
        probation: rec.probation.zip(live).map(|(p, l)| ProbationView {
            reverts_at: p.reverts_at,
            reverts_in_s: crate::error::retry_secs(l.until.saturating_sub(now)),
            changes: p.changes,
            by: p.by,
            previous: p.previous,
            confirmable: session_created > l.began,
        }),
        settings: rec.settings,
        your_address: peer.to_string(),
        you_are_trusted,
    })
}

/// The settings that differ, by name.
fn changed(a: &AccessSettings, b: &AccessSettings) -> Vec<String> {
    let mut out = Vec::new();
    if a.admin_networks != b.admin_networks {
        out.push("admin_networks".into());
    }
    if a.user_networks != b.user_networks {
        out.push("user_networks".into());
    }
    if a.https_only != b.https_only {
        out.push("https_only".into());
    }
    if a.require_2fa_for_admin != b.require_2fa_for_admin {
        out.push("require_2fa_for_admin".into());
    }
    if a.sign_in != b.sign_in {
        out.push("sign_in".into());
    }
    out
}

/// Whether going from `from` to `to` can lock the admin out: admin networks set or
/// narrowed to a list, HTTPS-only, required two-factor or directory-only sign-in turned on.
fn risky(from: &AccessSettings, to: &AccessSettings) -> bool {
    (to.admin_networks != from.admin_networks && !to.admin_networks.is_empty())
        || (to.https_only && !from.https_only)
        || (to.require_2fa_for_admin && !from.require_2fa_for_admin)
        || (to.sign_in != from.sign_in && to.sign_in == sign_in_text(true))
}

/// Saves new access settings (the admin's password first). A change that can lock the
/// admin out goes on probation for `access.probation_s`, counted from now; a change
/// made while one is pending extends it, and reverting goes back to the last
/// confirmed settings.
pub async fn update(
    app: &App,
    username: &str,
    peer: IpAddr,
    session_created: Duration,
    req: AccessUpdate,
) -> Result<AccessView, Error> {
    crate::flows::login::verify_password(app, peer, username, req.current_password, None).await?;
    let rec = record(app).await?;
    let sign_in = match req.sign_in {
        None => rec.settings.sign_in.clone(),
        Some(s) if s == sign_in_text(false) || s == sign_in_text(true) => s,
        Some(s) => {
            return Err(Error::InvalidRequest(
                crate::i18n::Msg::new(crate::i18n::k::MSG_ACCESS_BAD_SIGN_IN).arg("value", s),
            ))
        }
    };
    let new = AccessSettings {
        admin_networks: req.admin_networks,
        user_networks: req.user_networks,
        https_only: req.https_only,
        require_2fa_for_admin: req.require_2fa_for_admin,
        sign_in,
    };
    let rules = Rules::of(&new).map_err(Error::InvalidRequest)?;
    // Stored as the parser reads them: one spelling per entry.
    let new = AccessSettings {
        admin_networks: rules.admin.entries(),
        user_networks: rules.user.entries(),
        ..new
    };
    let confirmed = rec
        .probation
        .as_ref()
        .map_or_else(|| rec.settings.clone(), |p| p.previous.clone());
    let what = changed(&rec.settings, &new);
    if what.is_empty() {
        return view(app, session_created, peer).await;
    }
    let now = app.clock().unix();
    let span = app.config().access.probation;
    let probation = risky(&confirmed, &new).then(|| Probation {
        reverts_at: now + span.as_secs(),
        previous: confirmed.clone(),
        changes: changed(&confirmed, &new),
        by: username.to_string(),
    });
    app.data()?
        .save(AccessRecord {
            settings: new.clone(),
            probation: probation.clone(),
        })
        .await?;
    let mono = app.clock().mono();
    app.access().set(
        rules,
        probation.as_ref().map(|_| OnProbation {
            began: mono,
            until: mono + span,
        }),
    );
    if new.sign_in != rec.settings.sign_in && new.sign_in == sign_in_text(true) {
        end_local_sign_ins(app).await;
    }
    let detail = match &probation {
        Some(p) => format!(
            "{}; on probation until {}",
            what.join(", "),
            crate::clock::format_utc(p.reverts_at)
        ),
        None => what.join(", "),
    };
    app.audit(
        AuditKind::AccessChanged,
        Some(username),
        Some(peer),
        Some(&detail),
    );
    tracing::warn!(user = %username, "access settings changed: {detail}");
    view(app, session_created, peer).await
}

/// Directory-only sign-in turned on: the sessions of local accounts end (the admin's
/// too unless it is this change's own, which [`crate::flows::gate`] keeps to the PBX's
/// own network from now on).
async fn end_local_sign_ins(app: &App) {
    let accounts = match app.data() {
        Ok(d) => d.accounts().await.unwrap_or_default(),
        Err(_) => return,
    };
    for a in accounts {
        if a.directory.is_none() && a.username != crate::model::ADMIN {
            super::end_sign_ins(app, &a.username);
        }
    }
}

/// `POST /settings/access/confirm`: keeps the change on probation for good — only from a
/// session that signed in after it (under the new rules).
pub async fn confirm(
    app: &App,
    username: &str,
    peer: IpAddr,
    session_created: Duration,
) -> Result<(), Error> {
    let live = app.access().probation().ok_or(Error::NothingOnProbation)?;
    if session_created <= live.began {
        return Err(Error::ConfirmFromNewSession);
    }
    let rec = record(app).await?;
    let Some(p) = rec.probation else {
        return Err(Error::NothingOnProbation);
    };
    app.data()?
        .save(AccessRecord {
            settings: rec.settings.clone(),
            probation: None,
        })
        .await?;
    let rules = Rules::of(&rec.settings).map_err(|m| Error::Internal(m.to_string()))?;
    app.access().set(rules, None);
    app.audit(
        AuditKind::AccessConfirmed,
        Some(username),
        Some(peer),
        Some(&p.changes.join(", ")),
    );
    tracing::info!(user = %username, "access change confirmed");
    Ok(())
}

/// Why a change on probation reverted: `timeout` or `button` (the mail says it in words).
pub const WHY_TIMEOUT: &str = "timeout";
pub const WHY_BUTTON: &str = "button";

/// Reverts the change on probation (`why`: [`WHY_TIMEOUT`], [`WHY_BUTTON`]): the
/// rules in RAM at once even if the flash write fails (the owner gets back in; the
/// record on flash reverts at the next start). Audited and mailed. False: none pending.
pub async fn revert(app: &App, why: &str) -> bool {
    let rec = match record(app).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot read the access settings to revert: {e}");
            return false;
        }
    };
    let Some(p) = rec.probation else {
        app.access()
            .set(app.access().rules().as_ref().clone(), None);
        return false;
    };
    let cause = if why == WHY_BUTTON {
        "the reset button was pressed"
    } else {
        "not confirmed from a new sign-in in time"
    };
    let detail = format!("{} reverted: {cause}", p.changes.join(", "));
    // In the trail before it takes effect: whoever the revert lets in finds it there.
    app.audit(AuditKind::AccessReverted, Some(&p.by), None, Some(&detail));
    tracing::warn!("access change {detail}");
    if let Ok(rules) = Rules::of(&p.previous) {
        app.access().set(rules, None);
    }
    let saved = match app.data() {
        Ok(d) => d
            .save(AccessRecord {
                settings: p.previous.clone(),
                probation: None,
            })
            .await
            .map_err(Error::from),
        Err(e) => Err(e),
    };
    if let Err(e) = saved {
        tracing::error!("the reverted access settings were not saved ({e}): they revert again at the next start");
    }
    crate::flows::alerts::alert(
        app,
        crate::model::AlertKind::ProbationReverted,
        None,
        vec![
            ("by", p.by.clone()),
            ("changes", p.changes.join(", ")),
            ("why", why.to_string()),
        ],
    );
    true
}

/// The reset button's credential reset: no admin network any more (and nothing on
/// probation), so the owner at the box gets in from wherever.
pub async fn clear_admin_networks(app: &App) -> Result<(), Error> {
    revert(app, WHY_BUTTON).await;
    let rec = record(app).await?;
    if rec.settings.admin_networks.is_empty() {
        return Ok(());
    }
    let settings = AccessSettings {
        admin_networks: Vec::new(),
        ..rec.settings
    };
    let rules = Rules::of(&settings).map_err(|m| Error::Internal(m.to_string()))?;
    app.access().set(rules, None);
    app.data()?
        .save(AccessRecord {
            settings,
            probation: None,
        })
        .await?;
    app.audit(
        AuditKind::AccessChanged,
        None,
        None,
        Some("admin_networks cleared by the reset button"),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sessions::Grant;
    use crate::flows::testkit::{ip, secret, TestApp, ADMIN_PW};
    use crate::model::ADMIN;

    fn change(admin: &[&str], https_only: bool) -> AccessUpdate {
        AccessUpdate {
            admin_networks: admin.iter().map(|s| s.to_string()).collect(),
            user_networks: Vec::new(),
            https_only,
            require_2fa_for_admin: false,
            sign_in: None,
            current_password: secret(ADMIN_PW),
        }
    }

    fn session(t: &TestApp) -> Duration {
        t.app
            .sessions()
            .create(Grant::of(ADMIN, Role::Admin), Default::default())
            .session
            .created()
    }

    #[tokio::test]
    async fn a_risky_change_reverts_unless_a_newer_session_confirms_it() {
        let t = TestApp::ready("access-probation").await;
        let app = &t.app;
        let lan = ip("192.168.1.20");
        let old = session(&t);
        t.clock.advance(Duration::from_secs(1));
        let v = update(app, ADMIN, lan, old, change(&["10.9.0.0/16"], false))
            .await
            .expect("saved");
        let p = v.probation.expect("on probation");
        assert_eq!(p.changes, ["admin_networks"]);
        assert_eq!(p.reverts_in_s, 600);
        assert!(!p.confirmable, "the session that made it cannot confirm it");
        assert!(!v.you_are_trusted, "192.168.1.20 is outside 10.9.0.0/16");
        assert!(matches!(
            admit(app, Role::Admin, None, lan),
            Err(Error::NotTrustedNetwork { .. })
        ));
        assert!(admit(app, Role::Admin, None, ip("10.9.3.4")).is_ok());
        assert!(
            admit(app, Role::User, None, lan).is_ok(),
            "the users' list is open"
        );
        assert!(matches!(
            confirm(app, ADMIN, lan, old).await,
            Err(Error::ConfirmFromNewSession)
        ));
        // One second short: still on probation; at the deadline it reverts.
        t.clock.advance(Duration::from_secs(599));
        crate::flows::ticker::step(app).await;
        assert!(app.access().probation().is_some());
        t.clock.advance(Duration::from_secs(1));
        crate::flows::ticker::step(app).await;
        assert!(app.access().probation().is_none());
        assert!(admit(app, Role::Admin, None, lan).is_ok(), "reverted");
        let rec = record(app).await.expect("record");
        assert!(rec.settings.admin_networks.is_empty() && rec.probation.is_none());
        assert_eq!(t.audit_count("access_reverted").await, 1);

        // Again, and confirmed from a session signed in after the change.
        update(
            app,
            ADMIN,
            lan,
            old,
            change(&["local", "10.9.0.0/16"], true),
        )
        .await
        .expect("saved");
        t.clock.advance(Duration::from_secs(5));
        let new = session(&t);
        assert!(
            view(app, new, lan)
                .await
                .expect("view")
                .probation
                .expect("pending")
                .confirmable
        );
        confirm(app, ADMIN, lan, new).await.expect("confirmed");
        t.clock.advance(Duration::from_secs(3600));
        crate::flows::ticker::step(app).await;
        let rules = app.access().rules();
        assert!(rules.https_only && rules.admin.has_local(), "kept for good");
        assert!(matches!(
            confirm(app, ADMIN, lan, new).await,
            Err(Error::NothingOnProbation)
        ));
    }

    #[tokio::test]
    async fn loosening_is_not_on_probation_and_a_second_change_keeps_the_first_base() {
        let t = TestApp::ready("access-loosen").await;
        let app = &t.app;
        let lan = ip("192.168.1.20");
        let s = session(&t);
        let v = update(app, ADMIN, lan, s, change(&[], false))
            .await
            .expect("same");
        assert!(v.probation.is_none(), "nothing changed");
        let mut users = change(&[], false);
        users.user_networks = vec!["192.168.1.0/24".into()];
        let v = update(app, ADMIN, lan, s, users).await.expect("users only");
        assert!(
            v.probation.is_none(),
            "the users' list cannot lock the admin out"
        );
        update(app, ADMIN, lan, s, change(&["10.0.0.0/8"], false))
            .await
            .expect("risky");
        update(app, ADMIN, lan, s, change(&["10.0.0.0/8"], true))
            .await
            .expect("riskier");
        let rec = record(app).await.expect("record");
        let p = rec.probation.expect("pending");
        assert_eq!(
            p.previous.admin_networks,
            Vec::<String>::new(),
            "the last confirmed state"
        );
        assert_eq!(p.previous.user_networks, ["192.168.1.0/24"]);
        assert_eq!(p.changes, ["admin_networks", "user_networks", "https_only"]);
        // Back to what was confirmed: nothing left on probation.
        let mut back = change(&[], false);
        back.user_networks = vec!["192.168.1.0/24".into()];
        let v = update(app, ADMIN, lan, s, back).await.expect("back");
        assert!(v.probation.is_none() && app.access().probation().is_none());
    }

    #[tokio::test]
    async fn bad_networks_and_a_wrong_password_change_nothing() {
        let t = TestApp::ready("access-bad").await;
        let app = &t.app;
        let lan = ip("192.168.1.20");
        let s = session(&t);
        let e = update(app, ADMIN, lan, s, change(&["office"], false)).await;
        match e {
            Err(Error::InvalidRequest(m)) => {
                assert!(m.to_string().contains("admin_networks"), "{m}")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        let mut wrong = change(&["10.0.0.0/8"], false);
        wrong.current_password = secret("not it at all");
        assert!(matches!(
            update(app, ADMIN, lan, s, wrong).await,
            Err(Error::InvalidCredentials { .. })
        ));
        assert!(record(app)
            .await
            .expect("record")
            .settings
            .admin_networks
            .is_empty());
    }

    #[tokio::test]
    async fn a_restart_keeps_the_countdown_but_never_stretches_it() {
        let t = TestApp::ready("access-restart").await;
        let config = t.app.config();
        let data = t.app.data().expect("data");
        let pending = |reverts_at| AccessRecord {
            settings: AccessSettings {
                admin_networks: vec!["10.0.0.0/8".into()],
                ..config.access_settings()
            },
            probation: Some(Probation {
                reverts_at,
                previous: config.access_settings(),
                changes: vec!["admin_networks".into()],
                by: ADMIN.into(),
            }),
        };
        let now = 1_800_000_000;
        let mono = Duration::from_secs(50);
        data.blocking()
            .put_setting("access", &pending(now + 200))
            .expect("write");
        let live = crate::app::access_at_start(Some(data.blocking()), &config, now, mono);
        assert_eq!(
            live.probation().map(|p| p.until),
            Some(mono + Duration::from_secs(200))
        );
        assert!(!live.rules().admin.is_open(), "the change holds until then");
        // A wall clock set back by a day must not keep it for a day.
        data.blocking()
            .put_setting("access", &pending(now + 86_400))
            .expect("write");
        let live = crate::app::access_at_start(Some(data.blocking()), &config, now, mono);
        assert_eq!(
            live.probation().map(|p| p.until),
            Some(mono + Duration::from_secs(600))
        );
        // Past its deadline while the box was off: due at once.
        data.blocking()
            .put_setting("access", &pending(now - 5))
            .expect("write");
        let live = crate::app::access_at_start(Some(data.blocking()), &config, now, mono);
        assert_eq!(live.probation().map(|p| p.until), Some(mono));
        // A record this firmware cannot read falls back to the config, never to a lock.
        let mut odd = pending(now + 10);
        odd.settings.admin_networks = vec!["vpn-users".into()];
        data.blocking().put_setting("access", &odd).expect("write");
        let live = crate::app::access_at_start(Some(data.blocking()), &config, now, mono);
        assert!(live.rules().admin.is_open() && live.probation().is_none());
    }

    #[tokio::test]
    async fn the_credential_reset_clears_the_admin_networks_and_reverts() {
        let t = TestApp::ready("access-button").await;
        let app = &t.app;
        let lan = ip("192.168.1.20");
        let s = session(&t);
        let mut users = change(&["10.0.0.0/8"], false);
        users.user_networks = vec!["192.168.1.0/24".into()];
        update(app, ADMIN, lan, s, users).await.expect("risky");
        t.clock.advance(Duration::from_secs(1));
        let later = session(&t);
        confirm(app, ADMIN, ip("10.1.1.1"), later)
            .await
            .expect("confirmed");
        update(
            app,
            ADMIN,
            ip("10.1.1.1"),
            later,
            change(&["10.1.0.0/16"], true),
        )
        .await
        .expect("on probation");
        crate::flows::recovery::button::reset_admin_credentials(app, "test")
            .await
            .expect("reset");
        let rec = record(app).await.expect("record");
        assert!(rec.probation.is_none());
        assert!(rec.settings.admin_networks.is_empty(), "cleared");
        assert!(!rec.settings.https_only, "the change on probation reverted");
        assert_eq!(
            rec.settings.user_networks,
            ["192.168.1.0/24"],
            "the users' list kept"
        );
        assert!(admit(app, Role::Admin, None, ip("203.0.113.9")).is_ok());
        assert_eq!(t.audit_count("access_reverted").await, 1);
    }
}
