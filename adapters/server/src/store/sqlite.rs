//! The SQLite store: `rusqlite` connections driven without an async hop per statement;
//! the schema's migrations are embedded and applied at open (sqlx's migrator, so data
//! dirs of earlier versions open unchanged). Every SQL statement of this backend is in
//! this file.
//!
//! **Durability.** The database runs in WAL mode with `synchronous=FULL`: every commit
//! fsyncs the WAL before the handler answers, so a reply a client received survives a
//! process kill *and* a power cut. (`NORMAL` with WAL would survive a process kill too,
//! since the WAL is in the OS page cache, but could lose the last commits on power
//! loss, and an auth server must not forget a refresh token it just handed out.)
//!
//! **Concurrency.** All writes go through one connection owned by the group-commit
//! writer thread (`writer.rs`): writes are serialized in-process, never fail with
//! `SQLITE_BUSY` on a read-to-write upgrade, and concurrent ones share one commit (one
//! fsync). Serial execution is also what makes rotation atomic. Reads use a few
//! separate connections and, thanks to WAL, never wait for the writer; a read is a
//! handful of indexed lookups (microseconds), so it runs on the calling task's thread
//! instead of paying a hand-off to another one. Whole-table reads (export, counts) run
//! on tokio's blocking pool.

use super::writer::{Failure, Writer};
use super::{
    BindOutcome, Identity, NewFamily, ProviderGrant, Rotation, SessionRecord, Store, StoreError,
    StoredKey, Successor, UserQuery, UserRecord,
};
use crate::secrets::Hash;
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        // SQLite messages name statements and constraints, never bound values.
        StoreError::new(e.to_string())
    }
}

/// Read connections: enough for the runtime's worker threads to read side by side.
const READERS: usize = 4;
/// Prepared statements kept per connection (every statement of this file fits).
const STATEMENT_CACHE: usize = 64;
/// Page size of a new database file.
const PAGE_SIZE: u32 = 1024;
/// WAL pages that trigger a checkpoint on the writer. Above SQLite's 1000: a page
/// rewritten by many batches reaches the database file once per checkpoint.
const WAL_AUTOCHECKPOINT: i64 = 8192;
/// How long a connection waits for a lock held by another process (a second server
/// is refused by the data dir's lock, so this is only a safety net).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Readers>,
}

/// The read connections; a read takes the first one free.
#[derive(Debug)]
struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Readers {
    /// Runs `read` on a free connection (waiting for one only when all are busy).
    fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.conns.len();
        for i in 0..n {
            if let Ok(conn) = self.conns[(start + i) % n].try_lock() {
                return Ok(read(&conn)?);
            }
        }
        let conn = self.conns[start % n]
            .lock()
            .map_err(|_| StoreError::new("a read connection was poisoned"))?;
        Ok(read(&conn)?)
    }

    /// Runs a long `read` (a whole table) on the blocking pool.
    async fn with_blocking<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.conns[0]
                .lock()
                .map_err(|_| StoreError::new("a read connection was poisoned"))?;
            read(&conn)
        })
        .await
        .map_err(|e| StoreError::new(format!("read task failed: {e}")))?
    }
}

/// Runs the statements of `read` in one read transaction: they see one snapshot, and
/// SQLite takes and releases its WAL read lock (two `fcntl` calls) once instead of
/// once per statement.
fn in_snapshot<T>(
    conn: &Connection,
    read: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    conn.prepare_cached("BEGIN")?.execute([])?;
    let value = read(conn);
    // A failed statement may have ended the transaction already.
    let end = if conn.is_autocommit() {
        Ok(0)
    } else if value.is_ok() {
        conn.prepare_cached("COMMIT")?.execute([])
    } else {
        conn.prepare_cached("ROLLBACK")?.execute([])
    };
    let value = value?;
    end?;
    Ok(value)
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

/// Opens one runtime connection: `synchronous` and `foreign_keys` are per connection.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
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
        // The check and the migrations run once, on a connection of sqlx's migrator
        // (its `_sqlx_migrations` table records what every data dir has applied).
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            // Only a new file takes it (an existing one keeps its page size). Every
            // sign-in dirties a leaf in each of its B-trees, keyed by random ids, and a
            // commit writes each dirty page whole to the WAL: smaller pages, fewer
            // bytes written and checksummed per acknowledged write.
            .page_size(PAGE_SIZE)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
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
        conn.close().await.map_err(StoreError::from)?;

        let opened = tokio::task::spawn_blocking(move || {
            let writer = connect(&path)?;
            writer.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)?;
            let readers = (0..READERS)
                .map(|_| connect(&path).map(Mutex::new))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, StoreError>((writer, readers))
        })
        .await
        .map_err(|e| StoreError::new(format!("open task failed: {e}")))?;
        let (writer, conns) = opened?;
        Ok(Self {
            writer: Writer::spawn(writer)?,
            readers: Arc::new(Readers {
                conns,
                next: AtomicUsize::new(0),
            }),
        })
    }
}

