//! The Directory page (spec §11): fleet sign-in's settings shown (secrets never: only
//! whether one is set), saved with the owner's password (a secret left out keeps the
//! saved one, and only for the same server: moved elsewhere, it must be typed again,
//! so a changed address cannot have the box hand it to another host), and a test
//! sign-in that names the stage where it stopped.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::auth::Secret;
use crate::error::Error;
use crate::flows::directory::{Silent, Stage, Verdict};
use crate::i18n::{k, Msg};
use crate::model::{AuditKind, DirectorySettings, LdapSettings, RadiusSettings};

/// `PUT /settings/directory`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryForm {
    pub timeout_s: u64,
    pub retries: u64,
    pub radius_admin_attribute: String,
    pub radius_admin_value: String,
    #[serde(default)]
    pub radius_user_value: Option<String>,
    #[serde(default)]
    pub radius: Vec<RadiusForm>,
    #[serde(default)]
    pub ldap: Option<LdapForm>,
    pub current_password: Secret,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusForm {
    pub address: String,
    /// Left out: the saved one, if the address is the same.
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub ca: String,
    #[serde(default)]
    pub client_cert: String,
    /// Left out: the saved one, if the address is the same.
    #[serde(default)]
    pub client_key: Option<Secret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapForm {
    pub url: String,
    pub ca: String,
    #[serde(default)]
    pub bind_dn: String,
    /// Left out: the saved one, if the URL and bind DN are the same.
    #[serde(default)]
    pub bind_password: Option<Secret>,
    pub base_dn: String,
    pub user_filter: String,
    pub admin_group: String,
    #[serde(default)]
    pub user_group: Option<String>,
}

/// What `GET /settings/directory` shows.
#[derive(Serialize)]
pub struct DirectoryView {
    /// `page` (saved here) or `config` (the file's, until the page saves).
    pub source: &'static str,
    pub timeout_s: u64,
    pub retries: u64,
    pub radius_admin_attribute: String,
    pub radius_admin_value: String,
    pub radius_user_value: Option<String>,
    pub radius: Vec<RadiusView>,
    pub ldap: Option<LdapView>,
}

#[derive(Serialize)]
pub struct RadiusView {
    pub address: String,
    pub secret_set: bool,
    pub ca: String,
    pub client_cert: String,
    pub client_key_set: bool,
}

#[derive(Serialize)]
pub struct LdapView {
    pub url: String,
    pub ca: String,
    pub bind_dn: String,
    pub bind_password_set: bool,
    pub base_dn: String,
    pub user_filter: String,
    pub admin_group: String,
    pub user_group: Option<String>,
}

impl DirectoryView {
    fn of(s: DirectorySettings, source: &'static str) -> DirectoryView {
        DirectoryView {
            source,
            timeout_s: s.timeout_s,
            retries: s.retries,
            radius_admin_attribute: s.radius_admin_attribute,
            radius_admin_value: s.radius_admin_value,
            radius_user_value: s.radius_user_value,
            radius: s
                .radius
                .into_iter()
                .map(|r| RadiusView {
                    address: r.address,
                    secret_set: !r.secret.is_empty(),
                    ca: r.ca,
                    client_cert: r.client_cert,
                    client_key_set: !r.client_key.is_empty(),
                })
                .collect(),
            ldap: s.ldap.map(|l| LdapView {
                url: l.url,
                ca: l.ca,
                bind_dn: l.bind_dn,
                bind_password_set: !l.bind_password.is_empty(),
                base_dn: l.base_dn,
                user_filter: l.user_filter,
                admin_group: l.admin_group,
                user_group: l.user_group,
            }),
        }
    }
}

/// The settings in force: the page's saved ones, else the config file's.
async fn current(app: &App) -> Result<(DirectorySettings, &'static str), Error> {
    Ok(match app.data()?.setting::<DirectorySettings>().await? {
        Some(s) => (s, "page"),
        None => (app.config().directory_settings.clone(), "config"),
    })
}

/// After a config reload: the config's directory, unless the page saved its own.
pub async fn config_reloaded(app: &App) {
    match current(app).await {
        Ok((_, "config")) => app.set_directory(app.config().directory.clone()),
        Ok(_) => {}
        Err(e) => tracing::warn!("directory settings unreadable after reload: {e}"),
    }
}

pub async fn view(app: &App) -> Result<DirectoryView, Error> {
    let (s, source) = current(app).await?;
    Ok(DirectoryView::of(s, source))
}

/// A form's secret, else `saved`: the caller passes the saved one only for the same
/// server (RADIUS: its address; LDAP: its URL and bind DN), so a moved server never gets it.
fn secret(sent: Option<Secret>, saved: Option<&str>) -> String {
    match sent {
        Some(s) => s.expose().to_string(),
        None => saved.unwrap_or_default().to_string(),
    }
}

/// Saves new settings (the owner's password first): validated, then in force at once.
pub async fn save(
    app: &App,
    ip: IpAddr,
    by: &str,
    form: DirectoryForm,
) -> Result<DirectoryView, Error> {
    crate::flows::login::verify_password(app, ip, by, form.current_password, None).await?;
    let (old, _) = current(app).await?;
    let radius = form
        .radius
        .into_iter()
        .map(|r| {
            let saved = old.radius.iter().find(|o| o.address == r.address);
            RadiusSettings {
                secret: secret(r.secret, saved.map(|o| o.secret.as_str())),
                client_key: secret(r.client_key, saved.map(|o| o.client_key.as_str())),
                address: r.address,
                ca: r.ca,
                client_cert: r.client_cert,
            }
        })
        .collect();
    let ldap = form.ldap.map(|l| {
        let saved = old
            .ldap
            .as_ref()
            .filter(|o| o.url == l.url && o.bind_dn == l.bind_dn);
        LdapSettings {
            bind_password: secret(l.bind_password, saved.map(|o| o.bind_password.as_str())),
            url: l.url,
            ca: l.ca,
            bind_dn: l.bind_dn,
            base_dn: l.base_dn,
            user_filter: l.user_filter,
            admin_group: l.admin_group,
            user_group: l.user_group.filter(|g| !g.is_empty()),
        }
    });
    let new = DirectorySettings {
        timeout_s: form.timeout_s,
        retries: form.retries,
        radius_admin_attribute: form.radius_admin_attribute,
        radius_admin_value: form.radius_admin_value,
        radius_user_value: form.radius_user_value.filter(|v| !v.is_empty()),
        radius,
        ldap,
    };
    let directory = crate::config::directory::validate(&new).map_err(|bad| {
        let first = bad.into_iter().next().map(|b| b.msg);
        Error::InvalidRequest(first.unwrap_or_else(|| Msg::new(k::MSG_DIR_MUST_BE_SET)))
    })?;
    app.data()?.save(new.clone()).await?;
    app.set_directory(directory);
    let mut servers: Vec<&str> = new.radius.iter().map(|r| r.address.as_str()).collect();
    servers.extend(new.ldap.iter().map(|l| l.url.as_str()));
    let detail = match servers.is_empty() {
        true => "none: local accounts only".to_string(),
        false => servers.join(", "),
    };
    app.audit(
        AuditKind::DirectoryChanged,
        Some(by),
        Some(ip),
        Some(&detail),
    );
    tracing::warn!(user = %by, "directory settings changed: {detail}");
    Ok(DirectoryView::of(new, "page"))
}

/// `POST /settings/directory/test {username, password}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestForm {
    pub username: String,
    pub password: Secret,
}

