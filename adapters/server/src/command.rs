//! The `cloudbase-auth serve` command: its flags ([`ServeArgs`], clap derive), the
//! configuration they make, its exit codes, and running it ([`run_blocking`]: logging,
//! the async runtime, the startup lines, graceful shutdown on SIGINT/SIGTERM). The
//! `cloudbase-auth` binary puts it beside the client commands.
//!
//! Also `cloudbase-auth keys rotate|list` ([`KeysArgs`], [`run_keys_blocking`]): the
//! signing keys in the store of a data dir, whether its server runs or not.

use crate::config::{
    ADMIN_TOKEN_ENV, DATABASE_ENV, DEFAULT_DATA_DIR, DEFAULT_LISTEN, DEFAULT_WECHAT_BASE_URL,
    DatabaseUrl, WECHAT_APPS_ENV, WeChatApps, WeChatAppsError,
};
use crate::keys::{KEK_ENV, KEK_FILE_ENV, KekSource, KeyError};
use crate::store::{SqliteStore, Store, StoredKey};
use crate::{RateLimits, ServeConfig, Server, StartError, WeChatMode};
use clap::{Args, Subcommand, ValueEnum};
use std::io::{IsTerminal as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// WeChat mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
#[non_exhaustive]
pub enum WeChatModeArg {
    /// In-process WeChat emulator: mint codes with POST /emulator/v1/wechat/login-code.
    #[default]
    Emulated,
    /// Call WeChat's code2Session at --wechat-base-url with the configured app secrets.
    Real,
}

/// Run a local CloudBase-compatible auth server (SQLite store, emulated WeChat).
///
/// Serves the CloudBase Auth endpoints the official JS SDK calls (under /auth/v1/),
/// GET /healthz, and the token signing keys at GET /.well-known/jwks.json. In the
/// default emulated WeChat mode it also serves WeChat's GET /sns/jscode2session,
/// POST /emulator/v1/wechat/login-code (mint a wx.login code), the admin routes
/// GET /emulator/v1/users, GET /emulator/v1/export, DELETE /emulator/v1/data, and a
/// browser demo of the wasm adapter at http://ADDR/demo/ (a button per auth call) and
/// the emulator console at http://ADDR/console/ (users, sessions, WeChat codes, data).
///
/// Prints `cloudbase-auth listening on http://ADDR` on stdout once it accepts
/// requests, then in emulated mode `admin token: …` (when it generated one) and
/// `console: http://ADDR/console/`. Logs go to stderr.
/// SIGINT/SIGTERM stop it gracefully.
#[derive(Debug, Clone, Args)]
#[command(after_help = SERVE_EXIT_CODES_HELP)]
#[non_exhaustive]
pub struct ServeArgs {
    /// Address to listen on (IP:PORT; `localhost:PORT` means 127.0.0.1). Port 0 picks a
    /// free port; the startup line shows the real one. In emulated mode a non-loopback
    /// address is refused unless --allow-remote-emulator is given.
    #[arg(long, default_value = DEFAULT_LISTEN, value_parser = parse_listen, value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Directory of the SQLite store (which holds the sealed token signing keys) and the
    /// key-encryption key; created (mode 0700) on
    /// first start. One server at a time: it is locked while the server runs. The store
    /// is integrity-checked at every start.
    #[arg(long, default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,

    /// Store users and sessions in PostgreSQL instead of SQLite:
    /// postgres://USER:PASSWORD@HOST:PORT/DB. Several servers may then run on one database
    /// behind a load balancer; the data dir then holds only the default key-encryption
    /// key, which every instance must share (one data dir, a copy, or the same
    /// --kek-file / CLOUDBASE_AUTH_KEK). Migrations are applied at start.
    /// The password never appears in logs or messages.
    #[arg(long, env = DATABASE_ENV, hide_env_values = true, value_parser = parse_database, value_name = "URL")]
    pub database: Option<DatabaseUrl>,

    /// Env id to serve (repeat for several). Clients name it as `client_id`. Without any
    /// --env, every valid env id (1..=64 of [A-Za-z0-9_-]) is accepted: an env is
    /// created by its first sign-in, and other requests naming one that does not exist
    /// are refused.
    #[arg(long = "env", value_name = "ENV_ID")]
    pub envs: Vec<String>,

    /// Lifetime of access tokens (`expires_in`), e.g. 2h, 15m, 40s.
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub access_token_ttl: Duration,

    /// Lifetime of a refresh token; every refresh rotates it and starts a new one.
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub refresh_token_ttl: Duration,

    /// How long a rotated refresh token still returns its same successor (two tabs, or
    /// the official SDK, refreshing at once); reuse after that revokes the session.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION", hide = true)]
    pub refresh_grace: Duration,

    /// Where WeChat's code2Session comes from: `emulated` (in-process, no network) or
    /// `real` (HTTP to --wechat-base-url with the app secrets).
    #[arg(long, value_enum, default_value_t = WeChatModeArg::Emulated, value_name = "MODE")]
    pub wechat_mode: WeChatModeArg,

    /// Base URL of the WeChat API in real mode ({URL}/sns/jscode2session).
    #[arg(long, default_value = DEFAULT_WECHAT_BASE_URL, value_name = "URL")]
    pub wechat_base_url: String,

    /// JSON file mapping Mini Program appids to AppSecrets: {"wxAPPID": "SECRET", …}.
    /// Alternatively set CLOUDBASE_AUTH_WECHAT_APPS=wxAPPID:SECRET,wxOTHER:SECRET2. Real
    /// mode needs one of them; in emulated mode, if given, only these appids are accepted
    /// and /sns/jscode2session checks the secret (otherwise any appid and secret pass).
    #[arg(long, value_name = "FILE")]
    pub wechat_apps: Option<PathBuf>,

    /// Emulated code2Session calls allowed per appid per minute before WeChat's error
    /// 45011 (0: unlimited).
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    pub wechat_emulator_quota: u32,

    /// How long an emulated wx.login code stays valid.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION", hide = true)]
    pub wechat_code_ttl: Duration,

    /// Allow a non-loopback --listen address in emulated mode. The emulator mints a
    /// login code for any openid: only use this on a network you trust.
    #[arg(long)]
    pub allow_remote_emulator: bool,

    /// Start with a new, empty store although a key file shows this data dir was
    /// used before, when auth.db is missing or empty (without this flag the server
    /// refuses: its users would be silently gone). Deletes nothing: to replace a damaged
    /// store, move auth.db, auth.db-wal and auth.db-shm away first.
    #[arg(long)]
    pub reset_store: bool,

    /// Add a new token signing key when the store holds users but no signing key this
    /// server can open: the key-encryption key file is lost, or (on a data dir of an
    /// earlier version) signing-key.ed25519 is (without this flag the server refuses).
    /// Access tokens signed with a lost key are refused until their holders refresh.
    #[arg(long)]
    pub new_signing_key: bool,

    /// File holding the key-encryption key that seals the signing keys in the store (one
    /// base64url line of 32 random bytes). Alternatively put the key itself in
    /// CLOUDBASE_AUTH_KEK (used when this flag is not given). Default: the file
    /// key-encryption-key in the data dir, created (mode 0600) on first start. Every
    /// server on one store needs the same key.
    #[arg(long, env = KEK_FILE_ENV, value_name = "FILE")]
    pub kek_file: Option<PathBuf>,

    /// How often the signing keys are re-read from the store, so a `keys rotate` (run
    /// here or against another server of the same store) is picked up. A token naming a
    /// key this server does not know yet makes it re-read them at once (at most once a
    /// second).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub key_refresh: Duration,

    /// Import users from FILE at start (the format of --export-on-exit and of
    /// GET /emulator/v1/export). The file is checked as the API would check it: a
    /// duplicated uid, an openid given to two users, or two openids of one Mini
    /// Program on one user are refused, every problem is listed, and nothing is
    /// imported unless the whole file is accepted.
    #[arg(long, value_name = "FILE")]
    pub import: Option<PathBuf>,

    /// On a clean shutdown (SIGINT/SIGTERM), write every user to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub export_on_exit: Option<PathBuf>,

    /// Sign-in requests (anonymous, provider token, provider sign-in) allowed per client
    /// IP per minute, with bursts up to that many; 0 turns the limit off. Over it: 429.
    #[arg(long, default_value_t = RateLimits::default().per_ip_per_minute, value_name = "N")]
    pub signin_rate_per_ip: u32,

    /// Sign-in requests allowed per x-device-id per minute; 0 turns the limit off.
    #[arg(long, default_value_t = RateLimits::default().per_device_per_minute, value_name = "N")]
    pub signin_rate_per_device: u32,

    /// A request not answered within this gets 408 (slow bodies, stuck upstreams).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,

    /// `iss` claim of the access tokens (verified on every request).
    #[arg(long, default_value = cloudbase_auth_server_api::DEFAULT_ISSUER, value_name = "ISSUER")]
    pub issuer: String,

    /// Log format on stderr (RUST_LOG sets the level, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Human, value_name = "FORMAT")]
    pub log_format: LogFormat,
}

/// The exit codes of `serve`, as `serve --help` lists them.
pub const SERVE_EXIT_CODES_HELP: &str = "\
Exit codes of serve:
  0  stopped cleanly (SIGINT/SIGTERM)
  1  could not start or failed while serving (port in use, data dir in use by another
     server, I/O errors)
  2  invalid flags or configuration (including an --import file that is refused)
  3  the data dir needs attention: the store is damaged (failed its integrity check),
     or the store, the key-encryption key or the signing key is missing although the
     others show the dir was used; the message says how to recover";

/// The exit code of a `serve` that could not start (see [`SERVE_EXIT_CODES_HELP`]).
pub fn serve_exit_code(error: &StartError) -> u8 {
    match error {
        StartError::RemoteEmulator(_)
        | StartError::NoWeChatApps
        | StartError::BadEnv(_)
        | StartError::BadAdminToken
        | StartError::BadTtl
        | StartError::BadWeChatBaseUrl(_)
        | StartError::BadDatabase(_)
        | StartError::Import { .. } => 2,
        StartError::StoreDamaged(_)
        | StartError::StoreMissing { .. }
        | StartError::KeyMissing { .. }
        | StartError::Key(KeyError::Corrupt(_) | KeyError::KekMissing(_) | KeyError::WrongKek(_)) => {
            3
        }
        StartError::Key(KeyError::BadKek(_)) => 2,
        _ => 1,
    }
}

/// A `--listen` value: `IP:PORT`, or `localhost:PORT` for 127.0.0.1.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Some(port) = s.strip_prefix("localhost:") {
        let port: u16 = port.parse().map_err(|_| format!("invalid port in `{s}`"))?;
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    s.parse()
        .map_err(|_| format!("`{s}` is not IP:PORT (e.g. 127.0.0.1:8787 or [::1]:8787)"))
}

