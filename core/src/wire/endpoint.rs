//! The CloudBase Auth endpoints our flows use (§3 of docs/wire.md), their
//! headers and query rules, in one table. The server routes with these constants.

/// The default API path prefix (`apiPath`), joined in front of every endpoint path.
pub const DEFAULT_API_PATH: &str = "/auth";
/// Default region of the default origin.
pub const DEFAULT_REGION: &str = "ap-shanghai";
/// Query parameter that names the client (env id unless a client id is configured).
pub const CLIENT_ID_PARAM: &str = "client_id";
/// Query parameter of [`Endpoint::TokenIntrospect`] naming the token to check (HTTP-SKILL's
/// `?token=`); without it the bearer token of the request is checked.
pub const TOKEN_PARAM: &str = "token";

/// `x-request-id`: 32 lowercase hex characters, fresh per request.
pub const HEADER_REQUEST_ID: &str = "x-request-id";
/// `x-device-id`: stable per installation, 16..=48 characters.
pub const HEADER_DEVICE_ID: &str = "x-device-id";
/// `x-sdk-version`: who is calling.
pub const HEADER_SDK_VERSION: &str = "x-sdk-version";
/// `authorization`: `Bearer <access token>` or `Basic base64(client_id:)`.
pub const HEADER_AUTHORIZATION: &str = "authorization";
/// `accept-language` (the SDK sends `zh-CN`; servers must allow it in CORS).
pub const HEADER_ACCEPT_LANGUAGE: &str = "accept-language";
/// `x-http-method-override`: WeChat's `wx.request` cannot send `PATCH`, so the SDK's
/// Mini Program adapter sends `POST` with this header set to `PATCH`; servers take both.
pub const HEADER_METHOD_OVERRIDE: &str = "x-http-method-override";
/// `content-type` of request bodies.
pub const HEADER_CONTENT_TYPE: &str = "content-type";
/// The content type we send (the server parses JSON whatever it says).
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Our `x-sdk-version` value.
pub const SDK_VERSION: &str = concat!("cloudbase-auth-core/", env!("CARGO_PKG_VERSION"));

/// The `grant_type` of a refresh request.
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
/// `provider_code_type` for a Mini Program openid sign-in or bind.
pub const PROVIDER_CODE_TYPE_OPEN_ID: &str = "open_id";
/// The `scope` value that marks an anonymous session (the only one the SDK branches on).
pub const SCOPE_ANONYMOUS: &str = "anonymous";
/// The `scope` of a non-anonymous (WeChat) user. UNCONFIRMED on the real server; the
/// client treats any scope other than [`SCOPE_ANONYMOUS`] the same way.
pub const SCOPE_USER: &str = "user";
/// The `token_type` of credentials (the `Authorization` scheme).
pub const TOKEN_TYPE_BEARER: &str = "Bearer";

/// HTTP method of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// `GET`, no body.
    Get,
    /// `POST`, JSON body.
    Post,
    /// `PATCH`, JSON body.
    Patch,
    /// `DELETE`, no body.
    Delete,
}

impl Method {
    /// Upper-case method name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// The method a request is sent with: `PATCH` goes as `POST` with
    /// [`HEADER_METHOD_OVERRIDE`] (as the SDK's Mini Program adapter sends it, since
    /// `wx.request` has no `PATCH`); the others as themselves.
    pub const fn sent_as(self) -> Method {
        match self {
            Method::Patch => Method::Post,
            m => m,
        }
    }

    /// Whether requests with this method carry a JSON body.
    pub const fn has_body(self) -> bool {
        matches!(self, Method::Post | Method::Patch)
    }
}

/// Which `Authorization` header an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// None; the request carries `?client_id=` instead.
    None,
    /// `Bearer <access token>` ("withCredentials" in the SDK); no `client_id` query.
    Bearer,
}

/// One CloudBase Auth endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /v1/signin/anonymously` → credentials.
    SignInAnonymously,
    /// `POST /v1/provider/token` (WeChat code → provider token).
    ProviderToken,
    /// `POST /v1/signin/with/provider` (provider token → credentials).
    SignInWithProvider,
    /// `POST /v1/signin/wechat/noauth` (the SDK's `signInWithWechat(params)`).
    SignInWeChatNoAuth,
    /// `POST /v1/token` (refresh).
    Token,
    /// `GET /v1/user/me`.
    UserMe,
    /// `POST /v1/revoke` (default sign-out; access token in the body).
    Revoke,
    /// `POST /v1/user/signout` (sign-out with params).
    UserSignOut,
    /// `POST /v1/user/provider/bind` (link a provider to the current user).
    ProviderBind,
    /// `GET /v1/token/introspect` (is this access token live, and whose is it?). Called
    /// by a Mini Program's own backend, never by the SDK or the engine.
    TokenIntrospect,
    /// `PATCH /v1/user/profile` (the SDK's `user.update({...})`): changes the user's
    /// profile fields ([`crate::wire::ProfileUpdateRequest`]), answers with the
    /// updated user object.
    UserProfile,
    /// `DELETE /v1/user/me` (the SDK's `auth.deleteMe()`): deletes the signed-in user,
    /// its identities and every session on every device.
    DeleteMe,
}

