//! # cloudbase-auth-server
//!
//! A local CloudBase-compatible auth server around the sans-IO core
//! (`cloudbase-auth-core`): the library behind `cloudbase-auth serve`. Every CloudBase
//! path, JSON shape and header name comes from the core; this crate adds the server's
//! own things (the store, the JWT claims, the WeChat emulator and the admin routes).
//!
//! * **Endpoints**: the core's table (`Endpoint::ALL`) under `/auth` — anonymous and
//!   WeChat sign-in, refresh, `user/me`, revoke, sign-out, bind, and `token/introspect`
//!   for backends — plus the health probe
//!   ([`cloudbase_auth_server_api::HEALTH_PATH`]) and the JWKS at [`routes::JWKS_PATH`].
//! * **Tokens**: Ed25519 JWT access tokens (`kid`, pinned on verification); opaque
//!   refresh tokens stored as SHA-256 hashes, rotated on every refresh with a grace
//!   window and family revocation on reuse.
//! * **WeChat**: emulated in-process (default; also serves `GET /sns/jscode2session`
//!   and the emulator routes of [`emulator_api`], with the console page at
//!   [`console::CONSOLE_DIR`]) or real over HTTP.
//! * **Store**: SQLite (WAL, `synchronous=FULL`) behind the [`store::Store`] trait,
//!   integrity-checked at every start. The data dir is locked for one server at a time
//!   ([`LOCK_FILE`]); a store or key lost next to the other stops the start.
//! * **Signing keys**: in the store, private halves sealed with a key-encryption key;
//!   rotated with `cloudbase-auth keys rotate` (published before they sign, retired keys
//!   verify for one access-token lifetime), re-read periodically and on an unknown kid
//!   ([`keys`], [`command::run_keys`]).
//! * **Envs**: created by their first sign-in only; every route acts only in envs that
//!   exist and are served.
//! * **Malformed HTTP**: request heads are checked before hyper reads them, so they get
//!   CloudBase error bodies too.
//! * **The `serve` command**: its flags, their configuration and exit codes, and running
//!   it ([`command`]).
//!
//! Start with [`Server::start`], stop with [`Server::shutdown`] (graceful: in-flight
//! requests finish, then `--export-on-exit` runs).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cloudbase_auth_server::{ServeConfig, Server};
//! let mut config = ServeConfig::new("./.cloudbase-auth");
//! config.listen = "127.0.0.1:0".parse()?;
//! let server = Server::start(config).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod auth_api;
pub mod command;
pub mod config;
pub mod console;
mod datadir;
pub mod demo;
pub mod emulator_api;
mod error;
#[cfg(any(test, fuzzing))]
pub mod fuzzing;
mod heads;
mod jwt;
pub mod keys;
mod listener;
mod ratelimit;
mod replies;
mod request;
pub mod routes;
mod secrets;
mod state;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transfer;
mod verified;
mod wechat;

pub use config::{DatabaseUrl, RateLimits, ServeConfig, WeChatApps, WeChatConfig, WeChatMode};
pub use datadir::LOCK_FILE;

