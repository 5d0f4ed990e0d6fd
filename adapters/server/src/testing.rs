//! Test helpers (feature `testing`): a server started in-process on `127.0.0.1:0` with
//! its own temporary data dir, and a plain HTTP client that sends requests as a test
//! writes them. This crate's integration tests and the `cloudbase-auth` binary's use
//! them; every server a test starts is stopped by the test (or on drop).
//!
//! For benchmarks (the workspace's `benches/`) and tests that need no socket:
//! [`InProcess`] is the server's application without a listener (requests go straight
//! through its router), and [`AccessTokens`] is the server's access-token signer and
//! verifier on a key of its own.
//!
//! Test code: the helpers panic (failing the test) when the server does not answer as
//! they expect.

#![allow(
    clippy::missing_panics_doc,
    clippy::exhaustive_structs,
    reason = "test helpers: a panic is a failed test"
)]

use crate::jwt::{self, Expiry};
use crate::keys::{KeyError, SigningKeys};
use crate::replies::claims_for;
use crate::routes::router;
use crate::secrets::new_id;
use crate::state::AppState;
use crate::store::UserRecord;
use crate::{ServeConfig, Server};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod pg;
pub use pg::{BACKEND_ENV, PgCluster, postgres_backend};

/// The env id the tests use.
pub const ENV: &str = "test-env-1a2b";
/// The Mini Program appId the tests use.
pub const APPID: &str = "wx0123456789abcdef";

/// A reply: status, headers and parsed JSON body (`Value::Null` if not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The reply headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON (`Value::Null` if it is not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
}

impl Reply {
    /// The string member `field` of the body; panics (failing the test) without one.
    pub fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string `{field}` in {}", self.text))
            .to_owned()
    }

    /// Asserts a CloudBase error reply.
    pub fn assert_error(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["error"], error, "{}", self.text);
        assert!(
            self.body["error_code"].as_i64().is_some_and(|c| c != 0),
            "{}",
            self.text
        );
        assert!(self.body["error_description"].is_string(), "{}", self.text);
    }
}

/// A plain HTTP client bound to one base URL.
#[derive(Debug, Clone)]
pub struct Api {
    /// `http://ADDR`.
    pub base: String,
    /// The client (20 s timeout).
    pub http: reqwest::Client,
}

impl Api {
    /// A client of the server at `base`.
    pub fn new(base: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self { base, http }
    }

    /// Sends `req` and reads the whole reply.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// `POST path` with `body`.
    pub async fn post(&self, path: &str, body: &str) -> Reply {
        // No content type, like the browser SDK (which ends up as text/plain).
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .body(body.to_owned()),
        )
        .await
    }

    /// `POST path` with `body` and `Authorization: Bearer token`.
    pub async fn post_bearer(&self, path: &str, token: &str, body: &str) -> Reply {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("authorization", format!("Bearer {token}"))
                .body(body.to_owned()),
        )
        .await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// `GET path` with `Authorization: Bearer token`.
    pub async fn get_bearer(&self, path: &str, token: &str) -> Reply {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .header("authorization", format!("Bearer {token}")),
        )
        .await
    }

    /// An anonymous sign-in in [`ENV`].
    pub async fn sign_in_anonymously(&self) -> Reply {
        self.post(
            &format!("/auth/v1/signin/anonymously?client_id={ENV}"),
            "{}",
        )
        .await
    }

    /// A refresh in [`ENV`].
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        let body = json!({"client_id": ENV, "client_secret": "", "grant_type": "refresh_token",
                          "refresh_token": refresh_token});
        self.post(
            &format!("/auth/v1/token?client_id={ENV}"),
            &body.to_string(),
        )
        .await
    }

    /// `user/me` with `access_token`.
    pub async fn me(&self, access_token: &str) -> Reply {
        self.get_bearer("/auth/v1/user/me", access_token).await
    }

    /// `wx.login` through the emulator: returns (code, openid).
    pub async fn mint_code(&self, appid: &str, openid: Option<&str>) -> (String, String) {
        let mut body = json!({"appid": appid});
        if let Some(o) = openid {
            body["openid"] = json!(o);
        }
        let r = self
            .post("/emulator/v1/wechat/login-code", &body.to_string())
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        (r.str("code"), r.str("openid"))
    }

    /// `provider/token` in [`ENV`] for a `wx.login` code of `appid`.
    pub async fn provider_token(&self, appid: &str, code: &str) -> Reply {
        let body = json!({"provider_id": appid, "provider_code": code,
                          "provider_params": {"provider_code_type": "open_id", "appid": appid}});
        self.post(
            &format!("/auth/v1/provider/token?client_id={ENV}"),
            &body.to_string(),
        )
        .await
    }

    /// Mints a code for `openid` and exchanges it: the provider token.
    pub async fn wechat_provider_token(&self, openid: &str) -> String {
        let (code, _) = self.mint_code(APPID, Some(openid)).await;
        let r = self.provider_token(APPID, &code).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.str("provider_token")
    }

    /// `signin/with/provider` in [`ENV`].
    pub async fn sign_in_with_provider(&self, provider_token: &str) -> Reply {
        self.post(
            &format!("/auth/v1/signin/with/provider?client_id={ENV}"),
            &json!({"provider_token": provider_token}).to_string(),
        )
        .await
    }
}

