//! The forced first change and password changes: rules, and every session ends.

use serde_json::json;

use crate::{change_initial, fresh, initial};

const NEW: &str = "blue kettle on the harbour";

#[tokio::test]
async fn forced_change_flow() {
    let (_dir, d) = fresh("forced");
    let mut c = d.client();
    let r = c.login("admin", &initial(&d)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["must_change_password"], true);

    // Rules: too short, common, the label password itself.
    for (pw, needle) in [
        ("short", "at least 10 characters"),
        ("Password2024!", "commonly used"),
        ("admin", "at least 10"),
    ] {
        let r = c
            .post_json(
                "/api/v1/password",
                &json!({"current_password": initial(&d), "new_password": pw}),
            )
            .await;
        assert_eq!(r.status, 400, "{pw}: {}", r.text());
        assert_eq!(r.json()["error"], "weak_password");
        let reasons = r.json()["reasons"].to_string();
        assert!(reasons.contains(needle), "{pw}: {reasons}");
    }
    let r = c
        .post_json(
            "/api/v1/password",
            &json!({"current_password": initial(&d), "new_password": initial(&d)}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["reasons"].to_string().contains("label"),
        "{}",
        r.text()
    );

    // Wrong current password.
    let r = c
        .post_json(
            "/api/v1/password",
            &json!({"current_password": "wrong-wrong-wrong", "new_password": NEW}),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_credentials");

    // The change itself: 204, this session is gone and the response says so.
    let r = c
        .post_json(
            "/api/v1/password",
            &json!({"current_password": initial(&d), "new_password": NEW}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("x-pbx-sessions-ended").as_deref(), Some("1"));
    assert!(r
        .set_cookies()
        .iter()
        .any(|s| s.starts_with("pbx_session=;")));

    let mut fresh_client = d.client();
    let r = fresh_client.login("admin", &initial(&d)).await;
    assert_eq!(r.status, 401, "the label password no longer works");
    let r = fresh_client.login("admin", NEW).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["must_change_password"], false);
    assert_eq!(
        fresh_client.get("/").await.status,
        200,
        "dashboard reachable now"
    );
}

#[tokio::test]
async fn password_change_ends_every_session_of_the_account() {
    let (_dir, d) = fresh("all-sessions");
    change_initial(&d, NEW).await;
    let mut a = d.client();
    let mut b = d.client_from("127.0.0.3");
    let mut h = d.tls_client();
    for c in [&mut a, &mut b, &mut h] {
        assert_eq!(c.login("admin", NEW).await.status, 200);
    }
    let r = a
        .post_json(
            "/api/v1/password",
            &json!({"current_password": NEW, "new_password": "green tram to the docks"}),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("x-pbx-sessions-ended").as_deref(), Some("3"));
    for c in [&mut a, &mut b, &mut h] {
        let r = c.get("/api/v1/session").await;
        assert_eq!(r.status, 401, "every session of admin ended");
    }
    assert_eq!(
        d.client()
            .login("admin", "green tram to the docks")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn password_change_requires_session_and_csrf() {
    let (_dir, d) = fresh("pw-csrf");
    let mut c = d.client();
    let body = json!({"current_password": initial(&d), "new_password": NEW});
    let r = c.post_json("/api/v1/password", &body).await;
    assert_eq!(r.status, 401);
    assert_eq!(c.login("admin", &initial(&d)).await.status, 200);
    let token = c.csrf.take();
    let r = c.post_json("/api/v1/password", &body).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "csrf");
    c.csrf = token;
    assert_eq!(c.post_json("/api/v1/password", &body).await.status, 204);
}
