//! Parsing and validating config files: defaults, every problem with its key, the
//! erase targets' rules.

use super::*;

#[test]
fn empty_file_gives_the_documented_defaults() {
    let c = Config::parse("").expect("defaults are valid");
    assert_eq!(c.policy.lockout_failures, 5);
    assert_eq!(c.policy.lockout_window, Duration::from_secs(600));
    assert_eq!(c.policy.session_idle, Duration::from_secs(1800));
    assert_eq!(c.policy.session_absolute, Duration::from_secs(12 * 3600));
    assert_eq!(c.policy.reset_token_ttl, Duration::from_secs(30 * 60));
    assert!(c.tls.generate);
    assert!(c.storage.cache_capacity <= MAX_CACHE_CAPACITY);
    assert_eq!(c.recovery.button, ButtonMode::Credentials);
    assert_eq!(c.recovery.drill, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(c.recovery.drill_retry, Duration::from_secs(300));
}

#[test]
fn recovery_keys_are_checked_each_with_its_key() {
    let c = Config::parse("[recovery]\nbutton = \"off\"\ndrill_days = 0\n").expect("valid");
    assert_eq!(
        (c.recovery.button, c.recovery.drill),
        (ButtonMode::Off, None)
    );
    let bad = "[recovery]\nbutton = \"sometimes\"\ndrill_days = 400\ndrill_retry_s = 0\n";
    let Err(p) = Config::parse(bad) else {
        panic!("accepted {bad}");
    };
    let keys: Vec<&str> = p.0.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "recovery.button",
            "recovery.drill_days",
            "recovery.drill_retry_s"
        ],
        "{p:?}"
    );
    assert!(
        p.0[0]
            .message
            .contains("\"credentials\", \"mail\" or \"off\""),
        "{p:?}"
    );
}

#[test]
fn argon2_cost_must_reach_one_of_owasps_minimums() {
    assert_eq!(
        Config::parse("").expect("defaults").policy.hash_cost,
        HashCost {
            m_kib: 19_456,
            t: 2
        }
    );
    for (m, t) in [(47_104, 1), (12_288, 3), (7_168, 5), (65_536, 3)] {
        let text = format!("[policy]\nargon2_m_kib = {m}\nargon2_t = {t}\n");
        let c = Config::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(c.policy.hash_cost, HashCost { m_kib: m, t });
    }
    // 19 MiB once, 12 MiB twice, 8 MiB four times: each weaker than its OWASP pair.
    for (m, t) in [(19_456, 1), (12_288, 2), (8_192, 4)] {
        let text = format!("[policy]\nargon2_m_kib = {m}\nargon2_t = {t}\n");
        let err = Config::parse(&text).expect_err(&text);
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].key, "policy.argon2_m_kib");
        assert!(
            err.0[0]
                .message
                .contains(&format!("{m} KiB with argon2_t = {t} is below OWASP")),
            "{err}"
        );
    }
    let err = Config::parse("[policy]\nargon2_m_kib = 4096\nargon2_t = 20\n").expect_err("range");
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "policy.argon2_m_kib",
            "policy.argon2_t",
            "policy.argon2_m_kib"
        ],
        "{err}"
    );
}

#[test]
fn every_unknown_key_and_bad_value_is_reported_with_its_path() {
    let text = r#"
[server]
http = ["nonsense"]
colour = "blue"
[storage]
cache_capacity = 99999999
[policy]
reset_token_ttl_min = 2
lockout_windw_s = 5
[log]
level = "chatty"
"#;
    let err = Config::parse(text).expect_err("invalid");
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"server.colour"), "{keys:?}");
    assert!(keys.contains(&"policy.lockout_windw_s"), "{keys:?}");
    assert!(keys.contains(&"server.http[0]"), "{keys:?}");
    assert!(keys.contains(&"storage.cache_capacity"), "{keys:?}");
    assert!(keys.contains(&"policy.reset_token_ttl_min"), "{keys:?}");
    assert!(keys.contains(&"log.level"), "{keys:?}");
    assert_eq!(err.0.len(), 6, "{err}");
}

#[test]
fn type_error_names_the_key_and_line() {
    let err = Config::parse("[server]\ncloud = \"yes\"\n").expect_err("invalid");
    assert_eq!(err.0.len(), 1);
    assert!(err.0[0].key.starts_with("server.cloud (line 2)"), "{err}");
}

