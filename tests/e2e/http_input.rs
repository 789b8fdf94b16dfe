//! Bad input gets a specific error: size, content type, JSON, routes.

use serde_json::json;

use crate::{fresh, initial};

#[tokio::test]
async fn body_over_16_kib_is_413() {
    let (_dir, d) = fresh("413");
    let mut c = d.client();
    let big = format!(
        r#"{{"username":"admin","password":"{}"}}"#,
        "x".repeat(17 * 1024)
    );
    let r = c
        .send(
            "POST",
            "/api/v1/login",
            &[("content-type", "application/json")],
            Some(big.into_bytes()),
        )
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "body_too_large");
    // Exactly at the limit is still read (and then judged on its content).
    let pad = 16 * 1024 - r#"{"username":"admin","password":""}"#.len();
    let at_limit = format!(r#"{{"username":"admin","password":"{}"}}"#, "y".repeat(pad));
    assert_eq!(at_limit.len(), 16 * 1024);
    let r = c
        .send(
            "POST",
            "/api/v1/login",
            &[("content-type", "application/json")],
            Some(at_limit.into_bytes()),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn malformed_json_wrong_type_and_unknown_fields_are_400_or_415() {
    let (_dir, d) = fresh("400");
    let mut c = d.client();
    let r = c
        .send(
            "POST",
            "/api/v1/login",
            &[("content-type", "application/json")],
            Some(b"{\"username\": ".to_vec()),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_json");
    assert!(r.json()["message"]
        .as_str()
        .is_some_and(|m| m.contains("JSON")));

    let r = c
        .post_json("/api/v1/login", &json!({"username": "admin"}))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .expect("message")
            .contains("password"),
        "{}",
        r.text()
    );

    let r = c
        .post_json(
            "/api/v1/login",
            &json!({"username": "admin", "password": initial(&d), "admin": true}),
        )
        .await;
    assert_eq!(r.status, 400, "unknown fields are refused");
    assert_eq!(r.json()["error"], "invalid_json");

    let r = c
        .send(
            "POST",
            "/api/v1/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(b"username=admin".to_vec()),
        )
        .await;
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["error"], "unsupported_media_type");
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let (_dir, d) = fresh("routes");
    let mut c = d.client();
    let r = c.get("/api/v1/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "not_found");
    let r = c.get("/api/v1/login").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("POST"));
    let r = c.send("DELETE", "/healthz", &[], None).await;
    assert_eq!(r.status, 405);
    let r = c.get("/healthz").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
}
