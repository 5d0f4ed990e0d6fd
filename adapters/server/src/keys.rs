//! The access-token signing keys: Ed25519 key pairs kept in the store, so every server
//! on one database signs and verifies with the same keys, and rotated without breaking
//! a token already issued.
//!
//! **At rest.** A key row holds the public key in the clear and the private key sealed
//! with XChaCha20-Poly1305 under a 32-byte *key-encryption key* (KEK) that is never in
//! the database, with the kid as associated data. The KEK comes from
//! `CLOUDBASE_AUTH_KEK` (base64url), or a file (`--kek-file`, `CLOUDBASE_AUTH_KEK_FILE`),
//! or by default the file `key-encryption-key` (mode 0600) in the data dir, created on
//! the first start. Why sealed keys in the database rather than a shared key file: the
//! database is already the one thing every instance shares (and backs up and replicates),
//! so a rotation made anywhere reaches every instance through it, while a copy of the
//! database alone (a backup, a dump, a replica) cannot forge tokens. The KEK is small
//! and never changes, so it is deployed once like any other secret. The default file in
//! the data dir keeps the first start free of configuration; it protects copies of
//! `auth.db` taken without it, not a copy of the whole data dir.
//!
//! **Rotation and publication order.** `cloudbase-auth keys rotate` adds a key that
//! signs only from `active_from` = now + a publication delay, and retires the current
//! key at that same moment. Every server re-reads the keyring periodically (every 30 s
//! by default, [`crate::ServeConfig::key_refresh`]) and publishes a key in its JWKS as
//! soon as it has read it, so with a delay longer than that period every instance
//! publishes the new key before any instance signs with it. A server that is shown a
//! token with a kid it does not know re-reads the keyring at once (at most once per
//! second), so even a shorter delay never refuses a valid token. A retired key keeps
//! verifying, and stays in the JWKS, for one access-token lifetime (the server's
//! `--access-token-ttl`) after its retirement: every token it signed has expired by then.
//!
//! **Upgrades.** A data dir of an earlier version keeps its key in the file
//! `signing-key.ed25519` (one line, the base64url of the 32-byte seed). It is imported
//! as the first key of the store (signing at once), so tokens issued before the upgrade
//! keep verifying; the file is then no longer read (keep it with the backups or delete
//! it). The key id is the RFC 7638 thumbprint of the public JWK, so it changes exactly
//! when the key does.

use super::secrets::{b64url, random_bytes};
use super::store::{Store, StoreError, StoredKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Name of the signing key file of earlier versions inside the data dir (imported once
/// into the store).
pub const KEY_FILE: &str = "signing-key.ed25519";

/// Name of the default key-encryption key file inside the data dir.
pub const KEK_FILE: &str = "key-encryption-key";

/// Environment variable holding the key-encryption key itself (base64url of 32 bytes).
pub const KEK_ENV: &str = "CLOUDBASE_AUTH_KEK";

/// Environment variable naming the key-encryption key file (`--kek-file`).
pub const KEK_FILE_ENV: &str = "CLOUDBASE_AUTH_KEK_FILE";

/// Bytes of the XChaCha20-Poly1305 nonce that starts a sealed private key.
const NONCE_BYTES: usize = 24;

/// Why the signing key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("signing key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key file is not one base64url line of 32 bytes.
    #[error(
        "signing key file {0} is corrupt (expected one base64url line of 32 bytes): restore it from a \
         backup of the data dir, or move it away and start with --new-signing-key (every access token \
         issued so far is then refused until its holder refreshes)"
    )]
    Corrupt(PathBuf),
    /// No entropy to generate a key.
    #[error("the operating system's random source failed")]
    Random,
    /// The key-encryption key in the environment or a file is not base64url of 32 bytes.
    #[error(
        "the key-encryption key from {0} is not one base64url line of 32 bytes (generate one with \
         `head -c 32 /dev/urandom | basenc --base64url | tr -d =`)"
    )]
    BadKek(String),
    /// The key-encryption key file is missing although the store holds sealed keys.
    #[error(
        "the key-encryption key {0} is missing, but the store holds signing keys sealed with it: \
         restore the file from a backup of the data dir (or point --kek-file / CLOUDBASE_AUTH_KEK \
         at it), or start with --new-signing-key to seal a new signing key under a new \
         key-encryption key (access tokens issued so far still verify until they expire)"
    )]
    KekMissing(PathBuf),
    /// No signing key of the store opens with the key-encryption key given.
    #[error(
        "no signing key of the store opens with the key-encryption key from {0}: it is not the \
         key they were sealed with. Give the right one (--kek-file, CLOUDBASE_AUTH_KEK), or start \
         with --new-signing-key to add a new signing key sealed with this one"
    )]
    WrongKek(String),
}

