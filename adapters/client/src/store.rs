//! Where a [`Session`](super::Session) keeps its snapshot between runs.
//!
//! The bytes are the core's snapshot format (version byte, postcard body, CRC-32), opaque
//! here: the engine writes them ([`Output::PersistSnapshot`]) and judges them on
//! `restore`. A store only has to keep them safe.
//!
//! [`FileStore`] keeps one file per (server, env) in a profile directory:
//!
//! * **bound to its server**, like a cookie to its origin: the file name carries a digest
//!   of the server's base URL, so a session is only ever offered to the server that
//!   issued it. Pointing a client at another server finds no session there (and sends
//!   nothing) instead of handing that server a refresh token;
//! * **atomic writes**: a temp file created exclusively (never through a planted link) in
//!   the same directory, `fsync`, `rename` over the old file, `fsync` of the directory,
//!   so a crash leaves the old snapshot or the new one, never a mix;
//! * **private**: the directory is created (or tightened to) `0700`, files `0600` (Unix);
//!   a directory shared with other users (world-writable, or owned by someone else) is
//!   refused;
//! * **regular files only**: a link, FIFO or device where the snapshot or lock should be is
//!   refused, never followed or waited on;
//! * **one process at a time**: an advisory lock (`flock`/`LockFileEx` through `fs4`) on
//!   the session's `.lock` file is taken when the store is opened and held until it is
//!   dropped, so the whole "restore → refresh if due → persist" of one process happens
//!   before the next process reads the file. A second `cloudbase-auth token` on the same
//!   profile waits, then reads the refreshed session instead of refreshing again (a
//!   refresh token is single-use: two processes refreshing with the same one would trip
//!   the server's reuse detection once its grace window is over);
//! * **writable before it is needed**: [`SnapshotStore::check_writable`] proves a snapshot
//!   can be written before the session spends a refresh token on the server;
//! * **damage is kept for inspection**: a snapshot the engine refuses is renamed to
//!   `….session.corrupt` ([`SnapshotStore::quarantine`]) and the session starts
//!   signed out.
//!
//! [`Output::PersistSnapshot`]: cloudbase_auth_core::Output::PersistSnapshot

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use sha2::{Digest, Sha256};

/// Largest file [`FileStore::load`] reads. Real snapshots are at most
/// `cloudbase_auth_core::snapshot::SNAPSHOT_MAX` (about 3 KiB); a bigger file is handed
/// to the engine cut at this length, which refuses it as damaged.
const READ_LIMIT: u64 = 64 * 1024;

/// Storage for the engine's snapshot bytes. Called from the session's task, between two
/// engine inputs, so implementations may block briefly (a small file write).
pub trait SnapshotStore: Send + 'static {
    /// The stored snapshot, or `None` when nothing was ever stored (or it was cleared).
    fn load(&mut self) -> io::Result<Option<Vec<u8>>>;

    /// Replaces the stored snapshot with `bytes`. Must be atomic: after a crash, `load`
    /// returns either the old bytes or the new ones.
    fn save(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Deletes the stored snapshot. Deleting nothing is not an error.
    fn clear(&mut self) -> io::Result<()>;

    /// Fails if a [`save`](Self::save) would fail now (read-only or full storage, a
    /// squatted temp name, …). Called before the session can spend a refresh token on
    /// the server: a refresh rotates the token there, so a successor that cannot be
    /// stored would be lost. The default has nothing to check.
    fn check_writable(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// The stored snapshot was refused by the engine (damaged, or of an unknown format):
    /// set it aside for inspection and report where, or just delete it (the default).
    fn quarantine(&mut self) -> io::Result<Option<PathBuf>> {
        self.clear().map(|()| None)
    }

    /// The server (base URL, as [`crate::SessionConfig::server`] normalises it)
    /// whose sessions this store holds, if it is bound to one. A session refuses to run
    /// on a store bound to another server.
    fn server(&self) -> Option<&str> {
        None
    }

    /// Where the snapshot lives, for messages (`None` for stores with no path).
    fn location(&self) -> Option<&Path> {
        None
    }
}

/// A store that keeps the snapshot in memory only (tests, or sessions that must not
/// outlive the process).
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct MemoryStore {
    /// The stored bytes.
    pub bytes: Option<Vec<u8>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl SnapshotStore for MemoryStore {
    fn load(&mut self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.bytes.clone())
    }

    fn save(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.bytes = Some(bytes.to_vec());
        Ok(())
    }

    fn clear(&mut self) -> io::Result<()> {
        self.bytes = None;
        Ok(())
    }
}

/// The snapshot of one env of one server in a profile directory, locked for this
/// process while the store exists. See the [module docs](self).
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    path: PathBuf,
    server: String,
    /// Where an older release's session file (not bound to a server) was set aside.
    unbound: Option<PathBuf>,
    /// Holds the advisory lock; closing it (on drop) releases the lock.
    _lock: File,
}

