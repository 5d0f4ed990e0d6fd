//! The module's exports as plain Rust functions, each one call into the arena. The
//! cdylib shell (`module/`) exports each under the same name with the C ABI; native
//! callers (this crate's tests, the `wasm_abi` fuzz target) call them directly.

use crate::arena;
use crate::host::{Fail, Host};
use cloudbase_auth_core::{Engine, RequestId};

/// Runs one export on the arena: its return value, or the error code with the error
/// record written.
fn call(f: impl FnOnce(&mut Host<'_>) -> Result<f64, Fail>) -> f64 {
    arena::with(|h| {
        let r = f(h);
        h.out(r)
    })
}

/// Address of the exchange buffer in linear memory.
pub fn cba_buf() -> *mut u8 {
    arena::with(|h| h.xbuf.as_mut_ptr())
}

/// Length of the exchange buffer ([`crate::abi::EXCHANGE_LEN`]).
pub fn cba_buf_len() -> u32 {
    crate::abi::EXCHANGE_LEN as u32
}

/// Drops the engine and starts over with a new, uninitialised one. Host builds only
/// (tests, fuzzing): in JS every `init()` gets a new instance, so the module leaves it
/// out.
#[cfg(not(target_arch = "wasm32"))]
pub fn cba_reset() {
    arena::with(|h| {
        *h.engine = Engine::new();
        *h.undrained = false;
    })
}

/// `wx.cloud.init({ env })`: env id and optional client id (`client_len == 0`: the env
/// id) as UTF-8, 16 seed bytes at `seed_ptr`. `0` or an error.
pub fn cba_init(
    now: f64,
    env_ptr: usize,
    env_len: usize,
    client_ptr: usize,
    client_len: usize,
    seed_ptr: usize,
) -> f64 {
    call(|h| h.init(now, (env_ptr, env_len), (client_ptr, client_len), seed_ptr))
}

/// Restores the stored snapshot text (base64, as a persist record gave it; right after
/// init). `0` or an error; a corrupt snapshot (or text that is not base64) still queues
/// the state change and a clear-storage output.
pub fn cba_restore(now: f64, ptr: usize, len: usize) -> f64 {
    call(|h| h.restore(now, ptr, len))
}

/// `auth.getLoginState()`: the operation id or an error.
pub fn cba_get_login_state(now: f64) -> f64 {
    call(|h| h.op(now, Engine::get_login_state))
}

/// `auth.getUserInfo()`: the operation id or an error.
pub fn cba_get_user_info(now: f64) -> f64 {
    call(|h| h.op(now, Engine::get_user_info))
}

/// `auth.signInAnonymously()`: the operation id or an error.
pub fn cba_sign_in_anonymously(now: f64) -> f64 {
    call(|h| h.op(now, Engine::sign_in_anonymously))
}

/// `auth.signOut()`: the operation id or an error.
pub fn cba_sign_out(now: f64) -> f64 {
    call(|h| h.op(now, Engine::sign_out))
}

/// `auth.signInWithWeChat()` with a `wx.login` code and the Mini Program appId (UTF-8):
/// the operation id or an error.
pub fn cba_sign_in_with_wechat(
    now: f64,
    code_ptr: usize,
    code_len: usize,
    appid_ptr: usize,
    appid_len: usize,
) -> f64 {
    let (code, appid) = ((code_ptr, code_len), (appid_ptr, appid_len));
    call(|h| h.wechat_op(now, code, appid, Engine::sign_in_with_wechat))
}

/// `auth.linkWithWeChat()`: like [`cba_sign_in_with_wechat`], for an anonymous session.
pub fn cba_link_wechat(
    now: f64,
    code_ptr: usize,
    code_len: usize,
    appid_ptr: usize,
    appid_len: usize,
) -> f64 {
    let (code, appid) = ((code_ptr, code_len), (appid_ptr, appid_len));
    call(|h| h.wechat_op(now, code, appid, Engine::link_wechat))
}

/// `user.update({ nickName, avatarUrl })`: the nickname and the avatar URL (UTF-8) at
/// their pairs; `fields` says which of the two are given (bit 0 the nickname, bit 1
/// the avatar URL: [`crate::abi::profile`]; other bits are refused with
/// [`crate::abi::arg::FLAGS`]); the pair of one not given is not read. The operation id
/// or an error.
pub fn cba_update_profile(
    now: f64,
    nickname_ptr: usize,
    nickname_len: usize,
    avatar_ptr: usize,
    avatar_len: usize,
    fields: u32,
) -> f64 {
    let (nickname, avatar) = ((nickname_ptr, nickname_len), (avatar_ptr, avatar_len));
    call(|h| h.update_profile(now, nickname, avatar, fields))
}

/// `auth.deleteMe()`: deletes the signed-in user on the server, then ends the local
/// session as a sign-out does. The operation id or an error.
pub fn cba_delete_account(now: f64) -> f64 {
    call(|h| h.op(now, Engine::delete_account))
}

/// The reply to request `(generation, seq)`: HTTP status and body. `1` accepted, `0`
/// stale (dropped), or an error.
pub fn cba_handle_response(
    now: f64,
    generation: u32,
    seq: u32,
    status: u32,
    ptr: usize,
    len: usize,
) -> f64 {
    call(|h| h.response(now, RequestId { generation, seq }, status, ptr, len))
}

/// Request `(generation, seq)` got no reply (network failure). `1`/`0` as for
/// [`cba_handle_response`], or an error.
pub fn cba_handle_transport_error(now: f64, generation: u32, seq: u32) -> f64 {
    call(|h| h.transport_error(now, RequestId { generation, seq }))
}

/// Time passed (the deadline of the last timeout output, or any time). `0` or an error.
pub fn cba_handle_timeout(now: f64) -> f64 {
    call(|h| h.timeout(now))
}

/// The next output: its kind (the core's output code, 0 timeout … 6 session replaced)
/// with its record in the exchange buffer, or an error. Call until it returns `0` after
/// every input.
pub fn cba_poll() -> f64 {
    call(|h| h.poll())
}

/// The current login state code.
pub fn cba_login_state() -> u32 {
    arena::with(|h| u32::from(h.engine.login_state().code()))
}

/// `1` if the login state with this code has a session (anonymous, WeChat), else `0`.
pub fn cba_is_signed_in(state: u32) -> u32 {
    let state = u8::try_from(state)
        .ok()
        .and_then(cloudbase_auth_core::LoginState::from_code);
    u32::from(state.is_some_and(|s| s.is_signed_in()))
}

/// Until when (host ms, exclusive, at most 2^53) `cba_get_login_state` would complete at
/// once with the session as it is now, if no other input comes first; `-1` when a call
/// now would wait, start a request or fire a timer. The facade answers `getLoginState`
/// from its copy of the session until then, and drops that copy at any output other
/// than the timeout ([`cloudbase_auth_core::Engine::login_state_settled_until`]).
pub fn cba_settled_until() -> f64 {
    arena::with(|h| match h.engine.login_state_settled_until() {
        Some(t) => t.min(crate::abi::TIME_MAX) as f64,
        None => -1.0,
    })
}

/// Writes the session record; `1`, or `0` when signed out.
pub fn cba_session() -> f64 {
    call(|h| h.session())
}

/// Writes the user record (profile fields empty until fetched); `1`, or `0`.
pub fn cba_user() -> f64 {
    call(|h| h.user())
}

/// Writes the origin record: the default CloudBase origin of the env `init` was given
/// (`https://{env}.ap-shanghai.tcb-api.tencentcloudapi.com`); `1`, or `0` before init.
pub fn cba_default_origin() -> f64 {
    call(|h| h.default_origin())
}
