//! The pages in real headless Chromium: the first sign-in with the label password, the
//! forced change, the confirmation, and the sign-in with the new password.

use pbx_e2e::webdriver::Browser;

use crate::{fresh, initial};

/// On the login page: signs in as admin and waits for the dashboard.
async fn sign_in(b: &mut Browser, password: &str) {
    crate::ui::sign_in_as(b, "admin", password).await;
}

/// On the Forgot Password page: asks for the admin's reset link.
async fn forgot(b: &mut Browser) {
    b.type_into("#username", "admin").await;
    b.type_into("#email", "admin@pbx.test").await;
    b.click("#forgot-form button[type=submit]").await;
}

#[tokio::test]
async fn first_login_forced_change_confirmation_and_new_login() {
    let (dir, d) = fresh("browser");
    let base = format!("http://{}", d.http);
    let mut b = Browser::start().await;

    b.goto(&format!("{base}/")).await;
    b.wait_for_path("/login").await;

    // A wrong password: the error is in words next to the form.
    b.type_into("#username", "admin").await;
    b.type_into("#password", "not-the-label-password").await;
    b.click("button[type=submit]").await;
    let e = b
        .wait_for_text("#error", "Wrong username or password")
        .await;
    assert!(e.contains("4 attempts left"), "{e}");

    b.type_into("#password", &initial(&d)).await;
    b.click("button[type=submit]").await;
    b.wait_for_path("/profile").await;
    let notice = b.wait_for_text("#first-change", "initial password").await;
    assert!(notice.contains("Choose your own password"), "{notice}");

    // Mismatched confirmation is caught in words.
    b.type_into("#current_password", &initial(&d)).await;
    b.type_into("#new_password", "seven swans over the lake")
        .await;
    b.type_into("#confirm_password", "seven swans over the lak")
        .await;
    b.click("#password-form button[type=submit]").await;
    b.wait_for_text("#error", "do not match").await;

    // A common password is refused with the reason.
    b.type_into("#new_password", "Password12345").await;
    b.type_into("#confirm_password", "Password12345").await;
    b.click("#password-form button[type=submit]").await;
    b.wait_for_text("#error", "commonly used").await;

    b.type_into("#new_password", "seven swans over the lake")
        .await;
    b.type_into("#confirm_password", "seven swans over the lake")
        .await;
    b.click("#password-form button[type=submit]").await;
    b.wait_for_path("/login").await;
    let n = b
        .wait_for_text(
            "#notice",
            "Password changed — sign in with the new password",
        )
        .await;
    assert!(!n.is_empty());

    sign_in(&mut b, "seven swans over the lake").await;
    b.wait_for_text("#who", "Signed in as admin").await;
    // A fresh box: no email, no codes, but the button's credential reset keeps the
    // data, so no "only an erase is left" banner.
    b.wait_for_text("#way-button", "label password, data kept")
        .await;
    b.wait_for_text("#way-email", "not ready").await;
    b.wait_for_text("#way-codes", "not ready").await;
    assert_eq!(b.text("#recovery-banner").await, "", "banner hidden");
    b.screenshot(&dir.path().join("dashboard.png")).await;
    if let Some(out) = std::env::var_os("PBX_E2E_SCREENSHOTS") {
        let _ = std::fs::copy(
            dir.path().join("dashboard.png"),
            std::path::Path::new(&out).join("dashboard.png"),
        );
    }
    b.quit().await;
}

