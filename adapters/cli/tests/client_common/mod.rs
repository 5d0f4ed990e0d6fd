//! Helpers shared by the client tests: the real server binary on `127.0.0.1:0`, the
//! client commands run as a user would type them, and a counting TCP relay that tells
//! how many refresh requests reached the server.

#![allow(dead_code, unreachable_pub)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The `cloudbase-auth` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_cloudbase-auth");
/// The env id the tests use.
pub const ENV: &str = "client-test";

/// `cloudbase-auth serve` on a free loopback port, killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Server {
    /// Starts the server with `extra` arguments and waits for its
    /// `cloudbase-auth listening on http://ADDR` line.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_on("127.0.0.1:0", data_dir, extra)
    }

    /// Like [`Server::start`], listening on `listen` (to restart on the same address).
    pub fn start_on(listen: &str, data_dir: &Path, extra: &[&str]) -> Server {
        let log = data_dir.with_extension("log");
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env_remove("CLOUDBASE_AUTH_ADMIN_TOKEN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start cloudbase-auth serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let url = first
            .trim()
            .strip_prefix("cloudbase-auth listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {first:?}; log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .to_owned();
        // Keep draining stdout so the server never blocks on a full pipe.
        thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        Server {
            child,
            url,
            data_dir: data_dir.to_owned(),
            log,
        }
    }

    /// Stops the server at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A client profile directory and the server URL its commands use.
pub struct Profile {
    pub dir: PathBuf,
    pub server: String,
}

impl Profile {
    pub fn new(dir: PathBuf, server: &str) -> Profile {
        Profile {
            dir,
            server: server.to_owned(),
        }
    }

    /// The snapshot file of [`ENV`] on this profile's server.
    pub fn file(&self) -> PathBuf {
        let name = cloudbase_auth_client::FileStore::file_name(&self.server, ENV)
            .expect("a valid server URL");
        self.dir.join(name)
    }

    /// Where a refused snapshot is kept.
    pub fn corrupt_file(&self) -> PathBuf {
        let mut name = self.file().into_os_string();
        name.push(".corrupt");
        PathBuf::from(name)
    }

    /// The command line `cloudbase-auth ARGS --server URL --env ENV --profile-dir DIR`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .args(["--server", &self.server, "--env", ENV, "--profile-dir"])
            .arg(&self.dir)
            .env_remove("CLOUDBASE_AUTH_SERVER")
            .env_remove("CLOUDBASE_AUTH_ENV")
            .env_remove("CLOUDBASE_AUTH_PROFILE_DIR")
            .stdin(Stdio::null());
        c
    }

    /// Runs a command to the end.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run cloudbase-auth"))
    }
}

/// A finished command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "exit code; {self:#?}");
        self
    }

    /// The value of a `name:   value` line of stdout.
    #[track_caller]
    pub fn field(&self, name: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no `{name}:` line in {:?}", self.stdout))
            .trim()
            .to_owned()
    }
}

/// A TCP relay in front of the server that counts the requests whose request line
/// starts with `needle` (for example `POST /auth/v1/token?`). Clients talk to
/// [`Relay::url`]; every byte is forwarded both ways unchanged.
pub struct Relay {
    pub url: String,
    hits: Arc<AtomicUsize>,
}

impl Relay {
    pub fn start(upstream_url: &str, needle: &'static str) -> Relay {
        let upstream = upstream_url
            .strip_prefix("http://")
            .expect("http upstream")
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let counter = counter.clone();
                thread::spawn(move || pipe(client, server, Some((needle, counter))));
                thread::spawn(move || pipe(s2, c2, None));
            }
        });
        Relay { url, hits }
    }

    /// Requests seen so far that matched the needle.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Copies `from` → `to` until EOF, counting `needle` across chunk boundaries.
fn pipe(mut from: TcpStream, mut to: TcpStream, count: Option<(&str, Arc<AtomicUsize>)>) {
    let mut buf = [0u8; 8192];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((needle, hits)) = &count {
            let needle = needle.as_bytes();
            tail.extend_from_slice(&buf[..n]);
            let found = tail.windows(needle.len()).filter(|w| *w == needle).count();
            hits.fetch_add(found, Ordering::SeqCst);
            // Keep only what could start a match split across reads.
            let keep = tail.len().min(needle.len() - 1);
            tail.drain(..tail.len() - keep);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Waits until `f` holds (polling), up to `limit`.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Mints a `wx.login` code for `openid` through the server's emulator endpoint (what a
/// test's stand-in `wx.login` does).
pub async fn mint_code(server: &str, appid: &str, openid: &str) -> String {
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{server}/emulator/v1/wechat/login-code"))
        .json(&serde_json::json!({ "appid": appid, "openid": openid }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["code"].as_str().unwrap().to_owned()
}