#[test]
fn public_url_must_be_scheme_and_host_only() {
    assert!(Config::parse("[server]\npublic_url = \"https://pbx.example.com/\"\n").is_ok());
    let err = Config::parse("[server]\npublic_url = \"pbx.example.com\"\n").expect_err("bad");
    assert_eq!(err.0[0].key, "server.public_url");
    let err = Config::parse("[server]\npublic_url = \"https://a.example/x?y\"\n").expect_err("bad");
    assert_eq!(err.0[0].key, "server.public_url");
}

#[test]
fn half_configured_certificate_is_an_error() {
    let err = Config::parse("[server]\ntls_cert = \"/c.pem\"\n").expect_err("bad");
    assert_eq!(err.0[0].key, "server.tls_key");
}

#[test]
fn dev_config_takes_overrides_and_still_reports_unknown_keys() {
    let dir = Path::new("/tmp/pbx-dev-x");
    let (h, s) = (
        "127.0.0.1:0".parse().expect("a"),
        "127.0.0.1:0".parse().expect("a"),
    );
    let c = Config::dev(dir, h, s, None).expect("dev");
    assert!(c.dev);
    assert_eq!(c.storage.data_db, dir.join("data.db"));
    assert_eq!(c.control.socket, dir.join("ctl.sock"));
    let c = Config::dev(
        dir,
        h,
        s,
        Some("[server]\npublic_url = \"https://pbx.test\"\ncloud = true\n"),
    )
    .expect("dev with overrides");
    assert_eq!(c.server.public_url.as_deref(), Some("https://pbx.test"));
    assert!(c.server.cloud);
    assert_eq!(
        c.storage.data_db,
        dir.join("data.db"),
        "untouched keys keep the dev values"
    );
    let err = Config::dev(dir, h, s, Some("[server]\nbogus = 1\n")).expect_err("unknown");
    assert_eq!(err.0[0].key, "server.bogus");
}

