//! Login, lockout per address, cookies, logout.

use serde_json::json;

use crate::{fresh, initial};

#[tokio::test]
async fn wrong_password_is_401_with_attempts_left() {
    let (_dir, d) = fresh("wrong-pw");
    let mut c = d.client();
    let r = c.login("admin", "not-the-password").await;
    assert_eq!(r.status, 401);
    let j = r.json();
    assert_eq!(j["error"], "invalid_credentials");
    assert_eq!(j["attempts_left"], 4);
    assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(c.cookie.is_none(), "no session cookie for a failed login");
    // An unknown user gets the very same answer (no username enumeration).
    let r = c.login("nobody", "not-the-password").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_credentials");
    assert_eq!(r.json()["attempts_left"], 3);
}

#[tokio::test]
async fn five_failures_lock_the_address_but_not_the_admin_elsewhere() {
    let (_dir, d) = fresh("lockout");
    let mut attacker = d.client_from("127.0.0.1");
    for left in [4, 3, 2, 1] {
        let r = attacker.login("admin", "guess-guess-guess").await;
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["attempts_left"], left);
    }
    let r = attacker.login("admin", "guess-guess-guess").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"], "locked");
    let retry = r.json()["retry_after_s"].as_u64().expect("retry_after_s");
    assert!((590..=600).contains(&retry), "{retry}");
    assert_eq!(r.header("retry-after"), Some(retry.to_string()));
    assert!(r.json()["message"]
        .as_str()
        .expect("message")
        .contains("try again in 10 min"));

    // Even the right password is refused from the blocked address ...
    let r = attacker.login("admin", &initial(&d)).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());

    // ... while the admin at another computer signs in.
    let mut admin = d.client_from("127.0.0.2");
    let r = admin.login("admin", &initial(&d)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["must_change_password"], true);
}

#[tokio::test]
async fn session_cookie_flags_on_http() {
    let (_dir, d) = fresh("cookie-http");
    let mut c = d.client();
    let r = c.login("admin", &initial(&d)).await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["username"], "admin");
    assert_eq!(j["role"], "admin");
    assert_eq!(j["csrf_token"].as_str().map(str::len), Some(43));
    let cookies: Vec<String> = r
        .set_cookies()
        .into_iter()
        .filter(|c| c.starts_with("pbx_session="))
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let attrs: Vec<&str> = cookies[0].split("; ").collect();
    assert!(attrs[0].starts_with("pbx_session=") && attrs[0].len() == "pbx_session=".len() + 43);
    assert!(attrs.contains(&"HttpOnly"), "{cookies:?}");
    assert!(attrs.contains(&"SameSite=Strict"), "{cookies:?}");
    assert!(attrs.contains(&"Path=/"), "{cookies:?}");
    assert!(
        !attrs.contains(&"Secure"),
        "plain HTTP cannot set Secure: {cookies:?}"
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));

    let s = c.get("/api/v1/session").await;
    assert_eq!(s.status, 200);
    assert_eq!(s.json()["csrf_token"], j["csrf_token"]);
}

#[tokio::test]
async fn session_cookie_is_secure_on_https() {
    let (_dir, d) = fresh("cookie-https");
    let mut c = d.tls_client();
    let r = c.login("admin", &initial(&d)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = r.set_cookies().join("\n");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(
            cookie.split("; ").any(|a| a == flag),
            "{flag} missing: {cookie}"
        );
    }
}

#[tokio::test]
async fn logout_needs_csrf_and_ends_the_session() {
    let (_dir, d) = fresh("logout");
    let mut c = d.client();
    assert_eq!(c.login("admin", &initial(&d)).await.status, 200);

    // Missing header → 403 csrf; a wrong one too; the session survives both.
    let r = c.send("POST", "/api/v1/logout", &[], None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "csrf");
    let r = c
        .send(
            "POST",
            "/api/v1/logout",
            &[("x-csrf-token", "forged")],
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "csrf");
    assert_eq!(c.get("/api/v1/session").await.status, 200);

    let kept = c.cookie.clone();
    let r = c.post_json("/api/v1/logout", &json!({})).await;
    assert_eq!(r.status, 204);
    assert!(r
        .set_cookies()
        .iter()
        .any(|s| s.starts_with("pbx_session=;") && s.contains("Max-Age=0")));
    // The old cookie no longer works.
    c.cookie = kept;
    let r = c.get("/api/v1/session").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "unauthenticated");
}

#[tokio::test]
async fn pages_redirect_to_login_and_carry_security_headers() {
    let (_dir, d) = fresh("pages");
    let mut c = d.client();
    let r = c.get("/").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location").as_deref(), Some("/login"));
    let r = c.get("/login").await;
    assert_eq!(r.status, 200);
    let csp = r.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
    let html = r.text();
    for needle in [
        r#"name="username""#,
        r#"autocomplete="username""#,
        r#"name="password""#,
        r#"autocomplete="current-password""#,
        r#"<button type="submit">"#,
        "erases all settings and data",
    ] {
        assert!(html.contains(needle), "login page lacks {needle}");
    }
    // Signed in but still on the label password: every page leads to the change form.
    assert_eq!(c.login("admin", &initial(&d)).await.status, 200);
    let r = c.get("/").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location").as_deref(), Some("/profile"));
    let r = c.get("/profile").await;
    assert_eq!(r.status, 200);
    let html = r.text();
    for needle in [
        r#"name="current_password""#,
        r#"name="new_password""#,
        r#"name="confirm_password""#,
        r#"autocomplete="new-password""#,
    ] {
        assert!(html.contains(needle), "profile page lacks {needle}");
    }
}