/// The whole recovery story in the browser, against a real SMTP server: settings page →
/// test mail → profile email → sign out → Forgot Password → the mailed link → new
/// password → sign in.
#[tokio::test]
async fn email_recovery_end_to_end_in_the_browser() {
    use pbx_e2e::smtp::{self, SmtpServer};
    use pbx_e2e::{Daemon, Opts, TempDir};
    use std::time::Duration;

    let smtp = SmtpServer::start();
    let dir = TempDir::new("browser-recovery");
    let d = Daemon::start_opts(
        &dir.path().join("state"),
        &Opts {
            config: None,
            env: vec![("SSL_CERT_FILE".into(), smtp.ca.display().to_string())],
        },
    );
    crate::change_initial(&d, "amber tram over the bridge").await;
    let base = format!("http://{}", d.http);
    let mut b = Browser::start().await;

    b.goto(&format!("{base}/login")).await;
    sign_in(&mut b, "amber tram over the bridge").await;
    b.wait_for_text("#way-email", "not ready").await;
    // Each missing step is a link to where it is done (a --dev box mails into its
    // outbox, so no SMTP step).
    b.wait_for_text("#email-steps", "Bind a recovery email address")
        .await;
    assert_eq!(
        b.attr("#email-steps li:nth-child(1) a", "href")
            .await
            .as_deref(),
        Some("/profile#email-section")
    );

    // Email settings: test first, then save.
    // The header's section link, marked as the current page there.
    b.click(".bar nav a[href='/settings/email']").await;
    b.wait_for_path("/settings/email").await;
    b.wait_ready().await;
    assert_eq!(
        b.attr(".bar nav a[href='/settings/email']", "aria-current")
            .await
            .as_deref(),
        Some("page")
    );
    b.type_into("#host", "127.0.0.1").await;
    b.type_into("#port", &smtp.starttls.to_string()).await;
    b.click("#security option[value=starttls]").await;
    b.type_into("#smtp-username", smtp::USER).await;
    b.type_into("#smtp-password", "wrong-password").await;
    b.type_into("#from", "pbx@pbx.test").await;
    b.type_into("#to", "admin@pbx.test").await;
    b.type_into("#timeout_s", "2").await;
    b.click("#test-button").await;
    b.wait_for_text("#error", "refused the username or password")
        .await;
    b.type_into("#smtp-password", smtp::PASSWORD).await;
    b.click("#test-button").await;
    b.wait_for_text("#notice", "Test mail sent").await;
    let mails = smtp.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(mails[0].subject(), "PBX test mail");
    // Where recovery mail goes is saved only with the admin's password.
    b.click("#smtp-form button[type=submit]").await;
    b.wait_for_text("#error", "current password").await;
    b.type_into("#smtp-current-password", "amber tram over the bridge")
        .await;
    b.click("#smtp-form button[type=submit]").await;
    b.wait_for_text("#notice", "Email settings saved").await;

    // Bind the recovery email on the profile page.
    b.goto(&format!("{base}/profile")).await;
    b.type_into("#email", "admin@pbx.test").await;
    b.type_into("#email_password", "amber tram over the bridge")
        .await;
    b.click("#email-form button[type=submit]").await;
    b.wait_for_text("#email-notice", "Recovery email saved")
        .await;
    // The address is proven by the link in the confirmation mail, opened in the browser.
    b.goto(&format!("{base}/")).await;
    // Bound, not proven: not ready, and nothing on the page says otherwise.
    b.wait_for_text("#way-email", "not ready").await;
    b.wait_for_text("#email-steps", "Open the link in the confirmation mail")
        .await;
    let steps = b.text("#email-steps").await;
    assert!(
        !steps.contains("SMTP") && !steps.contains("Bind"),
        "{steps}"
    );
    let mails = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(mails[1].subject(), "Confirm your recovery email");
    let confirm = mails[1]
        .link("/confirm-email?token=")
        .expect("confirmation link");
    b.goto(&confirm).await;
    b.wait_for_text("#done", "this address is confirmed").await;
    assert!(!b.url().await.contains("token="));
    // A second click on the same link says so instead of "invalid".
    b.goto(&confirm).await;
    b.wait_for_text("#already", "already confirmed").await;
    assert_eq!(b.text("#error").await, "");
    b.goto(&format!("{base}/")).await;
    b.wait_for_text("#way-email", "ready (address confirmed")
        .await;
    assert_eq!(b.text("#email-steps").await, "", "nothing missing");

    // A recovery check while the mail server hangs: the failure is shown in words.
    smtp.pause();
    b.click("#check-now").await;
    b.wait_for_text("#check-error", "The recovery check mail failed")
        .await;
    smtp.resume();
    b.goto(&format!("{base}/")).await;
    let warning = b.wait_for_text("#drill-state", "It is retried at").await;
    assert!(warning.contains("check mail failed"), "{warning}");
    b.wait_for_text("#email-steps", "could not be sent").await;
    assert_eq!(
        b.attr("#drill-state", "class").await.as_deref(),
        Some("warning")
    );
    b.click("#check-now").await;
    b.wait_for_text("#check-notice", "Recovery check sent")
        .await;
    let drill = smtp.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(drill[2].subject(), "Recovery check");

    // Sign out, forget, recover.
    b.click("#logout").await;
    b.wait_for_path("/login").await;
    b.click("a[href='/forgot']").await;
    b.wait_for_path("/forgot").await;
    forgot(&mut b).await;
    b.wait_for_text("#notice", "Find Password").await;
    let mails = smtp.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(mails[3].subject(), "Find Password");
    let link = mails[3].reset_link().expect("link");
    // Each mail that came over SMTP carries what receiving servers look for.
    for m in &mails {
        smtp::assert_standard_headers(&m.raw);
    }
    assert_ne!(mails[0].header("message-id"), mails[1].header("message-id"));
    assert!(mails[0].body().contains("PBX"), "{}", mails[0].body());
    assert!(
        link.starts_with(&format!("https://{}/reset?token=", d.https)),
        "{link}"
    );

    b.goto(&link).await;
    b.type_into("#new_password", "seven swans over the lake")
        .await;
    b.type_into("#confirm_password", "seven swans over the lake")
        .await;
    b.click("#reset-form button[type=submit]").await;
    b.wait_for_text("#done", "Password changed").await;
    // The token is no longer in the address bar.
    assert!(!b.url().await.contains("token="));
    b.click("#done a").await;
    b.wait_for_path("/login").await;
    sign_in(&mut b, "seven swans over the lake").await;
    b.wait_for_text("#who", "Signed in as admin").await;
    b.screenshot(&dir.path().join("recovered.png")).await;
    if let Some(out) = std::env::var_os("PBX_E2E_SCREENSHOTS") {
        let _ = std::fs::copy(
            dir.path().join("recovered.png"),
            std::path::Path::new(&out).join("recovered.png"),
        );
    }
    b.quit().await;
}

