//! Scripted HTTP requests through the server's whole router, in-process: see
//! `cloudbase_auth_server::fuzzing::server_request`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cloudbase_auth_server::fuzzing::server_request(data)
});
