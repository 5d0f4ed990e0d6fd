//! # cloudbase-auth-verifier
//!
//! Tells a Mini Program's own Rust backend who is calling. The Mini Program signs in with
//! `cloudbase-auth serve` and sends its access token as `Authorization: Bearer <token>`;
//! [`Verifier::verify`] checks that token offline against the server's published keys
//! and answers the caller's [`Claims`]: uid, env, how they signed in, their openid.
//!
//! * The server's JWKS ([`JWKS_PATH`]) is fetched on first use, cached, fetched again
//!   when older than [`VerifierBuilder::max_age`], and on a token naming a key it does
//!   not hold, at most once per [`VerifierBuilder::refresh_interval`] (a server that
//!   rotated its key is picked up; a flood of forged key ids is not a flood of fetches).
//! * The algorithm is pinned to `EdDSA`; `exp` and `nbf` are checked with a small
//!   [`VerifierBuilder::leeway`]; the issuer must be the server's and the audience the
//!   env this backend serves.
//! * Each way a token can fail is its own [`VerifyError`] variant.
//!
//! An access token stays valid until it expires (2 h by default) even when its session
//! is signed out: checking signatures cannot see revocation. A backend that must notice
//! a sign-out at once asks the server with [`Verifier::introspect`].
//!
//! Feature `tower`: [`VerifyLayer`] puts the [`Claims`] into the request extensions and
//! answers 401 with a CloudBase error body otherwise. Feature `axum`: [`Claims`] is an
//! extractor (the state provides the [`Verifier`]), and [`VerifyError`] a response.
//!
//! ```no_run
//! # async fn run(token: &str) -> Result<(), cloudbase_auth_verifier::VerifyError> {
//! use cloudbase_auth_verifier::{LoginKind, Verifier};
//!
//! let verifier = Verifier::builder("http://127.0.0.1:8787", "my-env-1a2b").build()?;
//! let claims = verifier.verify(token).await?;
//! if claims.login == LoginKind::WeChat {
//!     println!("{} (openid {:?})", claims.uid, claims.openid);
//! }
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod claims;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod jwks;
#[cfg(feature = "tower")]
mod layer;

pub use claims::{Claims, LoginKind};
pub use cloudbase_auth_core::wire::IntrospectReply;
pub use cloudbase_auth_server_api::{DEFAULT_ISSUER, JWKS_PATH};
pub use error::VerifyError;
#[cfg(feature = "tower")]
pub use layer::{VerifyLayer, VerifyService, bearer_token};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cloudbase_auth_core::capacity::ACCESS_TOKEN_MAX;
use cloudbase_auth_core::wire::{
    CLIENT_ID_PARAM, DEFAULT_API_PATH, Endpoint, HEADER_AUTHORIZATION, TOKEN_TYPE_BEARER,
};
use jsonwebtoken::{Algorithm, Validation};
use std::sync::Arc;
use std::time::Duration;

/// The only signature algorithm accepted (the server signs with Ed25519).
const ALG: &str = "EdDSA";

/// Settings of a [`Verifier`]; [`VerifierBuilder::build`] makes one.
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifierBuilder {
    base_url: String,
    env: String,
    issuer: String,
    leeway: Duration,
    refresh_interval: Duration,
    max_age: Duration,
    timeout: Duration,
    http: Option<reqwest::Client>,
}

