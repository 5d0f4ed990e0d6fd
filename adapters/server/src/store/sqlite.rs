//! The SQLite store (sqlx, runtime queries, migrations embedded and applied at open).
//!
//! **Durability.** The database runs in WAL mode with `synchronous=FULL`: every commit
//! fsyncs the WAL before the handler answers, so a reply a client received survives a
//! process kill *and* a power cut. (`NORMAL` with WAL would survive a process kill too,
//! since the WAL is in the OS page cache, but could lose the last commits on power
//! loss, and an auth server must not forget a refresh token it just handed out.)
//!
//! **Concurrency.** All writes go through one connection owned by the group-commit
//! writer (`writer.rs`): writes are serialized in-process, never fail with
//! `SQLITE_BUSY` on a read-to-write upgrade, and concurrent ones share one commit (one
//! fsync). Serial execution is also what makes rotation atomic. Reads use a separate
//! pool and, thanks to WAL, never wait for the writer.

use super::writer::Writer;
use super::{
    BindOutcome, Identity, NewFamily, ProviderGrant, Rotation, Store, StoreError, Successor,
    UserRecord,
};
use crate::secrets::Hash;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Connection as _, Row as _};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Name of the database file inside the data dir.
pub const DB_FILE: &str = "auth.db";

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        // sqlx messages name statements and constraints, never bound values.
        StoreError::new(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::new(format!("migration failed: {e}"))
    }
}

/// SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: Writer,
    reader: SqlitePool,
}

/// Why [`SqliteStore::open`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The database file is not an intact SQLite database: SQLite refused it or its
    /// integrity check (`PRAGMA quick_check`) found damage.
    #[error("{path} is damaged: {detail}")]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What SQLite found (page numbers, table names; never row contents).
        detail: String,
    },
    /// Anything else (permissions, a full disk, a failed migration).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Most lines of `quick_check` output quoted in [`OpenError::Damaged`].
const DAMAGE_LINES_MAX: usize = 3;

/// Whether `e` is SQLite saying the file is damaged or not a database at all
/// (`SQLITE_CORRUPT`, `SQLITE_NOTADB`, with any extended code).
fn is_damage(e: &sqlx::Error) -> bool {
    const SQLITE_CORRUPT: i32 = 11;
    const SQLITE_NOTADB: i32 = 26;
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, SQLITE_CORRUPT | SQLITE_NOTADB))
}

impl SqliteStore {
    /// Opens (creating if needed, mode 0600) `dir/auth.db`, checks its integrity
    /// (`PRAGMA quick_check`: every page and record well formed, in time linear in the
    /// file's size) and applies the migrations. A damaged database is refused, never
    /// served or written to.
    pub async fn open(dir: &Path) -> Result<Self, OpenError> {
        let path = dir.join(DB_FILE);
        // Create the file ourselves so it (and the WAL/SHM files SQLite derives from
        // it) is readable by the owner only.
        match crate::keys::create_private(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::new(format!("{}: {e}", path.display())).into()),
        }
        let damaged = |detail: String| OpenError::Damaged {
            path: path.clone(),
            detail,
        };
        let checked = |e: sqlx::Error| {
            if is_damage(&e) {
                damaged(e.to_string())
            } else {
                OpenError::Store(e.into())
            }
        };
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .disable_statement_logging();
        let mut conn = options.connect().await.map_err(checked)?;
        let findings: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_all(&mut conn)
            .await
            .map_err(checked)?;
        if findings != ["ok"] {
            let mut detail = findings
                .iter()
                .take(DAMAGE_LINES_MAX)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join("; ");
            if findings.len() > DAMAGE_LINES_MAX {
                detail.push_str(&format!(
                    " (and {} more findings)",
                    findings.len() - DAMAGE_LINES_MAX
                ));
            }
            let _ = conn.close().await;
            return Err(damaged(format!("integrity check failed: {detail}")));
        }
        sqlx::migrate!("./migrations")
            .run(&mut conn)
            .await
            .map_err(StoreError::from)?;
        let writer = Writer::spawn(conn);
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(checked)?;
        Ok(Self { writer, reader })
    }
}

