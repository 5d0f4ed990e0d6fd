//! Import and export of users (like the Firebase Auth Emulator's): a JSON document
//! with every user and its WeChat identities. Sessions are not exported; imported users
//! sign in again.

use super::config::is_valid_appid;
use super::store::{Store, UserRecord};
use super::wechat::is_valid_wx_id;
use cloudbase_auth_core::capacity::{ENV_ID_MAX, UID_MAX};
use cloudbase_auth_core::config::is_valid_id;
use cloudbase_auth_core::wire::is_token_safe;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::Path;

/// `format` of an export document.
pub const EXPORT_FORMAT: &str = "cloudbase-auth-users";
/// `version` of the export format this build writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// An export document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Export {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// Always [`EXPORT_VERSION`].
    pub version: u32,
    /// Every user, oldest first.
    pub users: Vec<UserRecord>,
}

impl Export {
    /// A document holding `users`.
    pub fn new(users: Vec<UserRecord>) -> Self {
        Self {
            format: EXPORT_FORMAT.to_owned(),
            version: EXPORT_VERSION,
            users,
        }
    }

    /// Checks what a file may contain before any of it reaches the store.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != EXPORT_FORMAT || self.version != EXPORT_VERSION {
            return Err(format!(
                "not a `{EXPORT_FORMAT}` version {EXPORT_VERSION} document"
            ));
        }
        for (i, u) in self.users.iter().enumerate() {
            let at = |what: &str| format!("user #{} ({}): {what}", i + 1, u.uid);
            if u.uid.len() > UID_MAX || !is_token_safe(&u.uid) {
                return Err(at("uid must be 1..=64 visible ASCII characters"));
            }
            if u.env.len() > ENV_ID_MAX || !is_valid_id(&u.env) {
                return Err(at("env is not a valid env id"));
            }
            for id in &u.identities {
                if !is_valid_appid(&id.appid) {
                    return Err(at("identity has an invalid appid"));
                }
                if !is_valid_wx_id(&id.openid) || !id.unionid.as_deref().is_none_or(is_valid_wx_id)
                {
                    return Err(at("identity has an invalid openid or unionid"));
                }
            }
        }
        Ok(())
    }
}

/// Every user of the store as a document.
pub(crate) async fn export(store: &dyn Store) -> Result<Export, String> {
    Ok(Export::new(
        store.list_users().await.map_err(|e| e.to_string())?,
    ))
}

/// Reads `path` and imports its users; returns how many.
pub(crate) async fn import_file(store: &dyn Store, path: &Path, now: i64) -> Result<usize, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let doc: Export = serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))?;
    doc.validate()?;
    store
        .import_users(&doc.users, now)
        .await
        .map_err(|e| e.to_string())?;
    Ok(doc.users.len())
}

/// Writes every user to `path` atomically (temp file, fsync, rename); returns how many.
pub(crate) async fn export_file(store: &dyn Store, path: &Path) -> Result<usize, String> {
    let doc = export(store).await?;
    let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| "export path has no file name".to_owned())?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| e.to_string())?;
    Ok(doc.users.len())
}
