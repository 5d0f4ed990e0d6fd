//! Writing a request into the buffer the host lends to `poll_output`: path and query,
//! header block, JSON body (§2 and §3 of docs/wire.md).
//!
//! The engine says which endpoint and hands over what its session holds ([`Request`]);
//! which endpoint carries which token, header or query is decided here, from the
//! endpoint table.

#[cfg(feature = "account")]
use super::ProfileUpdateRequest;
use super::{
    AnonymousSignInRequest, CLIENT_ID_PARAM, CONTENT_TYPE_JSON, Credential, Endpoint,
    GRANT_REFRESH_TOKEN, HEADER_AUTHORIZATION, HEADER_CONTENT_TYPE, HEADER_DEVICE_ID,
    HEADER_METHOD_OVERRIDE, HEADER_REQUEST_ID, HEADER_SDK_VERSION, PROVIDER_CODE_TYPE_OPEN_ID,
    ProviderParams, ProviderTokenBody, ProviderTokenRequest, RefreshRequest, RevokeRequest,
    SDK_VERSION,
};
use crate::capacity::ENV_ID_MAX;
use crate::output::{RequestId, Transmit};
use serde_json_core::to_slice;

/// One request to write, with what the engine's session supplies to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    /// Which endpoint.
    pub(crate) endpoint: Endpoint,
    /// The API path prefix (`/auth`).
    pub(crate) api_path: &'a str,
    /// The `client_id` (query of unauthenticated endpoints, refresh body).
    pub(crate) client_id: &'a str,
    /// `x-device-id`.
    pub(crate) device_id: &'a str,
    /// `x-request-id`, fresh for this request.
    pub(crate) request_id: &'a str,
    /// The session's token type and access token: the `Bearer` of authenticated
    /// endpoints and the body of `revoke` (after a sign-out, until that is written).
    pub(crate) access_token: Option<(&'a str, &'a str)>,
    /// The session's refresh token (body of `token`).
    pub(crate) refresh_token: Option<&'a str>,
    /// A WeChat exchange: the `wx.login` code (`provider/token`) or the provider token
    /// that replaced it (`signin/with/provider`, `user/provider/bind`), and the Mini
    /// Program appId.
    pub(crate) provider: Option<(&'a str, &'a str)>,
    /// The client authenticates itself with `Basic base64("{client_id}:")` (empty
    /// secret), as the SDK's automatic anonymous re-sign-in does.
    pub(crate) client_auth: bool,
    /// The profile change of `user/profile`: new nickname, new avatar URL.
    #[cfg_attr(
        not(feature = "account"),
        allow(dead_code, reason = "read by the account feature")
    )]
    pub(crate) profile: Option<(Option<&'a str>, Option<&'a str>)>,
}

/// Where [`Request::write`] put each part in the buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    path_end: usize,
    headers_end: usize,
    body_len: Option<usize>,
}

