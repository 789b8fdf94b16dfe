//! Unit tests of `cli.rs`.

use super::*;

fn p(args: &[&str]) -> Result<Command, String> {
    parse(args.iter().map(OsString::from))
}

#[test]
fn run_and_dev_defaults() {
    assert_eq!(
        p(&[]),
        Ok(Command::Run {
            config: None,
            dev: None
        })
    );
    let Ok(Command::Run {
        dev: Some(d),
        config: None,
    }) = p(&["--dev"])
    else {
        panic!("dev")
    };
    assert_eq!(d.state_dir, PathBuf::from("./.pbx-dev"));
    assert_eq!(d.http.to_string(), "127.0.0.1:8080");
    assert_eq!(d.https.to_string(), "127.0.0.1:8443");
    let Ok(Command::Run {
        dev: Some(d),
        config,
    }) = p(&[
        "--dev",
        "--state-dir=/tmp/x",
        "--http",
        "127.0.0.1:0",
        "--config",
        "/c.toml",
    ])
    else {
        panic!("dev with options")
    };
    assert_eq!((d.state_dir, d.http.port()), (PathBuf::from("/tmp/x"), 0));
    assert_eq!(config, Some(PathBuf::from("/c.toml")));
    assert_eq!(
        p(&["--config", "/etc/x.toml"]),
        Ok(Command::Run {
            config: Some("/etc/x.toml".into()),
            dev: None
        })
    );
}

#[test]
fn usage_errors_are_specific() {
    assert!(p(&["--http", "127.0.0.1:1"])
        .expect_err("needs dev")
        .contains("--dev"));
    assert!(p(&["--dev", "--http", "nope"])
        .expect_err("addr")
        .contains("ADDRESS:PORT"));
    assert!(p(&["--bogus"]).expect_err("unknown").contains("--bogus"));
    assert!(p(&["--config"])
        .expect_err("value")
        .contains("needs a value"));
    assert!(p(&["provision", "--model", "S50"])
        .expect_err("missing")
        .contains("--board-db"));
    assert!(p(&["ctl", "button"]).expect_err("ms").contains("--held-ms"));
    assert!(p(&["ctl", "button", "--held-ms", "12s"])
        .expect_err("ms")
        .contains("milliseconds"));
    assert!(p(&["ctl", "status", "--yes"])
        .expect_err("yes")
        .contains("factory-reset"));
    assert!(p(&["ctl"]).expect_err("cmd").contains("needs a command"));
}

#[test]
fn subcommands() {
    assert_eq!(
        p(&["check-config"]),
        Ok(Command::CheckConfig {
            config: DEFAULT_CONFIG.into()
        })
    );
    assert_eq!(
        p(&[
            "provision",
            "--board-db",
            "/b",
            "--model",
            "S50",
            "--serial",
            "1",
            "--mac",
            "02:00:00:00:00:01"
        ]),
        Ok(Command::Provision {
            board_db: "/b".into(),
            model: "S50".into(),
            serial: "1".into(),
            mac: "02:00:00:00:00:01".into(),
            profile: None
        })
    );
    assert_eq!(
        p(&["ctl", "--socket", "/s", "button", "--held-ms", "12000"]),
        Ok(Command::Ctl {
            socket: "/s".into(),
            command: CtlCommand::Button { held_ms: 12000 }
        })
    );
    assert_eq!(
        p(&["ctl", "factory-reset", "--yes"]),
        Ok(Command::Ctl {
            socket: DEFAULT_SOCKET.into(),
            command: CtlCommand::FactoryReset { yes: true }
        })
    );
    assert_eq!(
        p(&["ctl", "selftest"]),
        Ok(Command::Ctl {
            socket: DEFAULT_SOCKET.into(),
            command: CtlCommand::Selftest
        })
    );
    for (args, help) in [
        (&["--help"][..], HELP),
        (&["check-config", "-h"], CHECK_CONFIG_HELP),
        (&["provision", "--help"], PROVISION_HELP),
        (&["ctl", "--help"], CTL_HELP),
    ] {
        assert_eq!(p(args), Ok(Command::Help(help)));
    }
}
