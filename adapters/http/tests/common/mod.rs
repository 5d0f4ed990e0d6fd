//! Test helpers shared by the integration tests: a server started in-process on
//! 127.0.0.1:0 with its own data dir, the built binary spawned the same way, and small
//! HTTP wrappers. Every server a test starts is stopped by the test (or on drop).
#![allow(dead_code, reason = "each test crate uses a different subset")]

use cloudbase_auth_http::server::{ServeConfig, Server};
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const ENV: &str = "test-env-1a2b";
pub(crate) const APPID: &str = "wx0123456789abcdef";

/// A reply: status, headers and parsed JSON body (`Value::Null` if not JSON).
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string `{field}` in {}", self.text))
            .to_owned()
    }

    /// Asserts a CloudBase error reply.
    pub(crate) fn assert_error(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["error"], error, "{}", self.text);
        assert!(
            self.body["error_code"].as_i64().is_some_and(|c| c != 0),
            "{}",
            self.text
        );
        assert!(self.body["error_description"].is_string(), "{}", self.text);
    }
}

/// A plain HTTP client bound to one base URL.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
}

impl Api {
    pub(crate) fn new(base: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self { base, http }
    }

    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub(crate) async fn post(&self, path: &str, body: &str) -> Reply {
        // No content type, like the browser SDK (which ends up as text/plain).
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .body(body.to_owned()),
        )
        .await
    }

    pub(crate) async fn post_bearer(&self, path: &str, token: &str, body: &str) -> Reply {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("authorization", format!("Bearer {token}"))
                .body(body.to_owned()),
        )
        .await
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub(crate) async fn get_bearer(&self, path: &str, token: &str) -> Reply {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .header("authorization", format!("Bearer {token}")),
        )
        .await
    }

    pub(crate) async fn sign_in_anonymously(&self) -> Reply {
        self.post(
            &format!("/auth/v1/signin/anonymously?client_id={ENV}"),
            "{}",
        )
        .await
    }

    pub(crate) async fn refresh(&self, refresh_token: &str) -> Reply {
        let body = json!({"client_id": ENV, "client_secret": "", "grant_type": "refresh_token",
                          "refresh_token": refresh_token});
        self.post(
            &format!("/auth/v1/token?client_id={ENV}"),
            &body.to_string(),
        )
        .await
    }

    pub(crate) async fn me(&self, access_token: &str) -> Reply {
        self.get_bearer("/auth/v1/user/me", access_token).await
    }

    /// `wx.login` through the emulator: returns (code, openid).
    pub(crate) async fn mint_code(&self, appid: &str, openid: Option<&str>) -> (String, String) {
        let mut body = json!({"appid": appid});
        if let Some(o) = openid {
            body["openid"] = json!(o);
        }
        let r = self
            .post("/emulator/v1/wechat/login-code", &body.to_string())
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        (r.str("code"), r.str("openid"))
    }

    pub(crate) async fn provider_token(&self, appid: &str, code: &str) -> Reply {
        let body = json!({"provider_id": appid, "provider_code": code,
                          "provider_params": {"provider_code_type": "open_id", "appid": appid}});
        self.post(
            &format!("/auth/v1/provider/token?client_id={ENV}"),
            &body.to_string(),
        )
        .await
    }

    /// Mints a code for `openid` and exchanges it: the provider token.
    pub(crate) async fn wechat_provider_token(&self, openid: &str) -> String {
        let (code, _) = self.mint_code(APPID, Some(openid)).await;
        let r = self.provider_token(APPID, &code).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.str("provider_token")
    }

    pub(crate) async fn sign_in_with_provider(&self, provider_token: &str) -> Reply {
        self.post(
            &format!("/auth/v1/signin/with/provider?client_id={ENV}"),
            &json!({"provider_token": provider_token}).to_string(),
        )
        .await
    }
}

