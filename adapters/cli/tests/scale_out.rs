//! Several `cloudbase-auth serve --database postgres://…` instances on one PostgreSQL
//! database behind Debian's nginx (round-robin), all real processes started here on
//! loopback ports: tokens and codes work across instances, concurrent refreshes of one
//! token on different instances leave one live refresh token per family, and no
//! acknowledged sign-in or refresh is lost when an instance is SIGKILLed or PostgreSQL
//! stops for a few seconds under load.
//!
//! The instances share the signing key file of one data dir (the same `--data-dir`,
//! which a PostgreSQL-backed server does not lock): a token one of them signs verifies
//! on all.

mod common;

use cloudbase_auth_server::testing::{Api, PgCluster, Reply};
use common::{BinServer, ENV};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "scale-out-admin-token-0123456789";

/// `serve` flags of every instance: no sign-in rate limit (the load comes from one
/// IP), and a grace window longer than any test, so a client that never received the
/// reply to a committed refresh gets the same successor when it retries.
const INSTANCE_FLAGS: &[&str] = &[
    "--signin-rate-per-ip",
    "0",
    "--signin-rate-per-device",
    "0",
    "--refresh-grace",
    "120s",
];

/// Starts `n` instances on `database` sharing `data_dir`, at once (the first start
/// races on the migrations and on creating the signing key).
fn instances(n: usize, database: &str, data_dir: &Path, logs: &Path) -> Vec<BinServer> {
    instances_with(n, database, data_dir, logs, &[])
}

/// [`instances`] with more `serve` flags.
fn instances_with(
    n: usize,
    database: &str,
    data_dir: &Path,
    logs: &Path,
    more: &[&'static str],
) -> Vec<BinServer> {
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (database, data_dir) = (database.to_owned(), data_dir.to_owned());
            let log = logs.join(format!("instance-{i}.log"));
            let more = more.to_vec();
            std::thread::spawn(move || {
                let mut args = vec!["--database", database.as_str()];
                args.extend_from_slice(INSTANCE_FLAGS);
                args.extend_from_slice(&more);
                BinServer::spawn(
                    &data_dir,
                    &log,
                    &args,
                    &[("CLOUDBASE_AUTH_ADMIN_TOKEN", ADMIN_TOKEN)],
                )
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Debian's nginx as a round-robin balancer in front of `upstreams`, on a free loopback
/// port, with its config, pid, logs and temp files in a temp dir; stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(upstreams: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let servers: String = upstreams
            .iter()
            .map(|u| format!("server {u} max_fails=0;\n"))
            .collect();
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        // As root, nginx's workers would switch to `nobody`, who cannot use this dir.
        let user = if root { "user root;" } else { "" };
        let conf = format!(
            "{user}
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream auth {{
    {servers}
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://auth;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_next_upstream error timeout;
      proxy_connect_timeout 2s;
      proxy_read_timeout 30s;
    }}
  }}
}}
"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("nginx is installed (scripts/setup.sh installs Debian's nginx)");
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts");
        // Bounded wait for the port.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    fn api(&self) -> Api {
        Api::new(format!("http://127.0.0.1:{}", self.port))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(None) = self.child.try_wait() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
    }
}

/// A database of the shared cluster, as a `--database` URL string.
fn database(cluster: &PgCluster) -> (String, String) {
    let url = cluster.new_database();
    let name = url.expose().rsplit('/').next().unwrap().to_owned();
    (url.expose().to_owned(), name)
}

