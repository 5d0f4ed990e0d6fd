//! Every bounded size in the crate, in one place.
//!
//! Strings live in `heapless` buffers of these capacities (bytes of UTF-8). A value that
//! does not fit is rejected with a typed error ([`crate::WireError::TooLong`],
//! [`crate::ApiMisuse::InputTooLong`]), never truncated. The figures come from the
//! measurements in §7 of docs/wire.md: an RS256 access token with the full CloudBase
//! claim set is 1,027 (anonymous) to 1,060 (WeChat) characters.

/// Longest access token (a JWT) the engine holds; ~2× the longest one measured.
pub const ACCESS_TOKEN_MAX: usize = 2048;
/// Longest refresh token (opaque; ours are 43 characters, typical ones 32–128).
pub const REFRESH_TOKEN_MAX: usize = 256;
/// Longest provider token (from `provider/token`) and longest `wx.login` code; one slot
/// holds the code, then the provider token that replaces it.
pub const PROVIDER_TOKEN_MAX: usize = 512;
/// Longest token type (the `Authorization` scheme, `Bearer` in practice).
pub const TOKEN_TYPE_MAX: usize = 16;
/// Longest scope string in a credentials reply.
pub const SCOPE_MAX: usize = 64;
/// Longest user id (`sub`).
pub const UID_MAX: usize = 64;
/// Longest env id or client id.
pub const ENV_ID_MAX: usize = 64;
/// Longest region name (`ap-shanghai`).
pub const REGION_MAX: usize = 32;
/// Longest API path prefix (`/auth` by default).
pub const API_PATH_MAX: usize = 32;
/// Device id: the official SDK reuses a stored value only when it is 16..=48 long.
pub const DEVICE_ID_MAX: usize = 48;
/// Shortest acceptable stored device id (see [`DEVICE_ID_MAX`]).
pub const DEVICE_ID_MIN: usize = 16;
/// Longest Mini Program appId (`wx` + 16 hex in practice).
pub const APPID_MAX: usize = 32;
/// Longest WeChat openid (about 28 in practice).
pub const OPENID_MAX: usize = 64;
/// Longest nickname (`name` in the user object): WeChat nicknames are at most about
/// 20 characters, up to 4 bytes each in UTF-8.
pub const NAME_MAX: usize = 64;
/// Longest avatar URL (`picture`).
pub const AVATAR_MAX: usize = 256;
/// Longest e-mail address kept.
pub const EMAIL_MAX: usize = 64;
/// Longest short text field of the user object the wire types carry (phone, gender,
/// username, group and provider ids, timestamps).
pub const SHORT_FIELD_MAX: usize = 64;
/// Most group entries in a credentials reply or user object.
pub const GROUPS_MAX: usize = 8;
/// Most provider identities in a user object.
pub const PROVIDERS_MAX: usize = 4;
/// Longest CloudBase error name (`error`) kept from an error body.
pub const ERROR_NAME_MAX: usize = 48;
/// Longest `error_description` kept from an error body.
pub const ERROR_DESCRIPTION_MAX: usize = 160;
/// Longest response body the codec accepts; longer bodies are rejected unread.
pub const RESPONSE_BODY_MAX: usize = 16 * 1024;
/// Deepest JSON nesting the codec walks (unknown fields included).
pub const JSON_DEPTH_MAX: usize = 16;
/// Longest `path?query` of a request.
pub const PATH_MAX: usize = 128;
/// Largest request body the engine writes: `revoke` carries the whole access token.
/// Tokens and codes are checked to need no JSON escaping, so this bound is exact.
pub const REQUEST_BODY_MAX: usize = ACCESS_TOKEN_MAX + 512;
/// Callers that may wait on one in-flight operation (single-flight waiters).
pub const WAITERS_MAX: usize = 8;
/// Outputs that may be queued between two drains. One input queues at most
/// `WAITERS_MAX` + 5 (every waiter and the initiator complete, two state changes, a
/// snapshot, a request).
pub const OUTPUTS_MAX: usize = WAITERS_MAX + 6;
/// Largest header block of a request: the `Bearer` authorization plus the fixed headers.
pub const REQUEST_HEADERS_MAX: usize = TOKEN_TYPE_MAX + ACCESS_TOKEN_MAX + 256;
/// Largest request as laid out in the poll buffer: path, headers, body.
pub const REQUEST_MAX: usize = PATH_MAX + REQUEST_HEADERS_MAX + REQUEST_BODY_MAX;
/// Smallest buffer a host must lend to `poll_output`: fits any request and any snapshot.
pub const POLL_BUFFER_MIN: usize = if crate::snapshot::SNAPSHOT_MAX > REQUEST_MAX {
    crate::snapshot::SNAPSHOT_MAX
} else {
    REQUEST_MAX
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capacity_fits_u16() {
        // `ApiMisuse::InputTooLong::max` is a u16 to keep errors small.
        for cap in [
            ACCESS_TOKEN_MAX,
            REFRESH_TOKEN_MAX,
            PROVIDER_TOKEN_MAX,
            POLL_BUFFER_MIN,
        ] {
            assert!(u16::try_from(cap).is_ok());
        }
        assert_eq!(POLL_BUFFER_MIN, 5_008);
    }
}
