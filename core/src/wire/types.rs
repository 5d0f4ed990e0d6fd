//! The JSON shapes of CloudBase Auth, defined once for the client and the server.
//!
//! *Replies* (credentials, provider token, user, error) are parsed by the core with
//! its own JSON reader and serialized by the server with any serde serializer. *Request
//! bodies* are generic over their string type: the core writes them with
//! `serde-json-core` from `&str`, the server reads them with `String`.

use super::reader::{Kind, Reader, Seen};
use crate::capacity::*;
use crate::error::WireError;
use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

type Result<T> = core::result::Result<T, WireError>;

/// Whether `s` can travel unescaped in a JSON string and an HTTP header: non-empty,
/// visible ASCII, no `"` or `\`. Tokens, codes and ids must pass.
pub fn is_token_safe(s: &str) -> bool {
    // A fold without an early exit: the compiler checks many bytes per step, and tokens
    // are hundreds of bytes checked on every reply and snapshot.
    !s.is_empty()
        && !s.bytes().fold(false, |bad, b| {
            bad | !(0x21..=0x7e).contains(&b) | (b == b'"') | (b == b'\\')
        })
}

fn token_field<const N: usize>(
    r: &mut Reader<'_>,
    field: &'static str,
    out: &mut String<N>,
) -> Result<()> {
    r.str_into(field, out)?;
    if is_token_safe(out) {
        Ok(())
    } else {
        Err(WireError::InvalidValue { field })
    }
}

fn top_object(
    body: &[u8],
    member: &mut dyn FnMut(&mut Reader<'_>, &str) -> Result<()>,
) -> Result<()> {
    let mut r = Reader::new(body)?;
    if r.kind()? != Kind::Object {
        return Err(WireError::NotAnObject);
    }
    r.object(member)?;
    r.finish()
}

fn is_empty_str<const N: usize>(s: &String<N>) -> bool {
    s.is_empty()
}

/// A credentials reply (§4 of docs/wire.md): sign-in and refresh answer with it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct Credentials {
    /// The `Authorization` scheme, `Bearer`; defaults to `Bearer` when absent.
    pub token_type: String<TOKEN_TYPE_MAX>,
    /// The access token (a JWT), sent as `Authorization: Bearer …`.
    pub access_token: String<ACCESS_TOKEN_MAX>,
    /// The refresh token; absent means the session cannot be refreshed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String<REFRESH_TOKEN_MAX>>,
    /// Access token lifetime in seconds. Required (the SDK discards replies without).
    pub expires_in: u64,
    /// `anonymous` for anonymous sessions.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub scope: String<SCOPE_MAX>,
    /// The user id.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub sub: String<UID_MAX>,
    /// Group names (strings here, objects in the user reply).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String<SHORT_FIELD_MAX>, GROUPS_MAX>,
}