/// The columns [`user_row`] reads, in its order: a macro, so statements are `concat!`ed at
/// compile time (no string built per request on the `user/me` path).
macro_rules! user_columns {
    () => {
        "uid, env, anonymous, created_at, updated_at, name, picture, disabled_at, last_sign_in_at"
    };
}

/// A `users` row selected as `user_columns!()`, without its identities.
fn user_row(row: &rusqlite::Row<'_>) -> Result<UserRecord, rusqlite::Error> {
    Ok(UserRecord {
        uid: row.get(0)?,
        env: row.get(1)?,
        anonymous: row.get(2)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
        identities: Vec::new(),
        name: row.get(5)?,
        picture: row.get(6)?,
        disabled_at: row.get(7)?,
        last_sign_in_at: row.get(8)?,
    })
}

fn load_user(conn: &Connection, uid: &str) -> Result<Option<UserRecord>, rusqlite::Error> {
    let Some(mut user) = conn
        .prepare_cached(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE uid = ?"
        ))?
        .query_row([uid], user_row)
        .optional()?
    else {
        return Ok(None);
    };
    let mut identities = conn.prepare_cached(
        "SELECT appid, openid, unionid FROM identities WHERE uid = ? ORDER BY created_at, appid",
    )?;
    let rows = identities.query_map([uid], |row| {
        Ok(Identity {
            appid: row.get(0)?,
            openid: row.get(1)?,
            unionid: row.get(2)?,
        })
    })?;
    for identity in rows {
        user.identities.push(identity?);
    }
    Ok(Some(user))
}

/// Inserts a signing key row; an error if its `kid` exists already.
fn insert_signing_key(conn: &Connection, key: &StoredKey) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO signing_keys
         (kid, public_key, sealed_private, created_at, active_from, retired_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        key.kid,
        key.public_key,
        key.sealed_private,
        key.created_at,
        key.active_from,
        key.retired_at
    ])?;
    Ok(())
}

/// Creates env `env` if it does not exist yet.
fn insert_env(conn: &Connection, env: &str, now: i64) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO envs (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![env, now])?;
    Ok(())
}

/// Inserts a user signing in for the first time (at `now`).
fn insert_user(conn: &Connection, user: &UserRecord, now: i64) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO users (uid, env, anonymous, created_at, updated_at, last_sign_in_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        user.uid,
        user.env,
        user.anonymous,
        user.created_at,
        user.updated_at,
        now
    ])?;
    Ok(())
}

fn insert_family(
    conn: &Connection,
    uid: &str,
    env: &str,
    family: &NewFamily,
    now: i64,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO families (id, uid, env, created_at, device_id) VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![family.id, uid, env, now, family.device_id])?;
    insert_refresh(
        conn,
        &family.refresh_hash,
        &family.id,
        now,
        family.refresh_expires_at,
    )
}

fn insert_refresh(
    conn: &Connection,
    hash: &Hash,
    family: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (hash, family, issued_at, expires_at) VALUES (?, ?, ?, ?)",
    )?
    .execute(params![&hash[..], family, now, expires_at])?;
    Ok(())
}

fn insert_identity(
    conn: &Connection,
    uid: &str,
    env: &str,
    identity: &Identity,
    now: i64,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO identities (env, appid, openid, unionid, uid, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (env, appid, openid) DO UPDATE SET unionid = COALESCE(excluded.unionid, unionid)",
    )?
    .execute(params![
        env,
        identity.appid,
        identity.openid,
        identity.unionid,
        uid,
        now
    ])?;
    Ok(())
}

