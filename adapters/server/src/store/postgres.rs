//! The PostgreSQL store (`--database postgres://…`): several servers on one database,
//! each a stateless instance behind a load balancer. Every SQL statement of this backend
//! is in this file; the schema is `migrations-postgres/` (the SQLite data model in
//! PostgreSQL types, plus the emulator's login codes).
//!
//! **Migrations.** Embedded and applied at connect by sqlx's migrator, which holds a
//! session-level advisory lock (`pg_advisory_lock`, keyed by the database name) from
//! before it creates `_sqlx_migrations` until every migration is applied
//! (`sqlx-core` 0.8 `Migrator::run_direct`, `sqlx-postgres` 0.8 `Migrate::lock`): two
//! instances starting at once apply each migration once, the second waits and then
//! finds them applied. The lock is taken on a connection of its own, closed afterwards,
//! so a failed migration cannot leave it held.
//!
//! **Atomicity across instances.** Each decision is one transaction whose rows are
//! locked or compared-and-set, so concurrent requests on different instances serialize
//! in the database exactly as they do in the SQLite writer thread:
//! * rotation locks the presented token's row and its family's (`FOR NO KEY UPDATE OF rt, f`):
//!   the second of two concurrent rotations waits, then sees the first one's successor
//!   (and replays it within the grace window) or revokes the family after it;
//! * provider tokens are taken with `DELETE … RETURNING` (one of two concurrent deletes
//!   gets the row), emulated WeChat codes with a conditional `UPDATE … RETURNING` over a
//!   locked read of the old `used` flag;
//! * an identity is inserted with `ON CONFLICT … DO UPDATE … WHERE uid = excluded.uid`,
//!   which returns no row when another user owns it (a concurrent sign-in or bind that
//!   committed first), and binds lock the user's row.
//!
//! Rows are locked `FOR NO KEY UPDATE`, never `FOR UPDATE`: the foreign-key checks of
//! inserts (a new family of the user, a successor token of the family) take `KEY SHARE`
//! locks, which `FOR UPDATE` would block, deadlocking a sign-in that holds an identity's
//! row against one that holds its user's.
//!
//! **Durability.** Every connection runs with `synchronous_commit = on`: a commit
//! returns once its WAL record is flushed, before the handler answers.
//!
//! **Outages.** A connection or pool failure is a [`StoreError`] marked unavailable
//! (answered 503); the pool drops broken connections (each one is checked before it is
//! handed out) and opens new ones once the database is back.

use super::{
    BindOutcome, CodeRedemption, Identity, NewFamily, ProviderGrant, Rotation, SessionRecord,
    SharedCodes, Store, StoreError, StoredKey, Successor, UserQuery, UserRecord, WeChatCode,
};
use crate::config::DatabaseUrl;
use crate::secrets::Hash;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions as _, PgConnection, Postgres, Row as _, Transaction};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// Connections each instance keeps at most.
const POOL_MAX: u32 = 16;

/// SQLSTATE classes and codes that mean "the database is not there right now" (or
/// asks to retry), not "this request is wrong": connection exceptions, insufficient
/// resources, operator intervention (shutdown, restart), serialization failures.
fn is_transient_state(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "40001"
        || code == "40P01"
}

/// A sqlx error as a [`StoreError`]: transport and pool failures are unavailable.
fn store_error(e: sqlx::Error) -> StoreError {
    // sqlx messages name statements and constraints, never bound values or the URL.
    let transient = match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| is_transient_state(&c)),
        _ => false,
    };
    if transient {
        StoreError::unavailable(e.to_string())
    } else {
        StoreError::new(e.to_string())
    }
}

/// PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url`, applies the migrations (under the migrator's advisory lock)
    /// and keeps a pool of connections. A connection waits at most `acquire_timeout`
    /// for a free or new connection before the request fails (503).
    pub async fn connect(url: &DatabaseUrl, acquire_timeout: Duration) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .expose()
            .parse()
            .map_err(|_| StoreError::new(format!("{url} is not a valid PostgreSQL URL")))?;
        let options = options
            .options([("synchronous_commit", "on")])
            .application_name("cloudbase-auth")
            .disable_statement_logging();
        let unreachable = |e: sqlx::Error| {
            let e = store_error(e);
            StoreError::unavailable(format!("cannot connect to {url}: {e}"))
        };
        // A pool of one connection, closed afterwards (a pool, not a bare connection:
        // its `Acquire` keeps this future `Send`).
        let migrating = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(acquire_timeout)
            .connect_with(options.clone())
            .await
            .map_err(unreachable)?;
        let migrated = sqlx::migrate!("./migrations-postgres")
            .run(&migrating)
            .await;
        migrating.close().await;
        migrated.map_err(StoreError::from)?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_MAX)
            .acquire_timeout(acquire_timeout)
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(unreachable)?;
        Ok(Self { pool })
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(store_error)
    }
}