/// A `--database` value. Checked when the server starts, so that no parse error of the
/// command line can echo a URL holding a password.
pub fn parse_database(s: &str) -> Result<DatabaseUrl, std::convert::Infallible> {
    Ok(DatabaseUrl::new(s))
}

/// Why the command line could not become a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The app list in the environment variable is malformed.
    #[error("{WECHAT_APPS_ENV}: {0}")]
    AppsEnv(WeChatAppsError),
    /// The app file could not be read or parsed.
    #[error("--wechat-apps {path}: {reason}")]
    AppsFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

impl ServeArgs {
    /// The server configuration, reading `CLOUDBASE_AUTH_WECHAT_APPS` and
    /// `CLOUDBASE_AUTH_ADMIN_TOKEN` from the process environment.
    pub fn to_config(&self) -> Result<ServeConfig, CliError> {
        self.to_config_with(|name| std::env::var(name).ok())
    }

    /// [`Self::to_config`] with the environment given by `env` (for tests).
    pub fn to_config_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServeConfig, CliError> {
        let mut apps = match env(WECHAT_APPS_ENV) {
            Some(list) => WeChatApps::parse_list(&list).map_err(CliError::AppsEnv)?,
            None => WeChatApps::new(),
        };
        if let Some(path) = &self.wechat_apps {
            let file_error = |reason: String| CliError::AppsFile {
                path: path.clone(),
                reason,
            };
            let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
            let from_file = WeChatApps::parse_json(&text).map_err(|e| file_error(e.to_string()))?;
            for appid in from_file.appids() {
                if let Some(secret) = from_file.secret(appid) {
                    apps.insert(appid, secret)
                        .map_err(|e| file_error(e.to_string()))?;
                }
            }
        }
        let mut config = ServeConfig::new(self.data_dir.clone());
        config.listen = self.listen;
        config.database = self.database.clone();
        config.envs = self.envs.clone();
        config.access_token_ttl = self.access_token_ttl;
        config.refresh_token_ttl = self.refresh_token_ttl;
        config.refresh_grace = self.refresh_grace;
        config.wechat.mode = match self.wechat_mode {
            WeChatModeArg::Emulated => WeChatMode::Emulated,
            WeChatModeArg::Real => WeChatMode::Real,
        };
        config.wechat.base_url = self.wechat_base_url.clone();
        config.wechat.apps = apps;
        config.wechat.emulator_quota_per_minute = self.wechat_emulator_quota;
        config.wechat.emulator_code_ttl = self.wechat_code_ttl;
        config.allow_remote_emulator = self.allow_remote_emulator;
        config.reset_store = self.reset_store;
        config.new_signing_key = self.new_signing_key;
        config.kek = kek_source(self.kek_file.as_ref(), &env);
        config.key_refresh = self.key_refresh;
        config.import = self.import.clone();
        config.export_on_exit = self.export_on_exit.clone();
        config.admin_token = env(ADMIN_TOKEN_ENV).filter(|t| !t.is_empty());
        config.rate_limits.per_ip_per_minute = self.signin_rate_per_ip;
        config.rate_limits.per_device_per_minute = self.signin_rate_per_device;
        config.request_timeout = self.request_timeout;
        config.issuer = self.issuer.clone();
        Ok(config)
    }
}

