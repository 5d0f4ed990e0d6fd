//! # cloudbase-auth-wasm-module
//!
//! The WebAssembly module `js/cloudbase_auth.wasm`: each function of
//! [`cloudbase_auth_wasm::exports`] exported with the C ABI under its own name. The ABI
//! (memory, records, codes, run loop) is documented in [`cloudbase_auth_wasm`].

#![cfg_attr(target_arch = "wasm32", no_std)]
// `#[unsafe(no_mangle)]` names the exports; there are no unsafe blocks.
#![allow(unsafe_code)]

use cloudbase_auth_wasm::exports as x;

/// Exports `x::$name` as `$name` with the C ABI.
macro_rules! export {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {$(
        #[doc = concat!("[`cloudbase_auth_wasm::exports::", stringify!($name), "`].")]
        #[unsafe(no_mangle)]
        pub extern "C" fn $name($($arg: $ty),*) -> $ret {
            x::$name($($arg),*)
        }
    )*};
}

export! {
    cba_buf() -> *mut u8;
    cba_buf_len() -> u32;
    cba_init(
        now: f64, env_ptr: usize, env_len: usize, client_ptr: usize, client_len: usize,
        seed_ptr: usize
    ) -> f64;
    cba_restore(now: f64, ptr: usize, len: usize) -> f64;
    cba_get_login_state(now: f64) -> f64;
    cba_get_user_info(now: f64) -> f64;
    cba_sign_in_anonymously(now: f64) -> f64;
    cba_sign_out(now: f64) -> f64;
    cba_sign_in_with_wechat(
        now: f64, code_ptr: usize, code_len: usize, appid_ptr: usize, appid_len: usize
    ) -> f64;
    cba_link_wechat(
        now: f64, code_ptr: usize, code_len: usize, appid_ptr: usize, appid_len: usize
    ) -> f64;
    cba_update_profile(
        now: f64, nickname_ptr: usize, nickname_len: usize, avatar_ptr: usize,
        avatar_len: usize, fields: u32
    ) -> f64;
    cba_delete_account(now: f64) -> f64;
    cba_handle_response(
        now: f64, generation: u32, seq: u32, status: u32, ptr: usize, len: usize
    ) -> f64;
    cba_handle_transport_error(now: f64, generation: u32, seq: u32) -> f64;
    cba_handle_timeout(now: f64) -> f64;
    cba_poll() -> f64;
    cba_login_state() -> u32;
    cba_is_signed_in(state: u32) -> u32;
    cba_settled_until() -> f64;
    cba_session() -> f64;
    cba_user() -> f64;
    cba_default_origin() -> f64;
}

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