/// The server's signing key and its key id.
pub(crate) struct SigningKeys {
    key: SigningKey,
    public: VerifyingKey,
    kid: String,
}

impl SigningKeys {
    /// Loads `dir/KEY_FILE`; `None` if there is no such file.
    pub(crate) fn load(dir: &Path) -> Result<Option<Self>, KeyError> {
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let seed: [u8; 32] = URL_SAFE_NO_PAD
                    .decode(text.trim())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| KeyError::Corrupt(path.clone()))?;
                Ok(Some(Self::from_seed(&seed)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(KeyError::Io { path, source }),
        }
    }

    /// Creates `dir/KEY_FILE` (0600) with a fresh key, as earlier versions did; fails if
    /// the file exists.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn create(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(KEY_FILE);
        let seed = random_bytes::<32>().map_err(|_| KeyError::Random)?;
        write_private(&path, &seed)?;
        Ok(Self::from_seed(&seed))
    }

    /// A new key from the operating system's random source (not written anywhere).
    pub(crate) fn generate() -> Result<Self, KeyError> {
        let seed = random_bytes::<32>().map_err(|_| KeyError::Random)?;
        Ok(Self::from_seed(&seed))
    }

    /// The private half.
    #[cfg(feature = "testing")]
    pub(crate) fn secret(&self) -> &SigningKey {
        &self.key
    }

    /// The 32-byte seed.
    #[cfg(test)]
    fn secret_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public half.
    pub(crate) fn public(&self) -> VerifyingKey {
        self.public
    }

    fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let public = key.verifying_key();
        let kid = thumbprint(&public);
        Self { key, public, kid }
    }

    /// The key id put in every token header.
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// Checks an Ed25519 signature (strict: rejects malleable and small-order forms).
    #[cfg(test)]
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        verify_signature(&self.public, message, signature)
    }
}

/// Checks an Ed25519 signature by `public` (strict: rejects malleable and small-order
/// forms).
pub(crate) fn verify_signature(public: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    public.verify_strict(message, &sig).is_ok()
}

/// One public JWK.
fn jwk(kid: &str, public: &VerifyingKey) -> serde_json::Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(public.as_bytes()),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    })
}

/// Where the key-encryption key comes from.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KekSource {
    /// The file [`KEK_FILE`] in the data dir, created (0600) when the store has no key.
    #[default]
    DataDir,
    /// A file that must exist (one base64url line of 32 bytes).
    File(PathBuf),
    /// The key itself, base64url of 32 bytes (from [`KEK_ENV`]).
    Value(String),
}

impl std::fmt::Debug for KekSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself never reaches a log line.
        match self {
            Self::DataDir => f.write_str("DataDir"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Value(_) => f.write_str("Value(..)"),
        }
    }
}

impl KekSource {
    /// Where the key comes from, for messages (never the key itself).
    pub(crate) fn describe(&self, dir: &Path) -> String {
        match self {
            Self::DataDir => dir.join(KEK_FILE).display().to_string(),
            Self::File(path) => path.display().to_string(),
            Self::Value(_) => KEK_ENV.to_owned(),
        }
    }
}

/// The key-encryption key: seals and opens private signing keys.
pub(crate) struct Kek(XChaCha20Poly1305);

impl Kek {
    /// The key of `source` for data dir `dir`; `None` when it is the default file and
    /// that does not exist.
    pub(crate) fn load(source: &KekSource, dir: &Path) -> Result<Option<Self>, KeyError> {
        let (text, origin) = match source {
            KekSource::Value(value) => (value.clone(), KEK_ENV.to_owned()),
            KekSource::File(path) => (
                std::fs::read_to_string(path).map_err(|source| KeyError::Io {
                    path: path.clone(),
                    source,
                })?,
                path.display().to_string(),
            ),
            KekSource::DataDir => {
                let path = dir.join(KEK_FILE);
                match std::fs::read_to_string(&path) {
                    Ok(text) => (text, path.display().to_string()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(source) => return Err(KeyError::Io { path, source }),
                }
            }
        };
        let key: [u8; 32] = URL_SAFE_NO_PAD
            .decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyError::BadKek(origin))?;
        Ok(Some(Self::from_bytes(&key)))
    }