impl Credentials {
    /// Parses a success body. `access_token` and `expires_in` are required.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let mut c = Credentials::default();
        let mut seen = Seen::default();
        top_object(body, &mut |r, key| match key {
            "token_type" => {
                seen.mark(0, "token_type")?;
                // Empty means "not given" (defaults to Bearer below).
                r.opt_str_into("token_type", &mut c.token_type)?;
                if c.token_type.is_empty() || is_token_safe(&c.token_type) {
                    Ok(())
                } else {
                    Err(WireError::InvalidValue {
                        field: "token_type",
                    })
                }
            }
            "access_token" => {
                seen.mark(1, "access_token")?;
                token_field(r, "access_token", &mut c.access_token)
            }
            "refresh_token" => {
                seen.mark(2, "refresh_token")?;
                if r.kind()? == Kind::Null {
                    return r.skip_value();
                }
                let mut t = String::new();
                token_field(r, "refresh_token", &mut t)?;
                c.refresh_token = Some(t);
                Ok(())
            }
            "expires_in" => {
                seen.mark(3, "expires_in")?;
                c.expires_in = r.unsigned("expires_in")?;
                Ok(())
            }
            "scope" => {
                seen.mark(4, "scope")?;
                r.opt_str_into("scope", &mut c.scope)
            }
            "sub" => {
                seen.mark(5, "sub")?;
                r.opt_str_into("sub", &mut c.sub)
            }
            "groups" => {
                seen.mark(6, "groups")?;
                if r.kind()? == Kind::Null {
                    return r.skip_value();
                }
                if r.kind()? != Kind::Array {
                    return Err(WireError::WrongType { field: "groups" });
                }
                r.array(&mut |r| {
                    let mut g = String::new();
                    r.str_into("groups", &mut g)?;
                    c.groups
                        .push(g)
                        .map_err(|_| WireError::TooLong { field: "groups" })
                })
            }
            _ => r.skip_value(),
        })?;
        if !seen.has(1) {
            return Err(WireError::Missing {
                field: "access_token",
            });
        }
        if !seen.has(3) {
            return Err(WireError::Missing {
                field: "expires_in",
            });
        }
        if c.token_type.is_empty() {
            let _ = c.token_type.push_str(super::endpoint::TOKEN_TYPE_BEARER);
        }
        Ok(c)
    }

    /// Whether `scope` marks an anonymous session.
    pub fn is_anonymous(&self) -> bool {
        self.scope == super::endpoint::SCOPE_ANONYMOUS
    }
}

/// The reply of `provider/token`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct ProviderTokenReply {
    /// The provider token for `signin/with/provider` or `user/provider/bind`. Required.
    pub provider_token: String<PROVIDER_TOKEN_MAX>,
    /// Lifetime in seconds (0 when absent).
    pub expires_in: u64,
}

impl ProviderTokenReply {
    /// Parses a success body; `provider_profile` and other fields are ignored.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let mut p = ProviderTokenReply::default();
        let mut seen = Seen::default();
        top_object(body, &mut |r, key| match key {
            "provider_token" => {
                seen.mark(0, "provider_token")?;
                token_field(r, "provider_token", &mut p.provider_token)
            }
            "expires_in" => {
                seen.mark(1, "expires_in")?;
                p.expires_in = r.unsigned("expires_in")?;
                Ok(())
            }
            _ => r.skip_value(),
        })?;
        if !seen.has(0) {
            return Err(WireError::Missing {
                field: "provider_token",
            });
        }
        Ok(p)
    }
}

/// The reply of `token/introspect` (docs/wire.md §3.1). A live token answers its
/// `token_type`, `client_id`, `sub` and `scope` (documented by CloudBase) plus `exp` and
/// `iat` (RFC 7662 names, UNCONFIRMED on the real server); an expired, revoked, forged or
/// foreign token answers `{}`, which is [`IntrospectReply::default`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct IntrospectReply {
    /// `Bearer` for a live token.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub token_type: String<TOKEN_TYPE_MAX>,
    /// The client (env id) the token was issued to.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub client_id: String<ENV_ID_MAX>,
    /// The user id.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub sub: String<UID_MAX>,
    /// The token's scope (`anonymous` for an anonymous session).
    #[serde(skip_serializing_if = "is_empty_str")]
    pub scope: String<SCOPE_MAX>,
    /// Expiry, Unix seconds (0 when absent).
    #[serde(skip_serializing_if = "is_zero")]
    pub exp: u64,
    /// Issue time, Unix seconds (0 when absent).
    #[serde(skip_serializing_if = "is_zero")]
    pub iat: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl IntrospectReply {
    /// Whether the token was live: a reply for an inactive token has no `sub`.
    pub fn is_active(&self) -> bool {
        !self.sub.is_empty()
    }

    /// Whether the token is anonymous (scope [`SCOPE_ANONYMOUS`](super::SCOPE_ANONYMOUS)).
    pub fn is_anonymous(&self) -> bool {
        self.scope == super::SCOPE_ANONYMOUS
    }

    /// Parses a success body; unknown fields are ignored and `{}` is an inactive token.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let mut p = IntrospectReply::default();
        let mut seen = Seen::default();
        top_object(body, &mut |r, key| match key {
            "token_type" => {
                seen.mark(0, "token_type")?;
                r.str_into("token_type", &mut p.token_type)
            }
            "client_id" => {
                seen.mark(1, "client_id")?;
                r.str_into("client_id", &mut p.client_id)
            }
            "sub" => {
                seen.mark(2, "sub")?;
                token_field(r, "sub", &mut p.sub)
            }
            "scope" => {
                seen.mark(3, "scope")?;
                r.str_into("scope", &mut p.scope)
            }
            "exp" => {
                seen.mark(4, "exp")?;
                p.exp = r.unsigned("exp")?;
                Ok(())
            }
            "iat" => {
                seen.mark(5, "iat")?;
                p.iat = r.unsigned("iat")?;
                Ok(())
            }
            _ => r.skip_value(),
        })?;
        Ok(p)
    }
}

