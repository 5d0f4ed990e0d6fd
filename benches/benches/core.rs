//! The engine's rounds through its public API, allocations counted.
//!
//! * `core/sign_in`: `sign_in_anonymously` → drain (the request is written into the
//!   host's buffer) → `handle_response` with a real-size credentials reply → drain (the
//!   snapshot is written, the state changes, `user/me` is written) → the user reply →
//!   drain (the profile's snapshot, the completion). Two requests, as the SDK's sign-in.
//! * `core/refresh`: `handle_timeout` past the refresh time → drain → the refresh
//!   reply → drain (the new snapshot).
//!
//! Each round runs on a fresh copy of an engine in the starting state (copied outside
//! the measured time), under a counting allocator; the rounds must allocate nothing.
//! The baseline of each is the same round with the reply also parsed by serde_json
//! into owned structs, as a std client does with every reply.

use cloudbase_auth_benches::owned;
use cloudbase_auth_benches::samples::{self, Drained, EXPIRES_IN, Replies, drain};
use cloudbase_auth_core::capacity::POLL_BUFFER_MIN;
use cloudbase_auth_core::testing::T0;
use cloudbase_auth_core::wire::Endpoint;
use cloudbase_auth_core::{Completion, Delivery, Engine, LoginState};
use cloudbase_auth_testkit::alloc::{Counting, counted};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Past the refresh time of a session signed in at `T0` (expiry minus 10 s; the engine
/// refreshes 30 s before expiry).
const REFRESH_AT: u64 = T0 + EXPIRES_IN * 1000 - 10_000;

/// What a round returns: how many replies the engine took, and what the drains after
/// them saw.
type Round = (usize, Drained);

/// A round: the engine, the host's buffer, the replies to feed.
type RoundFn = fn(&mut Engine, &mut [u8], &[&[u8]]) -> Round;

/// Feeds `replies` in order, each to the request the engine sent, draining after
/// every input as a host does.
fn exchange(engine: &mut Engine, buf: &mut [u8], now: u64, replies: &[&[u8]]) -> Round {
    let mut seen = drain(engine, buf);
    let mut taken = 0;
    for reply in replies {
        let Some((id, _)) = seen.transmit else { break };
        if engine.handle_response(now, id, 200, reply) == Delivery::Accepted {
            taken += 1;
        }
        seen = seen.then(drain(engine, buf));
    }
    (taken, seen)
}

/// One anonymous sign-in from `Initialized`: `signin/anonymously`, then `user/me`.
fn sign_in_round(engine: &mut Engine, buf: &mut [u8], replies: &[&[u8]]) -> Round {
    let _op = engine.sign_in_anonymously(T0).expect("initialised");
    exchange(engine, buf, T0, replies)
}

/// One proactive refresh of a session due for it: `token`.
fn refresh_round(engine: &mut Engine, buf: &mut [u8], replies: &[&[u8]]) -> Round {
    engine.handle_timeout(REFRESH_AT);
    exchange(engine, buf, REFRESH_AT, replies)
}

/// The baseline's extra step: the round's replies as owned structs.
fn parse_owned(replies: &[&[u8]]) -> (owned::Credentials, Option<owned::User>) {
    let credentials = serde_json::from_slice(replies[0]).expect("a credentials reply");
    let user = replies
        .get(1)
        .map(|r| serde_json::from_slice(r).expect("a user reply"));
    (credentials, user)
}

/// The replies of an anonymous sign-in round.
fn sign_in_replies(replies: &Replies) -> [&[u8]; 2] {
    [&replies.anonymous, &replies.anonymous_user]
}

/// Checks what the rounds do, once, before anything is measured.
fn check_rounds(replies: &Replies, buf: &mut [u8]) {
    let (_, n) = counted(|| drop(black_box(vec![0u8; 1])));
    assert_eq!(n, 1, "the counting allocator is installed");

    let mut engine = samples::initialized();
    let (taken, seen) = sign_in_round(&mut engine, buf, &sign_in_replies(replies));
    assert_eq!(taken, 2, "both replies taken");
    assert_eq!(seen.transmit, None, "nothing left to send");
    assert_eq!(seen.changed_to, Some(LoginState::Anonymous));
    assert!(matches!(
        seen.completed,
        Some((_, Ok(Completion::SignedIn(LoginState::Anonymous))))
    ));
    assert!(seen.persisted.is_some(), "the new session is persisted");

    let mut engine = samples::signed_in_anonymously(replies);
    let before = engine.session().map(|s| s.expires_at_ms);
    engine.handle_timeout(REFRESH_AT);
    let sent = drain(&mut engine, buf).transmit.map(|(_, e)| e);
    assert_eq!(sent, Some(Endpoint::Token));
    let mut engine = samples::signed_in_anonymously(replies);
    let (taken, seen) = refresh_round(&mut engine, buf, &[&replies.refreshed]);
    assert_eq!(taken, 1, "the refresh reply taken");
    assert_eq!(seen.transmit, None, "nothing left to send");
    assert!(
        seen.persisted.is_some(),
        "the refreshed session is persisted"
    );
    let after = engine.session().map(|s| s.expires_at_ms);
    assert!(after > before, "the refresh extended the session");
}

fn bench(c: &mut Criterion) {
    let replies = Replies::new();
    let mut buf = vec![0u8; POLL_BUFFER_MIN];
    check_rounds(&replies, &mut buf);
    println!(
        "core: access token {} bytes, credentials reply {} bytes, engine {} bytes",
        replies.access_token_len,
        replies.anonymous.len(),
        std::mem::size_of::<Engine>()
    );

    let initialized = samples::initialized();
    let signed_in = samples::signed_in_anonymously(&replies);
    let mut group = c.benchmark_group("core");
    let sign_in = sign_in_replies(&replies);
    let refresh: [&[u8]; 1] = [&replies.refreshed];
    let rounds: [(&str, &Engine, &[&[u8]], RoundFn); 2] = [
        ("sign_in", &initialized, &sign_in, sign_in_round),
        ("refresh", &signed_in, &refresh, refresh_round),
    ];
    for (name, start, fed, round) in rounds {
        let mut allocations = 0;
        let mut rounds_run = 0u64;
        group.bench_function(format!("{name}/engine"), |b| {
            b.iter_batched_ref(
                || start.clone(),
                |engine| {
                    let (seen, n) = counted(|| round(engine, &mut buf, fed));
                    allocations += n;
                    rounds_run += 1;
                    black_box(seen)
                },
                BatchSize::SmallInput,
            );
        });
        println!("core/{name}/engine: {allocations} allocations in {rounds_run} rounds");
        assert_eq!(allocations, 0, "core/{name}/engine allocated");

        let mut baseline_allocations = 0;
        let mut baseline_rounds = 0u64;
        group.bench_function(format!("{name}/engine+serde_json"), |b| {
            b.iter_batched_ref(
                || start.clone(),
                |engine| {
                    let (seen, n) = counted(|| {
                        let owned = parse_owned(black_box(fed));
                        (round(engine, &mut buf, fed), owned)
                    });
                    baseline_allocations += n;
                    baseline_rounds += 1;
                    black_box(seen)
                },
                BatchSize::SmallInput,
            );
        });
        println!(
            "core/{name}/engine+serde_json: {} allocations per round",
            baseline_allocations / baseline_rounds.max(1)
        );
    }
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
