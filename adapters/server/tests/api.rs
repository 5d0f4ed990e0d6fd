//! The server's HTTP API, in-process on 127.0.0.1:0: every endpoint's success and
//! errors, refresh rotation and reuse detection, token forgery, WeChat (emulated and
//! real), the emulator's admin routes, import/export, and bad input.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cloudbase_auth_core::wire::{
    Credentials, ErrorBody, IntrospectReply, ProviderTokenReply, User, is_token_safe,
};
use cloudbase_auth_server::keys::KEY_FILE;
use cloudbase_auth_server::testing::{
    APPID, Api, ENV, Reply, TestServer, encode_jwt_part, jwt_parts, sign_jwt,
};
use cloudbase_auth_server::{WeChatApps, WeChatMode};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

// ----- helpers ----------------------------------------------------------------------

// ----- sign-in, user, credentials -----------------------------------------------------

#[tokio::test]
async fn anonymous_sign_in_and_user_me_speak_the_core_shapes() {
    let s = TestServer::start().await;
    let r = s.api.sign_in_anonymously().await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The core's own parser accepts the reply.
    let c = Credentials::parse(r.text.as_bytes()).expect("core parses credentials");
    assert_eq!(c.token_type, "Bearer");
    assert_eq!(c.expires_in, 7200);
    assert!(c.is_anonymous());
    assert_eq!(c.groups.len(), 1);
    assert_eq!(c.sub.len(), 19);
    let refresh = c.refresh_token.clone().expect("refresh token");
    assert_eq!(refresh.len(), 43);
    assert!(is_token_safe(&refresh));
    assert!(c.access_token.len() < 2048 && is_token_safe(&c.access_token));
    for forbidden in ["code", "error", "error_code"] {
        assert!(
            r.body.get(forbidden).is_none(),
            "success body carries `{forbidden}`"
        );
    }

    let (header, claims) = jwt_parts(&c.access_token);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(claims["sub"], c.sub.as_str());
    assert_eq!(claims["scope"], "anonymous");
    assert_eq!(claims["aud"], ENV);
    assert_eq!(claims["project_id"], ENV);
    assert_eq!(claims["user_id"], c.sub.as_str());
    assert_eq!(claims["groups"], json!(["anonymous"]));
    assert!(claims["meta"].is_null());
    let exp = claims["exp"].as_u64().unwrap();
    assert_eq!(exp - claims["iat"].as_u64().unwrap(), 7200);

    // The JWKS publishes the key that verifies the token.
    let jwks = s.api.get("/.well-known/jwks.json").await;
    assert_eq!(jwks.status, 200);
    let key = &jwks.body["keys"][0];
    assert_eq!(key["kid"], header["kid"]);
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(key["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
    let (input, sig) = c.access_token.rsplit_once('.').unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    public
        .verify_strict(input.as_bytes(), &sig)
        .expect("signature verifies with the JWKS key");

    let me = s.api.me(&c.access_token).await;
    assert_eq!(me.status, 200, "{}", me.text);
    let user = User::parse(me.text.as_bytes()).expect("core parses the user");
    assert_eq!(user.sub, c.sub);
    assert_eq!(user.name, "anonymous");
    assert_eq!(user.groups[0].id, "anonymous");
    assert!(user.providers.is_empty());
    assert!(me.body["created_at"].as_str().unwrap().ends_with('Z'));

    let health = s.api.get("/healthz").await;
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (200, Some("ok"))
    );
    s.stop().await;
}

#[tokio::test]
async fn sdk_style_requests_are_accepted() {
    let s = TestServer::start().await;
    // The SDK's automatic re-sign-in: Basic client auth, text/plain, its headers.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{ENV}:"));
    let r = s
        .api
        .send(
            s.api
                .http
                .post(format!(
                    "{}/auth/v1/signin/anonymously?client_id={ENV}",
                    s.api.base
                ))
                .header("authorization", format!("Basic {basic}"))
                .header("content-type", "text/plain;charset=UTF-8")
                .header("x-device-id", "d56fbb3d0123456789abcdef01234567")
                .header("x-request-id", "e7c275a20123456789abcdef01234567")
                .header("x-sdk-version", "@cloudbase/js-sdk/2.31.0")
                .header("accept-language", "zh-CN")
                .body("{}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Empty body counts as `{}`.
    let r = s
        .api
        .post(&format!("/auth/v1/signin/anonymously?client_id={ENV}"), "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    s.stop().await;
}

// ----- refresh rotation, grace window, reuse detection ---------------------------------

#[tokio::test]
async fn refresh_rotates_and_replays_the_same_successor_within_the_grace_window() {
    let s = TestServer::start().await;
    let first = s.api.sign_in_anonymously().await;
    let rt0 = first.str("refresh_token");
    let r1 = s.api.refresh(&rt0).await;
    assert_eq!(r1.status, 200, "{}", r1.text);
    let rt1 = r1.str("refresh_token");
    assert_ne!(rt0, rt1, "refresh rotates the refresh token");
    assert_ne!(first.str("access_token"), r1.str("access_token"));
    assert_eq!(r1.str("sub"), first.str("sub"));
    Credentials::parse(r1.text.as_bytes()).expect("core parses the refresh reply");

    // A second refresh with the rotated token (a second tab) gets the same successor.
    let again = s.api.refresh(&rt0).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.str("refresh_token"), rt1);

    // Eight refreshes of one token at the same moment: one successor for all.
    let replies = futures_join_all((0..8).map(|_| {
        let api = s.api.clone();
        let rt1 = rt1.clone();
        async move { api.refresh(&rt1).await }
    }))
    .await;
    let successors: std::collections::BTreeSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{}", r.text);
            r.str("refresh_token")
        })
        .collect();
    assert_eq!(
        successors.len(),
        1,
        "concurrent refreshes got different successors"
    );
    let rt2 = successors.into_iter().next().unwrap();
    assert_eq!(s.api.refresh(&rt2).await.status, 200);
    s.stop().await;
}

/// `join_all` without the futures crate: spawn each on the runtime.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_family() {
    let s = TestServer::start_with(|c| c.refresh_grace = Duration::ZERO).await;
    let first = s.api.sign_in_anonymously().await;
    let rt0 = first.str("refresh_token");
    let r1 = s.api.refresh(&rt0).await;
    let (rt1, at1) = (r1.str("refresh_token"), r1.str("access_token"));
    assert_eq!(s.api.me(&at1).await.status, 200);

    let reuse = s.api.refresh(&rt0).await;
    reuse.assert_error(400, "invalid_grant");
    // The whole family is gone: the current refresh and access tokens too.
    s.api.refresh(&rt1).await.assert_error(400, "invalid_grant");
    s.api.me(&at1).await.assert_error(401, "unauthenticated");
    s.api
        .me(&first.str("access_token"))
        .await
        .assert_error(401, "unauthenticated");
    // Another session of another user is untouched.
    let other = s.api.sign_in_anonymously().await;
    assert_eq!(s.api.refresh(&other.str("refresh_token")).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn refresh_errors_are_typed() {
    let s = TestServer::start().await;
    let rt = s.api.sign_in_anonymously().await.str("refresh_token");
    s.api
        .refresh("not-a-token")
        .await
        .assert_error(400, "invalid_grant");
    s.api
        .refresh(&"x".repeat(300))
        .await
        .assert_error(400, "invalid_grant");
    let wrong_grant = json!({"client_id": ENV, "grant_type": "password", "refresh_token": rt});
    s.api
        .post(
            &format!("/auth/v1/token?client_id={ENV}"),
            &wrong_grant.to_string(),
        )
        .await
        .assert_error(400, "invalid_argument");
    let mismatch =
        json!({"client_id": "other-env", "grant_type": "refresh_token", "refresh_token": rt});
    s.api
        .post(
            &format!("/auth/v1/token?client_id={ENV}"),
            &mismatch.to_string(),
        )
        .await
        .assert_error(400, "invalid_argument");
    // A refresh token presented in another env is refused (and not consumed), whether
    // that env exists or not.
    let other_env =
        json!({"client_id": "other-env", "grant_type": "refresh_token", "refresh_token": rt});
    s.api
        .post("/auth/v1/token?client_id=other-env", &other_env.to_string())
        .await
        .assert_error(400, "invalid_grant");
    let created = s
        .api
        .post("/auth/v1/signin/anonymously?client_id=other-env", "{}")
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    s.api
        .post("/auth/v1/token?client_id=other-env", &other_env.to_string())
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(s.api.refresh(&rt).await.status, 200);
    // No query client_id: the body's is used.
    let rt2 = s.api.sign_in_anonymously().await.str("refresh_token");
    let body = json!({"client_id": ENV, "client_secret": "", "grant_type": "refresh_token", "refresh_token": rt2});
    assert_eq!(
        s.api.post("/auth/v1/token", &body.to_string()).await.status,
        200
    );
    s.stop().await;
}

// ----- access token verification ---------------------------------------------------------

#[tokio::test]
async fn forged_expired_and_wrong_key_tokens_get_401() {
    let s = TestServer::start().await;
    let c = s.api.sign_in_anonymously().await;
    let token = c.str("access_token");
    let (header, claims) = jwt_parts(&token);
    let key = s.signing_key();
    // Sanity: our re-signing of the same header and claims is accepted.
    assert_eq!(
        s.api.me(&sign_jwt(&key, &header, &claims)).await.status,
        200
    );

    let mut expired = claims.clone();
    expired["exp"] = json!(claims["iat"].as_u64().unwrap() - 1);
    let mut wrong_kid = header.clone();
    wrong_kid["kid"] = json!("another-key");
    let mut no_kid = header.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    let mut alg_none = header.clone();
    alg_none["alg"] = json!("none");
    let mut alg_hs = header.clone();
    alg_hs["alg"] = json!("HS256");
    let mut elevated = claims.clone();
    elevated["scope"] = json!("user");
    let mut foreign_issuer = claims.clone();
    foreign_issuer["iss"] = json!("someone-else");
    let stranger = SigningKey::from_bytes(&[7u8; 32]);
    let unsigned = format!(
        "{}.{}.",
        encode_jwt_part(&alg_none),
        encode_jwt_part(&claims)
    );
    let tampered = {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let (h, _) = input.split_once('.').unwrap();
        format!("{h}.{}.{sig}", encode_jwt_part(&elevated))
    };
    let cases = [
        ("expired", sign_jwt(&key, &header, &expired)),
        ("wrong kid", sign_jwt(&key, &wrong_kid, &claims)),
        ("no kid", sign_jwt(&key, &no_kid, &claims)),
        ("alg none", unsigned),
        ("alg HS256", sign_jwt(&key, &alg_hs, &claims)),
        ("other key, our kid", sign_jwt(&stranger, &header, &claims)),
        ("tampered claims", tampered),
        ("foreign issuer", sign_jwt(&key, &header, &foreign_issuer)),
        ("garbage", "a.b.c".to_owned()),
        ("too long", "a".repeat(5000)),
    ];
    for (what, forged) in cases {
        let r = s.api.me(&forged).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        let e = ErrorBody::parse(r.text.as_bytes()).expect("core parses the error");
        assert_eq!(
            (e.error.as_str(), e.error_code),
            ("unauthenticated", 16),
            "{what}"
        );
    }
    s.stop().await;
}

// ----- token/introspect ----------------------------------------------------------------------

const INTROSPECT: &str = "/auth/v1/token/introspect";

/// `token/introspect` as CloudBase documents it: the live token's `token_type`,
/// `client_id`, `sub` and `scope` (plus `exp`/`iat`); `{}` for every other token.
#[tokio::test]
async fn introspect_answers_live_tokens_and_empty_for_the_rest() {
    const OTHER: &str = "other-env-9z";
    let s = TestServer::start().await;
    let c = s.api.sign_in_anonymously().await;
    let token = c.str("access_token");
    let (header, claims) = jwt_parts(&token);

    // Live, as the bearer (the docs page) and as `?token=` (HTTP-SKILL).
    let by_bearer = s.api.get_bearer(INTROSPECT, &token).await;
    let by_query = s.api.get(&format!("{INTROSPECT}?token={token}")).await;
    let by_client = s
        .api
        .get_bearer(&format!("{INTROSPECT}?client_id={ENV}"), &token)
        .await;
    for r in [&by_bearer, &by_query, &by_client] {
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.body,
            json!({"token_type": "Bearer", "client_id": ENV, "sub": c.str("sub"),
                   "scope": "anonymous", "exp": claims["exp"], "iat": claims["iat"]}),
        );
        let parsed = IntrospectReply::parse(r.text.as_bytes()).expect("core parses it");
        assert!(parsed.is_active() && parsed.is_anonymous());
    }

    // A WeChat user's token says so in its scope.
    let pt = s.api.wechat_provider_token("o-introspect").await;
    let w = s.api.sign_in_with_provider(&pt).await;
    let r = s.api.get_bearer(INTROSPECT, &w.str("access_token")).await;
    assert_eq!(
        (r.status, r.str("scope")),
        (200, "user".to_owned()),
        "{}",
        r.text
    );
    assert_eq!(r.str("sub"), w.str("sub"));

    let key = s.signing_key();
    let mut expired = claims.clone();
    expired["exp"] = json!(claims["iat"].as_u64().unwrap() - 1);
    let mut elevated = claims.clone();
    elevated["scope"] = json!("user");
    let tampered = {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let (h, _) = input.split_once('.').unwrap();
        format!("{h}.{}.{sig}", encode_jwt_part(&elevated))
    };
    let stranger = SigningKey::from_bytes(&[9u8; 32]);
    let other = s
        .api
        .post(
            &format!("/auth/v1/signin/anonymously?client_id={OTHER}"),
            "{}",
        )
        .await
        .str("access_token");
    let cases = [
        (
            "expired",
            INTROSPECT.to_owned(),
            sign_jwt(&key, &header, &expired),
        ),
        ("tampered", INTROSPECT.to_owned(), tampered),
        (
            "other key",
            INTROSPECT.to_owned(),
            sign_jwt(&stranger, &header, &claims),
        ),
        ("garbage", INTROSPECT.to_owned(), "a.b.c".to_owned()),
        (
            "refresh token",
            INTROSPECT.to_owned(),
            c.str("refresh_token"),
        ),
        (
            "asked about another env",
            format!("{INTROSPECT}?client_id={ENV}"),
            other.clone(),
        ),
    ];
    for (what, path, presented) in cases {
        let r = s.api.get_bearer(&path, &presented).await;
        assert_eq!(
            (r.status, r.body.clone()),
            (200, json!({})),
            "{what}: {}",
            r.text
        );
    }
    // The other env's token is live in its own env.
    let r = s.api.get_bearer(INTROSPECT, &other).await;
    assert_eq!(r.str("client_id"), OTHER, "{}", r.text);

    // Signed out: the token has not expired, yet it is no longer live.
    let r = s
        .api
        .post_bearer("/auth/v1/user/signout", &token, "{}")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.api.get_bearer(INTROSPECT, &token).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({})), "{}", r.text);

    // No token at all is a request error, not an inactive token.
    s.api
        .get(INTROSPECT)
        .await
        .assert_error(401, "unauthenticated");

    // A token of an env no longer served is inactive here.
    let s = s.restart_with(|c| c.envs = vec![ENV.to_owned()]).await;
    let r = s.api.get_bearer(INTROSPECT, &other).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({})), "{}", r.text);
    let r = s.api.get_bearer(INTROSPECT, &w.str("access_token")).await;
    assert_eq!(r.str("sub"), w.str("sub"), "survives a restart: {}", r.text);
    s.stop().await;
}

