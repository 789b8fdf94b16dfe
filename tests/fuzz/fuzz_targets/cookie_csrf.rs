#![no_main]
//! Fuzz target: see pbx_authd::fuzzing::cookie_csrf.
libfuzzer_sys::fuzz_target!(|data: &[u8]| pbx_authd::fuzzing::cookie_csrf(data));