/// Commits `tx`; its error is the store's.
async fn commit(tx: Transaction<'static, Postgres>) -> Result<(), StoreError> {
    tx.commit().await.map_err(store_error)
}

/// The columns [`user_row`] reads, in its order.
macro_rules! user_columns {
    () => {
        "uid, env, anonymous, created_at, updated_at, name, picture, disabled_at, last_sign_in_at"
    };
}

fn user_row(row: &PgRow) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        uid: row.try_get(0)?,
        env: row.try_get(1)?,
        anonymous: row.try_get(2)?,
        created_at: row.try_get(3)?,
        updated_at: row.try_get(4)?,
        identities: Vec::new(),
        name: row.try_get(5)?,
        picture: row.try_get(6)?,
        disabled_at: row.try_get(7)?,
        last_sign_in_at: row.try_get(8)?,
    })
}

fn identity_row(row: &PgRow, first: usize) -> Result<Identity, sqlx::Error> {
    Ok(Identity {
        appid: row.try_get(first)?,
        openid: row.try_get(first + 1)?,
        unionid: row.try_get(first + 2)?,
    })
}

async fn load_user(conn: &mut PgConnection, uid: &str) -> Result<Option<UserRecord>, StoreError> {
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE uid = $1"
    ))
    .bind(uid)
    .fetch_optional(&mut *conn)
    .await
    .map_err(store_error)?
    else {
        return Ok(None);
    };
    let mut user = user_row(&row).map_err(store_error)?;
    let rows = sqlx::query(
        "SELECT appid, openid, unionid FROM identities WHERE uid = $1 ORDER BY created_at, appid",
    )
    .bind(uid)
    .fetch_all(&mut *conn)
    .await
    .map_err(store_error)?;
    for row in &rows {
        user.identities
            .push(identity_row(row, 0).map_err(store_error)?);
    }
    Ok(Some(user))
}

/// The users `uids` (those that exist) with their identities, in uid order: two
/// statements for the whole page.
async fn load_users(conn: &mut PgConnection, uids: &[&str]) -> Result<Vec<UserRecord>, StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE uid = ANY($1) ORDER BY uid"
    ))
    .bind(uids)
    .fetch_all(&mut *conn)
    .await
    .map_err(store_error)?;
    let mut users = rows
        .iter()
        .map(user_row)
        .collect::<Result<Vec<_>, _>>()
        .map_err(store_error)?;
    let rows = sqlx::query(
        "SELECT uid, appid, openid, unionid FROM identities WHERE uid = ANY($1)
         ORDER BY created_at, appid",
    )
    .bind(uids)
    .fetch_all(&mut *conn)
    .await
    .map_err(store_error)?;
    let mut identities: HashMap<String, Vec<Identity>> = HashMap::new();
    for row in &rows {
        let uid: String = row.try_get(0).map_err(store_error)?;
        identities
            .entry(uid)
            .or_default()
            .push(identity_row(row, 1).map_err(store_error)?);
    }
    for user in &mut users {
        user.identities = identities.remove(&user.uid).unwrap_or_default();
    }
    Ok(users)
}

async fn must_load_user(conn: &mut PgConnection, uid: &str) -> Result<UserRecord, StoreError> {
    load_user(conn, uid)
        .await?
        .ok_or_else(|| StoreError::new(format!("user {uid} vanished inside a transaction")))
}

async fn insert_env(conn: &mut PgConnection, env: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO envs (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
        .bind(env)
        .bind(now)
        .execute(conn)
        .await
        .map_err(store_error)?;
    Ok(())
}

/// Inserts a user signing in for the first time (at `now`).
async fn insert_user(
    conn: &mut PgConnection,
    user: &UserRecord,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO users (uid, env, anonymous, created_at, updated_at, last_sign_in_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&user.uid)
    .bind(&user.env)
    .bind(user.anonymous)
    .bind(user.created_at)
    .bind(user.updated_at)
    .bind(now)
    .execute(conn)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// Inserts a signing key row; an error if its `kid` exists already.
async fn insert_signing_key(conn: &mut PgConnection, key: &StoredKey) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO signing_keys
         (kid, public_key, sealed_private, created_at, active_from, retired_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.kid)
    .bind(&key.public_key)
    .bind(&key.sealed_private)
    .bind(key.created_at)
    .bind(key.active_from)
    .bind(key.retired_at)
    .execute(conn)
    .await
    .map_err(store_error)?;
    Ok(())
}

async fn insert_refresh(
    conn: &mut PgConnection,
    hash: &Hash,
    family: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (hash, family, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&hash[..])
    .bind(family)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await
    .map_err(store_error)?;
    Ok(())
}

async fn insert_family(
    conn: &mut PgConnection,
    uid: &str,
    env: &str,
    family: &NewFamily,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO families (id, uid, env, created_at, device_id) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&family.id)
    .bind(uid)
    .bind(env)
    .bind(now)
    .bind(&family.device_id)
    .execute(&mut *conn)
    .await
    .map_err(store_error)?;
    insert_refresh(
        conn,
        &family.refresh_hash,
        &family.id,
        now,
        family.refresh_expires_at,
    )
    .await
}

