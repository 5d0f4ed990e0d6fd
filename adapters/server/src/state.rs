//! What every handler shares: settings, store, signing keys, WeChat, limits, envs.

use super::config::ServeConfig;
use super::datadir::DirLock;
use super::error::ApiError;
use super::keys::Keyring;
use super::ratelimit::RateLimiter;
use super::store::{Store, StoreError};
use super::verified::VerifiedTokens;
use super::wechat::{Code2Session, WeChatEmulator};
use cloudbase_auth_core::capacity::ENV_ID_MAX;
use cloudbase_auth_core::config::is_valid_id;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The env ids this server serves.
///
/// An env exists once its first user does: a sign-in creates it (in the same
/// transaction as the user), and nothing else does. Every other request must name an
/// env that exists (and, with `--env`, is configured), so requests that anyone can send
/// without signing in never write to the store.
#[derive(Debug)]
pub(crate) struct Envs {
    /// `Some`: only these (`--env`); `None`: any valid id, created by its first sign-in.
    fixed: Option<HashSet<String>>,
    /// The envs of the store, loaded at start and kept up to date in memory. On SQLite
    /// this server is the store's only writer (the data dir is locked), so the set is
    /// complete.
    known: Mutex<HashSet<String>>,
    /// Whether other servers write to the store too (PostgreSQL): an env missing from
    /// [`Envs::known`] may have been created by another instance since, so the store is
    /// asked before one is taken for absent.
    shared: bool,
}

impl Envs {
    /// `configured` (`--env`, empty for any) over the envs `stored` in the store, which
    /// other servers also write to when `shared`.
    pub(crate) fn new(configured: &[String], stored: Vec<String>, shared: bool) -> Self {
        let fixed: HashSet<String> = configured.iter().cloned().collect();
        Self {
            known: Mutex::new(stored.into_iter().collect()),
            fixed: (!fixed.is_empty()).then_some(fixed),
            shared,
        }
    }

    /// Checks the env a sign-in (or provider token exchange) names: a valid id that this
    /// server serves or may create. Nothing is written here.
    pub(crate) fn for_sign_in(&self, client_id: &str) -> Result<String, ApiError> {
        if client_id.len() > ENV_ID_MAX || !is_valid_id(client_id) {
            return Err(ApiError::invalid_argument(
                "client_id must be an env id: 1..=64 characters of [A-Za-z0-9_-]",
            ));
        }
        if let Some(fixed) = &self.fixed
            && !fixed.contains(client_id)
        {
            return Err(not_served(client_id));
        }
        Ok(client_id.to_owned())
    }

    /// Checks that `env` (a `client_id`, or the env of an access token) is served: the
    /// one rule of every request. Whether it exists is [`Envs::exists`].
    pub(crate) fn served(&self, env: &str) -> Result<(), ApiError> {
        self.for_sign_in(env).map(drop)
    }

    /// Whether `env` exists (has had a user). No token, session or user of an env that
    /// does not exist can exist, so a request of one is answered without the store (on
    /// a shared store, after one read of the env list, which may show it created by
    /// another instance).
    pub(crate) async fn exists(&self, env: &str, store: &dyn Store) -> Result<bool, ApiError> {
        if self.contains(env) {
            return Ok(true);
        }
        if !self.shared {
            return Ok(false);
        }
        let stored = store
            .list_envs()
            .await
            .map_err(|e| store_failed("reading the envs", &e))?;
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.extend(stored);
        Ok(known.contains(env))
    }

    fn contains(&self, env: &str) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(env)
    }

    /// Records that an admin import wrote users of `env` (which exists from then on).
    pub(crate) fn imported(&self, env: &str) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(env.to_owned());
    }

    /// Records that a sign-in succeeded in `env` (which exists from then on).
    pub(crate) fn signed_in(&self, env: &str) {
        let created = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(env.to_owned());
        if created {
            tracing::info!(env, "env created by its first sign-in");
        }
    }
}

fn not_served(env: &str) -> ApiError {
    ApiError::invalid_argument(format!(
        "env {env} is not served here (start the server with --env {env})"
    ))
}

/// Logs a server-side failure and answers 500. `what` and `err` must not carry secrets
/// (store and key errors never do).
pub(crate) fn internal(what: &str, err: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %err, "{what} failed");
    ApiError::internal()
}

/// Logs a store failure and answers 503 when the database is unreachable for now
/// (down, restarting: the client may retry), else 500. Store errors carry no secrets.
pub(crate) fn store_failed(what: &str, err: &StoreError) -> ApiError {
    if err.is_unavailable() {
        tracing::warn!(error = %err, "{what} failed: the database is unavailable");
        ApiError::unavailable("the database is unavailable; retry shortly")
    } else {
        internal(what, err)
    }
}

/// The shared state of one server.
pub(crate) struct AppState {
    pub(crate) config: ServeConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: Keyring,
    /// Access tokens verified before (the signature check skipped on a hit).
    pub(crate) verified: VerifiedTokens,
    pub(crate) wechat: Arc<dyn Code2Session>,
    /// Present in emulated mode only.
    pub(crate) emulator: Option<Arc<WeChatEmulator>>,
    pub(crate) envs: Envs,
    pub(crate) ip_limit: RateLimiter,
    pub(crate) device_limit: RateLimiter,
    /// Bearer token of the admin routes (emulated mode only).
    pub(crate) admin_token: Option<String>,
    /// The data dir's lock, held until the store is closed.
    pub(crate) dir_lock: Mutex<Option<DirLock>>,
}

impl AppState {
    /// Releases the data dir's lock (once the store is closed).
    pub(crate) fn release_dir_lock(&self) {
        drop(
            self.dir_lock
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
    }
}
