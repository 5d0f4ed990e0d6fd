//! The Rust `Session` and `FileStore` against the real `cloudbase-auth serve`.

mod client_common;

use std::time::{Duration, Instant};

use client_common::{ENV, Relay, Server};
use cloudbase_auth_client::{
    ClientError, FileStore, MemoryStore, Restored, Session, SessionConfig, SnapshotStore,
};
use cloudbase_auth_core::{Disposition, Error, LoginState};

const REFRESH_REQUEST: &str = "POST /auth/v1/token?";
const APPID: &str = "wx0123456789abcdef";

async fn mint(server: &str, openid: &str) -> String {
    client_common::mint_code(server, APPID, openid).await
}

#[tokio::test]
async fn a_whole_session_with_state_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let session = Session::open(SessionConfig::new(&server.url, ENV), MemoryStore::new())
        .await
        .unwrap();
    assert_eq!(session.restored(), &Restored::Nothing);
    let mut states = session.login_states();
    assert_eq!(*states.borrow_and_update(), LoginState::Initialized);

    let status = session.sign_in_anonymously().await.unwrap();
    assert_eq!(status.state, LoginState::Anonymous);
    assert_eq!(*states.borrow_and_update(), LoginState::Anonymous);
    let uid = status.session.unwrap().uid;
    assert_eq!(session.user_info().await.unwrap().uid, uid);
    let token = session.access_token().await.unwrap();
    assert_eq!(token.token_type, "Bearer");
    assert!(!format!("{token:?}").contains(&token.access_token));

    let code = mint(&server.url, "o-session-1").await;
    let status = session.link_wechat(&code, APPID).await.unwrap();
    assert_eq!(status.state, LoginState::WeChat);
    assert_eq!(status.user.as_ref().unwrap().uid, uid);
    assert_eq!(status.user.unwrap().openid, "o-session-1");
    assert_eq!(*states.borrow_and_update(), LoginState::WeChat);

    // A bad code: a typed server error, the session kept.
    let err = session
        .sign_in_with_wechat("not-a-real-code", APPID)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Auth {
                error: Error::Server(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        session.login_state().await.unwrap().state,
        LoginState::WeChat
    );

    let out = session.sign_out().await.unwrap();
    assert!(out.had_session && out.revoked, "{out:?}");
    assert_eq!(*states.borrow_and_update(), LoginState::SignedOut);
    let err = session.access_token().await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Auth {
                error: Error::NotSignedIn,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.disposition(), Disposition::KeepSession);
    session.close().await.unwrap();
}

