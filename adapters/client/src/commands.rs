//! The client commands of the `cloudbase-auth` binary: `login`, `link`, `whoami`, `token`,
//! `logout`, `status`, `profile`, `delete-account`.
//!
//! Each command opens the profile ([`FileStore`], locked for the whole command, so two
//! commands on one profile run one after the other), starts a [`Session`], does its one
//! thing, and closes the session (finishing and storing a refresh in flight). Results go
//! to stdout; warnings and errors go to stderr as one line that names the cause and the
//! fix. Exit codes: see [`EXIT_CODES_HELP`].

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use cloudbase_auth_core::config::is_valid_id;
use cloudbase_auth_core::{
    ApiMisuse, Disposition, Error, LoginState, ServerErrorKind, SnapshotError, TransportError,
};
use cloudbase_auth_server_api::{
    DEFAULT_ORIGIN, HEALTH_PATH, Health, LOGIN_CODE_PATH, LoginCodeReply, LoginCodeRequest,
};

use super::session::{checked_base, http_client, now_ms};
use super::store::{FileStore, OpenError};
use super::{ClientError, Restored, Session, SessionConfig, SessionInfo, Status};

/// Where the client commands look for the server unless `--server` says otherwise (the
/// default `--listen` of `cloudbase-auth serve`).
pub const DEFAULT_SERVER: &str = DEFAULT_ORIGIN;
/// The env id the client commands use unless `--env` says otherwise. The local server
/// accepts any env id by default and creates it with its first sign-in.
pub const DEFAULT_ENV: &str = "local-dev";
/// The Mini Program appId `login/link --wechat-openid` uses when `--appid` is not given.
pub const DEFAULT_EMULATOR_APPID: &str = "wx0123456789abcdef";
/// Largest health reply `status` reads (the real one is 15 bytes).
const HEALTH_BODY_MAX: usize = 1024;

/// Exit codes of the client commands, for `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes (login, link, whoami, token, logout, status, profile, delete-account):
  0  success (logout: the local session is gone, even if the server could not be told)
  1  local error: the profile directory or file cannot be used
  2  usage error: bad arguments or values
  3  not signed in, or the session expired or was revoked: run `cloudbase-auth login`
  4  server or network error: the server is unreachable, failed, or refused the request";

/// Options every client command takes.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct ClientArgs {
    /// Auth server to talk to (`cloudbase-auth serve` listens on 127.0.0.1:8787 by
    /// default). An http(s) origin, optionally with a path prefix.
    #[arg(long, value_name = "URL", env = "CLOUDBASE_AUTH_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// CloudBase env id (the `env` of `wx.cloud.init`). The local server accepts any id
    /// by default; each env has its own session in the profile.
    #[arg(long, value_name = "ENV", env = "CLOUDBASE_AUTH_ENV", default_value = DEFAULT_ENV)]
    pub env: String,
    /// Directory holding the sessions (one `ENV.session` file per env, mode 0600, with
    /// an `ENV.lock` lock file). Default: `cloudbase-auth` under the user's config
    /// directory (`~/.config/cloudbase-auth` on Linux).
    #[arg(long, value_name = "DIR", env = "CLOUDBASE_AUTH_PROFILE_DIR")]
    pub profile_dir: Option<PathBuf>,
}

/// The client subcommands; flattened into the binary's command enum.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum ClientCommand {
    /// Sign in (anonymously or with WeChat) and keep the session in the profile.
    #[command(after_help = EXIT_CODES_HELP)]
    Login(LoginArgs),
    /// Link a WeChat identity to the signed-in anonymous user (the uid stays the same).
    #[command(after_help = EXIT_CODES_HELP)]
    Link(LinkArgs),
    /// Show the signed-in user (asks the server): uid, login state, openid, token expiry.
    #[command(after_help = EXIT_CODES_HELP)]
    Whoami(WhoamiArgs),
    /// Print a valid access token for scripts, refreshing it first if it is due.
    #[command(after_help = EXIT_CODES_HELP)]
    Token(TokenArgs),
    /// Sign out: wipe the local session, then revoke it on the server.
    #[command(after_help = EXIT_CODES_HELP)]
    Logout(LogoutArgs),
    /// Show the profile, the stored session and whether the server answers.
    #[command(after_help = EXIT_CODES_HELP)]
    Status(StatusArgs),
    /// Change the signed-in user's nickname and/or avatar URL on the server
    /// (the SDK's `user.update({name, picture})`).
    #[command(after_help = EXIT_CODES_HELP)]
    Profile(ProfileArgs),
    /// Delete the signed-in user on the server, with its identities and every session on
    /// every device (the SDK's `auth.deleteMe()`); this profile is signed out.
    #[command(after_help = EXIT_CODES_HELP)]
    DeleteAccount(DeleteAccountArgs),
}