#[tokio::test]
async fn revoke_and_sign_out_end_the_session() {
    let s = TestServer::start().await;
    // revoke with the access token (the SDK's signOut()). Each token is used once
    // first, so the server has verified it before: ending the session still refuses it.
    let a = s.api.sign_in_anonymously().await;
    assert_eq!(s.api.me(&a.str("access_token")).await.status, 200);
    let r = s
        .api
        .post(
            &format!("/auth/v1/revoke?client_id={ENV}"),
            &json!({"token": a.str("access_token")}).to_string(),
        )
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!({})));
    s.api
        .me(&a.str("access_token"))
        .await
        .assert_error(401, "unauthenticated");
    s.api
        .refresh(&a.str("refresh_token"))
        .await
        .assert_error(400, "invalid_grant");

    // revoke with the refresh token.
    let b = s.api.sign_in_anonymously().await;
    assert_eq!(s.api.me(&b.str("access_token")).await.status, 200);
    let r = s
        .api
        .post(
            &format!("/auth/v1/revoke?client_id={ENV}"),
            &json!({"token": b.str("refresh_token")}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200);
    s.api
        .me(&b.str("access_token"))
        .await
        .assert_error(401, "unauthenticated");

    // Unknown tokens are fine (RFC 7009); a missing token field is not.
    let r = s
        .api
        .post(
            &format!("/auth/v1/revoke?client_id={ENV}"),
            r#"{"token":"nothing"}"#,
        )
        .await;
    assert_eq!(r.status, 200);
    s.api
        .post(&format!("/auth/v1/revoke?client_id={ENV}"), "{}")
        .await
        .assert_error(400, "invalid_argument");

    // user/signout with the bearer token.
    let c = s.api.sign_in_anonymously().await;
    let r = s
        .api
        .post_bearer(
            "/auth/v1/user/signout",
            &c.str("access_token"),
            r#"{"state":"x"}"#,
        )
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!({})));
    s.api
        .me(&c.str("access_token"))
        .await
        .assert_error(401, "unauthenticated");
    s.api
        .refresh(&c.str("refresh_token"))
        .await
        .assert_error(400, "invalid_grant");
    s.api
        .post_bearer("/auth/v1/user/signout", &c.str("access_token"), "{}")
        .await
        .assert_error(401, "unauthenticated");
    s.api
        .post("/auth/v1/user/signout", "{}")
        .await
        .assert_error(401, "unauthenticated");
    s.stop().await;
}