    /// Creates the default file `dir/KEK_FILE` (0600) with a fresh key; fails if it exists.
    pub(crate) fn create(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(KEK_FILE);
        let key = random_bytes::<32>().map_err(|_| KeyError::Random)?;
        write_private(&path, &key)?;
        Ok(Self::from_bytes(&key))
    }

    fn from_bytes(key: &[u8; 32]) -> Self {
        Self(XChaCha20Poly1305::new(key.into()))
    }

    /// Seals the private half of `key`: nonce ‖ ciphertext, bound to its kid.
    fn seal(&self, key: &SigningKeys) -> Result<Vec<u8>, KeyError> {
        let nonce = random_bytes::<NONCE_BYTES>().map_err(|_| KeyError::Random)?;
        let sealed = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: key.key.as_bytes(),
                    aad: key.kid.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Whether the private key of `row` opens with this key.
    pub(crate) fn opens(&self, row: &StoredKey) -> bool {
        self.open(&row.kid, &row.sealed_private).is_some()
    }

    /// Opens a sealed private key of `kid`; `None` if it was sealed with another key,
    /// for another kid, or is damaged.
    fn open(&self, kid: &str, sealed: &[u8]) -> Option<SigningKeys> {
        if sealed.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        let seed: [u8; 32] = self
            .0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: kid.as_bytes(),
                },
            )
            .ok()?
            .try_into()
            .ok()?;
        let key = SigningKeys::from_seed(&seed);
        (key.kid == kid).then_some(key)
    }
}

/// A store row for a new key: sealed with `kek`, signing from `active_from`.
pub(crate) fn new_row(
    kek: &Kek,
    key: &SigningKeys,
    now: i64,
    active_from: i64,
) -> Result<StoredKey, KeyError> {
    Ok(StoredKey::new(
        key.kid.clone(),
        key.public.as_bytes().to_vec(),
        kek.seal(key)?,
        now,
        active_from,
    ))
}

/// One key of the keyring.
struct Entry {
    kid: String,
    public: VerifyingKey,
    /// `None` when its private half does not open with this server's KEK (it then
    /// verifies but never signs).
    private: Option<SigningKeys>,
    active_from: i64,
    retired_at: Option<i64>,
}

/// The keys of the store as one server holds them: which one signs, which ones verify
/// and are published, at a given time.
pub(crate) struct KeySet {
    /// By `active_from`, then kid.
    entries: Vec<Entry>,
    /// How long a retired key keeps verifying (the access-token lifetime), seconds.
    retention: i64,
}

impl KeySet {
    /// The keys of `rows`, private halves opened with `kek` (those that do not open
    /// verify only). `retention`: the access-token lifetime.
    pub(crate) fn from_rows(rows: &[StoredKey], kek: &Kek, retention: i64) -> Self {
        let mut entries: Vec<Entry> = rows
            .iter()
            .filter_map(|row| {
                let public: [u8; 32] = row.public_key.as_slice().try_into().ok()?;
                let public = VerifyingKey::from_bytes(&public).ok()?;
                // A row whose public key is not its kid's is ignored entirely.
                (thumbprint(&public) == row.kid).then_some(())?;
                Some(Entry {
                    kid: row.kid.clone(),
                    public,
                    private: kek.open(&row.kid, &row.sealed_private),
                    active_from: row.active_from,
                    retired_at: row.retired_at,
                })
            })
            .collect();
        entries.sort_by(|a, b| (a.active_from, &a.kid).cmp(&(b.active_from, &b.kid)));
        Self { entries, retention }
    }

