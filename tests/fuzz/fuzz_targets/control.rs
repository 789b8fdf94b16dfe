#![no_main]
//! Fuzz target: see pbx_authd::fuzzing::control.
libfuzzer_sys::fuzz_target!(|data: &[u8]| pbx_authd::fuzzing::control(data));
