//! The store behind the handlers: one small async trait with two implementations, the
//! embedded SQLite store (the default, one server per data dir) and PostgreSQL (several
//! servers on one database, `--database postgres://…`).
//!
//! Every method that decides something about a secret (rotation, reuse detection,
//! single use of provider tokens, binding) is one atomic operation of the store, so
//! two concurrent requests can never both win.

mod postgres;
mod sqlite;
mod writer;

pub use postgres::{PgStore, StartLock};
pub use sqlite::{DB_FILE, OpenError, SqliteStore};

use super::secrets::Hash;

/// A store failure (the database, not the caller). Logged, and answered as a 500, or
/// as a 503 when the database is unreachable for now ([`StoreError::is_unavailable`]).
#[derive(Debug, thiserror::Error)]
#[error("store: {message}")]
pub struct StoreError {
    message: String,
    unavailable: bool,
}

impl StoreError {
    /// Wraps any error message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            unavailable: false,
        }
    }

    /// A failure to reach the database (down, restarting, out of connections): the
    /// request may succeed when retried later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            unavailable: true,
        }
    }

    /// Whether the database was unreachable (rather than refusing the operation).
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }
}

/// A WeChat identity of a user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Identity {
    /// The Mini Program appid.
    pub appid: String,
    /// The user's openid in that Mini Program.
    pub openid: String,
    /// The unionid, when WeChat gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
}

impl Identity {
    /// Builds an identity.
    pub fn new(appid: String, openid: String, unionid: Option<String>) -> Self {
        Self {
            appid,
            openid,
            unionid,
        }
    }
}

/// A user with its identities. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct UserRecord {
    /// User id.
    pub uid: String,
    /// Env id the user belongs to.
    pub env: String,
    /// Anonymous until a WeChat identity is bound (or it signed in with one).
    pub anonymous: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last change (identity bound).
    pub updated_at: i64,
    /// WeChat identities.
    #[serde(default)]
    pub identities: Vec<Identity>,
    /// Nickname set with `user/profile` (`None`: never set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Avatar URL set with `user/profile` (`None`: never set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// When an administrator disabled the user (`None`: enabled). A disabled user's
    /// sign-ins, refreshes and access tokens are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<i64>,
    /// The user's last sign-in (`None`: none recorded, e.g. imported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sign_in_at: Option<i64>,
}

impl UserRecord {
    /// A user without identities.
    pub fn new(uid: String, env: String, anonymous: bool, now: i64) -> Self {
        Self {
            uid,
            env,
            anonymous,
            created_at: now,
            updated_at: now,
            identities: Vec::new(),
            name: None,
            picture: None,
            disabled_at: None,
            last_sign_in_at: None,
        }
    }
}

/// A live session of a user: a family that is not revoked and holds an unexpired
/// current refresh token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SessionRecord {
    /// Family id (the access tokens' `sid`).
    pub id: String,
    /// The device it was started from (`x-device-id`), when the client sent one.
    pub device_id: Option<String>,
    /// When it started (the sign-in).
    pub created_at: i64,
    /// Its last refresh (`None`: never refreshed).
    pub last_used_at: Option<i64>,
}

/// A page of [`Store::search_users`]: users ordered by uid, after `after`, matching
/// `text` (when given) as a uid prefix, an exact openid or an exact nickname.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct UserQuery {
    /// What to look for (`None`: every user).
    pub text: Option<String>,
    /// Only uids greater than this one (the last uid of the previous page).
    pub after: Option<String>,
    /// At most this many users.
    pub limit: usize,
}

impl UserQuery {
    /// Builds the query.
    pub fn new(text: Option<String>, after: Option<String>, limit: usize) -> Self {
        Self { text, after, limit }
    }
}

/// The first refresh token of a new session family.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewFamily {
    /// Family id (public; named in access tokens as `sid`).
    pub id: String,
    /// `SHA-256` of the first refresh token.
    pub refresh_hash: Hash,
    /// When that token expires.
    pub refresh_expires_at: i64,
    /// The device signing in (`x-device-id`), when the client sent one.
    pub device_id: Option<String>,
}

impl NewFamily {
    /// Builds the record (without a device id).
    pub fn new(id: String, refresh_hash: Hash, refresh_expires_at: i64) -> Self {
        Self {
            id,
            refresh_hash,
            refresh_expires_at,
            device_id: None,
        }
    }

    /// The same record, started from device `device_id`.
    pub fn with_device_id(self, device_id: Option<String>) -> Self {
        Self { device_id, ..self }
    }
}

/// The successor offered when a refresh token is presented.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Successor {
    /// `SHA-256` of the successor token.
    pub hash: Hash,
    /// The successor sealed with the presented token (see `secrets`).
    pub sealed: Vec<u8>,
    /// When the successor expires.
    pub expires_at: i64,
}

impl Successor {
    /// Builds the record.
    pub fn new(hash: Hash, sealed: Vec<u8>, expires_at: i64) -> Self {
        Self {
            hash,
            sealed,
            expires_at,
        }
    }
}