/// Recovery codes in the browser: with the button's reset off and no email, the
/// dashboard says only an erase is left; codes are generated and printed (screenshot),
/// the banner goes; signed out, a code from the Forgot Password page sets a new password.
#[tokio::test]
async fn recovery_codes_end_to_end_in_the_browser() {
    use pbx_e2e::{Daemon, Opts, TempDir};

    let dir = TempDir::new("browser-codes");
    let d = Daemon::start_opts(
        &dir.path().join("state"),
        &Opts {
            config: Some("[recovery]\nbutton = \"off\"\n".into()),
            env: Vec::new(),
        },
    );
    crate::change_initial(&d, "amber tram over the bridge").await;
    let base = format!("http://{}", d.http);
    let mut b = Browser::start().await;
    b.goto(&format!("{base}/login")).await;
    sign_in(&mut b, "amber tram over the bridge").await;
    let banner = b
        .wait_for_text("#recovery-banner", "No way back in is ready")
        .await;
    assert!(banner.contains("erases all settings and data"), "{banner}");
    b.wait_for_text("#way-button", "off").await;

    b.click("#ways a[href='/recovery-codes']").await;
    b.wait_for_path("/recovery-codes").await;
    b.wait_for_text("#codes-left", "No recovery codes yet")
        .await;
    b.type_into("#codes_password", "wrong password here").await;
    b.click("#codes-form button[type=submit]").await;
    b.wait_for_text("#error", "Your password is wrong").await;
    b.type_into("#codes_password", "amber tram over the bridge")
        .await;
    b.click("#codes-form button[type=submit]").await;
    let sheet = b.wait_for_text("#codes-sheet", "SIM-0001").await;
    assert!(
        sheet.contains("Recovery codes for admin") && sheet.contains("PBX SIM"),
        "{sheet}"
    );
    // Where and how to use them, on the sheet itself (it is printed).
    assert!(sheet.contains("How to use a code"), "{sheet}");
    assert!(sheet.contains(&format!("{base}/login")), "{sheet}");
    let codes: Vec<String> = b
        .text("#codes-list")
        .await
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(codes.len(), 10, "{codes:?}");
    assert!(codes.iter().all(|c| c.len() == 19), "{codes:?}");
    b.screenshot(&dir.path().join("recovery-codes.png")).await;
    let pdf = b.print_pdf(&dir.path().join("recovery-codes.pdf")).await;
    assert!(
        pdf.starts_with(b"%PDF-") && pdf.len() > 1000,
        "a printed page"
    );
    if let Some(out) = std::env::var_os("PBX_E2E_SCREENSHOTS") {
        let _ = std::fs::copy(
            dir.path().join("recovery-codes.png"),
            std::path::Path::new(&out).join("recovery-codes.png"),
        );
    }
    b.click("#codes-sheet a[href='/']").await;
    b.wait_for_path("/").await;
    b.wait_for_text("#way-codes", "10 left").await;
    assert_eq!(
        b.text("#recovery-banner").await,
        "",
        "a way back in is ready now"
    );

    // Signed out and the password forgotten: no email, so the code.
    b.click("#logout").await;
    b.wait_for_path("/login").await;
    b.click("a[href='/forgot']").await;
    b.wait_for_path("/forgot").await;
    // No email on this box: the page says so when it opens, before any form is sent.
    b.wait_for_text("#not-configured", "recovery code").await;
    b.wait_for_text("#button-state", "switched off").await;
    b.wait_for_text("#way-email", "not set up on this PBX")
        .await;
    assert_eq!(
        b.eval("return document.getElementById('forgot-form').hidden;")
            .await,
        serde_json::json!(true)
    );
    b.click("#use-code").await;
    b.type_into("#code-username", "admin").await;
    b.type_into("#code", "AAAA-BBBB-CCCC-DDDD").await;
    b.type_into("#new_password", "seven swans over the lake")
        .await;
    b.type_into("#confirm_password", "seven swans over the lake")
        .await;
    b.click("#code-form button[type=submit]").await;
    b.wait_for_text("#code-error", "not valid or was already used")
        .await;
    b.type_into("#code", &codes[3]).await;
    b.type_into("#new_password", "seven swans over the lake")
        .await;
    b.type_into("#confirm_password", "seven swans over the lake")
        .await;
    b.click("#code-form button[type=submit]").await;
    b.wait_for_text("#code-done", "Password changed").await;
    b.click("#code-done a").await;
    b.wait_for_path("/login").await;
    sign_in(&mut b, "seven swans over the lake").await;
    b.wait_for_text("#who", "Signed in as admin").await;
    b.wait_for_text("#way-codes", "9 left").await;
    b.quit().await;
}