impl Request<'_> {
    /// Writes the request into `buf`. `None`: the buffer is too small, or the session
    /// lacks what the endpoint needs.
    pub(crate) fn write(&self, buf: &mut [u8]) -> Option<Layout> {
        let mut w = Writer { buf, len: 0 };
        // Path and query.
        w.put(self.api_path)?;
        w.put(self.endpoint.path())?;
        let credential = self.endpoint.credential();
        if credential == Credential::None {
            w.put("?")?;
            w.put(CLIENT_ID_PARAM)?;
            w.put("=")?;
            w.put(self.client_id)?;
        }
        let path_end = w.len;
        // Headers.
        w.header(HEADER_REQUEST_ID, &[self.request_id])?;
        w.header(HEADER_DEVICE_ID, &[self.device_id])?;
        w.header(HEADER_SDK_VERSION, &[SDK_VERSION])?;
        let method = self.endpoint.method();
        if method.has_body() {
            w.header(HEADER_CONTENT_TYPE, &[CONTENT_TYPE_JSON])?;
        }
        if method.sent_as() != method {
            w.header(HEADER_METHOD_OVERRIDE, &[method.as_str()])?;
        }
        match (credential, self.access_token) {
            (Credential::Bearer, Some((token_type, access_token))) => {
                w.header(HEADER_AUTHORIZATION, &[token_type, " ", access_token])?;
            }
            (Credential::None, _) if self.client_auth => {
                let mut b64 = [0u8; BASIC_MAX];
                let basic = self.basic_credentials(&mut b64)?;
                w.header(HEADER_AUTHORIZATION, &["Basic ", basic])?;
            }
            _ => {}
        }
        let headers_end = w.len;
        // Body.
        let body_len = match method.has_body() {
            false => None,
            true => Some(self.write_body(&mut w.buf[headers_end..])?),
        };
        Some(Layout {
            path_end,
            headers_end,
            body_len,
        })
    }

    /// `base64("{client_id}:")` into `out`.
    fn basic_credentials<'o>(&self, out: &'o mut [u8; BASIC_MAX]) -> Option<&'o str> {
        let mut plain = [0u8; ENV_ID_MAX + 1];
        let n = self.client_id.len();
        plain
            .get_mut(..n)?
            .copy_from_slice(self.client_id.as_bytes());
        plain[n] = b':';
        let len = crate::base64::encode(&plain[..=n], out)?;
        core::str::from_utf8(&out[..len]).ok()
    }

    fn write_body(&self, out: &mut [u8]) -> Option<usize> {
        let written = match self.endpoint {
            Endpoint::ProviderToken => {
                let (code, appid) = self.provider?;
                let params = ProviderParams::new(PROVIDER_CODE_TYPE_OPEN_ID, appid);
                to_slice(&ProviderTokenRequest::new(appid, code, params), out)
            }
            Endpoint::SignInWithProvider | Endpoint::ProviderBind => {
                to_slice(&ProviderTokenBody::new(self.provider?.0), out)
            }
            Endpoint::Token => {
                let body = RefreshRequest::new(
                    self.client_id,
                    "",
                    GRANT_REFRESH_TOKEN,
                    self.refresh_token?,
                );
                to_slice(&body, out)
            }
            Endpoint::Revoke => to_slice(&RevokeRequest::new(self.access_token?.1), out),
            // Only the engine's profile update sends it (feature `account`).
            #[cfg(feature = "account")]
            Endpoint::UserProfile => {
                let (name, picture) = self.profile?;
                to_slice(&ProfileUpdateRequest::new(name, picture), out)
            }
            _ => to_slice(&AnonymousSignInRequest::<&str>::default(), out),
        };
        written.ok()
    }
}

/// Longest `base64("{client_id}:")`.
const BASIC_MAX: usize = 4 * (ENV_ID_MAX + 1).div_ceil(3);

impl Layout {
    /// The written request as the host sees it.
    pub(crate) fn into_transmit(
        self,
        request: RequestId,
        endpoint: Endpoint,
        buf: &[u8],
    ) -> Transmit<'_> {
        // Only `&str` pieces were written, so these slices are UTF-8.
        let text = |r: core::ops::Range<usize>| core::str::from_utf8(&buf[r]).unwrap_or("");
        Transmit {
            request,
            endpoint,
            method: endpoint.method().sent_as(),
            path: text(0..self.path_end),
            header_block: text(self.path_end..self.headers_end),
            body: self
                .body_len
                .map(|n| &buf[self.headers_end..self.headers_end + n]),
        }
    }
}

