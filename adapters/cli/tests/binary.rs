//! The built `cloudbase-auth` binary: `--help`, the startup lines and startup time,
//! refusals, logs free of secrets, graceful shutdown with export/import, and
//! durability across SIGKILL.

mod common;

use cloudbase_auth_server::testing::jwt_parts;
use common::{APPID, BinServer, ENV, binary};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn help_explains_every_flag() {
    let out = binary().args(["serve", "--help"]).output().expect("runs");
    assert!(out.status.success());
    // Compared with its line wrapping undone.
    let help = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for needle in [
        "--listen",
        "--data-dir",
        "--env",
        "created by its first sign-in",
        "--access-token-ttl",
        "--refresh-token-ttl",
        "--wechat-mode",
        "--wechat-base-url",
        "--wechat-apps",
        "CLOUDBASE_AUTH_WECHAT_APPS",
        "--allow-remote-emulator",
        "--import",
        "--export-on-exit",
        "--log-format",
        "--signin-rate-per-ip",
        "--signin-rate-per-device",
        "--request-timeout",
        "--reset-store",
        "--new-signing-key",
        "Exit codes of serve",
        "the store is damaged",
    ] {
        assert!(
            help.contains(needle),
            "`serve --help` does not mention {needle}:\n{help}"
        );
    }
    let top = binary().arg("--help").output().expect("runs");
    assert!(String::from_utf8_lossy(&top.stdout).contains("serve"));
}

/// The browser demo (served by the server crate, tested in its `tests/demo.rs`) is
/// announced where a user looks for it.
#[test]
fn serve_help_mentions_the_demo() {
    let out = binary().args(["serve", "--help"]).output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("utf-8");
    assert!(help.contains("/demo/"), "{help}");
}

#[test]
fn refuses_a_remote_emulator_and_real_mode_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = binary()
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("CLOUDBASE_AUTH_WECHAT_APPS")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to listen on 0.0.0.0:0"), "{err}");
    assert!(err.contains("--allow-remote-emulator"), "{err}");
    assert!(out.stdout.is_empty(), "nothing listened");

    let out = binary()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--wechat-mode",
            "real",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env_remove("CLOUDBASE_AUTH_WECHAT_APPS")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLOUDBASE_AUTH_WECHAT_APPS"));

    let out = binary()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--access-token-ttl",
            "soon",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));

    let out = binary()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--access-token-ttl",
            "0s",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 1s"));
}

#[tokio::test]
async fn starts_fast_and_prints_its_address_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = BinServer::spawn(&data, &dir.path().join("stderr.log"), &[], &[]);
    let line_after = server.spawned.elapsed();
    let api = server.api();
    let mut first_ok = None;
    while server.spawned.elapsed() < Duration::from_secs(20) {
        if let Ok(r) = api.http.get(format!("{}/healthz", api.base)).send().await
            && r.status() == 200
        {
            first_ok = Some(server.spawned.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let first_ok = first_ok.expect("healthz answered");
    println!(
        "startup: listening line after {} ms, first 200 on /healthz after {} ms",
        line_after.as_millis(),
        first_ok.as_millis()
    );
    let token = server
        .admin_token
        .clone()
        .expect("a generated admin token is printed");
    assert_eq!(token.len(), 43);
    assert_eq!(
        api.get_bearer("/emulator/v1/users", &token).await.status,
        200
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("key-encryption-key")), 0o600);
        assert_eq!(mode(&data.join("auth.db")), 0o600);
    }
    assert!(server.terminate().success());

    // With the admin token in the environment, it is not printed (the console URL is).
    let server = BinServer::spawn(
        &data,
        &dir.path().join("stderr2.log"),
        &[],
        &[(
            "CLOUDBASE_AUTH_ADMIN_TOKEN",
            "admin-token-from-the-environment",
        )],
    );
    assert!(server.admin_token.is_none());
    let api = server.api();
    assert_eq!(
        api.get_bearer("/emulator/v1/users", "admin-token-from-the-environment")
            .await
            .status,
        200
    );
    assert!(server.terminate().success());
}

