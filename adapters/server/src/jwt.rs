//! Access tokens: hand-written compact JWTs signed with Ed25519 (`alg` = `EdDSA`).
//!
//! Written by hand rather than through a generic JWT library so that verification has
//! exactly one accepted shape: the header must say `EdDSA` and name the id of one of our
//! published keys, and nothing in the token can pick another algorithm or key (no
//! `none`, no HMAC with the public key, no embedded JWK). The claim set follows §4 of
//! docs/wire.md.

use super::keys::{KeySet, SigningKeys, verify_signature};
use super::secrets::b64url;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cloudbase_auth_core::capacity::ACCESS_TOKEN_MAX;
use serde::{Deserialize, Serialize};

/// The only algorithm accepted.
const ALG: &str = "EdDSA";

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

/// `meta` claim: WeChat identity of the user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ClaimsMeta {
    #[serde(rename = "wxOpenId", default, skip_serializing_if = "Option::is_none")]
    pub(crate) wx_open_id: Option<String>,
    #[serde(rename = "wxUnionId", default, skip_serializing_if = "Option::is_none")]
    pub(crate) wx_union_id: Option<String>,
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    /// The env id (client id) the token was issued to.
    pub(crate) aud: String,
    pub(crate) exp: u64,
    pub(crate) iat: u64,
    /// Unique per token (two tokens minted in one second still differ).
    pub(crate) jti: String,
    pub(crate) scope: String,
    pub(crate) groups: Vec<String>,
    pub(crate) name: String,
    /// `anonymous`, or the Mini Program appid the user signed in with.
    pub(crate) provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) provider_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) meta: Option<ClaimsMeta>,
    pub(crate) user_id: String,
    pub(crate) project_id: String,
    pub(crate) roles: Vec<String>,
    pub(crate) user_type: String,
    pub(crate) client_type: String,
    pub(crate) is_system_admin: bool,
    /// Session family id: revoking the family revokes every token that names it.
    pub(crate) sid: String,
}

/// Why a token was refused. Every variant is a 401 `unauthenticated` for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtError {
    #[error("access token is not a well-formed JWT")]
    Malformed,
    #[error("access token algorithm is not EdDSA")]
    WrongAlgorithm,
    #[error("access token was signed by an unknown key")]
    UnknownKey,
    #[error("access token signature is invalid")]
    BadSignature,
    #[error("access token was issued by someone else")]
    WrongIssuer,
    #[error("access token expired")]
    Expired,
}

/// The keys a token may be signed by.
pub(crate) trait VerifyingKeys {
    /// The public key of `kid` if it verifies tokens at `now` (Unix seconds).
    fn verifier(&self, kid: &str, now: u64) -> Option<ed25519_dalek::VerifyingKey>;
}

impl VerifyingKeys for KeySet {
    fn verifier(&self, kid: &str, now: u64) -> Option<ed25519_dalek::VerifyingKey> {
        KeySet::verifier(self, kid, i64::try_from(now).unwrap_or(i64::MAX)).copied()
    }
}

impl VerifyingKeys for SigningKeys {
    fn verifier(&self, kid: &str, _now: u64) -> Option<ed25519_dalek::VerifyingKey> {
        (kid == self.kid()).then(|| self.public())
    }
}

/// Signs `claims` into a compact JWT.
pub(crate) fn sign(keys: &SigningKeys, claims: &AccessClaims) -> Result<String, serde_json::Error> {
    let header = Header {
        alg: ALG.to_owned(),
        kid: Some(keys.kid().to_owned()),
        typ: Some("JWT".to_owned()),
    };
    let mut token = b64url(&serde_json::to_vec(&header)?);
    token.push('.');
    token.push_str(&b64url(&serde_json::to_vec(claims)?));
    let signature = keys.sign(token.as_bytes());
    token.push('.');
    token.push_str(&b64url(&signature));
    Ok(token)
}

/// Whether expiry is checked (revocation ignores it: an expired token still names the
/// session to end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    Enforce,
    Ignore,
}

