//! The admin's API behind the pages: sessions (own / all, end one / all others),
//! accounts (temporary password, email), the audit trail (filters, pages, CSV), the
//! device facts.

use pbx_e2e::{Daemon, TempDir};
use serde_json::json;

use crate::change_initial;
use crate::recovery::ADMIN_PW;
use crate::security::EXT_PW;

#[tokio::test]
async fn a_user_sees_and_ends_only_their_own_sessions_and_the_admin_sees_all() {
    let dir = TempDir::new("admin-sessions");
    let d = Daemon::start(&dir.path().join("state"));
    let mut admin = crate::security::with_extension(&d).await;

    // A user sees only their own sessions and cannot end the admin's.
    let mut ext = d.client_from("127.0.0.21");
    assert_eq!(ext.login("1001", EXT_PW).await.status, 200);
    let mut ext2 = d.client_from("127.0.0.22");
    assert_eq!(ext2.login("1001", EXT_PW).await.status, 200);
    let mine = ext.get("/api/v1/sessions").await.json();
    let list = mine.as_array().expect("list");
    assert_eq!(list.len(), 2, "{mine}");
    assert!(list.iter().all(|s| s["username"] == "1001"), "{mine}");
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    let all = admin.get("/api/v1/sessions").await.json();
    let admin_id = all
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["username"] == "admin")
        .expect("the admin's session")["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        all.as_array().expect("list").len(),
        3,
        "the admin sees all: {all}"
    );
    let csrf = ext.csrf.clone().expect("csrf");
    let r = ext
        .send(
            "DELETE",
            &format!("/api/v1/sessions/{admin_id}"),
            &[("x-csrf-token", &csrf)],
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(admin.get("/api/v1/session").await.status, 200);
    let r = ext
        .send(
            "DELETE",
            "/api/v1/sessions",
            &[("x-csrf-token", &csrf)],
            None,
        )
        .await;
    assert_eq!((r.status, r.json()["ended"].clone()), (200, json!(1)));
    assert_eq!(ext2.get("/api/v1/session").await.status, 401);
    assert_eq!(
        ext.get("/api/v1/session").await.status,
        200,
        "the caller's own stays"
    );
}

#[tokio::test]
async fn a_temporary_password_ends_the_sessions_and_must_be_replaced() {
    let dir = TempDir::new("admin-temporary");
    let d = Daemon::start(&dir.path().join("state"));
    let mut admin = crate::security::with_extension(&d).await;
    let mut ext = d.client_from("127.0.0.21");
    assert_eq!(ext.login("1001", EXT_PW).await.status, 200);

    // A temporary password ends the account's sessions and must be replaced.
    let r = admin
        .send_json(
            "PUT",
            "/api/v1/accounts/1001",
            &json!({"password": "temporary pass 2026"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["must_change_password"].clone()),
        (200, json!(true))
    );
    assert_eq!(ext.get("/api/v1/session").await.status, 401);
    let r = d.client().login("1001", "temporary pass 2026").await;
    assert_eq!(r.json()["must_change_password"], true);
    let r = admin
        .send_json(
            "PUT",
            "/api/v1/accounts/admin",
            &json!({"email": "x@pbx.test"}),
        )
        .await;
    assert_eq!(r.status, 400, "the admin's own page does that");
    let list = admin.get("/api/v1/accounts").await.json();
    let ext_row = list
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["username"] == "1001")
        .expect("1001")
        .clone();
    assert_eq!(ext_row["two_factor"], false);
    assert!(ext_row["last_sign_in"].is_u64(), "{ext_row}");
}