/// The key-encryption key's source: `--kek-file`, else `CLOUDBASE_AUTH_KEK`, else the
/// data dir's file.
fn kek_source(file: Option<&PathBuf>, env: impl Fn(&str) -> Option<String>) -> KekSource {
    match (file, env(KEK_ENV).filter(|k| !k.trim().is_empty())) {
        (Some(path), _) => KekSource::File(path.clone()),
        (None, Some(key)) => KekSource::Value(key),
        (None, None) => KekSource::DataDir,
    }
}

/// Manage the access-token signing keys kept (sealed) in the store of a data dir.
///
/// Works whether the data dir's server is stopped or running: a running server
/// publishes a new key in its JWKS within --key-refresh (30 s by default) and signs with
/// it from the time `rotate` prints. On a data dir of an earlier version, its
/// signing-key.ed25519 is imported into the store first (so its tokens keep verifying).
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: KeysCommand,

    /// The data dir of the server (the one given to `serve --data-dir`).
    #[arg(long, default_value = DEFAULT_DATA_DIR, value_name = "DIR", global = true)]
    pub data_dir: PathBuf,

    /// The key-encryption key file the server uses (`serve --kek-file`); or set
    /// CLOUDBASE_AUTH_KEK. Default: key-encryption-key in the data dir.
    #[arg(long, env = KEK_FILE_ENV, value_name = "FILE", global = true)]
    pub kek_file: Option<PathBuf>,

    /// The PostgreSQL store of the servers (`serve --database`), instead of the SQLite
    /// store of the data dir.
    #[arg(long, env = DATABASE_ENV, hide_env_values = true, value_parser = parse_database, value_name = "URL", global = true)]
    pub database: Option<DatabaseUrl>,
}