/// A server running in this process, with its own temporary data dir.
pub struct TestServer {
    /// A client of this server.
    pub api: Api,
    /// The server (`None` once stopped).
    pub server: Option<Server>,
    /// The temporary directory holding the data dir (`data`).
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// Defaults for tests: loopback port 0, fresh data dir; with
    /// [`BACKEND_ENV`]`=postgres`, the store is a database of this process's
    /// [`PgCluster::shared`] cluster, one per `dir` (the same on a restart).
    pub fn config(dir: &Path) -> ServeConfig {
        let mut config = ServeConfig::new(dir.join("data"));
        config.listen = "127.0.0.1:0".parse().expect("addr");
        if postgres_backend() {
            config.database = Some(PgCluster::shared().database(&Self::database_name(dir)));
        }
        config
    }

    /// The name of the PostgreSQL database of the server on `dir`.
    fn database_name(dir: &Path) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(dir.as_os_str().as_encoded_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("t_{hex}")
    }

    /// A server with the [`Self::config`] defaults.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server with the defaults changed by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        Self::start_in(tempfile::tempdir().expect("tempdir"), tweak).await
    }

    /// A server on `dir/data` (which may hold an earlier server's data).
    pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        let mut config = Self::config(dir.path());
        tweak(&mut config);
        let server = Server::start(config).await.expect("server starts");
        let api = Api::new(format!("http://{}", server.local_addr()));
        Self {
            api,
            server: Some(server),
            dir,
        }
    }

    /// Stops this server and starts another on the same data dir with `tweak`.
    pub async fn restart_with(self, tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        let Self { server, dir, .. } = self;
        if let Some(server) = server {
            server.shutdown().await.expect("clean shutdown");
        }
        Self::start_in(dir, tweak).await
    }

    /// How many rows `table` of the store holds (read through a connection of its own).
    pub async fn count_rows(&self, table: &str) -> i64 {
        use sqlx::ConnectOptions as _;
        if postgres_backend() {
            let db = Self::database_name(self.dir.path());
            let n = PgCluster::shared()
                .psql_on(&db, &format!("SELECT COUNT(*) FROM {table}"))
                .expect("count");
            return n.parse().expect("a count");
        }
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(self.data_dir().join(crate::store::DB_FILE))
            .read_only(true);
        let mut conn = options.connect().await.expect("store opens read-only");
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .expect("count");
        n
    }

    /// The data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The key the server signs with now (from its keyring): tests forge tokens with it
    /// (another env, another `alg`, an expired `exp`) that only the claims make invalid.
    pub fn signing_key(&self) -> ed25519_dalek::SigningKey {
        let server = self.server.as_ref().expect("server running");
        let keys = server.state.keys.current();
        keys.signer(crate::state::unix_now())
            .expect("a signing key")
            .secret()
            .clone()
    }

    /// The generated admin token (emulated mode).
    pub fn admin_token(&self) -> String {
        self.server
            .as_ref()
            .and_then(|s| s.admin_token())
            .expect("emulated mode has an admin token")
            .to_owned()
    }

    /// Shuts the server down gracefully.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }
}

