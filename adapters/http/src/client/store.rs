//! Where a [`Session`](super::Session) keeps its snapshot between runs.
//!
//! The bytes are the core's snapshot format (version byte, postcard body, CRC-32), opaque
//! here: the engine writes them ([`Output::PersistSnapshot`]) and judges them on
//! `restore`. A store only has to keep them safe.
//!
//! [`FileStore`] keeps one file per env in a profile directory:
//!
//! * **atomic writes**: temp file in the same directory, `fsync`, `rename` over the old
//!   file, `fsync` of the directory, so a crash leaves the old snapshot or the new one,
//!   never a mix;
//! * **private**: the directory is created `0700`, files `0600` (Unix);
//! * **one process at a time**: an advisory lock (`flock`/`LockFileEx` through `fs4`) on
//!   `{env}.lock` is taken when the store is opened and held until it is dropped, so the
//!   whole "restore → refresh if due → persist" of one process happens before the next
//!   process reads the file. A second `cloudbase-auth token` on the same profile waits,
//!   then reads the refreshed session instead of refreshing again (a refresh token is
//!   single-use: two processes refreshing with the same one would trip the server's
//!   reuse detection once its grace window is over);
//! * **damage is kept for inspection**: a snapshot the engine refuses is renamed to
//!   `{env}.session.corrupt` ([`SnapshotStore::quarantine`]) and the session starts
//!   signed out.
//!
//! [`Output::PersistSnapshot`]: cloudbase_auth_core::Output::PersistSnapshot

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

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

    /// The stored snapshot was refused by the engine (damaged, or of an unknown format):
    /// set it aside for inspection and report where, or just delete it (the default).
    fn quarantine(&mut self) -> io::Result<Option<PathBuf>> {
        self.clear().map(|()| None)
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

/// The snapshot of one env in a profile directory, locked for this process while the
/// store exists. See the [module docs](self).
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    path: PathBuf,
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
    /// The directory or lock file could not be created or opened.
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

    /// Opens the store of `env` in `dir` (created `0700` if missing), waiting for the
    /// profile lock if another process holds it.
    pub fn open(dir: impl Into<PathBuf>, env: &str) -> Result<FileStore, OpenError> {
        Self::open_inner(dir.into(), env, true)
    }

    /// Like [`FileStore::open`], but returns [`OpenError::Busy`] instead of waiting.
    pub fn try_open(dir: impl Into<PathBuf>, env: &str) -> Result<FileStore, OpenError> {
        Self::open_inner(dir.into(), env, false)
    }

    fn open_inner(dir: PathBuf, env: &str, wait: bool) -> Result<FileStore, OpenError> {
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
        let lock_path = dir.join(format!("{env}.lock"));
        let lock = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err)?;
        if wait {
            FileExt::lock_exclusive(&lock).map_err(io_err)?;
        } else if !FileExt::try_lock_exclusive(&lock).map_err(io_err)? {
            return Err(OpenError::Busy(dir));
        }
        Ok(FileStore {
            path: dir.join(format!("{env}.session")),
            dir,
            _lock: lock,
        })
    }

    /// The snapshot file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a refused snapshot is kept (`{env}.session.corrupt`).
    pub fn corrupt_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".corrupt");
        PathBuf::from(name)
    }

    fn temp_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    }
}

impl SnapshotStore for FileStore {
    fn load(&mut self) -> io::Result<Option<Vec<u8>>> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        file.take(READ_LIMIT).read_to_end(&mut bytes)?;
        // An empty file is handed over too: the engine calls it damaged, and it is kept
        // aside like any other damage (writes are atomic, so it is never legitimate).
        Ok(Some(bytes))
    }

    fn save(&mut self, bytes: &[u8]) -> io::Result<()> {
        let temp = self.temp_path();
        let mut file = private_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        // A leftover temp file keeps its old mode through `truncate`: set it again.
        restrict(&file)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, &self.path)?;
        sync_dir(&self.dir)
    }

    fn clear(&mut self) -> io::Result<()> {
        match fs::remove_file(&self.path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
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
            Err(e) => Err(e),
        }
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// Env ids are `[A-Za-z0-9_-]` (the core checks that too); refuse anything else before it
/// becomes part of a path.
fn is_file_name_safe(env: &str) -> bool {
    !env.is_empty()
        && env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(unix)]
fn private_options() -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = OpenOptions::new();
    o.mode(0o600);
    o
}

#[cfg(not(unix))]
fn private_options() -> OpenOptions {
    OpenOptions::new()
}

#[cfg(unix)]
fn restrict(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict(_file: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
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

    #[test]
    fn save_load_clear_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path().join("p"), "env-1").unwrap();
        assert_eq!(s.load().unwrap(), None);
        s.save(b"one").unwrap();
        s.save(b"two").unwrap();
        assert_eq!(s.load().unwrap().as_deref(), Some(&b"two"[..]));
        assert!(!s.temp_path().exists());
        s.clear().unwrap();
        s.clear().unwrap();
        assert_eq!(s.load().unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("p");
        let mut s = FileStore::open(&profile, "env-1").unwrap();
        s.save(b"x").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(s.path()), 0o600);
        assert_eq!(mode(&profile), 0o700);
        assert_eq!(mode(&profile.join("env-1.lock")), 0o600);
    }

    #[test]
    fn second_open_is_busy_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = FileStore::open(dir.path(), "e").unwrap();
        assert!(matches!(
            FileStore::try_open(dir.path(), "e"),
            Err(OpenError::Busy(_))
        ));
        // Another env of the same profile is independent.
        FileStore::try_open(dir.path(), "other").unwrap();
        drop(first);
        FileStore::try_open(dir.path(), "e").unwrap();
    }

    #[test]
    fn quarantine_keeps_the_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path(), "e").unwrap();
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
            assert!(FileStore::open(dir.path(), bad).is_err(), "{bad}");
        }
    }
}