/// `profile`: at least one of `--nickname`, `--avatar`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("change").required(true).multiple(true).args(["nickname", "avatar"])))]
#[non_exhaustive]
pub struct ProfileArgs {
    /// The new nickname (at most 64 bytes of UTF-8).
    #[arg(long, value_name = "NAME")]
    pub nickname: Option<String>,
    /// The new avatar URL (http:// or https://, at most 256 bytes).
    #[arg(long, value_name = "URL")]
    pub avatar: Option<String>,
    /// Print the updated user as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
}

/// `delete-account`: needs `--yes`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct DeleteAccountArgs {
    /// Confirm: the user, its identities and its sessions on every device are deleted
    /// for good. Without it nothing is sent.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
}

/// `login`: exactly one of `--anonymous`, `--wechat-code`, `--wechat-openid`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("how").required(true).args(["anonymous", "wechat_code", "wechat_openid"])))]
#[non_exhaustive]
pub struct LoginArgs {
    /// Sign in as a new anonymous user (keeps the current one if already anonymous).
    #[arg(long)]
    pub anonymous: bool,
    /// Sign in with a `wx.login` code from the Mini Program given by --appid.
    #[arg(long, value_name = "CODE", requires = "appid")]
    pub wechat_code: Option<String>,
    /// Emulated server only: sign in as this WeChat openid (the server's WeChat
    /// emulator mints the code, standing in for `wx.login`).
    #[arg(long, value_name = "OPENID")]
    pub wechat_openid: Option<String>,
    /// The Mini Program appId of the WeChat identity (default with --wechat-openid:
    /// wx0123456789abcdef).
    #[arg(long, value_name = "APPID", conflicts_with = "anonymous")]
    pub appid: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
}

/// `link`: exactly one of `--wechat-code`, `--wechat-openid`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("how").required(true).args(["wechat_code", "wechat_openid"])))]
#[non_exhaustive]
pub struct LinkArgs {
    /// A `wx.login` code from the Mini Program given by --appid.
    #[arg(long, value_name = "CODE", requires = "appid")]
    pub wechat_code: Option<String>,
    /// Emulated server only: link this WeChat openid (the emulator mints the code).
    #[arg(long, value_name = "OPENID")]
    pub wechat_openid: Option<String>,
    /// The Mini Program appId (default with --wechat-openid: wx0123456789abcdef).
    #[arg(long, value_name = "APPID")]
    pub appid: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
}

/// `whoami`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct WhoamiArgs {
    /// Print one JSON object: uid, login_state (anonymous, wechat, signed-out,
    /// never-signed-in), openid, nickname, avatar_url (each null when unknown),
    /// token_expires_at (RFC 3339), token_expires_at_ms (Unix ms), env, server.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
}

/// `token`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct TokenArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
}

/// `logout`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct LogoutArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
}

/// `status`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct StatusArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ClientArgs,
}

/// Runs a client command on a fresh single-threaded tokio runtime (for a synchronous
/// `main`). Do not call from inside a runtime; use [`run`] there.
pub fn run_blocking(command: ClientCommand) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(command)),
        Err(e) => {
            say_err(&format!("error: cannot start the async runtime: {e}"));
            ExitCode::from(EXIT_LOCAL)
        }
    }
}