    fn kids(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.kid.as_str()).collect()
    }

    /// How many keys there are, and how many of them this server can sign with.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let openable = self.entries.iter().filter(|e| e.private.is_some()).count();
        (self.entries.len(), openable)
    }

    /// The key that signs at `now`: of the keys not retired by then whose private half
    /// opens, the one active most recently; before any is active, the first to become so
    /// (a store's very first key is active at once, so that is only a clock step back).
    /// When every key this server knows is retired (a rotation with a publication delay
    /// shorter than the key refresh, not read here yet), the last retired one still
    /// signs rather than fail a sign-in whose refresh token is already stored; it stays
    /// published for an access-token lifetime, and the next re-read finds its successor.
    pub(crate) fn signer(&self, now: i64) -> Option<&SigningKeys> {
        let openable = |e: &&Entry| e.private.is_some();
        let live = |e: &&Entry| e.private.is_some() && e.retired_at.is_none_or(|r| r > now);
        self.entries
            .iter()
            .filter(live)
            .rfind(|e| e.active_from <= now)
            .or_else(|| self.entries.iter().find(live))
            .or_else(|| {
                self.entries
                    .iter()
                    .filter(openable)
                    .max_by_key(|e| e.retired_at)
            })
            .and_then(|e| e.private.as_ref())
    }

    fn published(&self, e: &Entry, now: i64) -> bool {
        e.retired_at
            .is_none_or(|r| r.saturating_add(self.retention) > now)
    }

    /// The public key of `kid`, if it verifies tokens at `now`.
    pub(crate) fn verifier(&self, kid: &str, now: i64) -> Option<&VerifyingKey> {
        self.entries
            .iter()
            .find(|e| e.kid == kid && self.published(e, now))
            .map(|e| &e.public)
    }

    /// The JWKS document at `now`: every key that signs, will sign, or signed a token
    /// that may not have expired yet.
    pub(crate) fn jwks(&self, now: i64) -> serde_json::Value {
        let keys: Vec<_> = self
            .entries
            .iter()
            .filter(|e| self.published(e, now))
            .map(|e| jwk(&e.kid, &e.public))
            .collect();
        json!({ "keys": keys })
    }
}

/// How often at most a token with an unknown kid makes the server re-read the keyring.
const UNKNOWN_KID_REREAD: Duration = Duration::from_secs(1);

/// The keys one server uses, re-read from the store periodically and on an unknown kid.
pub(crate) struct Keyring {
    store: Arc<dyn Store>,
    kek: Kek,
    retention: i64,
    set: RwLock<Arc<KeySet>>,
    /// When the keyring was last re-read because of an unknown kid.
    last_unknown: Mutex<Option<Instant>>,
}

impl Keyring {
    /// The keyring of `store`, read now. `retention`: the access-token lifetime (seconds).
    pub(crate) async fn read(
        store: Arc<dyn Store>,
        kek: Kek,
        retention: i64,
    ) -> Result<Self, StoreError> {
        let rows = store.signing_keys().await?;
        let set = KeySet::from_rows(&rows, &kek, retention);
        Ok(Self {
            store,
            kek,
            retention,
            set: RwLock::new(Arc::new(set)),
            last_unknown: Mutex::new(None),
        })
    }

    /// The keys as last read.
    pub(crate) fn current(&self) -> Arc<KeySet> {
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the keys from the store.
    pub(crate) async fn reread(&self) -> Result<(), StoreError> {
        let rows = self.store.signing_keys().await?;
        let set = KeySet::from_rows(&rows, &self.kek, self.retention);
        let before = self.current();
        if set.kids() != before.kids() {
            tracing::info!(
                keys = set.entries.len(),
                "signing keys changed in the store"
            );
        }
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(())
    }

    /// Re-reads the keys because a token named a kid this server does not know (it may
    /// have been added by `keys rotate` since the last read); at most once per second,
    /// so unknown kids cannot make the server hammer its store. Whether it re-read.
    pub(crate) async fn reread_for_unknown_kid(&self) -> bool {
        {
            let mut last = self.last_unknown.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < UNKNOWN_KID_REREAD) {
                return false;
            }
            *last = Some(Instant::now());
        }
        match self.reread().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "re-reading the signing keys failed");
                false
            }
        }
    }
}

/// RFC 7638 thumbprint of an OKP public key: SHA-256 of the canonical JWK members.
fn thumbprint(public: &VerifyingKey) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        b64url(public.as_bytes())
    );
    b64url(&Sha256::digest(canonical.as_bytes()))
}

/// Writes `bytes` as one base64url line to a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = create_private(path).map_err(io)?;
    file.write_all(format!("{}\n", b64url(bytes)).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io)
}

