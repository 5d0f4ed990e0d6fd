//! The real `code2Session` client: `GET {base}/sns/jscode2session` with reqwest, and the
//! parser of WeChat's reply ([`parse_reply`]), kept free of I/O so it can be fuzzed.

use super::{Code2Session, GRANT_TYPE, JSCODE2SESSION_PATH, WxError, WxUser, is_valid_wx_id};
use crate::config::WeChatApps;
use serde::Deserialize;
use std::time::Duration;

/// Longest reply read from WeChat. A real reply is about 150 bytes; anything near this
/// size is not WeChat, and must not make the server buffer without limit.
pub(crate) const REPLY_MAX: usize = 4096;

/// WeChat's reply. `session_key` is deliberately not a field: it is never read. Unknown
/// fields are ignored; a duplicated field is refused.
#[derive(Debug, Deserialize)]
struct Reply {
    #[serde(default)]
    openid: Option<String>,
    #[serde(default)]
    unionid: Option<String>,
    #[serde(default)]
    errcode: Option<i64>,
}

/// Reads WeChat's reply: HTTP `status` and the `body` bytes.
///
/// * A non-2xx status, a body over [`REPLY_MAX`], or a body that is not a JSON object
///   with the expected field types: [`WxError::Upstream`].
/// * A non-zero `errcode`: classified by [`WxError::from_errcode`], whatever else the
///   reply says.
/// * Otherwise an `openid` is required; it and a `unionid` (an empty one counts as
///   absent) must pass [`is_valid_wx_id`]. Anything else is [`WxError::Upstream`]: a
///   reply the server cannot vouch for signs nobody in.
pub(crate) fn parse_reply(status: u16, body: &[u8]) -> Result<WxUser, WxError> {
    if !(200..300).contains(&status) {
        return Err(WxError::Upstream(format!("HTTP {status}")));
    }
    if body.len() > REPLY_MAX {
        return Err(WxError::Upstream(format!("reply over {REPLY_MAX} bytes")));
    }
    // serde's derived `Deserialize` also takes a JSON array, field by field in order:
    // `["o1"]` would read as openid o1. WeChat replies with an object, nothing else.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(WxError::Upstream("reply is not a JSON object".to_owned()));
    }
    let reply: Reply = serde_json::from_slice(body)
        .map_err(|e| WxError::Upstream(format!("malformed reply: {e}")))?;
    if let Some(code) = reply.errcode.filter(|&c| c != 0) {
        return Err(WxError::from_errcode(code));
    }
    let openid = match reply.openid {
        Some(openid) if is_valid_wx_id(&openid) => openid,
        Some(openid) if !openid.is_empty() => {
            return Err(WxError::Upstream("reply with an invalid openid".to_owned()));
        }
        _ => return Err(WxError::Upstream("reply without openid".to_owned())),
    };
    let unionid = match reply.unionid.filter(|u| !u.is_empty()) {
        Some(unionid) if !is_valid_wx_id(&unionid) => {
            return Err(WxError::Upstream(
                "reply with an invalid unionid".to_owned(),
            ));
        }
        unionid => unionid,
    };
    Ok(WxUser { openid, unionid })
}

/// Calls a WeChat-compatible API over HTTP(S).
pub(crate) struct RealWeChat {
    client: reqwest::Client,
    url: String,
    apps: WeChatApps,
}

impl RealWeChat {
    /// A client for `base_url` with the app secrets of `apps`.
    pub(crate) fn new(
        base_url: &str,
        apps: WeChatApps,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            url: format!("{}{JSCODE2SESSION_PATH}", base_url.trim_end_matches('/')),
            apps,
        })
    }
}

fn upstream(e: reqwest::Error) -> WxError {
    // The URL carries the secret and the code in its query: never keep it.
    WxError::Upstream(e.without_url().to_string())
}