/// Runs a client command and returns its exit code (see [`EXIT_CODES_HELP`]).
pub async fn run(command: ClientCommand) -> ExitCode {
    let result = match command {
        ClientCommand::Login(args) => login(args).await,
        ClientCommand::Link(args) => link(args).await,
        ClientCommand::Whoami(args) => whoami(args).await,
        ClientCommand::Token(args) => token(args).await,
        ClientCommand::Logout(args) => logout(args).await,
        ClientCommand::Status(args) => status(args).await,
        ClientCommand::Profile(args) => profile(args).await,
        ClientCommand::DeleteAccount(args) => delete_account(args).await,
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            say_err(&format!("error: {}", failure.message));
            ExitCode::from(failure.code)
        }
    }
}

const EXIT_OK: u8 = 0;
const EXIT_LOCAL: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NOT_SIGNED_IN: u8 = 3;
const EXIT_SERVER: u8 = 4;

/// A failed command: exit code and the one-line message (cause, then fix).
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// Writes a line to stdout; a closed pipe (`token | head -c0`) is not a crash.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn say_err(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// What a command knows for its messages.
struct Ctx {
    server: String,
    env: String,
    profile: PathBuf,
}

/// Validates the common options, opens and locks the profile, starts the session and
/// reports what was found in the profile.
async fn open(args: &ClientArgs) -> Result<(Session, Ctx), Failure> {
    if !is_valid_id(&args.env) {
        return Err(Failure::new(
            EXIT_USAGE,
            format!(
                "invalid --env {:?}: an env id is letters, digits, '-' and '_'. Pass the env id shown in the CloudBase console (or any such name for the local server).",
                args.env
            ),
        ));
    }
    let server = checked_base(&args.server).map_err(|e| {
        Failure::new(
            EXIT_USAGE,
            format!("{e}. Pass --server http://HOST:PORT (default {DEFAULT_SERVER})."),
        )
    })?;
    let dir = match args.profile_dir.clone().or_else(FileStore::default_dir) {
        Some(dir) => dir,
        None => {
            return Err(Failure::new(
                EXIT_LOCAL,
                "this system has no user config directory. Pass --profile-dir DIR.",
            ));
        }
    };
    let store = match FileStore::try_open(&dir, &server, &args.env) {
        Ok(store) => store,
        Err(OpenError::Busy(_)) => {
            say_err(&format!(
                "waiting for another cloudbase-auth command using the profile in {} ...",
                dir.display()
            ));
            let (dir, server, env) = (dir.clone(), server.clone(), args.env.clone());
            tokio::task::spawn_blocking(move || FileStore::open(dir, &server, &env))
                .await
                .map_err(|e| Failure::new(EXIT_LOCAL, format!("profile lock: {e}")))?
                .map_err(open_failure)?
        }
        Err(e) => return Err(open_failure(e)),
    };
    let ctx = Ctx {
        server: server.clone(),
        env: args.env.clone(),
        profile: store.path().to_owned(),
    };
    if let Some(kept) = store.unbound_session() {
        say_err(&format!(
            "warning: the session file of an older cloudbase-auth did not record which server issued it, so it is never sent anywhere; it was set aside as {}. Sign in again with `cloudbase-auth login --server URL`.",
            kept.display()
        ));
    }
    let session = Session::open(SessionConfig::new(server, &args.env), store)
        .await
        .map_err(|e| explain(&e, &ctx))?;
    match session.restored() {
        Restored::Discarded { reason, kept_at } => {
            let kept = match kept_at {
                Some(path) => format!("; the bad file was kept as {}", path.display()),
                None => String::new(),
            };
            say_err(&format!(
                "warning: the profile file {} {}, so the session starts signed out{kept}. Sign in again with `cloudbase-auth login`.",
                ctx.profile.display(),
                describe_damage(reason),
            ));
        }
        Restored::OtherEnv => say_err(&format!(
            "warning: the profile file {} belongs to another env and was left alone.",
            ctx.profile.display()
        )),
        _ => {}
    }
    Ok((session, ctx))
}

fn open_failure(e: OpenError) -> Failure {
    Failure::new(
        EXIT_LOCAL,
        format!("{e}. Check its permissions, or pass another --profile-dir DIR."),
    )
}

