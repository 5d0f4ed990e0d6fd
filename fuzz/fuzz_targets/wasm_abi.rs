//! Arbitrary call sequences and byte buffers through the wasm crate's exports, compiled
//! natively: see `cloudbase_auth_wasm::fuzzing::wasm_abi` (`adapters/wasm/src/fuzzing.rs`).
#![no_main]

// The wasm crate is cdylib-only (an rlib would grow the module): include its source. Its
// seed encoder and the exports' re-export go unused here.
#[allow(unused)]
#[path = "../../adapters/wasm/src/lib.rs"]
mod cloudbase_auth_wasm;

libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudbase_auth_wasm::fuzzing::wasm_abi(data));
