//! Secrets the server mints: opaque tokens from the OS random source, their hashes,
//! and the sealed successor of a rotated refresh token.
//!
//! Refresh and provider tokens are 32 random bytes, base64url (43 characters, token
//! safe), stored only as `SHA-256(token)`.
//!
//! **Why the successor is sealed, not derived.** Inside the grace window a rotated
//! refresh token must yield the *same* successor again, yet the store must not hold it
//! in plaintext. Deriving it (e.g. HMAC of the predecessor) would make successors a
//! function of a server key instead of fresh OS randomness. Instead the store keeps
//! `successor XOR SHA-256("…successor-pad…" ‖ predecessor)`: a one-time pad (each
//! predecessor seals exactly one successor) that only the holder of the predecessor
//! can compute, since the store keeps no more than a differently-prefixed hash of it.
//! A leaked database therefore reveals no usable token, and no extra key file is
//! needed. The recovered successor is checked against its stored hash in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes in a refresh or provider token.
pub(crate) const TOKEN_BYTES: usize = 32;
/// A SHA-256 digest.
pub(crate) type Hash = [u8; 32];

const SUCCESSOR_PAD_DOMAIN: &[u8] = b"cloudbase-auth/refresh-successor-pad/v1\0";

/// The OS random source failed (no entropy): the server cannot mint secrets.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the operating system's random source failed")]
pub(crate) struct RandomError;

/// Fills `N` bytes from the operating system's random source.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|_| RandomError)?;
    Ok(buf)
}

/// base64url without padding.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An opaque bearer secret (refresh token, provider token, admin token).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct OpaqueToken(String);

impl std::fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpaqueToken(..)")
    }
}

impl OpaqueToken {
    /// A fresh token from the OS random source.
    pub(crate) fn generate() -> Result<Self, RandomError> {
        Ok(Self::from_bytes(&random_bytes::<TOKEN_BYTES>()?))
    }

    fn from_bytes(bytes: &[u8; TOKEN_BYTES]) -> Self {
        Self(b64url(bytes))
    }

    /// The text handed to the client.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// What the store keeps.
    pub(crate) fn hash(&self) -> Hash {
        hash_token(&self.0)
    }
}

/// `SHA-256(token)`: the only form in which tokens are stored or looked up.
pub(crate) fn hash_token(token: &str) -> Hash {
    Sha256::digest(token.as_bytes()).into()
}

fn successor_pad(predecessor: &str) -> Hash {
    let mut h = Sha256::new();
    h.update(SUCCESSOR_PAD_DOMAIN);
    h.update(predecessor.as_bytes());
    h.finalize().into()
}

/// Seals `successor` so that only the holder of `predecessor` can recover it.
pub(crate) fn seal_successor(predecessor: &str, successor: &OpaqueToken) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(successor.as_str()).ok()?;
    let pad = successor_pad(predecessor);
    (bytes.len() == TOKEN_BYTES).then(|| bytes.iter().zip(pad).map(|(b, p)| b ^ p).collect())
}

/// Recovers the successor sealed with `predecessor`, if it matches `expected` (its
/// stored hash; compared in constant time).
pub(crate) fn unseal_successor(
    predecessor: &str,
    sealed: &[u8],
    expected: &[u8],
) -> Option<OpaqueToken> {
    let bytes: [u8; TOKEN_BYTES] = sealed.try_into().ok()?;
    let pad = successor_pad(predecessor);
    let mut plain = [0u8; TOKEN_BYTES];
    for (i, out) in plain.iter_mut().enumerate() {
        *out = bytes[i] ^ pad[i];
    }
    let token = OpaqueToken::from_bytes(&plain);
    ct_eq(&token.hash(), expected).then_some(token)
}

/// Constant-time equality (lengths are not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A 19-digit user id, like CloudBase's.
pub(crate) fn new_uid() -> Result<String, RandomError> {
    let r = u64::from_le_bytes(random_bytes::<8>()?);
    Ok((1_000_000_000_000_000_000 + r % 9_000_000_000_000_000_000).to_string())
}

/// A public random identifier (token ids): 16 bytes, base64url.
pub(crate) fn new_id() -> Result<String, RandomError> {
    Ok(b64url(&random_bytes::<16>()?))
}

/// Random bytes of a session family id (96 bits: as unguessable as ever).
const FAMILY_RANDOM_BYTES: usize = 12;

/// A session family id: the creation time in milliseconds as 12 lowercase hex digits
/// (sorts as the time does), then [`FAMILY_RANDOM_BYTES`] random bytes, base64url; 28
/// token-safe characters. Ids minted one after another sort one after another, so
/// the store's indexes on family ids grow at one end instead of dirtying a random
/// page of each index per sign-in.
pub(crate) fn new_family_id(now_millis: u64) -> Result<String, RandomError> {
    // 12 hex digits hold milliseconds until the year 10889.
    let mut id = format!("{:012x}", now_millis & 0xffff_ffff_ffff);
    id.push_str(&b64url(&random_bytes::<FAMILY_RANDOM_BYTES>()?));
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_ids_sort_by_time_and_stay_random() {
        let a = new_family_id(1_700_000_000_000).unwrap();
        let b = new_family_id(1_700_000_000_001).unwrap();
        let c = new_family_id(1_800_000_000_000).unwrap();
        assert_eq!(a.len(), 28);
        assert!(cloudbase_auth_core::wire::is_token_safe(&a));
        assert!(a < b && b < c, "{a} {b} {c}");
        let twin = new_family_id(1_700_000_000_000).unwrap();
        assert_eq!(a[..12], twin[..12]);
        assert_ne!(a, twin, "the random part differs");
    }

    #[test]
    fn tokens_are_43_token_safe_chars() {
        let t = OpaqueToken::generate().unwrap();
        assert_eq!(t.as_str().len(), 43);
        assert!(cloudbase_auth_core::wire::is_token_safe(t.as_str()));
        assert_ne!(t, OpaqueToken::generate().unwrap());
    }

    #[test]
    fn only_the_predecessor_unseals_the_successor() {
        let pred = OpaqueToken::generate().unwrap();
        let next = OpaqueToken::generate().unwrap();
        let sealed = seal_successor(pred.as_str(), &next).unwrap();
        let back = unseal_successor(pred.as_str(), &sealed, &next.hash()).unwrap();
        assert_eq!(back, next);
        let other = OpaqueToken::generate().unwrap();
        assert!(unseal_successor(other.as_str(), &sealed, &next.hash()).is_none());
        assert!(unseal_successor(pred.as_str(), &sealed[1..], &next.hash()).is_none());
        // The sealed bytes are not the token's bytes.
        assert_ne!(sealed, URL_SAFE_NO_PAD.decode(next.as_str()).unwrap());
    }

    #[test]
    fn uids_have_19_digits() {
        for _ in 0..100 {
            let uid = new_uid().unwrap();
            assert_eq!(uid.len(), 19, "{uid}");
            assert!(uid.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