impl Endpoint {
    /// Every endpoint, for routers.
    pub const ALL: [Endpoint; 12] = [
        Endpoint::SignInAnonymously,
        Endpoint::ProviderToken,
        Endpoint::SignInWithProvider,
        Endpoint::SignInWeChatNoAuth,
        Endpoint::Token,
        Endpoint::UserMe,
        Endpoint::Revoke,
        Endpoint::UserSignOut,
        Endpoint::ProviderBind,
        Endpoint::TokenIntrospect,
        Endpoint::UserProfile,
        Endpoint::DeleteMe,
    ];

    /// Path below the API path prefix.
    pub const fn path(self) -> &'static str {
        match self {
            Endpoint::SignInAnonymously => "/v1/signin/anonymously",
            Endpoint::ProviderToken => "/v1/provider/token",
            Endpoint::SignInWithProvider => "/v1/signin/with/provider",
            Endpoint::SignInWeChatNoAuth => "/v1/signin/wechat/noauth",
            Endpoint::Token => "/v1/token",
            Endpoint::UserMe => "/v1/user/me",
            Endpoint::Revoke => "/v1/revoke",
            Endpoint::UserSignOut => "/v1/user/signout",
            Endpoint::ProviderBind => "/v1/user/provider/bind",
            Endpoint::TokenIntrospect => "/v1/token/introspect",
            Endpoint::UserProfile => "/v1/user/profile",
            // The same path as `UserMe`; the method tells them apart.
            Endpoint::DeleteMe => "/v1/user/me",
        }
    }

    /// HTTP method.
    pub const fn method(self) -> Method {
        match self {
            Endpoint::UserMe | Endpoint::TokenIntrospect => Method::Get,
            Endpoint::UserProfile => Method::Patch,
            Endpoint::DeleteMe => Method::Delete,
            _ => Method::Post,
        }
    }

    /// Which `Authorization` the endpoint takes. Sign-in, refresh, revoke and provider
    /// token requests never carry the access token.
    pub const fn credential(self) -> Credential {
        match self {
            Endpoint::UserMe
            | Endpoint::UserSignOut
            | Endpoint::ProviderBind
            | Endpoint::TokenIntrospect
            | Endpoint::UserProfile
            | Endpoint::DeleteMe => Credential::Bearer,
            _ => Credential::None,
        }
    }

    /// The first endpoint whose path (below the API prefix) is `path`, if any. Two
    /// endpoints share `/v1/user/me`; [`Self::from_route`] tells them apart.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        Self::ALL.into_iter().find(|e| e.path() == path)
    }

    /// The endpoint of this method and path (below the API prefix), if any.
    pub fn from_route(method: Method, path: &str) -> Option<Endpoint> {
        Self::ALL
            .into_iter()
            .find(|e| e.path() == path && e.method() == method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_reference() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::from_route(e.method(), e.path()), Some(e));
            assert!(Endpoint::from_path(e.path()).is_some());
            assert!(e.path().starts_with("/v1/"));
        }
        assert_eq!(Endpoint::UserMe.method(), Method::Get);
        assert_eq!(Endpoint::Token.credential(), Credential::None);
        assert_eq!(Endpoint::Revoke.credential(), Credential::None);
        assert_eq!(Endpoint::ProviderBind.credential(), Credential::Bearer);
        assert_eq!(Endpoint::TokenIntrospect.method(), Method::Get);
        assert_eq!(
            Endpoint::from_route(Method::Delete, "/v1/user/me"),
            Some(Endpoint::DeleteMe)
        );
        assert_eq!(
            Endpoint::from_route(Method::Patch, "/v1/user/profile"),
            Some(Endpoint::UserProfile)
        );
        assert_eq!(Endpoint::UserProfile.credential(), Credential::Bearer);
        assert_eq!(Endpoint::DeleteMe.credential(), Credential::Bearer);
        assert_eq!(
            Endpoint::from_path("/v1/token/introspect"),
            Some(Endpoint::TokenIntrospect)
        );
    }
}
