//! Fleet sign-in (SPEC §11) against the binary and Debian's FreeRADIUS of the test's
//! own: directory admins and users, the Access-Challenge's code, the limits before any
//! request, forged Accepts refused, the directory going down (503 in words, the local
//! admin still in), directory-only sign-in.

use std::time::{Duration, Instant};

use pbx_e2e::certs::{test_certs, TestCerts};
use pbx_e2e::radius::{Forgery, FreeRadius, Rogue, SECRET};
use pbx_e2e::{Client, Daemon, Opts, TempDir};
use serde_json::{json, Value};

use crate::recovery::ADMIN_PW;

/// A daemon asking the RADIUS servers at `servers`, one try of a second each.
fn start(dir: &TempDir, servers: &[std::net::SocketAddr], more: &str) -> Daemon {
    let mut config = String::from("[directory]\ntimeout_s = 1\nretries = 0\n");
    for s in servers {
        config.push_str(&format!(
            "[[directory.radius]]\naddress = \"{s}\"\nsecret = \"{SECRET}\"\n"
        ));
    }
    config.push_str(more);
    let opts = Opts {
        config: Some(config),
        env: Vec::new(),
    };
    Daemon::start_opts(&dir.path().join("state"), &opts)
}

/// The requests for `user` FreeRADIUS received (one `User-Name` line in each packet's
/// listing).
fn asked(radius: &FreeRadius, user: &str) -> usize {
    let line = format!("   User-Name = \"{user}\"");
    radius
        .log()
        .lines()
        .filter(|l| l.starts_with('(') && l.ends_with(&line))
        .count()
}

async fn owner(d: &Daemon) -> Client {
    let mut c = crate::change_initial(d, ADMIN_PW).await;
    assert_eq!(c.login("admin", ADMIN_PW).await.status, 200);
    c
}

/// Signs `user` in from `from`: the answer's status and role (or error code), and the
/// signed-in client.
async fn sign_in(d: &Daemon, from: &str, user: &str, pw: &str) -> (u16, Value, Client) {
    let mut c = d.client_from(from);
    let r = c.login(user, pw).await;
    let body = r.json();
    let what = if r.status == 200 {
        body["role"].clone()
    } else {
        body["error"].clone()
    };
    (r.status, what, c)
}

fn find<'a>(list: &'a Value, user: &str) -> &'a Value {
    list.as_array()
        .expect("list")
        .iter()
        .find(|s| s["username"] == user)
        .unwrap_or_else(|| panic!("{user} in {list}"))
}