use state::{AppState, Envs, unix_now};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::{OpenError, PgStore, SharedCodes, SqliteStore, Store, StoreError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wechat::{Code2Session, RealWeChat, WeChatEmulator};

/// How often expired tokens are purged from the store.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Why the server did not start. Each message names the cause and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Emulated mode on a non-loopback address without `--allow-remote-emulator`.
    #[error(
        "refusing to listen on {0} in emulated WeChat mode: the emulator mints a login code for any \
         openid, so anyone who can reach this address could sign in as any user. Listen on a loopback \
         address (e.g. --listen 127.0.0.1:8787), use --wechat-mode real, or pass \
         --allow-remote-emulator if every machine that can reach it is trusted"
    )]
    RemoteEmulator(SocketAddr),
    /// Real mode without any appid:secret.
    #[error(
        "--wechat-mode real needs the Mini Program secrets: set CLOUDBASE_AUTH_WECHAT_APPS=wxAPPID:SECRET \
         or pass --wechat-apps FILE (a JSON object {{\"wxAPPID\": \"SECRET\"}})"
    )]
    NoWeChatApps,
    /// A configured env id is not `[A-Za-z0-9_-]{1,64}`.
    #[error("invalid env id `{0}`: use 1..=64 characters of [A-Za-z0-9_-]")]
    BadEnv(String),
    /// A token lifetime (or the key refresh interval) is zero.
    #[error(
        "token lifetimes and the key refresh interval must be at least 1s (--access-token-ttl, \
         --refresh-token-ttl, --key-refresh)"
    )]
    BadTtl,
    /// The WeChat base URL is not an http(s) URL.
    #[error("--wechat-base-url must start with http:// or https://, got `{0}`")]
    BadWeChatBaseUrl(String),
    /// `--database` is not a PostgreSQL URL.
    #[error(
        "--database must be a postgres:// (or postgresql://) URL, got `{0}`; without --database \
         the store is SQLite in --data-dir"
    )]
    BadDatabase(DatabaseUrl),
    /// The admin token from the environment is unusable.
    #[error("CLOUDBASE_AUTH_ADMIN_TOKEN must be 16..=256 visible ASCII characters")]
    BadAdminToken,
    /// The data dir could not be created.
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another server holds the data dir's lock.
    #[error(
        "data dir {} is in use by another cloudbase-auth server (which holds the lock on {}): two \
         servers on one store would each miss what the other writes. Stop the other server, or \
         give this one its own --data-dir", .0.display(), .0.join(LOCK_FILE).display()
    )]
    DataDirInUse(PathBuf),
    /// The data dir's lock file could not be opened or locked.
    #[error(
        "cannot lock data dir {path}: {source} (the data dir must be on a local file system that \
         supports advisory locks)"
    )]
    DataDirLock {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store failed its integrity check (or is not a SQLite database).
    #[error(
        "refusing to serve a damaged store: {0}. Restore the data dir from a backup; or keep the \
         damaged files for recovery (e.g. `sqlite3 auth.db .recover`), move auth.db, auth.db-wal \
         and auth.db-shm out of the data dir and start with --reset-store to begin with an empty \
         store"
    )]
    StoreDamaged(#[source] OpenError),
    /// The store is missing or empty while a key file shows the data dir was in use.
    #[error(
        "the store {store} is missing or empty, but the key file {key} shows this data dir was \
         used before: its users and sessions are gone. Restore auth.db from a backup, or start with \
         --reset-store to begin with an empty store"
    )]
    StoreMissing {
        /// The database file.
        store: PathBuf,
        /// The key file (key-encryption key, or an earlier version's signing key).
        key: PathBuf,
    },
    /// The store holds users but no signing key (and there is no key file of an earlier
    /// version to import).
    #[error(
        "the store holds {users} users but no signing key, and the signing key file {path} of \
         earlier versions is missing: a new key would make every access token issued so far \
         invalid. Restore the key file from a backup of the data dir, or start with --new-signing-key to generate a new one (access tokens issued so far \
         are then refused until their holders refresh)"
    )]
    KeyMissing {
        /// The signing key file.
        path: PathBuf,
        /// How many users the store holds.
        users: u64,
    },
    /// The signing key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// The store could not be opened or migrated.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    /// `--import` failed; nothing was imported.
    #[error("cannot import {path}: {source}")]
    Import {
        /// The file.
        path: PathBuf,
        /// What was wrong (every refused user).
        source: transfer::ImportError,
    },
    /// The WeChat HTTP client could not be built.
    #[error("cannot build the WeChat client: {0}")]
    WeChatClient(String),
    /// The listen address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another server running? use --listen 127.0.0.1:0 for any free port)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// No entropy for the admin token.
    #[error("the operating system's random source failed")]
    Random,
}

/// Why the shutdown was not clean.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// The HTTP server failed.
    #[error("server error: {0}")]
    Serve(String),
    /// `--export-on-exit` failed.
    #[error("cannot export to {path}: {reason}")]
    Export {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    admin_token_generated: bool,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    serving: JoinHandle<()>,
    purging: JoinHandle<()>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn check_config(config: &ServeConfig) -> Result<(), StartError> {
    if config.wechat.mode == WeChatMode::Emulated
        && !config.listen.ip().is_loopback()
        && !config.allow_remote_emulator
    {
        return Err(StartError::RemoteEmulator(config.listen));
    }
    if config.wechat.mode == WeChatMode::Real && config.wechat.apps.is_empty() {
        return Err(StartError::NoWeChatApps);
    }
    if config.access_token_ttl.as_secs() == 0
        || config.refresh_token_ttl.as_secs() == 0
        || config.key_refresh.as_secs() == 0
    {
        return Err(StartError::BadTtl);
    }
    if let Some(url) = &config.database
        && !url.is_postgres()
    {
        return Err(StartError::BadDatabase(url.clone()));
    }
    let url = &config.wechat.base_url;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(StartError::BadWeChatBaseUrl(url.clone()));
    }
    for env in &config.envs {
        if env.len() > cloudbase_auth_core::capacity::ENV_ID_MAX
            || !cloudbase_auth_core::config::is_valid_id(env)
        {
            return Err(StartError::BadEnv(env.clone()));
        }
    }
    if let Some(token) = &config.admin_token
        && (!(16..=256).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(StartError::BadAdminToken);
    }
    Ok(())
}