/// What presenting a refresh token did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Rotation {
    /// The token was current: it is now rotated and the offered successor stored.
    Rotated {
        /// Family id.
        family: String,
        /// The user, as it is now.
        user: UserRecord,
    },
    /// The token was rotated within the grace window: the caller gets the same
    /// successor as before (sealed; recover it with the presented token).
    Replayed {
        /// Family id.
        family: String,
        /// The user, as it is now.
        user: UserRecord,
        /// Hash of the earlier successor.
        successor_hash: Vec<u8>,
        /// The earlier successor, sealed.
        successor_sealed: Vec<u8>,
    },
    /// The token was rotated before the grace window: the whole family is now revoked.
    ReuseDetected,
    /// The token is current but its user is disabled: nothing changed.
    UserDisabled,
    /// Unknown, expired, or of a revoked family.
    Invalid,
}

/// A provider token's content: the result of one `code2Session` exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderGrant {
    /// Env id it was issued for.
    pub env: String,
    /// The identity WeChat vouched for.
    pub identity: Identity,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

impl ProviderGrant {
    /// Builds the record.
    pub fn new(env: String, identity: Identity, expires_at: i64) -> Self {
        Self {
            env,
            identity,
            expires_at,
        }
    }
}

/// What binding an identity to a user did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindOutcome {
    /// Bound (or was already bound to this user); the user is no longer anonymous.
    Bound,
    /// The openid belongs to another user.
    BoundElsewhere,
    /// The user already has another openid of the same Mini Program.
    AppAlreadyLinked,
    /// The user does not exist (any more).
    NoUser,
}

/// One access-token signing key as the store keeps it (see `keys` for what the server
/// does with it). The store compares and orders nothing but `kid` and the times.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredKey {
    /// Key id: the RFC 7638 thumbprint of the public key (unique).
    pub kid: String,
    /// The 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
    /// The private key sealed with the key-encryption key (never stored in the clear).
    pub sealed_private: Vec<u8>,
    /// When it was added (Unix seconds).
    pub created_at: i64,
    /// From when it signs (Unix seconds): later than `created_at` by the publication delay.
    pub active_from: i64,
    /// From when it no longer signs (Unix seconds), if retired.
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("active_from", &self.active_from)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl StoredKey {
    /// A key that is not retired.
    pub fn new(
        kid: String,
        public_key: Vec<u8>,
        sealed_private: Vec<u8>,
        created_at: i64,
        active_from: i64,
    ) -> Self {
        Self {
            kid,
            public_key,
            sealed_private,
            created_at,
            active_from,
            retired_at: None,
        }
    }
}

