//! The pages as an admin on a desktop and on a phone uses them (issue 28): axe-core on
//! every page state in light and dark mode, and what each page must say and do.
//! Screenshots for the reviewer land in `target/screenshots/`.

use pbx_e2e::webdriver::Browser;
use pbx_e2e::Daemon;

pub const PW: &str = "amber tram over the bridge";

/// On the login page: signs in as `user` and waits for the dashboard.
pub async fn sign_in_as(b: &mut Browser, user: &str, password: &str) {
    b.type_into("#username", user).await;
    b.type_into("#password", password).await;
    b.click("#login-form button[type=submit]").await;
    b.wait_for_path("/").await;
}

/// Waits until the page's script has wired everything (`body[data-ready]`).
pub async fn ready(b: &mut Browser) {
    for _ in 0..100 {
        if b.eval("return document.body && document.body.dataset.ready === '1';")
            .await
            == serde_json::json!(true)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the page's script did not finish");
}

/// axe-core in light and in dark mode on the page as it is; a screenshot of each.
/// Returns the violations, each prefixed with the state and scheme.
pub async fn axe_both(b: &mut Browser, state: &str) -> Vec<String> {
    let mut found = Vec::new();
    for dark in [false, true] {
        b.color_scheme(dark).await;
        let scheme = if dark { "dark" } else { "light" };
        for v in b.axe().await {
            found.push(format!("{state} ({scheme}): {v}"));
        }
        b.shot(&format!("axe-{state}-{scheme}")).await;
    }
    b.color_scheme(false).await;
    found
}

/// Opens `path` and waits for its script.
pub async fn open(b: &mut Browser, d: &Daemon, path: &str) {
    b.goto(&format!("http://{}{path}", d.http)).await;
    ready(b).await;
}

#[tokio::test]
async fn every_page_state_has_no_axe_violations_in_light_and_dark_mode() {
    let (_dir, d) = crate::fresh("ui-axe");
    let mut b = Browser::start().await;
    let mut found = Vec::new();

    open(&mut b, &d, "/login").await;
    found.extend(axe_both(&mut b, "login").await);
    // A wrong password: the error state.
    b.type_into("#username", "admin").await;
    b.type_into("#password", "not the password").await;
    b.click("#login-form button[type=submit]").await;
    b.wait_for_text("#error", "Wrong username or password")
        .await;
    found.extend(axe_both(&mut b, "login-error").await);

    open(&mut b, &d, "/forgot").await;
    found.extend(axe_both(&mut b, "forgot").await);
    open(
        &mut b,
        &d,
        "/reset?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )
    .await;
    found.extend(axe_both(&mut b, "reset").await);

    // The forced change.
    open(&mut b, &d, "/login").await;
    b.type_into("#username", "admin").await;
    b.type_into("#password", &crate::initial(&d)).await;
    b.click("#login-form button[type=submit]").await;
    b.wait_for_path("/profile").await;
    ready(&mut b).await;
    found.extend(axe_both(&mut b, "forced-change").await);
    b.type_into("#current_password", &crate::initial(&d)).await;
    b.type_into("#new_password", PW).await;
    b.type_into("#confirm_password", PW).await;
    b.click("#password-form button[type=submit]").await;
    b.wait_for_path("/login").await;
    ready(&mut b).await;
    sign_in_as(&mut b, "admin", PW).await;

    for (path, state) in [
        ("/", "dashboard"),
        ("/profile", "profile"),
        ("/settings/email", "settings-email"),
        ("/accounts", "accounts"),
        ("/sessions", "sessions"),
        ("/audit", "audit"),
        ("/device", "device"),
        ("/recovery-codes", "recovery-codes"),
        ("/factory-reset", "factory-reset"),
    ] {
        open(&mut b, &d, path).await;
        found.extend(axe_both(&mut b, state).await);
    }
    b.quit().await;
    assert!(
        found.is_empty(),
        "axe-core violations:\n{}",
        found.join("\n")
    );
}