/// The `keys` subcommands.
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum KeysCommand {
    /// Add a new signing key. It is published in the JWKS of every server of this store
    /// at once (at their next key refresh), signs from now + --publish-delay, and the
    /// key signing until then is retired at that moment: tokens it signed keep
    /// verifying, and it stays in the JWKS, for one access-token lifetime
    /// (--access-token-ttl of the server) after that.
    Rotate {
        /// How long the new key is only published before it signs. Longer than the
        /// servers' --key-refresh, so every server publishes it before any token
        /// signed with it exists (and JWKS caches of verifiers have a chance to refresh).
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, value_name = "DURATION")]
        publish_delay: Duration,
    },
    /// List the signing keys: kid, state (signing, pending, verifying, retired), from
    /// when each signs and when it was retired.
    List,
}

/// Why a `keys` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysError {
    /// The data dir has no store.
    #[error(
        "{0} holds no store (auth.db): start `cloudbase-auth serve --data-dir {0}` once first, or \
         give the --data-dir of an existing server"
    )]
    NoStore(PathBuf),
    /// The store or keys could not be opened (the same checks as `serve`).
    #[error(transparent)]
    Open(#[from] StartError),
}

impl KeysError {
    /// The exit code: as `serve`'s for a data dir that needs attention, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Open(e) => serve_exit_code(e),
            Self::NoStore(_) => 1,
        }
    }
}