/// The body, read chunk by chunk; reading stops once it passes [`REPLY_MAX`] (the
/// `Content-Length` header is not trusted), and [`parse_reply`] refuses it.
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, WxError> {
    let mut body = Vec::new();
    while body.len() <= REPLY_MAX {
        let Some(chunk) = response.chunk().await.map_err(upstream)? else {
            break;
        };
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[async_trait::async_trait]
impl Code2Session for RealWeChat {
    async fn exchange(&self, appid: &str, code: &str) -> Result<WxUser, WxError> {
        let secret = self.apps.secret(appid).ok_or(WxError::UnknownApp)?;
        let response = self
            .client
            .get(&self.url)
            .query(&[
                ("appid", appid),
                ("secret", secret),
                ("js_code", code),
                ("grant_type", GRANT_TYPE),
            ])
            .send()
            .await
            .map_err(upstream)?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            // Not read: the status decides.
            return parse_reply(status, &[]);
        }
        parse_reply(status, &read_bounded(response).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudbase_auth_core::capacity::OPENID_MAX;

    fn user(openid: &str, unionid: Option<&str>) -> Result<WxUser, WxError> {
        Ok(WxUser {
            openid: openid.to_owned(),
            unionid: unionid.map(str::to_owned),
        })
    }

    #[test]
    fn reads_the_documented_replies() {
        let ok = br#"{"openid":"oAbC-123_x","session_key":"c2Vzc2lvbg==","unionid":"uXYZ"}"#;
        assert_eq!(parse_reply(200, ok), user("oAbC-123_x", Some("uXYZ")));
        let no_union = br#"{"session_key":"k","openid":"o1","unionid":"","errcode":0}"#;
        assert_eq!(parse_reply(200, no_union), user("o1", None));
        let used = br#"{"errcode":40163,"errmsg":"code been used, rid: 1"}"#;
        assert_eq!(parse_reply(200, used), Err(WxError::BadCode(40163)));
        // An error code wins over an openid in the same reply.
        let both = br#"{"openid":"o1","errcode":-1}"#;
        assert_eq!(parse_reply(200, both), Err(WxError::Busy));
        let secret = br#"{"errcode":40125,"errmsg":"invalid appsecret"}"#;
        assert_eq!(parse_reply(200, secret), Err(WxError::Misconfigured(40125)));
    }

    #[test]
    fn refuses_what_it_cannot_vouch_for() {
        let upstream =
            |status, body: &[u8]| matches!(parse_reply(status, body), Err(WxError::Upstream(_)));
        assert!(upstream(502, br#"{"openid":"o1"}"#));
        assert!(upstream(200, b"<html>busy</html>"));
        assert!(upstream(200, b"[]"));
        assert!(upstream(200, br#"["o1"]"#), "an array is not a reply");
        assert!(upstream(200, br#"{"session_key":"k"}"#));
        assert!(upstream(200, br#"{"openid":""}"#));
        assert!(upstream(200, br#"{"openid":"has space"}"#));
        assert!(upstream(200, br#"{"openid":"o\"q"}"#));
        assert!(upstream(200, br#"{"openid":"o1","unionid":"u\u0000"}"#));
        assert!(upstream(200, br#"{"openid":"o1","openid":"o2"}"#));
        assert!(upstream(200, br#"{"openid":7}"#));
        assert!(upstream(200, br#"{"openid":"o1","errcode":"40029"}"#));
        let long = format!(r#"{{"openid":"{}"}}"#, "o".repeat(OPENID_MAX + 1));
        assert!(upstream(200, long.as_bytes()));
        let exact = "o".repeat(OPENID_MAX);
        let at_limit = format!(r#"{{"openid":"{exact}"}}"#);
        assert_eq!(parse_reply(200, at_limit.as_bytes()), user(&exact, None));
        let huge = format!(r#"{{"openid":"o1","pad":"{}"}}"#, " ".repeat(REPLY_MAX));
        assert!(upstream(200, huge.as_bytes()));
    }
}