async fn load_user(
    conn: &mut SqliteConnection,
    uid: &str,
) -> Result<Option<UserRecord>, StoreError> {
    let Some(row) =
        sqlx::query(
            "SELECT uid, env, anonymous, created_at, updated_at, name, picture FROM users WHERE uid = ?",
        )
        .bind(uid)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut user = UserRecord {
        uid: row.try_get("uid")?,
        env: row.try_get("env")?,
        anonymous: row.try_get("anonymous")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        identities: Vec::new(),
        name: row.try_get("name")?,
        picture: row.try_get("picture")?,
    };
    let rows = sqlx::query(
        "SELECT appid, openid, unionid FROM identities WHERE uid = ? ORDER BY created_at, appid",
    )
    .bind(uid)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        user.identities.push(Identity {
            appid: row.try_get("appid")?,
            openid: row.try_get("openid")?,
            unionid: row.try_get("unionid")?,
        });
    }
    Ok(Some(user))
}

/// Creates env `env` if it does not exist yet.
async fn insert_env(conn: &mut SqliteConnection, env: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO envs (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING")
        .bind(env)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_user(conn: &mut SqliteConnection, user: &UserRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO users (uid, env, anonymous, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&user.uid)
    .bind(&user.env)
    .bind(user.anonymous)
    .bind(user.created_at)
    .bind(user.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_family(
    conn: &mut SqliteConnection,
    uid: &str,
    env: &str,
    family: &NewFamily,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO families (id, uid, env, created_at) VALUES (?, ?, ?, ?)")
        .bind(&family.id)
        .bind(uid)
        .bind(env)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO refresh_tokens (hash, family, issued_at, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(&family.refresh_hash[..])
    .bind(&family.id)
    .bind(now)
    .bind(family.refresh_expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_identity(
    conn: &mut SqliteConnection,
    uid: &str,
    env: &str,
    identity: &Identity,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO identities (env, appid, openid, unionid, uid, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (env, appid, openid) DO UPDATE SET unionid = COALESCE(excluded.unionid, unionid)",
    )
    .bind(env)
    .bind(&identity.appid)
    .bind(&identity.openid)
    .bind(&identity.unionid)
    .bind(uid)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn identity_owner(
    conn: &mut SqliteConnection,
    env: &str,
    identity: &Identity,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT uid FROM identities WHERE env = ? AND appid = ? AND openid = ?")
            .bind(env)
            .bind(&identity.appid)
            .bind(&identity.openid)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

fn missing_user(uid: &str) -> StoreError {
    StoreError::new(format!("user {uid} vanished inside a transaction"))
}

/// The body of [`Store::rotate_refresh`], inside the writer's transaction.
async fn rotate(
    conn: &mut SqliteConnection,
    hash: &Hash,
    env: &str,
    successor: &Successor,
    now: i64,
    grace_secs: i64,
) -> Result<Rotation, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT rt.family, rt.expires_at, rt.rotated_at, rt.successor_hash, rt.successor_sealed,
                f.uid, f.revoked_at
         FROM refresh_tokens rt JOIN families f ON f.id = rt.family
         WHERE rt.hash = ? AND f.env = ?",
    )
    .bind(&hash[..])
    .bind(env)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(Rotation::Invalid);
    };
    let family: String = row.try_get("family")?;
    let uid: String = row.try_get("uid")?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    let expires_at: i64 = row.try_get("expires_at")?;
    let rotated_at: Option<i64> = row.try_get("rotated_at")?;
    if revoked_at.is_some() {
        return Ok(Rotation::Invalid);
    }
    match rotated_at {
        None if expires_at <= now => Ok(Rotation::Invalid),
        None => {
            sqlx::query(
                "UPDATE refresh_tokens SET rotated_at = ?, successor_hash = ?, successor_sealed = ?
                 WHERE hash = ?",
            )
            .bind(now)
            .bind(&successor.hash[..])
            .bind(&successor.sealed)
            .bind(&hash[..])
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO refresh_tokens (hash, family, issued_at, expires_at) VALUES (?, ?, ?, ?)",
            )
            .bind(&successor.hash[..])
            .bind(&family)
            .bind(now)
            .bind(successor.expires_at)
            .execute(&mut *conn)
            .await?;
            let user = load_user(conn, &uid)
                .await?
                .ok_or_else(|| missing_user(&uid))?;
            Ok(Rotation::Rotated { family, user })
        }
        Some(at) if now.saturating_sub(at) < grace_secs => {
            let successor_hash: Option<Vec<u8>> = row.try_get("successor_hash")?;
            let successor_sealed: Option<Vec<u8>> = row.try_get("successor_sealed")?;
            let (Some(successor_hash), Some(successor_sealed)) = (successor_hash, successor_sealed)
            else {
                return Ok(Rotation::Invalid);
            };
            let user = load_user(conn, &uid)
                .await?
                .ok_or_else(|| missing_user(&uid))?;
            Ok(Rotation::Replayed {
                family,
                user,
                successor_hash,
                successor_sealed,
            })
        }
        Some(_) => {
            sqlx::query("UPDATE families SET revoked_at = ? WHERE id = ?")
                .bind(now)
                .bind(&family)
                .execute(&mut *conn)
                .await?;
            Ok(Rotation::ReuseDetected)
        }
    }
}

/// The body of [`Store::bind_identity`], inside the writer's transaction.
async fn bind(
    conn: &mut SqliteConnection,
    uid: &str,
    env: &str,
    identity: &Identity,
    now: i64,
) -> Result<BindOutcome, StoreError> {
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE uid = ?")
        .bind(uid)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_none() {
        return Ok(BindOutcome::NoUser);
    }
    match identity_owner(conn, env, identity).await? {
        Some(owner) if owner != uid => return Ok(BindOutcome::BoundElsewhere),
        Some(_) => {}
        None => {
            let other: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM identities WHERE uid = ? AND appid = ?")
                    .bind(uid)
                    .bind(&identity.appid)
                    .fetch_optional(&mut *conn)
                    .await?;
            if other.is_some() {
                return Ok(BindOutcome::AppAlreadyLinked);
            }
        }
    }
    insert_identity(conn, uid, env, identity, now).await?;
    sqlx::query("UPDATE users SET anonymous = 0, updated_at = ? WHERE uid = ?")
        .bind(now)
        .bind(uid)
        .execute(&mut *conn)
        .await?;
    Ok(BindOutcome::Bound)
}

/// The body of [`Store::update_profile`], inside the writer's transaction.
async fn set_profile(
    conn: &mut SqliteConnection,
    uid: &str,
    name: Option<&str>,
    picture: Option<&str>,
    now: i64,
) -> Result<Option<UserRecord>, StoreError> {
    let done = sqlx::query(
        "UPDATE users SET name = COALESCE(?, name), picture = COALESCE(?, picture), updated_at = ?
         WHERE uid = ?",
    )
    .bind(name)
    .bind(picture)
    .bind(now)
    .bind(uid)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    load_user(conn, uid).await
}

/// The body of [`Store::import_users`], inside the writer's transaction (an error rolls
/// every user of the import back).
async fn import(
    conn: &mut SqliteConnection,
    users: &[UserRecord],
    now: i64,
) -> Result<(), StoreError> {
    for user in users {
        insert_env(conn, &user.env, now).await?;
        sqlx::query(
            "INSERT INTO users (uid, env, anonymous, created_at, updated_at, name, picture)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (uid) DO UPDATE SET env = excluded.env, anonymous = excluded.anonymous,
               created_at = excluded.created_at, updated_at = excluded.updated_at,
               name = excluded.name, picture = excluded.picture",
        )
        .bind(&user.uid)
        .bind(&user.env)
        .bind(user.anonymous)
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(&user.name)
        .bind(&user.picture)
        .execute(&mut *conn)
        .await?;
        for identity in &user.identities {
            if let Some(owner) = identity_owner(conn, &user.env, identity).await?
                && owner != user.uid
            {
                return Err(StoreError::new(format!(
                    "openid {} of appid {} belongs to user {owner} and to user {}",
                    identity.openid, identity.appid, user.uid
                )));
            }
            let second: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM identities WHERE uid = ? AND appid = ? AND openid <> ?",
            )
            .bind(&user.uid)
            .bind(&identity.appid)
            .bind(&identity.openid)
            .fetch_optional(&mut *conn)
            .await?;
            if second.is_some() {
                return Err(StoreError::new(format!(
                    "user {} would have two openids of appid {}",
                    user.uid, identity.appid
                )));
            }
            insert_identity(conn, &user.uid, &user.env, identity, user.created_at).await?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn ensure_env(&self, env: &str, now: i64) -> Result<(), StoreError> {
        let env = env.to_owned();
        self.writer
            .write(move |conn| Box::pin(async move { insert_env(conn, &env, now).await }))
            .await
    }

    async fn list_envs(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM envs ORDER BY id")
            .fetch_all(&self.reader)
            .await?)
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.reader)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn create_anonymous(
        &self,
        user: &UserRecord,
        family: &NewFamily,
        now: i64,
    ) -> Result<(), StoreError> {
        let (user, family) = (user.clone(), family.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    insert_env(conn, &user.env, now).await?;
                    insert_user(conn, &user).await?;
                    insert_family(conn, &user.uid, &user.env, &family, now).await
                })
            })
            .await
    }

    async fn sign_in_identity(
        &self,
        env: &str,
        identity: &Identity,
        new_uid: &str,
        family: &NewFamily,
        now: i64,
    ) -> Result<UserRecord, StoreError> {
        let (env, identity, new_uid, family) = (
            env.to_owned(),
            identity.clone(),
            new_uid.to_owned(),
            family.clone(),
        );
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let uid = match identity_owner(conn, &env, &identity).await? {
                        Some(uid) => uid,
                        None => {
                            let user = UserRecord::new(new_uid.clone(), env.clone(), false, now);
                            insert_env(conn, &env, now).await?;
                            insert_user(conn, &user).await?;
                            new_uid
                        }
                    };
                    // Also records a unionid WeChat gave only now.
                    insert_identity(conn, &uid, &env, &identity, now).await?;
                    insert_family(conn, &uid, &env, &family, now).await?;
                    load_user(conn, &uid)
                        .await?
                        .ok_or_else(|| missing_user(&uid))
                })
            })
            .await
    }

    async fn rotate_refresh(
        &self,
        hash: &Hash,
        env: &str,
        successor: &Successor,
        now: i64,
        grace_secs: i64,
    ) -> Result<Rotation, StoreError> {
        let (hash, env, successor) = (*hash, env.to_owned(), successor.clone());
        self.writer
            .write(move |conn| {
                Box::pin(
                    async move { rotate(conn, &hash, &env, &successor, now, grace_secs).await },
                )
            })
            .await
    }

    async fn family_of_refresh(
        &self,
        hash: &Hash,
        env: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT rt.family FROM refresh_tokens rt JOIN families f ON f.id = rt.family
             WHERE rt.hash = ? AND f.env = ?",
        )
        .bind(&hash[..])
        .bind(env)
        .fetch_optional(&self.reader)
        .await?)
    }

    async fn revoke_family(&self, family: &str, now: i64) -> Result<bool, StoreError> {
        let family = family.to_owned();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    )
                    .bind(now)
                    .bind(&family)
                    .execute(&mut *conn)
                    .await?;
                    Ok(done.rows_affected() > 0)
                })
            })
            .await
    }

    async fn session_user(&self, family: &str) -> Result<Option<UserRecord>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let uid: Option<String> =
            sqlx::query_scalar("SELECT uid FROM families WHERE id = ? AND revoked_at IS NULL")
                .bind(family)
                .fetch_optional(&mut *conn)
                .await?;
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
        let (hash, grant) = (*hash, grant.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO provider_tokens (hash, env, appid, openid, unionid, expires_at)
                         VALUES (?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&hash[..])
                    .bind(&grant.env)
                    .bind(&grant.identity.appid)
                    .bind(&grant.identity.openid)
                    .bind(&grant.identity.unionid)
                    .bind(grant.expires_at)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    async fn take_provider_grant(
        &self,
        hash: &Hash,
        env: &str,
        now: i64,
    ) -> Result<Option<ProviderGrant>, StoreError> {
        let (hash, env) = (*hash, env.to_owned());
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "DELETE FROM provider_tokens WHERE hash = ? AND env = ?
                         RETURNING env, appid, openid, unionid, expires_at",
                    )
                    .bind(&hash[..])
                    .bind(&env)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    let grant = ProviderGrant {
                        env: row.try_get("env")?,
                        identity: Identity {
                            appid: row.try_get("appid")?,
                            openid: row.try_get("openid")?,
                            unionid: row.try_get("unionid")?,
                        },
                        expires_at: row.try_get("expires_at")?,
                    };
                    Ok((grant.expires_at > now).then_some(grant))
                })
            })
            .await
    }

    async fn bind_identity(
        &self,
        uid: &str,
        env: &str,
        identity: &Identity,
        now: i64,
    ) -> Result<BindOutcome, StoreError> {
        let (uid, env, identity) = (uid.to_owned(), env.to_owned(), identity.clone());
        self.writer
            .write(move |conn| {
                Box::pin(async move { bind(conn, &uid, &env, &identity, now).await })
            })
            .await
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let mut identities: HashMap<String, Vec<Identity>> = HashMap::new();
        for row in sqlx::query(
            "SELECT uid, appid, openid, unionid FROM identities ORDER BY created_at, appid",
        )
        .fetch_all(&mut *conn)
        .await?
        {
            identities
                .entry(row.try_get("uid")?)
                .or_default()
                .push(Identity {
                    appid: row.try_get("appid")?,
                    openid: row.try_get("openid")?,
                    unionid: row.try_get("unionid")?,
                });
        }
        let rows = sqlx::query(
            "SELECT uid, env, anonymous, created_at, updated_at, name, picture FROM users
             ORDER BY created_at, uid",
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut users = Vec::with_capacity(rows.len());
        for row in rows {
            let uid: String = row.try_get("uid")?;
            users.push(UserRecord {
                identities: identities.remove(&uid).unwrap_or_default(),
                env: row.try_get("env")?,
                anonymous: row.try_get("anonymous")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                name: row.try_get("name")?,
                picture: row.try_get("picture")?,
                uid,
            });
        }
        Ok(users)
    }

    async fn update_profile(
        &self,
        uid: &str,
        name: Option<&str>,
        picture: Option<&str>,
        now: i64,
    ) -> Result<Option<UserRecord>, StoreError> {
        let (uid, name, picture) = (
            uid.to_owned(),
            name.map(str::to_owned),
            picture.map(str::to_owned),
        );
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    set_profile(conn, &uid, name.as_deref(), picture.as_deref(), now).await
                })
            })
            .await
    }

    async fn delete_user(&self, uid: &str) -> Result<bool, StoreError> {
        let uid = uid.to_owned();
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    // Identities and families (with their refresh tokens) go by
                    // `ON DELETE CASCADE`: every device is signed out.
                    let done = sqlx::query("DELETE FROM users WHERE uid = ?")
                        .bind(&uid)
                        .execute(&mut *conn)
                        .await?;
                    Ok(done.rows_affected() > 0)
                })
            })
            .await
    }

    async fn import_users(&self, users: &[UserRecord], now: i64) -> Result<(), StoreError> {
        let users = users.to_vec();
        self.writer
            .write(move |conn| Box::pin(async move { import(conn, &users, now).await }))
            .await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    for table in [
                        "provider_tokens",
                        "refresh_tokens",
                        "families",
                        "identities",
                        "users",
                    ] {
                        sqlx::query(&format!("DELETE FROM {table}"))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        self.writer
            .write(move |conn| {
                Box::pin(async move {
                    let a = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= ?")
                        .bind(now)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                    let b = sqlx::query("DELETE FROM provider_tokens WHERE expires_at <= ?")
                        .bind(now)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                    Ok(a + b)
                })
            })
            .await
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_rolls_back_alone_in_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        store.ensure_env("e", 0).await.unwrap();
        let tasks: Vec<_> = (0..64u8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    // Two writers claim the same uid: exactly one of them fails.
                    let uid = if i == 7 || i == 8 {
                        "dup".to_owned()
                    } else {
                        format!("u{i}")
                    };
                    let user = UserRecord::new(uid, "e".into(), true, 0);
                    let family = NewFamily::new(format!("f{i}"), [i; 32], 100);
                    store.create_anonymous(&user, &family, 0).await.is_ok()
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            ok += usize::from(t.await.unwrap());
        }
        assert_eq!(ok, 63);
        assert_eq!(store.list_users().await.unwrap().len(), 63);
        // The failed write left no family behind either.
        let dup_families: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM families WHERE uid = 'dup'")
                .fetch_one(&store.reader)
                .await
                .unwrap();
        assert_eq!(dup_families, 1);
        store.close().await;
        assert!(
            store.ensure_env("x", 0).await.is_err(),
            "closed stores refuse writes"
        );
    }
}
