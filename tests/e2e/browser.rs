//! The pages in real headless Chromium: the first sign-in with the label password, the
//! forced change, the confirmation, and the sign-in with the new password.

use pbx_e2e::webdriver::Browser;

use crate::{fresh, initial};

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

    b.type_into("#username", "admin").await;
    b.type_into("#password", "seven swans over the lake").await;
    b.click("button[type=submit]").await;
    b.wait_for_path("/").await;
    b.wait_for_text("#who", "Signed in as admin").await;
    let banner = b.wait_for_text("#recovery-banner", "factory reset").await;
    assert!(banner.contains("erases all settings and data"), "{banner}");
    b.screenshot(&dir.path().join("dashboard.png")).await;
    if let Some(out) = std::env::var_os("PBX_E2E_SCREENSHOTS") {
        let _ = std::fs::copy(
            dir.path().join("dashboard.png"),
            std::path::Path::new(&out).join("dashboard.png"),
        );
    }
    b.quit().await;
}