/// Accepted users get a session with the role the reply gives (Class = pbx-admin →
/// admin; Filter-Id or nothing → user), listed with the server they came from and
/// audited so; a Reject counts like a wrong password; a directory `admin` is never
/// asked (in any case of the name); the challenge user signs in with the code the
/// server asked for; a directory user's password is not changed here; every request
/// carries the serial as NAS-Identifier and a Message-Authenticator.
#[tokio::test]
async fn directory_users_sign_in_through_a_real_freeradius() {
    let dir = TempDir::new("directory-radius");
    let radius = FreeRadius::start(&dir.path().join("radius"));
    let d = start(&dir, &[radius.addr()], "");
    let mut admin = owner(&d).await;

    let mut tech1 = d.client_from("127.0.0.31");
    let r = tech1.login("tech1", "admin pass 1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["username"].clone(), r.json()["role"].clone()),
        (json!("tech1"), json!("admin"))
    );
    // An admin by the directory: the admin's pages answer.
    assert_eq!(tech1.get("/api/v1/accounts").await.status, 200);
    for (user, pw) in [("tech2", "user pass 2"), ("tech4", "plain pass 4")] {
        let mut c = d.client_from("127.0.0.32");
        let r = c.login(user, pw).await;
        assert_eq!(r.status, 200, "{user}: {}", r.text());
        assert_eq!(r.json()["role"], "user", "{user}");
        assert_eq!(c.get("/api/v1/accounts").await.status, 403, "{user}");
    }
    let sessions = admin.get("/api/v1/sessions").await.json();
    let via = format!("RADIUS {}", radius.addr());
    assert_eq!(find(&sessions, "tech1")["via"], json!(via), "{sessions}");
    assert_eq!(find(&sessions, "admin").get("via"), None, "{sessions}");
    let audit = admin.get("/api/v1/audit").await.json();
    let details = crate::audit_field(&audit, "detail");
    assert!(
        details
            .iter()
            .any(|x| x == &format!("from the directory ({via}), role admin")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|x| x.ends_with(&format!("via {via}"))),
        "{details:?}"
    );

    // A Reject is a wrong password: counted for the address and the name.
    let mut guess = d.client_from("127.0.0.33");
    let r = guess.login("tech1", "not it").await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_credentials");
    assert_eq!(r.json()["attempts_left"], 4);

    // The directory's "admin" is never asked: the box's admin is local.
    for name in ["admin", "Admin", "ADMIN"] {
        let r = guess.login(name, "directory admin 5").await;
        assert_eq!(r.status, 401, "{name}: {}", r.text());
    }
    assert_eq!(asked(&radius, "admin"), 0);
    assert_eq!(asked(&radius, "Admin") + asked(&radius, "ADMIN"), 0);

    // The challenge: the password gets the server's question, the code the session.
    let mut tech3 = d.client_from("127.0.0.34");
    let r = tech3.login("tech3", "token pass 3").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"two_factor_required": true, "directory_code": true,
               "message": "Enter the code from your token"})
    );
    let r = tech3
        .post_json("/api/v1/login/2fa", &json!({"code": "424242"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["role"], "admin");
    // A wrong code is a wrong password, and the question is not asked again.
    let mut tech3b = d.client_from("127.0.0.35");
    assert_eq!(tech3b.login("tech3", "token pass 3").await.status, 200);
    let r = tech3b
        .post_json("/api/v1/login/2fa", &json!({"code": "111111"}))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("invalid_credentials"))
    );
    let r = tech3b
        .post_json("/api/v1/login/2fa", &json!({"code": "424242"}))
        .await;
    assert_eq!(
        r.status,
        401,
        "the State is good for one answer: {}",
        r.text()
    );

    // The password is the directory's.
    let r = tech1
        .post_json(
            "/api/v1/password",
            &json!({"current_password": "admin pass 1", "new_password": "another long one"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (409, json!("directory_password"))
    );

    let log = radius.log();
    let status = d.ctl(&["status"]).1;
    let serial = status["serial"]
        .as_str()
        .expect("ctl status names the serial");
    assert!(
        log.contains(&format!("NAS-Identifier = \"{serial}\"")),
        "{log}"
    );
    assert!(log.contains("Message-Authenticator = 0x"), "{log}");
    assert!(
        !log.contains("Message-Authenticator attribute is missing"),
        "{log}"
    );
}

/// The directory stops mid-test: directory users get 503 `directory_unavailable`
/// naming the server, within the timeout (one try of a second), never a hang; the
/// local admin signs in as before, and nothing is counted against the names.
#[tokio::test]
async fn the_directory_down_leaves_the_local_admin_in() {
    let dir = TempDir::new("directory-down");
    let mut radius = FreeRadius::start(&dir.path().join("radius"));
    // The main server is silent (a port nobody answers on): the fallback answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("a port");
    let dead = silent.local_addr().expect("addr");
    let d = start(&dir, &[dead, radius.addr()], "");
    let mut admin = owner(&d).await;
    let mut tech = d.client_from("127.0.0.41");
    let r = tech.login("tech1", "admin pass 1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sessions = admin.get("/api/v1/sessions").await.json();
    assert_eq!(
        find(&sessions, "tech1")["via"],
        json!(format!("RADIUS {}", radius.addr())),
        "failed over to the second server"
    );
    radius.stop();

    let mut again = d.client_from("127.0.0.42");
    for _ in 0..6 {
        let t = Instant::now();
        let r = again.login("tech1", "admin pass 1").await;
        // Two servers, one try of a second each.
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(r.status, 503, "{}", r.text());
        let body = r.json();
        assert_eq!(body["error"], "directory_unavailable");
        assert_eq!(
            body["message"],
            format!(
                "The sign-in server {dead}, {} did not answer; the local admin still works.",
                radius.addr()
            )
        );
    }
    // Six silences counted nothing: no lock of the address or the name.
    assert_eq!(admin.login("admin", ADMIN_PW).await.status, 200);
    let mut owner_again = d.client_from("127.0.0.42");
    assert_eq!(owner_again.login("admin", ADMIN_PW).await.status, 200);
    // In German too.
    let r = again
        .send(
            "POST",
            "/api/v1/login",
            &[
                ("accept-language", "de"),
                ("content-type", "application/json"),
            ],
            Some(
                json!({"username": "tech2", "password": "x"})
                    .to_string()
                    .into(),
            ),
        )
        .await;
    assert_eq!(r.status, 503);
    assert!(
        r.json()["message"].as_str().is_some_and(
            |m| m.contains("hat nicht geantwortet; der lokale Admin funktioniert weiterhin")
        ),
        "{}",
        r.text()
    );
}

/// The brute-force limits apply before a request is sent: of twelve wrong passwords
/// from one address at once, five are sent (four answered 401, the fifth locks the
/// address: 429), the other seven are refused at the box.
#[tokio::test]
async fn the_limits_apply_before_the_directory_is_asked() {
    let dir = TempDir::new("directory-limits");
    let radius = FreeRadius::start(&dir.path().join("radius"));
    let d = start(&dir, &[radius.addr()], "");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let mut c = d.client_from("127.0.0.51");
        set.spawn(async move { c.login("tech2", "wrong wrong").await.status });
    }
    let mut got = set.join_all().await;
    got.sort_unstable();
    assert_eq!(got.iter().filter(|s| **s == 401).count(), 4, "{got:?}");
    assert_eq!(got.iter().filter(|s| **s == 429).count(), 8, "{got:?}");
    assert_eq!(
        asked(&radius, "tech2"),
        5,
        "only the five counted were sent"
    );
    // Interleaved from a second address: its own five, the right password among them
    // still works before the limit.
    let mut other = d.client_from("127.0.0.52");
    for _ in 0..4 {
        assert_eq!(other.login("tech2", "wrong").await.status, 401);
    }
    assert_eq!(other.login("tech2", "user pass 2").await.status, 200);
    assert_eq!(asked(&radius, "tech2"), 10);
}

/// A rogue on the server's address answering Access-Accept (Class = pbx-admin, a right
/// Response Authenticator) without or with a forged Message-Authenticator signs nobody
/// in: the replies are refused, logged, and the sign-in gets 503 (the real server did
/// not answer); the local admin still gets in.
#[tokio::test]
async fn forged_accepts_are_refused() {
    for how in [Forgery::Without, Forgery::Forged] {
        let dir = TempDir::new("directory-rogue");
        let rogue = Rogue::start(how);
        let d = start(&dir, &[rogue.addr], "");
        let mut c = d.client_from("127.0.0.61");
        let r = c.login("tech1", "anything at all").await;
        assert_eq!(r.status, 503, "{how:?}: {}", r.text());
        assert_eq!(r.json()["error"], "directory_unavailable");
        assert!(rogue.answered() >= 1, "{how:?}");
        assert_eq!(c.get("/api/v1/session").await.status, 401);
        let log = d.log_text();
        assert!(log.contains("RADIUS reply refused"), "{how:?}: {log}");
        let mut owner = d.client();
        assert_eq!(owner.login("admin", &crate::initial(&d)).await.status, 200);
    }
}

/// `access.sign_in = "directory"` (on probation like every change that can lock the
/// admin out): a local extension is refused with `directory_only` in words, its
/// session ends; directory users and the local admin at the box still sign in.
#[tokio::test]
async fn directory_only_sign_in_keeps_the_local_admin_at_the_box() {
    let dir = TempDir::new("directory-only");
    let radius = FreeRadius::start(&dir.path().join("radius"));
    let d = start(&dir, &[radius.addr()], "");
    let mut admin = crate::security::with_extension(&d).await;
    let mut ext = d.client_from("127.0.0.71");
    assert_eq!(ext.login("1001", crate::security::EXT_PW).await.status, 200);
    let r = admin
        .send_json(
            "PUT",
            "/api/v1/settings/access",
            &json!({
                "admin_networks": [], "user_networks": [], "https_only": false,
                "require_2fa_for_admin": false, "sign_in": "directory",
                "current_password": ADMIN_PW,
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["sign_in"], "directory");
    assert_eq!(body["probation"]["changes"], json!(["sign_in"]), "{body}");
    assert_eq!(
        ext.get("/api/v1/session").await.status,
        401,
        "its session ended"
    );
    let r = ext.login("1001", crate::security::EXT_PW).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"], "directory_only");
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("from the company's directory only")),
        "{}",
        r.text()
    );
    let mut tech = d.client_from("127.0.0.72");
    assert_eq!(tech.login("tech2", "user pass 2").await.status, 200);
    // Loopback is the box itself.
    let mut at_box = d.client();
    assert_eq!(at_box.login("admin", ADMIN_PW).await.status, 200);
}

fn radsec_config(port: u16, ca: &std::path::Path, client: Option<&TestCerts>) -> String {
    let mut c = format!(
        "[directory]\ntimeout_s = 2\n[[directory.radius]]\naddress = \"radsec://localhost:{port}\"\n\
         secret = \"radsec\"\nca = \"{}\"\n",
        ca.display()
    );
    if let Some(f) = client {
        c.push_str(&format!(
            "client_cert = \"{}\"\nclient_key = \"{}\"\n",
            f.client_cert.display(),
            f.client_key.display()
        ));
    }
    c
}

/// RadSec (RFC 6614) to FreeRADIUS's TLS listener with a test CA, the box showing its
/// client certificate: an admin by Class and the challenge user sign in over it. A
/// server certificate from another CA, or no client certificate, signs nobody in:
/// 503 naming the server, the TLS failure in the log.
#[tokio::test]
async fn radsec_with_a_test_ca_and_a_client_certificate() {
    let dir = TempDir::new("directory-radsec");
    let files = test_certs(&dir.path().join("tls"));
    let radius = FreeRadius::start_with(&dir.path().join("radius"), Some(&dir.path().join("tls")));
    let opts = |config: String| Opts {
        config: Some(config),
        env: Vec::new(),
    };
    let d = Daemon::start_opts(
        &dir.path().join("state"),
        &opts(radsec_config(radius.port, &files.ca, Some(&files))),
    );
    let mut tech1 = d.client_from("127.0.0.81");
    let r = tech1.login("tech1", "admin pass 1").await;
    assert_eq!(r.status, 200, "{}\n{}", r.text(), d.log_text());
    assert_eq!(r.json()["role"], "admin");
    let mut admin = d.client();
    assert_eq!(admin.login("admin", &crate::initial(&d)).await.status, 200);
    let sessions = tech1.get("/api/v1/sessions").await.json();
    assert_eq!(
        find(&sessions, "tech1")["via"],
        json!(format!("RADIUS radsec://localhost:{}", radius.port))
    );
    let mut tech3 = d.client_from("127.0.0.82");
    let r = tech3.login("tech3", "token pass 3").await;
    assert_eq!(r.json()["directory_code"], true, "{}", r.text());
    let r = tech3
        .post_json("/api/v1/login/2fa", &json!({"code": "424242"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = tech1.login("tech2", "wrong").await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("invalid_credentials"))
    );
    drop(d);

    let other = test_certs(&dir.path().join("other"));
    for (tag, config, why) in [
        (
            "state-other-ca",
            radsec_config(radius.port, &other.ca, Some(&files)),
            "invalid peer certificate",
        ),
        (
            "state-no-client-cert",
            radsec_config(radius.port, &files.ca, None),
            "TLS",
        ),
    ] {
        let d = Daemon::start_opts(&dir.path().join(tag), &opts(config));
        let mut c = d.client_from("127.0.0.83");
        let r = c.login("tech1", "admin pass 1").await;
        assert_eq!(r.status, 503, "{tag}: {}", r.text());
        assert_eq!(
            r.json()["message"],
            format!(
                "The sign-in server radsec://localhost:{} did not answer; the local admin still works.",
                radius.port
            )
        );
        let log = d.log_text();
        assert!(
            log.lines()
                .any(|l| l.contains("RADIUS server gave no usable answer") && l.contains(why)),
            "{tag}: {log}"
        );
    }
}

fn ldap_config(url: &str, ca: &std::path::Path, user_group: Option<&str>) -> String {
    use pbx_e2e::ldap::{BASE, SERVICE_DN, SERVICE_PW};
    let mut c = format!(
        "[directory]\ntimeout_s = 2\n[directory.ldap]\nurl = \"{url}\"\nca = \"{}\"\n\
         bind_dn = \"{SERVICE_DN}\"\nbind_password = \"{SERVICE_PW}\"\n\
         base_dn = \"ou=people,{BASE}\"\nuser_filter = \"(&(objectClass=inetOrgPerson)(uid={{username}}))\"\n\
         admin_group = \"cn=pbx-admins,ou=groups,{BASE}\"\n",
        ca.display()
    );
    if let Some(g) = user_group {
        c.push_str(&format!("user_group = \"cn={g},ou=groups,{BASE}\"\n"));
    }
    c
}

/// Search-then-bind against OpenLDAP's slapd of the test's own, over LDAPS: a member of
/// the admins' group signs in as admin (by the group's member list, and by the entry's
/// own memberOf), another user as user (no user group set), a
/// wrong password is a counted failure, the directory's `admin` is never asked; over
/// StartTLS with a users' group: its member is a user, a user in neither group is
/// refused with `directory_no_role` only with the right password. slapd stopped: 503
/// naming it, the local admin still in.
#[tokio::test]
async fn directory_users_sign_in_through_a_real_slapd() {
    use pbx_e2e::ldap::Slapd;
    let dir = TempDir::new("directory-ldap");
    let certs = test_certs(&dir.path().join("tls"));
    let mut slapd = Slapd::start(&dir.path().join("slapd"), &dir.path().join("tls"));
    let ldaps = format!("ldaps://localhost:{}", slapd.ldaps);
    let opts = |config: String| Opts {
        config: Some(config),
        env: Vec::new(),
    };
    let d = Daemon::start_opts(
        &dir.path().join("state"),
        &opts(ldap_config(&ldaps, &certs.ca, None)),
    );
    let mut ldap1 = d.client_from("127.0.0.91");
    let r = ldap1.login("ldap1", "ldap admin 1").await;
    assert_eq!(r.status, 200, "{}\n{}", r.text(), d.log_text());
    assert_eq!(r.json()["role"], "admin");
    let sessions = ldap1.get("/api/v1/sessions").await.json();
    assert_eq!(
        find(&sessions, "ldap1")["via"],
        json!(format!("LDAP {ldaps}"))
    );
    // The role from the entry's own memberOf (no group entry lists ldap4).
    let (status, role, _ldap4) = sign_in(&d, "127.0.0.96", "ldap4", "ldap admin 4").await;
    assert_eq!((status, role), (200, json!("admin")), "ldap4");
    let (status, role, _ldap2) = sign_in(&d, "127.0.0.92", "ldap2", "ldap user 2").await;
    assert_eq!((status, role), (200, json!("user")), "ldap2");
    let mut guess = d.client_from("127.0.0.93");
    let r = guess.login("ldap1", "not it").await;
    assert_eq!(
        (r.status, r.json()["attempts_left"].clone()),
        (401, json!(4)),
        "{}",
        r.text()
    );
    // Names that are no directory user's: not asked, a failure like any.
    for (name, pw) in [
        ("admin", "ldap admin 5"),
        ("ldap9", "x"),
        ("ldap1)(uid=*", "x"),
    ] {
        let r = guess.login(name, pw).await;
        assert_eq!(r.status, 401, "{name}: {}", r.text());
    }
    let log = slapd.log();
    assert!(!log.contains("(uid=admin)"), "{log}");
    assert!(!log.contains("uid=*"), "{log}");
    drop(d);

    // StartTLS, with a users' group.
    let starttls = format!("ldap://localhost:{}?starttls", slapd.ldap);
    let d = Daemon::start_opts(
        &dir.path().join("state-starttls"),
        &opts(ldap_config(&starttls, &certs.ca, Some("pbx-users"))),
    );
    for (user, pw, want) in [
        ("ldap3", "ldap user 3", (200, json!("user"))),
        ("ldap1", "ldap admin 1", (200, json!("admin"))),
        // A wrong password tells nothing of roles; the right one is told.
        ("ldap2", "wrong", (401, json!("invalid_credentials"))),
        ("ldap2", "ldap user 2", (403, json!("directory_no_role"))),
    ] {
        let (status, what, _) = sign_in(&d, "127.0.0.94", user, pw).await;
        assert_eq!((status, what), want, "{user} with {pw:?}");
    }
    let mut none = d.client_from("127.0.0.95");
    assert!(slapd.log().contains("STARTTLS"), "{}", slapd.log());

    slapd.stop();
    let r = none.login("ldap3", "ldap user 3").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        format!("The sign-in server {starttls} did not answer; the local admin still works.")
    );
    let mut owner = d.client();
    assert_eq!(owner.login("admin", &crate::initial(&d)).await.status, 200);
}

fn radius_form(address: &str, secret: Option<&str>) -> Value {
    let mut server = json!({ "address": address });
    if let Some(s) = secret {
        server["secret"] = json!(s);
    }
    json!({
        "timeout_s": 1, "retries": 0, "radius_admin_attribute": "Class",
        "radius_admin_value": "pbx-admin", "radius": [server], "ldap": null,
        "current_password": ADMIN_PW,
    })
}

/// The Directory page's API: shown without secrets, saved with the owner's password and
/// in force at once (and after a restart), a secret left out kept only for the same
/// server, bad settings refused naming the field in words, and the test sign-in naming
/// where it stopped: no server set up, a right and a wrong password, the challenge, a
/// forged reply, a server that is down.
#[tokio::test]
async fn the_directory_settings_are_saved_tested_and_keep_their_secrets() {
    let dir = TempDir::new("directory-settings");
    let mut radius = FreeRadius::start(&dir.path().join("radius"));
    let state = dir.path().join("state");
    let d = Daemon::start(&state);
    let mut admin = owner(&d).await;
    let r = admin.get("/api/v1/settings/directory").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["source"], "config");
    assert_eq!(r.json()["radius"], json!([]));
    let test = |user: &str, pw: &str| json!({ "username": user, "password": pw });
    let r = admin
        .post_json("/api/v1/settings/directory/test", &test("tech1", "x"))
        .await;
    assert_eq!(
        (r.status, r.json()["ok"].clone(), r.json()["stage"].clone()),
        (200, json!(false), json!("settings"))
    );

    let addr = radius.addr().to_string();
    let mut wrong_pw = radius_form(&addr, Some(SECRET));
    wrong_pw["current_password"] = json!("not mine");
    let r = admin
        .send_json("PUT", "/api/v1/settings/directory", &wrong_pw)
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = admin
        .send_json(
            "PUT",
            "/api/v1/settings/directory",
            &radius_form("nowhere", Some("s")),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("invalid_request"))
    );
    assert_eq!(
        r.json()["message"],
        "radius[0].address: nowhere is neither IP:PORT (UDP, e.g. 10.0.0.5:1812) nor radsec://HOST:PORT."
    );
    let r = admin
        .send_json(
            "PUT",
            "/api/v1/settings/directory",
            &radius_form(&addr, Some(SECRET)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["source"], "page");
    assert_eq!(body["radius"][0]["secret_set"], true);
    let shown = admin.get("/api/v1/settings/directory").await.text();
    assert!(!shown.contains(SECRET), "{shown}");
    let audit = admin.get("/api/v1/audit").await.json();
    assert!(crate::audit_field(&audit, "event").contains(&"directory_changed".to_string()));

    // In force at once; saved again without the secret: kept.
    let mut tech = d.client_from("127.0.0.101");
    assert_eq!(tech.login("tech1", "admin pass 1").await.status, 200);
    let r = admin
        .send_json(
            "PUT",
            "/api/v1/settings/directory",
            &radius_form(&addr, None),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(tech.login("tech1", "admin pass 1").await.status, 200);
    // Moved to another server, the secret must be typed again.
    let rogue = Rogue::start(Forgery::Forged);
    let r = admin
        .send_json(
            "PUT",
            "/api/v1/settings/directory",
            &radius_form(&rogue.addr.to_string(), None),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("the shared secret is missing")),
        "{}",
        r.text()
    );

    // The test sign-in, stage by stage.
    let mut tested = Vec::new();
    for (user, pw) in [
        ("tech1", "admin pass 1"),
        ("tech2", "wrong"),
        ("tech3", "token pass 3"),
    ] {
        let r = admin
            .post_json("/api/v1/settings/directory/test", &test(user, pw))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        tested.push(r.json());
    }
    assert_eq!(
        tested[0],
        json!({"ok": true, "message": format!("It works: tech1 would sign in as admin (via RADIUS {addr}).")})
    );
    assert_eq!(
        (tested[1]["ok"].clone(), tested[1]["stage"].clone()),
        (json!(false), json!("password"))
    );
    assert_eq!(tested[2]["stage"], "challenge");
    assert!(
        tested[2]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Enter the code from your token")),
        "{}",
        tested[2]
    );
    let r = admin
        .send_json(
            "PUT",
            "/api/v1/settings/directory",
            &radius_form(&rogue.addr.to_string(), Some(SECRET)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = admin
        .post_json("/api/v1/settings/directory/test", &test("tech1", "x"))
        .await;
    assert_eq!(r.json()["stage"], "reply", "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("Message-Authenticator")),
        "{}",
        r.text()
    );
    let r = admin
        .send_json(
            "PUT",
            "/api/v1/settings/directory",
            &radius_form(&addr, Some(SECRET)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    radius.stop();
    let r = admin
        .post_json("/api/v1/settings/directory/test", &test("tech1", "x"))
        .await;
    assert_eq!(r.json()["stage"], "connect", "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&format!("No answer from {addr}"))),
        "{}",
        r.text()
    );

    // Saved on flash: a restart keeps them.
    d.stop();
    let d = Daemon::start(&state);
    let mut admin = d.client();
    assert_eq!(admin.login("admin", ADMIN_PW).await.status, 200);
    let r = admin.get("/api/v1/settings/directory").await;
    assert_eq!(
        (
            r.json()["source"].clone(),
            r.json()["radius"][0]["address"].clone()
        ),
        (json!("page"), json!(addr))
    );
}

/// The Directory page and the sign-in page in Chromium: a RADIUS server saved from the
/// form, the test sign-in's answer shown, the sign-in page asking for the code the
/// server wants (its own words shown) and the session that follows, the Sessions page
/// naming where it came from.
#[tokio::test]
async fn the_directory_page_and_the_servers_code_in_the_browser() {
    use pbx_e2e::webdriver::Browser;
    let dir = TempDir::new("directory-ui");
    let radius = FreeRadius::start(&dir.path().join("radius"));
    let d = Daemon::start(&dir.path().join("state"));
    crate::change_initial(&d, ADMIN_PW).await;
    let mut b = Browser::start().await;
    crate::ui::admin_in(&mut b, &d).await;
    crate::ui::open(&mut b, &d, "/directory").await;
    b.type_into("#r0-address", &radius.addr().to_string()).await;
    b.type_into("#r0-secret", SECRET).await;
    b.type_into("#directory-password", ADMIN_PW).await;
    b.click("#directory-form button[type=submit]").await;
    b.wait_for_text("#notice", "Saved: sign-ins use these settings from now on.")
        .await;
    assert_eq!(
        b.eval("return document.getElementById('r0-secret-kept').hidden;")
            .await,
        json!(false)
    );
    b.type_into("#test-username", "tech1").await;
    b.type_into("#test-password", "admin pass 1").await;
    b.click("#test-form button[type=submit]").await;
    b.wait_for_text("#test-notice", "It works: tech1 would sign in as admin")
        .await;
    b.shot("directory-page").await;
    b.click("#logout").await;
    b.wait_for_path("/login").await;
    b.wait_ready().await;
    b.type_into("#username", "tech3").await;
    b.type_into("#password", "token pass 3").await;
    b.click("#login-form button[type=submit]").await;
    b.wait_for_text("#server-says", "Enter the code from your token")
        .await;
    assert_eq!(
        b.text("#code-intro").await,
        "The company's sign-in server asks for a one-time code."
    );
    b.shot("directory-code").await;
    b.type_into("#otp", "424242").await;
    b.click("#code-form button[type=submit]").await;
    b.wait_for_path("/").await;
    crate::ui::open(&mut b, &d, "/sessions").await;
    b.wait_for_text(
        "#sessions-rows",
        &format!("tech3 (via RADIUS {})", radius.addr()),
    )
    .await;
}

/// `policy.require_2fa_for_admin` holds for directory admins: the first sign-in must
/// set up the box's own second factor (its password confirmed by the directory), and
/// every later one asks for the code after the directory's Accept.
#[tokio::test]
async fn the_box_can_require_two_factor_of_directory_admins() {
    use pbx_e2e::totp;
    let dir = TempDir::new("directory-2fa");
    let radius = FreeRadius::start(&dir.path().join("radius"));
    let d = start(
        &dir,
        &[radius.addr()],
        "[policy]\nrequire_2fa_for_admin = true\n",
    );
    let mut tech = d.client_from("127.0.0.111");
    let r = tech.login("tech1", "admin pass 1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["two_factor_enrollment_required"], true);
    assert_eq!(
        tech.get("/api/v1/accounts").await.json()["error"],
        "two_factor_enrollment_required"
    );
    let r = tech
        .post_json("/api/v1/2fa/setup", &json!({"password": "admin pass 1"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let secret = r.json()["secret"].as_str().expect("secret").to_string();
    let r = tech
        .post_json(
            "/api/v1/2fa/enable",
            &json!({"code": totp::code(&secret, totp::now())}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let mut again = d.client_from("127.0.0.112");
    let r = again.login("tech1", "admin pass 1").await;
    assert_eq!(
        r.json(),
        json!({"two_factor_required": true}),
        "{}",
        r.text()
    );
    let r = again
        .post_json(
            "/api/v1/login/2fa",
            &json!({"code": totp::code(&secret, totp::now() + 30)}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["role"].clone()),
        (200, json!("admin")),
        "{}",
        r.text()
    );
    assert_eq!(again.get("/api/v1/accounts").await.status, 200);
}

/// The trusted networks (SPEC §10) hold for directory users: from an address trusted
/// for no role, a name the box does not know is not even asked (401 like any unknown
/// name); from one trusted for users only, a directory admin's Accept still ends in 403
/// `not_trusted_network`, and a directory user signs in.
#[tokio::test]
async fn directory_users_keep_to_the_trusted_networks() {
    let dir = TempDir::new("directory-networks");
    let radius = FreeRadius::start(&dir.path().join("radius"));
    let d = start(
        &dir,
        &[radius.addr()],
        "[access]\nadmin_networks = [\"127.0.0.2/32\"]\nuser_networks = [\"127.0.0.2/32\", \"127.0.0.3/32\"]\n",
    );
    let (status, what, _) = sign_in(&d, "127.0.0.121", "tech1", "admin pass 1").await;
    assert_eq!((status, what), (401, json!("invalid_credentials")));
    assert_eq!(
        asked(&radius, "tech1"),
        0,
        "nothing sent from an untrusted address"
    );
    let (status, what, _) = sign_in(&d, "127.0.0.3", "tech1", "admin pass 1").await;
    assert_eq!((status, what), (403, json!("not_trusted_network")));
    let (status, what, _) = sign_in(&d, "127.0.0.3", "tech2", "user pass 2").await;
    assert_eq!((status, what), (200, json!("user")));
    let (status, what, _) = sign_in(&d, "127.0.0.2", "tech1", "admin pass 1").await;
    assert_eq!((status, what), (200, json!("admin")));
}