/// Why [`FileStore::try_open`] did not open the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another process holds the profile's lock; [`FileStore::open`] would wait for it.
    #[error("profile {} is in use by another process", .0.display())]
    Busy(PathBuf),
    /// The server URL cannot be used (see [`crate::SessionConfig::server`]).
    #[error("{0}")]
    BadServer(String),
    /// The directory or lock file could not be created, opened or trusted.
    #[error("cannot use profile directory {}: {source}", .dir.display())]
    Io {
        /// The profile directory.
        dir: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl FileStore {
    /// The default profile directory: `cloudbase-auth` under the user's config directory
    /// (`$XDG_CONFIG_HOME` or `~/.config` on Linux, `~/Library/Application Support` on
    /// macOS, `%APPDATA%` on Windows). `None` when the platform has no such directory.
    pub fn default_dir() -> Option<PathBuf> {
        dirs::config_dir().map(|d| d.join("cloudbase-auth"))
    }

    /// Opens the store of `env` on the server at `server` (an http(s) base URL) in `dir`
    /// (created `0700` if missing), waiting for the profile lock if another process
    /// holds it.
    pub fn open(dir: impl Into<PathBuf>, server: &str, env: &str) -> Result<FileStore, OpenError> {
        Self::open_inner(dir.into(), server, env, true)
    }

    /// Like [`FileStore::open`], but returns [`OpenError::Busy`] instead of waiting.
    pub fn try_open(
        dir: impl Into<PathBuf>,
        server: &str,
        env: &str,
    ) -> Result<FileStore, OpenError> {
        Self::open_inner(dir.into(), server, env, false)
    }

    fn open_inner(
        dir: PathBuf,
        server: &str,
        env: &str,
        wait: bool,
    ) -> Result<FileStore, OpenError> {
        let server = super::session::checked_base(server)
            .map_err(|e| OpenError::BadServer(e.to_string()))?;
        let io_err = |source| OpenError::Io {
            dir: dir.clone(),
            source,
        };
        if !is_file_name_safe(env) {
            return Err(io_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("env id {env:?} cannot name a file"),
            )));
        }
        create_private_dir(&dir).map_err(io_err)?;
        let stem = stem(&server, env);
        let lock_path = dir.join(format!("{stem}.lock"));
        let lock = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .and_then(|f| regular(f, &lock_path))
            .map_err(io_err)?;
        if wait {
            FileExt::lock_exclusive(&lock).map_err(io_err)?;
        } else if !FileExt::try_lock_exclusive(&lock).map_err(io_err)? {
            return Err(OpenError::Busy(dir));
        }
        let unbound = set_aside_unbound(&dir, env).map_err(io_err)?;
        Ok(FileStore {
            path: dir.join(format!("{stem}.session")),
            dir,
            server,
            unbound,
            _lock: lock,
        })
    }

    /// Where a session file of an older release, which did not record the server that
    /// issued it, was set aside when this store was opened (`ENV.session.unbound`). It
    /// is never offered to any server: sign in again.
    pub fn unbound_session(&self) -> Option<&Path> {
        self.unbound.as_deref()
    }

    /// The name of the snapshot file of `env` on `server` inside a profile directory
    /// (`ENV.DIGEST.session`, the digest binding it to the server's normalised URL).
    pub fn file_name(server: &str, env: &str) -> Result<String, OpenError> {
        let server = super::session::checked_base(server)
            .map_err(|e| OpenError::BadServer(e.to_string()))?;
        Ok(format!("{}.session", stem(&server, env)))
    }

    /// The snapshot file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a refused snapshot is kept (the snapshot file's name + `.corrupt`).
    pub fn corrupt_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".corrupt");
        PathBuf::from(name)
    }

    /// A new temp file in the profile directory: created exclusively under a random
    /// name (`O_EXCL`, so a planted file or link is never written through), mode 0600.
    fn temp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(".session-")
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(|e| {
                annotate(
                    e,
                    &format!("creating a temp file in {}", self.dir.display()),
                )
            })
    }
}