/// Verifies `token` against our keys and issuer, pinning the algorithm and key id.
/// (The handlers use [`verify_keyed`], whose key id the verified-token cache keeps.)
#[cfg(any(test, feature = "testing"))]
pub(crate) fn verify(
    keys: &impl VerifyingKeys,
    issuer: &str,
    token: &str,
    now: u64,
    expiry: Expiry,
) -> Result<AccessClaims, JwtError> {
    verify_keyed(keys, issuer, token, now, expiry).map(|(_, claims)| claims)
}

/// [`verify`], also returning the id of the key that signed the token.
pub(crate) fn verify_keyed(
    keys: &impl VerifyingKeys,
    issuer: &str,
    token: &str,
    now: u64,
    expiry: Expiry,
) -> Result<(String, AccessClaims), JwtError> {
    if token.len() > ACCESS_TOKEN_MAX {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Header = decode_json(h)?;
    if header.alg != ALG {
        return Err(JwtError::WrongAlgorithm);
    }
    let kid = header.kid.ok_or(JwtError::UnknownKey)?;
    let public = keys.verifier(&kid, now).ok_or(JwtError::UnknownKey)?;
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let signed = &token[..h.len() + 1 + c.len()];
    if !verify_signature(&public, signed.as_bytes(), &signature) {
        return Err(JwtError::BadSignature);
    }
    let claims: AccessClaims = decode_json(c)?;
    if claims.iss != issuer {
        return Err(JwtError::WrongIssuer);
    }
    if expiry == Expiry::Enforce && claims.exp <= now {
        return Err(JwtError::Expired);
    }
    Ok((kid, claims))
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// Claims of an anonymous user of env `env-1`, expiring at `exp`: the unit tests' sample.
#[cfg(test)]
pub(crate) fn sample_claims(exp: u64) -> AccessClaims {
    AccessClaims {
        iss: "iss".into(),
        sub: "1000000000000000001".into(),
        aud: "env-1".into(),
        exp,
        iat: 100,
        jti: "j".into(),
        scope: "anonymous".into(),
        groups: vec!["anonymous".into()],
        name: "anonymous".into(),
        provider: "anonymous".into(),
        provider_type: None,
        meta: None,
        user_id: "1000000000000000001".into(),
        project_id: "env-1".into(),
        roles: vec![],
        user_type: "anonymous".into(),
        client_type: "client_user".into(),
        is_system_admin: false,
        sid: "family".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SigningKeys::create(dir.path()).unwrap();
        let t = sign(&keys, &sample_claims(200)).unwrap();
        assert!(cloudbase_auth_core::wire::is_token_safe(&t));
        assert_eq!(
            verify(&keys, "iss", &t, 150, Expiry::Enforce).unwrap(),
            sample_claims(200)
        );
        assert_eq!(
            verify(&keys, "iss", &t, 200, Expiry::Enforce),
            Err(JwtError::Expired)
        );
        assert!(verify(&keys, "iss", &t, 999, Expiry::Ignore).is_ok());
        assert_eq!(
            verify(&keys, "other", &t, 150, Expiry::Enforce),
            Err(JwtError::WrongIssuer)
        );
        let other_dir = tempfile::tempdir().unwrap();
        let other = SigningKeys::create(other_dir.path()).unwrap();
        assert_eq!(
            verify(&other, "iss", &t, 150, Expiry::Enforce),
            Err(JwtError::UnknownKey)
        );
        // Flip one claim byte: the signature no longer matches.
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let mut c = sample_claims(200);
        c.scope = "user".into();
        parts[1] = b64url(&serde_json::to_vec(&c).unwrap());
        let forged = parts.join(".");
        assert_eq!(
            verify(&keys, "iss", &forged, 150, Expiry::Enforce),
            Err(JwtError::BadSignature)
        );
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert_eq!(
                verify(&keys, "iss", bad, 150, Expiry::Enforce),
                Err(JwtError::Malformed)
            );
        }
    }
}
