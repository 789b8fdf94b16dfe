#![no_main]
//! Fuzz target: see pbx_authd::fuzzing::json_bodies.
libfuzzer_sys::fuzz_target!(|data: &[u8]| pbx_authd::fuzzing::json_bodies(data));
