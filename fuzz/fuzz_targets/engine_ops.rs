//! Arbitrary operation sequences against engine and model: see
//! `cloudbase_auth_testkit::fuzz_engine_ops`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudbase_auth_testkit::fuzz_engine_ops(data));
