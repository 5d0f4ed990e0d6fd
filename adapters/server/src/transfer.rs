//! Import and export of users (like the Firebase Auth Emulator's): a JSON document
//! with every user and its WeChat identities. Sessions are not exported; imported users
//! sign in again.

use super::config::is_valid_appid;
use super::store::{Store, StoreError, UserRecord};
use super::wechat::is_valid_wx_id;
use cloudbase_auth_core::capacity::{ENV_ID_MAX, UID_MAX};
use cloudbase_auth_core::config::is_valid_id;
use cloudbase_auth_core::wire::is_token_safe;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
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

    /// Checks the document as the API would check the same users and identities,
    /// against the users the store holds already (`stored`): every id well formed, each
    /// uid once, an anonymous user without identities, at most one openid per Mini
    /// Program on a user, an openid of a Mini Program on one user only (in the file and
    /// in the store), and a uid the store holds kept in its env. Every problem is
    /// reported, not just the first.
    pub fn check(&self, stored: &[UserRecord]) -> Result<(), ImportError> {
        if self.format != EXPORT_FORMAT || self.version != EXPORT_VERSION {
            return Err(ImportError::Format);
        }
        let mut rejected = Vec::new();
        // (env, appid, openid) → (1-based position, uid) of its first user in the file.
        let mut owners: HashMap<(&str, &str, &str), (usize, &str)> = HashMap::new();
        let mut first_of_uid: HashMap<&str, usize> = HashMap::new();
        let stored_users: HashMap<&str, &UserRecord> =
            stored.iter().map(|u| (u.uid.as_str(), u)).collect();
        let mut stored_owners: HashMap<(&str, &str, &str), &str> = HashMap::new();
        for u in stored {
            for id in &u.identities {
                stored_owners.insert((&u.env, &id.appid, &id.openid), &u.uid);
            }
        }
        for (i, u) in self.users.iter().enumerate() {
            let position = i + 1;
            let mut reject = |reason| {
                rejected.push(Rejection {
                    user: position,
                    uid: u.uid.clone(),
                    reason,
                });
            };
            if u.uid.len() > UID_MAX || !is_token_safe(&u.uid) {
                reject(RejectReason::BadUid);
            }
            if u.env.len() > ENV_ID_MAX || !is_valid_id(&u.env) {
                reject(RejectReason::BadEnv);
            }
            if let Some(&first) = first_of_uid.get(u.uid.as_str()) {
                reject(RejectReason::DuplicateUid(first));
            } else {
                first_of_uid.insert(&u.uid, position);
            }
            if u.anonymous && !u.identities.is_empty() {
                reject(RejectReason::AnonymousWithIdentity);
            }
            let stored_user = stored_users.get(u.uid.as_str());
            if let Some(existing) = stored_user
                && existing.env != u.env
            {
                reject(RejectReason::EnvChanged {
                    stored: existing.env.clone(),
                });
            }
            for (j, id) in u.identities.iter().enumerate() {
                if !is_valid_appid(&id.appid) {
                    reject(RejectReason::BadAppid(j + 1));
                    continue;
                }
                if !is_valid_wx_id(&id.openid) || !id.unionid.as_deref().is_none_or(is_valid_wx_id)
                {
                    reject(RejectReason::BadOpenid(j + 1));
                    continue;
                }
                // One openid per Mini Program on a user (user/provider/bind refuses a
                // second), counting what the store links to this uid already.
                let earlier = u.identities[..j]
                    .iter()
                    .chain(stored_user.iter().flat_map(|s| &s.identities))
                    .find(|other| other.appid == id.appid && other.openid != id.openid);
                if let Some(other) = earlier {
                    reject(RejectReason::TwoOpenids {
                        appid: id.appid.clone(),
                        openids: (other.openid.clone(), id.openid.clone()),
                    });
                }
                // One user per openid of a Mini Program (bind refuses one bound
                // elsewhere): the store's owner keeps it; else the file's first user.
                let key = (u.env.as_str(), id.appid.as_str(), id.openid.as_str());
                if let Some(&owner) = stored_owners.get(&key) {
                    if owner != u.uid {
                        reject(RejectReason::OpenidTaken {
                            appid: id.appid.clone(),
                            openid: id.openid.clone(),
                            owner: owner.to_owned(),
                        });
                    }
                } else {
                    match owners.get(&key) {
                        Some(&(other, other_uid)) if other_uid != u.uid => {
                            reject(RejectReason::OpenidInFile {
                                appid: id.appid.clone(),
                                openid: id.openid.clone(),
                                other,
                            });
                        }
                        Some(_) => {}
                        None => {
                            owners.insert(key, (position, &u.uid));
                        }
                    }
                }
            }
        }
        if rejected.is_empty() {
            Ok(())
        } else {
            Err(ImportError::Rejected {
                users: self.users.len(),
                rejected,
            })
        }
    }
}

/// One user of an import document that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("user #{user} ({uid}): {reason}")]
#[non_exhaustive]
pub struct Rejection {
    /// Position of the user in the document's `users`, from 1.
    pub user: usize,
    /// Its uid, as the document gives it.
    pub uid: String,
    /// What is wrong with it.
    pub reason: RejectReason,
}

