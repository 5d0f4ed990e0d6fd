//! WeChat's `code2Session` (`GET /sns/jscode2session`): the contract, an in-process
//! emulator and a real HTTP client behind one trait.
//!
//! The `session_key` WeChat returns never leaves this module: the real client does not
//! even deserialize it, and the emulator makes one only for its own HTTP reply.

mod emulator;
mod real;

use cloudbase_auth_core::capacity::OPENID_MAX;
use cloudbase_auth_core::wire::is_token_safe;

pub(crate) use emulator::{MintError, WeChatEmulator};
pub(crate) use real::RealWeChat;
#[cfg(any(test, fuzzing))]
pub(crate) use real::{REPLY_MAX, parse_reply};

/// Path of WeChat's code2Session API (below the WeChat base URL).
pub(crate) const JSCODE2SESSION_PATH: &str = "/sns/jscode2session";
/// The only `grant_type` code2Session takes.
pub(crate) const GRANT_TYPE: &str = "authorization_code";

/// WeChat error codes (wechat-miniprogram reference §3.2).
pub(crate) mod errcode {
    /// System busy.
    pub(crate) const BUSY: i64 = -1;
    /// Invalid `grant_type`.
    pub(crate) const BAD_GRANT_TYPE: i64 = 40002;
    /// Invalid appid.
    pub(crate) const BAD_APPID: i64 = 40013;
    /// Invalid code: expired, malformed, or not from this appid.
    pub(crate) const INVALID_CODE: i64 = 40029;
    /// Invalid AppSecret.
    pub(crate) const BAD_SECRET: i64 = 40125;
    /// Code already used.
    pub(crate) const CODE_USED: i64 = 40163;
    /// High-risk user blocked.
    pub(crate) const BLOCKED: i64 = 40226;
    /// `appid` missing.
    pub(crate) const MISSING_APPID: i64 = 41002;
    /// `secret` missing.
    pub(crate) const MISSING_SECRET: i64 = 41004;
    /// `js_code` missing.
    pub(crate) const MISSING_CODE: i64 = 41008;
    /// The API needs GET.
    pub(crate) const REQUIRE_GET: i64 = 43001;
    /// Minute quota reached.
    pub(crate) const QUOTA: i64 = 45011;
}

/// Whether `id` can be an `openid` or `unionid` here: at most [`OPENID_MAX`] bytes of
/// token-safe text (visible ASCII, no quote or backslash). Ids are stored, compared and
/// sent back in `user/me` replies; every source (the emulator's minting, WeChat's reply,
/// a user import) applies this one rule.
pub(crate) fn is_valid_wx_id(id: &str) -> bool {
    id.len() <= OPENID_MAX && is_token_safe(id)
}

/// Who WeChat says the code belongs to. Both ids pass [`is_valid_wx_id`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WxUser {
    pub(crate) openid: String,
    pub(crate) unionid: Option<String>,
}

/// Why a code exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WxError {
    /// The code is invalid, expired, used, or the user is blocked: the client's fault.
    #[error("WeChat rejected the login code (errcode {0}); call wx.login again")]
    BadCode(i64),
    /// WeChat's minute quota.
    #[error("WeChat rate limit reached (errcode 45011); retry next minute")]
    RateLimited,
    /// The appid is not configured on this server.
    #[error("Mini Program appid is not configured on this server")]
    UnknownApp,
    /// WeChat refused this server's appid/secret: the server's configuration is wrong.
    #[error("WeChat refused this server's appid or secret (errcode {0}); check the app list")]
    Misconfigured(i64),
    /// WeChat is busy (-1).
    #[error("WeChat is busy (errcode -1); retry later")]
    Busy,
    /// WeChat could not be reached or answered garbage.
    #[error("WeChat unreachable or answered unexpectedly: {0}")]
    Upstream(String),
}

impl WxError {
    /// The window of WeChat's `code2Session` quota ("retry next minute"): the longest a
    /// caller refused with [`WxError::RateLimited`] waits.
    pub(crate) const QUOTA_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

    /// Classifies a WeChat `errcode`.
    pub(crate) fn from_errcode(code: i64) -> Self {
        match code {
            errcode::INVALID_CODE
            | errcode::CODE_USED
            | errcode::BLOCKED
            | errcode::MISSING_CODE => WxError::BadCode(code),
            errcode::QUOTA => WxError::RateLimited,
            errcode::BUSY => WxError::Busy,
            errcode::BAD_APPID
            | errcode::BAD_SECRET
            | errcode::MISSING_APPID
            | errcode::MISSING_SECRET
            | errcode::BAD_GRANT_TYPE => WxError::Misconfigured(code),
            other => WxError::Upstream(format!("errcode {other}")),
        }
    }
}

/// `code2Session`: a `wx.login` code of Mini Program `appid` → the user's openid.
#[async_trait::async_trait]
pub(crate) trait Code2Session: Send + Sync {
    /// Exchanges `code` (single use) for the user's identity (ids valid by
    /// [`is_valid_wx_id`]).
    async fn exchange(&self, appid: &str, code: &str) -> Result<WxUser, WxError>;
}