#[tokio::test]
async fn the_audit_trail_is_filtered_paged_spreadsheet_safe_and_the_device_shows_itself() {
    let dir = TempDir::new("admin-audit");
    let d = Daemon::start(&dir.path().join("state"));
    let mut admin = crate::security::with_extension(&d).await;
    // Three sign-ins of 1001 for the pages below.
    for n in 21..24 {
        let r = d
            .client_from(&format!("127.0.0.{n}"))
            .login("1001", EXT_PW)
            .await;
        assert_eq!(r.status, 200);
    }
    let mut ext = d.client_from("127.0.0.25");

    // Audit: filtered, paged, counted; a name typed at the login form cannot become a
    // spreadsheet formula.
    assert_eq!(
        d.client_from("127.0.0.98")
            .login("=HYPERLINK(\"x\")", "whatever guess")
            .await
            .status,
        401
    );
    let r = admin
        .get("/api/v1/audit?event=login&user=1001&page=1&per_page=2")
        .await;
    assert_eq!(r.status, 200);
    let total: usize = r
        .header("x-total-count")
        .expect("count")
        .parse()
        .expect("number");
    assert_eq!(total, 3, "{}", r.text());
    let page = r.json();
    assert_eq!(page.as_array().expect("list").len(), 2);
    assert!(page
        .as_array()
        .expect("list")
        .iter()
        .all(|e| e["event"] == "login" && e["username"] == "1001"));
    let r = admin
        .get("/api/v1/audit?event=login&user=1001&page=2&per_page=2")
        .await;
    assert_eq!(r.json().as_array().expect("list").len(), 1);
    let r = admin.get("/api/v1/audit.csv?event=login_failed").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        r.header("content-disposition").as_deref(),
        Some("attachment; filename=\"pbx-audit.csv\"")
    );
    let csv = r.text();
    assert!(
        csv.contains(",login_failed,\"'=HYPERLINK(\"\"x\"\")\","),
        "{csv}"
    );
    assert!(!csv.contains(",login,"), "filtered: {csv}");
    assert_eq!(ext.get("/api/v1/audit.csv").await.status, 401);

    let dev = admin.get("/api/v1/device").await.json();
    assert_eq!(
        (dev["model"].clone(), dev["serial"].clone()),
        (json!("SIM"), json!("SIM-0001")),
        "{dev}"
    );
    assert!(dev["data_db_bytes"].as_u64() > Some(0), "{dev}");
    assert!(
        dev["firmware_build"].is_string() && dev["uptime_s"].is_u64(),
        "{dev}"
    );
    assert_eq!(dev["recovery"]["button"]["mode"], "credentials");
}

/// Debian's rsyslogd on two loopback ports, writing what it receives to a file.
struct Rsyslog {
    child: std::process::Child,
    udp: u16,
    tcp: u16,
    out: std::path::PathBuf,
}

