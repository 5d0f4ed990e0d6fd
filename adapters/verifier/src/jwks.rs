//! The server's signing keys: the JWKS fetched, cached, and fetched again when stale or
//! when a token names a key id the cache lacks (at most once per refresh interval).

use crate::VerifyError;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Largest JWKS document read (ours is about 200 bytes).
const JWKS_MAX: usize = 64 * 1024;

/// The usable keys of one fetch, by key id.
pub(crate) type Keys = HashMap<String, DecodingKey>;

#[derive(Clone)]
struct Fetched {
    keys: Arc<Keys>,
    /// When `keys` were fetched.
    at: Instant,
    /// Until when no fetch is tried (set after a failed one, so an unreachable server
    /// costs one attempt per refresh interval, not one per request).
    quiet_until: Instant,
    /// Bumped on every change, so a caller that waited for the fetch lock can tell.
    generation: u64,
}

pub(crate) struct KeyCache {
    http: reqwest::Client,
    url: String,
    refresh_interval: Duration,
    max_age: Duration,
    current: RwLock<Option<Fetched>>,
    /// Held while fetching, so concurrent misses cause one fetch.
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("url", &self.url)
            .field("refresh_interval", &self.refresh_interval)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl KeyCache {
    pub(crate) fn new(
        http: reqwest::Client,
        url: String,
        refresh_interval: Duration,
        max_age: Duration,
    ) -> Self {
        Self {
            http,
            url,
            refresh_interval,
            max_age,
            current: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self) -> Option<Fetched> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the cached keys answer for `kid` without a fetch: a fetch failed less
    /// than the refresh interval ago; or they hold `kid` and are not stale; or they lack
    /// it but were fetched less than the refresh interval ago (the key id is then
    /// unknown, and asking again so soon would not help).
    fn settled(&self, cached: &Fetched, kid: &str) -> bool {
        if Instant::now() < cached.quiet_until {
            return true;
        }
        if cached.keys.contains_key(kid) {
            cached.at.elapsed() < self.max_age
        } else {
            cached.at.elapsed() < self.refresh_interval
        }
    }

    fn store(&self, fetched: Fetched) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(fetched);
    }

    /// The keys to look `kid` up in: the cached ones, or freshly fetched ones when the
    /// cache is empty, stale, or lacks `kid` and was fetched longer than the refresh
    /// interval ago. A failed fetch falls back to cached keys when there are any.
    pub(crate) async fn keys_for(&self, kid: &str) -> Result<Arc<Keys>, VerifyError> {
        let seen = self.snapshot();
        if let Some(cached) = &seen
            && self.settled(cached, kid)
        {
            return Ok(cached.keys.clone());
        }
        let _fetching = self.fetching.lock().await;
        // Another caller fetched (or failed to) while this one waited: take its outcome.
        let cached = self.snapshot();
        if let Some(c) = &cached
            && seen.as_ref().map(|s| s.generation) != Some(c.generation)
        {
            return Ok(c.keys.clone());
        }
        let generation = cached.as_ref().map_or(0, |c| c.generation + 1);
        match self.fetch().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                let now = Instant::now();
                self.store(Fetched {
                    keys: keys.clone(),
                    at: now,
                    quiet_until: now,
                    generation,
                });
                Ok(keys)
            }
            Err(e) => match cached {
                Some(c) => {
                    let keys = c.keys.clone();
                    self.store(Fetched {
                        quiet_until: Instant::now() + self.refresh_interval,
                        generation,
                        ..c
                    });
                    Ok(keys)
                }
                None => Err(e),
            },
        }
    }

    async fn fetch(&self) -> Result<Keys, VerifyError> {
        let unavailable = |e: reqwest::Error| VerifyError::JwksUnavailable(e.to_string());
        let mut response = self.http.get(&self.url).send().await.map_err(unavailable)?;
        if !response.status().is_success() {
            return Err(VerifyError::JwksUnavailable(format!(
                "{} answered {}",
                self.url,
                response.status()
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
            if body.len() + chunk.len() > JWKS_MAX {
                return Err(VerifyError::JwksInvalid(format!(
                    "larger than {JWKS_MAX} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        parse(&body)
    }
}

#[derive(serde::Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

/// The Ed25519 signing keys of a JWKS document, by kid. Keys of other types, without a
/// kid, or marked for encryption are skipped; a document with none left is invalid.
pub(crate) fn parse(body: &[u8]) -> Result<Keys, VerifyError> {
    let doc: Document = serde_json::from_slice(body)
        .map_err(|e| VerifyError::JwksInvalid(format!("not a JWKS document: {e}")))?;
    let mut keys = Keys::new();
    for value in doc.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else {
            continue;
        };
        let usable = okp.curve == EllipticCurve::Ed25519
            && jwk
                .common
                .key_algorithm
                .is_none_or(|a| a == KeyAlgorithm::EdDSA)
            && jwk
                .common
                .public_key_use
                .as_ref()
                .is_none_or(|u| *u == PublicKeyUse::Signature);
        let Some(kid) = jwk.common.key_id.clone().filter(|_| usable) else {
            continue;
        };
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.insert(kid, key);
        }
    }
    if keys.is_empty() {
        return Err(VerifyError::JwksInvalid(
            "no Ed25519 signing key with a kid".to_owned(),
        ));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_ed25519_signing_keys_with_a_kid() {
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let doc = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "a", "alg": "EdDSA", "use": "sig"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "b"},
            {"kty": "OKP", "crv": "Ed25519", "x": x},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "enc", "use": "enc"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "weird"}
        ]});
        let keys = parse(doc.to_string().as_bytes()).unwrap();
        let mut kids: Vec<_> = keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["a", "b"]);
        for bad in [&b"[]"[..], b"{}", b"{\"keys\":[]}", b"not json"] {
            assert!(matches!(parse(bad), Err(VerifyError::JwksInvalid(_))));
        }
    }
}