fn describe_damage(reason: &SnapshotError) -> String {
    match reason {
        SnapshotError::UnknownVersion(v) => format!(
            "was written in a format this cloudbase-auth does not know (version {v}; written by a newer release?)"
        ),
        SnapshotError::TooShort => "is empty or truncated".to_owned(),
        SnapshotError::TooLong => "is too long to be a session".to_owned(),
        SnapshotError::BadChecksum => "is damaged or truncated (checksum mismatch)".to_owned(),
        other => format!("cannot be read ({other})"),
    }
}

/// Runs `body` on an open session, then closes it whatever happened (so a refresh in
/// flight is stored and the profile lock released).
async fn with_session<T, F>(args: &ClientArgs, body: F) -> Result<T, Failure>
where
    F: AsyncFnOnce(&Session, &Ctx) -> Result<T, Failure>,
{
    let (session, ctx) = open(args).await?;
    let result = body(&session, &ctx).await;
    let closed = session.close().await.map_err(|e| explain(&e, &ctx));
    // A session that could not be stored outranks the command's own outcome: the next
    // command would not find it.
    match (result, closed) {
        (_, Err(lost)) => Err(lost),
        (result, Ok(())) => result,
    }
}

async fn login(args: LoginArgs) -> Result<u8, Failure> {
    with_session(&args.client, async |session, ctx| {
        let before = current(session, ctx).await?.state;
        let status = if args.anonymous {
            session
                .sign_in_anonymously()
                .await
                .map_err(|e| explain(&e, ctx))?
        } else {
            let (code, appid) =
                wechat_code(ctx, &args.wechat_code, &args.wechat_openid, &args.appid).await?;
            session
                .sign_in_with_wechat(&code, &appid)
                .await
                .map_err(|e| explain(&e, ctx))?
        };
        let uid = status.user.as_ref().map_or("?", |u| u.uid.as_str());
        let line = match status.state {
            LoginState::Anonymous if args.anonymous && before == LoginState::Anonymous => {
                format!(
                    "Already signed in anonymously as uid {uid} (env {}); kept that session.",
                    ctx.env
                )
            }
            LoginState::Anonymous => {
                format!("Signed in anonymously as uid {uid} (env {}).", ctx.env)
            }
            _ => format!(
                "Signed in with WeChat as uid {uid}{} (env {}).",
                openid_note(&status),
                ctx.env
            ),
        };
        say(&line);
        Ok(EXIT_OK)
    })
    .await
}

async fn link(args: LinkArgs) -> Result<u8, Failure> {
    with_session(&args.client, async |session, ctx| {
        match current(session, ctx).await?.state {
            LoginState::Anonymous => {}
            LoginState::WeChat => {
                return Err(Failure::new(
                    EXIT_USAGE,
                    "this profile is already signed in with WeChat; link needs an anonymous session. Run `cloudbase-auth logout` then `cloudbase-auth login --anonymous` first.",
                ));
            }
            _ => return Err(not_signed_in(ctx)),
        }
        let (code, appid) =
            wechat_code(ctx, &args.wechat_code, &args.wechat_openid, &args.appid).await?;
        let status = session
            .link_wechat(&code, &appid)
            .await
            .map_err(|e| explain(&e, ctx))?;
        let uid = status.user.as_ref().map_or("?", |u| u.uid.as_str());
        let openid = status.user.as_ref().map_or("", |u| u.openid.as_str());
        say(&format!(
            "Linked WeChat openid {} to uid {uid} (env {}); the session is now a WeChat session.",
            if openid.is_empty() { "?" } else { openid },
            ctx.env
        ));
        Ok(EXIT_OK)
    })
    .await
}

