//! Entry points for the fuzz targets (`tests/fuzz`) and their regression test: each
//! takes arbitrary bytes, runs one decoder of untrusted input, and must not panic, loop
//! or allocate without bound. Kept in the library so the saved inputs are replayed by
//! `cargo test` on stable, not only by the fuzzer on nightly.

use hyper::header::{HeaderMap, HeaderValue, COOKIE};

use crate::flows::login;

/// JSON request bodies of every API call that takes one.
pub fn json_bodies(data: &[u8]) {
    let _ = crate::api::http::decode_json::<login::LoginRequest>(data);
    let _ = crate::api::http::decode_json::<login::PasswordRequest>(data);
    let _ = crate::api::http::decode_json::<crate::flows::recovery::ForgotRequest>(data);
    let _ = crate::api::http::decode_json::<crate::flows::recovery::ResetRequest>(data);
    let _ = crate::api::http::decode_json::<crate::flows::smtp::SmtpForm>(data);
    let _ = crate::api::http::decode_json::<crate::flows::profile::ProfileForm>(data);
    let _ = crate::api::http::decode_json::<crate::flows::accounts::NewAccount>(data);
    let _ = crate::api::http::decode_json::<crate::flows::device::FactoryResetRequest>(data);
    if let Ok(v) = HeaderValue::from_bytes(data) {
        let _ = crate::api::http::is_json(Some(&v));
    }
}

/// The session cookie and the CSRF header comparison.
pub fn cookie_csrf(data: &[u8]) {
    let (cookie, csrf) = data.split_at(data.len() / 2);
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(cookie) {
        h.append(COOKIE, v.clone());
        h.append(COOKIE, v);
    }
    let _ = crate::api::http::session_cookie(&h, true);
    if let Some(id) = crate::api::http::session_cookie(&h, false) {
        let _ = crate::auth::token_digest(id);
        let _ = crate::auth::ct_eq(id.as_bytes(), csrf);
    }
}

/// The config loader, with `check-config`'s error reporting.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(problems) = crate::config::Config::parse(text) {
            let _ = problems.to_string();
        }
    }
}

/// One line of the control-socket protocol.
pub fn control(data: &[u8]) {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = crate::control::parse_line(line);
    }
}

/// Every saved input of every target (`tests/fuzz/regressions/<target>/*`).
#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn saved_fuzz_inputs_still_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz/regressions");
        type Target = (&'static str, fn(&[u8]));
        let targets: [Target; 4] = [
            ("json_bodies", super::json_bodies),
            ("cookie_csrf", super::cookie_csrf),
            ("config", super::config),
            ("control", super::control),
        ];
        let mut replayed = 0;
        for (name, run) in targets {
            let dir = root.join(name);
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            for e in entries.flatten() {
                let bytes = std::fs::read(e.path()).expect("input");
                run(&bytes);
                replayed += 1;
            }
        }
        assert!(replayed >= 8, "regression inputs missing: {replayed}");
    }
}