fn identity_owner(
    conn: &Connection,
    env: &str,
    identity: &Identity,
) -> Result<Option<String>, rusqlite::Error> {
    conn.prepare_cached("SELECT uid FROM identities WHERE env = ? AND appid = ? AND openid = ?")?
        .query_row(params![env, identity.appid, identity.openid], |row| {
            row.get(0)
        })
        .optional()
}

fn missing_user(uid: &str) -> Failure {
    Failure::Store(StoreError::new(format!(
        "user {uid} vanished inside a transaction"
    )))
}

/// A refresh token's row joined with its family.
struct RefreshRow {
    family: String,
    expires_at: i64,
    rotated_at: Option<i64>,
    successor_hash: Option<Vec<u8>>,
    successor_sealed: Option<Vec<u8>>,
    uid: String,
    revoked_at: Option<i64>,
    disabled_at: Option<i64>,
}

/// The body of [`Store::rotate_refresh`], inside the writer's transaction.
fn rotate(
    conn: &Connection,
    hash: &Hash,
    env: &str,
    successor: &Successor,
    now: i64,
    grace_secs: i64,
) -> Result<Rotation, Failure> {
    let Some(row) = conn
        .prepare_cached(
            "SELECT rt.family, rt.expires_at, rt.rotated_at, rt.successor_hash, rt.successor_sealed,
                    f.uid, f.revoked_at, u.disabled_at
             FROM refresh_tokens rt JOIN families f ON f.id = rt.family
               JOIN users u ON u.uid = f.uid
             WHERE rt.hash = ? AND f.env = ?",
        )?
        .query_row(params![&hash[..], env], |row| {
            Ok(RefreshRow {
                family: row.get(0)?,
                expires_at: row.get(1)?,
                rotated_at: row.get(2)?,
                successor_hash: row.get(3)?,
                successor_sealed: row.get(4)?,
                uid: row.get(5)?,
                revoked_at: row.get(6)?,
                disabled_at: row.get(7)?,
            })
        })
        .optional()?
    else {
        return Ok(Rotation::Invalid);
    };
    if row.revoked_at.is_some() {
        return Ok(Rotation::Invalid);
    }
    match row.rotated_at {
        None if row.expires_at <= now => Ok(Rotation::Invalid),
        None if row.disabled_at.is_some() => Ok(Rotation::UserDisabled),
        None => {
            conn.prepare_cached(
                "UPDATE refresh_tokens SET rotated_at = ?, successor_hash = ?, successor_sealed = ?
                 WHERE hash = ?",
            )?
            .execute(params![
                now,
                &successor.hash[..],
                successor.sealed,
                &hash[..]
            ])?;
            insert_refresh(
                conn,
                &successor.hash,
                &row.family,
                now,
                successor.expires_at,
            )?;
            conn.prepare_cached("UPDATE families SET last_used_at = ? WHERE id = ?")?
                .execute(params![now, row.family])?;
            let user = load_user(conn, &row.uid)?.ok_or_else(|| missing_user(&row.uid))?;
            Ok(Rotation::Rotated {
                family: row.family,
                user,
            })
        }
        Some(_) if row.disabled_at.is_some() => Ok(Rotation::UserDisabled),
        Some(at) if now.saturating_sub(at) < grace_secs => {
            let (Some(successor_hash), Some(successor_sealed)) =
                (row.successor_hash, row.successor_sealed)
            else {
                return Ok(Rotation::Invalid);
            };
            let user = load_user(conn, &row.uid)?.ok_or_else(|| missing_user(&row.uid))?;
            Ok(Rotation::Replayed {
                family: row.family,
                user,
                successor_hash,
                successor_sealed,
            })
        }
        Some(_) => {
            conn.prepare_cached("UPDATE families SET revoked_at = ? WHERE id = ?")?
                .execute(params![now, row.family])?;
            Ok(Rotation::ReuseDetected)
        }
    }
}