async fn whoami(args: WhoamiArgs) -> Result<u8, Failure> {
    with_session(&args.client, async |session, ctx| {
        let user = session.user_info().await.map_err(|e| explain(&e, ctx))?;
        let status = current(session, ctx).await?;
        let expires_at_ms = status.session.as_ref().map(|s| s.expires_at_ms);
        if args.json {
            let value = serde_json::json!({
                "uid": user.uid,
                "login_state": state_name(status.state),
                "openid": (!user.openid.is_empty()).then_some(&user.openid),
                "nickname": (!user.nick_name.is_empty()).then_some(&user.nick_name),
                "avatar_url": (!user.avatar_url.is_empty()).then_some(&user.avatar_url),
                "token_expires_at": expires_at_ms.map(rfc3339),
                "token_expires_at_ms": expires_at_ms,
                "env": ctx.env,
                "server": ctx.server,
            });
            say(&value.to_string());
        } else {
            say(&format!("uid:          {}", user.uid));
            say(&format!("login state:  {}", state_name(status.state)));
            say(&format!("openid:       {}", or_dash(&user.openid)));
            say(&format!("nickname:     {}", or_dash(&user.nick_name)));
            say(&format!("avatar:       {}", or_dash(&user.avatar_url)));
            if let Some(at) = expires_at_ms {
                say(&format!("expires:      {}", when(at)));
            }
            say(&format!("env:          {}", ctx.env));
            say(&format!("server:       {}", ctx.server));
        }
        Ok(EXIT_OK)
    })
    .await
}

/// A profile field as printed: `-` when unknown (empty).
fn or_dash(value: &str) -> &str {
    if value.is_empty() { "-" } else { value }
}

async fn token(args: TokenArgs) -> Result<u8, Failure> {
    with_session(&args.client, async |session, ctx| {
        let info = session.access_token().await.map_err(|e| explain(&e, ctx))?;
        say(&info.access_token);
        Ok(EXIT_OK)
    })
    .await
}

async fn logout(args: LogoutArgs) -> Result<u8, Failure> {
    with_session(&args.client, async |session, ctx| {
        let out = session.sign_out().await.map_err(|e| explain(&e, ctx))?;
        if !out.had_session {
            say(&format!(
                "Not signed in (env {}); nothing to sign out of.",
                ctx.env
            ));
        } else if out.revoked {
            say(&format!(
                "Signed out (env {}); the server revoked the session.",
                ctx.env
            ));
        } else {
            let cause = out.detail.map(|d| format!(" ({d})")).unwrap_or_default();
            say(&format!(
                "Signed out locally (env {}), but the server at {} was not told{cause}: the session stays valid there until its tokens expire.",
                ctx.env, ctx.server
            ));
        }
        Ok(EXIT_OK)
    })
    .await
}

async fn profile(args: ProfileArgs) -> Result<u8, Failure> {
    with_session(&args.client, async |session, ctx| {
        let user = session
            .update_profile(args.nickname.as_deref(), args.avatar.as_deref())
            .await
            .map_err(|e| explain(&e, ctx))?;
        if args.json {
            let value = serde_json::json!({
                "uid": user.uid,
                "nickname": user.nick_name,
                "avatar_url": user.avatar_url,
                "env": ctx.env,
                "server": ctx.server,
            });
            say(&value.to_string());
        } else {
            say(&format!("uid:          {}", user.uid));
            say(&format!("nickname:     {}", or_dash(&user.nick_name)));
            say(&format!("avatar:       {}", or_dash(&user.avatar_url)));
        }
        Ok(EXIT_OK)
    })
    .await
}

async fn delete_account(args: DeleteAccountArgs) -> Result<u8, Failure> {
    if !args.yes {
        return Err(Failure::new(
            EXIT_USAGE,
            "delete-account deletes the user, its identities and its sessions on every device for good; nothing was sent. Run it again with --yes to confirm.",
        ));
    }
    with_session(&args.client, async |session, ctx| {
        let before = current(session, ctx).await?;
        let Some(uid) = before.session.map(|s| s.uid) else {
            return Err(not_signed_in(ctx));
        };
        session
            .delete_account()
            .await
            .map_err(|e| explain(&e, ctx))?;
        say(&format!(
            "Deleted user {uid} (env {}) on {}: every device is signed out, and so is this profile.",
            ctx.env, ctx.server
        ));
        Ok(EXIT_OK)
    })
    .await
}

