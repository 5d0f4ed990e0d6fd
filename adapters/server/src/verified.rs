//! A bounded cache of access tokens this server verified: a client sends the same
//! bearer token with every request until it refreshes, and checking its Ed25519
//! signature again is most of what `user/me` costs. The cache only replaces that
//! signature check; whether the session is still live (not signed out, not revoked, its
//! user not deleted or disabled) is asked of the store on every request as before.
//!
//! * Keyed by the SHA-256 of the whole token: a hit is the very token verified before
//!   (a forged token with another signature is another key), and no token is kept in
//!   the clear.
//! * Only successes are cached, never a refusal.
//! * A hit is honoured only while the token is unexpired and the key that signed it
//!   still verifies (a key removed from the key set stops its cached tokens too).
//! * At most [`CAPACITY`] entries; past that the least useful are evicted.

use super::jwt::{AccessClaims, VerifyingKeys};
use super::secrets::{Hash, hash_token};
use quick_cache::sync::Cache;
use std::sync::Arc;

/// Most tokens kept (an entry is a few hundred bytes: a few MB at most).
pub(crate) const CAPACITY: usize = 16 * 1024;

/// What a verified token said, and the key that signed it.
#[derive(Debug)]
struct Entry {
    kid: String,
    claims: AccessClaims,
}

/// The cache; shared by every request of one server.
pub(crate) struct VerifiedTokens {
    cache: Cache<Hash, Arc<Entry>>,
}

/// A lookup's key, to insert under after a full verification.
pub(crate) struct Lookup(Hash);

impl VerifiedTokens {
    /// An empty cache of at most `capacity` tokens.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            cache: Cache::new(capacity.max(1)),
        }
    }

    /// The claims of `token` if it was verified before, is unexpired at `now` and its
    /// key still verifies at `now`; otherwise the key to [`insert`](Self::insert) it
    /// under once verified.
    pub(crate) fn get(
        &self,
        keys: &impl VerifyingKeys,
        token: &str,
        now: u64,
    ) -> Result<AccessClaims, Lookup> {
        let key = hash_token(token);
        match self.cache.get(&key) {
            Some(entry) if entry.claims.exp > now && keys.verifier(&entry.kid, now).is_some() => {
                Ok(entry.claims.clone())
            }
            Some(_) => {
                self.cache.remove(&key);
                Err(Lookup(key))
            }
            None => Err(Lookup(key)),
        }
    }

    /// Records that the token of `lookup` verified, signed by `kid`, with `claims`.
    pub(crate) fn insert(&self, lookup: Lookup, kid: String, claims: &AccessClaims) {
        let entry = Entry {
            kid,
            claims: claims.clone(),
        };
        self.cache.insert(lookup.0, Arc::new(entry));
    }

    /// How many tokens are cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{self, Expiry, sample_claims};
    use crate::keys::SigningKeys;

    /// Verifies through the cache as the handlers do.
    fn verify(
        cache: &VerifiedTokens,
        keys: &SigningKeys,
        token: &str,
        now: u64,
    ) -> Result<AccessClaims, jwt::JwtError> {
        match cache.get(keys, token, now) {
            Ok(claims) => Ok(claims),
            Err(lookup) => {
                let (kid, claims) = jwt::verify_keyed(keys, "iss", token, now, Expiry::Enforce)?;
                cache.insert(lookup, kid, &claims);
                Ok(claims)
            }
        }
    }

    #[test]
    fn hits_only_the_same_unexpired_token_of_a_live_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SigningKeys::create(dir.path()).unwrap();
        let token = jwt::sign(&keys, &sample_claims(200)).unwrap();
        let cache = VerifiedTokens::new(8);
        assert!(cache.get(&keys, &token, 150).is_err(), "empty cache");
        assert_eq!(
            verify(&cache, &keys, &token, 150).unwrap(),
            sample_claims(200)
        );
        assert_eq!(cache.get(&keys, &token, 151).ok(), Some(sample_claims(200)));

        // Expired: not a hit (and dropped), and the full check refuses it.
        assert!(cache.get(&keys, &token, 200).is_err());
        assert_eq!(cache.len(), 0);
        assert_eq!(
            verify(&cache, &keys, &token, 200),
            Err(jwt::JwtError::Expired)
        );
        assert_eq!(cache.len(), 0, "a refusal is never cached");

        // Another key set that does not know the signing key: no hit.
        assert!(verify(&cache, &keys, &token, 150).is_ok());
        let other_dir = tempfile::tempdir().unwrap();
        let other = SigningKeys::create(other_dir.path()).unwrap();
        assert!(cache.get(&other, &token, 150).is_err());
        assert_eq!(
            verify(&cache, &other, &token, 150),
            Err(jwt::JwtError::UnknownKey)
        );
    }

    #[test]
    fn a_forged_twin_is_not_a_hit() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SigningKeys::create(dir.path()).unwrap();
        let token = jwt::sign(&keys, &sample_claims(200)).unwrap();
        let cache = VerifiedTokens::new(8);
        assert!(verify(&cache, &keys, &token, 150).is_ok());
        // Same header and claims, another signature.
        let (signed, _) = token.rsplit_once('.').unwrap();
        let forged = format!("{signed}.{}", crate::secrets::b64url(&[0u8; 64]));
        assert!(cache.get(&keys, &forged, 150).is_err());
        assert_eq!(
            verify(&cache, &keys, &forged, 150),
            Err(jwt::JwtError::BadSignature)
        );
    }

    #[test]
    fn holds_at_most_its_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SigningKeys::create(dir.path()).unwrap();
        let cache = VerifiedTokens::new(4);
        for i in 0..64 {
            let mut c = sample_claims(200);
            c.jti = format!("j{i}");
            let token = jwt::sign(&keys, &c).unwrap();
            assert_eq!(verify(&cache, &keys, &token, 150).unwrap().jti, c.jti);
        }
        assert!(cache.len() <= 4, "{} entries", cache.len());
    }
}
