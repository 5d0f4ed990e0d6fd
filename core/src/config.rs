//! What the host tells the engine at `init` (the `wx.cloud.init({env})` step).

use crate::capacity::{API_PATH_MAX, ENV_ID_MAX, REGION_MAX};
use crate::error::ApiMisuse;
use crate::wire::{DEFAULT_API_PATH, DEFAULT_REGION};
use heapless::String;

/// How long before its expiry an access token is refreshed, unless configured
/// otherwise (the official SDK's 30 s). Never earlier than half-way through the
/// token's lifetime.
pub const DEFAULT_REFRESH_MARGIN_MS: u64 = 30_000;
/// How long a request may go without a reply before it fails as timed out, unless
/// configured otherwise.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 15_000;
/// The first wait before a proactive refresh is retried after a network failure or a
/// server in trouble; it doubles on every failure in a row.
pub const RETRY_BACKOFF_MIN_MS: u64 = 1_000;
/// The longest wait between proactive refresh retries.
pub const RETRY_BACKOFF_MAX_MS: u64 = 300_000;
/// No proactive refresh sooner than this after new credentials arrived: a server handing
/// out zero-lifetime tokens gets one refresh a second, not a storm.
pub const MIN_REFRESH_GAP_MS: u64 = 1_000;

/// Engine settings. Build with [`Config::new`] and the `with_*` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config<'a> {
    /// The CloudBase env id.
    pub env: &'a str,
    /// `client_id` sent in queries and refresh bodies; `None` means the env id (as the
    /// SDK does).
    pub client_id: Option<&'a str>,
    /// API path prefix (`apiPath`), `/auth` by default.
    pub api_path: &'a str,
    /// Refresh this long before the access token expires (30 s, like the SDK).
    pub refresh_margin_ms: u64,
    /// A request with no reply after this long fails as timed out.
    pub request_timeout_ms: u64,
    /// When the server refuses an anonymous session (its refresh token, or its access
    /// token at `user/me` even after a refresh), sign in a **new** anonymous user in its
    /// place (the official SDK's behaviour; on by default). The
    /// refused user is gone for this device either way: the calls waiting on it fail
    /// with [`Error::SessionExpired`](crate::Error::SessionExpired), and the
    /// replacement is announced with [`Output::SessionReplaced`](crate::Output::SessionReplaced).
    /// Off: the session just ends in `SignedOut`.
    pub anonymous_recovery: bool,
}

impl<'a> Config<'a> {
    /// Settings for `env` with the defaults of the official SDK.
    pub const fn new(env: &'a str) -> Self {
        Config {
            env,
            client_id: None,
            api_path: DEFAULT_API_PATH,
            refresh_margin_ms: DEFAULT_REFRESH_MARGIN_MS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            anonymous_recovery: true,
        }
    }

    /// Use a client id other than the env id.
    pub const fn with_client_id(mut self, client_id: &'a str) -> Self {
        self.client_id = Some(client_id);
        self
    }

    /// Use another API path prefix.
    pub const fn with_api_path(mut self, api_path: &'a str) -> Self {
        self.api_path = api_path;
        self
    }

    /// Change the refresh margin.
    pub const fn with_refresh_margin_ms(mut self, ms: u64) -> Self {
        self.refresh_margin_ms = ms;
        self
    }

    /// Change the request timeout.
    pub const fn with_request_timeout_ms(mut self, ms: u64) -> Self {
        self.request_timeout_ms = ms;
        self
    }

    /// Turn the automatic anonymous recovery on or off (see
    /// [`Config::anonymous_recovery`]).
    pub const fn with_anonymous_recovery(mut self, on: bool) -> Self {
        self.anonymous_recovery = on;
        self
    }
}

/// Env ids, client ids and regions go into host names and queries unescaped:
/// `[A-Za-z0-9_-]`, non-empty.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Copies a validated id into a bounded string.
pub(crate) fn checked_id<const N: usize>(
    field: &'static str,
    s: &str,
) -> Result<String<N>, ApiMisuse> {
    check_id(field, s, N)?;
    Ok(String::try_from(s).unwrap_or_default())
}

/// The checks of [`checked_id`], one copy for every capacity (smaller wasm).
#[inline(never)]
fn check_id(field: &'static str, s: &str, max: usize) -> Result<(), ApiMisuse> {
    if s.len() > max {
        return Err(ApiMisuse::InputTooLong {
            field,
            max: max as u16,
        });
    }
    if !is_valid_id(s) {
        return Err(ApiMisuse::InputInvalid { field });
    }
    Ok(())
}

/// Validated copy of an API path prefix: `/` followed by `[A-Za-z0-9/_-]`, no `//`.
pub(crate) fn checked_api_path(s: &str) -> Result<String<API_PATH_MAX>, ApiMisuse> {
    let field = "api_path";
    if s.len() > API_PATH_MAX {
        return Err(ApiMisuse::InputTooLong {
            field,
            max: API_PATH_MAX as u16,
        });
    }
    let ok = s.starts_with('/')
        // Bytes, not `str::contains`: its substring searcher costs ~600 bytes of wasm.
        && !s.as_bytes().windows(2).any(|w| w == b"//")
        && !s.ends_with('/')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b));
    if !ok {
        return Err(ApiMisuse::InputInvalid { field });
    }
    Ok(String::try_from(s).unwrap_or_default())
}

/// The default CloudBase origin for `env` in `region` (`None`: `ap-shanghai`):
/// `https://{env}.{region}.tcb-api.tencentcloudapi.com`. Hosts prepend it (or their own
/// server's origin) to a request's path.
pub fn default_origin(env: &str, region: Option<&str>) -> Result<String<160>, ApiMisuse> {
    let env: String<ENV_ID_MAX> = checked_id("env", env)?;
    let region: String<REGION_MAX> = checked_id("region", region.unwrap_or(DEFAULT_REGION))?;
    let mut out = String::new();
    for part in [
        "https://",
        &env,
        ".",
        &region,
        ".tcb-api.tencentcloudapi.com",
    ] {
        // 8 + 64 + 1 + 32 + 28 < 160: cannot fail.
        let _ = out.push_str(part);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_origin_follows_the_sdk() {
        assert_eq!(
            default_origin("peer-1g2h", None).unwrap(),
            "https://peer-1g2h.ap-shanghai.tcb-api.tencentcloudapi.com"
        );
        assert_eq!(
            default_origin("e", Some("ap-guangzhou")).unwrap(),
            "https://e.ap-guangzhou.tcb-api.tencentcloudapi.com"
        );
        assert!(default_origin("bad/env", None).is_err());
    }

    #[test]
    fn api_paths_are_checked() {
        assert!(checked_api_path("/auth").is_ok());
        assert!(checked_api_path("/gw/auth").is_ok());
        for bad in ["auth", "/auth/", "//x", "/a b", "/a?b"] {
            assert!(checked_api_path(bad).is_err(), "{bad}");
        }
    }
}
