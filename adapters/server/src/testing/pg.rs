//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory (as the
//! `postgres` user when running as root: PostgreSQL refuses to run as root), started
//! with `pg_ctl` on a free loopback port with its socket in that directory, one database
//! per test (`CREATE DATABASE`), stopped and removed at the end.
//!
//! The cluster is driven by a small guard shell process whose stdin is a pipe from the
//! test process: when the test process ends — normally, by a panic, or killed — the pipe
//! closes and the guard stops the cluster and removes its directory. So even the one
//! cluster a whole test binary shares ([`PgCluster::shared`], a `static` that is never
//! dropped) never outlives its tests.
//!
//! Tests run against PostgreSQL when [`BACKEND_ENV`] is `postgres`; then a cluster that
//! cannot start fails the test (never a silent skip).

use crate::config::DatabaseUrl;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// `CLOUDBASE_AUTH_TEST_BACKEND=postgres` runs [`super::TestServer`]s on PostgreSQL.
pub const BACKEND_ENV: &str = "CLOUDBASE_AUTH_TEST_BACKEND";

/// Whether this test process runs its servers on PostgreSQL ([`BACKEND_ENV`]).
pub fn postgres_backend() -> bool {
    match std::env::var(BACKEND_ENV).as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("{BACKEND_ENV}={other}: expected `sqlite` or `postgres`"),
    }
}

/// The guard: initdb, start, report `ready`, wait for stdin to close, stop, remove.
/// Arguments: directory, port, PostgreSQL bin dir, and the command prefix that runs a
/// program as the cluster's owner (empty, or `runuser -u postgres --`).
const GUARD: &str = r#"
set -eu
dir=$1; port=$2; bin=$3; shift 3
"$@" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1
# fsync off: a test cluster's durability across power loss is not what tests check, and
# CI time is (synchronous_commit stays on: commits still wait for their WAL write).
"$@" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400" \
  start >/dev/null
echo ready
cat >/dev/null || true
"$@" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
rm -rf "$dir"
"#;

/// A running throwaway cluster (see the module docs).
#[derive(Debug)]
pub struct PgCluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    as_owner: Vec<String>,
    guard: Mutex<Option<(Child, ChildStdin)>>,
}

/// The newest `/usr/lib/postgresql/*/bin` (Debian's layout), or `PG_BIN`.
fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| {
            format!("PostgreSQL is not installed (/usr/lib/postgresql: {e}); run scripts/setup.sh")
        })?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no /usr/lib/postgresql/*/bin/initdb; run scripts/setup.sh".to_owned())
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl PgCluster {
    /// Starts a new cluster of this test's own (stopped and removed on drop).
    pub fn start() -> Result<Self, String> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("cloudbase-auth-pg-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?
            // The guard removes it, after the cluster has stopped.
            .keep();
        let as_owner: Vec<String> = if running_as_root() {
            let chown = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&dir)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !chown.success() {
                return Err(
                    "chown postgres of the cluster dir failed (no `postgres` user?)".into(),
                );
            }
            ["runuser", "-u", "postgres", "--"]
                .map(str::to_owned)
                .to_vec()
        } else {
            Vec::new()
        };
        let port = free_port();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(GUARD)
            .arg("pg-guard")
            .arg(&dir)
            .arg(port.to_string())
            .arg(&bin)
            .args(&as_owner)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run sh: {e}"))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "ready" {
            let status = child.wait();
            let log = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            let reason = format!(
                "PostgreSQL did not start ({status:?}): {}{}",
                log("initdb.log"),
                log("server.log")
            );
            // The guard stopped before removing it.
            let _ = std::fs::remove_dir_all(&dir);
            return Err(reason);
        }
        Ok(Self {
            dir,
            port,
            bin,
            as_owner,
            guard: Mutex::new(Some((child, stdin))),
        })
    }

    /// The one cluster of this test process, started on first use. It stops when the
    /// process ends (see the module docs). Panics (failing the test) if it cannot start.
    pub fn shared() -> &'static PgCluster {
        static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
        CLUSTER.get_or_init(|| {
            PgCluster::start().unwrap_or_else(|e| {
                panic!("{BACKEND_ENV}=postgres but PostgreSQL is unavailable: {e}")
            })
        })
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` (user `postgres`, no password: trust on loopback).
    pub fn url(&self, db: &str) -> DatabaseUrl {
        DatabaseUrl::new(format!("postgres://postgres@127.0.0.1:{}/{db}", self.port))
    }

    /// Runs `sql` with `psql` on database `postgres`; its output (tuples only).
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.psql_on("postgres", sql)
    }

    /// Runs `sql` with `psql` on database `db`; its output (tuples only).
    pub fn psql_on(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
            ])
            .arg("-h")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .arg("-c")
            .arg(sql)
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Creates database `db` unless it exists; its URL.
    pub fn database(&self, db: &str) -> DatabaseUrl {
        assert!(
            db.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database names here are [a-z0-9_]"
        );
        let exists = self
            .psql(&format!("SELECT 1 FROM pg_database WHERE datname = '{db}'"))
            .expect("psql runs");
        if exists != "1"
            && let Err(e) = self.psql(&format!("CREATE DATABASE {db}"))
        {
            assert!(e.contains("already exists"), "CREATE DATABASE {db}: {e}");
        }
        self.url(db)
    }

    /// A fresh database with a unique name; its URL.
    pub fn new_database(&self) -> DatabaseUrl {
        let id = crate::secrets::random_bytes::<8>().expect("random");
        let name: String = id.iter().map(|b| format!("{b:02x}")).collect();
        self.database(&format!("t_{name}"))
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let (program, prefix) = match self.as_owner.split_first() {
            Some((runuser, rest)) => (PathBuf::from(runuser), rest.to_vec()),
            None => (self.bin.join("pg_ctl"), Vec::new()),
        };
        let mut command = Command::new(program);
        command.args(&prefix);
        if !self.as_owner.is_empty() {
            command.arg(self.bin.join("pg_ctl"));
        }
        let out = command
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(())
    }

    /// Stops the server (fast shutdown: open connections are closed), keeping its data.
    pub fn stop_server(&self) -> Result<(), String> {
        self.pg_ctl(&["-m", "fast", "-w", "stop"])
    }

    /// Starts the server again after [`PgCluster::stop_server`], on the same port.
    pub fn start_server(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        let log = log.to_str().ok_or("non-UTF-8 temp dir")?.to_owned();
        self.pg_ctl(&["-l", &log, "-w", "-t", "60", "-o", &options, "start"])
    }

    /// The cluster's directory (data, socket, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let guard = self
            .guard
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((mut child, mut stdin)) = guard {
            // Closing its stdin tells the guard to stop the cluster and remove the dir.
            let _ = stdin.flush();
            drop(stdin);
            let _ = child.wait();
        }
    }
}
