//! The verifier against the real server, in-process on 127.0.0.1:0: tokens from sign-in
//! verify; expired, tampered, other-env, wrong-alg, unknown-kid and signed-out tokens
//! are refused with distinct errors; the JWKS cache fetches once, and again only for a
//! new key id; the tower layer and the axum extractor answer 401 with a CloudBase body.

use axum::Router;
use axum::extract::{Extension, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use cloudbase_auth_server::testing::{
    APPID, ENV, TestServer, encode_jwt_part, jwt_parts, sign_jwt,
};
use cloudbase_auth_verifier::{
    Claims, JWKS_PATH, LoginKind, Verifier, VerifierBuilder, VerifyError, VerifyLayer,
};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ----- helpers --------------------------------------------------------------------------

fn builder(base: &str) -> VerifierBuilder {
    Verifier::builder(base, ENV).leeway(Duration::ZERO)
}

async fn anonymous_token(s: &TestServer) -> String {
    let r = s.api.sign_in_anonymously().await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.str("access_token")
}

/// Serves `app` on 127.0.0.1:0 until the returned sender is dropped or fired.
async fn serve(app: Router) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
    });
    (format!("http://{addr}"), stop)
}

/// A reverse proxy in front of a server: the verifier keeps one base URL while the
/// server behind it is replaced, and the JWKS fetches that reach it are counted.
#[derive(Clone)]
struct Proxy {
    backend: Arc<Mutex<String>>,
    jwks_fetches: Arc<AtomicUsize>,
    http: reqwest::Client,
}

impl Proxy {
    async fn start(backend: &str) -> (Self, String, tokio::sync::oneshot::Sender<()>) {
        let proxy = Self {
            backend: Arc::new(Mutex::new(backend.to_owned())),
            jwks_fetches: Arc::new(AtomicUsize::new(0)),
            http: reqwest::Client::new(),
        };
        let app = Router::new().fallback(forward).with_state(proxy.clone());
        let (base, stop) = serve(app).await;
        (proxy, base, stop)
    }

    fn point_at(&self, backend: &str) {
        *self.backend.lock().unwrap() = backend.to_owned();
    }

    fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    if request.uri().path() == JWKS_PATH {
        proxy.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    }
    let url = format!(
        "{}{}",
        proxy.backend.lock().unwrap(),
        request.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    // A stopped backend is a 502, as from any reverse proxy.
    let Ok(reply) = proxy.http.get(url).send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = StatusCode::from_u16(reply.status().as_u16()).expect("status");
    match reply.bytes().await {
        Ok(body) => (status, body).into_response(),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

// ----- verification ---------------------------------------------------------------------

#[tokio::test]
async fn sign_in_tokens_verify_into_typed_claims() {
    let s = TestServer::start().await;
    let verifier = builder(&s.api.base).build().expect("verifier");
    assert_eq!(verifier.env(), ENV);

    let r = s.api.sign_in_anonymously().await;
    let claims = verifier
        .verify(&r.str("access_token"))
        .await
        .expect("anonymous token verifies");
    assert_eq!(claims.uid, r.str("sub"));
    assert_eq!(claims.env, ENV);
    assert_eq!(claims.login, LoginKind::Anonymous);
    assert_eq!((claims.openid, claims.unionid), (None, None));
    assert_eq!(claims.expires_at - claims.issued_at, 7200);

    let pt = s.api.wechat_provider_token("o-verifier-user").await;
    let w = s.api.sign_in_with_provider(&pt).await;
    assert_eq!(w.status, 200, "{}", w.text);
    let claims = verifier
        .verify(&w.str("access_token"))
        .await
        .expect("WeChat token verifies");
    assert_eq!(claims.uid, w.str("sub"));
    assert_eq!(claims.login, LoginKind::WeChat);
    assert_eq!(claims.openid.as_deref(), Some("o-verifier-user"));
    assert_eq!(claims.scope, "user");

    // Introspection agrees, and knows the session is live.
    let live = verifier
        .introspect(&w.str("access_token"))
        .await
        .expect("introspect")
        .expect("live");
    assert_eq!(live.sub.as_str(), claims.uid);
    let _ = APPID;
    s.stop().await;
}

#[tokio::test]
async fn refused_tokens_fail_with_distinct_errors() {
    let s = TestServer::start().await;
    let verifier = builder(&s.api.base).build().expect("verifier");
    let token = anonymous_token(&s).await;
    let (header, claims) = jwt_parts(&token);
    let key = s.signing_key();
    // Sanity: our re-signing of the same header and claims is accepted.
    verifier
        .verify(&sign_jwt(&key, &header, &claims))
        .await
        .expect("re-signed token verifies");

    let now = claims["iat"].as_u64().unwrap();
    let with = |name: &str, value: Value| {
        let mut c = claims.clone();
        c[name] = value;
        c
    };
    let header_with = |name: &str, value: Value| {
        let mut h = header.clone();
        h[name] = value;
        h
    };
    let tampered = {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let (h, _) = input.split_once('.').unwrap();
        format!(
            "{h}.{}.{sig}",
            encode_jwt_part(&with("scope", json!("user")))
        )
    };
    let other_env = s
        .api
        .post("/auth/v1/signin/anonymously?client_id=other-env-7q", "{}")
        .await
        .str("access_token");
    let stranger = TestServer::start().await;
    let foreign_kid = anonymous_token(&stranger).await;
    let mut no_kid = header.clone();
    no_kid.as_object_mut().unwrap().remove("kid");

    let cases: Vec<(&str, String, VerifyError)> = vec![
        (
            "expired",
            sign_jwt(&key, &header, &with("exp", json!(now - 5))),
            VerifyError::Expired,
        ),
        (
            "not yet valid",
            sign_jwt(&key, &header, &with("nbf", json!(now + 3600))),
            VerifyError::NotYetValid,
        ),
        ("tampered", tampered, VerifyError::BadSignature),
        (
            "signed by another key under our kid",
            sign_jwt(&SigningKey::from_bytes(&[3; 32]), &header, &claims),
            VerifyError::BadSignature,
        ),
        ("other env", other_env, VerifyError::WrongEnv),
        (
            "other issuer",
            sign_jwt(&key, &header, &with("iss", json!("someone-else"))),
            VerifyError::WrongIssuer,
        ),
        (
            "alg HS256",
            sign_jwt(&key, &header_with("alg", json!("HS256")), &claims),
            VerifyError::WrongAlgorithm,
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                encode_jwt_part(&header_with("alg", json!("none"))),
                encode_jwt_part(&claims)
            ),
            VerifyError::WrongAlgorithm,
        ),
        ("unknown kid", foreign_kid, VerifyError::UnknownKey),
        (
            "no kid",
            sign_jwt(&key, &no_kid, &claims),
            VerifyError::MissingKeyId,
        ),
        (
            "no sub",
            {
                let mut c = claims.clone();
                c.as_object_mut().unwrap().remove("sub");
                sign_jwt(&key, &header, &c)
            },
            VerifyError::BadClaims("sub".to_owned()),
        ),
        ("garbage", "a.b.c".to_owned(), VerifyError::Malformed),
        ("two parts", "a.b".to_owned(), VerifyError::Malformed),
        ("too long", "a".repeat(5000), VerifyError::Malformed),
    ];
    for (what, presented, expected) in cases {
        let got = verifier.verify(&presented).await;
        assert_eq!(got, Err(expected), "{what}");
        let e = got.unwrap_err();
        assert!(e.is_token_error(), "{what}");
        assert!(
            !e.to_string().contains(&presented),
            "{what}: message quotes the token"
        );
    }
    // The stranger's tokens verify against the stranger's keys.
    let theirs = Verifier::builder(stranger.api.base.as_str(), ENV)
        .build()
        .unwrap();
    theirs
        .verify(&anonymous_token(&stranger).await)
        .await
        .expect("stranger's token against its own server");

    // Another issuer configured on the verifier refuses the server's tokens.
    let picky = builder(&s.api.base).issuer("elsewhere").build().unwrap();
    assert_eq!(picky.verify(&token).await, Err(VerifyError::WrongIssuer));
    stranger.stop().await;
    s.stop().await;
}

/// Signature checks cannot see a sign-out: the token verifies until it expires, then
/// fails as expired. Introspection sees the sign-out at once.
#[tokio::test]
async fn signed_out_token_is_refused_once_expired() {
    // 2 s: the server's own expiry check (whole seconds) leaves the token live for at
    // least one second, time enough to introspect it before and after the sign-out.
    let s = TestServer::start_with(|c| c.access_token_ttl = Duration::from_secs(2)).await;
    let verifier = builder(&s.api.base).build().expect("verifier");
    let token = anonymous_token(&s).await;
    let claims = verifier.verify(&token).await.expect("fresh token verifies");
    assert!(
        verifier
            .introspect(&token)
            .await
            .expect("introspect")
            .is_some()
    );

    let r = s
        .api
        .post_bearer("/auth/v1/user/signout", &token, "{}")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        verifier.introspect(&token).await.expect("introspect"),
        None,
        "the server knows the session ended"
    );

    // Bounded wait for `exp` to pass: 2 s TTL, checked every 200 ms for at most 6 s.
    let deadline = Instant::now() + Duration::from_secs(6);
    let outcome = loop {
        let got = verifier.verify(&token).await;
        if got.is_err() || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(outcome, Err(VerifyError::Expired));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now > claims.expires_at, "refused only after exp");
    s.stop().await;
}

// ----- the JWKS cache -------------------------------------------------------------------

#[tokio::test]
async fn jwks_is_fetched_once_and_again_only_for_a_new_kid() {
    let first = TestServer::start().await;
    let (proxy, base, stop_proxy) = Proxy::start(&first.api.base).await;
    // Long enough for the twenty debug-build signature checks below on a loaded machine.
    let interval = Duration::from_millis(1500);
    let verifier = builder(&base)
        .refresh_interval(interval)
        .build()
        .expect("verifier");

    // Twenty requests, one fetch.
    let token = anonymous_token(&first).await;
    for _ in 0..20 {
        verifier.verify(&token).await.expect("verifies");
    }
    assert_eq!(proxy.fetches(), 1);

    // Concurrent requests on a cold verifier share one fetch too.
    let cold = builder(&base).build().unwrap();
    let before = proxy.fetches();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let v = cold.clone();
            let t = token.clone();
            tokio::spawn(async move { v.verify(&t).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("verifies");
    }
    assert_eq!(proxy.fetches(), before + 1);

    // The server restarts on a fresh data dir: a new signing key, a new kid.
    first.stop().await;
    let second = TestServer::start().await;
    proxy.point_at(&second.api.base);
    let new_token = anonymous_token(&second).await;
    assert_ne!(jwt_parts(&new_token).0["kid"], jwt_parts(&token).0["kid"]);

    // Once the interval since the last fetch has passed, a burst of tokens with the
    // new kid causes one fetch, which finds the new key.
    let before = proxy.fetches();
    tokio::time::sleep(interval + Duration::from_millis(50)).await;
    for _ in 0..10 {
        verifier.verify(&new_token).await.expect("new key found");
    }
    assert_eq!(proxy.fetches(), before + 1);
    // The old key is gone: the old token is now an unknown kid, refused without
    // fetching again inside the interval.
    for _ in 0..10 {
        assert_eq!(verifier.verify(&token).await, Err(VerifyError::UnknownKey));
    }
    assert_eq!(proxy.fetches(), before + 1);

    // Keys older than `max_age` are fetched again before use.
    let aging = builder(&base)
        .max_age(Duration::from_millis(200))
        .refresh_interval(Duration::from_secs(3))
        .build()
        .unwrap();
    let before = proxy.fetches();
    aging.verify(&new_token).await.expect("verifies");
    aging.verify(&new_token).await.expect("verifies");
    assert_eq!(proxy.fetches(), before + 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    aging.verify(&new_token).await.expect("verifies");
    assert_eq!(proxy.fetches(), before + 2);

    // No server behind the proxy: the stale keys stay in use, and the failed fetch is
    // not tried again on every request.
    second.stop().await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    for _ in 0..5 {
        aging.verify(&new_token).await.expect("stale cached key");
    }
    assert_eq!(proxy.fetches(), before + 3);
    verifier.verify(&new_token).await.expect("cached key");
    let _ = stop_proxy.send(());
}

#[tokio::test]
async fn unreachable_jwks_is_not_a_token_error() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let verifier = builder(&format!("http://{addr}"))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let s = TestServer::start().await;
    let token = anonymous_token(&s).await;
    let e = verifier.verify(&token).await.unwrap_err();
    assert!(matches!(e, VerifyError::JwksUnavailable(_)), "{e:?}");
    assert!(!e.is_token_error());
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    let e = verifier.introspect(&token).await.unwrap_err();
    assert!(matches!(e, VerifyError::Introspect(_)), "{e:?}");
    assert!(!e.is_token_error());
    assert!(matches!(
        Verifier::builder("not a url", ENV).build(),
        Err(VerifyError::BadBaseUrl(_))
    ));
    s.stop().await;
}

// ----- tower layer and axum extractor ---------------------------------------------------

async fn whoami(Extension(claims): Extension<Claims>) -> String {
    claims.uid
}

async fn hello(claims: Claims) -> String {
    format!("hello, {}", claims.uid)
}

#[tokio::test]
async fn layer_and_extractor_admit_verified_callers_only() {
    let s = TestServer::start().await;
    let verifier = builder(&s.api.base).build().expect("verifier");
    let app = Router::new()
        .route("/layered", get(whoami))
        .route_layer(VerifyLayer::new(verifier.clone()))
        .route("/extracted", get(hello))
        .with_state(verifier);
    let (base, stop) = serve(app).await;
    let http = reqwest::Client::new();

    let r = s.api.sign_in_anonymously().await;
    let (token, uid) = (r.str("access_token"), r.str("sub"));
    let other_env = s
        .api
        .post("/auth/v1/signin/anonymously?client_id=other-env-7q", "{}")
        .await
        .str("access_token");
    for (path, expected) in [
        ("/layered", uid.clone()),
        ("/extracted", format!("hello, {uid}")),
    ] {
        let ok = http
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{path}");
        assert_eq!(ok.text().await.unwrap(), expected);

        for (what, auth) in [
            ("no header", None),
            ("not bearer", Some(format!("Basic {token}"))),
            ("other env", Some(format!("Bearer {other_env}"))),
            ("garbage", Some("Bearer x.y.z".to_owned())),
        ] {
            let mut req = http.get(format!("{base}{path}"));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let reply = req.send().await.unwrap();
            assert_eq!(reply.status(), 401, "{path} {what}");
            assert_eq!(
                reply.headers()["www-authenticate"],
                "Bearer error=\"invalid_token\""
            );
            let body: Value = reply.json().await.unwrap();
            assert_eq!(body["error"], "unauthenticated", "{path} {what}");
            assert_eq!(body["error_code"], 16, "{path} {what}");
            assert!(body["error_description"].is_string());
        }
    }
    let _ = stop.send(());
    s.stop().await;
}
