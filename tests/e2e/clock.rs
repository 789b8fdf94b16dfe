//! The box's clock (SPEC §12), with libfaketime preloaded into the daemon (Debian's
//! `faketime`: it changes the clock of a dynamically linked binary): a clock that reads
//! 1970 on a state made today, and wall-clock jumps both ways while it runs.

use std::path::Path;
use std::time::Duration;

use pbx_e2e::{totp, Daemon, Opts, TempDir};
use serde_json::{json, Value};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// The environment that runs the daemon on a fake wall clock (the monotonic clock stays
/// real: a box's does, whatever NTP does to the wall clock).
pub(crate) fn faked(extra: &[(&str, String)]) -> Vec<(String, String)> {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "libfaketime missing (make test installs faketime)"
    );
    let mut env = vec![
        ("LD_PRELOAD".to_string(), LIBFAKETIME.to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

/// Issue 26 part 1 (tried on the old code with libfaketime at 1970-01-02: every right
/// code answered 401 "Wrong username or password." and cost an attempt): the clock is
/// said to be unset everywhere, the phone's code is answered `clock_unset` in words and
/// never counted, and a recovery code signs in.
#[tokio::test]
async fn a_box_whose_clock_reads_1970_says_so_and_a_recovery_code_still_signs_in() {
    let fixture = crate::upgrade::fixtures()
        .into_iter()
        .next()
        .expect("a fixture");
    let about: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture.join("fixture.json")).expect("fixture.json"),
    )
    .expect("json");
    let dir = TempDir::new("clock-1970");
    let state = dir.path().join("state");
    crate::upgrade::copy_tree(&fixture.join("state"), &state);
    let opts = Opts {
        config: None,
        env: faked(&[("FAKETIME", "@1970-01-02 00:00:00".into())]),
    };
    let d = Daemon::start_opts(&state, &opts);
    let health = d.client().get("/healthz").await;
    assert_eq!(health.status, 200, "the box still signs in");
    assert!(
        health
            .text()
            .starts_with("ok; clock unset: it reads 1970-01-02 00:0"),
        "{}",
        health.text()
    );

    let password = about["admin_password"].as_str().expect("password");
    let secret = about["totp_secret"].as_str().expect("secret");
    let mut c = d.client();
    for _ in 0..7 {
        let r = c.login("admin", password).await;
        assert_eq!(r.json()["two_factor_required"], true, "{}", r.text());
        let r = c
            .post_json(
                "/api/v1/login/2fa",
                &json!({ "code": totp::code(secret, totp::now()) }),
            )
            .await;
        let j = r.json();
        assert_eq!((r.status, &j["error"]), (409, &json!("clock_unset")), "{j}");
        let message = j["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("This PBX's clock reads 1970-01-02")
                && message
                    .contains("codes from your phone cannot be checked until the time is set"),
            "{message}"
        );
        assert!(j["clock_reads"].as_u64() < j["clock_floor"].as_u64(), "{j}");
    }
    // Seven right codes later nothing is locked: a recovery code signs in.
    assert_eq!(c.login("admin", password).await.status, 200);
    let code = about["recovery_codes"][0].as_str().expect("code");
    let r = c
        .post_json("/api/v1/login/2fa", &json!({ "code": code }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    c.csrf = r.json()["csrf_token"].as_str().map(str::to_string);

    // The dashboard's data, ctl status and the audit trail say it too.
    let ready = c.get("/api/v1/recovery").await.json();
    assert!(
        ready["clock"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1970-01-02"),
        "{ready}"
    );
    let (_, status) = d.ctl(&["status"]);
    assert!(status["clock_unset"]["reads"].is_u64(), "{status}");
    let audit = c.get("/api/v1/audit").await.json();
    let login = audit
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["event"] == "login")
        .cloned()
        .unwrap_or_default();
    assert_eq!(login["clock_unset"], true, "{audit}");
    assert!(
        login["at"].as_u64() > Some(1_700_000_000),
        "stamped with the floor: {login}"
    );
}

/// Durations run on the monotonic clock: a jump of the wall clock a year forward (NTP
/// answering at last) or back (a box without a clock rebooting) neither ends the
/// session nor lifts an address block.
#[tokio::test]
async fn wall_clock_jumps_neither_end_a_session_nor_lift_a_block() {
    let dir = TempDir::new("clock-jumps");
    let jump = dir.path().join("faketime");
    std::fs::write(&jump, "+0\n").expect("faketime file");
    let opts = Opts {
        config: None,
        env: faked(&[
            ("FAKETIME_TIMESTAMP_FILE", jump.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".into()),
        ]),
    };
    let d = Daemon::start_opts(&dir.path().join("state"), &opts);
    let mut owner = crate::change_initial(&d, "amber tram over the bridge").await;
    assert_eq!(
        owner
            .login("admin", "amber tram over the bridge")
            .await
            .status,
        200
    );
    let mut guesser = d.client_from("127.0.0.41");
    for _ in 0..5 {
        guesser.login("admin", "not the password").await;
    }
    let blocked = guesser.login("admin", "amber tram over the bridge").await;
    assert_eq!(blocked.status, 429, "{}", blocked.text());

    for (offset, unset) in [("+400d", false), ("-400d", true)] {
        std::fs::write(&jump, format!("{offset}\n")).expect("jump");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let health = d.client().get("/healthz").await.text();
        assert_eq!(health.contains("clock unset"), unset, "{offset}: {health}");
        assert_eq!(
            owner.get("/api/v1/session").await.status,
            200,
            "{offset}: session"
        );
        let r = guesser.login("admin", "amber tram over the bridge").await;
        assert_eq!(r.status, 429, "{offset}: still blocked: {}", r.text());
    }
}