// ----- WeChat -----------------------------------------------------------------------------

#[tokio::test]
async fn wechat_sign_in_finds_or_creates_the_user() {
    let s = TestServer::start().await;
    let (code, openid) = s.api.mint_code(APPID, None).await;
    assert_eq!(openid.len(), 28);
    let pt = s.api.provider_token(APPID, &code).await;
    assert_eq!(pt.status, 200, "{}", pt.text);
    let reply = ProviderTokenReply::parse(pt.text.as_bytes()).expect("core parses it");
    assert!(reply.expires_in > 0 && reply.provider_token.len() <= 512);
    // The code was single use.
    s.api
        .provider_token(APPID, &code)
        .await
        .assert_error(400, "invalid_grant");

    let signed = s.api.sign_in_with_provider(&reply.provider_token).await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    assert_eq!(signed.str("scope"), "user");
    let uid = signed.str("sub");
    let (_, claims) = jwt_parts(&signed.str("access_token"));
    assert_eq!(claims["meta"]["wxOpenId"], openid.as_str());
    assert_eq!(claims["provider"], APPID);
    // The provider token was single use too.
    s.api
        .sign_in_with_provider(&reply.provider_token)
        .await
        .assert_error(400, "invalid_grant");

    let me = s.api.me(&signed.str("access_token")).await;
    let user = User::parse(me.text.as_bytes()).unwrap();
    assert_eq!(user.openid_for(APPID), Some(openid.as_str()));
    assert_eq!(me.body["providers"][0]["id"], APPID);
    assert!(me.body["providers"][0]["name"].is_string());
    assert_ne!(user.name, "anonymous");

    // Same openid again: same user. signin/wechat/noauth takes the provider token too.
    let pt2 = s.api.wechat_provider_token(&openid).await;
    let again = s
        .api
        .post(
            &format!("/auth/v1/signin/wechat/noauth?client_id={ENV}"),
            &json!({"provider_token": pt2}).to_string(),
        )
        .await;
    assert_eq!((again.status, again.str("sub")), (200, uid.clone()));
    let noauth = s
        .api
        .post(
            &format!("/auth/v1/signin/wechat/noauth?client_id={ENV}"),
            "{}",
        )
        .await;
    noauth.assert_error(400, "invalid_argument");
    assert!(noauth.str("error_description").contains("provider_token"));

    // A provider token of another env does not sign in here.
    let pt3 = s.api.wechat_provider_token(&openid).await;
    s.api
        .post(
            "/auth/v1/signin/with/provider?client_id=other-env",
            &json!({"provider_token": pt3}).to_string(),
        )
        .await
        .assert_error(400, "invalid_grant");

    // Provider token request errors.
    let (code, _) = s.api.mint_code(APPID, None).await;
    let body = json!({"provider_id": APPID, "provider_code": code,
                      "provider_params": {"provider_code_type": "phone", "appid": APPID}});
    s.api
        .post(
            &format!("/auth/v1/provider/token?client_id={ENV}"),
            &body.to_string(),
        )
        .await
        .assert_error(400, "invalid_argument");
    let body = json!({"provider_id": "wxother", "provider_code": code,
                      "provider_params": {"provider_code_type": "open_id", "appid": APPID}});
    s.api
        .post(
            &format!("/auth/v1/provider/token?client_id={ENV}"),
            &body.to_string(),
        )
        .await
        .assert_error(400, "invalid_argument");
    s.api
        .provider_token("wxother", &code)
        .await
        .assert_error(400, "invalid_grant");

    // Injected WeChat faults, and a unionid that reaches the claims.
    let mint = |body: Value| {
        let api = s.api.clone();
        async move {
            api.post("/emulator/v1/wechat/login-code", &body.to_string())
                .await
                .str("code")
        }
    };
    let busy = mint(json!({"appid": APPID, "fault": "busy"})).await;
    s.api
        .provider_token(APPID, &busy)
        .await
        .assert_error(503, "unavailable");
    let blocked = mint(json!({"appid": APPID, "fault": "blocked"})).await;
    let wx = s
        .api
        .get(&format!(
            "/sns/jscode2session?appid={APPID}&secret=any&js_code={blocked}&grant_type=authorization_code"
        ))
        .await;
    assert_eq!(wx.body["errcode"], 40226, "{}", wx.text);
    let blocked = mint(json!({"appid": APPID, "fault": "blocked"})).await;
    s.api
        .provider_token(APPID, &blocked)
        .await
        .assert_error(400, "invalid_grant");
    let union =
        mint(json!({"appid": APPID, "openid": "o-with-union", "unionid": "u-union-1"})).await;
    let pt = s
        .api
        .provider_token(APPID, &union)
        .await
        .str("provider_token");
    let signed = s.api.sign_in_with_provider(&pt).await;
    let (_, claims) = jwt_parts(&signed.str("access_token"));
    assert_eq!(claims["meta"]["wxUnionId"], "u-union-1");
    s.stop().await;
}

