//! Snapshots: the core's codec (postcard body, CRC-32 trailer) against serde_json of
//! the same session, which is how the official SDK stores it.
//!
//! The session is a WeChat one with its profile cached, with real-size tokens.
//! * `snapshot/encode+decode/core`: the snapshot the engine would persist, written
//!   into a buffer, then restored into a freshly initialised engine (`Engine::restore`:
//!   the CRC, the decode, the invariant checks and adopting the session);
//! * `snapshot/encode+decode/serde_json`: the same fields as one owned struct,
//!   `serde_json::to_vec` then `serde_json::from_slice`.
//!
//! The encode and decode halves are measured on their own as well.

use cloudbase_auth_benches::owned::StoredSession;
use cloudbase_auth_benches::samples::{self, OPENID, Replies};
use cloudbase_auth_core::snapshot::SNAPSHOT_MAX;
use cloudbase_auth_core::testing::{APPID, T0, write_snapshot};
use cloudbase_auth_core::{Engine, LoginState};
use cloudbase_auth_testkit::alloc::{Counting, counted};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Encodes `engine`'s snapshot into `buf` and restores it into `fresh`.
fn round_trip(engine: &Engine, fresh: &mut Engine, buf: &mut [u8]) {
    let n = write_snapshot(engine, buf).expect("the buffer holds SNAPSHOT_MAX");
    fresh.restore(T0, &buf[..n]).expect("the snapshot restores");
}

fn bench(c: &mut Criterion) {
    let replies = Replies::new();
    let session = samples::signed_in_with_wechat(&replies);
    let initialized = samples::initialized();
    let mut buf = vec![0u8; SNAPSHOT_MAX];

    // What both sides carry, checked once.
    let (n, allocations) = counted(|| write_snapshot(&session, &mut buf).expect("fits"));
    assert_eq!(allocations, 0, "encoding allocated");
    let ours = buf[..n].to_vec();
    let mut fresh = initialized.clone();
    let ((), allocations) = counted(|| round_trip(&session, &mut fresh, &mut buf));
    assert_eq!(allocations, 0, "the round trip allocated");
    assert_eq!(fresh.login_state(), LoginState::WeChat);
    assert_eq!(fresh.user().map(|u| u.openid), Some(OPENID));
    assert_eq!(fresh.session(), session.session());
    let json_session = StoredSession::of(&session, &samples::opaque(3), APPID, T0);
    let json = serde_json::to_vec(&json_session).expect("serializes");
    let back: StoredSession = serde_json::from_slice(&json).expect("parses");
    assert_eq!(back, json_session);
    println!(
        "snapshot: core {} bytes, serde_json {} bytes (access token {} bytes)",
        ours.len(),
        json.len(),
        replies.access_token_len
    );

    let mut group = c.benchmark_group("snapshot");
    group.bench_function("encode+decode/core", |b| {
        b.iter_batched_ref(
            || initialized.clone(),
            |fresh| round_trip(black_box(&session), fresh, &mut buf),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("encode+decode/serde_json", |b| {
        b.iter(|| {
            let bytes = serde_json::to_vec(black_box(&json_session)).expect("serializes");
            serde_json::from_slice::<StoredSession>(&bytes).expect("parses")
        });
    });
    group.bench_function("encode/core", |b| {
        b.iter(|| write_snapshot(black_box(&session), &mut buf).expect("fits"));
    });
    group.bench_function("encode/serde_json", |b| {
        b.iter(|| serde_json::to_vec(black_box(&json_session)).expect("serializes"));
    });
    group.bench_function("decode/core", |b| {
        b.iter_batched_ref(
            || initialized.clone(),
            |fresh| fresh.restore(T0, black_box(&ours)).expect("restores"),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("decode/serde_json", |b| {
        b.iter(|| serde_json::from_slice::<StoredSession>(black_box(&json)).expect("parses"));
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