async fn status(args: StatusArgs) -> Result<u8, Failure> {
    with_session(&args.client, async |session, ctx| {
        let status = current(session, ctx).await?;
        let reachable = health(&ctx.server).await;
        say(&format!(
            "server:       {} ({})",
            ctx.server,
            match &reachable {
                Ok(()) => "answering".to_owned(),
                Err(cause) => format!("not answering: {cause}"),
            }
        ));
        say(&format!("env:          {}", ctx.env));
        say(&format!("profile:      {}", ctx.profile.display()));
        say(&format!("login state:  {}", state_name(status.state)));
        if let Some(s) = &status.session {
            say(&format!("uid:          {}", s.uid));
            if let Some(openid) = status.user.as_ref().map(|u| &u.openid)
                && !openid.is_empty()
            {
                say(&format!("openid:       {openid}"));
            }
            say(&format!("expires:      {}", when(s.expires_at_ms)));
            say(&format!("refresh:      {}", refresh_note(s)));
        }
        Ok(match (&status.session, reachable) {
            (None, _) => EXIT_NOT_SIGNED_IN,
            (Some(_), Err(_)) => EXIT_SERVER,
            (Some(_), Ok(())) => EXIT_OK,
        })
    })
    .await
}

async fn current(session: &Session, ctx: &Ctx) -> Result<Status, Failure> {
    session.current().await.map_err(|e| explain(&e, ctx))
}

/// The code and appId for a WeChat sign-in or link: as given, or minted by the
/// emulator for an openid.
async fn wechat_code(
    ctx: &Ctx,
    code: &Option<String>,
    openid: &Option<String>,
    appid: &Option<String>,
) -> Result<(String, String), Failure> {
    let appid = appid
        .clone()
        .unwrap_or_else(|| DEFAULT_EMULATOR_APPID.to_owned());
    match (code, openid) {
        (Some(code), _) => Ok((code.clone(), appid)),
        (None, Some(openid)) => Ok((mint_code(ctx, &appid, openid).await?, appid)),
        (None, None) => Err(Failure::new(
            EXIT_USAGE,
            "give --wechat-code CODE --appid APPID, or --wechat-openid OPENID.",
        )),
    }
}

/// Asks the emulated server's WeChat emulator for a fresh `wx.login` code.
async fn mint_code(ctx: &Ctx, appid: &str, openid: &str) -> Result<String, Failure> {
    let http = http_client(&ctx.server, Duration::from_secs(15)).map_err(|e| explain(&e, ctx))?;
    let url = format!("{}{LOGIN_CODE_PATH}", ctx.server);
    let body = LoginCodeRequest::new(appid, Some(openid.to_owned()));
    let response = http
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| unreachable(ctx, &e.to_string()))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(Failure::new(
            EXIT_SERVER,
            format!(
                "the server at {} has no WeChat emulator (it runs with --wechat-mode real, or is not a cloudbase-auth server). Use --wechat-code CODE --appid APPID with a code from wx.login.",
                ctx.server
            ),
        ));
    }
    let reply = serde_json::from_str::<LoginCodeReply>(&text).ok();
    match reply {
        Some(reply) if status.is_success() => Ok(reply.code),
        _ => Err(Failure::new(
            EXIT_SERVER,
            format!(
                "the WeChat emulator at {} refused to mint a code (HTTP {}: {}). Check --appid and --wechat-openid.",
                ctx.server,
                status.as_u16(),
                text.chars().take(200).collect::<String>().trim()
            ),
        )),
    }
}