/// A group entry of the user reply.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct UserGroup {
    /// Group id.
    pub id: String<SHORT_FIELD_MAX>,
}

/// A provider identity of the user reply: for a Mini Program user `id` is the appId and
/// `provider_user_id` the openid.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct ProviderIdentity {
    /// Provider id (the Mini Program appId for WeChat).
    pub id: String<SHORT_FIELD_MAX>,
    /// The user's id at the provider (the openid).
    pub provider_user_id: String<OPENID_MAX>,
    /// Display name at the provider.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub name: String<NAME_MAX>,
}

impl ProviderIdentity {
    /// Build an entry, as a server writes it.
    pub fn new(id: String<SHORT_FIELD_MAX>, provider_user_id: String<OPENID_MAX>) -> Self {
        Self {
            id,
            provider_user_id,
            name: String::new(),
        }
    }
}

/// The reply of `GET user/me` (§5 of docs/wire.md). Every field is optional on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct User {
    /// User id.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub sub: String<UID_MAX>,
    /// Nickname (`anonymous` for anonymous users on our server).
    #[serde(skip_serializing_if = "is_empty_str")]
    pub name: String<NAME_MAX>,
    /// Avatar URL.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub picture: String<AVATAR_MAX>,
    /// E-mail address.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub email: String<EMAIL_MAX>,
    /// Phone number, `+86 13800000000` style.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub phone_number: String<SHORT_FIELD_MAX>,
    /// Username.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub username: String<SHORT_FIELD_MAX>,
    /// Gender.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub gender: String<SHORT_FIELD_MAX>,
    /// Groups, as objects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<UserGroup, GROUPS_MAX>,
    /// Linked provider identities.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderIdentity, PROVIDERS_MAX>,
    /// Creation time (server's format, passed through).
    #[serde(skip_serializing_if = "is_empty_str")]
    pub created_at: String<SHORT_FIELD_MAX>,
    /// Last update time.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub updated_at: String<SHORT_FIELD_MAX>,
}

impl User {
    /// Parses a success body; unknown fields are skipped.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let mut u = User::default();
        let mut seen = Seen::default();
        top_object(body, &mut |r, key| {
            let (bit, field): (u32, &'static str) = match key {
                "sub" => (0, "sub"),
                "name" => (1, "name"),
                "picture" => (2, "picture"),
                "email" => (3, "email"),
                "phone_number" => (4, "phone_number"),
                "username" => (5, "username"),
                "gender" => (6, "gender"),
                "groups" => (7, "groups"),
                "providers" => (8, "providers"),
                "created_at" => (9, "created_at"),
                "updated_at" => (10, "updated_at"),
                _ => return r.skip_value(),
            };
            seen.mark(bit, field)?;
            match bit {
                0 => r.opt_str_into(field, &mut u.sub),
                1 => r.opt_str_into(field, &mut u.name),
                2 => r.opt_str_into(field, &mut u.picture),
                3 => r.opt_str_into(field, &mut u.email),
                4 => r.opt_str_into(field, &mut u.phone_number),
                5 => r.opt_str_into(field, &mut u.username),
                6 => r.opt_str_into(field, &mut u.gender),
                7 => parse_groups(r, &mut u.groups),
                8 => parse_providers(r, &mut u.providers),
                9 => r.opt_str_into(field, &mut u.created_at),
                _ => r.opt_str_into(field, &mut u.updated_at),
            }
        })?;
        Ok(u)
    }

    /// The openid of the provider entry for `appid`, or of the first entry when no appid
    /// is known.
    pub fn openid_for(&self, appid: &str) -> Option<&str> {
        self.providers
            .iter()
            .find(|p| appid.is_empty() || p.id == appid)
            .map(|p| p.provider_user_id.as_str())
    }
}

