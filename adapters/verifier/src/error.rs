//! Why a token was refused, or the keys could not be had.

use jsonwebtoken::errors::ErrorKind;

/// Why [`Verifier::verify`](crate::Verifier::verify) refused a token (one variant per
/// reason), or why the keys or the server could not be reached. Messages never quote
/// the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The request carries no `Authorization: Bearer <token>` header.
    #[error("no access token: expected an `Authorization: Bearer <token>` header")]
    MissingToken,
    /// Not a compact JWT (three base64url parts, JSON header and claims), or too long.
    #[error("access token is not a well-formed JWT")]
    Malformed,
    /// The header names another algorithm than `EdDSA` (`none`, `HS256`, `RS256`, …).
    #[error("access token algorithm is not EdDSA")]
    WrongAlgorithm,
    /// The header names no key id.
    #[error("access token names no key id (kid)")]
    MissingKeyId,
    /// The key id is not in the server's JWKS, even after fetching it again.
    #[error("access token was signed by a key the server does not publish")]
    UnknownKey,
    /// The signature does not match (the token was altered, or signed by someone else).
    #[error("access token signature is invalid")]
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("access token expired")]
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    #[error("access token is not valid yet")]
    NotYetValid,
    /// `iss` is not the expected issuer.
    #[error("access token was issued by another issuer")]
    WrongIssuer,
    /// `aud` is another env than the verifier's.
    #[error("access token belongs to another env")]
    WrongEnv,
    /// A required claim is missing or has the wrong type.
    #[error("access token claims are incomplete: {0}")]
    BadClaims(String),
    /// The JWKS could not be fetched (network, status, size) and none is cached.
    #[error("fetching the JWKS failed: {0}")]
    JwksUnavailable(String),
    /// The JWKS document is not a key set holding at least one Ed25519 key with a kid.
    #[error("the JWKS is not usable: {0}")]
    JwksInvalid(String),
    /// The introspection request failed or its reply was not understood.
    #[error("token introspection failed: {0}")]
    Introspect(String),
    /// The server's base URL is not an http(s) URL.
    #[error("server base URL `{0}` is not an http(s) URL")]
    BadBaseUrl(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
}

impl VerifyError {
    pub(crate) fn from_jwt(e: jsonwebtoken::errors::Error) -> Self {
        match e.into_kind() {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongEnv,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Self::WrongAlgorithm,
            ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
                Self::BadClaims(claim)
            }
            _ => Self::Malformed,
        }
    }

    /// Whether the token itself was refused (the caller must sign in again or refresh),
    /// as opposed to the server or its keys being out of reach (try again later).
    pub fn is_token_error(&self) -> bool {
        !matches!(
            self,
            Self::JwksUnavailable(_)
                | Self::JwksInvalid(_)
                | Self::Introspect(_)
                | Self::BadBaseUrl(_)
                | Self::Http(_)
        )
    }
}
