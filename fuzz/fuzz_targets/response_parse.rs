//! Arbitrary bytes as a CloudBase reply (kind, status, body): see
//! `cloudbase_auth_testkit::fuzz_response_parse`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudbase_auth_testkit::fuzz_response_parse(data));