/// The body of [`Store::bind_identity`], inside the writer's transaction.
fn bind(
    conn: &Connection,
    uid: &str,
    env: &str,
    identity: &Identity,
    now: i64,
) -> Result<BindOutcome, rusqlite::Error> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM users WHERE uid = ?")?
        .exists([uid])?;
    if !exists {
        return Ok(BindOutcome::NoUser);
    }
    match identity_owner(conn, env, identity)? {
        Some(owner) if owner != uid => return Ok(BindOutcome::BoundElsewhere),
        Some(_) => {}
        None => {
            let other = conn
                .prepare_cached("SELECT 1 FROM identities WHERE uid = ? AND appid = ?")?
                .exists(params![uid, identity.appid])?;
            if other {
                return Ok(BindOutcome::AppAlreadyLinked);
            }
        }
    }
    insert_identity(conn, uid, env, identity, now)?;
    conn.prepare_cached("UPDATE users SET anonymous = 0, updated_at = ? WHERE uid = ?")?
        .execute(params![now, uid])?;
    Ok(BindOutcome::Bound)
}

/// The body of [`Store::update_profile`], inside the writer's transaction: `None` when
/// the user is gone.
fn set_profile(
    conn: &Connection,
    uid: &str,
    name: Option<&str>,
    picture: Option<&str>,
    now: i64,
) -> Result<Option<UserRecord>, rusqlite::Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE users SET name = COALESCE(?, name), picture = COALESCE(?, picture),
               updated_at = ? WHERE uid = ?",
        )?
        .execute(params![name, picture, now, uid])?;
    if changed == 0 {
        return Ok(None);
    }
    load_user(conn, uid)
}

/// The body of [`Store::import_users`], inside the writer's transaction (an error rolls
/// every user of the import back).
fn import(conn: &Connection, users: &[UserRecord], now: i64) -> Result<(), Failure> {
    for user in users {
        insert_env(conn, &user.env, now)?;
        conn.prepare_cached(
            "INSERT INTO users (uid, env, anonymous, created_at, updated_at, name, picture,
               disabled_at, last_sign_in_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (uid) DO UPDATE SET env = excluded.env, anonymous = excluded.anonymous,
               created_at = excluded.created_at, updated_at = excluded.updated_at,
               name = excluded.name, picture = excluded.picture,
               disabled_at = excluded.disabled_at, last_sign_in_at = excluded.last_sign_in_at",
        )?
        .execute(params![
            user.uid,
            user.env,
            user.anonymous,
            user.created_at,
            user.updated_at,
            user.name,
            user.picture,
            user.disabled_at,
            user.last_sign_in_at
        ])?;
        for identity in &user.identities {
            if let Some(owner) = identity_owner(conn, &user.env, identity)?
                && owner != user.uid
            {
                return Err(Failure::Store(StoreError::new(format!(
                    "openid {} of appid {} belongs to user {owner} and to user {}",
                    identity.openid, identity.appid, user.uid
                ))));
            }
            let second = conn
                .prepare_cached(
                    "SELECT 1 FROM identities WHERE uid = ? AND appid = ? AND openid <> ?",
                )?
                .exists(params![user.uid, identity.appid, identity.openid])?;
            if second {
                return Err(Failure::Store(StoreError::new(format!(
                    "user {} would have two openids of appid {}",
                    user.uid, identity.appid
                ))));
            }
            insert_identity(conn, &user.uid, &user.env, identity, user.created_at)?;
        }
    }
    Ok(())
}

/// Every user with its identities, oldest first (a whole-table read).
fn all_users(conn: &Connection) -> Result<Vec<UserRecord>, rusqlite::Error> {
    let mut identities: HashMap<String, Vec<Identity>> = HashMap::new();
    let mut statement = conn
        .prepare("SELECT uid, appid, openid, unionid FROM identities ORDER BY created_at, appid")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        identities.entry(row.get(0)?).or_default().push(Identity {
            appid: row.get(1)?,
            openid: row.get(2)?,
            unionid: row.get(3)?,
        });
    }
    let mut statement = conn.prepare(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users ORDER BY created_at, uid"
    ))?;
    let mut rows = statement.query([])?;
    let mut users = Vec::new();
    while let Some(row) = rows.next()? {
        let mut user = user_row(row)?;
        user.identities = identities.remove(&user.uid).unwrap_or_default();
        users.push(user);
    }
    Ok(users)
}

