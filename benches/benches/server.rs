//! The server: its access-token signer and verifier, and whole requests through its
//! router in-process.
//!
//! * `token/sign/server` and `token/verify/server`: the server's `jwt` module (claims
//!   to JSON, base64url, Ed25519; and back, with the header, key id, issuer and expiry
//!   checks). Baseline: the Ed25519 primitive alone (ed25519-dalek) on the same signing
//!   input, what any EdDSA JWT costs at least.
//! * `router/*`: one request through the server's router with `tower`'s `oneshot` (no
//!   socket), the whole middleware stack and the SQLite store on a temporary data dir,
//!   rate limits off: an anonymous sign-in (a user and a session written), a refresh
//!   (the refresh token rotated) and `user/me` (a token verified, a session read).
//!   Baseline: `GET /healthz` through the same router, the stack with no work behind it.

use axum::http::Method;
use cloudbase_auth_benches::router::{refresh, send, sign_in};
use cloudbase_auth_benches::samples::{EXPIRES_IN, FAMILY, UID, WECHAT_UID};
use cloudbase_auth_core::testing::ENV;
use cloudbase_auth_core::wire::{DEFAULT_API_PATH, Endpoint, User};
use cloudbase_auth_server::store::UserRecord;
use cloudbase_auth_server::testing::{AccessTokens, InProcess};
use cloudbase_auth_server::{RateLimits, ServeConfig};
use cloudbase_auth_server_api::HEALTH_PATH;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use ed25519_dalek::{Signer as _, SigningKey};
use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn bench_tokens(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let tokens =
        AccessTokens::create(dir.path(), ServeConfig::new(dir.path())).expect("a signing key");
    let now = unix_now();
    let user = UserRecord::new(
        UID.to_owned(),
        ENV.to_owned(),
        true,
        i64::try_from(now).expect("in range"),
    );
    let token = tokens.sign(&user, FAMILY, now);
    assert_eq!(tokens.verify(&token, now).as_deref(), Some(UID));
    assert_eq!(tokens.verify(&token, now + EXPIRES_IN), None, "expired");

    // The baseline signs and verifies the same signing input (header.claims).
    let signing_input = &token[..token.rfind('.').expect("a JWT")];
    let key = SigningKey::from_bytes(&[7; 32]);
    let public = key.verifying_key();
    let signature = key.sign(signing_input.as_bytes());
    println!(
        "token: {} bytes, signing input {} bytes",
        token.len(),
        signing_input.len()
    );

    let mut group = c.benchmark_group("token");
    group.bench_function("sign/server", |b| {
        b.iter(|| tokens.sign(black_box(&user), FAMILY, now))
    });
    group.bench_function("sign/ed25519", |b| {
        b.iter(|| key.sign(black_box(signing_input.as_bytes())))
    });
    group.bench_function("verify/server", |b| {
        b.iter(|| tokens.verify(black_box(&token), now))
    });
    group.bench_function("verify/ed25519", |b| {
        b.iter(|| public.verify_strict(black_box(signing_input.as_bytes()), &signature))
    });
    group.finish();
}

fn bench_router(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let app = runtime.block_on(InProcess::open(|config| {
        let mut limits = RateLimits::default();
        limits.per_ip_per_minute = 0;
        limits.per_device_per_minute = 0;
        config.rate_limits = limits;
    }));
    let me_path = format!("{DEFAULT_API_PATH}{}", Endpoint::UserMe.path());
    let (access_token, first_refresh) = runtime.block_on(async {
        let signed_in = sign_in(&app).await;
        let me = send(
            &app,
            Method::GET,
            &me_path,
            Some(&signed_in.access_token),
            "",
        )
        .await;
        let user = User::parse(&me).expect("a user");
        assert_eq!(user.sub, signed_in.sub);
        assert_ne!(user.sub.as_str(), WECHAT_UID);
        let refreshed = sign_in(&app).await;
        (
            signed_in.access_token.as_str().to_owned(),
            refreshed
                .refresh_token
                .expect("refreshable")
                .as_str()
                .to_owned(),
        )
    });

    let mut group = c.benchmark_group("router");
    // Each request writes to SQLite with fsync: milliseconds, so fewer, flat samples.
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    let app = &app;
    group.bench_function("healthz", |b| {
        b.to_async(&runtime)
            .iter(|| async move { send(app, Method::GET, HEALTH_PATH, None, "").await })
    });
    group.bench_function("signin_anonymously", |b| {
        b.to_async(&runtime)
            .iter(|| async move { sign_in(app).await })
    });
    let current = &RefCell::new(first_refresh);
    group.bench_function("refresh", |b| {
        b.to_async(&runtime).iter(|| async move {
            let token = current.borrow().clone();
            let next = refresh(app, &token).await;
            *current.borrow_mut() = next;
        })
    });
    let (me_path, access_token) = (&me_path, &access_token);
    group.bench_function("user_me", |b| {
        b.to_async(&runtime)
            .iter(|| async move { send(app, Method::GET, me_path, Some(access_token), "").await })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_tokens, bench_router
}
criterion_main!(benches);