#[tokio::test]
async fn logs_of_a_full_session_hold_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let app_secret = "app-secret-that-must-not-leak";
    let apps = format!("{APPID}:{app_secret}");
    let server = BinServer::spawn(
        &dir.path().join("data"),
        &dir.path().join("stderr.log"),
        &["--log-format", "json"],
        &[
            ("CLOUDBASE_AUTH_WECHAT_APPS", apps.as_str()),
            ("RUST_LOG", "trace"),
        ],
    );
    let api = server.api();
    let admin = server.admin_token.clone().expect("admin token");
    let mut secrets: Vec<(String, String)> = vec![
        ("admin token".into(), admin.clone()),
        ("app secret".into(), app_secret.into()),
    ];

    let anon = api.sign_in_anonymously().await;
    secrets.push(("access token".into(), anon.str("access_token")));
    secrets.push(("refresh token".into(), anon.str("refresh_token")));
    assert_eq!(api.me(&anon.str("access_token")).await.status, 200);
    let refreshed = api.refresh(&anon.str("refresh_token")).await;
    assert_eq!(
        api.refresh(&anon.str("refresh_token")).await.status,
        200,
        "grace replay"
    );
    secrets.push((
        "refreshed access token".into(),
        refreshed.str("access_token"),
    ));
    secrets.push((
        "rotated refresh token".into(),
        refreshed.str("refresh_token"),
    ));

    // WeChat's own endpoint, with the secret in the query and a session key in the reply.
    let (code, _) = api.mint_code(APPID, Some("o-log-test-user")).await;
    let wx = api
        .get(&format!(
            "/sns/jscode2session?appid={APPID}&secret={app_secret}&js_code={code}&grant_type=authorization_code"
        ))
        .await;
    secrets.push(("wx.login code".into(), code));
    secrets.push(("session_key".into(), wx.str("session_key")));
    // A wrong secret in a query (an error path) must not be logged either.
    let wrong = "wrong-secret-that-must-not-leak";
    api.get(&format!(
        "/sns/jscode2session?appid={APPID}&secret={wrong}&js_code=x&grant_type=authorization_code"
    ))
    .await;
    secrets.push(("wrong secret".into(), wrong.into()));

    let (code, _) = api.mint_code(APPID, Some("o-log-test-user")).await;
    let pt = api.provider_token(APPID, &code).await.str("provider_token");
    secrets.push(("bind code".into(), code));
    secrets.push(("provider token".into(), pt.clone()));
    let bound = api
        .post_bearer(
            "/auth/v1/user/provider/bind",
            &refreshed.str("access_token"),
            &json!({"provider_token": pt}).to_string(),
        )
        .await;
    assert_eq!(bound.status, 200, "{}", bound.text);
    let (code, _) = api.mint_code(APPID, Some("o-log-test-user")).await;
    let pt = api.provider_token(APPID, &code).await.str("provider_token");
    secrets.push(("sign-in code".into(), code));
    secrets.push(("sign-in provider token".into(), pt.clone()));
    let wx_session = api.sign_in_with_provider(&pt).await;
    secrets.push(("wechat access token".into(), wx_session.str("access_token")));
    secrets.push((
        "wechat refresh token".into(),
        wx_session.str("refresh_token"),
    ));
    // Failing calls that echo input in their replies.
    api.refresh("refresh-token-typo-that-must-not-leak").await;
    secrets.push((
        "bad refresh token".into(),
        "refresh-token-typo-that-must-not-leak".into(),
    ));
    api.me("Bearer-garbage-that-must-not-leak").await;
    secrets.push((
        "bad access token".into(),
        "Bearer-garbage-that-must-not-leak".into(),
    ));
    api.get(&format!(
        "/auth/v1/unknown/{}",
        "path-secret-that-must-not-leak"
    ))
    .await;
    secrets.push((
        "unknown path".into(),
        "path-secret-that-must-not-leak".into(),
    ));
    assert_eq!(
        api.get_bearer("/emulator/v1/export", &admin).await.status,
        200
    );
    let revoke = json!({"token": wx_session.str("access_token")}).to_string();
    assert_eq!(
        api.post(&format!("/auth/v1/revoke?client_id={ENV}"), &revoke)
            .await
            .status,
        200
    );
    assert_eq!(
        api.post_bearer(
            "/auth/v1/user/signout",
            &refreshed.str("access_token"),
            "{}"
        )
        .await
        .status,
        200
    );

    let path = server.stderr_path.clone();
    assert!(server.terminate().success());
    let logs = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = logs.lines().collect();
    assert!(lines.len() > 20, "expected request logs, got:\n{logs}");
    for line in &lines {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
    }
    for (what, value) in &secrets {
        assert!(!value.is_empty());
        assert!(
            !logs.contains(value.as_str()),
            "the {what} appears in the logs"
        );
    }
    println!(
        "logs: {} lines, none holds any of {} secrets",
        lines.len(),
        secrets.len()
    );
}

