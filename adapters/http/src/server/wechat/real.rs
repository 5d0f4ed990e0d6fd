//! The real `code2Session` client: `GET {base}/sns/jscode2session` with reqwest.

use super::{Code2Session, GRANT_TYPE, JSCODE2SESSION_PATH, WxError, WxUser};
use crate::server::config::WeChatApps;
use serde::Deserialize;
use std::time::Duration;

/// WeChat's reply. `session_key` is deliberately not a field: it is never read.
#[derive(Debug, Deserialize)]
struct Reply {
    #[serde(default)]
    openid: Option<String>,
    #[serde(default)]
    unionid: Option<String>,
    #[serde(default)]
    errcode: Option<i64>,
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
        if !response.status().is_success() {
            return Err(WxError::Upstream(format!("HTTP {}", response.status())));
        }
        let reply: Reply = response.json().await.map_err(upstream)?;
        match (reply.errcode, reply.openid) {
            (Some(code), _) if code != 0 => Err(WxError::from_errcode(code)),
            (_, Some(openid)) if !openid.is_empty() => Ok(WxUser {
                openid,
                unionid: reply.unionid.filter(|u| !u.is_empty()),
            }),
            _ => Err(WxError::Upstream("reply without openid".to_owned())),
        }
    }
}