#[tokio::test]
async fn refreshes_in_the_background_and_single_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &["--access-token-ttl", "4s"]);
    let relay = Relay::start(&server.url, REFRESH_REQUEST);
    let profile = tmp.path().join("profile");
    let store = FileStore::open(&profile, &relay.url, ENV).unwrap();
    let file = store.path().to_owned();
    let session = Session::open(SessionConfig::new(&relay.url, ENV), store)
        .await
        .unwrap();
    let first = session
        .sign_in_anonymously()
        .await
        .unwrap()
        .session
        .unwrap();
    let stored = std::fs::read(&file).unwrap();

    // Nobody asks: the session's own timer refreshes at half the lifetime (2 s).
    let start = Instant::now();
    while relay.hits() == 0 && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(relay.hits(), 1);
    // Eight callers at once get the one fresh token; no second refresh.
    let session = std::sync::Arc::new(session);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let s = session.clone();
            tokio::spawn(async move { s.access_token().await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for h in handles {
        tokens.push(h.await.unwrap());
    }
    assert!(tokens.iter().all(|t| t == &tokens[0]));
    assert_ne!(tokens[0].access_token, first.access_token);
    assert_eq!(relay.hits(), 1);
    // The refreshed session was stored.
    assert_ne!(std::fs::read(&file).unwrap(), stored);
    std::sync::Arc::into_inner(session)
        .unwrap()
        .close()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_truncation_and_byte_flip_starts_signed_out() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let profile = tmp.path().join("profile");
    let config = SessionConfig::new(&server.url, ENV);
    {
        let store = FileStore::open(&profile, &server.url, ENV).unwrap();
        let session = Session::open(config.clone(), store).await.unwrap();
        session.sign_in_anonymously().await.unwrap();
        session.user_info().await.unwrap();
        session.close().await.unwrap();
    }
    let file = profile.join(FileStore::file_name(&server.url, ENV).unwrap());
    let good = std::fs::read(&file).unwrap();

    let mut damaged: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0xff;
        damaged.push(b);
    }
    let start = Instant::now();
    // Four profiles side by side: the cost is the fsyncs of the quarantine renames.
    let lanes = 4;
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let dir = tmp.path().join(format!("lane-{lane}"));
        let mine: Vec<Vec<u8>> = damaged.iter().skip(lane).step_by(lanes).cloned().collect();
        let config = config.clone();
        let name = FileStore::file_name(&server.url, ENV).unwrap();
        tasks.push(tokio::spawn(async move {
            let file = dir.join(&name);
            for bytes in mine {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&file, &bytes).unwrap();
                let store = FileStore::open(&dir, &config.server, ENV).unwrap();
                let corrupt = store.corrupt_path();
                let session = Session::open(config.clone(), store).await.unwrap();
                assert!(
                    matches!(session.restored(), Restored::Discarded { kept_at: Some(p), .. } if *p == corrupt),
                    "{:?} for {} bytes",
                    session.restored(),
                    bytes.len()
                );
                assert_eq!(
                    session.current().await.unwrap().state,
                    LoginState::SignedOut
                );
                session.close().await.unwrap();
                assert_eq!(std::fs::read(&corrupt).unwrap(), bytes);
                assert!(!file.exists());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!(
        "{} damaged profiles ({} bytes good) in {:?}",
        damaged.len(),
        good.len(),
        start.elapsed()
    );

    // The good bytes still restore.
    std::fs::write(&file, &good).unwrap();
    let mut store = FileStore::open(&profile, &server.url, ENV).unwrap();
    assert_eq!(store.load().unwrap().as_deref(), Some(&good[..]));
    let session = Session::open(config, store).await.unwrap();
    assert_eq!(
        session.restored(),
        &Restored::Session(LoginState::Anonymous)
    );
    session.close().await.unwrap();
}

/// A store that can be told to fail its writes (a full disk, a read-only directory).
#[derive(Clone, Default)]
struct FlakyStore {
    inner: std::sync::Arc<std::sync::Mutex<(MemoryStore, bool)>>,
}

impl FlakyStore {
    fn fail_writes(&self, fail: bool) {
        self.inner.lock().unwrap().1 = fail;
    }
    fn bytes(&self) -> Option<Vec<u8>> {
        self.inner.lock().unwrap().0.bytes.clone()
    }
}

impl SnapshotStore for FlakyStore {
    fn load(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        self.inner.lock().unwrap().0.load()
    }
    fn save(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut g = self.inner.lock().unwrap();
        if g.1 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left",
            ));
        }
        g.0.save(bytes)
    }
    fn clear(&mut self) -> std::io::Result<()> {
        self.inner.lock().unwrap().0.clear()
    }
    fn check_writable(&mut self) -> std::io::Result<()> {
        if self.inner.lock().unwrap().1 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left",
            ));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_store_that_cannot_write_spends_no_refresh_token() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &["--access-token-ttl", "2s"]);
    let relay = Relay::start(&server.url, REFRESH_REQUEST);
    let store = FlakyStore::default();
    let config = SessionConfig::new(&relay.url, ENV);
    let session = Session::open(config.clone(), store.clone()).await.unwrap();
    let uid = session
        .sign_in_anonymously()
        .await
        .unwrap()
        .session
        .unwrap()
        .uid;
    session.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await; // refresh due (half-life)

    // The store cannot be written: the session refuses to start, nothing is sent.
    store.fail_writes(true);
    let err = Session::open(config.clone(), store.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Store(_)), "{err:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(relay.hits(), 0, "no refresh reached the server");

    // Writable again: the stored (unspent) refresh token still works, same user.
    store.fail_writes(false);
    let session = Session::open(config, store.clone()).await.unwrap();
    let token = session.access_token().await.unwrap();
    assert_eq!(token.uid, uid);
    assert_eq!(relay.hits(), 1);
    session.close().await.unwrap();
}

