//! Everything `Server::start` needs to know, with the defaults of `cloudbase-auth serve`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default listen address: loopback only.
pub use cloudbase_auth_server_api::DEFAULT_LISTEN;
/// Default data directory (relative to the working directory).
pub const DEFAULT_DATA_DIR: &str = ".cloudbase-auth";
/// Where real mode sends `code2Session` requests by default.
pub const DEFAULT_WECHAT_BASE_URL: &str = "https://api.weixin.qq.com";
/// Environment variable with the WeChat `appid:secret` list.
pub const WECHAT_APPS_ENV: &str = "CLOUDBASE_AUTH_WECHAT_APPS";
/// Environment variable with the admin bearer token (otherwise one is generated).
pub const ADMIN_TOKEN_ENV: &str = "CLOUDBASE_AUTH_ADMIN_TOKEN";

/// How the server reaches WeChat's `code2Session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WeChatMode {
    /// An in-process WeChat: codes are minted through the emulator endpoint, and the
    /// server also serves `GET /sns/jscode2session` itself.
    #[default]
    Emulated,
    /// The real WeChat API (or anything speaking it) at the configured base URL.
    Real,
}

/// Mini Program appids and their AppSecrets. `Debug` never prints the secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WeChatApps(BTreeMap<String, String>);

/// Why a WeChat app list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WeChatAppsError {
    /// An entry of the `appid:secret,…` list has no `:`.
    #[error("entry {0} of the app list is not `appid:secret`")]
    NotAPair(usize),
    /// An appid is empty, too long or has characters other than `[A-Za-z0-9_-]`.
    #[error("appid `{0}` is not a valid Mini Program appid")]
    BadAppid(String),
    /// A secret is empty or has characters that are not visible ASCII.
    #[error("the secret of appid `{0}` is empty or not visible ASCII")]
    BadSecret(String),
    /// The JSON file is not an object of strings.
    #[error("the app file must be a JSON object {{\"wxAPPID\": \"SECRET\", …}}: {0}")]
    BadJson(String),
}

impl WeChatApps {
    /// No apps: in emulated mode any well-formed appid is accepted with any secret.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) one app.
    pub fn insert(&mut self, appid: &str, secret: &str) -> Result<(), WeChatAppsError> {
        if !is_valid_appid(appid) {
            return Err(WeChatAppsError::BadAppid(appid.to_owned()));
        }
        if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(WeChatAppsError::BadSecret(appid.to_owned()));
        }
        self.0.insert(appid.to_owned(), secret.to_owned());
        Ok(())
    }

    /// Parses `wxAPPID:SECRET,wxOTHER:SECRET2` (the `CLOUDBASE_AUTH_WECHAT_APPS` form).
    pub fn parse_list(list: &str) -> Result<Self, WeChatAppsError> {
        let mut apps = Self::new();
        for (i, entry) in list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let (appid, secret) = entry
                .split_once(':')
                .ok_or(WeChatAppsError::NotAPair(i + 1))?;
            apps.insert(appid.trim(), secret.trim())?;
        }
        Ok(apps)
    }

    /// Parses a JSON object `{"wxAPPID": "SECRET", …}` (the `--wechat-apps FILE` form).
    pub fn parse_json(text: &str) -> Result<Self, WeChatAppsError> {
        let map: BTreeMap<String, String> =
            serde_json::from_str(text).map_err(|e| WeChatAppsError::BadJson(e.to_string()))?;
        let mut apps = Self::new();
        for (appid, secret) in &map {
            apps.insert(appid, secret)?;
        }
        Ok(apps)
    }

    /// The secret of `appid`, if configured.
    pub fn secret(&self, appid: &str) -> Option<&str> {
        self.0.get(appid).map(String::as_str)
    }

    /// Whether no app is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The configured appids.
    pub fn appids(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl fmt::Debug for WeChatApps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets stay out of logs and panics.
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Whether `s` can be a Mini Program appid here: `[A-Za-z0-9_-]`, 1..=32 bytes.
pub fn is_valid_appid(s: &str) -> bool {
    s.len() <= cloudbase_auth_core::capacity::APPID_MAX
        && cloudbase_auth_core::config::is_valid_id(s)
}

/// WeChat settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WeChatConfig {
    /// Emulated (default) or real.
    pub mode: WeChatMode,
    /// Base URL of the WeChat API in real mode (`{base}/sns/jscode2session`).
    pub base_url: String,
    /// appid → AppSecret. Required in real mode; in emulated mode, when set, only these
    /// appids are accepted and `jscode2session` checks the secret.
    pub apps: WeChatApps,
    /// Emulated `code2Session` calls per appid per minute before WeChat's 45011
    /// (0: no limit).
    pub emulator_quota_per_minute: u32,
    /// How long an emulated `wx.login` code stays valid (WeChat: 5 minutes).
    pub emulator_code_ttl: Duration,
    /// Timeout of one real `code2Session` call.
    pub request_timeout: Duration,
}

