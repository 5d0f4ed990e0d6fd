//! Test helpers of the binary's tests: the built `cloudbase-auth` spawned as
//! `serve` on 127.0.0.1:0 with its own data dir. The HTTP client is the server crate's
//! (`cloudbase_auth_server::testing`).
#![allow(dead_code, reason = "each test crate uses a different subset")]

pub(crate) use cloudbase_auth_server::testing::{APPID, Api, ENV};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