impl SnapshotStore for FileStore {
    fn load(&mut self) -> io::Result<Option<Vec<u8>>> {
        let file = match open_regular(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(annotate(e, &self.path.display().to_string())),
        };
        let mut bytes = Vec::new();
        file.take(READ_LIMIT)
            .read_to_end(&mut bytes)
            .map_err(|e| annotate(e, &self.path.display().to_string()))?;
        // An empty file is handed over too: the engine calls it damaged, and it is kept
        // aside like any other damage (writes are atomic, so it is never legitimate).
        Ok(Some(bytes))
    }

    fn save(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut temp = self.temp_file()?;
        let what = format!(
            "writing {} (via {})",
            self.path.display(),
            temp.path().display()
        );
        temp.write_all(bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| annotate(e, &what))?;
        // `rename` replaces whatever is at the path (a planted link included) without
        // following it.
        temp.persist(&self.path)
            .map_err(|e| annotate(e.error, &what))?;
        sync_dir(&self.dir).map_err(|e| annotate(e, &what))
    }

    fn check_writable(&mut self) -> io::Result<()> {
        // What `save` does, with a snapshot-sized write, minus the rename.
        let mut temp = self.temp_file()?;
        let what = format!("writing in {}", self.dir.display());
        temp.write_all(&[0; 4096])
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| annotate(e, &what))?;
        temp.close().map_err(|e| annotate(e, &what))
    }

    fn clear(&mut self) -> io::Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(annotate(e, &self.path.display().to_string())),
        }
    }

    fn quarantine(&mut self) -> io::Result<Option<PathBuf>> {
        let kept = self.corrupt_path();
        match fs::rename(&self.path, &kept) {
            Ok(()) => {
                sync_dir(&self.dir)?;
                Ok(Some(kept))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(annotate(e, &self.path.display().to_string())),
        }
    }

    fn server(&self) -> Option<&str> {
        Some(&self.server)
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// The profile files of `env` on `server` (normalised) are named `STEM.session` and
/// `STEM.lock`, `STEM` being `ENV.DIGEST`: 16 hex digits of the SHA-256 of the server's
/// URL bind them to it (and are never a path character).
fn stem(server: &str, env: &str) -> String {
    let digest: String = Sha256::digest(server.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{env}.{digest}")
}

/// Renames an older release's `ENV.session` (which says nothing of its server) to
/// `ENV.session.unbound`, so it is never sent to a server that did not issue it.
fn set_aside_unbound(dir: &Path, env: &str) -> io::Result<Option<PathBuf>> {
    let legacy = dir.join(format!("{env}.session"));
    match fs::symlink_metadata(&legacy) {
        Ok(m) if m.is_file() => {
            let kept = dir.join(format!("{env}.session.unbound"));
            fs::rename(&legacy, &kept)?;
            sync_dir(dir)?;
            Ok(Some(kept))
        }
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Prefixes an I/O error's message with what was being done, keeping its kind.
fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Env ids are `[A-Za-z0-9_-]` (the core checks that too); refuse anything else before it
/// becomes part of a path.
fn is_file_name_safe(env: &str) -> bool {
    !env.is_empty()
        && env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `f` if it is a regular file; an error naming `path` otherwise (a FIFO, device or
/// directory where a profile file should be).
fn regular(f: File, path: &Path) -> io::Result<File> {
    if f.metadata()?.is_file() {
        Ok(f)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a regular file", path.display()),
        ))
    }
}

/// Opens an existing file for reading without following a link at `path` and without
/// blocking on a FIFO, and checks it is a regular file.
fn open_regular(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(NO_LINK_NO_WAIT);
    }
    match o.open(path) {
        // O_NOFOLLOW on a link fails with ELOOP.
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is a symbolic link, not a regular file", path.display()),
            ))
        }
        other => regular(other?, path),
    }
}

/// Open flags for profile files: never through a symbolic link (`O_NOFOLLOW`), never
/// blocking on a FIFO (`O_NONBLOCK`; regular files ignore it).
#[cfg(unix)]
const NO_LINK_NO_WAIT: i32 =
    (rustix::fs::OFlags::NOFOLLOW.bits() | rustix::fs::OFlags::NONBLOCK.bits()) as i32;

#[cfg(unix)]
fn private_options() -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = OpenOptions::new();
    o.mode(0o600).custom_flags(NO_LINK_NO_WAIT);
    o
}

