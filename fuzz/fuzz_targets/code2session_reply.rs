//! Arbitrary bytes as WeChat's `jscode2session` reply (status, body): see
//! `cloudbase_auth_server::fuzzing::code2session_reply`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cloudbase_auth_server::fuzzing::code2session_reply(data)
});