/// Keyset lookups of [`Store::search_users`]: each reads one index range from the uid
/// after the previous page, so a page costs the same at any depth.
const PAGE_ALL: &str = "SELECT uid FROM users WHERE uid > ? ORDER BY uid LIMIT ?";
const PAGE_UID_PREFIX: &str =
    "SELECT uid FROM users WHERE uid > ? AND uid >= ? AND uid < ? ORDER BY uid LIMIT ?";
const PAGE_OPENID: &str =
    "SELECT DISTINCT uid FROM identities WHERE openid = ? AND uid > ? ORDER BY uid LIMIT ?";
const PAGE_NAME: &str = "SELECT uid FROM users WHERE name = ? AND uid > ? ORDER BY uid LIMIT ?";

/// The body of [`Store::search_users`] on one read connection.
fn search(conn: &Connection, query: &UserQuery) -> Result<Vec<UserRecord>, rusqlite::Error> {
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    // Every uid is greater than the empty string.
    let after = query.after.as_deref().unwrap_or("");
    let column = |row: &rusqlite::Row<'_>| row.get::<_, String>(0);
    let mut uids = BTreeSet::new();
    match query.text.as_deref() {
        None => {
            for uid in conn
                .prepare_cached(PAGE_ALL)?
                .query_map(params![after, limit], column)?
            {
                uids.insert(uid?);
            }
        }
        Some(text) => {
            // Every string starting with `text` sorts below `text` + the last code point
            // (SQLite compares UTF-8 bytes, which is code point order).
            let end = format!("{text}\u{10FFFF}");
            for uid in conn
                .prepare_cached(PAGE_UID_PREFIX)?
                .query_map(params![after, text, end, limit], column)?
            {
                uids.insert(uid?);
            }
            for uid in conn
                .prepare_cached(PAGE_OPENID)?
                .query_map(params![text, after, limit], column)?
            {
                uids.insert(uid?);
            }
            for uid in conn
                .prepare_cached(PAGE_NAME)?
                .query_map(params![text, after, limit], column)?
            {
                uids.insert(uid?);
            }
        }
    }
    let mut users = Vec::with_capacity(query.limit.min(uids.len()));
    for uid in uids.iter().take(query.limit) {
        if let Some(user) = load_user(conn, uid)? {
            users.push(user);
        }
    }
    Ok(users)
}