#[cfg(not(unix))]
fn private_options() -> OpenOptions {
    OpenOptions::new()
}

/// Creates `dir` (mode 0700) or makes an existing one private: group and other bits
/// are removed from a directory this user owns; a directory others can write to or
/// that belongs to someone else is refused (files in it could be replaced under us).
#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = fs::metadata(dir)?;
    let mode = meta.permissions().mode() & 0o7777;
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} belongs to another user (uid {}); use a directory of your own",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    if mode & 0o022 != 0 && mode & 0o1000 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is a shared directory (mode {mode:o}); use a private directory",
                dir.display()
            ),
        ));
    }
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// Makes a rename or unlink in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a file; `MoveFileEx` is durable enough there.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "http://127.0.0.1:8787";

    #[test]
    fn save_load_clear_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path().join("p"), SERVER, "env-1").unwrap();
        assert_eq!(s.load().unwrap(), None);
        s.save(b"one").unwrap();
        s.save(b"two").unwrap();
        assert_eq!(s.load().unwrap().as_deref(), Some(&b"two"[..]));
        let leftovers: Vec<_> = fs::read_dir(s.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        s.clear().unwrap();
        s.clear().unwrap();
        assert_eq!(s.load().unwrap(), None);
    }

    #[test]
    fn each_server_has_its_own_session() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = FileStore::open(dir.path(), SERVER, "e").unwrap();
        a.save(b"issued by a").unwrap();
        assert_eq!(a.server(), Some(SERVER));
        // Another server, or the same one spelled differently, is told apart by its
        // normalised URL.
        let mut b = FileStore::open(dir.path(), "http://127.0.0.1:9999", "e").unwrap();
        assert_eq!(b.load().unwrap(), None);
        assert_ne!(a.path(), b.path());
        drop(a);
        let mut again = FileStore::open(dir.path(), "HTTP://127.0.0.1:8787/", "e").unwrap();
        assert_eq!(again.load().unwrap().as_deref(), Some(&b"issued by a"[..]));
        assert!(matches!(
            FileStore::open(dir.path(), "ftp://x", "e"),
            Err(OpenError::BadServer(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_and_the_directory_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("p");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let mut s = FileStore::open(&profile, SERVER, "env-1").unwrap();
        s.save(b"x").unwrap();
        assert_eq!(mode(s.path()), 0o600);
        assert_eq!(mode(&profile), 0o700);
        let lock = fs::read_dir(&profile)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "lock"))
            .unwrap();
        assert_eq!(mode(&lock), 0o600);
        drop(s);
        // A loose existing directory is made private.
        fs::set_permissions(&profile, fs::Permissions::from_mode(0o755)).unwrap();
        FileStore::open(&profile, SERVER, "env-1").unwrap();
        assert_eq!(mode(&profile), 0o700);
        // A shared (sticky, world-writable) directory is refused, not changed.
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(matches!(
            FileStore::open(&shared, SERVER, "e"),
            Err(OpenError::Io { .. })
        ));
        assert_eq!(mode(&shared), 0o1777);
    }

    #[cfg(unix)]
    #[test]
    fn planted_links_are_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let profile = dir.path().join("p");
        let mut s = FileStore::open(&profile, SERVER, "e").unwrap();
        // A link at the old fixed temp name and at the session file itself.
        let mut old_temp = s.path().as_os_str().to_owned();
        old_temp.push(".tmp");
        std::os::unix::fs::symlink(&victim, &old_temp).unwrap();
        std::os::unix::fs::symlink(&victim, s.path()).unwrap();
        let err = s.load().unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        s.save(b"snapshot").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(!fs::symlink_metadata(s.path()).unwrap().is_symlink());
        assert_eq!(s.load().unwrap().as_deref(), Some(&b"snapshot"[..]));
    }

    #[test]
    fn a_squatted_temp_name_does_not_block_saving() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path(), SERVER, "e").unwrap();
        let mut old_temp = s.path().as_os_str().to_owned();
        old_temp.push(".tmp");
        fs::create_dir(&old_temp).unwrap();
        s.check_writable().unwrap();
        s.save(b"ok").unwrap();
        assert_eq!(s.load().unwrap().as_deref(), Some(&b"ok"[..]));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path(), SERVER, "e").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            s.path(),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // On a blocking open this would hang forever: no writer ever comes.
        let err = s.load().unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_directory_fails_the_write_check() {
        use std::os::unix::fs::PermissionsExt;
        if rustix::process::geteuid().is_root() {
            // root writes through directory permissions; nothing to observe.
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path(), SERVER, "e").unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o500)).unwrap();
        let err = s.check_writable().unwrap_err();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn an_unbound_session_of_an_older_release_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("e.session"), b"old").unwrap();
        let mut s = FileStore::open(dir.path(), SERVER, "e").unwrap();
        let kept = s.unbound_session().unwrap().to_owned();
        assert_eq!(fs::read(&kept).unwrap(), b"old");
        assert_eq!(s.load().unwrap(), None);
        drop(s);
        let s = FileStore::open(dir.path(), SERVER, "e").unwrap();
        assert_eq!(s.unbound_session(), None, "set aside once");
    }

    #[test]
    fn second_open_is_busy_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = FileStore::open(dir.path(), SERVER, "e").unwrap();
        assert!(matches!(
            FileStore::try_open(dir.path(), SERVER, "e"),
            Err(OpenError::Busy(_))
        ));
        // Another env, or another server, of the same profile is independent.
        FileStore::try_open(dir.path(), SERVER, "other").unwrap();
        FileStore::try_open(dir.path(), "http://localhost:1", "e").unwrap();
        drop(first);
        FileStore::try_open(dir.path(), SERVER, "e").unwrap();
    }

    #[test]
    fn quarantine_keeps_the_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path(), SERVER, "e").unwrap();
        assert_eq!(s.quarantine().unwrap(), None);
        s.save(b"garbage").unwrap();
        let kept = s.quarantine().unwrap().unwrap();
        assert_eq!(fs::read(&kept).unwrap(), b"garbage");
        assert_eq!(s.load().unwrap(), None);
    }

    #[test]
    fn env_must_be_a_plain_name() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "../x", "a/b", "a.b"] {
            assert!(FileStore::open(dir.path(), SERVER, bad).is_err(), "{bad}");
        }
    }
}
