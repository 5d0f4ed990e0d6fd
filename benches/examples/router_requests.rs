//! Drives one kind of request through the server's router in-process, N times, so a
//! profiler sees nothing but that request's work (the criterion `router/*` benches
//! measure time; this is for counting instructions per request).
//!
//! `cargo run --release -p cloudbase-auth-benches --example router_requests -- user_me 2000`
//! under `valgrind --tool=callgrind` (or `perf record -g`): the difference between
//! runs with two counts, divided by the difference of the counts, is the cost of one
//! request without the setup. Kinds: `healthz`, `signin`, `refresh`, `user_me`.
//!
//! A third argument runs that many requests concurrently (default 1: one after
//! another), so the store's writer commits them in batches as under load; the run
//! ends with the bytes the process wrote (`wchar` of `/proc/self/io`: mostly the
//! write-ahead log) per request.

use axum::http::Method;
use cloudbase_auth_benches::router::{refresh, send, sign_in};
use cloudbase_auth_core::wire::{DEFAULT_API_PATH, Endpoint};
use cloudbase_auth_server::RateLimits;
use cloudbase_auth_server::testing::InProcess;
use cloudbase_auth_server_api::HEALTH_PATH;

/// Most requests one run sends (keeps every run bounded).
const COUNT_MAX: usize = 1_000_000;

/// Bytes this process has written so far (`wchar`; Linux only).
fn written_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
}

/// Runs `futures` concurrently on the current task until all are done.
async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut pending: Vec<_> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "user_me".to_owned());
    let count: usize = args
        .next()
        .map(|n| n.parse().expect("a request count"))
        .unwrap_or(1000)
        .min(COUNT_MAX);
    let concurrency: usize = args
        .next()
        .map(|n| n.parse().expect("a concurrency"))
        .unwrap_or(1)
        .clamp(1, 1024);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let app = InProcess::open(|config| {
            let mut limits = RateLimits::default();
            limits.per_ip_per_minute = 0;
            limits.per_device_per_minute = 0;
            config.rate_limits = limits;
        })
        .await;
        let first = sign_in(&app).await;
        let me_path = format!("{DEFAULT_API_PATH}{}", Endpoint::UserMe.path());
        let access = first.access_token.as_str().to_owned();
        let mut token = first
            .refresh_token
            .expect("refreshable")
            .as_str()
            .to_owned();
        let written_before = written_bytes();
        if concurrency > 1 && kind == "signin" {
            let clients = (0..concurrency).map(|c| {
                let app = &app;
                async move {
                    for _ in (c..count).step_by(concurrency) {
                        sign_in(app).await;
                    }
                }
            });
            futures_join_all(clients).await;
        } else {
            for _ in 0..count {
                match kind.as_str() {
                    "healthz" => drop(send(&app, Method::GET, HEALTH_PATH, None, "").await),
                    "signin" => drop(sign_in(&app).await),
                    "refresh" => token = refresh(&app, &token).await,
                    "user_me" => drop(send(&app, Method::GET, &me_path, Some(&access), "").await),
                    other => panic!("unknown kind {other}: healthz, signin, refresh or user_me"),
                }
            }
        }
        if let (Some(before), Some(after)) = (written_before, written_bytes()) {
            println!(
                "{kind} x{count} (concurrency {concurrency}): {:.0} bytes written per request",
                (after - before) as f64 / count.max(1) as f64
            );
        }
        app.close().await;
    });
}