/// Why a user of an import document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The uid is empty, too long, or not visible ASCII.
    #[error("uid must be 1..=64 visible ASCII characters without quotes or backslashes")]
    BadUid,
    /// The env is not an env id.
    #[error("env is not a valid env id (1..=64 characters of [A-Za-z0-9_-])")]
    BadEnv,
    /// Identity number `.0` (from 1) has an invalid appid.
    #[error("identity #{0} has an invalid appid")]
    BadAppid(usize),
    /// Identity number `.0` (from 1) has an invalid openid or unionid.
    #[error("identity #{0} has an invalid openid or unionid")]
    BadOpenid(usize),
    /// Another user of the document (at position `.0`) has the same uid.
    #[error("the same uid as user #{0}")]
    DuplicateUid(usize),
    /// The user is anonymous but has WeChat identities (linking one ends anonymity).
    #[error("an anonymous user has no WeChat identity (linking one makes it a WeChat user)")]
    AnonymousWithIdentity,
    /// Two openids of one Mini Program on one user.
    #[error(
        "two openids of Mini Program {appid} ({} and {}); a user has at most one per Mini Program",
        .openids.0, .openids.1
    )]
    TwoOpenids {
        /// The Mini Program.
        appid: String,
        /// The openid met first (in the document or, for a stored user, in the store)
        /// and the second one.
        openids: (String, String),
    },
    /// The openid is given to an earlier user of the document too.
    #[error("openid {openid} of Mini Program {appid} is given to user #{other} too")]
    OpenidInFile {
        /// The Mini Program.
        appid: String,
        /// The openid.
        openid: String,
        /// Position of the other user.
        other: usize,
    },
    /// The openid belongs to another user of the store.
    #[error("openid {openid} of Mini Program {appid} belongs to user {owner} of the store")]
    OpenidTaken {
        /// The Mini Program.
        appid: String,
        /// The openid.
        openid: String,
        /// The store's user that has it.
        owner: String,
    },
    /// The store holds the uid in another env.
    #[error("the store holds this uid in env {stored}")]
    EnvChanged {
        /// The env the store has for it.
        stored: String,
    },
}

/// Why `--import` failed. Nothing was imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    /// The file is not JSON of the export's shape.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The document is not an export of this format and version.
    #[error("not a `{EXPORT_FORMAT}` version {EXPORT_VERSION} document")]
    Format,
    /// Users are refused (every one listed); nothing was imported.
    #[error("{}", list_rejections(*.users, .rejected))]
    Rejected {
        /// How many users the document has.
        users: usize,
        /// Every refused user, in document order (a user may appear more than once).
        rejected: Vec<Rejection>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn list_rejections(users: usize, rejected: &[Rejection]) -> String {
    let mut refused: Vec<usize> = rejected.iter().map(|r| r.user).collect();
    refused.dedup();
    let mut text = format!(
        "{} of its {users} users refused, so nothing was imported ({} problems):",
        refused.len(),
        rejected.len()
    );
    for r in rejected {
        text.push_str("\n  ");
        text.push_str(&r.to_string());
    }
    text
}

/// Every user of the store as a document.
pub(crate) async fn export(store: &dyn Store) -> Result<Export, String> {
    Ok(Export::new(
        store.list_users().await.map_err(|e| e.to_string())?,
    ))
}

/// Reads `path`, checks it ([`Export::check`]) against the store's users and imports
/// its users in one transaction; returns how many. Nothing is written unless every user
/// is accepted.
pub(crate) async fn import_file(
    store: &dyn Store,
    path: &Path,
    now: i64,
) -> Result<usize, ImportError> {
    let text = std::fs::read_to_string(path).map_err(ImportError::Read)?;
    let doc: Export = serde_json::from_str(&text).map_err(ImportError::Json)?;
    // The server is not serving yet and holds the data dir's lock: the store cannot
    // change between this read and the import's transaction.
    import_doc(store, &doc, now).await
}

/// Checks `doc` ([`Export::check`]) against the store's users and imports its users in
/// one transaction; returns how many. Nothing is written unless every user is accepted
/// (a sign-in between the check and the transaction that takes an openid of the
/// document makes the store refuse the whole import).
pub(crate) async fn import_doc(
    store: &dyn Store,
    doc: &Export,
    now: i64,
) -> Result<usize, ImportError> {
    doc.check(&store.list_users().await?)?;
    store.import_users(&doc.users, now).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Identity;

    fn wechat_user(uid: &str, openid: &str) -> UserRecord {
        let mut user = UserRecord::new(uid.into(), "env".into(), false, 0);
        user.identities
            .push(Identity::new("wxapp".into(), openid.into(), None));
        user
    }

    #[test]
    fn an_export_imports_again_into_its_own_store() {
        let users = vec![wechat_user("u1", "o1"), wechat_user("u2", "o2")];
        let doc = Export::new(users.clone());
        doc.check(&users).expect("the store's own users");
        doc.check(&[]).expect("an empty store");
    }

    #[test]
    fn every_problem_is_reported_in_document_order() {
        let mut doc = Export::new(vec![
            wechat_user("u1", "o1"),
            wechat_user("u1", "o2"),
            wechat_user("u3", "o1"),
        ]);
        let Err(ImportError::Rejected { users, rejected }) = doc.check(&[]) else {
            panic!("refused")
        };
        assert_eq!(users, 3);
        let found: Vec<(usize, &RejectReason)> =
            rejected.iter().map(|r| (r.user, &r.reason)).collect();
        assert!(matches!(
            found[..],
            [
                (2, RejectReason::DuplicateUid(1)),
                (3, RejectReason::OpenidInFile { other: 1, .. })
            ]
        ));
        doc.version = 2;
        assert!(matches!(doc.check(&[]), Err(ImportError::Format)));
    }
}