/// What the test found: `ok`, the stage where it stopped, in words.
#[derive(Serialize)]
pub struct TestOutcome {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'static str>,
    pub message: String,
}

/// Asks the directory in force about `username` as a sign-in would (the same limits:
/// counted for the address and the name before anything is sent), without signing in.
pub async fn test(
    app: &App,
    ip: IpAddr,
    lang: crate::i18n::Lang,
    form: TestForm,
) -> Result<TestOutcome, Error> {
    let say = |ok: bool, stage: Option<&'static str>, m: Msg| TestOutcome {
        ok,
        stage,
        message: m.text(lang),
    };
    if !app.directory().configured() {
        return Ok(say(false, Some("settings"), Msg::new(k::MSG_DIRTEST_NONE)));
    }
    let local = crate::flows::local::is_local(app, ip);
    let attempt = app
        .limiter()
        .begin_from(ip, local, &form.username, None)
        .map_err(crate::flows::login::refused)?;
    let (verdict, silent) = crate::flows::directory::ask_all(
        app,
        &form.username,
        form.password.expose().as_bytes(),
        None,
    )
    .await?;
    let user = form.username.as_str();
    Ok(match verdict {
        Some(Verdict::Accepted { role, via }) => {
            attempt.succeeded();
            say(
                true,
                None,
                Msg::new(k::MSG_DIRTEST_OK)
                    .arg("user", user)
                    .arg("role", role.as_str())
                    .arg("via", via),
            )
        }
        Some(Verdict::Challenge(c)) => say(
            true,
            Some("challenge"),
            Msg::new(k::MSG_DIRTEST_CHALLENGE).arg("message", c.message.unwrap_or_default()),
        ),
        Some(Verdict::NoRole { via }) => say(
            false,
            Some("role"),
            Msg::new(k::MSG_DIRTEST_ROLE)
                .arg("user", user)
                .arg("via", via),
        ),
        Some(Verdict::Rejected) => {
            let _ = attempt.failed();
            say(
                false,
                Some("password"),
                Msg::new(k::MSG_DIRTEST_PASSWORD).arg("user", user),
            )
        }
        None => {
            let s = silent.into_iter().next().unwrap_or(Silent {
                server: String::new(),
                stage: Stage::Connect,
                detail: String::new(),
            });
            let (stage, key) = match s.stage {
                Stage::Connect => ("connect", k::MSG_DIRTEST_CONNECT),
                Stage::Tls => ("tls", k::MSG_DIRTEST_TLS),
                Stage::Reply => ("reply", k::MSG_DIRTEST_REPLY),
                Stage::ServiceBind => ("service_bind", k::MSG_DIRTEST_SERVICE_BIND),
                Stage::Search => ("search", k::MSG_DIRTEST_SEARCH),
            };
            say(
                false,
                Some(stage),
                Msg::new(key)
                    .arg("server", s.server)
                    .arg("detail", s.detail),
            )
        }
    })
}