/// Runs a `keys` command to the end (a synchronous `main`): prints its result on stdout.
pub fn run_keys_blocking(args: &KeysArgs) -> ExitCode {
    init_logging(LogFormat::Human);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cloudbase-auth: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let kek = kek_source(args.kek_file.as_ref(), |name| std::env::var(name).ok());
    let run = async {
        match &args.database {
            Some(url) => run_keys_on_postgres(&args.data_dir, url, &args.command, kek).await,
            None => run_keys(&args.data_dir, &args.command, kek).await,
        }
    };
    match runtime.block_on(run) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cloudbase-auth keys: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs a `keys` command on data dir `dir` with the key-encryption key of `kek`; the
/// text to print.
pub async fn run_keys(
    dir: &std::path::Path,
    command: &KeysCommand,
    kek: KekSource,
) -> Result<String, KeysError> {
    let dir = &dir.to_path_buf();
    let found = crate::datadir::Contents::read(dir).map_err(|source| StartError::DataDir {
        path: dir.clone(),
        source,
    })?;
    if found.store != crate::datadir::StoreFile::Present {
        return Err(KeysError::NoStore(dir.clone()));
    }
    // No data dir lock: a running server holds it, and the store takes writes from
    // other processes (SQLite's own locking; the server re-reads the keys).
    let store = SqliteStore::open(dir).await.map_err(|e| match e {
        crate::store::OpenError::Store(e) => StartError::Store(e),
        damaged => StartError::StoreDamaged(damaged),
    })?;
    let mut config = ServeConfig::new(dir.clone());
    config.kek = kek;
    let result = keys_on(&config, &store, command).await;
    store.close().await;
    result.map_err(KeysError::from)
}

/// [`run_keys`] on the PostgreSQL store at `url` (the data dir holds only the default
/// key-encryption key then).
pub async fn run_keys_on_postgres(
    dir: &std::path::Path,
    url: &DatabaseUrl,
    command: &KeysCommand,
    kek: KekSource,
) -> Result<String, KeysError> {
    let mut config = ServeConfig::new(dir.to_path_buf());
    config.kek = kek;
    config.database = Some(url.clone());
    if !url.is_postgres() {
        return Err(StartError::BadDatabase(url.clone()).into());
    }
    let store = crate::store::PgStore::connect(url, std::time::Duration::from_secs(5))
        .await
        .map_err(StartError::Store)?;
    let lock = store.lock_start().await.map_err(StartError::Store);
    let result = match lock {
        Ok(lock) => {
            let result = keys_on(&config, &store, command).await;
            lock.release().await;
            result
        }
        Err(e) => Err(e),
    };
    store.close().await;
    result.map_err(KeysError::from)
}

async fn keys_on(
    config: &ServeConfig,
    store: &dyn crate::store::Store,
    command: &KeysCommand,
) -> Result<String, StartError> {
    let kek = crate::prepare_keys(config, store).await?;
    let now = crate::state::unix_now();
    let mut out = String::new();
    if let KeysCommand::Rotate { publish_delay } = command {
        let key = crate::keys::SigningKeys::generate()?;
        let active_from = now.saturating_add(crate::ttl_secs(*publish_delay));
        let retired = store
            .rotate_signing_key(
                &crate::keys::new_row(&kek, &key, now, active_from)?,
                active_from,
            )
            .await?;
        out.push_str(&format!(
            "added signing key {}: published now, signs from {}\n",
            key.kid(),
            time(active_from)
        ));
        for kid in retired {
            out.push_str(&format!(
                "retired signing key {kid} from {}: it keeps verifying (and stays in the JWKS) \
                 for one access-token lifetime after that\n",
                time(active_from)
            ));
        }
    }
    let rows = store.signing_keys().await?;
    out.push_str(&list(&rows, &kek, now));
    Ok(out)
}

/// The key table of `keys list`.
fn list(rows: &[StoredKey], kek: &crate::keys::Kek, now: i64) -> String {
    // Retention does not change which key signs; the table shows retirement times.
    let set = crate::keys::KeySet::from_rows(rows, kek, 0);
    let signer = set.signer(now).map(|k| k.kid().to_owned());
    let mut out = format!(
        "{:<43}  {:<9}  {:<20}  {:<20}\n",
        "KID", "STATE", "SIGNS FROM", "RETIRED AT"
    );
    for row in rows {
        let state = if row.retired_at.is_some_and(|r| r <= now) {
            "retired"
        } else if signer.as_deref() == Some(row.kid.as_str()) {
            "signing"
        } else if row.active_from > now {
            "pending"
        } else {
            "verifying"
        };
        out.push_str(&format!(
            "{:<43}  {:<9}  {:<20}  {:<20}{}\n",
            row.kid,
            state,
            time(row.active_from),
            row.retired_at.map_or_else(|| "-".to_owned(), time),
            if kek.opens(row) {
                ""
            } else {
                "  (sealed with another key-encryption key: verifies only)"
            }
        ));
    }
    out
}

/// Unix seconds as RFC 3339 (UTC, seconds).
fn time(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Runs `serve` to the end on a new multi-threaded tokio runtime (for a synchronous
/// `main`): logs to stderr, starts the server, prints the startup lines, and stops
/// gracefully on SIGINT or SIGTERM. The exit code is [`serve_exit_code`]'s when the
/// server could not start, 2 for flags that make no configuration, 1 for a failed
/// shutdown, else 0.
pub fn run_blocking(args: &ServeArgs) -> ExitCode {
    init_logging(args.log_format);
    let config = match args.to_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("cloudbase-auth: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cloudbase-auth: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let stop = shutdown_signal();
        let server = match Server::start(config).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("cloudbase-auth: {e}");
                return ExitCode::from(serve_exit_code(&e));
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "cloudbase-auth listening on http://{}",
            server.local_addr()
        );
        if server.admin_token_generated()
            && let Some(token) = server.admin_token()
        {
            // The only place the generated admin token ever appears.
            let _ = writeln!(out, "admin token: {token}");
        }
        if server.admin_token().is_some() {
            // The console asks for the admin token; the URL holds nothing secret.
            let _ = writeln!(
                out,
                "console: http://{}{}",
                server.local_addr(),
                crate::console::CONSOLE_DIR
            );
        }
        let _ = out.flush();
        drop(out);
        stop.await;
        tracing::info!("shutting down");
        match server.shutdown().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cloudbase-auth: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Logs go to stderr. Crates that could print request details at debug level are
/// capped at info whatever RUST_LOG says, so no secret can reach a log line.
fn init_logging(format: LogFormat) {
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(&base)
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("hyper=info".parse().expect("static directive"))
        .add_directive("hyper_util=info".parse().expect("static directive"))
        .add_directive("reqwest=info".parse().expect("static directive"))
        .add_directive("rustls=info".parse().expect("static directive"))
        .add_directive("sqlx=warn".parse().expect("static directive"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        _ => builder.init(),
    }
}

/// Registers the SIGINT and SIGTERM handlers now, before the startup line is printed
/// (a signal sent right after that line must stop the server gracefully, not kill it),
/// and returns a future that resolves on either. Must run inside the runtime.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            match (term, int) {
                (Some(mut term), Some(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, Parser};

    /// `serve` alone, as the binary nests it.
    #[derive(Debug, Parser)]
    #[command(name = "serve")]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    #[test]
    fn serve_args_are_consistent() {
        Serve::command().debug_assert();
    }

    #[test]
    fn defaults_and_env() {
        let Serve { args } = Serve::try_parse_from(["serve", "--access-token-ttl", "40s"]).unwrap();
        let config = args
            .to_config_with(|k| match k {
                WECHAT_APPS_ENV => Some("wxa:s1".into()),
                ADMIN_TOKEN_ENV => Some("0123456789abcdef".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.listen, "127.0.0.1:8787".parse().unwrap());
        assert_eq!(config.access_token_ttl, Duration::from_secs(40));
        assert_eq!(config.refresh_token_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(config.refresh_grace, Duration::from_secs(10));
        assert_eq!(config.wechat.apps.secret("wxa"), Some("s1"));
        assert_eq!(config.admin_token.as_deref(), Some("0123456789abcdef"));
        assert_eq!(
            parse_listen("localhost:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert!(parse_listen("example.com:80").is_err());
        assert_eq!(config.kek, KekSource::DataDir);
        assert_eq!(config.key_refresh, Duration::from_secs(30));
    }

    #[test]
    fn the_kek_file_flag_wins_over_the_kek_in_the_environment() {
        let env = |k: &str| (k == KEK_ENV).then(|| "a-key".to_owned());
        let Serve { args } = Serve::try_parse_from(["serve", "--key-refresh", "1s"]).unwrap();
        let config = args.to_config_with(env).unwrap();
        assert_eq!(config.kek, KekSource::Value("a-key".into()));
        assert_eq!(config.key_refresh, Duration::from_secs(1));
        let Serve { args } = Serve::try_parse_from(["serve", "--kek-file", "/k"]).unwrap();
        let config = args.to_config_with(env).unwrap();
        assert_eq!(config.kek, KekSource::File("/k".into()));
    }
}