/// Sends a request whose body arrives in two parts, SIGTERM in between: the
/// in-flight request still completes; then the server exports its users and exits 0.
#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exports_for_import() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("users.json");
    let export_arg = export.to_str().unwrap().to_owned();
    let server = BinServer::spawn(
        &dir.path().join("data"),
        &dir.path().join("stderr.log"),
        &["--export-on-exit", &export_arg],
        &[],
    );
    let api = server.api();
    let earlier = api.sign_in_anonymously().await.str("sub");

    let body = b"{}";
    let mut conn = std::net::TcpStream::connect(&server.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "POST /auth/v1/signin/anonymously?client_id={ENV} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(&body[..1]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let pid = server.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    conn.write_all(&body[1..]).unwrap();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&reply).contains("\"groups\"") {
        let n = conn
            .read(&mut chunk)
            .expect("reply to the in-flight request");
        assert!(n > 0, "connection closed without a reply");
        reply.extend_from_slice(&chunk[..n]);
    }
    let reply = String::from_utf8_lossy(&reply).into_owned();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let late_uid = reply
        .split("\"sub\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(server.terminate().success(), "clean exit after SIGTERM");

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    let uids: Vec<&str> = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids.len(), 2);
    assert!(uids.contains(&earlier.as_str()) && uids.contains(&late_uid.as_str()));

    // Import into a fresh data dir.
    let second = BinServer::spawn(
        &dir.path().join("data2"),
        &dir.path().join("stderr2.log"),
        &["--import", export.to_str().unwrap()],
        &[],
    );
    let listed = second
        .api()
        .get_bearer("/emulator/v1/users", second.admin_token.as_deref().unwrap())
        .await;
    assert_eq!(listed.body["users"], doc["users"]);
    assert!(second.terminate().success());
}

/// One session a client holds: its user and the latest refresh token it got a 200 for.
type Sessions = Arc<Mutex<HashMap<usize, (String, String)>>>;

/// What one client acknowledged before the server went away.
#[derive(Default)]
struct Acked {
    sign_ins: usize,
    refreshes: usize,
}

/// One load client: signs in (every third operation) and refreshes its own sessions
/// until the server stops answering, `deadline` passes or `ops` operations are done.
async fn sigkill_client(
    api: common::Api,
    sessions: Sessions,
    acks: Arc<AtomicUsize>,
    mut mine: Vec<usize>,
    first_id: usize,
    ops: usize,
    deadline: Instant,
) -> (Acked, Vec<usize>) {
    let mut acked = Acked::default();
    for op in 0..ops {
        if Instant::now() > deadline {
            break;
        }
        let ok = if op % 3 == 0 || mine.is_empty() {
            let url = format!("{}/auth/v1/signin/anonymously?client_id={ENV}", api.base);
            match api.http.post(url).body("{}").send().await {
                Ok(r) if r.status() == 200 => match r.json::<Value>().await {
                    Ok(v) => {
                        let id = first_id + op;
                        let entry = (
                            v["sub"].as_str().unwrap().to_owned(),
                            v["refresh_token"].as_str().unwrap().to_owned(),
                        );
                        sessions.lock().unwrap().insert(id, entry);
                        mine.push(id);
                        acked.sign_ins += 1;
                        acks.fetch_add(1, Ordering::Relaxed);
                        true
                    }
                    Err(_) => false,
                },
                Ok(r) => panic!("sign-in refused before the crash: {}", r.status()),
                Err(_) => false,
            }
        } else {
            let id = mine[op % mine.len()];
            let token = sessions.lock().unwrap()[&id].1.clone();
            let body =
                json!({"client_id": ENV, "grant_type": "refresh_token", "refresh_token": token});
            let url = format!("{}/auth/v1/token?client_id={ENV}", api.base);
            match api.http.post(url).body(body.to_string()).send().await {
                Ok(r) if r.status() == 200 => match r.json::<Value>().await {
                    Ok(v) => {
                        sessions.lock().unwrap().get_mut(&id).unwrap().1 =
                            v["refresh_token"].as_str().unwrap().to_owned();
                        acked.refreshes += 1;
                        acks.fetch_add(1, Ordering::Relaxed);
                        true
                    }
                    Err(_) => false,
                },
                Ok(r) => panic!("refresh refused before the crash: {}", r.status()),
                Err(_) => false,
            }
        };
        if !ok {
            // The server is gone.
            break;
        }
    }
    (acked, mine)
}