impl VerifierBuilder {
    /// The expected `iss` claim (default [`DEFAULT_ISSUER`], the server's default; set it
    /// when the server runs with `--issuer`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// Clock skew allowed on `exp` and `nbf` (default 10 s; whole seconds count).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Shortest time between two JWKS fetches caused by unknown key ids (default 60 s).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Age after which the cached JWKS is fetched again before use (default 1 h). When
    /// that fetch fails, the cached keys stay in use.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Time limit of one request to the server (default 5 s). Ignored with
    /// [`Self::http_client`], whose own settings apply.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The HTTP client to fetch with (a shared one, or one with its own TLS roots).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Checks the base URL and builds the verifier. No request is made yet.
    pub fn build(self) -> Result<Verifier, VerifyError> {
        let base = reqwest::Url::parse(&self.base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| VerifyError::BadBaseUrl(self.base_url.clone()))?;
        let origin = base.as_str().trim_end_matches('/').to_owned();
        let jwks_url = format!("{origin}{JWKS_PATH}");
        let introspect_url = format!(
            "{origin}{DEFAULT_API_PATH}{}",
            Endpoint::TokenIntrospect.path()
        );
        let http = match self.http {
            Some(client) => client,
            None => reqwest::Client::builder()
                .timeout(self.timeout)
                .build()
                .map_err(|e| VerifyError::Http(e.to_string()))?,
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_audience(&[&self.env]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
        Ok(Verifier {
            inner: Arc::new(Inner {
                env: self.env,
                validation,
                introspect_url,
                keys: jwks::KeyCache::new(
                    http.clone(),
                    jwks_url,
                    self.refresh_interval,
                    self.max_age,
                ),
                http,
            }),
        })
    }
}

/// Verifies access tokens of one env against one server. Cheap to clone (the key cache
/// is shared); build one per process and hand out clones.
#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    env: String,
    validation: Validation,
    introspect_url: String,
    keys: jwks::KeyCache,
    http: reqwest::Client,
}

/// The part of the JWT header we decide on before any key is looked at.
#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

impl Verifier {
    /// Settings for a verifier of access tokens issued for `env` by the server at
    /// `base_url` (its origin, e.g. `http://127.0.0.1:8787`).
    pub fn builder(base_url: impl Into<String>, env: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            base_url: base_url.into(),
            env: env.into(),
            issuer: DEFAULT_ISSUER.to_owned(),
            leeway: Duration::from_secs(10),
            refresh_interval: Duration::from_secs(60),
            max_age: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
            http: None,
        }
    }

    /// The env whose tokens this verifier accepts.
    pub fn env(&self) -> &str {
        &self.inner.env
    }

    /// Verifies `token` (the bare JWT, without `Bearer `) and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        if token.len() > ACCESS_TOKEN_MAX {
            return Err(VerifyError::Malformed);
        }
        let header = parse_header(token)?;
        if header.alg != ALG {
            return Err(VerifyError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(VerifyError::MissingKeyId)?;
        let keys = self.inner.keys.keys_for(&kid).await?;
        let key = keys.get(&kid).ok_or(VerifyError::UnknownKey)?;
        let data = jsonwebtoken::decode::<claims::RawClaims>(token, key, &self.inner.validation)
            .map_err(VerifyError::from_jwt)?;
        Ok(Claims::from_raw(data.claims))
    }

    /// Asks the server whether `token` is live right now (not expired, not signed out,
    /// of this env): `Some` with its `sub`, `scope` and times if so, `None` otherwise.
    /// One request per call; [`Self::verify`] makes none once the keys are cached.
    pub async fn introspect(&self, token: &str) -> Result<Option<IntrospectReply>, VerifyError> {
        let response = self
            .inner
            .http
            .get(&self.inner.introspect_url)
            .query(&[(CLIENT_ID_PARAM, self.inner.env.as_str())])
            .header(HEADER_AUTHORIZATION, format!("{TOKEN_TYPE_BEARER} {token}"))
            .send()
            .await
            .map_err(|e| VerifyError::Introspect(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| VerifyError::Introspect(e.without_url().to_string()))?;
        let reply = cloudbase_auth_core::wire::decode_reply(status, &body, IntrospectReply::parse)
            .map_err(|e| VerifyError::Introspect(e.to_string()))?;
        Ok(reply.is_active().then_some(reply))
    }
}

fn parse_header(token: &str) -> Result<Header, VerifyError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| VerifyError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| VerifyError::Malformed)
}
