//! Unit tests of `http.rs`.

use super::*;

#[test]
fn ipv4_hosts_are_told_from_their_bytes() {
    for ok in [
        "127.0.0.1",
        "192.168.1.10:8443",
        "0.0.0.0",
        "255.255.255.255:1",
    ] {
        assert!(is_ipv4_host(ok.as_bytes()), "{ok}");
    }
    for bad in [
        "256.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
        "01.2.3.4",
        "1.2.3.4:",
        "1.2.3.4:123456",
        "a.b.c.d",
        "",
        "1..2.3",
    ] {
        assert!(!is_ipv4_host(bad.as_bytes()), "{bad}");
    }
}

#[test]
fn finds_the_session_cookie_among_others() {
    let mut h = HeaderMap::new();
    h.append(
        header::COOKIE,
        HeaderValue::from_static("a=1; pbx_session=abc; b=2"),
    );
    assert_eq!(session_cookie(&h, false), Some("abc"));
    let mut h = HeaderMap::new();
    h.append(header::COOKIE, HeaderValue::from_static("pbx_sessionx=1"));
    assert_eq!(session_cookie(&h, false), None);
    // Spaces around, a second Cookie header, bytes that are not text elsewhere.
    let mut h = HeaderMap::new();
    h.append(
        header::COOKIE,
        HeaderValue::from_bytes(b"x=\xff\xfe; y").expect("opaque bytes"),
    );
    h.append(
        header::COOKIE,
        HeaderValue::from_static(" pbx_session = abc "),
    );
    assert_eq!(session_cookie(&h, false), Some("abc"));
    let mut h = HeaderMap::new();
    h.append(
        header::COOKIE,
        HeaderValue::from_bytes(b"pbx_session=\xff").expect("opaque bytes"),
    );
    assert_eq!(session_cookie(&h, false), None, "not text: no session");
}

#[test]
fn only_names_of_this_box_pass_the_host_check() {
    let names = ["pbx-1", "pbx.example.com"];
    for ok in [
        "192.168.1.10",
        "192.168.1.10:8443",
        "[::1]",
        "[fe80::1]:443",
        "localhost",
        "LOCALHOST:80",
        "pbx-1",
        "PBX.example.com.",
        "pbx.example.com:443",
    ] {
        assert!(host_is_ours(ok, names), "{ok}");
    }
    for bad in [
        "evil.example",
        "evil.example:80",
        "192.168.1.10.evil.example",
        "localhost.evil.example",
        "[::1",
        "[not-v6]",
        "pbx-1:x",
        "",
        "pbx.example.com.evil",
    ] {
        assert!(!host_is_ours(bad, names), "{bad}");
    }
    assert!(
        !host_is_ours("", [""]),
        "an empty configured name matches nothing"
    );
}

#[test]
fn error_body_carries_code_message_and_retry() {
    let r = error_response(
        &Error::Locked {
            retry_after: std::time::Duration::from_secs(600),
        },
        crate::i18n::Lang::En,
    );
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()[header::RETRY_AFTER], "600");
}

#[test]
fn bodies_held_at_once_stay_within_the_budget() {
    let mut a = Held(0);
    assert!(a.take(BODY_BUDGET / 2));
    let mut b = Held(0);
    assert!(
        !b.take(BODY_BUDGET),
        "over the budget: refused, nothing taken"
    );
    assert!(b.take(BODY_BUDGET / 4));
    drop(a);
    let mut c = Held(0);
    assert!(
        c.take(BODY_BUDGET / 2),
        "a dropped body gives its share back"
    );
}
