#![no_main]
//! Fuzz target: see pbx_authd::fuzzing::config.
libfuzzer_sys::fuzz_target!(|data: &[u8]| pbx_authd::fuzzing::config(data));
