//! The access-token signing key: Ed25519, generated on first start and kept in the
//! data dir (mode 0600), published as a JWKS document.
//!
//! File format: one line, the base64url of the 32-byte Ed25519 seed. The key id is the
//! RFC 7638 thumbprint of the public JWK, so it changes exactly when the key does.

use super::secrets::{b64url, random_bytes};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Name of the key file inside the data dir.
pub const KEY_FILE: &str = "signing-key.ed25519";

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

    /// Creates `dir/KEY_FILE` (0600) with a fresh key; fails if the file exists.
    pub(crate) fn create(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(KEY_FILE);
        let io = |source| KeyError::Io {
            path: path.clone(),
            source,
        };
        let seed = random_bytes::<32>().map_err(|_| KeyError::Random)?;
        let mut file = create_private(&path).map_err(io)?;
        file.write_all(format!("{}\n", b64url(&seed)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok(Self::from_seed(&seed))
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
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(signature) else {
            return false;
        };
        self.public.verify_strict(message, &sig).is_ok()
    }

    /// The JWKS document.
    pub(crate) fn jwks(&self) -> serde_json::Value {
        json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64url(self.public.as_bytes()),
                "kid": self.kid,
                "alg": "EdDSA",
                "use": "sig",
            }]
        })
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
}
