//! What every handler shares: settings, store, signing key, WeChat, limits, envs.

use super::config::ServeConfig;
use super::datadir::DirLock;
use super::error::ApiError;
use super::keys::SigningKeys;
use super::ratelimit::RateLimiter;
use super::store::Store;
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
#[derive(Debug)]
pub(crate) struct Envs {
    /// `Some`: only these (`--env`); `None`: any valid id, created on first use.
    fixed: Option<HashSet<String>>,
    /// Ids known to exist in the store (saves a write per request).
    known: Mutex<HashSet<String>>,
}

impl Envs {
    pub(crate) fn new(configured: &[String]) -> Self {
        let set: HashSet<String> = configured.iter().cloned().collect();
        Self {
            known: Mutex::new(set.clone()),
            fixed: (!set.is_empty()).then_some(set),
        }
    }

    /// Checks `client_id` and makes sure its env exists.
    pub(crate) async fn resolve(
        &self,
        store: &dyn Store,
        client_id: &str,
    ) -> Result<String, ApiError> {
        if client_id.len() > ENV_ID_MAX || !is_valid_id(client_id) {
            return Err(ApiError::invalid_argument(
                "client_id must be an env id: 1..=64 characters of [A-Za-z0-9_-]",
            ));
        }
        if let Some(fixed) = &self.fixed
            && !fixed.contains(client_id)
        {
            return Err(ApiError::invalid_argument(format!(
                "env {client_id} is not served here (start the server with --env {client_id})"
            )));
        }
        let known = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(client_id);
        if !known {
            store
                .ensure_env(client_id, unix_now())
                .await
                .map_err(|e| internal("creating env", &e))?;
            self.known
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(client_id.to_owned());
            tracing::info!(env = client_id, "env created on first use");
        }
        Ok(client_id.to_owned())
    }
}

/// Logs a server-side failure and answers 500. `what` and `err` must not carry secrets
/// (store and key errors never do).
pub(crate) fn internal(what: &str, err: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %err, "{what} failed");
    ApiError::internal()
}

/// The shared state of one server.
pub(crate) struct AppState {
    pub(crate) config: ServeConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: SigningKeys,
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
