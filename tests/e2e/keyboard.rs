//! The admin's pages with the keyboard alone, in real headless Chromium: on each page
//! every usable control gets the focus from Tab, and each page's task is done with Tab,
//! typing and Enter — no click anywhere.

use std::collections::BTreeSet;

use pbx_e2e::webdriver::{Browser, ENTER, TAB};

use crate::fresh;

const BACKSPACE: char = '\u{E003}';

/// How the tests name an element: its id, else its aria-label, else its link.
const NAME: &str = "function name(e) { return e.id || e.getAttribute('aria-label') \
                    || e.getAttribute('href') || e.tagName; }";

/// The page's usable controls (links, buttons, fields that are shown and enabled).
async fn controls(b: &mut Browser) -> Vec<String> {
    let v = b
        .eval(&format!(
            "{NAME} return [...document.querySelectorAll('a[href], button, input, select, \
             textarea')].filter(e => !e.disabled && e.getClientRects().length > 0 \
             && getComputedStyle(e).visibility !== 'hidden').map(name);"
        ))
        .await;
    serde_json::from_value(v).expect("a list of names")
}

/// The name of what has the focus ("" for the page itself).
async fn focused(b: &mut Browser) -> String {
    let v = b
        .eval(&format!(
            "{NAME} const e = document.activeElement; \
             return e && e !== document.body ? name(e) : '';"
        ))
        .await;
    v.as_str().unwrap_or_default().to_string()
}

/// Presses Tab until `target` has the focus (60 presses at most).
async fn tab_to(b: &mut Browser, target: &str) {
    let mut seen = Vec::new();
    for _ in 0..60 {
        b.keys(&TAB.to_string()).await;
        let f = focused(b).await;
        if f == target {
            return;
        }
        seen.push(f);
    }
    panic!("Tab never reached {target:?}; the focus went {seen:?}");
}

/// From the top of the page, Tab alone reaches every usable control.
async fn every_control_reachable(b: &mut Browser, page: &str) {
    let want = controls(b).await;
    assert!(want.len() >= 3, "{page}: controls {want:?}");
    b.eval("document.activeElement && document.activeElement.blur();")
        .await;
    let mut got = BTreeSet::new();
    for _ in 0..want.len() * 2 + 4 {
        b.keys(&TAB.to_string()).await;
        got.insert(focused(b).await);
    }
    let missing: Vec<&String> = want.iter().filter(|w| !got.contains(*w)).collect();
    assert!(
        missing.is_empty(),
        "{page}: not reachable with Tab: {missing:?} (reached {got:?})"
    );
}

#[tokio::test]
async fn the_admin_pages_with_the_keyboard_alone() {
    let (_dir, d) = fresh("keyboard");
    crate::change_initial(&d, "amber tram over the bridge").await;
    let base = format!("http://{}", d.http);
    let mut b = Browser::start().await;

    // Sign-in: the fields, then Enter.
    b.goto(&format!("{base}/login")).await;
    b.find("#username").await;
    tab_to(&mut b, "username").await;
    b.keys("admin").await;
    tab_to(&mut b, "password").await;
    b.keys(&format!("amber tram over the bridge{ENTER}")).await;
    b.wait_for_path("/").await;

    // The dashboard: every control, and Enter on the link to Accounts.
    b.wait_for_text("#who", "admin").await;
    b.wait_for_text("#way-codes", "not ready").await;
    every_control_reachable(&mut b, "/").await;
    tab_to(&mut b, "/accounts").await;
    b.keys(&ENTER.to_string()).await;
    b.wait_for_path("/accounts").await;

    // Accounts: a wrong name gets its error in words next to the field; then the
    // extension is created.
    b.wait_for_text("#accounts-rows", "admin").await;
    every_control_reachable(&mut b, "/accounts").await;
    tab_to(&mut b, "new-username").await;
    b.keys("10 01").await;
    tab_to(&mut b, "new-password").await;
    b.keys(&format!("desk phone by the window{ENTER}")).await;
    b.wait_for_text("#username-error", "extension number").await;
    tab_to(&mut b, "new-username").await;
    b.keys(&format!("{}1001{ENTER}", BACKSPACE.to_string().repeat(6)))
        .await;
    b.wait_for_text("#notice", "Account 1001 created").await;

    // Sessions: the extension's session ended with Enter on its button.
    let mut ext = d.client_from("127.0.0.77");
    assert_eq!(
        ext.login("1001", "desk phone by the window").await.status,
        200
    );
    b.goto(&format!("{base}/sessions")).await;
    b.wait_for_text("#sessions-rows", "127.0.0.77").await;
    every_control_reachable(&mut b, "/sessions").await;
    tab_to(&mut b, "End the session of 1001 from 127.0.0.77").await;
    b.keys(&ENTER.to_string()).await;
    b.wait_for_text("#notice", "Session ended").await;
    assert_eq!(ext.get("/api/v1/session").await.status, 401, "signed out");

    // Audit: the CSV downloads with Enter on its link.
    b.goto(&format!("{base}/audit")).await;
    b.wait_for_text("#audit-rows", "Session ended").await;
    every_control_reachable(&mut b, "/audit").await;
    tab_to(&mut b, "audit-csv").await;
    b.keys(&ENTER.to_string()).await;
    let csv = String::from_utf8(b.downloaded("pbx-audit.csv").await).expect("utf-8");
    assert!(csv.contains(",session_revoked,admin,"), "{csv}");

    // Device: every control, the factory-reset entry among them.
    b.goto(&format!("{base}/device")).await;
    b.wait_for_text("#dev-serial", "SIM-0001").await;
    every_control_reachable(&mut b, "/device").await;

    // Access: the networks, the switches, the installer form.
    b.goto(&format!("{base}/access")).await;
    b.wait_for_text("#no-installers", "No installer account")
        .await;
    every_control_reachable(&mut b, "/access").await;

    // Directory: both servers, LDAP, the test form.
    b.goto(&format!("{base}/directory")).await;
    b.wait_until("document.body.dataset.ready === '1'", "the directory page")
        .await;
    every_control_reachable(&mut b, "/directory").await;
    b.quit().await;
}