#[tokio::test]
async fn a_snapshot_that_failed_to_save_is_written_again() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let store = FlakyStore::default();
    let config = SessionConfig::new(&server.url, ENV);
    let session = Session::open(config.clone(), store.clone()).await.unwrap();
    // The disk fills up after the session started: the sign-in is reported as not
    // stored, but kept in memory and retried.
    store.fail_writes(true);
    let err = session.sign_in_anonymously().await.unwrap_err();
    assert!(matches!(err, ClientError::Store(_)), "{err:?}");
    assert_eq!(store.bytes(), None);
    store.fail_writes(false);
    let status = session.current().await.unwrap();
    assert_eq!(status.state, LoginState::Anonymous);
    session.close().await.unwrap();
    let stored = store.bytes().expect("written on the retry");
    // A second start finds the same user.
    let session = Session::open(config, store.clone()).await.unwrap();
    assert_eq!(
        session.current().await.unwrap().session.unwrap().uid,
        status.session.unwrap().uid
    );
    session.close().await.unwrap();
    assert!(!stored.is_empty());

    // Still failing at close: the close says so.
    let session = Session::open(SessionConfig::new(&server.url, ENV), MemoryStore::new())
        .await
        .unwrap();
    session.close().await.unwrap();
    let flaky = FlakyStore::default();
    let session = Session::open(SessionConfig::new(&server.url, ENV), flaky.clone())
        .await
        .unwrap();
    flaky.fail_writes(true);
    let _ = session.sign_in_anonymously().await;
    assert!(matches!(session.close().await, Err(ClientError::Store(_))));
}

#[tokio::test]
async fn a_store_of_another_server_is_refused_before_anything_is_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let relay = Relay::start(&server.url, "POST ");
    let profile = tmp.path().join("profile");
    let store = FileStore::open(&profile, &server.url, ENV).unwrap();
    let err = Session::open(SessionConfig::new(&relay.url, ENV), store)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::OtherServer { store_server, .. } if *store_server == server.url),
        "{err:?}"
    );
    assert_eq!(relay.hits(), 0);
}

#[tokio::test]
async fn a_refused_anonymous_session_is_never_passed_off_as_the_same_user() {
    let tmp = tempfile::tempdir().unwrap();
    // No grace window: presenting a rotated refresh token revokes the family at once.
    let server = Server::start(
        &tmp.path().join("data"),
        &["--access-token-ttl", "2s", "--refresh-grace", "0s"],
    );
    for recovery in [false, true] {
        let config = SessionConfig::new(&server.url, ENV).with_anonymous_recovery(recovery);
        let device_a = FlakyStore::default();
        let a = Session::open(config.clone(), device_a.clone())
            .await
            .unwrap();
        let uid = a.sign_in_anonymously().await.unwrap().session.unwrap().uid;
        a.close().await.unwrap();
        // A copy of the stored session, as a restored backup or a cloned profile has it.
        let copied = device_a.bytes().unwrap();
        tokio::time::sleep(Duration::from_millis(1_100)).await; // refresh due
        // Device A refreshes (rotating the refresh token) ...
        let a = Session::open(config.clone(), device_a.clone())
            .await
            .unwrap();
        a.access_token().await.unwrap();
        a.close().await.unwrap();
        // ... then the copy presents the rotated token: the server revokes the family.
        let mut copy = MemoryStore::new();
        copy.bytes = Some(copied);
        let b = Session::open(config.clone(), copy).await.unwrap();
        let mut replacements = b.replacements();
        let err = b.access_token().await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Auth {
                    error: Error::SessionExpired,
                    ..
                }
            ),
            "recovery {recovery}: {err:?}"
        );
        if recovery {
            // A new user took its place, announced as such.
            tokio::time::timeout(Duration::from_secs(5), replacements.wait_for(|n| *n == 1))
                .await
                .unwrap()
                .unwrap();
            let now = b.current().await.unwrap();
            assert_eq!(now.state, LoginState::Anonymous);
            assert_ne!(now.session.unwrap().uid, uid);
        } else {
            assert_eq!(*replacements.borrow(), 0);
            assert_eq!(b.current().await.unwrap().state, LoginState::SignedOut);
        }
        b.close().await.unwrap();
    }
}
