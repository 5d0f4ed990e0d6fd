//! Signing keys in the store: rotation on a stopped data dir and on one whose server
//! runs, the upgrade of a data dir of an earlier version (only `signing-key.ed25519`),
//! and the key-encryption key from the environment.

use cloudbase_auth_server::command::{KeysCommand, run_keys};
use cloudbase_auth_server::keys::{KEK_FILE, KEY_FILE, KekSource};
use cloudbase_auth_server::testing::{TestServer, jwt_parts};
use std::path::Path;
use std::time::{Duration, Instant};

fn kid_of(token: &str) -> String {
    jwt_parts(token).0["kid"].as_str().expect("kid").to_owned()
}

async fn jwks_kids(s: &TestServer) -> Vec<String> {
    let r = s.api.get("/.well-known/jwks.json").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

fn rotate(delay: Duration) -> KeysCommand {
    KeysCommand::Rotate {
        publish_delay: delay,
    }
}

/// Polls `check` every 100 ms for at most `limit`.
async fn eventually<F: std::future::Future<Output = bool>>(
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Turns the data dir of a stopped server into one of the version before keys moved into
/// the store: the key in `signing-key.ed25519`, no `signing_keys` table (migration 3 not
/// applied), no key-encryption key.
fn downgrade(data: &Path, seed: &[u8; 32]) {
    use base64::Engine as _;
    let line = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(seed);
    std::fs::write(data.join(KEY_FILE), format!("{line}\n")).unwrap();
    std::fs::remove_file(data.join(KEK_FILE)).unwrap();
    let conn = rusqlite::Connection::open(data.join("auth.db")).unwrap();
    conn.execute_batch("DROP TABLE signing_keys; DELETE FROM _sqlx_migrations WHERE version = 3;")
        .unwrap();
}

#[tokio::test]
async fn rotation_on_an_old_data_dir_imports_its_key_file_first() {
    let s = TestServer::start().await;
    let signed = s.api.sign_in_anonymously().await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    let token = signed.str("access_token");
    let old_kid = kid_of(&token);
    let seed = s.signing_key().to_bytes();
    let data = s.data_dir();
    let dir = {
        let TestServer { server, dir, .. } = s;
        server.unwrap().shutdown().await.unwrap();
        dir
    };
    downgrade(&data, &seed);

    let out = run_keys(&data, &rotate(Duration::ZERO), KekSource::DataDir)
        .await
        .expect("rotates");
    assert!(out.contains(&old_kid), "{out}");
    assert!(
        data.join(KEK_FILE).exists(),
        "a key-encryption key was created"
    );

    let s = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(
        s.api.me(&token).await.status,
        200,
        "a token of the imported key verifies"
    );
    let kids = jwks_kids(&s).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(kids.contains(&old_kid));
    let refreshed = s.api.refresh(&signed.str("refresh_token")).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let new_kid = kid_of(&refreshed.str("access_token"));
    assert_ne!(new_kid, old_kid, "the new key signs");
    assert!(kids.contains(&new_kid));
    s.stop().await;
}

#[tokio::test]
async fn a_server_of_an_old_data_dir_imports_its_key_and_keeps_its_tokens() {
    let s = TestServer::start().await;
    let signed = s.api.sign_in_anonymously().await;
    let token = signed.str("access_token");
    let seed = s.signing_key().to_bytes();
    let data = s.data_dir();
    let s = {
        let TestServer { server, dir, .. } = s;
        server.unwrap().shutdown().await.unwrap();
        downgrade(&data, &seed);
        TestServer::start_in(dir, |_| {}).await
    };
    assert_eq!(s.api.me(&token).await.status, 200);
    assert_eq!(jwks_kids(&s).await, vec![kid_of(&token)]);
    // The key file is not read any more: the store holds the key.
    std::fs::remove_file(data.join(KEY_FILE)).unwrap();
    let s = s.restart_with(|_| {}).await;
    assert_eq!(s.api.me(&token).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn a_running_server_picks_up_a_rotation_and_retires_the_old_key() {
    // Short lifetimes so the retirement period takes seconds.
    let s = TestServer::start_with(|c| {
        c.access_token_ttl = Duration::from_secs(3);
        c.key_refresh = Duration::from_secs(1);
    })
    .await;
    let signed = s.api.sign_in_anonymously().await;
    let before = signed.str("access_token");
    let old_kid = kid_of(&before);
    let data = s.data_dir();
    let out = run_keys(&data, &rotate(Duration::from_secs(2)), KekSource::DataDir)
        .await
        .expect("rotates");
    assert!(out.contains("pending"), "{out}");

    // Published by the running server within its key refresh, before it signs.
    assert!(
        eventually(Duration::from_secs(5), || {
            let s = &s;
            async move { jwks_kids(s).await.len() == 2 }
        })
        .await,
        "the new key was published"
    );
    assert_eq!(
        s.api.me(&before).await.status,
        200,
        "the old token verifies"
    );
    // After the publication delay, new tokens carry the new key.
    let mut refresh = signed.str("refresh_token");
    let mut new_kid = old_kid.clone();
    let deadline = Instant::now() + Duration::from_secs(6);
    while new_kid == old_kid && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = s.api.refresh(&refresh).await;
        assert_eq!(r.status, 200, "{}", r.text);
        refresh = r.str("refresh_token");
        new_kid = kid_of(&r.str("access_token"));
        assert_eq!(s.api.me(&r.str("access_token")).await.status, 200);
    }
    assert_ne!(new_kid, old_kid, "the new key signs after the delay");
    let kids = jwks_kids(&s).await;
    assert!(
        kids.contains(&old_kid) && kids.contains(&new_kid),
        "{kids:?}"
    );

    // One access-token lifetime after its retirement the old key is gone.
    assert!(
        eventually(Duration::from_secs(8), || {
            let (s, kid) = (&s, new_kid.clone());
            async move { jwks_kids(s).await == vec![kid] }
        })
        .await,
        "the retired key left the JWKS"
    );
    let listed = run_keys(&data, &KeysCommand::List, KekSource::DataDir)
        .await
        .unwrap();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&old_kid) && l.contains("retired")),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&new_kid) && l.contains("signing")),
        "{listed}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_token_of_an_unknown_key_makes_the_server_reread_its_keys_at_once() {
    // The periodic re-read is far away: only the unknown kid makes the server look.
    let a = TestServer::start_with(|c| c.key_refresh = Duration::from_secs(3600)).await;
    let data = a.data_dir();
    run_keys(&data, &rotate(Duration::ZERO), KekSource::DataDir)
        .await
        .unwrap();
    // A second server on the same store (as instances on one database are), started
    // after the rotation, signs with the new key; the first has not read it yet.
    let before = jwks_kids(&a).await;
    assert_eq!(before.len(), 1);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("data");
    std::fs::create_dir(&copy).unwrap();
    for f in ["auth.db", "auth.db-wal", KEK_FILE] {
        if data.join(f).exists() {
            std::fs::copy(data.join(f), copy.join(f)).unwrap();
        }
    }
    let b = TestServer::start_in(dir, |_| {}).await;
    let signed = b.api.sign_in_anonymously().await;
    let token = signed.str("access_token");
    assert!(!before.contains(&kid_of(&token)), "signed by the new key");
    // `a` does not have the user (it lives in the copy), so it refuses the session; but
    // checking the token's key made it re-read the keys at once.
    a.api.me(&token).await.assert_error(401, "unauthenticated");
    assert_eq!(
        jwks_kids(&a).await.len(),
        2,
        "the unknown kid made it re-read"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_key_encryption_key_can_come_from_the_environment() {
    let kek = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".to_owned();
    let s = TestServer::start_with(|c| c.kek = KekSource::Value(kek.clone())).await;
    let data = s.data_dir();
    assert!(
        !data.join(KEK_FILE).exists(),
        "no key file beside the store"
    );
    let token = s.api.sign_in_anonymously().await.str("access_token");
    let dir = {
        let TestServer { server, dir, .. } = s;
        server.unwrap().shutdown().await.unwrap();
        dir
    };
    // Without the key the sealed keys cannot be used; with another, neither.
    let err = run_keys(&data, &KeysCommand::List, KekSource::DataDir)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("key-encryption key"), "{err}");
    let other = KekSource::Value("HwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into());
    let err = run_keys(&data, &KeysCommand::List, other)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not the key they were sealed with"),
        "{err}"
    );
    let s = TestServer::start_in(dir, |c| c.kek = KekSource::Value(kek.clone())).await;
    assert_eq!(s.api.me(&token).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn an_old_data_dir_that_lost_its_key_file_is_refused() {
    let s = TestServer::start().await;
    assert_eq!(s.api.sign_in_anonymously().await.status, 200);
    let seed = s.signing_key().to_bytes();
    let data = s.data_dir();
    let TestServer { server, dir, .. } = s;
    server.unwrap().shutdown().await.unwrap();
    downgrade(&data, &seed);
    std::fs::remove_file(data.join(KEY_FILE)).unwrap();
    let config = TestServer::config(dir.path());
    match cloudbase_auth_server::Server::start(config.clone()).await {
        Err(e @ cloudbase_auth_server::StartError::KeyMissing { users: 1, .. }) => {
            assert!(e.to_string().contains("--new-signing-key"), "{e}");
        }
        other => panic!("expected KeyMissing, got {other:?}"),
    }
    assert!(
        !data.join(KEK_FILE).exists(),
        "a refused start creates nothing"
    );
    let err = run_keys(&data, &rotate(Duration::ZERO), KekSource::DataDir)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no signing key"), "{err}");
    assert_eq!(err.exit_code(), 3);
}