#[test]
fn erase_targets_are_checked_with_symlinks_and_dotdot_resolved() {
    let d = std::env::temp_dir().join(format!("pbx-config-erase-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("factory/board.db")).expect("mkdir");
    std::fs::create_dir_all(d.join("data")).expect("mkdir");
    std::os::unix::fs::symlink("/etc", d.join("data/cfg")).expect("symlink");
    std::os::unix::fs::symlink(d.join("factory"), d.join("data/fac")).expect("symlink");
    let cfg = |data_db: &str, erase: &str| {
        format!(
            "[storage]\nboard_db = \"{0}/factory/board.db\"\ndata_db = \"{0}/{data_db}\"\n\
             [reset]\nerase_paths = [\"{0}/{erase}\"]\n",
            d.display()
        )
    };
    Config::parse(&cfg("data/data.db", "data/voicemail")).expect("plain targets");
    for (data_db, erase, key) in [
        ("data/data.db", "data/../factory", "reset.erase_paths[0]"),
        ("data/data.db", "data/cfg/pbx", "reset.erase_paths[0]"),
        ("data/data.db", "data/fac", "reset.erase_paths[0]"),
        (
            "factory/board.db/data.db",
            "data/voicemail",
            "storage.data_db",
        ),
        ("data/fac/board.db/x", "data/voicemail", "storage.data_db"),
        ("data/data.db", "..", "reset.erase_paths[0]"),
    ] {
        let err = Config::parse(&cfg(data_db, erase)).expect_err(erase);
        assert!(
            err.0.iter().any(|p| p.key == key),
            "{data_db} {erase}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_shipped_default_config_is_valid() {
    let text = include_str!("../../../rootfs-overlay/etc/pbx-authd/pbx-authd.toml");
    Config::parse(text).expect("shipped config must validate");
}

#[test]
fn syslog_targets_are_udp_or_tcp_host_and_port() {
    assert_eq!(
        SyslogTarget::parse("udp://127.0.0.1:514"),
        Ok(SyslogTarget::Udp("127.0.0.1:514".into()))
    );
    assert_eq!(
        SyslogTarget::parse("tcp://logs.lan:6514"),
        Ok(SyslogTarget::Tcp("logs.lan:6514".into()))
    );
    for bad in [
        "127.0.0.1:514",
        "udp://127.0.0.1",
        "tcp://:514",
        "udp://h:0",
        "http://h:1",
    ] {
        assert!(SyslogTarget::parse(bad).is_err(), "{bad}");
    }
    let Err(p) = Config::parse("[audit]\nsyslog = \"syslog.lan\"\n") else {
        panic!("accepted");
    };
    assert_eq!(p.0[0].key, "audit.syslog");
}

#[test]
fn the_default_language_is_one_of_the_ten() {
    let c = Config::parse("[i18n]\ndefault = \"en\"\n").expect("en");
    assert_eq!(c.language, crate::i18n::Lang::En);
    let Err(p) = Config::parse("[i18n]\ndefault = \"klingon\"\n") else {
        panic!("accepted");
    };
    let problem = p.0.iter().find(|p| p.key == "i18n.default").expect("named");
    assert!(
        problem
            .message
            .contains("\"klingon\" is not one of the languages en"),
        "{}",
        problem.message
    );
}

#[test]
fn unknown_keys_in_nested_tables_and_arrays_of_tables_are_named() {
    let text = r#"
[directory]
timeout_s = 2
colour = 1
[[directory.radius]]
address = "127.0.0.1:1812"
secret = "s"
[[directory.radius]]
address = "127.0.0.1:1813"
secret = "s"
port = 1
[directory.ldap]
url = "ldaps://ldap.example.com"
ca = "/etc/pbx-authd/ldap-ca.pem"
base_dn = "dc=example"
admin_group = "cn=g"
user_filter = "(uid={username})"
filter = "x"
[bogus]
x = 1
"#;
    let err = Config::parse(text).expect_err("unknown keys");
    let mut keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "bogus",
            "directory.colour",
            "directory.ldap.filter",
            "directory.radius[1].port"
        ],
        "{err}"
    );
}

#[test]
fn the_directory_section_is_validated_with_every_problem_named() {
    let c = Config::parse("").expect("defaults");
    assert!(!c.directory.configured());
    assert!(!c.access.directory_only);
    let c = Config::parse(
        "[access]\nsign_in = \"directory\"\n[directory]\nradius_admin_attribute = \"Filter-Id\"\n\
         [[directory.radius]]\naddress = \"10.0.0.5:1812\"\nsecret = \"s3cret\"\n\
         [[directory.radius]]\naddress = \"radsec://Radius.Example.com\"\nsecret = \"radsec\"\nca = \"/etc/ca.pem\"\n",
    )
    .expect("valid");
    assert!(c.access.directory_only);
    let d = &c.directory;
    assert_eq!(d.radius_admin_attribute, 11);
    assert_eq!(d.timeout, Duration::from_secs(3));
    assert_eq!(
        d.radius[1].address,
        directory::RadiusAddress::Tls {
            host: "radius.example.com".into(),
            port: 2083
        }
    );
    assert_eq!(
        d.deadline(),
        Duration::from_secs(15),
        "UDP: two tries; RadSec: connect, handshake, reply"
    );
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "secrets never printed"
    );

    let err = Config::parse(
        "[access]\nsign_in = \"ldap\"\n[directory]\ntimeout_s = 0\nradius_admin_attribute = \"Colour\"\n\
         [[directory.radius]]\naddress = \"radius.example.com:1812\"\n\
         [[directory.radius]]\naddress = \"radsec://r.example.com:2083\"\nsecret = \"radsec\"\n\
         [directory.ldap]\nurl = \"ldap://ldap.example.com\"\nuser_filter = \"(uid=x)\"\n",
    )
    .expect_err("invalid");
    let keys: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
    for k in [
        "access.sign_in",
        "directory.timeout_s",
        "directory.radius_admin_attribute",
        "directory.radius[0].address",
        "directory.radius[0].secret",
        "directory.radius[1].ca",
        "directory.ldap.url",
        "directory.ldap.base_dn",
        "directory.ldap.admin_group",
        "directory.ldap.user_filter",
    ] {
        assert!(keys.contains(&k), "{k} in {err}");
    }
    assert!(
        err.to_string().contains("passwords never go unencrypted"),
        "{err}"
    );
}
