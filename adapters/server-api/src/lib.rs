//! # cloudbase-auth-server-api
//!
//! The routes `cloudbase-auth serve` adds to CloudBase Auth's, as the server answers them
//! and its Rust client calls them. CloudBase's own paths, headers and bodies are the
//! core's (`cloudbase_auth_core::wire`); these are the local server's, written once here
//! so neither side depends on the other.
//!
//! ```
//! use cloudbase_auth_server_api::{DEFAULT_ORIGIN, HEALTH_PATH, Health};
//!
//! let url = format!("{DEFAULT_ORIGIN}{HEALTH_PATH}");
//! assert_eq!(url, "http://127.0.0.1:8787/healthz");
//! let reply: Health = serde_json::from_str(r#"{"status":"ok"}"#).unwrap();
//! assert!(reply.is_ok());
//! ```

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// Where `cloudbase-auth serve` listens unless `--listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
/// The server the client commands talk to unless `--server` says otherwise: the origin
/// of [`DEFAULT_LISTEN`].
pub const DEFAULT_ORIGIN: &str = "http://127.0.0.1:8787";

/// `GET`: the liveness probe, answered with [`Health::ok`].
pub const HEALTH_PATH: &str = "/healthz";

/// `GET`: the public keys of the access tokens, a JWKS document (RFC 7517) of Ed25519
/// keys (`kty` `OKP`, `alg` `EdDSA`) named by their `kid`. Backends verify access tokens
/// with it (the `cloudbase-auth-verifier` crate).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The `iss` claim of the access tokens unless `serve --issuer` says otherwise.
pub const DEFAULT_ISSUER: &str = "cloudbase-auth";

/// The body of a [`HEALTH_PATH`] reply: `{"status":"ok"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Health {
    /// `ok` when the server answers.
    pub status: String,
}

impl Health {
    /// The `status` of a server that answers.
    pub const OK: &str = "ok";

    /// The reply of a server that answers.
    pub fn ok() -> Self {
        Self {
            status: Self::OK.to_owned(),
        }
    }

    /// Whether this reply says the server answers.
    pub fn is_ok(&self) -> bool {
        self.status == Self::OK
    }
}

/// `POST` (emulated WeChat mode only): mints a single-use `wx.login` code, standing in
/// for the Mini Program's `wx.login`. Body [`LoginCodeRequest`], reply [`LoginCodeReply`].
pub const LOGIN_CODE_PATH: &str = "/emulator/v1/wechat/login-code";

/// The body of a [`LOGIN_CODE_PATH`] request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoginCodeRequest {
    /// The Mini Program's appId.
    pub appid: String,
    /// The WeChat user the code signs in; a new openid is made up when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    /// The user's unionid, if the exchange should report one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    /// A failure the exchange of this code answers instead of the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
}

impl LoginCodeRequest {
    /// A code of `appid` for the user `openid` (a new one when `None`).
    pub fn new(appid: impl Into<String>, openid: Option<String>) -> Self {
        Self {
            appid: appid.into(),
            openid,
            unionid: None,
            fault: None,
        }
    }
}

/// A failure the WeChat emulator injects into one code's exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(
    clippy::exhaustive_enums,
    reason = "the emulator maps every fault to a WeChat error: a new one must not compile until it does"
)]
pub enum Fault {
    /// WeChat's -1, system busy.
    Busy,
    /// WeChat's 40226, high-risk user blocked.
    Blocked,
}

/// The body of a successful [`LOGIN_CODE_PATH`] reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoginCodeReply {
    /// The `wx.login` code, for CloudBase's `provider/token`.
    pub code: String,
    /// The openid the code signs in (the one asked for, or the one made up).
    pub openid: String,
}

impl LoginCodeReply {
    /// The reply for `code`, which signs in `openid`.
    pub fn new(code: impl Into<String>, openid: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            openid: openid.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_origin_is_the_default_listen_address() {
        assert_eq!(DEFAULT_ORIGIN, format!("http://{DEFAULT_LISTEN}"));
    }

    #[test]
    fn bodies_have_their_documented_json() {
        assert_eq!(
            serde_json::to_string(&Health::ok()).unwrap(),
            r#"{"status":"ok"}"#
        );
        assert_eq!(
            serde_json::to_string(&LoginCodeRequest::new("wxa", Some("o1".into()))).unwrap(),
            r#"{"appid":"wxa","openid":"o1"}"#
        );
        let full: LoginCodeRequest = serde_json::from_str(
            r#"{"appid":"wxa","openid":"o1","unionid":"u1","fault":"blocked"}"#,
        )
        .unwrap();
        assert_eq!(full.unionid.as_deref(), Some("u1"));
        assert_eq!(full.fault, Some(Fault::Blocked));
        let bare: LoginCodeRequest = serde_json::from_str(r#"{"appid":"wxa"}"#).unwrap();
        assert_eq!(bare, LoginCodeRequest::new("wxa", None));
        assert!(
            serde_json::from_str::<LoginCodeRequest>(r#"{"appid":"wxa","fault":"x"}"#).is_err()
        );
        assert_eq!(
            serde_json::to_string(&LoginCodeReply::new("c", "o")).unwrap(),
            r#"{"code":"c","openid":"o"}"#
        );
        let not_ok: Health = serde_json::from_str(r#"{"status":"starting"}"#).unwrap();
        assert!(!not_ok.is_ok());
    }
}
