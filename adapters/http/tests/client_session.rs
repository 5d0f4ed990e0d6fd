//! The Rust `Session` and `FileStore` against the real `cloudbase-auth serve`.

#![cfg(all(feature = "client", feature = "server"))]

mod client_common;

use std::time::{Duration, Instant};

use client_common::{ENV, Relay, Server};
use cloudbase_auth_core::{Disposition, Error, LoginState};
use cloudbase_auth_http::client::{
    ClientError, FileStore, MemoryStore, Restored, Session, SessionConfig, SnapshotStore,
};

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
    session.close().await;
}

#[tokio::test]
async fn refreshes_in_the_background_and_single_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &["--access-token-ttl", "4s"]);
    let relay = Relay::start(&server.url, REFRESH_REQUEST);
    let profile = tmp.path().join("profile");
    let store = FileStore::open(&profile, ENV).unwrap();
    let session = Session::open(SessionConfig::new(&relay.url, ENV), store)
        .await
        .unwrap();
    let first = session
        .sign_in_anonymously()
        .await
        .unwrap()
        .session
        .unwrap();
    let stored = std::fs::read(profile.join(format!("{ENV}.session"))).unwrap();

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
    assert_ne!(
        std::fs::read(profile.join(format!("{ENV}.session"))).unwrap(),
        stored
    );
    std::sync::Arc::into_inner(session).unwrap().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_truncation_and_byte_flip_starts_signed_out() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let profile = tmp.path().join("profile");
    let config = SessionConfig::new(&server.url, ENV);
    {
        let store = FileStore::open(&profile, ENV).unwrap();
        let session = Session::open(config.clone(), store).await.unwrap();
        session.sign_in_anonymously().await.unwrap();
        session.user_info().await.unwrap();
        session.close().await;
    }
    let file = profile.join(format!("{ENV}.session"));
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
        tasks.push(tokio::spawn(async move {
            let file = dir.join(format!("{ENV}.session"));
            for bytes in mine {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&file, &bytes).unwrap();
                let store = FileStore::open(&dir, ENV).unwrap();
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
                session.close().await;
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
    let mut store = FileStore::open(&profile, ENV).unwrap();
    assert_eq!(store.load().unwrap().as_deref(), Some(&good[..]));
    let session = Session::open(config, store).await.unwrap();
    assert_eq!(
        session.restored(),
        &Restored::Session(LoginState::Anonymous)
    );
    session.close().await;
}