/// Concurrent clients sign in and refresh as fast as the server answers; the server is
/// SIGKILLed mid-burst and restarted on the same data dir, three times. After each
/// restart every user a client got a 200 for exists and every session's latest
/// acknowledged refresh token still refreshes (a refresh in flight at the kill may have
/// rotated it: the grace window then hands out the same successor again).
///
/// Prints acknowledged / lost per run. Built with `--release` (as `./scripts/test.sh`
/// runs it) the clients reach 5,000 to 7,000 sign-ins and refreshes per second on 2
/// cores; a debug build about 1,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_tokens_survive_sigkill() {
    const RUNS: usize = 3;
    const CLIENTS: usize = 32;
    const OPS_PER_CLIENT: usize = 100_000;
    /// Kill once this many operations were acknowledged in the run, or after KILL_AFTER.
    const KILL_AT_ACKS: usize = 6_000;
    const KILL_AFTER: Duration = Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        "--signin-rate-per-ip",
        "0",
        "--signin-rate-per-device",
        "0",
        // Verification after a restart may come a while after the kill.
        "--refresh-grace",
        "120s",
    ];
    let sessions: Sessions = Arc::default();
    let mut owned: Vec<Vec<usize>> = vec![Vec::new(); CLIENTS];
    let mut next_id = 0;
    let mut server = BinServer::spawn(&data, &dir.path().join("stderr0.log"), &args, &[]);
    for run in 1..=RUNS {
        let api = server.api();
        let started = Instant::now();
        let deadline = started + KILL_AFTER + Duration::from_secs(10);
        let acks = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for mine in owned.drain(..) {
            let (api, sessions, acks) = (api.clone(), sessions.clone(), acks.clone());
            let first_id = next_id;
            next_id += OPS_PER_CLIENT;
            tasks.push(tokio::spawn(sigkill_client(
                api,
                sessions,
                acks,
                mine,
                first_id,
                OPS_PER_CLIENT,
                deadline,
            )));
        }
        // Kill mid-burst: once enough was acknowledged, or after a bounded wait.
        while started.elapsed() < KILL_AFTER && acks.load(Ordering::Relaxed) < KILL_AT_ACKS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let pid = server.child.id();
        server.kill();
        let killed_at = started.elapsed();
        let mut acked = Acked::default();
        for t in tasks {
            let (a, mine) = t.await.expect("client task");
            acked.sign_ins += a.sign_ins;
            acked.refreshes += a.refreshes;
            owned.push(mine);
        }

        server = BinServer::spawn(
            &data,
            &dir.path().join(format!("stderr{run}.log")),
            &args,
            &[],
        );
        // Every session ever acknowledged, checked concurrently; the check's own
        // refresh becomes the session's latest token for the next run.
        let all: Vec<(usize, String, String)> = sessions
            .lock()
            .unwrap()
            .iter()
            .map(|(id, (uid, token))| (*id, uid.clone(), token.clone()))
            .collect();
        let api = server.api();
        let mut checks = Vec::new();
        for chunk in all.chunks(all.len().div_ceil(8).max(1)) {
            let (api, sessions, chunk) = (api.clone(), sessions.clone(), chunk.to_vec());
            checks.push(tokio::spawn(async move {
                let mut lost = 0;
                for (id, uid, token) in chunk {
                    let r = api.refresh(&token).await;
                    if r.status != 200 || r.str("sub") != uid {
                        lost += 1;
                        eprintln!("lost session {uid}: {} {}", r.status, r.text);
                    } else {
                        sessions.lock().unwrap().get_mut(&id).unwrap().1 =
                            r.str("refresh_token").to_owned();
                    }
                }
                lost
            }));
        }
        let mut lost = 0;
        for c in checks {
            lost += c.await.expect("check task");
        }
        let secs = killed_at.as_secs_f64().max(0.001);
        println!(
            "durability run {run}: pid {pid} SIGKILLed after {} ms; acknowledged {} sign-ins + {} refreshes ({:.0}/s); {} sessions checked after restart, lost = {lost}",
            killed_at.as_millis(),
            acked.sign_ins,
            acked.refreshes,
            (acked.sign_ins + acked.refreshes) as f64 / secs,
            all.len(),
        );
        assert!(acked.sign_ins > 0, "run {run} acknowledged no sign-in");
        assert_eq!(lost, 0, "run {run} lost acknowledged sessions");
    }
    assert!(server.terminate().success());
}