#[tokio::test]
async fn bind_keeps_the_uid_and_refuses_an_openid_bound_elsewhere() {
    let s = TestServer::start().await;
    let anon = s.api.sign_in_anonymously().await;
    let (uid, at) = (anon.str("sub"), anon.str("access_token"));
    let pt = s.api.wechat_provider_token("o-bind-test-openid-1").await;
    let r = s
        .api
        .post_bearer(
            "/auth/v1/user/provider/bind",
            &at,
            &json!({"provider_token": pt}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let me = s.api.me(&at).await;
    assert_eq!(me.str("sub"), uid);
    assert_eq!(
        me.body["providers"][0]["provider_user_id"],
        "o-bind-test-openid-1"
    );
    // No longer anonymous: the next refresh says so.
    let refreshed = s.api.refresh(&anon.str("refresh_token")).await;
    assert_eq!(
        (refreshed.str("scope"), refreshed.str("sub")),
        ("user".to_owned(), uid.clone())
    );
    let (_, claims) = jwt_parts(&refreshed.str("access_token"));
    assert_eq!(claims["meta"]["wxOpenId"], "o-bind-test-openid-1");
    // Signing in with that openid finds the same uid.
    let pt = s.api.wechat_provider_token("o-bind-test-openid-1").await;
    assert_eq!(s.api.sign_in_with_provider(&pt).await.str("sub"), uid);

    // Another user cannot take that openid.
    let other = s.api.sign_in_anonymously().await;
    let pt = s.api.wechat_provider_token("o-bind-test-openid-1").await;
    let r = s
        .api
        .post_bearer(
            "/auth/v1/user/provider/bind",
            &other.str("access_token"),
            &json!({"provider_token": pt}).to_string(),
        )
        .await;
    r.assert_error(409, "already_exists");
    // A second openid of the same Mini Program for the first user is refused too.
    let pt = s.api.wechat_provider_token("o-bind-test-openid-2").await;
    s.api
        .post_bearer(
            "/auth/v1/user/provider/bind",
            &at,
            &json!({"provider_token": pt}).to_string(),
        )
        .await
        .assert_error(400, "failed_precondition");
    // Bad provider token, missing bearer.
    s.api
        .post_bearer(
            "/auth/v1/user/provider/bind",
            &at,
            r#"{"provider_token":"nope"}"#,
        )
        .await
        .assert_error(400, "invalid_grant");
    s.api
        .post(
            "/auth/v1/user/provider/bind",
            r#"{"provider_token":"nope"}"#,
        )
        .await
        .assert_error(401, "unauthenticated");
    s.stop().await;
}

async fn jscode2session(api: &Api, query: &str) -> Value {
    let r = api.get(&format!("/sns/jscode2session?{query}")).await;
    assert_eq!(r.status, 200, "WeChat answers errors with 200: {}", r.text);
    r.body
}

#[tokio::test]
async fn jscode2session_speaks_wechat_errors() {
    let s = TestServer::start_with(|c| {
        c.wechat.apps = WeChatApps::parse_list(&format!("{APPID}:app-secret-1")).unwrap();
        c.wechat.emulator_quota_per_minute = 6;
        c.wechat.emulator_code_ttl = Duration::from_millis(600);
    })
    .await;
    let q = |appid: &str, secret: &str, code: &str| {
        format!("appid={appid}&secret={secret}&js_code={code}&grant_type=authorization_code")
    };
    let errcode = |v: &Value| v["errcode"].as_i64().unwrap_or(0);
    let (code, openid) = s.api.mint_code(APPID, Some("o-jscode-test")).await;
    assert_eq!(
        errcode(&jscode2session(&s.api, "secret=a&js_code=b&grant_type=authorization_code").await),
        41002
    );
    assert_eq!(
        errcode(
            &jscode2session(
                &s.api,
                &format!("appid={APPID}&js_code=b&grant_type=authorization_code")
            )
            .await
        ),
        41004
    );
    assert_eq!(
        errcode(
            &jscode2session(
                &s.api,
                &format!("appid={APPID}&secret=a&grant_type=authorization_code")
            )
            .await
        ),
        41008
    );
    assert_eq!(
        errcode(
            &jscode2session(
                &s.api,
                &format!("appid={APPID}&secret=a&js_code=b&grant_type=x")
            )
            .await
        ),
        40002
    );
    assert_eq!(
        errcode(&jscode2session(&s.api, &q("wxunknown", "app-secret-1", &code)).await),
        40013
    );
    assert_eq!(
        errcode(&jscode2session(&s.api, &q(APPID, "wrong", &code)).await),
        40125
    );
    // Charged calls from here on (quota 6 per minute).
    assert_eq!(
        errcode(&jscode2session(&s.api, &q(APPID, "app-secret-1", "bogus")).await),
        40029
    ); // 1
    let ok = jscode2session(&s.api, &q(APPID, "app-secret-1", &code)).await; // 2
    assert_eq!(ok["openid"], openid.as_str());
    assert_eq!(ok["session_key"].as_str().map(str::len), Some(24));
    assert!(ok.get("errcode").is_none());
    assert_eq!(
        errcode(&jscode2session(&s.api, &q(APPID, "app-secret-1", &code)).await),
        40163
    ); // 3
    let (late, _) = s.api.mint_code(APPID, None).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        errcode(&jscode2session(&s.api, &q(APPID, "app-secret-1", &late)).await),
        40029
    ); // 4
    // Through provider/token: an expired code is invalid_grant, an unknown app is refused.
    s.api
        .provider_token(APPID, &late)
        .await
        .assert_error(400, "invalid_grant"); // 5
    s.api
        .provider_token("wxunknown", &late)
        .await
        .assert_error(400, "provider_not_enabled");
    let (fresh, _) = s.api.mint_code(APPID, None).await;
    assert_eq!(s.api.provider_token(APPID, &fresh).await.status, 200); // 6
    let (fresh, _) = s.api.mint_code(APPID, None).await;
    assert_eq!(
        errcode(&jscode2session(&s.api, &q(APPID, "app-secret-1", &fresh)).await),
        45011
    );
    let quota = s.api.provider_token(APPID, &fresh).await;
    quota.assert_error(429, "resource_exhausted");
    // WeChat's advice is "retry next minute": its quota window.
    assert_eq!(retry_after(&quota), 60);
    // GET only.
    let post = s.api.post("/sns/jscode2session", "").await;
    assert_eq!(errcode(&post.body), 43001);
    // Minting for an unknown app or with a bad openid.
    let r = s
        .api
        .post(
            "/emulator/v1/wechat/login-code",
            &json!({"appid": "wxunknown"}).to_string(),
        )
        .await;
    r.assert_error(400, "provider_not_enabled");
    let r = s
        .api
        .post(
            "/emulator/v1/wechat/login-code",
            &json!({"appid": APPID, "openid": "has space"}).to_string(),
        )
        .await;
    r.assert_error(400, "invalid_argument");
    s.stop().await;
}

#[tokio::test]
async fn real_mode_calls_wechat_and_mounts_no_emulator_route() {
    let apps = format!("{APPID}:real-mode-secret");
    let wechat =
        TestServer::start_with(|c| c.wechat.apps = WeChatApps::parse_list(&apps).unwrap()).await;
    let real = TestServer::start_with(|c| {
        c.wechat.mode = WeChatMode::Real;
        c.wechat.base_url = wechat.api.base.clone();
        c.wechat.apps = WeChatApps::parse_list(&apps).unwrap();
    })
    .await;
    assert!(real.server.as_ref().unwrap().admin_token().is_none());
    for (method, path) in [
        ("POST", "/emulator/v1/wechat/login-code"),
        (
            "GET",
            "/sns/jscode2session?appid=a&secret=b&js_code=c&grant_type=authorization_code",
        ),
        ("GET", "/emulator/v1/users"),
        ("GET", "/emulator/v1/export"),
        ("DELETE", "/emulator/v1/data"),
    ] {
        let req = real
            .api
            .http
            .request(method.parse().unwrap(), format!("{}{path}", real.api.base));
        real.api.send(req).await.assert_error(404, "not_found");
    }
    // The code comes from the emulated server (our stand-in WeChat).
    let (code, openid) = wechat.api.mint_code(APPID, Some("o-real-mode-user")).await;
    let pt = real.api.provider_token(APPID, &code).await;
    assert_eq!(pt.status, 200, "{}", pt.text);
    let signed = real
        .api
        .sign_in_with_provider(&pt.str("provider_token"))
        .await;
    assert_eq!(signed.status, 200);
    let me = real.api.me(&signed.str("access_token")).await;
    assert_eq!(me.body["providers"][0]["provider_user_id"], openid.as_str());
    // WeChat said the code was used: invalid_grant. An appid without a secret here:
    // provider_not_enabled, without calling WeChat.
    real.api
        .provider_token(APPID, &code)
        .await
        .assert_error(400, "invalid_grant");
    real.api
        .provider_token("wxnotconfigured", &code)
        .await
        .assert_error(400, "provider_not_enabled");

    // A server with the wrong secret: WeChat refuses the server, not the client.
    let misconfigured = TestServer::start_with(|c| {
        c.wechat.mode = WeChatMode::Real;
        c.wechat.base_url = wechat.api.base.clone();
        c.wechat.apps = WeChatApps::parse_list(&format!("{APPID}:wrong-secret")).unwrap();
    })
    .await;
    let (code, _) = wechat.api.mint_code(APPID, None).await;
    misconfigured
        .api
        .provider_token(APPID, &code)
        .await
        .assert_error(503, "unavailable");
    // WeChat unreachable.
    let unreachable = TestServer::start_with(|c| {
        c.wechat.mode = WeChatMode::Real;
        c.wechat.base_url = "http://127.0.0.1:9".to_owned();
        c.wechat.apps = WeChatApps::parse_list(&apps).unwrap();
    })
    .await;
    unreachable
        .api
        .provider_token(APPID, "some-code")
        .await
        .assert_error(503, "unavailable");
    for s in [misconfigured, unreachable, real, wechat] {
        s.stop().await;
    }
}

// ----- emulator admin, import/export ----------------------------------------------------------

#[tokio::test]
async fn admin_routes_need_the_admin_token() {
    let s = TestServer::start().await;
    let admin = s.admin_token();
    let anon = s.api.sign_in_anonymously().await;
    let pt = s.api.wechat_provider_token("o-admin-test").await;
    let wx = s.api.sign_in_with_provider(&pt).await;

    for path in ["/emulator/v1/users", "/emulator/v1/export"] {
        s.api.get(path).await.assert_error(401, "unauthenticated");
        s.api
            .get_bearer(path, "wrong-token")
            .await
            .assert_error(401, "unauthenticated");
    }
    // A user's access token is not an admin token.
    s.api
        .get_bearer("/emulator/v1/users", &anon.str("access_token"))
        .await
        .assert_error(401, "unauthenticated");

    let users = s.api.get_bearer("/emulator/v1/users", &admin).await;
    assert_eq!(users.status, 200, "{}", users.text);
    let list = users.body["users"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .any(|u| u["uid"] == anon.str("sub").as_str() && u["anonymous"] == true)
    );
    assert!(
        list.iter().any(|u| u["uid"] == wx.str("sub").as_str()
            && u["identities"][0]["openid"] == "o-admin-test")
    );
    let filtered = s
        .api
        .get_bearer("/emulator/v1/users?env=nope", &admin)
        .await;
    assert_eq!(filtered.body["users"], json!([]));
    assert!(!users.text.contains("refresh"), "no secrets in the listing");

    let reset = s
        .api
        .send(
            s.api
                .http
                .delete(format!("{}/emulator/v1/data", s.api.base))
                .header("authorization", "Bearer wrong"),
        )
        .await;
    reset.assert_error(401, "unauthenticated");
    let reset = s
        .api
        .send(
            s.api
                .http
                .delete(format!("{}/emulator/v1/data", s.api.base))
                .header("authorization", format!("Bearer {admin}")),
        )
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    s.api
        .me(&anon.str("access_token"))
        .await
        .assert_error(401, "unauthenticated");
    s.api
        .refresh(&wx.str("refresh_token"))
        .await
        .assert_error(400, "invalid_grant");
    let users = s.api.get_bearer("/emulator/v1/users", &admin).await;
    assert_eq!(users.body["users"], json!([]));
    s.stop().await;
}

#[tokio::test]
async fn import_and_export_round_trip() {
    let first = TestServer::start().await;
    let anon = first.api.sign_in_anonymously().await;
    let pt = first.api.wechat_provider_token("o-export-user").await;
    let wx = first.api.sign_in_with_provider(&pt).await;
    let doc = first
        .api
        .get_bearer("/emulator/v1/export", &first.admin_token())
        .await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["format"], "cloudbase-auth-users");
    let exported = tempfile::tempdir().unwrap();
    let file = exported.path().join("users.json");
    std::fs::write(&file, &doc.text).unwrap();
    first.stop().await;

    let exit_file = exported.path().join("on-exit.json");
    let second = TestServer::start_with(|c| {
        c.import = Some(file.clone());
        c.export_on_exit = Some(exit_file.clone());
    })
    .await;
    let listed = second
        .api
        .get_bearer("/emulator/v1/users", &second.admin_token())
        .await;
    assert_eq!(listed.body["users"], doc.body["users"]);
    // The imported WeChat user signs in again with the same uid.
    let pt = second.api.wechat_provider_token("o-export-user").await;
    assert_eq!(
        second.api.sign_in_with_provider(&pt).await.str("sub"),
        wx.str("sub")
    );
    let extra = second.api.sign_in_anonymously().await;
    second.stop().await;

    let on_exit: Value =
        serde_json::from_str(&std::fs::read_to_string(&exit_file).unwrap()).unwrap();
    let uids: Vec<&str> = on_exit["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids.len(), 3);
    for uid in [anon.str("sub"), wx.str("sub"), extra.str("sub")] {
        assert!(
            uids.contains(&uid.as_str()),
            "{uid} missing from the export"
        );
    }

    // A broken import file stops the start with a clear error, and imports nothing.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"format":"cloudbase-auth-users","version":1,"users":[{"uid":"a b","env":"e","anonymous":true,"created_at":0,"updated_at":0}]}"#).unwrap();
    let mut config = TestServer::config(dir.path());
    config.import = Some(bad);
    let err = cloudbase_auth_server::Server::start(config)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("uid"), "{err}");
}

