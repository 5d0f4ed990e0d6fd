//! Arbitrary bytes as a stored snapshot: see `cloudbase_auth_testkit::fuzz_snapshot_decode`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudbase_auth_testkit::fuzz_snapshot_decode(data));