/// Appends strings to the lent buffer.
struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, s: &str) -> Option<()> {
        let end = self.len.checked_add(s.len())?;
        self.buf
            .get_mut(self.len..end)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Some(())
    }

    fn header(&mut self, name: &str, value: &[&str]) -> Option<()> {
        self.put(name)?;
        self.put(": ")?;
        for part in value {
            self.put(part)?;
        }
        self.put("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "account")]
    use crate::wire::Method;

    fn request(endpoint: Endpoint) -> Request<'static> {
        Request {
            endpoint,
            api_path: "/auth",
            client_id: "peer-test-1g2h3i4j5k",
            device_id: "0123456789abcdef",
            request_id: "00112233445566778899aabbccddeeff",
            access_token: Some(("Bearer", "at-1")),
            refresh_token: Some("rt-1"),
            provider: Some(("code-1", "wx0123456789abcdef")),
            client_auth: true,
            profile: Some((Some("Bob \"B\""), Some("https://a.example/b.png"))),
        }
    }

    #[test]
    fn basic_credentials_match_the_sdk_header() {
        // §10 of docs/wire.md: Basic base64("peer-test-1g2h3i4j5k:").
        let mut out = [0u8; BASIC_MAX];
        let r = request(Endpoint::SignInAnonymously);
        assert_eq!(
            r.basic_credentials(&mut out),
            Some("cGVlci10ZXN0LTFnMmgzaTRqNWs6")
        );
        // A client id at capacity still fits.
        let long = "e".repeat(ENV_ID_MAX);
        let r = Request {
            client_id: &long,
            ..request(Endpoint::SignInAnonymously)
        };
        assert_eq!(r.basic_credentials(&mut out).map(str::len), Some(BASIC_MAX));
        // The SDK's padded standard alphabet.
        for (input, expect) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v")] {
            let n = crate::base64::encode(input.as_bytes(), &mut out).unwrap();
            assert_eq!(&out[..n], expect.as_bytes());
        }
    }

    #[test]
    fn each_endpoint_carries_its_own_credential() {
        let mut buf = [0u8; 512];
        for endpoint in Endpoint::ALL {
            let layout = request(endpoint).write(&mut buf).expect("fits");
            let t = layout.into_transmit(RequestId::from_u64(1), endpoint, &buf);
            match endpoint.credential() {
                Credential::Bearer => {
                    assert_eq!(t.header(HEADER_AUTHORIZATION), Some("Bearer at-1"));
                    assert!(!t.path.contains('?'), "{}", t.path);
                }
                _ => {
                    assert_eq!(
                        t.header(HEADER_AUTHORIZATION),
                        Some("Basic cGVlci10ZXN0LTFnMmgzaTRqNWs6")
                    );
                    assert!(
                        t.path.ends_with("?client_id=peer-test-1g2h3i4j5k"),
                        "{}",
                        t.path
                    );
                }
            }
            assert_eq!(t.body.is_none(), !endpoint.method().has_body());
        }
    }

    #[test]
    #[cfg(feature = "account")]
    fn a_profile_change_is_escaped_json_with_only_the_given_fields() {
        let mut buf = [0u8; 512];
        let layout = request(Endpoint::UserProfile).write(&mut buf).unwrap();
        let t = layout.into_transmit(RequestId::from_u64(1), Endpoint::UserProfile, &buf);
        // As the SDK's Mini Program adapter sends it: wx.request has no PATCH.
        assert_eq!(t.method, Method::Post);
        assert_eq!(t.header(HEADER_METHOD_OVERRIDE), Some("PATCH"));
        assert_eq!(t.header(HEADER_CONTENT_TYPE), Some(CONTENT_TYPE_JSON));
        assert_eq!(
            t.body,
            Some(&br#"{"name":"Bob \"B\"","picture":"https://a.example/b.png"}"#[..])
        );
        let r = Request {
            profile: Some((None, Some("https://a.example/c.png"))),
            ..request(Endpoint::UserProfile)
        };
        let layout = r.write(&mut buf).unwrap();
        let t = layout.into_transmit(RequestId::from_u64(1), Endpoint::UserProfile, &buf);
        assert_eq!(
            t.body,
            Some(&br#"{"picture":"https://a.example/c.png"}"#[..])
        );
        // DELETE user/me: bearer, no body, no query.
        let layout = request(Endpoint::DeleteMe).write(&mut buf).unwrap();
        let t = layout.into_transmit(RequestId::from_u64(1), Endpoint::DeleteMe, &buf);
        assert_eq!(
            (t.method, t.path, t.body),
            (Method::Delete, "/auth/v1/user/me", None)
        );
    }

    #[test]
    fn too_small_a_buffer_or_a_missing_token_writes_nothing() {
        let mut buf = [0u8; 64];
        assert!(request(Endpoint::Token).write(&mut buf).is_none());
        let mut buf = [0u8; 512];
        let r = Request {
            refresh_token: None,
            ..request(Endpoint::Token)
        };
        assert!(r.write(&mut buf).is_none());
    }
}