impl Server {
    /// Checks `config`, opens (or creates) the data dir, key and store, imports
    /// `config.import`, binds `config.listen` and starts serving in the background of
    /// the current tokio runtime.
    pub async fn start(config: ServeConfig) -> Result<Server, StartError> {
        let opened = open(config).await?;
        let state = opened.state;
        let listen = state.config.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
        let app = routes::router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        // A connection that has not sent a whole request head within the request timeout
        // is closed (slow-loris clients, idle keep-alive connections).
        let header_timeout = state.config.request_timeout;
        let serving = tokio::spawn(listener::serve(listener, app, header_timeout, stopped));
        let purging = tokio::spawn(purge_loop(state.clone()));
        match &state.config.database {
            Some(database) => tracing::info!(
                %addr,
                wechat = ?state.config.wechat.mode,
                data_dir = %state.config.data_dir.display(),
                // Displayed with its password redacted.
                %database,
                "server started"
            ),
            None => tracing::info!(
                %addr,
                wechat = ?state.config.wechat.mode,
                data_dir = %state.config.data_dir.display(),
                "server started"
            ),
        }
        Ok(Server {
            addr,
            admin_token_generated: opened.admin_token_generated,
            state,
            stop: Some(stop),
            serving,
            purging,
        })
    }

    /// The address actually bound (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin bearer token (emulated mode only).
    pub fn admin_token(&self) -> Option<&str> {
        self.state.admin_token.as_deref()
    }

    /// Whether the admin token was generated at start (and so must be shown once).
    pub fn admin_token_generated(&self) -> bool {
        self.admin_token_generated
    }

    /// Stops accepting connections, lets in-flight requests finish (at most the request
    /// timeout plus 5 s), exports users if configured, and closes the store.
    pub async fn shutdown(mut self) -> Result<(), ShutdownError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.purging.abort();
        let grace = self.state.config.request_timeout + Duration::from_secs(5);
        let served = match tokio::time::timeout(grace, &mut self.serving).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ShutdownError::Serve(e.to_string())),
            Err(_) => {
                self.serving.abort();
                tracing::warn!("in-flight requests did not finish in time; stopped anyway");
                Ok(())
            }
        };
        let exported = match &self.state.config.export_on_exit {
            Some(path) => match transfer::export_file(self.state.store.as_ref(), path).await {
                Ok(n) => {
                    tracing::info!(users = n, path = %path.display(), "exported users");
                    Ok(())
                }
                Err(reason) => Err(ShutdownError::Export {
                    path: path.clone(),
                    reason,
                }),
            },
            None => Ok(()),
        };
        self.state.store.close().await;
        self.state.release_dir_lock();
        tracing::info!("server stopped");
        served.and(exported)
    }
}

/// A server's state, ready to serve.
struct Opened {
    state: Arc<AppState>,
    admin_token_generated: bool,
}