/// Two-factor sign-in in the browser: the secret read off the profile page, codes from
/// the test's own authenticator, a wrong code in words, the right one signs in.
#[tokio::test]
async fn two_factor_enrollment_and_sign_in_in_the_browser() {
    use pbx_e2e::totp;

    let (dir, d) = fresh("browser-2fa");
    crate::change_initial(&d, "amber tram over the bridge").await;
    let base = format!("http://{}", d.http);
    let mut b = Browser::start().await;
    b.goto(&format!("{base}/login")).await;
    sign_in(&mut b, "amber tram over the bridge").await;
    b.goto(&format!("{base}/profile")).await;
    b.wait_for_text("#tfa-state", "Two-factor sign-in is off")
        .await;
    b.type_into("#tfa_password", "amber tram over the bridge")
        .await;
    b.click("#tfa-setup-form button[type=submit]").await;
    let secret = loop {
        let t = b.text("#tfa-secret").await;
        if !t.is_empty() {
            break t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // Shown in groups of four, as people read and type it.
    assert!(secret.split(' ').all(|g| g.len() == 4), "{secret}");
    let secret: String = secret.split(' ').collect();
    assert_eq!(secret.len(), 32, "{secret}");
    b.wait_for_text("#tfa-signs-out", "signs you out").await;
    b.find("#tfa-qr svg path").await;
    b.screenshot(&dir.path().join("two-factor.png")).await;
    if let Some(out) = std::env::var_os("PBX_E2E_SCREENSHOTS") {
        let _ = std::fs::copy(
            dir.path().join("two-factor.png"),
            std::path::Path::new(&out).join("two-factor.png"),
        );
    }
    b.type_into("#tfa_code", &totp::code(&secret, totp::now()))
        .await;
    b.click("#tfa-enable-form button[type=submit]").await;
    b.wait_for_path("/login").await;
    b.wait_for_text("#notice", "Two-factor sign-in is on").await;

    b.type_into("#username", "admin").await;
    b.type_into("#password", "amber tram over the bridge").await;
    b.click("#login-form button[type=submit]").await;
    b.wait_for_text("#code-form", "authenticator app").await;
    let now = totp::now();
    let near = [now - 30, now, now + 30, now + 60].map(|t| totp::code(&secret, t));
    let wrong = (0..5)
        .map(|i| format!("{i:06}"))
        .find(|c| !near.contains(c))
        .expect("a wrong code");
    b.type_into("#otp", &wrong).await;
    b.click("#code-form button[type=submit]").await;
    b.wait_for_text("#code-error", "That code is not right")
        .await;
    b.type_into("#otp", &totp::code(&secret, totp::now() + 30))
        .await;
    b.click("#code-form button[type=submit]").await;
    // Just turned on: the codes that stand in for a lost phone are offered first.
    b.wait_for_path("/recovery-codes").await;
    b.wait_for_text("#offer-2fa", "make and print them now")
        .await;
    b.wait_for_text("#who", "Signed in as admin").await;
    b.quit().await;
}

/// The admin's pages: an extension created on Accounts, its session seen on Sessions and
/// ended there, both events found on Audit, the CSV downloaded; Device shows the box.
#[tokio::test]
async fn the_admin_pages_in_the_browser() {
    let (dir, d) = fresh("browser-admin");
    crate::change_initial(&d, "amber tram over the bridge").await;
    let base = format!("http://{}", d.http);
    let mut b = Browser::start().await;
    b.goto(&format!("{base}/login")).await;
    sign_in(&mut b, "amber tram over the bridge").await;
    for link in ["/accounts", "/sessions", "/audit", "/device"] {
        b.find(&format!("a[href='{link}']")).await;
    }

    // Accounts: an error next to its field, then the extension.
    b.click("a[href='/accounts']").await;
    b.wait_for_path("/accounts").await;
    b.wait_for_text("#accounts-rows", "admin").await;
    b.type_into("#new-username", "10 01").await;
    b.type_into("#new-password", "desk phone by the window")
        .await;
    b.click("#account-form button[type=submit]").await;
    b.wait_for_text("#username-error", "extension number").await;
    b.type_into("#new-username", "1001").await;
    b.type_into("#new-password", "desk phone by the window")
        .await;
    b.click("#account-form button[type=submit]").await;
    b.wait_for_text("#notice", "Account 1001 created").await;
    b.wait_for_text("#accounts-rows", "1001").await;

    // The extension signs in elsewhere; the admin sees that session and ends it.
    let mut ext = d.client_from("127.0.0.77");
    assert_eq!(
        ext.login("1001", "desk phone by the window").await.status,
        200
    );
    b.goto(&format!("{base}/sessions")).await;
    let rows = b.wait_for_text("#sessions-rows", "127.0.0.77").await;
    assert!(rows.contains("(this browser)"), "{rows}");
    b.click("button[aria-label='End the session of 1001 from 127.0.0.77']")
        .await;
    b.wait_for_text("#notice", "Session ended").await;
    assert_eq!(ext.get("/api/v1/session").await.status, 401, "signed out");

    // Audit: both events, filtered; the CSV downloads.
    b.goto(&format!("{base}/audit?user=1001")).await;
    b.wait_for_text("#audit-rows", "Signed in").await;
    b.goto(&format!("{base}/audit?event=session_revoked")).await;
    let rows = b.wait_for_text("#audit-rows", "Session ended").await;
    assert!(!rows.contains("Sign-in failed"), "{rows}");
    b.click("#audit-csv").await;
    let csv = String::from_utf8(b.downloaded("pbx-audit.csv").await).expect("utf-8");
    assert!(
        csv.starts_with("at,time_utc,event,username,ip,detail\r\n"),
        "{csv}"
    );
    assert!(csv.contains(",session_revoked,admin,"), "{csv}");

    b.goto(&format!("{base}/device")).await;
    b.wait_for_text("#dev-serial", "SIM-0001").await;
    let fw = b.text("#dev-firmware").await;
    assert!(fw.starts_with(env!("CARGO_PKG_VERSION")), "{fw}");
    b.screenshot(&dir.path().join("device.png")).await;
    b.quit().await;
}

/// Issue 24 item 0 (failed on the old code: the page had no handler, the form posted
/// natively and showed a raw `{"error":"csrf"}` page): the web factory reset works like
/// the other pages — signed in, the last warning names the ways back in still ready,
/// a red button, then "erasing and restarting" until the box answers again, after which
/// the label password signs in.
#[tokio::test]
async fn the_web_factory_reset_erases_and_the_label_password_works_again() {
    let dir = pbx_e2e::TempDir::new("browser-erase");
    let d = pbx_e2e::Daemon::start_on_fixed_ports(&dir.path().join("state"));
    let label = initial(&d);
    crate::change_initial(&d, "amber tram over the bridge").await;
    let base = format!("http://{}", d.http);
    let mut b = Browser::start().await;
    b.goto(&format!("{base}/login")).await;
    sign_in(&mut b, "amber tram over the bridge").await;
    b.goto(&format!("{base}/factory-reset")).await;
    b.wait_ready().await;
    b.wait_for_text("#who", "admin").await;
    let ways = b.wait_for_text("#ways-left", "Still ready").await;
    assert!(ways.contains("3–8 second press"), "{ways}");
    let colour = b
        .eval(
            "return getComputedStyle(document.querySelector('#reset-device-form button[type=submit]')).backgroundColor",
        )
        .await;
    assert_eq!(colour, "rgb(176, 0, 32)", "a red destructive button");
    b.type_into("#password", "amber tram over the bridge").await;
    b.type_into("#confirm", "erase").await;
    b.click("#reset-device-form button[type=submit]").await;
    b.wait_for_text("#error", "Type ERASE").await;
    b.type_into("#password", "not my password at all").await;
    b.type_into("#confirm", "ERASE").await;
    b.click("#reset-device-form button[type=submit]").await;
    b.wait_for_text("#error", "Wrong username or password")
        .await;
    b.type_into("#password", "amber tram over the bridge").await;
    b.type_into("#confirm", "ERASE").await;
    b.click("#reset-device-form button[type=submit]").await;
    b.wait_for_text("#erasing", "erasing and restarting").await;
    assert_eq!(
        b.url().await,
        format!("{base}/factory-reset"),
        "no raw JSON page"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while b
        .eval("return document.querySelector('#erase-done').hidden")
        .await
        != false
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no end of the erase shown: {:?}; log: {}",
            b.text("#erase-state").await,
            d.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let done = b.text("#erase-done").await;
    assert!(
        done.contains("password printed on the device label"),
        "{done}"
    );
    b.click("#erase-done a").await;
    b.wait_for_path("/login").await;
    sign_in_expecting(&mut b, &label, "/profile").await;
    b.quit().await;
}

/// [`sign_in`] that lands on `path` (the forced change after a reset).
async fn sign_in_expecting(b: &mut Browser, password: &str, path: &str) {
    b.wait_ready().await;
    b.type_into("#username", "admin").await;
    b.type_into("#password", password).await;
    b.click("button[type=submit]").await;
    b.wait_for_path(path).await;
}

/// Every page with a form, at its URL; signed out or signed in as the admin.
const FORM_PAGES: &[(&str, &str, bool)] = &[
    ("login.html", "/login", false),
    ("forgot.html", "/forgot", false),
    ("reset.html", "/reset?token=AAAA", false),
    ("confirm-email.html", "/confirm-email?token=AAAA", false),
    ("index.html", "/", true),
    ("profile.html", "/profile", true),
    ("settings-email.html", "/settings/email", true),
    ("accounts.html", "/accounts", true),
    ("recovery-codes.html", "/recovery-codes", true),
    ("audit.html", "/audit", true),
    ("factory-reset.html", "/factory-reset", true),
    ("access.html", "/access", true),
    ("directory.html", "/directory", true),
];

/// Issue 24 item 0: no page can ship a form without its handler again. Every embedded
/// page with a `<form>` is listed above (checked against the files), and on each one
/// every form's submit is taken by the page's script (`preventDefault`), so the browser
/// never posts it natively to the API.
#[tokio::test]
async fn every_form_on_every_page_is_handled_by_the_page_script() {
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../daemon/src/web");
    let mut with_forms: Vec<String> = std::fs::read_dir(&web)
        .expect("web dir")
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('_'))
        .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("<form")))
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    with_forms.sort();
    let mut listed: Vec<String> = FORM_PAGES.iter().map(|p| p.0.to_string()).collect();
    listed.sort();
    assert_eq!(with_forms, listed, "a page with a form needs an entry here");

    let (_dir, d) = fresh("browser-forms");
    crate::change_initial(&d, "amber tram over the bridge").await;
    let base = format!("http://{}", d.http);
    let mut b = Browser::start().await;
    for signed_in in [false, true] {
        if signed_in {
            b.goto(&format!("{base}/login")).await;
            sign_in(&mut b, "amber tram over the bridge").await;
        }
        for (file, path, _) in FORM_PAGES.iter().filter(|p| p.2 == signed_in) {
            b.goto(&format!("{base}{path}")).await;
            b.wait_ready().await;
            let taken = b
                .eval(
                    "return [...document.forms].map(f => {
                       const e = new Event('submit', {cancelable: true, bubbles: true});
                       f.dispatchEvent(e);
                       return [f.id, e.defaultPrevented];
                     })",
                )
                .await;
            let forms = taken.as_array().expect("forms").clone();
            assert!(!forms.is_empty(), "{file}: no form found");
            for f in forms {
                // A filter form may load its own page with a query; none may post to
                // the API behind the page's back.
                let id = f[0].as_str().unwrap_or_default().to_string();
                let get_page = b
                    .eval(&format!(
                        "const f = document.getElementById({id:?});
                         return f.method === 'get' && !new URL(f.action).pathname.startsWith('/api/')"
                    ))
                    .await;
                assert!(
                    f[1] == true || get_page == true,
                    "{file}: form {id} posts natively"
                );
            }
        }
    }
    b.quit().await;
}