/// An import is checked as the API checks the same users: a duplicated uid, two openids
/// of one Mini Program on a user (in the file, or added to a stored user), an openid on
/// two users (in the file, or taken in the store), an anonymous user with an identity,
/// a malformed uid. Every refused user is listed, and nothing is written.
#[tokio::test]
async fn import_refuses_what_the_api_would_and_lists_every_problem() {
    let s = TestServer::start().await;
    let pt = s.api.wechat_provider_token("o-taken").await;
    let owner = s.api.sign_in_with_provider(&pt).await.str("sub");
    let listed_before = s
        .api
        .get_bearer("/emulator/v1/users", &s.admin_token())
        .await
        .body["users"]
        .clone();
    let TestServer { server, dir, .. } = s;
    server
        .expect("running")
        .shutdown()
        .await
        .expect("clean shutdown");

    let user = |uid: &str, anonymous: bool, openids: &[&str]| {
        let identities: Vec<Value> = openids
            .iter()
            .map(|o| json!({"appid": APPID, "openid": o}))
            .collect();
        json!({"uid": uid, "env": ENV, "anonymous": anonymous, "created_at": 1,
               "updated_at": 1, "identities": identities})
    };
    let doc = json!({"format": "cloudbase-auth-users", "version": 1, "users": [
        user("fine-1", true, &[]),
        user("dup", true, &[]),
        user("dup", true, &[]),
        user("two-openids", false, &["o-a", "o-b"]),
        user("shares-1", false, &["o-shared"]),
        user("shares-2", false, &["o-shared"]),
        user("claims-taken", false, &["o-taken"]),
        user("bad uid", true, &[]),
        user(&owner, false, &["o-taken", "o-another"]),
        user("anonymous-wechat", true, &["o-anon"]),
    ]});
    let file = dir.path().join("users.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let mut config = TestServer::config(dir.path());
    config.import = Some(file.clone());
    let err = cloudbase_auth_server::Server::start(config)
        .await
        .expect_err("the import is refused")
        .to_string();
    for expected in [
        "7 of its 10 users refused, so nothing was imported (7 problems)",
        "user #3 (dup): the same uid as user #2",
        "user #4 (two-openids): two openids of Mini Program",
        "user #6 (shares-2): openid o-shared of Mini Program",
        "is given to user #5 too",
        &format!(
            "user #7 (claims-taken): openid o-taken of Mini Program {APPID} belongs to user {owner}"
        ),
        "user #8 (bad uid): uid must be",
        &format!("user #9 ({owner}): two openids of Mini Program {APPID} (o-taken and o-another)"),
        "user #10 (anonymous-wechat): an anonymous user has no WeChat identity",
    ] {
        assert!(err.contains(expected), "`{expected}` missing from:\n{err}");
    }
    for accepted in [1, 2, 5] {
        let line = format!("\n  user #{accepted} (");
        assert!(!err.contains(&line), "user #{accepted} was fine:\n{err}");
    }

    // Nothing was written: the store is as it was.
    let s = TestServer::start_in(dir, |_| {}).await;
    let listed = s
        .api
        .get_bearer("/emulator/v1/users", &s.admin_token())
        .await;
    assert_eq!(listed.body["users"], listed_before);
    s.stop().await;
}

// ----- bad input --------------------------------------------------------------------------------

#[tokio::test]
async fn bad_input_gets_a_clear_answer_never_a_500() {
    let s = TestServer::start_with(|c| {
        c.request_timeout = Duration::from_secs(1);
        c.envs = vec![ENV.to_owned()];
    })
    .await;
    let signin = format!("/auth/v1/signin/anonymously?client_id={ENV}");
    // Too large, with and without a content length.
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(70 * 1024));
    s.api
        .post(&signin, &big)
        .await
        .assert_error(413, "invalid_argument");
    let addr = s.api.base.trim_start_matches("http://").to_owned();
    let streamed = raw_http(
        &addr,
        &format!("POST {signin} HTTP/1.1\r\nhost: {addr}\r\ntransfer-encoding: chunked\r\n\r\n"),
        &(0..80)
            .map(|_| format!("400\r\n{}\r\n", " ".repeat(1024)))
            .collect::<String>(),
    )
    .await;
    assert!(streamed.starts_with("HTTP/1.1 413"), "{streamed}");
    // Malformed JSON, wrong types, not an object.
    s.api
        .post(&signin, "{")
        .await
        .assert_error(400, "invalid_argument");
    s.api
        .post(&signin, r#"{"provider_token": 5}"#)
        .await
        .assert_error(400, "invalid_argument");
    s.api
        .post(
            &format!("/auth/v1/token?client_id={ENV}"),
            r#"{"refresh_token": 5}"#,
        )
        .await
        .assert_error(400, "invalid_argument");
    s.api
        .post(&format!("/auth/v1/provider/token?client_id={ENV}"), "[1,2]")
        .await
        .assert_error(400, "invalid_argument");
    s.api
        .post_bearer("/auth/v1/user/signout", "x", "\"text\"")
        .await
        .assert_error(401, "unauthenticated");
    // client_id: missing, malformed, not served.
    s.api
        .post("/auth/v1/signin/anonymously", "{}")
        .await
        .assert_error(400, "invalid_argument");
    s.api
        .post("/auth/v1/signin/anonymously?client_id=bad%20env", "{}")
        .await
        .assert_error(400, "invalid_argument");
    s.api
        .post("/auth/v1/signin/anonymously?client_id=other-env", "{}")
        .await
        .assert_error(400, "invalid_argument");
    // Unknown paths and methods.
    s.api
        .get("/auth/v1/nothing")
        .await
        .assert_error(404, "not_found");
    s.api.get("/").await.assert_error(404, "not_found");
    let wrong_method = s.api.get(&signin).await;
    assert_eq!(wrong_method.status, 405, "{}", wrong_method.text);
    assert!(wrong_method.body["error_code"].as_i64().is_some());
    // Authorization: missing, garbled, not bearer, not a JWT.
    for auth in [
        None,
        Some("Bearer"),
        Some("Basic dGVzdDo="),
        Some("Bearer not-a-jwt"),
        Some("Bearer a.b.c"),
    ] {
        let mut req = s.api.http.get(format!("{}/auth/v1/user/me", s.api.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        s.api.send(req).await.assert_error(401, "unauthenticated");
    }
    let bytes = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
    let req = s
        .api
        .http
        .get(format!("{}/auth/v1/user/me", s.api.base))
        .header("authorization", bytes);
    s.api.send(req).await.assert_error(401, "unauthenticated");

    // A body that never arrives: 408 after the request timeout, not a hang.
    let head = format!("POST {signin} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 100\r\n\r\n{{");
    let text = raw_http(&addr, &head, "").await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("deadline_exceeded"), "{text}");
    // A request head that never ends: the connection is closed, not held forever.
    let started = std::time::Instant::now();
    let partial = format!("POST {signin} HTTP/1.1\r\nhost: {addr}\r\n");
    assert_eq!(
        raw_http(&addr, &partial, "").await,
        "",
        "closed without a reply"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    s.stop().await;
}

/// Sends `bytes` on a fresh connection and returns everything the server sends until it
/// closes the connection.
async fn raw_until_closed(addr: &str, bytes: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before everything is written.
    let _ = stream.write_all(bytes).await;
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply))
        .await
        .expect("the server closed the connection within 10 s")
        .expect("read");
    String::from_utf8_lossy(&reply).into_owned()
}

/// The status and CloudBase error body of a raw HTTP/1.1 reply (the last one of
/// `replies` when there are several), checking its headers on the way.
fn last_error_reply(replies: &str) -> (u16, ErrorBody) {
    let at = replies.rfind("HTTP/1.1 ").expect("a reply");
    let (head, body) = replies[at..].split_once("\r\n\r\n").expect("a whole head");
    let status: u16 = head[9..12].parse().expect("a status");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}\n{body}"
    );
    let error = ErrorBody::parse(body.as_bytes())
        .unwrap_or_else(|e| panic!("not an error body ({e:?}): {body}"));
    (status, error)
}