/// Everything [`Server::start`] does before binding: checks the config, creates and
/// locks the data dir, checks what it holds, opens the store (checking its integrity)
/// and the key, imports, sets WeChat up.
async fn open(config: ServeConfig) -> Result<Opened, StartError> {
    check_config(&config)?;
    let dir = &config.data_dir;
    let dir_error = |source| StartError::DataDir {
        path: dir.clone(),
        source,
    };
    datadir::create(dir).map_err(dir_error)?;
    if let Some(url) = config.database.clone() {
        // Several instances share the database; the data dir holds only the default
        // key-encryption key, which they share too (read-only once created), so it is not
        // locked. The database's start lock makes the first instance set the keys up.
        let pg = Arc::new(PgStore::connect(&url, pool_wait(&config)).await?);
        let store: Arc<dyn Store> = pg.clone();
        let shared: Arc<dyn SharedCodes> = pg.clone();
        let opened = match pg.lock_start().await {
            Ok(lock) => {
                let opened = open_with_store(config, store.clone(), None, Some(shared)).await;
                lock.release().await;
                opened
            }
            Err(e) => Err(e.into()),
        };
        if opened.is_err() {
            store.close().await;
        }
        return opened;
    }
    let lock = datadir::DirLock::acquire(dir).map_err(|e| match e {
        datadir::LockError::Held => StartError::DataDirInUse(dir.clone()),
        datadir::LockError::Io(source) => StartError::DataDirLock {
            path: dir.clone(),
            source,
        },
    })?;
    let found = datadir::Contents::read(dir).map_err(dir_error)?;
    let used_by = [keys::KEK_FILE, keys::KEY_FILE]
        .into_iter()
        .zip([found.kek, found.key])
        .find_map(|(file, present)| present.then(|| dir.join(file)));
    if let Some(key) = used_by
        && found.store != datadir::StoreFile::Present
    {
        if !config.reset_store {
            return Err(StartError::StoreMissing {
                store: dir.join(store::DB_FILE),
                key,
            });
        }
        tracing::warn!(
            data_dir = %dir.display(),
            "starting with a new, empty store next to an existing signing key (--reset-store)"
        );
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).await.map_err(|e| match e {
        OpenError::Store(e) => StartError::Store(e),
        damaged => StartError::StoreDamaged(damaged),
    })?);
    match open_with_store(config, store.clone(), Some(lock), None).await {
        Ok(opened) => Ok(opened),
        Err(e) => {
            store.close().await;
            Err(e)
        }
    }
}

/// The key-encryption key, with the store's signing keys ready for it: an earlier
/// version's key file imported as the first key, or a first key generated when the
/// store has none (and no users, or `--new-signing-key`); refused when keys or users
/// show that a key was lost.
pub(crate) async fn prepare_keys(
    config: &ServeConfig,
    store: &dyn Store,
) -> Result<keys::Kek, StartError> {
    let dir = &config.data_dir;
    let now = unix_now();
    let rows = store.signing_keys().await?;
    let loaded = keys::Kek::load(&config.kek, dir)?;
    if loaded.is_some() && config.kek == keys::KekSource::DataDir {
        warn_if_open(&dir.join(keys::KEK_FILE));
    }
    if loaded.is_none() && !rows.is_empty() && !config.new_signing_key {
        return Err(keys::KeyError::KekMissing(dir.join(keys::KEK_FILE)).into());
    }
    let (total, openable) = match &loaded {
        Some(kek) => keys::KeySet::from_rows(&rows, kek, 0).counts(),
        None => (rows.len(), 0),
    };
    if openable > 0
        && let Some(kek) = loaded
    {
        return Ok(kek);
    }
    if total > 0 && !config.new_signing_key {
        return Err(keys::KeyError::WrongKek(config.kek.describe(dir)).into());
    }
    let legacy = if total == 0 {
        keys::SigningKeys::load(dir)?
    } else {
        None
    };
    if legacy.is_none() && total == 0 {
        let users = store.count_users().await?;
        if users > 0 {
            if !config.new_signing_key {
                return Err(StartError::KeyMissing {
                    path: dir.join(keys::KEY_FILE),
                    users,
                });
            }
            tracing::warn!(
                users,
                "generating a new signing key (--new-signing-key): access tokens issued before \
                 are refused until their holders refresh"
            );
        }
    }
    // From here on a key is sealed: a missing default key file is created only now, so a
    // refused start leaves the data dir as it was.
    let kek = match loaded {
        Some(kek) => kek,
        None => keys::Kek::create(dir)?,
    };
    if let Some(key) = legacy {
        warn_if_open(&dir.join(keys::KEY_FILE));
        tracing::info!(
            kid = key.kid(),
            "imported the signing key file of an earlier version into the store"
        );
        // Signing at once, as it did before the upgrade.
        store
            .add_signing_key(&keys::new_row(&kek, &key, now, 0)?)
            .await?;
        return Ok(kek);
    }
    let key = keys::SigningKeys::generate()?;
    let row = keys::new_row(&kek, &key, now, now)?;
    if total > 0 {
        tracing::warn!(
            "adding a new signing key (--new-signing-key): no key of the store opens with the \
             key-encryption key; their access tokens verify until they expire"
        );
        store.rotate_signing_key(&row, now).await?;
    } else {
        store.add_signing_key(&row).await?;
    }
    Ok(kek)
}