/// Persistent state of the auth server.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates the env row if missing.
    async fn ensure_env(&self, env: &str, now: i64) -> Result<(), StoreError>;

    /// Every env id.
    async fn list_envs(&self) -> Result<Vec<String>, StoreError>;

    /// How many users there are.
    async fn count_users(&self) -> Result<u64, StoreError>;

    /// Creates an anonymous user (and its env, if new) and its first session family.
    async fn create_anonymous(
        &self,
        user: &UserRecord,
        family: &NewFamily,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Finds the user of `identity` in `env` (creating a non-anonymous one with uid
    /// `new_uid`, and the env, if none) and starts a session family for it. A disabled
    /// user is returned as it is, without a new family (the caller refuses the sign-in).
    async fn sign_in_identity(
        &self,
        env: &str,
        identity: &Identity,
        new_uid: &str,
        family: &NewFamily,
        now: i64,
    ) -> Result<UserRecord, StoreError>;

    /// Presents refresh token `hash` for env `env`: rotates it to `successor`, replays
    /// the earlier successor less than `grace_secs` after its rotation (0: never), or
    /// detects reuse after that. A token of another env is `Invalid` (and nothing changes).
    async fn rotate_refresh(
        &self,
        hash: &Hash,
        env: &str,
        successor: &Successor,
        now: i64,
        grace_secs: i64,
    ) -> Result<Rotation, StoreError>;

    /// The family of refresh token `hash` in env `env`, if known.
    async fn family_of_refresh(&self, hash: &Hash, env: &str)
    -> Result<Option<String>, StoreError>;

    /// Revokes a family; false if it was unknown or already revoked.
    async fn revoke_family(&self, family: &str, now: i64) -> Result<bool, StoreError>;

    /// The user of a live (not revoked) family.
    async fn session_user(&self, family: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Stores a provider token (by hash).
    async fn put_provider_grant(
        &self,
        hash: &Hash,
        grant: &ProviderGrant,
    ) -> Result<(), StoreError>;

    /// Takes a provider token issued for env `env`: returns it once if not expired,
    /// never again. A token of another env is left as it is (and `None` returned).
    async fn take_provider_grant(
        &self,
        hash: &Hash,
        env: &str,
        now: i64,
    ) -> Result<Option<ProviderGrant>, StoreError>;

    /// Binds `identity` (of env `env`) to user `uid`.
    async fn bind_identity(
        &self,
        uid: &str,
        env: &str,
        identity: &Identity,
        now: i64,
    ) -> Result<BindOutcome, StoreError>;

    /// Sets the nickname and/or avatar URL of user `uid` (`None`: unchanged); the
    /// updated user, or `None` when there is no such user.
    async fn update_profile(
        &self,
        uid: &str,
        name: Option<&str>,
        picture: Option<&str>,
        now: i64,
    ) -> Result<Option<UserRecord>, StoreError>;

    /// Deletes user `uid` with its identities and every session family (all refresh
    /// tokens); whether the user existed.
    async fn delete_user(&self, uid: &str) -> Result<bool, StoreError>;

    /// Every user, oldest first.
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError>;

    /// Inserts or updates users with their identities (import), in one transaction.
    /// An identity bound to a different user, or a second openid of one Mini Program on
    /// a user, is an error; nothing is written then. (`transfer::Export::check` finds
    /// every such problem of a document first, and reports them all.)
    async fn import_users(&self, users: &[UserRecord], now: i64) -> Result<(), StoreError>;

    /// Deletes every user, session and provider token (envs stay).
    async fn reset(&self) -> Result<(), StoreError>;

    /// A page of users ([`UserQuery`]), each with its identities; every lookup is an
    /// index range, so a page costs the same at any depth and store size.
    async fn search_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>, StoreError>;

    /// User `uid` with its live sessions (as of `now`), or `None` when there is no such
    /// user.
    async fn user_detail(
        &self,
        uid: &str,
        now: i64,
    ) -> Result<Option<(UserRecord, Vec<SessionRecord>)>, StoreError>;

    /// Disables (keeping the first disable time) or enables user `uid`; the updated
    /// user, or `None` when there is no such user.
    async fn set_disabled(
        &self,
        uid: &str,
        disabled: bool,
        now: i64,
    ) -> Result<Option<UserRecord>, StoreError>;

    /// Revokes every session family of user `uid`; how many were not revoked yet, or
    /// `None` when there is no such user.
    async fn revoke_user_sessions(&self, uid: &str, now: i64) -> Result<Option<u64>, StoreError>;

    /// Deletes expired refresh and provider tokens; returns how many.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError>;

    /// Every access-token signing key (retired ones too), by `active_from` then `kid`.
    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError>;

    /// Adds a signing key; an error if its `kid` exists already.
    async fn add_signing_key(&self, key: &StoredKey) -> Result<(), StoreError>;

    /// Adds signing key `key` and, in the same transaction, retires every other key at
    /// `retire_at` (Unix seconds; it signs no more from then) unless it is retired at or
    /// before that already. Returns the kids this call retired, sorted. All or nothing:
    /// a crash or an error (such as `key`'s kid existing already) leaves the keys as
    /// they were, never a new key beside an unretired old one.
    async fn rotate_signing_key(
        &self,
        key: &StoredKey,
        retire_at: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Closes the store (flushes and releases the database).
    async fn close(&self);
}

/// A login code minted by the WeChat emulator, as a shared store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WeChatCode {
    /// The Mini Program it was minted for.
    pub appid: String,
    /// The user's openid.
    pub openid: String,
    /// The unionid, if minted with one.
    pub unionid: Option<String>,
    /// The WeChat errcode its exchange answers instead (fault injection).
    pub fault: Option<i64>,
    /// Expiry (Unix milliseconds: lifetimes may be shorter than a second).
    pub expires_at_ms: i64,
}

impl WeChatCode {
    /// Builds the record.
    pub fn new(
        appid: String,
        openid: String,
        unionid: Option<String>,
        fault: Option<i64>,
        expires_at_ms: i64,
    ) -> Self {
        Self {
            appid,
            openid,
            unionid,
            fault,
            expires_at_ms,
        }
    }
}

/// What redeeming an emulated WeChat login code did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeRedemption {
    /// First use: the code is now used.
    Redeemed(WeChatCode),
    /// The code was redeemed before.
    Used,
    /// Unknown, expired, or of another appid.
    Invalid,
}

/// The WeChat emulator's single-use login codes in a store that several servers share,
/// so a code minted through one instance is redeemed once, on any of them. (A server
/// alone on its SQLite data dir keeps them in memory.)
#[async_trait::async_trait]
pub trait SharedCodes: Send + Sync + 'static {
    /// Stores a freshly minted code (by hash).
    async fn put_wechat_code(&self, hash: &Hash, code: &WeChatCode) -> Result<(), StoreError>;

    /// Redeems code `hash` of Mini Program `appid`: [`CodeRedemption::Redeemed`] once,
    /// if it exists and has not expired at `now_ms` (Unix milliseconds);
    /// [`CodeRedemption::Used`] after that.
    async fn redeem_wechat_code(
        &self,
        hash: &Hash,
        appid: &str,
        now_ms: i64,
    ) -> Result<CodeRedemption, StoreError>;
}