/// The server's whole application (router, middleware, store, signing key) on its own
/// temporary data dir, without a listener: a request goes straight through the router
/// with `tower::ServiceExt::oneshot`, no socket involved. Build requests with
/// [`InProcess::request`], which adds the peer address the routes read (a listener
/// would add it); stop with [`InProcess::close`].
pub struct InProcess {
    router: axum::Router,
    state: Arc<AppState>,
    /// The temporary directory holding the data dir (`data`).
    pub dir: tempfile::TempDir,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl InProcess {
    /// Opens the data dir, key and store as [`Server::start`] does, with the
    /// [`TestServer::config`] defaults changed by `tweak`, and builds the router.
    pub async fn open(tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = TestServer::config(dir.path());
        tweak(&mut config);
        let state = crate::open(config).await.expect("server opens").state;
        Self {
            router: router(state.clone()),
            state,
            dir,
        }
    }

    /// The application's router (a cheap clone), ready for `oneshot`.
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// A request from a loopback peer: `method path` with `body` (none when empty) and
    /// `Authorization: Bearer token` when `bearer` is given.
    pub fn request(method: Method, path: &str, bearer: Option<&str>, body: &str) -> Request<Body> {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = bearer {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if !body.is_empty() {
            builder = builder.header(header::CONTENT_LENGTH, body.len());
        }
        let mut request = builder
            .body(Body::from(body.to_owned()))
            .expect("a valid request");
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
        request
    }

    /// Closes the store and releases the data dir (which is then deleted).
    pub async fn close(self) {
        self.state.store.close().await;
        self.state.release_dir_lock();
    }
}

/// The server's access-token signer and verifier (its `jwt` module) on a key of its
/// own: signing is what every credentials reply does, verification what every request
/// with a bearer token does.
pub struct AccessTokens {
    keys: SigningKeys,
    config: ServeConfig,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("kid", &self.keys.kid())
            .finish_non_exhaustive()
    }
}

impl AccessTokens {
    /// Creates a signing key of its own in `dir` (the key file of earlier versions, which
    /// a server imports into its store), for tokens with the issuer and access-token
    /// lifetime of `config`.
    pub fn create(dir: &Path, config: ServeConfig) -> Result<Self, KeyError> {
        Ok(Self {
            keys: SigningKeys::create(dir)?,
            config,
        })
    }

    /// The access token a credentials reply carries for `user` in session family
    /// `family`, issued at `now` (Unix seconds).
    pub fn sign(&self, user: &UserRecord, family: &str, now: u64) -> String {
        let jti = new_id().expect("the OS random source works");
        let claims = claims_for(&self.config, user, family, now, jti);
        jwt::sign(&self.keys, &claims).expect("claims serialize")
    }

    /// The user id (`sub`) of `token` if the server accepts it as a bearer token at
    /// `now` (Unix seconds); `None` if it refuses it (every refusal is the same 401 for
    /// a client).
    pub fn verify(&self, token: &str, now: u64) -> Option<String> {
        jwt::verify(&self.keys, &self.config.issuer, token, now, Expiry::Enforce)
            .ok()
            .map(|claims| claims.sub)
    }
}

/// A JWT's header and claims, decoded (the signature is not checked).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let header = decode_jwt_part(parts.next().expect("header"));
    let claims = decode_jwt_part(parts.next().expect("claims"));
    (header, claims)
}

/// One base64url JWT part as JSON.
pub fn decode_jwt_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

/// JSON as one base64url JWT part.
pub fn encode_jwt_part(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

/// A JWT of `header` and `claims`, EdDSA-signed with `key` whatever the header says.
pub fn sign_jwt(key: &ed25519_dalek::SigningKey, header: &Value, claims: &Value) -> String {
    use ed25519_dalek::Signer as _;
    let input = format!("{}.{}", encode_jwt_part(header), encode_jwt_part(claims));
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}