impl Default for WeChatConfig {
    fn default() -> Self {
        Self {
            mode: WeChatMode::Emulated,
            base_url: DEFAULT_WECHAT_BASE_URL.to_owned(),
            apps: WeChatApps::new(),
            emulator_quota_per_minute: 1_000,
            emulator_code_ttl: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Rate limits on the sign-in endpoints, in requests per minute (token buckets that
/// hold one minute's worth). 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimits {
    /// Per client IP address.
    pub per_ip_per_minute: u32,
    /// Per `x-device-id`.
    pub per_device_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        // Generous: a test suite or the official SDK on one machine never meets them,
        // a runaway loop does.
        Self {
            per_ip_per_minute: 6_000,
            per_device_per_minute: 600,
        }
    }
}

/// Environment variable of `--database`.
pub const DATABASE_ENV: &str = "CLOUDBASE_AUTH_DATABASE";

/// A PostgreSQL URL (`postgres://user:password@host:port/db`). Its `Display` and `Debug`
/// show it with any password (in the user info or a `password` query parameter)
/// replaced by `***`, so it can be logged and put in error messages; only
/// [`DatabaseUrl::expose`] gives the URL itself.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

/// The redacted stand-in for a password.
const REDACTED: &str = "***";

impl DatabaseUrl {
    /// Wraps a URL (checked when the server starts: [`DatabaseUrl::is_postgres`]).
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, for the database driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether this is a well-formed `postgres://` or `postgresql://` URL.
    pub fn is_postgres(&self) -> bool {
        url::Url::parse(&self.0).is_ok_and(|u| matches!(u.scheme(), "postgres" | "postgresql"))
    }

    /// The URL with its password replaced.
    fn redacted(&self) -> String {
        let Ok(mut url) = url::Url::parse(&self.0) else {
            // Unparseable: nothing of it is shown (it may hold a password anyway).
            return "(an unparseable database URL)".to_owned();
        };
        if url.password().is_some() {
            let _ = url.set_password(Some(REDACTED));
        }
        if url.query().is_some() {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k.eq_ignore_ascii_case("password") {
                        REDACTED.to_owned()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        url.to_string()
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

/// Settings of one server. Build with [`ServeConfig::new`] and change fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free port (see `Server::local_addr`).
    pub listen: SocketAddr,
    /// Directory of the SQLite store (and, by default, the key-encryption key); created
    /// on first start. With [`ServeConfig::database`] it holds only the key-encryption
    /// key (by default), and several instances may share it.
    pub data_dir: PathBuf,
    /// The PostgreSQL store of several instances; `None`: SQLite in the data dir.
    pub database: Option<DatabaseUrl>,
    /// Env ids served. Empty: any valid env id is accepted (an env is created by its
    /// first sign-in).
    pub envs: Vec<String>,
    /// Access token lifetime.
    pub access_token_ttl: Duration,
    /// Refresh token lifetime (each rotation starts a new one).
    pub refresh_token_ttl: Duration,
    /// How long a rotated refresh token still returns its successor (two tabs, or the
    /// official SDK, refreshing at once). Reuse after this revokes the session family.
    pub refresh_grace: Duration,
    /// Lifetime of the provider token that `provider/token` returns.
    pub provider_token_ttl: Duration,
    /// WeChat settings.
    pub wechat: WeChatConfig,
    /// Allow a non-loopback listen address in emulated mode.
    pub allow_remote_emulator: bool,
    /// Start with a new, empty store when the database is missing or empty although
    /// the signing key shows the data dir was used before (otherwise that refuses to
    /// start). Deletes nothing.
    pub reset_store: bool,
    /// Add a new signing key when the store holds users but no signing key this server
    /// can open: none at all (an earlier version's key file lost), or none sealed with
    /// the key-encryption key given (its file lost). Otherwise that refuses to start.
    /// Access tokens signed by a lost key are then refused; those of keys still in the
    /// store verify until they expire.
    pub new_signing_key: bool,
    /// Where the key-encryption key that seals the signing keys in the store comes from.
    pub kek: crate::keys::KekSource,
    /// How often the signing keys are re-read from the store (so a `keys rotate`, here
    /// or on another server of the same database, is picked up).
    pub key_refresh: Duration,
    /// Users to import at start (the export format).
    pub import: Option<PathBuf>,
    /// Where to export all users on shutdown.
    pub export_on_exit: Option<PathBuf>,
    /// Admin bearer token for the emulator's list/reset/export routes; `None`
    /// generates one at start.
    pub admin_token: Option<String>,
    /// Rate limits on the sign-in endpoints.
    pub rate_limits: RateLimits,
    /// A request not answered within this gets 408.
    pub request_timeout: Duration,
    /// `iss` of the access tokens.
    pub issuer: String,
}

impl ServeConfig {
    /// The defaults of `cloudbase-auth serve`, storing data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            data_dir: data_dir.into(),
            database: None,
            envs: Vec::new(),
            access_token_ttl: Duration::from_secs(2 * 3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_grace: Duration::from_secs(10),
            provider_token_ttl: Duration::from_secs(300),
            wechat: WeChatConfig::default(),
            allow_remote_emulator: false,
            reset_store: false,
            new_signing_key: false,
            kek: crate::keys::KekSource::DataDir,
            key_refresh: Duration::from_secs(30),
            import: None,
            export_on_exit: None,
            admin_token: None,
            rate_limits: RateLimits::default(),
            request_timeout: Duration::from_secs(15),
            issuer: cloudbase_auth_server_api::DEFAULT_ISSUER.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_never_show_their_password() {
        for (url, shown) in [
            (
                "postgres://auth:s3cret@db.example:5432/auth",
                "postgres://auth:***@db.example:5432/auth",
            ),
            (
                "postgresql://auth@db/auth?password=s3cret&sslmode=require",
                "postgresql://auth@db/auth?password=***&sslmode=require",
            ),
            ("postgres://db/auth", "postgres://db/auth"),
            ("not a url s3cret", "(an unparseable database URL)"),
        ] {
            let url = DatabaseUrl::new(url);
            assert_eq!(url.to_string(), shown);
            assert!(!format!("{url:?}").contains("s3cret"));
        }
        assert!(DatabaseUrl::new("postgres://db/auth").is_postgres());
        assert!(!DatabaseUrl::new("mysql://db/auth").is_postgres());
        let mut config = ServeConfig::new("d");
        config.database = Some(DatabaseUrl::new("postgres://a:s3cret@h/d"));
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn app_lists_parse_and_hide_secrets() {
        let apps = WeChatApps::parse_list("wx0123:s3cret, wxabc:other").unwrap();
        assert_eq!(apps.secret("wx0123"), Some("s3cret"));
        assert_eq!(apps.secret("wxabc"), Some("other"));
        assert!(!format!("{apps:?}").contains("s3cret"));
        assert_eq!(
            WeChatApps::parse_list("wx1"),
            Err(WeChatAppsError::NotAPair(1))
        );
        assert!(WeChatApps::parse_list("wx/1:x").is_err());
        assert!(WeChatApps::parse_list("wx1:").is_err());
        let json = WeChatApps::parse_json(r#"{"wx1":"a","wx2":"b"}"#).unwrap();
        assert_eq!(json.appids().collect::<Vec<_>>(), ["wx1", "wx2"]);
        assert!(WeChatApps::parse_json("[1]").is_err());
    }
}
