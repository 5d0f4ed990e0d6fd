//! The data dir: created owner-only, locked for one server at a time, and read for
//! what it says about its own past before anything in it is opened or created.
//!
//! The key-encryption key file and the store (which holds the sealed signing keys) are
//! created together on a first start, so each one vouches for the other: a key file
//! without a store (or a store holding sealed keys without their key-encryption key, or
//! users without any signing key) means something was lost since, and the server
//! refuses to paper over it unless told to (`--reset-store`, `--new-signing-key`).

use super::keys::{KEK_FILE, KEY_FILE};
use super::store::DB_FILE;
use fs4::fs_std::FileExt as _;
use std::fs::File;
use std::io;
use std::path::Path;

/// Name of the lock file inside the data dir. A running server holds an exclusive
/// advisory lock on it (`flock`/`LockFileEx`); the file itself stays behind, empty.
pub const LOCK_FILE: &str = "lock";

/// Creates `path` (and its parents) with mode 0700 if it is missing.
pub(crate) fn create(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Why the data dir could not be locked.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Another process holds the lock.
    Held,
    /// The lock file could not be opened or locked.
    Io(io::Error),
}

/// The exclusive lock on a data dir; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of `dir` without waiting.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, LockError> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(dir.join(LOCK_FILE)).map_err(LockError::Io)?;
        match file.try_lock_exclusive() {
            Ok(true) => Ok(Self { _file: file }),
            Ok(false) => Err(LockError::Held),
            Err(e) => Err(LockError::Io(e)),
        }
    }
}

/// What the store file looks like before it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreFile {
    /// No `auth.db`.
    Missing,
    /// An `auth.db` of 0 bytes (SQLite would take it for a new, empty database).
    Empty,
    /// An `auth.db` with content (its integrity is checked when it is opened).
    Present,
}

/// What the data dir holds, read before anything is opened or created.
#[derive(Debug, Clone)]
pub(crate) struct Contents {
    /// The database file.
    pub(crate) store: StoreFile,
    /// Whether the signing key file of an earlier version exists.
    pub(crate) key: bool,
    /// Whether the default key-encryption key file exists.
    pub(crate) kek: bool,
}

impl Contents {
    /// Looks at `dir` (which exists and is locked).
    pub(crate) fn read(dir: &Path) -> io::Result<Self> {
        let store = match std::fs::metadata(dir.join(DB_FILE)) {
            Ok(m) if m.len() == 0 => StoreFile::Empty,
            Ok(_) => StoreFile::Present,
            Err(e) if e.kind() == io::ErrorKind::NotFound => StoreFile::Missing,
            Err(e) => return Err(e),
        };
        let exists = |file: &str| match std::fs::symlink_metadata(dir.join(file)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        };
        Ok(Self {
            store,
            key: exists(KEY_FILE)?,
            kek: exists(KEK_FILE)?,
        })
    }
}

/// The permission bits of `path` that let users other than its owner in, if any
/// (always `None` where there are no such bits).
pub(crate) fn open_to_others(path: &Path) -> io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        Ok((mode & 0o077 != 0).then_some(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lock_per_dir() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        assert!(matches!(DirLock::acquire(dir.path()), Err(LockError::Held)));
        drop(first);
        DirLock::acquire(dir.path()).expect("released on drop");
    }

    #[test]
    fn contents_tell_missing_empty_and_present() {
        let dir = tempfile::tempdir().unwrap();
        let read = || Contents::read(dir.path()).unwrap();
        assert_eq!((read().store, read().key), (StoreFile::Missing, false));
        std::fs::write(dir.path().join(DB_FILE), b"").unwrap();
        assert_eq!(read().store, StoreFile::Empty);
        std::fs::write(dir.path().join(DB_FILE), b"x").unwrap();
        std::fs::write(dir.path().join(KEY_FILE), b"k").unwrap();
        assert_eq!((read().store, read().key), (StoreFile::Present, true));
    }
}