/// Inserts `identity` for `uid`, or records a unionid on it if `uid` already has it.
/// False when another user owns it (nothing changes then).
async fn claim_identity(
    conn: &mut PgConnection,
    uid: &str,
    env: &str,
    identity: &Identity,
    now: i64,
) -> Result<bool, StoreError> {
    let row = sqlx::query(
        "INSERT INTO identities (env, appid, openid, unionid, uid, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (env, appid, openid) DO UPDATE
           SET unionid = COALESCE(excluded.unionid, identities.unionid)
           WHERE identities.uid = excluded.uid
         RETURNING uid",
    )
    .bind(env)
    .bind(&identity.appid)
    .bind(&identity.openid)
    .bind(&identity.unionid)
    .bind(uid)
    .bind(now)
    .fetch_optional(conn)
    .await
    .map_err(store_error)?;
    Ok(row.is_some())
}

async fn identity_owner(
    conn: &mut PgConnection,
    env: &str,
    identity: &Identity,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar("SELECT uid FROM identities WHERE env = $1 AND appid = $2 AND openid = $3")
        .bind(env)
        .bind(&identity.appid)
        .bind(&identity.openid)
        .fetch_optional(conn)
        .await
        .map_err(store_error)
}

/// The body of [`Store::rotate_refresh`], inside its transaction.
async fn rotate(
    conn: &mut PgConnection,
    hash: &Hash,
    env: &str,
    successor: &Successor,
    now: i64,
    grace_secs: i64,
) -> Result<Rotation, StoreError> {
    // Both rows locked: a concurrent rotation of this token (on any instance) waits
    // here and then reads this one's outcome.
    let Some(row) = sqlx::query(
        "SELECT rt.family, rt.expires_at, rt.rotated_at, rt.successor_hash, rt.successor_sealed,
                f.uid, f.revoked_at, u.disabled_at
         FROM refresh_tokens rt JOIN families f ON f.id = rt.family
           JOIN users u ON u.uid = f.uid
         WHERE rt.hash = $1 AND f.env = $2
         FOR NO KEY UPDATE OF rt, f",
    )
    .bind(&hash[..])
    .bind(env)
    .fetch_optional(&mut *conn)
    .await
    .map_err(store_error)?
    else {
        return Ok(Rotation::Invalid);
    };
    let get = |e: sqlx::Error| store_error(e);
    let family: String = row.try_get(0).map_err(get)?;
    let expires_at: i64 = row.try_get(1).map_err(get)?;
    let rotated_at: Option<i64> = row.try_get(2).map_err(get)?;
    let successor_hash: Option<Vec<u8>> = row.try_get(3).map_err(get)?;
    let successor_sealed: Option<Vec<u8>> = row.try_get(4).map_err(get)?;
    let uid: String = row.try_get(5).map_err(get)?;
    let revoked_at: Option<i64> = row.try_get(6).map_err(get)?;
    let disabled_at: Option<i64> = row.try_get(7).map_err(get)?;
    if revoked_at.is_some() {
        return Ok(Rotation::Invalid);
    }
    match rotated_at {
        None if expires_at <= now => Ok(Rotation::Invalid),
        None if disabled_at.is_some() => Ok(Rotation::UserDisabled),
        None => {
            sqlx::query(
                "UPDATE refresh_tokens SET rotated_at = $1, successor_hash = $2, successor_sealed = $3
                 WHERE hash = $4",
            )
            .bind(now)
            .bind(&successor.hash[..])
            .bind(&successor.sealed)
            .bind(&hash[..])
            .execute(&mut *conn)
            .await
            .map_err(store_error)?;
            insert_refresh(conn, &successor.hash, &family, now, successor.expires_at).await?;
            sqlx::query("UPDATE families SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&family)
                .execute(&mut *conn)
                .await
                .map_err(store_error)?;
            let user = must_load_user(conn, &uid).await?;
            Ok(Rotation::Rotated { family, user })
        }
        Some(_) if disabled_at.is_some() => Ok(Rotation::UserDisabled),
        Some(at) if now.saturating_sub(at) < grace_secs => {
            let (Some(successor_hash), Some(successor_sealed)) = (successor_hash, successor_sealed)
            else {
                return Ok(Rotation::Invalid);
            };
            let user = must_load_user(conn, &uid).await?;
            Ok(Rotation::Replayed {
                family,
                user,
                successor_hash,
                successor_sealed,
            })
        }
        Some(_) => {
            sqlx::query("UPDATE families SET revoked_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&family)
                .execute(conn)
                .await
                .map_err(store_error)?;
            Ok(Rotation::ReuseDetected)
        }
    }
}

/// The body of [`Store::bind_identity`], inside its transaction.
async fn bind(
    conn: &mut PgConnection,
    uid: &str,
    env: &str,
    identity: &Identity,
    now: i64,
) -> Result<BindOutcome, StoreError> {
    // The user's row lock serializes binds of one user (one openid per Mini Program).
    let exists = sqlx::query("SELECT 1 FROM users WHERE uid = $1 FOR NO KEY UPDATE")
        .bind(uid)
        .fetch_optional(&mut *conn)
        .await
        .map_err(store_error)?
        .is_some();
    if !exists {
        return Ok(BindOutcome::NoUser);
    }
    match identity_owner(conn, env, identity).await? {
        Some(owner) if owner != uid => return Ok(BindOutcome::BoundElsewhere),
        Some(_) => {}
        None => {
            let other = sqlx::query("SELECT 1 FROM identities WHERE uid = $1 AND appid = $2")
                .bind(uid)
                .bind(&identity.appid)
                .fetch_optional(&mut *conn)
                .await
                .map_err(store_error)?
                .is_some();
            if other {
                return Ok(BindOutcome::AppAlreadyLinked);
            }
        }
    }
    // Another user may have claimed the openid since the read above (a sign-in on
    // another instance): the insert then returns no row.
    if !claim_identity(conn, uid, env, identity, now).await? {
        return Ok(BindOutcome::BoundElsewhere);
    }
    sqlx::query("UPDATE users SET anonymous = FALSE, updated_at = $1 WHERE uid = $2")
        .bind(now)
        .bind(uid)
        .execute(conn)
        .await
        .map_err(store_error)?;
    Ok(BindOutcome::Bound)
}

/// Rows per statement of an import (each column is one array parameter).
const IMPORT_CHUNK: usize = 2_000;

/// The body of [`Store::import_users`], inside its transaction: the document's own
/// conflicts are found first, then users and identities are written a chunk of rows per
/// statement (`UNNEST` of one array per column), each identity chunk checked against
/// the identities in the database before it is written.
async fn import(conn: &mut PgConnection, users: &[UserRecord], now: i64) -> Result<(), StoreError> {
    // Two instances importing at once take turns (a transaction-scoped lock).
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('cloudbase-auth import'))")
        .execute(&mut *conn)
        .await
        .map_err(store_error)?;
    let mut owners: HashMap<(&str, &str, &str), &str> = HashMap::new();
    let mut linked: HashMap<(&str, &str), &str> = HashMap::new();
    for user in users {
        for identity in &user.identities {
            let key = (
                user.env.as_str(),
                identity.appid.as_str(),
                identity.openid.as_str(),
            );
            if let Some(owner) = owners.insert(key, &user.uid)
                && owner != user.uid
            {
                return Err(StoreError::new(format!(
                    "openid {} of appid {} belongs to user {owner} and to user {}",
                    identity.openid, identity.appid, user.uid
                )));
            }
            if let Some(openid) = linked.insert((&user.uid, &identity.appid), &identity.openid)
                && openid != identity.openid
            {
                return Err(StoreError::new(format!(
                    "user {} would have two openids of appid {}",
                    user.uid, identity.appid
                )));
            }
        }
    }
    let envs: BTreeSet<&str> = users.iter().map(|u| u.env.as_str()).collect();
    sqlx::query(
        "INSERT INTO envs (id, created_at) SELECT unnest($1::text[]), $2
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(envs.into_iter().collect::<Vec<_>>())
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(store_error)?;
    for chunk in users.chunks(IMPORT_CHUNK) {
        let column = |f: fn(&UserRecord) -> String| chunk.iter().map(f).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO users (uid, env, anonymous, created_at, updated_at, name, picture,
               disabled_at, last_sign_in_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bool[], $4::int8[], $5::int8[],
               $6::text[], $7::text[], $8::int8[], $9::int8[])
             ON CONFLICT (uid) DO UPDATE SET env = excluded.env, anonymous = excluded.anonymous,
               created_at = excluded.created_at, updated_at = excluded.updated_at,
               name = excluded.name, picture = excluded.picture,
               disabled_at = excluded.disabled_at, last_sign_in_at = excluded.last_sign_in_at",
        )
        .bind(column(|u| u.uid.clone()))
        .bind(column(|u| u.env.clone()))
        .bind(chunk.iter().map(|u| u.anonymous).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.created_at).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.updated_at).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.name.clone()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.picture.clone()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.disabled_at).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.last_sign_in_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .map_err(store_error)?;
    }
    let rows: Vec<(&UserRecord, &Identity)> = users
        .iter()
        .flat_map(|u| u.identities.iter().map(move |i| (u, i)))
        .collect();
    for chunk in rows.chunks(IMPORT_CHUNK) {
        let envs: Vec<&str> = chunk.iter().map(|(u, _)| u.env.as_str()).collect();
        let appids: Vec<&str> = chunk.iter().map(|(_, i)| i.appid.as_str()).collect();
        let openids: Vec<&str> = chunk.iter().map(|(_, i)| i.openid.as_str()).collect();
        let uids: Vec<&str> = chunk.iter().map(|(u, _)| u.uid.as_str()).collect();
        let taken = sqlx::query(
            "SELECT x.openid, x.appid, i.uid, x.uid
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS x(env, appid, openid, uid)
             JOIN identities i ON i.env = x.env AND i.appid = x.appid AND i.openid = x.openid
             WHERE i.uid <> x.uid LIMIT 1",
        )
        .bind(&envs)
        .bind(&appids)
        .bind(&openids)
        .bind(&uids)
        .fetch_optional(&mut *conn)
        .await
        .map_err(store_error)?;
        if let Some(row) = taken {
            let text = |i: usize| row.try_get::<String, _>(i).map_err(store_error);
            return Err(StoreError::new(format!(
                "openid {} of appid {} belongs to user {} and to user {}",
                text(0)?,
                text(1)?,
                text(2)?,
                text(3)?
            )));
        }
        let second = sqlx::query(
            "SELECT x.uid, x.appid
             FROM UNNEST($1::text[], $2::text[], $3::text[]) AS x(uid, appid, openid)
             JOIN identities i ON i.uid = x.uid AND i.appid = x.appid AND i.openid <> x.openid
             LIMIT 1",
        )
        .bind(&uids)
        .bind(&appids)
        .bind(&openids)
        .fetch_optional(&mut *conn)
        .await
        .map_err(store_error)?;
        if let Some(row) = second {
            let text = |i: usize| row.try_get::<String, _>(i).map_err(store_error);
            return Err(StoreError::new(format!(
                "user {} would have two openids of appid {}",
                text(0)?,
                text(1)?
            )));
        }
        sqlx::query(
            "INSERT INTO identities (env, appid, openid, unionid, uid, created_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
               $6::int8[])
             ON CONFLICT (env, appid, openid) DO UPDATE
               SET unionid = COALESCE(excluded.unionid, identities.unionid)
               WHERE identities.uid = excluded.uid",
        )
        .bind(&envs)
        .bind(&appids)
        .bind(&openids)
        .bind(
            chunk
                .iter()
                .map(|(_, i)| i.unionid.clone())
                .collect::<Vec<_>>(),
        )
        .bind(&uids)
        .bind(chunk.iter().map(|(u, _)| u.created_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .map_err(store_error)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn ensure_env(&self, env: &str, now: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        insert_env(&mut conn, env, now).await
    }

    async fn list_envs(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT id FROM envs ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn create_anonymous(
        &self,
        user: &UserRecord,
        family: &NewFamily,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_env(&mut tx, &user.env, now).await?;
        insert_user(&mut tx, user, now).await?;
        insert_family(&mut tx, &user.uid, &user.env, family, now).await?;
        commit(tx).await
    }

    async fn sign_in_identity(
        &self,
        env: &str,
        identity: &Identity,
        new_uid: &str,
        family: &NewFamily,
        now: i64,
    ) -> Result<UserRecord, StoreError> {
        let mut tx = self.begin().await?;
        let uid = match identity_owner(&mut tx, env, identity).await? {
            Some(uid) => {
                // Locked: a concurrent disable commits before or after this sign-in.
                let disabled: Option<Option<i64>> = sqlx::query_scalar(
                    "SELECT disabled_at FROM users WHERE uid = $1 FOR NO KEY UPDATE",
                )
                .bind(&uid)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
                if disabled.flatten().is_some() {
                    let user = must_load_user(&mut tx, &uid).await?;
                    commit(tx).await?;
                    return Ok(user);
                }
                sqlx::query("UPDATE users SET last_sign_in_at = $1 WHERE uid = $2")
                    .bind(now)
                    .bind(&uid)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                uid
            }
            None => {
                insert_env(&mut tx, env, now).await?;
                let user = UserRecord::new(new_uid.to_owned(), env.to_owned(), false, now);
                insert_user(&mut tx, &user, now).await?;
                new_uid.to_owned()
            }
        };
        // Also records a unionid WeChat gave only now.
        let uid = if claim_identity(&mut tx, &uid, env, identity, now).await? {
            uid
        } else {
            // A sign-in of the same openid on another instance committed its new user
            // first (this insert waited for it): sign in as that user instead, and drop
            // the one made here.
            sqlx::query("DELETE FROM users WHERE uid = $1")
                .bind(new_uid)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            let owner = identity_owner(&mut tx, env, identity)
                .await?
                .ok_or_else(|| StoreError::new("an identity vanished inside a transaction"))?;
            claim_identity(&mut tx, &owner, env, identity, now).await?;
            owner
        };
        insert_family(&mut tx, &uid, env, family, now).await?;
        let user = must_load_user(&mut tx, &uid).await?;
        commit(tx).await?;
        Ok(user)
    }

    async fn rotate_refresh(
        &self,
        hash: &Hash,
        env: &str,
        successor: &Successor,
        now: i64,
        grace_secs: i64,
    ) -> Result<Rotation, StoreError> {
        let mut tx = self.begin().await?;
        let rotation = rotate(&mut tx, hash, env, successor, now, grace_secs).await?;
        commit(tx).await?;
        Ok(rotation)
    }

    async fn family_of_refresh(
        &self,
        hash: &Hash,
        env: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT rt.family FROM refresh_tokens rt JOIN families f ON f.id = rt.family
             WHERE rt.hash = $1 AND f.env = $2",
        )
        .bind(&hash[..])
        .bind(env)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)
    }

    async fn revoke_family(&self, family: &str, now: i64) -> Result<bool, StoreError> {
        let changed =
            sqlx::query("UPDATE families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(family)
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
        Ok(changed.rows_affected() > 0)
    }

    async fn session_user(&self, family: &str) -> Result<Option<UserRecord>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        let uid: Option<String> =
            sqlx::query_scalar("SELECT uid FROM families WHERE id = $1 AND revoked_at IS NULL")
                .bind(family)
                .fetch_optional(&mut *conn)
                .await
                .map_err(store_error)?;
        match uid {
            Some(uid) => load_user(&mut conn, &uid).await,
            None => Ok(None),
        }
    }

    async fn put_provider_grant(
        &self,
        hash: &Hash,
        grant: &ProviderGrant,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO provider_tokens (hash, env, appid, openid, unionid, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&hash[..])
        .bind(&grant.env)
        .bind(&grant.identity.appid)
        .bind(&grant.identity.openid)
        .bind(&grant.identity.unionid)
        .bind(grant.expires_at)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn take_provider_grant(
        &self,
        hash: &Hash,
        env: &str,
        now: i64,
    ) -> Result<Option<ProviderGrant>, StoreError> {
        // One of two concurrent deletes of the row gets it; the other finds nothing.
        let row = sqlx::query(
            "DELETE FROM provider_tokens WHERE hash = $1 AND env = $2
             RETURNING env, appid, openid, unionid, expires_at",
        )
        .bind(&hash[..])
        .bind(env)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let grant = ProviderGrant {
            env: row.try_get(0).map_err(store_error)?,
            identity: identity_row(&row, 1).map_err(store_error)?,
            expires_at: row.try_get(4).map_err(store_error)?,
        };
        Ok(Some(grant).filter(|g| g.expires_at > now))
    }

    async fn bind_identity(
        &self,
        uid: &str,
        env: &str,
        identity: &Identity,
        now: i64,
    ) -> Result<BindOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let outcome = bind(&mut tx, uid, env, identity, now).await?;
        commit(tx).await?;
        Ok(outcome)
    }

    async fn update_profile(
        &self,
        uid: &str,
        name: Option<&str>,
        picture: Option<&str>,
        now: i64,
    ) -> Result<Option<UserRecord>, StoreError> {
        let mut tx = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE users SET name = COALESCE($1, name), picture = COALESCE($2, picture),
               updated_at = $3 WHERE uid = $4",
        )
        .bind(name)
        .bind(picture)
        .bind(now)
        .bind(uid)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if changed.rows_affected() == 0 {
            return Ok(None);
        }
        let user = load_user(&mut tx, uid).await?;
        commit(tx).await?;
        Ok(user)
    }

    async fn delete_user(&self, uid: &str) -> Result<bool, StoreError> {
        // Identities and families (with their refresh tokens) go by `ON DELETE CASCADE`.
        let deleted = sqlx::query("DELETE FROM users WHERE uid = $1")
            .bind(uid)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        // One snapshot for both reads.
        let mut tx = self.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let mut identities: HashMap<String, Vec<Identity>> = HashMap::new();
        let rows = sqlx::query(
            "SELECT uid, appid, openid, unionid FROM identities ORDER BY created_at, appid",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        for row in &rows {
            let uid: String = row.try_get(0).map_err(store_error)?;
            identities
                .entry(uid)
                .or_default()
                .push(identity_row(row, 1).map_err(store_error)?);
        }
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY created_at, uid"
        ))
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        commit(tx).await?;
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut user = user_row(row).map_err(store_error)?;
            user.identities = identities.remove(&user.uid).unwrap_or_default();
            users.push(user);
        }
        Ok(users)
    }

    async fn import_users(&self, users: &[UserRecord], now: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        import(&mut tx, users, now).await?;
        commit(tx).await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for table in [
            "wechat_codes",
            "provider_tokens",
            "refresh_tokens",
            "families",
            "identities",
            "users",
        ] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        commit(tx).await
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let mut purged = 0;
        for statement in [
            "DELETE FROM refresh_tokens WHERE expires_at <= $1",
            "DELETE FROM provider_tokens WHERE expires_at <= $1",
            "DELETE FROM wechat_codes WHERE expires_at_ms <= $1 * 1000",
        ] {
            purged += sqlx::query(statement)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?
                .rows_affected();
        }
        commit(tx).await?;
        Ok(purged)
    }

    async fn search_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>, StoreError> {
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        // Every uid is greater than the empty string (byte order: COLLATE "C").
        let after = query.after.as_deref().unwrap_or("");
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        let mut uids: BTreeSet<String> = BTreeSet::new();
        match query.text.as_deref() {
            None => uids.extend(
                sqlx::query_scalar::<_, String>(
                    "SELECT uid FROM users WHERE uid > $1 ORDER BY uid LIMIT $2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await
                .map_err(store_error)?,
            ),
            Some(text) => {
                // Every string starting with `text` sorts below `text` + the last code
                // point in byte order.
                let end = format!("{text}\u{10FFFF}");
                uids.extend(
                    sqlx::query_scalar::<_, String>(
                        "SELECT uid FROM users WHERE uid > $1 AND uid >= $2 AND uid < $3
                         ORDER BY uid LIMIT $4",
                    )
                    .bind(after)
                    .bind(text)
                    .bind(&end)
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(store_error)?,
                );
                uids.extend(
                    sqlx::query_scalar::<_, String>(
                        "SELECT DISTINCT uid FROM identities WHERE openid = $1 AND uid > $2
                         ORDER BY uid LIMIT $3",
                    )
                    .bind(text)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(store_error)?,
                );
                uids.extend(
                    sqlx::query_scalar::<_, String>(
                        "SELECT uid FROM users WHERE name = $1 AND uid > $2 ORDER BY uid LIMIT $3",
                    )
                    .bind(text)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(store_error)?,
                );
            }
        }
        let page: Vec<&str> = uids.iter().take(query.limit).map(String::as_str).collect();
        load_users(&mut conn, &page).await
    }

    async fn user_detail(
        &self,
        uid: &str,
        now: i64,
    ) -> Result<Option<(UserRecord, Vec<SessionRecord>)>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        let Some(user) = load_user(&mut conn, uid).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT f.id, f.device_id, f.created_at, f.last_used_at FROM families f
             WHERE f.uid = $1 AND f.revoked_at IS NULL AND EXISTS (
               SELECT 1 FROM refresh_tokens rt
               WHERE rt.family = f.id AND rt.rotated_at IS NULL AND rt.expires_at > $2)
             ORDER BY f.created_at, f.id",
        )
        .bind(uid)
        .bind(now)
        .fetch_all(&mut *conn)
        .await
        .map_err(store_error)?;
        let sessions = rows
            .iter()
            .map(|row| {
                Ok(SessionRecord {
                    id: row.try_get(0)?,
                    device_id: row.try_get(1)?,
                    created_at: row.try_get(2)?,
                    last_used_at: row.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(store_error)?;
        Ok(Some((user, sessions)))
    }

    async fn set_disabled(
        &self,
        uid: &str,
        disabled: bool,
        now: i64,
    ) -> Result<Option<UserRecord>, StoreError> {
        let mut tx = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE users SET updated_at = $1,
               disabled_at = CASE WHEN $2 THEN COALESCE(disabled_at, $1) ELSE NULL END
             WHERE uid = $3",
        )
        .bind(now)
        .bind(disabled)
        .bind(uid)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if changed.rows_affected() == 0 {
            return Ok(None);
        }
        let user = load_user(&mut tx, uid).await?;
        commit(tx).await?;
        Ok(user)
    }

    async fn revoke_user_sessions(&self, uid: &str, now: i64) -> Result<Option<u64>, StoreError> {
        let mut tx = self.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM users WHERE uid = $1 FOR NO KEY UPDATE")
            .bind(uid)
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?
            .is_some();
        if !exists {
            return Ok(None);
        }
        let revoked = sqlx::query(
            "UPDATE families SET revoked_at = $1 WHERE uid = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(uid)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?
        .rows_affected();
        commit(tx).await?;
        Ok(Some(revoked))
    }

    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, public_key, sealed_private, created_at, active_from, retired_at
             FROM signing_keys ORDER BY active_from, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                Ok(StoredKey {
                    kid: row.try_get(0)?,
                    public_key: row.try_get(1)?,
                    sealed_private: row.try_get(2)?,
                    created_at: row.try_get(3)?,
                    active_from: row.try_get(4)?,
                    retired_at: row.try_get(5)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(store_error)
    }

    async fn add_signing_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        insert_signing_key(&mut conn, key).await
    }

    async fn rotate_signing_key(
        &self,
        key: &StoredKey,
        retire_at: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin().await?;
        // Rotations on several instances at once run one after another: each sees the
        // key the one before it added, so exactly one key is left unretired. The mode
        // conflicts with itself but not with the readers (rotations are rare).
        sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        insert_signing_key(&mut tx, key).await?;
        let mut retired: Vec<String> = sqlx::query_scalar(
            "UPDATE signing_keys SET retired_at = $1
             WHERE kid <> $2 AND (retired_at IS NULL OR retired_at > $1)
             RETURNING kid",
        )
        .bind(retire_at)
        .bind(&key.kid)
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        commit(tx).await?;
        retired.sort();
        Ok(retired)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// A session-level advisory lock held while a server prepares its signing keys (see
/// [`PgStore::lock_start`]); [`StartLock::release`] frees it, and so does dropping it
/// (its connection closes).
#[derive(Debug)]
pub struct StartLock {
    conn: PgConnection,
}

/// The advisory lock key of a server's start (distinct from sqlx's migration lock).
const START_LOCK_SQL: &str = "SELECT pg_advisory_lock(hashtext('cloudbase-auth start'))";

impl PgStore {
    /// Waits for the start lock of this database: the instances starting at once then
    /// set up the signing keys one after another — the first creates the key-encryption
    /// key file (when it is the shared data dir's) and the first signing key, the others
    /// find them — instead of each making its own.
    pub async fn lock_start(&self) -> Result<StartLock, StoreError> {
        // Out of the pool: a lock must not go back to it with the connection.
        let mut conn = self.pool.acquire().await.map_err(store_error)?.detach();
        sqlx::query(START_LOCK_SQL)
            .execute(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(StartLock { conn })
    }
}

impl StartLock {
    /// Releases the lock (closing its connection).
    pub async fn release(self) {
        use sqlx::Connection as _;
        let _ = self.conn.close().await;
    }
}

#[async_trait::async_trait]
impl SharedCodes for PgStore {
    async fn put_wechat_code(&self, hash: &Hash, code: &WeChatCode) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO wechat_codes (hash, appid, openid, unionid, fault, expires_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&hash[..])
        .bind(&code.appid)
        .bind(&code.openid)
        .bind(&code.unionid)
        .bind(code.fault)
        .bind(code.expires_at_ms)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn redeem_wechat_code(
        &self,
        hash: &Hash,
        appid: &str,
        now_ms: i64,
    ) -> Result<CodeRedemption, StoreError> {
        // The subquery locks the row and reads its `used` flag as it is once the lock
        // is granted: of two concurrent redemptions the second sees `used = true`.
        let row = sqlx::query(
            "UPDATE wechat_codes c SET used = TRUE
             FROM (SELECT hash, used FROM wechat_codes
                   WHERE hash = $1 AND appid = $2 AND expires_at_ms > $3 FOR NO KEY UPDATE) old
             WHERE c.hash = old.hash
             RETURNING old.used, c.appid, c.openid, c.unionid, c.fault, c.expires_at_ms",
        )
        .bind(&hash[..])
        .bind(appid)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(CodeRedemption::Invalid);
        };
        if row.try_get::<bool, _>(0).map_err(store_error)? {
            return Ok(CodeRedemption::Used);
        }
        Ok(CodeRedemption::Redeemed(WeChatCode {
            appid: row.try_get(1).map_err(store_error)?,
            openid: row.try_get(2).map_err(store_error)?,
            unionid: row.try_get(3).map_err(store_error)?,
            fault: row.try_get(4).map_err(store_error)?,
            expires_at_ms: row.try_get(5).map_err(store_error)?,
        }))
    }
}