/// What hyper's parser refuses (a malformed or oversized request head) gets the
/// CloudBase error body like every other error, on a first request and after others
/// on the same connection; a request with a chunked body ends its connection.
#[tokio::test]
async fn protocol_errors_get_a_cloudbase_error_body() {
    let s = TestServer::start().await;
    let addr = s.api.base.trim_start_matches("http://").to_owned();
    let many_fields: String = (0..150).map(|i| format!("x-field-{i}: v\r\n")).collect();
    let huge_field = format!("x-big: {}\r\n", "v".repeat(40 * 1024));
    let cases: Vec<(String, u16)> = vec![
        (
            "GET /healthz HTTP/1.1\r\nhost: x\r\nbad header: 1\r\n\r\n".into(),
            400,
        ),
        ("GET /healthz HTTP/1.1\r\nx: \u{1}\r\n\r\n".into(), 400),
        ("G@T /healthz HTTP/1.1\r\n\r\n".into(), 400),
        ("GET /healthz HTTP/7.0\r\n\r\n".into(), 400),
        ("GET /he lthz HTTP/1.1\r\n\r\n".into(), 400),
        (
            "POST /healthz HTTP/1.1\r\ncontent-length: 2, 3\r\n\r\n{}".into(),
            400,
        ),
        (
            "POST /healthz HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n".into(),
            400,
        ),
        (format!("GET /healthz HTTP/1.1\r\n{many_fields}\r\n"), 431),
        (format!("GET /healthz HTTP/1.1\r\n{huge_field}\r\n"), 431),
    ];
    for (head, status) in &cases {
        let replies = raw_until_closed(&addr, head.as_bytes()).await;
        assert!(replies.starts_with("HTTP/1.1 "), "{head:?}: {replies:?}");
        let (got, error) = last_error_reply(&replies);
        assert_eq!(got, *status, "{head:?}: {replies}");
        assert_eq!(error.error.as_str(), "invalid_argument", "{replies}");
        assert_eq!(error.error_code, 3);
        assert!(!error.error_description.is_empty());
    }

    // After good requests on a keep-alive connection, pipelined or not: their replies
    // first, then the error reply.
    let good = format!(
        "POST /auth/v1/signin/anonymously?client_id={ENV} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{{}}"
    );
    let bad = "GET /healthz HTTP/1.1\r\nbad header: 1\r\n\r\n";
    let replies = raw_until_closed(&addr, format!("{good}{good}{bad}").as_bytes()).await;
    assert_eq!(replies.matches("HTTP/1.1 200 OK").count(), 2, "{replies}");
    assert_eq!(last_error_reply(&replies).0, 400, "{replies}");
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(good.as_bytes()).await.unwrap();
    let mut first = vec![0u8; 4096];
    let n = stream.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    stream.write_all(bad.as_bytes()).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last_error_reply(&String::from_utf8_lossy(&rest)).0, 400);

    // A chunked request is served, and is the last of its connection.
    let chunked = format!(
        "POST /auth/v1/signin/anonymously?client_id={ENV} HTTP/1.1\r\nhost: x\r\n\
         transfer-encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n{good}"
    );
    let replies = raw_until_closed(&addr, chunked.as_bytes()).await;
    assert_eq!(replies.matches("HTTP/1.1 ").count(), 1, "{replies}");
    assert!(replies.starts_with("HTTP/1.1 200"), "{replies}");
    assert!(
        replies.to_ascii_lowercase().contains("connection: close"),
        "{replies}"
    );
    // The server still serves everyone else.
    assert_eq!(s.api.get("/healthz").await.status, 200);
    s.stop().await;
}

/// Sends raw bytes on a fresh connection and returns what came back first.
async fn raw_http(addr: &str, head: &str, body: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (and close) before the whole body is written.
    let _ = stream.write_all(body.as_bytes()).await;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answered before 5 s")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn sign_in_endpoints_are_rate_limited() {
    let s = TestServer::start_with(|c| {
        c.rate_limits.per_device_per_minute = 3;
        c.rate_limits.per_ip_per_minute = 6;
    })
    .await;
    let signin = |device: &'static str| {
        let api = s.api.clone();
        async move {
            api.send(
                api.http
                    .post(format!(
                        "{}/auth/v1/signin/anonymously?client_id={ENV}",
                        api.base
                    ))
                    .header("x-device-id", device)
                    .body("{}"),
            )
            .await
        }
    };
    let first = signin("device-aaaaaaaaaaaaaaaa").await;
    assert_eq!(first.status, 200);
    assert!(first.headers.get("retry-after").is_none());
    for _ in 0..2 {
        assert_eq!(signin("device-aaaaaaaaaaaaaaaa").await.status, 200);
    }
    let refused = signin("device-aaaaaaaaaaaaaaaa").await;
    refused.assert_error(429, "resource_exhausted");
    // 3 per minute: the device's next token comes within 20 s.
    assert!((1..=20).contains(&retry_after(&refused)), "{refused:?}");
    // Another device from the same IP still gets in, until the IP's 6 per minute
    // (the refused request counted against the IP too).
    assert_eq!(signin("device-bbbbbbbbbbbbbbbb").await.status, 200);
    assert_eq!(signin("device-bbbbbbbbbbbbbbbb").await.status, 200);
    let refused = s
        .api
        .post(
            &format!("/auth/v1/signin/anonymously?client_id={ENV}"),
            "{}",
        )
        .await;
    refused.assert_error(429, "resource_exhausted");
    // 6 per minute: the IP's next token comes within 10 s.
    assert!((1..=10).contains(&retry_after(&refused)), "{refused:?}");
    // Refresh and user/me are not sign-in endpoints.
    let refreshed = s.api.refresh(&first.str("refresh_token")).await;
    assert_eq!(refreshed.status, 200);
    assert_eq!(s.api.me(&refreshed.str("access_token")).await.status, 200);
    s.stop().await;
}

/// The `Retry-After` of a 429: whole seconds.
fn retry_after(reply: &Reply) -> u64 {
    reply
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on {reply:?}"))
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("whole seconds")
}

/// A refused sign-in says when the limiter admits the client again, and it does.
#[tokio::test]
async fn retry_after_says_when_the_limiter_admits_again() {
    let s = TestServer::start_with(|c| {
        // One token every 2 s, 30 at once.
        c.rate_limits.per_ip_per_minute = 30;
        c.rate_limits.per_device_per_minute = 0;
    })
    .await;
    let mut refused = None;
    for _ in 0..40 {
        let r = s.api.sign_in_anonymously().await;
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let refused = refused.expect("the 31st sign-in within a few seconds is refused");
    let wait = retry_after(&refused);
    assert!((1..=2).contains(&wait), "{refused:?}");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let admitted = s.api.sign_in_anonymously().await;
    assert_eq!(admitted.status, 200, "{}", admitted.text);
    s.stop().await;
}

#[tokio::test]
async fn cors_allows_browser_callers() {
    let s = TestServer::start().await;
    let pre = s
        .api
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/auth/v1/user/me", s.api.base),
        )
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization,x-device-id,x-request-id,x-sdk-version,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success());
    let h = pre.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for name in [
        "authorization",
        "x-device-id",
        "x-request-id",
        "x-sdk-version",
        "content-type",
    ] {
        assert!(allowed.contains(name), "{name} not in {allowed}");
    }
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let r = s
        .api
        .http
        .post(format!(
            "{}/auth/v1/signin/anonymously?client_id={ENV}",
            s.api.base
        ))
        .header("origin", "http://localhost:5173")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(exposed.contains("retry-after"), "{exposed}");
    s.stop().await;
}