/// A server running in this process, with its own temporary data dir.
pub(crate) struct TestServer {
    pub(crate) api: Api,
    pub(crate) server: Option<Server>,
    pub(crate) dir: tempfile::TempDir,
}

impl TestServer {
    /// Defaults for tests: loopback port 0, fresh data dir.
    pub(crate) fn config(dir: &Path) -> ServeConfig {
        let mut config = ServeConfig::new(dir.join("data"));
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config
    }

    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        Self::start_in(tempfile::tempdir().expect("tempdir"), tweak).await
    }

    /// A server on `dir/data` (which may hold an earlier server's data).
    pub(crate) async fn start_in(
        dir: tempfile::TempDir,
        tweak: impl FnOnce(&mut ServeConfig),
    ) -> Self {
        let mut config = Self::config(dir.path());
        tweak(&mut config);
        let server = Server::start(config).await.expect("server starts");
        let api = Api::new(format!("http://{}", server.local_addr()));
        Self {
            api,
            server: Some(server),
            dir,
        }
    }

    /// Stops this server and starts another on the same data dir with `tweak`.
    pub(crate) async fn restart_with(self, tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        let Self { server, dir, .. } = self;
        if let Some(server) = server {
            server.shutdown().await.expect("clean shutdown");
        }
        Self::start_in(dir, tweak).await
    }

    /// How many rows `table` of the store holds (read through a connection of its own).
    pub(crate) async fn count_rows(&self, table: &str) -> i64 {
        use sqlx::ConnectOptions as _;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(
                self.data_dir()
                    .join(cloudbase_auth_http::server::store::DB_FILE),
            )
            .read_only(true);
        let mut conn = options.connect().await.expect("store opens read-only");
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .expect("count");
        n
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn admin_token(&self) -> String {
        self.server
            .as_ref()
            .and_then(|s| s.admin_token())
            .expect("emulated mode has an admin token")
            .to_owned()
    }

    pub(crate) async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }
}

/// The built `cloudbase-auth` binary, running `serve` on 127.0.0.1:0.
pub(crate) struct BinServer {
    pub(crate) child: Child,
    pub(crate) addr: String,
    pub(crate) admin_token: Option<String>,
    pub(crate) stderr_path: PathBuf,
    /// When the process was spawned.
    pub(crate) spawned: Instant,
}

pub(crate) fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cloudbase-auth"))
}

impl BinServer {
    /// Spawns `cloudbase-auth serve --listen 127.0.0.1:0 --data-dir DIR ARGS…` with
    /// `envs`, waits for the startup line, and sends stderr to `stderr_path`.
    pub(crate) fn spawn(
        data_dir: &Path,
        stderr_path: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let stderr = std::fs::File::create(stderr_path).expect("stderr file");
        let mut cmd = binary();
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env_remove("CLOUDBASE_AUTH_ADMIN_TOKEN")
            .env_remove("CLOUDBASE_AUTH_WECHAT_APPS")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let spawned = Instant::now();
        let mut child = cmd.spawn().expect("binary spawns");
        let stdout = child.stdout.take().expect("stdout piped");
        // Read the startup lines on a thread so a stuck server fails the test, not hangs it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "no startup line; stderr: {}",
                    std::fs::read_to_string(stderr_path).unwrap_or_default()
                )
            });
        let addr = first
            .strip_prefix("cloudbase-auth listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        let admin_token = rx
            .recv_timeout(Duration::from_millis(500))
            .ok()
            .and_then(|l| l.strip_prefix("admin token: ").map(str::to_owned));
        Self {
            child,
            addr,
            admin_token,
            stderr_path: stderr_path.to_owned(),
            spawned,
        }
    }

    pub(crate) fn api(&self) -> Api {
        Api::new(format!("http://{}", self.addr))
    }

    /// SIGTERM, then wait (bounded) for a clean exit; returns the exit status.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub(crate) fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for BinServer {
    fn drop(&mut self) {
        // Never leave a server behind, even when a test fails.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
