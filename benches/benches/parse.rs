//! Reply parsing: the core's parsers (into bounded structs, no allocation) against
//! serde_json into owned structs, on the same bytes.
//!
//! * `parse/credentials`: a credentials reply with a real-size EdDSA access token;
//! * `parse/user`: the `user/me` reply of a WeChat user.

use cloudbase_auth_benches::owned;
use cloudbase_auth_benches::samples::{OPENID, Replies};
use cloudbase_auth_core::testing::APPID;
use cloudbase_auth_core::wire::{Credentials, User};
use cloudbase_auth_testkit::alloc::{Counting, counted};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Checks both parsers read the same values, once, and the core's without allocating.
fn check_parsers(replies: &Replies) {
    let (core, n) = counted(|| Credentials::parse(&replies.anonymous).expect("parses"));
    assert_eq!(n, 0, "the core's credentials parser allocated");
    let serde: owned::Credentials = serde_json::from_slice(&replies.anonymous).expect("parses");
    assert_eq!(core.access_token.as_str(), serde.access_token);
    assert_eq!(
        core.refresh_token.as_deref(),
        serde.refresh_token.as_deref()
    );
    assert_eq!(core.expires_in, serde.expires_in);

    let (core, n) = counted(|| User::parse(&replies.wechat_user).expect("parses"));
    assert_eq!(n, 0, "the core's user parser allocated");
    let serde: owned::User = serde_json::from_slice(&replies.wechat_user).expect("parses");
    assert_eq!(core.openid_for(APPID), Some(OPENID));
    assert_eq!(serde.providers[0].provider_user_id, OPENID);
    assert_eq!(Some(core.name.as_str()), serde.name.as_deref());
}

fn bench(c: &mut Criterion) {
    let replies = Replies::new();
    check_parsers(&replies);
    println!(
        "parse: credentials reply {} bytes (access token {}), user reply {} bytes",
        replies.anonymous.len(),
        replies.access_token_len,
        replies.wechat_user.len()
    );

    let mut group = c.benchmark_group("parse");
    let credentials: &[u8] = &replies.anonymous;
    group.bench_function("credentials/core", |b| {
        b.iter(|| Credentials::parse(black_box(credentials)))
    });
    group.bench_function("credentials/serde_json", |b| {
        b.iter(|| serde_json::from_slice::<owned::Credentials>(black_box(credentials)))
    });
    let user: &[u8] = &replies.wechat_user;
    group.bench_function("user/core", |b| b.iter(|| User::parse(black_box(user))));
    group.bench_function("user/serde_json", |b| {
        b.iter(|| serde_json::from_slice::<owned::User>(black_box(user)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