// ----- envs: which exist, which are served ------------------------------------------------------

/// An env comes into being with its first user; requests anyone can send without
/// signing in (and sign-ins that fail) name unknown envs without writing anything.
#[tokio::test]
async fn unknown_envs_are_refused_without_a_write() {
    let s = TestServer::start_with(|c| {
        c.rate_limits.per_ip_per_minute = 0;
        c.rate_limits.per_device_per_minute = 0;
    })
    .await;
    let signed = s.api.sign_in_anonymously().await;
    let (at, rt) = (signed.str("access_token"), signed.str("refresh_token"));
    let envs_before = s.count_rows("envs").await;
    let tokens_before = s.count_rows("provider_tokens").await;
    assert_eq!(envs_before, 1);

    let requests: Vec<(String, String)> = (0..1_000)
        .map(|i| {
            let env = format!("ghost-{i}");
            match i % 6 {
                0 => (
                    format!("/auth/v1/token?client_id={env}"),
                    json!({"client_id": env, "grant_type": "refresh_token", "refresh_token": rt})
                        .to_string(),
                ),
                1 => (
                    format!("/auth/v1/revoke?client_id={env}"),
                    json!({"token": at}).to_string(),
                ),
                2 => (
                    format!("/auth/v1/revoke?client_id={env}"),
                    json!({"token": rt}).to_string(),
                ),
                // Sign-ins that fail do not create their env either.
                3 => (
                    format!("/auth/v1/signin/with/provider?client_id={env}"),
                    json!({"provider_token": "not-a-provider-token"}).to_string(),
                ),
                4 => (
                    format!("/auth/v1/signin/anonymously?client_id={env}"),
                    json!({"provider_token": "not-a-provider-token"}).to_string(),
                ),
                _ => (
                    format!("/auth/v1/provider/token?client_id={env}"),
                    json!({"provider_id": APPID, "provider_code": "not-a-code",
                           "provider_params": {"provider_code_type": "open_id", "appid": APPID}})
                    .to_string(),
                ),
            }
        })
        .collect();
    let requests = std::sync::Arc::new(requests);
    let workers = (0..8).map(|w| {
        let (api, requests) = (s.api.clone(), requests.clone());
        async move {
            let mut replies = Vec::new();
            for (path, body) in requests.iter().skip(w).step_by(8) {
                replies.push((path.clone(), api.post(path, body).await));
            }
            replies
        }
    });
    let replies: Vec<(String, Reply)> = futures_join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(replies.len(), 1_000);

    assert_eq!(
        s.count_rows("envs").await,
        envs_before,
        "no env was created"
    );
    assert_eq!(s.count_rows("provider_tokens").await, tokens_before);
    for (path, reply) in &replies {
        // A CloudBase error body each: revoke names an env that does not exist; a
        // refresh token or provider grant of such an env cannot exist.
        let name = if path.starts_with("/auth/v1/revoke") {
            "invalid_argument"
        } else {
            "invalid_grant"
        };
        reply.assert_error(400, name);
    }
    // The known env still works, and a successful sign-in still creates its env.
    assert_eq!(s.api.refresh(&rt).await.status, 200);
    let created = s
        .api
        .post("/auth/v1/signin/anonymously?client_id=ghost-new", "{}")
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(s.count_rows("envs").await, envs_before + 1);
    let revoke = s
        .api
        .post(
            "/auth/v1/revoke?client_id=ghost-new",
            &json!({"token": created.str("refresh_token")}).to_string(),
        )
        .await;
    assert_eq!(revoke.status, 200, "{}", revoke.text);
    s.stop().await;
}