/// Every uid the store holds (the admin route of any instance).
async fn stored_uids(api: &Api) -> HashSet<String> {
    let r = api.get_bearer("/emulator/v1/users", ADMIN_TOKEN).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            assert_eq!(u["env"], ENV);
            u["uid"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn uid_of(reply: &Reply) -> String {
    let token = reply.str("access_token");
    let (_, claims) = cloudbase_auth_server::testing::jwt_parts(&token);
    claims["sub"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_share_tokens_codes_and_rotation_behind_nginx() {
    let cluster = PgCluster::shared();
    let (url, db) = database(cluster);
    let dir = tempfile::tempdir().unwrap();
    let servers = instances(3, &url, &dir.path().join("data"), dir.path());
    let apis: Vec<Api> = servers.iter().map(BinServer::api).collect();
    let addrs: Vec<&str> = servers.iter().map(|s| s.addr.as_str()).collect();
    let nginx = Nginx::start(&addrs);
    let lb = nginx.api();

    // A token minted by one instance works on the others.
    let signed = apis[0].sign_in_anonymously().await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    let access = signed.str("access_token");
    for api in &apis[1..] {
        let me = api.me(&access).await;
        assert_eq!(me.status, 200, "{}", me.text);
        assert_eq!(me.str("sub"), uid_of(&signed));
    }
    // The JWKS is the same everywhere (one shared key).
    let jwks: Vec<Value> = futures_join(apis.iter().map(|a| a.get("/.well-known/jwks.json"))).await;
    assert!(jwks.windows(2).all(|w| w[0] == w[1]));

    // A WeChat code minted through one instance is redeemed once, on any instance.
    for round in 0..5 {
        let (code, _) = apis[round % 3].mint_code(common::APPID, None).await;
        let (a, b) = tokio::join!(
            apis[(round + 1) % 3].provider_token(common::APPID, &code),
            apis[(round + 2) % 3].provider_token(common::APPID, &code)
        );
        let ok = [&a, &b].iter().filter(|r| r.status == 200).count();
        assert_eq!(ok, 1, "one redemption succeeds: {} / {}", a.text, b.text);
        let refused = if a.status == 200 { &b } else { &a };
        refused.assert_error(400, "invalid_grant");
    }

    // Concurrent refreshes of the same token, sent to different instances: all get the
    // same successor, and each family ends with exactly one live refresh token.
    const FAMILIES: usize = 12;
    const ROUNDS: usize = 3;
    let mut tokens = Vec::new();
    for _ in 0..FAMILIES {
        let r = lb.sign_in_anonymously().await;
        assert_eq!(r.status, 200, "{}", r.text);
        tokens.push(r.str("refresh_token"));
    }
    for _ in 0..ROUNDS {
        let mut next = Vec::new();
        for token in &tokens {
            let (a, b, c) = tokio::join!(
                apis[0].refresh(token),
                apis[1].refresh(token),
                apis[2].refresh(token)
            );
            for r in [&a, &b, &c] {
                assert_eq!(r.status, 200, "{}", r.text);
            }
            let successor = a.str("refresh_token");
            assert_eq!(b.str("refresh_token"), successor);
            assert_eq!(c.str("refresh_token"), successor);
            next.push(successor);
        }
        tokens = next;
    }
    // Per live family (these and the first sign-in's), how many unrotated tokens.
    let live = cluster
        .psql_on(
            &db,
            "SELECT string_agg(live::text, ',') FROM (
               SELECT COUNT(*) FILTER (WHERE rt.rotated_at IS NULL) AS live
               FROM families f JOIN refresh_tokens rt ON rt.family = f.id
               WHERE f.revoked_at IS NULL GROUP BY f.id) per_family",
        )
        .unwrap();
    assert_eq!(
        live,
        vec!["1"; FAMILIES + 1].join(","),
        "live tokens per family"
    );
    // The live one is the latest successor, on every instance.
    for (i, token) in tokens.iter().enumerate() {
        let r = apis[i % 3].refresh(token).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    drop(nginx);
    for s in servers {
        assert!(s.terminate().success());
    }
}

async fn futures_join<F: std::future::Future<Output = Reply>>(
    replies: impl Iterator<Item = F>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for r in replies {
        out.push(r.await.body);
    }
    out
}

/// What a load run acknowledged: per family, the uid and the latest refresh token the
/// client received; and the counts.
#[derive(Default)]
struct Acked {
    families: HashMap<usize, (String, String)>,
    sign_ins: usize,
    refreshes: usize,
    /// Status → count of the failed requests.
    failures: HashMap<u16, usize>,
    /// Failed replies that were not CloudBase error bodies.
    bad_bodies: Vec<String>,
    slowest_failure: Duration,
}

/// `workers` clients through `api` until `stop` is set or `max_ops` requests each:
/// sign in anonymously, then refresh with the latest acknowledged token; a failed
/// request is retried with the same token.
async fn load(
    api: Api,
    workers: usize,
    max_ops: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Acked {
    let acked = Arc::new(Mutex::new(Acked::default()));
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (api, acked, stop) = (api.clone(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                let mut family: Option<(usize, String, String)> = None;
                let mut n = 0;
                for op in 0..max_ops {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    // Every 8th operation starts a new family.
                    let started = Instant::now();
                    let reply = match &family {
                        Some((_, _, token)) if op % 8 != 0 => api.refresh(token).await,
                        _ => api.sign_in_anonymously().await,
                    };
                    let failed = {
                        let mut a = acked.lock().unwrap();
                        if reply.status == 200 {
                            let token = reply.str("refresh_token");
                            match &mut family {
                                Some((id, uid, latest)) if op % 8 != 0 => {
                                    *latest = token.clone();
                                    a.families.insert(*id, (uid.clone(), token));
                                    a.refreshes += 1;
                                }
                                _ => {
                                    let id = w * 1_000_000 + n;
                                    n += 1;
                                    let uid = uid_of(&reply);
                                    a.families.insert(id, (uid.clone(), token.clone()));
                                    family = Some((id, uid, token));
                                    a.sign_ins += 1;
                                }
                            }
                        } else {
                            *a.failures.entry(reply.status).or_default() += 1;
                            a.slowest_failure = a.slowest_failure.max(started.elapsed());
                            let cloudbase = reply.body["error"].is_string()
                                && reply.body["error_code"].is_i64()
                                && reply.body["error_description"].is_string();
                            if !cloudbase && reply.status != 502 {
                                a.bad_bodies
                                    .push(format!("{} {}", reply.status, reply.text));
                            }
                        }
                        reply.status != 200
                    };
                    if failed {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap()
}

/// After a run: every acknowledged user exists, and the latest acknowledged refresh
/// token of every family refreshes. Returns how many were lost (0 expected).
async fn lost_writes(api: &Api, acked: &Acked) -> (usize, usize) {
    let uids = stored_uids(api).await;
    let lost_users = acked
        .families
        .values()
        .map(|(uid, _)| uid)
        .collect::<HashSet<_>>()
        .into_iter()
        .filter(|uid| !uids.contains(*uid))
        .count();
    let mut dead = 0;
    for (uid, token) in acked.families.values() {
        let r = api.refresh(token).await;
        if r.status != 200 {
            eprintln!("family of {uid}: {}", r.text);
            dead += 1;
        }
    }
    (lost_users, dead)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_an_instance_under_load_loses_no_acknowledged_write() {
    let cluster = PgCluster::shared();
    let (url, _) = database(cluster);
    let dir = tempfile::tempdir().unwrap();
    let mut servers = instances(3, &url, &dir.path().join("data"), dir.path());
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    let nginx = Nginx::start(&addrs.iter().map(String::as_str).collect::<Vec<_>>());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let run = tokio::spawn(load(nginx.api(), 8, 400, stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let victim = servers.remove(1);
    victim.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the load run ends")
        .unwrap();
    eprintln!(
        "kill under load: {} sign-ins and {} refreshes acknowledged, failures {:?}",
        acked.sign_ins, acked.refreshes, acked.failures
    );
    assert!(acked.sign_ins > 10 && acked.refreshes > 10, "the load ran");
    assert!(acked.bad_bodies.is_empty(), "{:?}", acked.bad_bodies);
    let (lost_users, dead_families) = lost_writes(&servers[0].api(), &acked).await;
    assert_eq!(
        (lost_users, dead_families),
        (0, 0),
        "acknowledged writes lost"
    );
    // The survivors keep serving through the balancer.
    assert_eq!(nginx.api().sign_in_anonymously().await.status, 200);
    drop(nginx);
    for s in servers {
        assert!(s.terminate().success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_under_load_answers_503_then_recovers() {
    let cluster = PgCluster::start().expect("PostgreSQL starts");
    let (url, _) = database(&cluster);
    let dir = tempfile::tempdir().unwrap();
    let servers = instances(2, &url, &dir.path().join("data"), dir.path());
    let addrs: Vec<&str> = servers.iter().map(|s| s.addr.as_str()).collect();
    let nginx = Nginx::start(&addrs);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let run = tokio::spawn(load(nginx.api(), 6, 2_000, stop.clone()));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cluster.stop_server().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // While it is down: a request gets a 503 with the CloudBase error body, quickly.
    let down = nginx.api().sign_in_anonymously().await;
    down.assert_error(503, "unavailable");
    cluster.start_server().unwrap();
    // Back by itself: a sign-in succeeds within a few seconds, without a restart.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = nginx.api().sign_in_anonymously().await;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "service did not come back: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the load run ends")
        .unwrap();
    eprintln!(
        "database stop under load: {} sign-ins and {} refreshes acknowledged, failures {:?}, \
         slowest failure {:?}",
        acked.sign_ins, acked.refreshes, acked.failures, acked.slowest_failure
    );
    assert!(
        acked.failures.get(&503).copied().unwrap_or(0) > 0,
        "the outage was seen"
    );
    assert!(
        acked.failures.keys().all(|s| *s == 503),
        "only 503s while the database is down: {:?}",
        acked.failures
    );
    assert!(acked.bad_bodies.is_empty(), "{:?}", acked.bad_bodies);
    assert!(
        acked.slowest_failure < Duration::from_secs(15),
        "failures answered within the request timeout"
    );
    let (lost_users, dead_families) = lost_writes(&servers[0].api(), &acked).await;
    assert_eq!(
        (lost_users, dead_families),
        (0, 0),
        "acknowledged writes lost"
    );
    drop(nginx);
    for s in servers {
        assert!(s.terminate().success());
    }
}

async fn jwks_kids(api: &Api) -> Vec<String> {
    let r = api.get("/.well-known/jwks.json").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    let (header, _) = cloudbase_auth_server::testing::jwt_parts(token);
    header["kid"].as_str().unwrap().to_owned()
}

/// Waits (bounded) until every instance's JWKS lists exactly `want` keys.
async fn jwks_converge(apis: &[Api], want: usize) -> Vec<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut all = Vec::new();
        for api in apis {
            all.push(jwks_kids(api).await);
        }
        if all.iter().all(|k| k.len() == want) || Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `cloudbase-auth keys rotate --database …` reaches every instance: both publish the
/// new key, a token signed before verifies on all of them, tokens of the new key too,
/// and one access-token lifetime after the old key's retirement only the new one is
/// left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_reaches_every_instance() {
    let (url, _) = database(PgCluster::shared());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let servers = instances_with(
        2,
        &url,
        &data,
        dir.path(),
        &["--key-refresh", "1s", "--access-token-ttl", "3s"],
    );
    let apis: Vec<Api> = servers.iter().map(BinServer::api).collect();
    let signed = apis[0].sign_in_anonymously().await;
    let old_token = signed.str("access_token");
    let old_kid = kid_of(&old_token);
    assert_eq!(
        jwks_converge(&apis, 1).await,
        vec![vec![old_kid.clone()]; 2]
    );

    let out = common::binary()
        .args([
            "keys",
            "rotate",
            "--publish-delay",
            "1s",
            "--database",
            &url,
        ])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("added signing key"), "{stdout}");
    let both = jwks_converge(&apis, 2).await;
    assert!(
        both.iter()
            .all(|kids| kids.len() == 2 && kids.contains(&old_kid)),
        "{both:?}"
    );
    for api in &apis {
        assert_eq!(
            api.me(&old_token).await.status,
            200,
            "the old token verifies"
        );
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let refreshed = apis[1].refresh(&signed.str("refresh_token")).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let new_token = refreshed.str("access_token");
    let new_kid = kid_of(&new_token);
    assert_ne!(new_kid, old_kid);
    for api in &apis {
        assert_eq!(
            api.me(&new_token).await.status,
            200,
            "the new token verifies"
        );
    }
    assert_eq!(jwks_converge(&apis, 1).await, vec![vec![new_kid]; 2]);
    for s in servers {
        assert!(s.terminate().success());
    }
}

/// The password of a `--database` URL (flag or environment) never reaches stderr,
/// stdout or `--help`.
#[test]
fn database_passwords_never_appear() {
    const SECRET: &str = "s3cret-pg-password";
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: the start fails, naming the URL redacted.
    let url = format!("postgres://auth:{SECRET}@127.0.0.1:1/auth");
    for (args, envs) in [
        (vec!["--database", url.as_str()], vec![]),
        (vec![], vec![("CLOUDBASE_AUTH_DATABASE", url.as_str())]),
    ] {
        let out = common::binary()
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(&args)
            .envs(envs)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(
            text.contains("postgres://auth:***@127.0.0.1:1/auth"),
            "{text}"
        );
    }
    let help = common::binary()
        .args(["serve", "--help"])
        .env("CLOUDBASE_AUTH_DATABASE", &url)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("CLOUDBASE_AUTH_DATABASE"), "{help}");
    assert!(!help.contains(SECRET), "{help}");
    // A server that starts logs its database redacted too.
    let cluster = PgCluster::shared();
    let db = cluster.new_database();
    let with_password = db
        .expose()
        .replace("postgres@", &format!("postgres:{SECRET}@"));
    let s = BinServer::spawn(
        &dir.path().join("data"),
        &dir.path().join("serve.log"),
        &["--database", &with_password],
        &[],
    );
    let stderr = s.stderr();
    assert!(s.terminate().success());
    assert!(!stderr.contains(SECRET), "{stderr}");
    assert!(stderr.contains("postgres:***@"), "{stderr}");
}

/// Moving over: the users of a SQLite data dir, exported, imported into a
/// PostgreSQL-backed server with `--import`, keep their uids and identities.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_export_imports_into_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export.json");
    let sqlite = BinServer::spawn(
        &dir.path().join("sqlite"),
        &dir.path().join("sqlite.log"),
        &["--export-on-exit", export.to_str().unwrap()],
        &[("CLOUDBASE_AUTH_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    let api = sqlite.api();
    let anonymous = uid_of(&api.sign_in_anonymously().await);
    let provider = api.wechat_provider_token("o-moving-over").await;
    let wechat = api.sign_in_with_provider(&provider).await;
    assert_eq!(wechat.status, 200, "{}", wechat.text);
    let wechat = uid_of(&wechat);
    assert!(sqlite.terminate().success());

    let (url, _) = database(PgCluster::shared());
    let pg = BinServer::spawn(
        &dir.path().join("pg"),
        &dir.path().join("pg.log"),
        &["--database", &url, "--import", export.to_str().unwrap()],
        &[("CLOUDBASE_AUTH_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    let api = pg.api();
    let uids = stored_uids(&api).await;
    assert_eq!(uids, HashSet::from([anonymous, wechat.clone()]));
    // The WeChat user signs in again as the same user.
    let provider = api.wechat_provider_token("o-moving-over").await;
    let again = api.sign_in_with_provider(&provider).await;
    assert_eq!(uid_of(&again), wechat);
    let me = api.me(&again.str("access_token")).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["sub"], json!(wechat));
    assert!(pg.terminate().success());
}