impl Rsyslog {
    async fn start(dir: &std::path::Path) -> Rsyslog {
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port()
        };
        let (udp, tcp) = (port(), port());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/rsyslog.sh");
        let child = std::process::Command::new("bash")
            .arg(script)
            .arg(dir)
            .args([udp.to_string(), tcp.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("rsyslog.err")).expect("log"))
            .spawn()
            .expect("rsyslogd runs (make test installs rsyslog)");
        let what = format!(
            "rsyslogd did not start (see {})",
            dir.join("rsyslog.err").display()
        );
        pbx_e2e::poll_until(std::time::Duration::from_secs(10), &what, || {
            std::net::TcpStream::connect(("127.0.0.1", tcp))
                .ok()
                .map(drop)
        })
        .await;
        Rsyslog {
            child,
            udp,
            tcp,
            out: dir.join("out.log"),
        }
    }

    /// Waits (up to 10 s) for a received line containing every one of `needles`.
    async fn wait_for(&self, needles: &[&str]) -> String {
        let what = format!("no line with {needles:?} in {}", self.out.display());
        pbx_e2e::poll_until(std::time::Duration::from_secs(10), &what, || {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            let line = text.lines().find(|l| needles.iter().all(|n| l.contains(n)));
            line.map(str::to_string)
        })
        .await
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn audit_events_reach_a_real_syslog_daemon_over_udp_and_tcp() {
    let dir = TempDir::new("syslog");
    let logs = dir.path().join("rsyslog");
    std::fs::create_dir_all(&logs).expect("dir");
    let rs = Rsyslog::start(&logs).await;
    for (proto, port) in [("udp", rs.udp), ("tcp", rs.tcp)] {
        let state = dir.path().join(format!("state-{proto}"));
        let opts = pbx_e2e::Opts {
            config: Some(format!(
                "[audit]\nsyslog = \"{proto}://127.0.0.1:{port}\"\n"
            )),
            env: Vec::new(),
        };
        let d = Daemon::start_opts(&state, &opts);
        let label = crate::initial(&d);
        let secret_guess = format!("guess-{proto}-not-logged");
        assert_eq!(
            d.client_from("127.0.0.31")
                .login("admin", &secret_guess)
                .await
                .status,
            401
        );
        assert_eq!(d.client().login("admin", &label).await.status, 200);
        let failed = rs
            .wait_for(&[
                "pbx-authd",
                " login_failed [pbx@32473 event=\"login_failed\" user=\"admin\" ip=\"127.0.0.31\"]",
            ])
            .await;
        assert!(
            failed.starts_with("<84>1 "),
            "authpriv.warning, RFC 5424: {failed}"
        );
        let ok = rs
            .wait_for(&[
                "pbx-authd",
                " login [pbx@32473 event=\"login\" user=\"admin\" ip=\"127.0.0.1\"]",
            ])
            .await;
        assert!(ok.starts_with("<85>1 "), "authpriv.notice: {ok}");
        let all = std::fs::read_to_string(&rs.out).expect("log");
        assert!(
            !all.contains(&secret_guess) && !all.contains(&label),
            "no password in syslog"
        );
        let mut admin = change_initial(&d, ADMIN_PW).await;
        assert_eq!(admin.login("admin", ADMIN_PW).await.status, 200);
        let dev = admin.get("/api/v1/device").await.json();
        assert_eq!(dev["syslog"]["enabled"], true, "{dev}");
        assert!(dev["syslog"]["sent"].as_u64() >= Some(2), "{dev}");
        assert_eq!(dev["syslog"]["dropped"], 0, "{dev}");
    }
}

/// Issue 24 item 5 (failed on the old code: a session alone planted `backdoor` as an
/// admin, which survived the owner's 5 s press): an admin-role account is created only
/// with the acting admin's password, audited and mailed; the button's credential reset
/// ends the sessions of every other admin-role account and disables it until `admin`
/// enables it again.
#[tokio::test]
async fn a_planted_admin_needs_the_password_and_does_not_survive_the_button() {
    let dir = TempDir::new("admin-plant");
    let d = Daemon::start(&dir.path().join("state"));
    let label = crate::initial(&d);
    let mut c = crate::recovery::admin_ready(&d).await;
    let backdoor_pw = "a planted admin password";
    let mut plant = json!({"username": "backdoor", "role": "admin", "password": backdoor_pw});
    let r = c.post_json("/api/v1/accounts", &plant).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("current_password_required")),
        "{}",
        r.text()
    );
    plant["current_password"] = "not the password".into();
    let r = c.post_json("/api/v1/accounts", &plant).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("invalid_credentials"))
    );
    plant["current_password"] = ADMIN_PW.into();
    let r = c.post_json("/api/v1/accounts", &plant).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let audit = c.get("/api/v1/audit").await.json();
    let created = audit
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["event"] == "account_created")
        .unwrap_or_else(|| panic!("{audit}"))
        .clone();
    assert_eq!(created["username"], "backdoor");
    assert_eq!(created["ip"], "127.0.0.1");
    d.outbox_mail("no notice mail", |m| {
        m.contains("Subject: Admin account created")
    })
    .await;

    // The planted admin signs in (it must change its password first) ...
    let mut b = d.client_from("127.0.0.77");
    assert_eq!(b.login("backdoor", backdoor_pw).await.status, 200);
    let new_backdoor_pw = "the backdoor's own password";
    let r = b
        .post_json(
            "/api/v1/password",
            &json!({"current_password": backdoor_pw, "new_password": new_backdoor_pw}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(b.login("backdoor", new_backdoor_pw).await.status, 200);
    // ... the owner presses the button at the box: its session ends, it is disabled.
    let (_, a) = d.ctl(&["button", "--held-ms", "5000"]);
    assert_eq!(a["action"], "credentials-reset", "{a}");
    assert_eq!(b.get("/api/v1/session").await.status, 401, "session ended");
    let r = b.login("backdoor", new_backdoor_pw).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("account_disabled")),
        "{}",
        r.text()
    );
    // The Accounts list shows it, disabled; the admin enables it again (or deletes it).
    let mut owner = d.client();
    assert_eq!(owner.login("admin", &label).await.status, 200);
    let owner_pw = "the owner's new passphrase";
    let r = owner
        .post_json(
            "/api/v1/password",
            &json!({"current_password": label, "new_password": owner_pw}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(owner.login("admin", owner_pw).await.status, 200);
    let list = owner.get("/api/v1/accounts").await.json();
    let row = list
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["username"] == "backdoor")
        .unwrap_or_else(|| panic!("{list}"))
        .clone();
    assert_eq!(
        (row["role"].clone(), row["disabled"].clone()),
        (json!("admin"), json!(true))
    );
    let r = owner
        .send_json(
            "PUT",
            "/api/v1/accounts/backdoor",
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        b.login("backdoor", new_backdoor_pw).await.status,
        200,
        "enabled again"
    );
    let r = owner
        .send_json("DELETE", "/api/v1/accounts/backdoor", &json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let events = crate::audit_field(&owner.get("/api/v1/audit").await.json(), "event");
    for e in ["account_enabled", "account_deleted", "admins_disabled"] {
        assert!(events.contains(&e.to_string()), "{e}: {events:?}");
    }
}