/// One rule for every route: the env a request acts in (its `client_id`, or the `aud`
/// of its access token) must be served. After a restart with `--env A`, a session of
/// env B is refused everywhere and left as it was.
#[tokio::test]
async fn every_route_serves_only_the_served_envs() {
    const A: &str = "served-env-a";
    const B: &str = "unserved-env-b";
    let s = TestServer::start().await;
    let sign_in = |env: &'static str| {
        let api = s.api.clone();
        async move {
            let r = api
                .post(
                    &format!("/auth/v1/signin/anonymously?client_id={env}"),
                    "{}",
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            r
        }
    };
    let a = sign_in(A).await;
    let b = sign_in(B).await;
    let s = s.restart_with(|c| c.envs = vec![A.to_owned()]).await;

    let not_served = |r: Reply| {
        r.assert_error(400, "invalid_argument");
        assert!(r.str("error_description").contains(B), "{}", r.text);
    };
    // Bearer routes.
    not_served(s.api.me(&b.str("access_token")).await);
    not_served(
        s.api
            .post_bearer("/auth/v1/user/signout", &b.str("access_token"), "{}")
            .await,
    );
    let pt = {
        let (code, _) = s.api.mint_code(APPID, Some("o-served-env")).await;
        let body = json!({"provider_id": APPID, "provider_code": code,
                          "provider_params": {"provider_code_type": "open_id", "appid": APPID}});
        let r = s
            .api
            .post(
                &format!("/auth/v1/provider/token?client_id={A}"),
                &body.to_string(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.str("provider_token")
    };
    not_served(
        s.api
            .post_bearer(
                "/auth/v1/user/provider/bind",
                &b.str("access_token"),
                &json!({"provider_token": pt}).to_string(),
            )
            .await,
    );
    // Routes naming the env as client_id.
    let refresh_b = json!({"client_id": B, "grant_type": "refresh_token",
                           "refresh_token": b.str("refresh_token")});
    not_served(
        s.api
            .post(
                &format!("/auth/v1/token?client_id={B}"),
                &refresh_b.to_string(),
            )
            .await,
    );
    not_served(
        s.api
            .post(
                &format!("/auth/v1/revoke?client_id={B}"),
                &json!({"token": b.str("access_token")}).to_string(),
            )
            .await,
    );
    for path in [
        format!("/auth/v1/signin/anonymously?client_id={B}"),
        format!("/auth/v1/signin/with/provider?client_id={B}"),
    ] {
        not_served(s.api.post(&path, "{}").await);
    }

    // Env A is served on every route, with the provider token the refusal left unused.
    let at = a.str("access_token");
    assert_eq!(s.api.me(&at).await.status, 200);
    let bound = s
        .api
        .post_bearer(
            "/auth/v1/user/provider/bind",
            &at,
            &json!({"provider_token": pt}).to_string(),
        )
        .await;
    assert_eq!(bound.status, 200, "{}", bound.text);
    let refreshed = s
        .api
        .post(
            &format!("/auth/v1/token?client_id={A}"),
            &json!({"client_id": A, "grant_type": "refresh_token",
                    "refresh_token": a.str("refresh_token")})
            .to_string(),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let signed_out = s
        .api
        .post_bearer(
            "/auth/v1/user/signout",
            &refreshed.str("access_token"),
            "{}",
        )
        .await;
    assert_eq!(signed_out.status, 200, "{}", signed_out.text);

    // Served again, env B's session is intact: nothing above touched it.
    let s = s.restart_with(|_| {}).await;
    assert_eq!(s.api.me(&b.str("access_token")).await.status, 200);
    let r = s
        .api
        .post(
            &format!("/auth/v1/token?client_id={B}"),
            &refresh_b.to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    s.stop().await;
}

/// A provider token is taken only in the env it was issued for: presented anywhere
/// else, it is refused and stays usable where it belongs.
#[tokio::test]
async fn a_provider_token_presented_in_another_env_stays_usable() {
    const OTHER: &str = "other-env";
    let s = TestServer::start().await;
    let other = s
        .api
        .post(
            &format!("/auth/v1/signin/anonymously?client_id={OTHER}"),
            "{}",
        )
        .await;
    assert_eq!(other.status, 200, "{}", other.text);
    let pt = s.api.wechat_provider_token("o-provider-env-test").await;
    let body = json!({"provider_token": pt}).to_string();
    for path in [
        format!("/auth/v1/signin/with/provider?client_id={OTHER}"),
        format!("/auth/v1/signin/wechat/noauth?client_id={OTHER}"),
        format!("/auth/v1/signin/anonymously?client_id={OTHER}"),
    ] {
        s.api
            .post(&path, &body)
            .await
            .assert_error(400, "invalid_grant");
    }
    s.api
        .post_bearer(
            "/auth/v1/user/provider/bind",
            &other.str("access_token"),
            &body,
        )
        .await
        .assert_error(400, "invalid_grant");
    let signed = s.api.sign_in_with_provider(&pt).await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    s.api
        .sign_in_with_provider(&pt)
        .await
        .assert_error(400, "invalid_grant");
    s.stop().await;
}

/// One server per data dir: a second one is refused with the dir and the fix named;
/// the lock goes with the first server's shutdown. (The SQLite store's rule, so on
/// SQLite whatever the test backend: on PostgreSQL instances share a data dir.)
#[tokio::test]
async fn a_data_dir_serves_one_server_at_a_time() {
    let s = TestServer::start_with(|c| c.database = None).await;
    let mut second = TestServer::config(s.dir.path());
    second.database = None;
    let err = cloudbase_auth_server::Server::start(second)
        .await
        .expect_err("a second server on the same data dir");
    let message = err.to_string();
    assert!(
        message.contains(&s.data_dir().display().to_string()),
        "{message}"
    );
    assert!(message.contains("--data-dir"), "{message}");
    // The first server is unaffected; once it stops, the dir is free.
    assert_eq!(s.api.sign_in_anonymously().await.status, 200);
    let s = s.restart_with(|c| c.database = None).await;
    assert_eq!(s.api.get("/healthz").await.status, 200);
    s.stop().await;
}

/// The benches' helpers: `InProcess` answers through the router with no socket as the
/// listening server does, and `AccessTokens` signs and verifies as it does (its own
/// key: the server's tokens are refused, its own accepted until they expire).
#[tokio::test]
async fn in_process_router_and_token_helpers_act_as_the_server() {
    use axum::body::to_bytes;
    use axum::http::Method;
    use cloudbase_auth_server::store::UserRecord;
    use cloudbase_auth_server::testing::{AccessTokens, InProcess};
    use tower::ServiceExt as _;

    let app = InProcess::open(|_| {}).await;
    let send = |method, path: &str, bearer: Option<&str>, body: &str| {
        let request = InProcess::request(method, path, bearer, body);
        let router = app.router();
        async move {
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status().as_u16();
            let body = to_bytes(response.into_body(), 1 << 16).await.expect("body");
            (status, body.to_vec())
        }
    };
    let (status, body) = send(
        Method::POST,
        &format!("/auth/v1/signin/anonymously?client_id={ENV}"),
        None,
        "{}",
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let credentials = Credentials::parse(&body).expect("credentials");
    let (status, body) = send(
        Method::GET,
        "/auth/v1/user/me",
        Some(&credentials.access_token),
        "",
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(User::parse(&body).expect("a user").sub, credentials.sub);

    let dir = tempfile::tempdir().unwrap();
    let tokens = AccessTokens::create(
        dir.path(),
        cloudbase_auth_server::ServeConfig::new(dir.path()),
    )
    .expect("a key");
    assert!(dir.path().join(KEY_FILE).exists());
    let now = 1_700_000_000;
    let user = UserRecord::new("1000000000000000007".into(), ENV.into(), true, now);
    let now = now.unsigned_abs();
    let token = tokens.sign(&user, "family-1", now);
    let (_, claims) = jwt_parts(&token);
    assert_eq!(claims["sub"], "1000000000000000007");
    assert_eq!(claims["sid"], "family-1");
    assert_eq!(claims["exp"], now + 7200);
    assert_eq!(
        tokens.verify(&token, now).as_deref(),
        Some("1000000000000000007")
    );
    assert_eq!(tokens.verify(&token, now + 7200), None, "expired");
    assert_eq!(
        tokens.verify(&credentials.access_token, now),
        None,
        "another key's token"
    );
    let mut tampered = token.clone();
    tampered.pop();
    assert_eq!(tokens.verify(&tampered, now), None, "a damaged signature");
    app.close().await;
}

// ----- the user's account: profile, deletion -------------------------------------------

async fn patch_profile(s: &TestServer, token: &str, body: &Value) -> Reply {
    s.api
        .send(
            s.api
                .http
                .patch(format!("{}/auth/v1/user/profile", s.api.base))
                .header("authorization", format!("Bearer {token}"))
                .body(body.to_string()),
        )
        .await
}

async fn delete_me(s: &TestServer, token: &str) -> Reply {
    s.api
        .send(
            s.api
                .http
                // The SDK's deleteMe() writes `user/me?` and its params as the query.
                .delete(format!("{}/auth/v1/user/me?", s.api.base))
                .header("authorization", format!("Bearer {token}")),
        )
        .await
}

#[tokio::test]
async fn profile_update_is_validated_stored_and_shown_by_user_me() {
    let s = TestServer::start().await;
    let a = s.api.sign_in_anonymously().await;
    let token = a.str("access_token");
    let r = patch_profile(
        &s,
        &token,
        &json!({"name": "小明 \"Ming\"", "picture": "https://a.example/m.png", "gender": "MALE"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let user = User::parse(r.text.as_bytes()).expect("core parses the updated user");
    assert_eq!(
        (user.name.as_str(), user.picture.as_str()),
        ("小明 \"Ming\"", "https://a.example/m.png")
    );
    // Only the given field changes.
    let r = patch_profile(&s, &token, &json!({"picture": "http://b.example/n.png"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let me = s.api.me(&token).await;
    let user = User::parse(me.text.as_bytes()).unwrap();
    assert_eq!(
        (user.name.as_str(), user.picture.as_str()),
        ("小明 \"Ming\"", "http://b.example/n.png")
    );

    // Refusals carry the CloudBase error body and change nothing.
    for (body, says) in [
        (json!({"name": "n".repeat(65)}), "nickname too long"),
        (json!({"name": " "}), "nickname is empty"),
        (
            json!({"picture": "ftp://x.example/a.png"}),
            "picture must be",
        ),
        (
            json!({"picture": format!("https://x.example/{}", "p".repeat(256))}),
            "picture URL too long",
        ),
        (json!({"gender": "MALE"}), "nothing to update"),
        (json!({"name": 7}), ""),
    ] {
        let r = patch_profile(&s, &token, &body).await;
        r.assert_error(400, "invalid_argument");
        assert!(
            r.str("error_description").contains(says),
            "{body}: {}",
            r.text
        );
    }
    let me = s.api.me(&token).await;
    assert_eq!(
        User::parse(me.text.as_bytes()).unwrap().name,
        "小明 \"Ming\""
    );
    // No token, no change.
    patch_profile(&s, "not-a-token", &json!({"name": "x"}))
        .await
        .assert_error(401, "unauthenticated");

    // The Mini Program adapter's form: POST with x-http-method-override: PATCH.
    let r = s
        .api
        .send(
            s.api
                .http
                .post(format!("{}/auth/v1/user/profile", s.api.base))
                .header("authorization", format!("Bearer {token}"))
                .header("x-http-method-override", "PATCH")
                .body(json!({"name": "override"}).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "override");
    let r = s
        .api
        .post_bearer(
            "/auth/v1/user/profile",
            &token,
            &json!({"name": "x"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 405, "a POST without the override: {}", r.text);
    let r = patch_profile(&s, &token, &json!({"name": "小明 \"Ming\""})).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Durable: the users table keeps it across a restart.
    let s = s.restart_with(|_| {}).await;
    let me = s.api.me(&token).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(
        User::parse(me.text.as_bytes()).unwrap().picture,
        "http://b.example/n.png"
    );
}

#[tokio::test]
async fn deleting_the_user_signs_out_every_device() {
    let s = TestServer::start().await;
    let openid = "o-delete-me";
    let pt = s.api.wechat_provider_token(openid).await;
    let phone = s.api.sign_in_with_provider(&pt).await;
    assert_eq!(phone.status, 200, "{}", phone.text);
    let pt = s.api.wechat_provider_token(openid).await;
    let tablet = s.api.sign_in_with_provider(&pt).await;
    assert_eq!(tablet.str("sub"), phone.str("sub"));
    let other = s.api.sign_in_anonymously().await;
    let users_before = s.count_rows("users").await;
    // The other device's token has been verified before the deletion.
    assert_eq!(s.api.me(&tablet.str("access_token")).await.status, 200);

    let r = delete_me(&s, &phone.str("access_token")).await;
    assert_eq!((r.status, r.body.clone()), (200, json!({})), "{}", r.text);
    assert_eq!(s.count_rows("users").await, users_before - 1);
    assert_eq!(s.count_rows("identities").await, 0);
    for device in [&phone, &tablet] {
        s.api
            .me(&device.str("access_token"))
            .await
            .assert_error(401, "unauthenticated");
        s.api
            .refresh(&device.str("refresh_token"))
            .await
            .assert_error(400, "invalid_grant");
    }
    delete_me(&s, &phone.str("access_token"))
        .await
        .assert_error(401, "unauthenticated");
    // Another user is untouched; the openid signs in again as a new user.
    assert_eq!(s.api.me(&other.str("access_token")).await.status, 200);
    let pt = s.api.wechat_provider_token(openid).await;
    let again = s.api.sign_in_with_provider(&pt).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_ne!(again.str("sub"), phone.str("sub"));
}