/// Creates a file readable by its owner only (fails if it exists: two servers starting
/// on one data dir at once cannot overwrite each other's key).
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        assert!(SigningKeys::load(dir.path()).unwrap().is_none());
        let a = SigningKeys::create(dir.path()).unwrap();
        let b = SigningKeys::load(dir.path()).unwrap().expect("created");
        assert!(
            SigningKeys::create(dir.path()).is_err(),
            "never overwritten"
        );
        assert_eq!(a.kid(), b.kid());
        assert_eq!(a.kid().len(), 43);
        let sig = a.sign(b"msg");
        assert!(b.verify(b"msg", &sig));
        assert!(!b.verify(b"msg2", &sig));
        assert!(!b.verify(b"msg", &sig[1..]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();
        assert!(matches!(
            SigningKeys::load(dir.path()),
            Err(KeyError::Corrupt(_))
        ));
    }

    fn kek(byte: u8) -> Kek {
        Kek::from_bytes(&[byte; 32])
    }

    #[test]
    fn sealed_keys_open_only_with_their_kek_and_kid() {
        let key = SigningKeys::generate().unwrap();
        let row = new_row(&kek(1), &key, 10, 10).unwrap();
        assert_eq!(row.public_key, key.public().as_bytes().to_vec());
        assert!(
            !row.sealed_private
                .windows(32)
                .any(|w| w == key.secret_bytes()),
            "the private key is not stored in the clear"
        );
        assert!(kek(1).opens(&row));
        assert!(!kek(2).opens(&row));
        let mut other_kid = row.clone();
        other_kid.kid = SigningKeys::generate().unwrap().kid().to_owned();
        assert!(!kek(1).opens(&other_kid), "bound to its kid");
        let mut flipped = row.clone();
        flipped.sealed_private[30] ^= 1;
        assert!(!kek(1).opens(&flipped));
    }

    #[test]
    fn rotation_publishes_first_signs_later_and_retires_after_the_retention() {
        let (old, new) = (
            SigningKeys::generate().unwrap(),
            SigningKeys::generate().unwrap(),
        );
        let mut old_row = new_row(&kek(1), &old, 0, 0).unwrap();
        // Rotated at 100 with a publication delay of 60: the old key retires at 160.
        old_row.retired_at = Some(160);
        let new_row = new_row(&kek(1), &new, 100, 160).unwrap();
        let set = KeySet::from_rows(&[new_row.clone(), old_row.clone()], &kek(1), 7200);
        let kids = |now| -> Vec<String> {
            set.jwks(now)["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect()
        };
        let both = vec![old.kid().to_owned(), new.kid().to_owned()];
        assert_eq!(kids(100), both, "published before it signs");
        assert_eq!(set.signer(159).unwrap().kid(), old.kid());
        assert_eq!(set.signer(160).unwrap().kid(), new.kid());
        assert_eq!(
            kids(160 + 7199),
            both,
            "the old key verifies its last tokens"
        );
        assert!(set.verifier(old.kid(), 160 + 7199).is_some());
        assert_eq!(kids(160 + 7200), vec![new.kid().to_owned()]);
        assert!(set.verifier(old.kid(), 160 + 7200).is_none());
        assert!(set.verifier("unknown", 100).is_none());

        // A server whose KEK opens only the old key verifies with both, signs with the old.
        let mut foreign = new_row;
        foreign.sealed_private = new_row_sealed_elsewhere(&new);
        let set = KeySet::from_rows(&[foreign, old_row], &kek(1), 7200);
        assert_eq!(set.counts(), (2, 1));
        assert!(set.verifier(new.kid(), 200).is_some());
        assert_eq!(
            set.signer(200).unwrap().kid(),
            old.kid(),
            "the last one it can open"
        );
    }

    fn new_row_sealed_elsewhere(key: &SigningKeys) -> Vec<u8> {
        new_row(&kek(9), key, 0, 0).unwrap().sealed_private
    }

    #[test]
    fn kek_sources() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            Kek::load(&KekSource::DataDir, dir.path())
                .unwrap()
                .is_none()
        );
        let created = Kek::create(dir.path()).unwrap();
        assert!(Kek::create(dir.path()).is_err(), "never overwritten");
        let loaded = Kek::load(&KekSource::DataDir, dir.path()).unwrap().unwrap();
        let row = new_row(&created, &SigningKeys::generate().unwrap(), 0, 0).unwrap();
        assert!(loaded.opens(&row));
        let text = std::fs::read_to_string(dir.path().join(KEK_FILE)).unwrap();
        let by_value = Kek::load(&KekSource::Value(text.clone()), dir.path())
            .unwrap()
            .unwrap();
        assert!(by_value.opens(&row));
        let by_file = Kek::load(&KekSource::File(dir.path().join(KEK_FILE)), dir.path())
            .unwrap()
            .unwrap();
        assert!(by_file.opens(&row));
        assert!(matches!(
            Kek::load(&KekSource::Value("short".into()), dir.path()),
            Err(KeyError::BadKek(_))
        ));
        assert!(!format!("{:?}", KekSource::Value(text.clone())).contains(text.trim()));
        assert!(matches!(
            Kek::load(&KekSource::File(dir.path().join("nope")), dir.path()),
            Err(KeyError::Io { .. })
        ));
    }
}