/// Warns when a secret file may be read by other users. A warning rather than a refusal:
/// the data dir itself is 0700, and a file mounted from a secret store may have a mode
/// this server cannot change.
fn warn_if_open(path: &std::path::Path) {
    match datadir::open_to_others(path) {
        Ok(Some(mode)) => tracing::warn!(
            path = %path.display(),
            mode = %format_args!("{mode:04o}"),
            "the key file is accessible to other users: whoever reads it (and the store) can \
             forge access tokens for every user; run `chmod 600` on it"
        ),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the key file's permissions")
        }
    }
}

/// A duration in whole seconds, as the store keeps times.
pub(crate) fn ttl_secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// How long a request waits for a database connection: well within the request
/// timeout, so a database that is down is answered with a 503, not a 408.
fn pool_wait(config: &ServeConfig) -> Duration {
    (config.request_timeout / 3).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// [`open`] once the store is open (which the caller closes on failure). `lock` is the
/// data dir's (SQLite); `shared` is the store of emulated WeChat codes when several
/// instances share the store (PostgreSQL).
async fn open_with_store(
    config: ServeConfig,
    store: Arc<dyn Store>,
    lock: Option<datadir::DirLock>,
    shared: Option<Arc<dyn SharedCodes>>,
) -> Result<Opened, StartError> {
    let kek = prepare_keys(&config, store.as_ref()).await?;
    let keys = keys::Keyring::read(store.clone(), kek, ttl_secs(config.access_token_ttl)).await?;
    for env in &config.envs {
        store.ensure_env(env, unix_now()).await?;
    }
    if let Some(path) = &config.import {
        let n = transfer::import_file(store.as_ref(), path, unix_now())
            .await
            .map_err(|source| StartError::Import {
                path: path.clone(),
                source,
            })?;
        tracing::info!(users = n, path = %path.display(), "imported users");
    }
    let envs = Envs::new(&config.envs, store.list_envs().await?, shared.is_some());

    let (emulator, wechat, admin_token, generated): (
        Option<Arc<WeChatEmulator>>,
        Arc<dyn Code2Session>,
        Option<String>,
        bool,
    ) = match config.wechat.mode {
        WeChatMode::Real => {
            let real = RealWeChat::new(
                &config.wechat.base_url,
                config.wechat.apps.clone(),
                config.wechat.request_timeout,
            )
            .map_err(|e| StartError::WeChatClient(e.to_string()))?;
            (None, Arc::new(real), None, false)
        }
        _ => {
            let emulator = Arc::new(WeChatEmulator::new(
                config.wechat.apps.clone(),
                config.wechat.emulator_quota_per_minute,
                config.wechat.emulator_code_ttl,
                shared,
            ));
            let (token, generated) = match &config.admin_token {
                Some(t) => (t.clone(), false),
                None => (
                    secrets::OpaqueToken::generate()
                        .map_err(|_| StartError::Random)?
                        .as_str()
                        .to_owned(),
                    true,
                ),
            };
            (Some(emulator.clone()), emulator, Some(token), generated)
        }
    };

    let state = Arc::new(AppState {
        envs,
        dir_lock: std::sync::Mutex::new(lock),
        ip_limit: ratelimit::RateLimiter::new(config.rate_limits.per_ip_per_minute),
        device_limit: ratelimit::RateLimiter::new(config.rate_limits.per_device_per_minute),
        config,
        store,
        keys,
        verified: verified::VerifiedTokens::new(verified::CAPACITY),
        wechat,
        emulator,
        admin_token,
    });
    Ok(Opened {
        state,
        admin_token_generated: generated,
    })
}

/// The server's periodic work: purging expired tokens, and re-reading the signing keys
/// (a `keys rotate` made here or on another server of the same store).
async fn purge_loop(state: Arc<AppState>) {
    let mut purges = tokio::time::interval(PURGE_EVERY);
    let mut key_reads = tokio::time::interval(state.config.key_refresh);
    key_reads.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = purges.tick() => match state.store.purge_expired(unix_now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(rows = n, "purged expired tokens"),
                Err(e) => tracing::warn!(error = %e, "purging expired tokens failed"),
            },
            _ = key_reads.tick() => {
                if let Err(e) = state.keys.reread().await {
                    tracing::warn!(error = %e, "re-reading the signing keys failed");
                }
            }
        }
    }
}