/// The live sessions of `uid` at `now`, oldest first.
fn live_sessions(
    conn: &Connection,
    uid: &str,
    now: i64,
) -> Result<Vec<SessionRecord>, rusqlite::Error> {
    let mut statement = conn.prepare_cached(
        "SELECT f.id, f.device_id, f.created_at, f.last_used_at FROM families f
         WHERE f.uid = ? AND f.revoked_at IS NULL AND EXISTS (
           SELECT 1 FROM refresh_tokens rt
           WHERE rt.family = f.id AND rt.rotated_at IS NULL AND rt.expires_at > ?)
         ORDER BY f.created_at, f.id",
    )?;
    let rows = statement.query_map(params![uid, now], |row| {
        Ok(SessionRecord {
            id: row.get(0)?,
            device_id: row.get(1)?,
            created_at: row.get(2)?,
            last_used_at: row.get(3)?,
        })
    })?;
    rows.collect()
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn ensure_env(&self, env: &str, now: i64) -> Result<(), StoreError> {
        let env = env.to_owned();
        self.writer
            .write(move |conn| insert_env(conn, &env, now))
            .await
    }

    async fn list_envs(&self) -> Result<Vec<String>, StoreError> {
        self.readers
            .with_blocking(|conn| {
                let mut statement = conn.prepare("SELECT id FROM envs ORDER BY id")?;
                let envs = statement
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok(envs)
            })
            .await
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        self.readers
            .with_blocking(|conn| {
                let n: i64 = conn.query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
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
                insert_env(conn, &user.env, now)?;
                insert_user(conn, &user, now)?;
                insert_family(conn, &user.uid, &user.env, &family, now)
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
            .write_store(move |conn| {
                let uid = match identity_owner(conn, &env, &identity)? {
                    Some(uid) => {
                        let user = load_user(conn, &uid)?.ok_or_else(|| missing_user(&uid))?;
                        if user.disabled_at.is_some() {
                            return Ok(user);
                        }
                        conn.prepare_cached("UPDATE users SET last_sign_in_at = ? WHERE uid = ?")?
                            .execute(params![now, uid])?;
                        uid
                    }
                    None => {
                        let user = UserRecord::new(new_uid.clone(), env.clone(), false, now);
                        insert_env(conn, &env, now)?;
                        insert_user(conn, &user, now)?;
                        new_uid
                    }
                };
                // Also records a unionid WeChat gave only now.
                insert_identity(conn, &uid, &env, &identity, now)?;
                insert_family(conn, &uid, &env, &family, now)?;
                load_user(conn, &uid)?.ok_or_else(|| missing_user(&uid))
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
            .write_store(move |conn| rotate(conn, &hash, &env, &successor, now, grace_secs))
            .await
    }

    async fn family_of_refresh(
        &self,
        hash: &Hash,
        env: &str,
    ) -> Result<Option<String>, StoreError> {
        self.readers.with(|conn| {
            conn.prepare_cached(
                "SELECT rt.family FROM refresh_tokens rt JOIN families f ON f.id = rt.family
                 WHERE rt.hash = ? AND f.env = ?",
            )?
            .query_row(params![&hash[..], env], |row| row.get(0))
            .optional()
        })
    }

    async fn revoke_family(&self, family: &str, now: i64) -> Result<bool, StoreError> {
        let family = family.to_owned();
        self.writer
            .write(move |conn| {
                let changed = conn
                    .prepare_cached(
                        "UPDATE families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    )?
                    .execute(params![now, family])?;
                Ok(changed > 0)
            })
            .await
    }

    async fn session_user(&self, family: &str) -> Result<Option<UserRecord>, StoreError> {
        self.readers.with(|conn| {
            in_snapshot(conn, |conn| {
                let uid: Option<String> = conn
                    .prepare_cached("SELECT uid FROM families WHERE id = ? AND revoked_at IS NULL")?
                    .query_row([family], |row| row.get(0))
                    .optional()?;
                match uid {
                    Some(uid) => load_user(conn, &uid),
                    None => Ok(None),
                }
            })
        })
    }

    async fn put_provider_grant(
        &self,
        hash: &Hash,
        grant: &ProviderGrant,
    ) -> Result<(), StoreError> {
        let (hash, grant) = (*hash, grant.clone());
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO provider_tokens (hash, env, appid, openid, unionid, expires_at)
                     VALUES (?, ?, ?, ?, ?, ?)",
                )?
                .execute(params![
                    &hash[..],
                    grant.env,
                    grant.identity.appid,
                    grant.identity.openid,
                    grant.identity.unionid,
                    grant.expires_at
                ])?;
                Ok(())
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
                let grant = conn
                    .prepare_cached(
                        "DELETE FROM provider_tokens WHERE hash = ? AND env = ?
                         RETURNING env, appid, openid, unionid, expires_at",
                    )?
                    .query_row(params![&hash[..], env], |row| {
                        Ok(ProviderGrant {
                            env: row.get(0)?,
                            identity: Identity {
                                appid: row.get(1)?,
                                openid: row.get(2)?,
                                unionid: row.get(3)?,
                            },
                            expires_at: row.get(4)?,
                        })
                    })
                    .optional()?;
                Ok(grant.filter(|g| g.expires_at > now))
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
            .write(move |conn| bind(conn, &uid, &env, &identity, now))
            .await
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.readers
            .with_blocking(|conn| Ok(all_users(conn)?))
            .await
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
            .write(move |conn| set_profile(conn, &uid, name.as_deref(), picture.as_deref(), now))
            .await
    }

    async fn delete_user(&self, uid: &str) -> Result<bool, StoreError> {
        let uid = uid.to_owned();
        self.writer
            .write(move |conn| {
                // Identities and families (with their refresh tokens) go by
                // `ON DELETE CASCADE`: every device is signed out.
                let deleted = conn
                    .prepare_cached("DELETE FROM users WHERE uid = ?")?
                    .execute([&uid])?;
                Ok(deleted > 0)
            })
            .await
    }

    async fn import_users(&self, users: &[UserRecord], now: i64) -> Result<(), StoreError> {
        let users = users.to_vec();
        self.writer
            .write_store(move |conn| import(conn, &users, now))
            .await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                for table in [
                    "provider_tokens",
                    "refresh_tokens",
                    "families",
                    "identities",
                    "users",
                ] {
                    conn.execute(&format!("DELETE FROM {table}"), [])?;
                }
                Ok(())
            })
            .await
    }

    async fn search_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>, StoreError> {
        self.readers.with(|conn| search(conn, query))
    }

    async fn user_detail(
        &self,
        uid: &str,
        now: i64,
    ) -> Result<Option<(UserRecord, Vec<SessionRecord>)>, StoreError> {
        self.readers.with(|conn| {
            let Some(user) = load_user(conn, uid)? else {
                return Ok(None);
            };
            Ok(Some((user, live_sessions(conn, uid, now)?)))
        })
    }

    async fn set_disabled(
        &self,
        uid: &str,
        disabled: bool,
        now: i64,
    ) -> Result<Option<UserRecord>, StoreError> {
        let uid = uid.to_owned();
        self.writer
            .write(move |conn| {
                let changed = conn
                    .prepare_cached(
                        "UPDATE users SET updated_at = ?,
                           disabled_at = CASE WHEN ? THEN COALESCE(disabled_at, ?) ELSE NULL END
                         WHERE uid = ?",
                    )?
                    .execute(params![now, disabled, now, uid])?;
                if changed == 0 {
                    return Ok(None);
                }
                load_user(conn, &uid)
            })
            .await
    }

    async fn revoke_user_sessions(&self, uid: &str, now: i64) -> Result<Option<u64>, StoreError> {
        let uid = uid.to_owned();
        self.writer
            .write(move |conn| {
                let exists = conn
                    .prepare_cached("SELECT 1 FROM users WHERE uid = ?")?
                    .exists([&uid])?;
                if !exists {
                    return Ok(None);
                }
                let revoked = conn
                    .prepare_cached(
                        "UPDATE families SET revoked_at = ? WHERE uid = ? AND revoked_at IS NULL",
                    )?
                    .execute(params![now, uid])?;
                Ok(Some(u64::try_from(revoked).unwrap_or(u64::MAX)))
            })
            .await
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        self.writer
            .write(move |conn| {
                let a = conn
                    .prepare_cached("DELETE FROM refresh_tokens WHERE expires_at <= ?")?
                    .execute([now])?;
                let b = conn
                    .prepare_cached("DELETE FROM provider_tokens WHERE expires_at <= ?")?
                    .execute([now])?;
                Ok(u64::try_from(a + b).unwrap_or(u64::MAX))
            })
            .await
    }

    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.readers.with(|conn| {
            conn.prepare_cached(
                "SELECT kid, public_key, sealed_private, created_at, active_from, retired_at
                 FROM signing_keys ORDER BY active_from, kid",
            )?
            .query_map([], |row| {
                Ok(StoredKey {
                    kid: row.get(0)?,
                    public_key: row.get(1)?,
                    sealed_private: row.get(2)?,
                    created_at: row.get(3)?,
                    active_from: row.get(4)?,
                    retired_at: row.get(5)?,
                })
            })?
            .collect()
        })
    }

    async fn add_signing_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.writer
            .write(move |conn| insert_signing_key(conn, &key))
            .await
    }

    async fn rotate_signing_key(
        &self,
        key: &StoredKey,
        retire_at: i64,
    ) -> Result<Vec<String>, StoreError> {
        let key = key.clone();
        // One write: the batch's savepoint makes the insert and the retirements one unit.
        self.writer
            .write(move |conn| {
                insert_signing_key(conn, &key)?;
                let mut retire = conn.prepare_cached(
                    "UPDATE signing_keys SET retired_at = ?1
                     WHERE kid <> ?2 AND (retired_at IS NULL OR retired_at > ?1)
                     RETURNING kid",
                )?;
                let mut retired = retire
                    .query_map(params![retire_at, key.kid], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                retired.sort();
                Ok(retired)
            })
            .await
    }

    async fn close(&self) {
        self.writer.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl SqliteStore {
        fn writer_queued(&self) -> usize {
            self.writer.queued()
        }
    }

    fn count(store: &SqliteStore, sql: &'static str) -> i64 {
        store
            .readers
            .with(|conn| conn.query_row(sql, [], |row| row.get(0)))
            .unwrap()
    }

    /// Every statement of a console page reads one index range: SQLite's plan for each
    /// is a `SEARCH` with a bound, never a `SCAN` of a table or a sort of its rows.
    #[tokio::test]
    async fn console_pages_are_index_searches() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        for sql in [PAGE_ALL, PAGE_UID_PREFIX, PAGE_OPENID, PAGE_NAME] {
            let plan: Vec<String> = store
                .readers
                .with(|conn| {
                    let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    // The plan does not depend on the values bound.
                    let values = vec![rusqlite::types::Value::Null; statement.parameter_count()];
                    let rows = statement.query_map(rusqlite::params_from_iter(values), |row| {
                        row.get::<_, String>(3)
                    })?;
                    rows.collect()
                })
                .unwrap();
            assert!(
                plan.iter().all(|step| step.starts_with("SEARCH ")),
                "{sql}: {plan:?}"
            );
            assert!(
                plan.iter().any(|step| step.contains('>')),
                "{sql}: {plan:?}"
            );
        }
        store.close().await;
    }

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
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM families WHERE uid = 'dup'"),
            1
        );
        store.close().await;
        assert!(
            store.ensure_env("x", 0).await.is_err(),
            "closed stores refuse writes"
        );
    }

    /// A batch whose storage fills up commits nothing: every write in it is answered
    /// with an error, including the ones that ran before the failing statement, and
    /// none of them is in the database afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_that_cannot_commit_acknowledges_none_of_its_writes() {
        const SIGN_INS: usize = 63;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        store.ensure_env("e", 0).await.unwrap();
        // Hold the writer while the next batch queues up, and cap the database at its
        // current size: the next batch can only use the free space left in its pages.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (holding, started) = tokio::sync::oneshot::channel::<()>();
        let holder = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .writer
                    .write(move |conn| {
                        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                        conn.pragma_update(None, "max_page_count", pages)?;
                        let _ = holding.send(());
                        let _ = held.recv_timeout(Duration::from_secs(10));
                        Ok(())
                    })
                    .await
            })
        };
        tokio::time::timeout(Duration::from_secs(10), started)
            .await
            .expect("the writer runs the holding write")
            .unwrap();
        let mut writes = Vec::new();
        for i in 0..SIGN_INS {
            let store = store.clone();
            writes.push(tokio::spawn(async move {
                let user = UserRecord::new(format!("u{i}"), "e".into(), true, 0);
                let family = NewFamily::new(format!("f{i}"), [i as u8; 32], 100);
                store.create_anonymous(&user, &family, 0).await
            }));
        }
        // Queued after the sign-ins: far more rows than the capped file holds.
        let big: Vec<UserRecord> = (0..5000)
            .map(|i| UserRecord::new(format!("bulk{i:08}"), "e".into(), true, 0))
            .collect();
        let importing = {
            let store = store.clone();
            tokio::spawn(async move { store.import_users(&big, 0).await })
        };
        // Bounded wait for every write to be queued behind the held one.
        for _ in 0..200 {
            if store.writer_queued() > SIGN_INS {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(store.writer_queued(), SIGN_INS + 1, "all writes queued");
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        let mut failed = 0;
        let mut full = 0;
        for w in writes {
            if let Err(e) = w.await.unwrap() {
                failed += 1;
                full += usize::from(e.to_string().contains("full"));
            }
        }
        let imported = importing.await.unwrap();
        full += usize::from(
            imported
                .as_ref()
                .is_err_and(|e| e.to_string().contains("full")),
        );
        assert!(imported.is_err());
        assert_eq!(
            failed, SIGN_INS,
            "no write of the failed batch acknowledged"
        );
        assert!(full > 0, "the failure names the full disk");
        store.close().await;
        let reopened = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(reopened.count_users().await.unwrap(), 0);
        assert_eq!(count(&reopened, "SELECT COUNT(*) FROM families"), 0);
        reopened.close().await;
    }
}