/// Runs `serve` on `data` with `args`, expecting it to refuse to start: returns its exit
/// code, stdout and stderr. A server that starts instead fails the test.
fn refused_start(data: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = binary()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(args)
        .env_remove("CLOUDBASE_AUTH_ADMIN_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "serve {args:?} started instead of refusing:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The store and the signing key are created together, so each vouches for the other:
/// a store that fails SQLite's integrity check, a store lost next to its key, or a key
/// lost next to a store's users stops the start with the cause, the fix and exit code 3
/// (the data dir needs attention). A key other users may read is served with a warning.
#[tokio::test]
async fn a_damaged_or_lost_store_or_key_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = BinServer::spawn(&data, &dir.path().join("stderr.log"), &[], &[]);
    let signed = server.api().sign_in_anonymously().await;
    assert_eq!(signed.status, 200);
    assert!(server.terminate().success());
    let db = data.join("auth.db");
    // The store holds the signing key sealed with this key-encryption key.
    let kek = data.join("key-encryption-key");
    assert!(
        std::fs::metadata(data.join("auth.db-wal")).map_or(true, |m| m.len() == 0),
        "a clean shutdown leaves everything in auth.db"
    );
    let pristine = std::fs::read(&db).unwrap();
    let restore = || {
        for derived in ["auth.db-wal", "auth.db-shm"] {
            let _ = std::fs::remove_file(data.join(derived));
        }
        std::fs::write(&db, &pristine).unwrap();
    };
    let expect_refusal = |args: &[&str], needles: &[&str]| {
        let (code, stdout, stderr) = refused_start(&data, args);
        assert_eq!(code, Some(3), "{stderr}");
        assert!(stdout.is_empty(), "nothing listened: {stdout}");
        for needle in needles {
            assert!(stderr.contains(needle), "`{needle}` missing from: {stderr}");
        }
    };

    // The store truncated to nothing, then gone: its users would be silently lost.
    let store_gone = ["missing or empty", "--reset-store", db.to_str().unwrap()];
    std::fs::write(&db, b"").unwrap();
    expect_refusal(&[], &store_gone);
    std::fs::remove_file(&db).unwrap();
    expect_refusal(&[], &store_gone);
    // Unless told to start over.
    let fresh = BinServer::spawn(
        &data,
        &dir.path().join("fresh.log"),
        &["--reset-store"],
        &[],
    );
    let api = fresh.api();
    api.me(&signed.str("access_token"))
        .await
        .assert_error(401, "unauthenticated");
    let users = api
        .get_bearer("/emulator/v1/users", fresh.admin_token.as_deref().unwrap())
        .await;
    assert_eq!(users.body["users"], json!([]));
    assert!(fresh.terminate().success());

    // Damage: 200 bytes of noise over the third page, or a smashed file header.
    restore();
    let mut damaged = pristine.clone();
    // The page size is in the file header (bytes 16-17, big-endian).
    let page = usize::from(u16::from_be_bytes([pristine[16], pristine[17]]));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for byte in &mut damaged[2 * page..2 * page + 200] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    std::fs::write(&db, &damaged).unwrap();
    expect_refusal(
        &[],
        &["damaged", "integrity check", "--reset-store", "backup"],
    );
    let mut damaged = pristine.clone();
    damaged[..16].fill(0);
    std::fs::write(&db, &damaged).unwrap();
    expect_refusal(&[], &["damaged", "--reset-store"]);
    // --reset-store never replaces a store that is there, damaged or not.
    expect_refusal(&["--reset-store"], &["damaged"]);
    assert_eq!(std::fs::read(&db).unwrap(), damaged, "left as it was");

    // The key-encryption key gone while the store holds keys sealed with it: no server
    // could sign any more.
    restore();
    let saved_kek = std::fs::read(&kek).unwrap();
    std::fs::remove_file(&kek).unwrap();
    expect_refusal(
        &[],
        &[
            "key-encryption key",
            kek.to_str().unwrap(),
            "missing",
            "--new-signing-key",
        ],
    );
    // Another key-encryption key: refused too, never used to seal over the old keys.
    std::fs::write(&kek, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n").unwrap();
    expect_refusal(&[], &["not the key they were sealed with", "--kek-file"]);
    std::fs::remove_file(&kek).unwrap();
    // Told to, the server seals a new signing key under a new key-encryption key. The
    // old key's public half is still in the store, so its tokens verify until they
    // expire; new tokens carry the new key.
    let rekeyed = BinServer::spawn(
        &data,
        &dir.path().join("rekeyed.log"),
        &["--new-signing-key"],
        &[],
    );
    let api = rekeyed.api();
    assert_eq!(api.me(&signed.str("access_token")).await.status, 200);
    let refreshed = api.refresh(&signed.str("refresh_token")).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let kid = |token: &str| jwt_parts(token).0["kid"].clone();
    assert_ne!(
        kid(&refreshed.str("access_token")),
        kid(&signed.str("access_token"))
    );
    assert_eq!(api.me(&refreshed.str("access_token")).await.status, 200);
    assert!(rekeyed.terminate().success());
    assert_ne!(
        std::fs::read(&kek).unwrap(),
        saved_kek,
        "a new key-encryption key"
    );

    // A key file other users can read: served, with a warning naming the fix.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::write(&kek, &saved_kek).unwrap();
        std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
        restore();
        let open = BinServer::spawn(&data, &dir.path().join("open.log"), &[], &[]);
        assert_eq!(open.api().me(&signed.str("access_token")).await.status, 200);
        let logs = open.stderr();
        assert!(open.terminate().success());
        assert!(
            logs.contains("accessible to other users") && logs.contains("chmod 600"),
            "{logs}"
        );
    }
}

/// `cloudbase-auth keys …` with `args` on `data`: exit code, stdout, stderr.
fn keys(data: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = binary()
        .arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("CLOUDBASE_AUTH_KEK")
        .env_remove("CLOUDBASE_AUTH_KEK_FILE")
        .env_remove("RUST_LOG")
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn jwks_kids(api: &common::Api) -> Vec<String> {
    let r = api.get("/.well-known/jwks.json").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

#[tokio::test]
async fn keys_rotate_reaches_a_running_server() {
    let (code, help, _) = keys(std::path::Path::new("."), &["rotate", "--help"]);
    assert_eq!(code, Some(0));
    for needle in [
        "--publish-delay",
        "published",
        "retired",
        "--data-dir",
        "--kek-file",
    ] {
        assert!(help.contains(needle), "`{needle}` missing from: {help}");
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, _, stderr) = keys(&data, &["list"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no store"), "{stderr}");

    let server = BinServer::spawn(
        &data,
        &dir.path().join("stderr.log"),
        &["--key-refresh", "1s", "--access-token-ttl", "3s"],
        &[],
    );
    let api = server.api();
    let signed = api.sign_in_anonymously().await;
    let token = signed.str("access_token");
    let old_kid = jwt_parts(&token).0["kid"].as_str().unwrap().to_owned();
    let (code, listed, stderr) = keys(&data, &["list"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        listed.contains(&old_kid) && listed.contains("signing"),
        "{listed}"
    );

    let (code, rotated, stderr) = keys(&data, &["rotate", "--publish-delay", "1s"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        rotated.contains("added signing key") && rotated.contains("pending"),
        "{rotated}"
    );
    // The running server publishes the new key within its key refresh.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut kids = jwks_kids(&api).await;
    while kids.len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        kids = jwks_kids(&api).await;
    }
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(kids.contains(&old_kid));
    assert_eq!(api.me(&token).await.status, 200, "the old token verifies");
    // Signing with the new key after the delay.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let refreshed = api.refresh(&signed.str("refresh_token")).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let new_token = refreshed.str("access_token");
    let new_kid = jwt_parts(&new_token).0["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert!(kids.contains(&new_kid));
    assert_eq!(api.me(&new_token).await.status, 200);
    // One access-token lifetime (3 s) after its retirement the old key is gone.
    let deadline = Instant::now() + Duration::from_secs(8);
    while jwks_kids(&api).await.len() > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(jwks_kids(&api).await, vec![new_kid]);
    assert!(server.terminate().success());
}