/// `GET /healthz` within 3 s: answering means HTTP 200 with the health document
/// `{"status":"ok"}`, not merely some reply.
async fn health(server: &str) -> Result<(), String> {
    let http = http_client(server, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    let response = http
        .get(format!("{server}{HEALTH_PATH}"))
        .send()
        .await
        .map_err(|e| innermost(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response.chunk().await.map_err(|e| innermost(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() > HEALTH_BODY_MAX {
            return Err("not a cloudbase-auth server (oversized health reply)".to_owned());
        }
    }
    let ok = serde_json::from_slice::<Health>(&body).is_ok_and(|h| h.is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "HTTP {} but not a cloudbase-auth health reply",
            status.as_u16()
        ))
    }
}

fn innermost(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Sessions are kept per server (like cookies per origin): a server that never issued
/// one finds none, and nothing is sent to it.
fn not_signed_in(ctx: &Ctx) -> Failure {
    Failure::new(
        EXIT_NOT_SIGNED_IN,
        format!(
            "not signed in at {} (env {}, profile {}). Run `cloudbase-auth login --anonymous --server {}` first.",
            ctx.server,
            ctx.env,
            ctx.profile.display(),
            ctx.server
        ),
    )
}

fn unreachable(ctx: &Ctx, cause: &str) -> Failure {
    Failure::new(
        EXIT_SERVER,
        format!(
            "cannot reach the auth server at {} ({cause}). Start it with `cloudbase-auth serve`, or pass --server URL.",
            ctx.server
        ),
    )
}

/// One line naming the cause and the fix, and the exit code, for a session error.
fn explain(e: &ClientError, ctx: &Ctx) -> Failure {
    let (error, detail) = match e {
        ClientError::Auth { error, detail } => (*error, detail.as_deref()),
        ClientError::Config(m) => {
            return Failure::new(EXIT_USAGE, format!("{m}. Fix --server or --env."));
        }
        ClientError::Store(io) => {
            return Failure::new(
                EXIT_LOCAL,
                format!(
                    "cannot write the session to the profile ({io}). Make the directory writable (or free some space), or pass another --profile-dir DIR; no refresh token was spent while it could not be written."
                ),
            );
        }
        ClientError::OtherServer {
            server,
            store_server,
        } => {
            return Failure::new(
                EXIT_USAGE,
                format!(
                    "the profile holds sessions of {store_server}, not {server}; nothing was sent. Sign in at {server} with `cloudbase-auth login --server {server}`."
                ),
            );
        }
        other => return Failure::new(EXIT_LOCAL, format!("{other}.")),
    };
    let said = |fallback: &str| detail.unwrap_or(fallback).to_owned();
    match error {
        Error::NotSignedIn => not_signed_in(ctx),
        Error::SessionExpired => Failure::new(
            EXIT_NOT_SIGNED_IN,
            format!(
                "the session expired or was revoked by the server{}; this user is signed out here. Sign in again with `cloudbase-auth login` (an anonymous sign-in is a new user).",
                detail.map(|d| format!(" ({d})")).unwrap_or_default()
            ),
        ),
        Error::Transport(TransportError::TimedOut) => Failure::new(
            EXIT_SERVER,
            format!(
                "the auth server at {} did not answer in time. Check that it is running and not overloaded, then retry.",
                ctx.server
            ),
        ),
        Error::Transport(_) => unreachable(ctx, &said("network failure")),
        Error::Wire(w) => Failure::new(
            EXIT_SERVER,
            format!(
                "the server at {} sent a reply this client cannot read ({w}). Check that --server points at a CloudBase auth server.",
                ctx.server
            ),
        ),
        Error::Server(s) => {
            let (code, fix) = match s.kind {
                ServerErrorKind::Unauthenticated => (
                    EXIT_NOT_SIGNED_IN,
                    "The session is no longer valid: sign in again with `cloudbase-auth login`."
                        .to_owned(),
                ),
                ServerErrorKind::InvalidGrant => (
                    EXIT_SERVER,
                    "Get a fresh code from wx.login (codes are single-use and short-lived), or use --wechat-openid against the emulator.".to_owned(),
                ),
                ServerErrorKind::Conflict => (
                    EXIT_SERVER,
                    "That WeChat identity already belongs to another user: sign in with it instead (`cloudbase-auth login --wechat-...`).".to_owned(),
                ),
                ServerErrorKind::PermissionDenied => (
                    EXIT_SERVER,
                    format!(
                        "Check that env {} is enabled on the server (`cloudbase-auth serve --env {}`) and the appId is allowed.",
                        ctx.env, ctx.env
                    ),
                ),
                ServerErrorKind::NotFound => (
                    EXIT_SERVER,
                    "Check that --server points at a CloudBase auth server.".to_owned(),
                ),
                ServerErrorKind::ResourceExhausted => (
                    EXIT_SERVER,
                    "The server is rate limiting: wait a minute and retry.".to_owned(),
                ),
                ServerErrorKind::Unavailable => (
                    EXIT_SERVER,
                    "The server is in trouble: check its log and retry.".to_owned(),
                ),
                ServerErrorKind::InvalidArgument => (
                    EXIT_SERVER,
                    "Check the values passed (--env, --appid, the code).".to_owned(),
                ),
                _ => (
                    match error.disposition() {
                        Disposition::ClearSession => EXIT_NOT_SIGNED_IN,
                        _ => EXIT_SERVER,
                    },
                    "Check the server's log.".to_owned(),
                ),
            };
            Failure::new(
                code,
                // The core's error names the status, the server's error name and its
                // description: `server refused (HTTP 400 invalid_argument): …`.
                format!("the server at {}: {s}. {fix}", ctx.server),
            )
        }
        Error::ApiMisuse(
            ApiMisuse::InputInvalid {
                field: field @ ("nickname" | "avatar_url" | "profile"),
            }
            | ApiMisuse::InputTooLong {
                field: field @ ("nickname" | "avatar_url"),
                ..
            },
        ) => Failure::new(
            EXIT_USAGE,
            format!(
                "invalid {}: {error}. A nickname is 1 to 64 bytes without control characters; an avatar is an http:// or https:// URL of at most 256 bytes without spaces or quotes.",
                if field == "avatar_url" {
                    "--avatar"
                } else {
                    "--nickname"
                }
            ),
        ),
        Error::ApiMisuse(ApiMisuse::InputInvalid { field })
        | Error::ApiMisuse(ApiMisuse::InputTooLong { field, .. }) => Failure::new(
            EXIT_USAGE,
            format!(
                "invalid {field}: {error}. Pass it exactly as WeChat gave it (an appId looks like wx0123456789abcdef)."
            ),
        ),
        Error::ApiMisuse(ApiMisuse::NotAnonymous) => Failure::new(
            EXIT_USAGE,
            "linking needs an anonymous session. Run `cloudbase-auth login --anonymous` first.",
        ),
        other => Failure::new(
            match other.disposition() {
                Disposition::ClearSession => EXIT_NOT_SIGNED_IN,
                Disposition::RetryLater => EXIT_SERVER,
                _ => EXIT_LOCAL,
            },
            format!("{other}. Retry the command."),
        ),
    }
}

fn openid_note(status: &Status) -> String {
    match status.user.as_ref().map(|u| u.openid.as_str()) {
        Some(openid) if !openid.is_empty() => format!(", openid {openid}"),
        _ => String::new(),
    }
}

/// Stable names for the login states (also in `whoami --json`).
fn state_name(state: LoginState) -> &'static str {
    match state {
        LoginState::Uninitialized => "uninitialized",
        LoginState::Initialized => "never-signed-in",
        LoginState::Anonymous => "anonymous",
        LoginState::WeChat => "wechat",
        LoginState::SignedOut => "signed-out",
        _ => "unknown",
    }
}

fn refresh_note(s: &SessionInfo) -> String {
    if !s.refreshable {
        "not refreshable (the server gave no refresh token)".to_owned()
    } else if s.refresh_at_ms <= now_ms() {
        "due now (the next command refreshes it)".to_owned()
    } else {
        format!("due {}", when(s.refresh_at_ms))
    }
}

/// `2026-11-24T10:00:00Z (in 1h 59m)`.
fn when(at_ms: u64) -> String {
    let now = now_ms();
    let relative = if at_ms >= now {
        format!("in {}", span(at_ms - now))
    } else {
        format!("{} ago", span(now - at_ms))
    };
    format!("{} ({relative})", rfc3339(at_ms))
}

fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// RFC 3339 UTC with second precision, from Unix ms (Howard Hinnant's civil-from-days).
fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799_000), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(5_000), "5s");
        assert_eq!(span(125_000), "2m 5s");
        assert_eq!(span(7_140_000), "1h 59m");
        assert_eq!(span(90_000_000), "1d 1h");
    }
}
