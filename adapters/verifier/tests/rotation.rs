//! The verifier across a signing-key rotation of the server it trusts (`keys rotate` on
//! the data dir of the running server): a token signed before the rotation still
//! verifies, a token of the new key is verified after one JWKS fetch, and once the old
//! key is retired for an access-token lifetime its tokens are refused.

use cloudbase_auth_server::command::{KeysCommand, run_keys};
use cloudbase_auth_server::keys::KekSource;
use cloudbase_auth_server::testing::{ENV, TestServer, jwt_parts};
use cloudbase_auth_verifier::{Verifier, VerifyError};
use std::time::{Duration, Instant};

fn kid_of(token: &str) -> String {
    jwt_parts(token).0["kid"].as_str().expect("kid").to_owned()
}

#[tokio::test]
async fn tokens_of_the_previous_key_verify_until_it_is_retired() {
    let s = TestServer::start_with(|c| {
        c.access_token_ttl = Duration::from_secs(4);
        c.key_refresh = Duration::from_secs(1);
    })
    .await;
    let verifier = Verifier::builder(s.api.base.clone(), ENV)
        .leeway(Duration::ZERO)
        .refresh_interval(Duration::from_millis(200))
        .build()
        .expect("verifier");
    let signed = s.api.sign_in_anonymously().await;
    let before = signed.str("access_token");
    let old_kid = kid_of(&before);
    verifier.verify(&before).await.expect("verifies before");

    run_keys(
        &s.data_dir(),
        &KeysCommand::Rotate {
            publish_delay: Duration::from_secs(1),
        },
        KekSource::DataDir,
    )
    .await
    .expect("rotates");

    // Refresh until the new key signs (after the publication delay).
    let mut refresh = signed.str("refresh_token");
    let mut after = before.clone();
    let deadline = Instant::now() + Duration::from_secs(6);
    while kid_of(&after) == old_kid && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let r = s.api.refresh(&refresh).await;
        assert_eq!(r.status, 200, "{}", r.text);
        refresh = r.str("refresh_token");
        after = r.str("access_token");
    }
    assert_ne!(kid_of(&after), old_kid, "the new key signs");
    verifier
        .verify(&after)
        .await
        .expect("a token of the new key");
    verifier
        .verify(&before)
        .await
        .expect("a token of the previous key, after the rotation");
    assert_eq!(s.api.me(&before).await.status, 200);
    assert_eq!(s.api.me(&after).await.status, 200);

    // A verifier that fetches the JWKS only now holds both keys as well.
    let fresh = Verifier::builder(s.api.base.clone(), ENV)
        .leeway(Duration::ZERO)
        .build()
        .expect("verifier");
    fresh.verify(&before).await.expect("previous key published");
    fresh.verify(&after).await.expect("new key published");

    // The old token expires with its key's retirement period; a token forged with the
    // retired key's kid after that names a key the JWKS no longer has.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let late = Verifier::builder(s.api.base.clone(), ENV)
        .leeway(Duration::ZERO)
        .build()
        .expect("verifier");
    let jwks = s.api.get("/.well-known/jwks.json").await;
    let kids: Vec<&str> = jwks.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    assert_eq!(kids, vec![kid_of(&after).as_str()], "only the new key left");
    assert!(
        matches!(late.verify(&before).await, Err(VerifyError::UnknownKey)),
        "{:?}",
        late.verify(&before).await
    );
    s.stop().await;
}
