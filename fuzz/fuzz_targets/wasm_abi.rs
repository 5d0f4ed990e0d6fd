//! Arbitrary call sequences and byte buffers through the wasm module's exports, compiled
//! natively: see `cloudbase_auth_wasm::fuzzing` (`adapters/wasm/src/fuzzing/`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cloudbase_auth_wasm::fuzzing::wasm_abi(data));