fn array_or_null(r: &mut Reader<'_>, field: &'static str) -> Result<bool> {
    match r.kind()? {
        Kind::Array => Ok(true),
        Kind::Null => r.skip_value().map(|()| false),
        _ => Err(WireError::WrongType { field }),
    }
}

fn parse_groups(r: &mut Reader<'_>, out: &mut Vec<UserGroup, GROUPS_MAX>) -> Result<()> {
    if !array_or_null(r, "groups")? {
        return Ok(());
    }
    r.array(&mut |r| {
        if r.kind()? != Kind::Object {
            return Err(WireError::WrongType { field: "groups" });
        }
        let mut g = UserGroup::default();
        r.object(&mut |r, key| match key {
            "id" => r.opt_str_into("groups.id", &mut g.id),
            _ => r.skip_value(),
        })?;
        out.push(g)
            .map_err(|_| WireError::TooLong { field: "groups" })
    })
}

fn parse_providers(
    r: &mut Reader<'_>,
    out: &mut Vec<ProviderIdentity, PROVIDERS_MAX>,
) -> Result<()> {
    if !array_or_null(r, "providers")? {
        return Ok(());
    }
    r.array(&mut |r| {
        if r.kind()? != Kind::Object {
            return Err(WireError::WrongType { field: "providers" });
        }
        let mut p = ProviderIdentity::default();
        r.object(&mut |r, key| match key {
            "id" => r.opt_str_into("providers.id", &mut p.id),
            "provider_user_id" => {
                r.opt_str_into("providers.provider_user_id", &mut p.provider_user_id)
            }
            "name" => r.opt_str_into("providers.name", &mut p.name),
            _ => r.skip_value(),
        })?;
        out.push(p)
            .map_err(|_| WireError::TooLong { field: "providers" })
    })
}

/// The error body (§6 of docs/wire.md): `{"error", "error_code", "error_description"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct ErrorBody {
    /// snake_case error name, e.g. `invalid_grant`.
    pub error: String<ERROR_NAME_MAX>,
    /// gRPC or business code, e.g. 16 for `unauthenticated`.
    pub error_code: i64,
    /// Human-readable text (cut to fit when parsed).
    pub error_description: String<ERROR_DESCRIPTION_MAX>,
}

impl ErrorBody {
    /// Build an error body, as a server writes it; the description is cut to fit.
    pub fn new(error: &str, error_code: i64, description: &str) -> Self {
        let mut b = ErrorBody {
            error_code,
            ..Default::default()
        };
        for c in error.chars() {
            if b.error.push(c).is_err() {
                break;
            }
        }
        for c in description.chars() {
            if b.error_description.push(c).is_err() {
                break;
            }
        }
        b
    }

    /// Parses an error body. An over-long `error` name is kept empty rather than failing
    /// (the HTTP status still classifies the reply).
    pub fn parse(body: &[u8]) -> Result<Self> {
        let mut e = ErrorBody::default();
        let mut seen = Seen::default();
        top_object(body, &mut |r, key| match key {
            "error" => {
                seen.mark(0, "error")?;
                match r.str_into("error", &mut e.error) {
                    Err(WireError::TooLong { .. }) => {
                        e.error.clear();
                        Ok(())
                    }
                    Err(WireError::WrongType { .. }) => r.skip_value(),
                    other => other,
                }
            }
            "error_code" => {
                seen.mark(1, "error_code")?;
                // Some servers put a symbolic code here; keep the error name and use 0.
                match r.integer_or_numeric_string("error_code") {
                    Ok(code) => e.error_code = code,
                    Err(WireError::WrongType { .. } | WireError::TooLong { .. }) => {
                        e.error_code = 0
                    }
                    Err(other) => return Err(other),
                }
                Ok(())
            }
            "error_description" => {
                seen.mark(2, "error_description")?;
                r.str_lossy("error_description", &mut e.error_description)
            }
            _ => r.skip_value(),
        })?;
        Ok(e)
    }

    /// Whether a 2xx body is really an error: it has a truthy `error`, `error_code` or
    /// `code` (the SDK turns such bodies into errors). Bodies that are not JSON objects
    /// are not error-shaped; their own parser reports them.
    pub fn is_error_shaped(body: &[u8]) -> bool {
        let mut found = false;
        let _ = top_object(body, &mut |r, key| match key {
            "error" | "error_code" | "code" => {
                found |= r.truthy()?;
                Ok(())
            }
            _ => r.skip_value(),
        });
        found
    }
}

/// Body of `signin/anonymously`: `{}`, or `{provider_token}` (anonymous-in-WeChat).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AnonymousSignInRequest<S> {
    /// Optional provider token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_token: Option<S>,
}

/// Body of `token` (refresh).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefreshRequest<S> {
    /// The client id (env id by default).
    pub client_id: S,
    /// Empty for public clients (what the SDK sends).
    #[serde(default)]
    pub client_secret: S,
    /// Always `refresh_token`.
    pub grant_type: S,
    /// The refresh token.
    pub refresh_token: S,
}

/// `provider_params` of a provider token request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderParams<S> {
    /// `open_id` for Mini Program openid sign-in and bind.
    pub provider_code_type: S,
    /// The Mini Program appId.
    pub appid: S,
}

/// Body of `provider/token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderTokenRequest<S> {
    /// The Mini Program's appId (the provider id of a Mini Program).
    pub provider_id: S,
    /// The `wx.login` code.
    pub provider_code: S,
    /// Code type and appId.
    pub provider_params: ProviderParams<S>,
}

impl<S> ProviderTokenRequest<S> {
    /// Build the body from its fields.
    pub fn new(provider_id: S, provider_code: S, provider_params: ProviderParams<S>) -> Self {
        Self {
            provider_id,
            provider_code,
            provider_params,
        }
    }
}

/// Body of `signin/with/provider` and `user/provider/bind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderTokenBody<S> {
    /// The provider token from `provider/token`.
    pub provider_token: S,
}

/// Body of `revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RevokeRequest<S> {
    /// The token to revoke (the SDK sends the access token).
    pub token: S,
}

/// Body of `user/profile` (`PATCH`): the profile fields to change; an absent field is
/// left as it is. The SDK sends whatever object `user.update()` was given; `name` and
/// `picture` are the user object's names for nickname and avatar URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct ProfileUpdateRequest<S> {
    /// New nickname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<S>,
    /// New avatar URL (`http://` or `https://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<S>,
}

impl<S> ProfileUpdateRequest<S> {
    /// Build the body from its fields.
    pub fn new(name: Option<S>, picture: Option<S>) -> Self {
        Self { name, picture }
    }
}

macro_rules! request_ctor {
    ($ty:ident { $($field:ident),* }) => {
        impl<S> $ty<S> {
            /// Build the body from its fields.
            pub fn new($($field: S),*) -> Self {
                Self { $($field),* }
            }
        }
    };
}
request_ctor!(RefreshRequest {
    client_id,
    client_secret,
    grant_type,
    refresh_token
});
request_ctor!(ProviderParams {
    provider_code_type,
    appid
});
request_ctor!(ProviderTokenBody { provider_token });
request_ctor!(RevokeRequest { token });
