//! The client commands end to end, as a user types them, against the real
//! `cloudbase-auth serve` on `127.0.0.1:0`: stdout, stderr and exit codes.

mod client_common;

use std::thread;
use std::time::Duration;

use client_common::{Profile, Relay, Server, eventually};

/// Exit codes documented in `--help`.
const OK: i32 = 0;
const USAGE: i32 = 2;
const NOT_SIGNED_IN: i32 = 3;
const SERVER_ERROR: i32 = 4;

/// A refresh request as the engine writes it (tests may name CloudBase paths).
const REFRESH_REQUEST: &str = "POST /auth/v1/token?";

fn json(run: &client_common::Run) -> serde_json::Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {run:#?}"))
}

#[test]
fn every_command_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let p = Profile::new(tmp.path().join("profile"), &server.url);

    // Nothing yet.
    let r = p.run(&["whoami"]).expect(NOT_SIGNED_IN);
    assert!(r.stderr.contains("not signed in"), "{r:#?}");
    assert!(
        r.stderr.contains("cloudbase-auth login --anonymous"),
        "{r:#?}"
    );
    p.run(&["token"]).expect(NOT_SIGNED_IN);
    let r = p.run(&["status"]).expect(NOT_SIGNED_IN);
    assert_eq!(r.field("login state"), "never-signed-in");
    assert!(r.field("server").contains("(answering)"), "{r:#?}");

    // login --anonymous, then whoami / whoami --json / token / status.
    let r = p.run(&["login", "--anonymous"]).expect(OK);
    assert!(
        r.stdout.starts_with("Signed in anonymously as uid "),
        "{r:#?}"
    );
    let uid = r.stdout.split_whitespace().nth(5).unwrap().to_owned();
    let r = p.run(&["whoami"]).expect(OK);
    assert_eq!(r.field("uid"), uid);
    assert_eq!(r.field("login state"), "anonymous");
    assert_eq!(r.field("openid"), "-");
    // The name CloudBase gives an anonymous user without one (docs/wire.md).
    assert_eq!(r.field("nickname"), "anonymous");
    assert_eq!(r.field("avatar"), "-");
    assert!(r.field("expires").contains("(in 1h 59m)"), "{r:#?}");
    let j = json(&p.run(&["whoami", "--json"]).expect(OK));
    assert_eq!(j["uid"], uid.as_str());
    assert_eq!(j["login_state"], "anonymous");
    assert!(j["openid"].is_null());
    assert_eq!(j["nickname"], "anonymous");
    assert!(j["avatar_url"].is_null(), "{j}");
    assert!(j["token_expires_at_ms"].as_u64().unwrap() > 0);
    assert!(j["token_expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(j["env"], client_common::ENV);
    let token = p.run(&["token"]).expect(OK).stdout;
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert_eq!(
        p.run(&["token"]).expect(OK).stdout.trim(),
        token,
        "not due: same token"
    );
    let r = p.run(&["status"]).expect(OK);
    assert_eq!(r.field("uid"), uid);
    assert!(r.field("refresh").starts_with("due "), "{r:#?}");

    // Signing in anonymously again keeps the same user.
    let r = p.run(&["login", "--anonymous"]).expect(OK);
    assert!(
        r.stdout.starts_with("Already signed in anonymously"),
        "{r:#?}"
    );
    assert!(r.stdout.contains(&uid));

    // link --wechat-openid keeps the uid and makes the session a WeChat one.
    let r = p
        .run(&["link", "--wechat-openid", "o-client-test-1"])
        .expect(OK);
    assert!(
        r.stdout.starts_with(&format!(
            "Linked WeChat openid o-client-test-1 to uid {uid}"
        )),
        "{r:#?}"
    );
    let j = json(&p.run(&["whoami", "--json"]).expect(OK));
    assert_eq!(j["uid"], uid.as_str());
    assert_eq!(j["login_state"], "wechat");
    assert_eq!(j["openid"], "o-client-test-1");
    let r = p
        .run(&["link", "--wechat-openid", "o-client-test-2"])
        .expect(USAGE);
    assert!(r.stderr.contains("already signed in with WeChat"), "{r:#?}");

    // logout, then everything says "not signed in".
    let r = p.run(&["logout"]).expect(OK);
    assert!(
        r.stdout.contains("the server revoked the session"),
        "{r:#?}"
    );
    p.run(&["whoami"]).expect(NOT_SIGNED_IN);
    p.run(&["token"]).expect(NOT_SIGNED_IN);
    let r = p.run(&["status"]).expect(NOT_SIGNED_IN);
    assert_eq!(r.field("login state"), "signed-out");
    let r = p
        .run(&["link", "--wechat-openid", "o-x"])
        .expect(NOT_SIGNED_IN);
    assert!(r.stderr.contains("not signed in"), "{r:#?}");
    let r = p.run(&["logout"]).expect(OK);
    assert!(r.stdout.contains("nothing to sign out of"), "{r:#?}");

    // The linked openid signs in as the same user.
    let r = p
        .run(&["login", "--wechat-openid", "o-client-test-1"])
        .expect(OK);
    assert!(
        r.stdout.starts_with(&format!(
            "Signed in with WeChat as uid {uid}, openid o-client-test-1"
        )),
        "{r:#?}"
    );

    // A code minted for an appid, passed by hand.
    let code = mint(&server.url, "wx1111111111111111", "o-by-code");
    let r = p
        .run(&[
            "login",
            "--wechat-code",
            &code,
            "--appid",
            "wx1111111111111111",
        ])
        .expect(OK);
    assert!(r.stdout.contains("openid o-by-code"), "{r:#?}");
    // The same code again: single use, refused by the server.
    let r = p
        .run(&[
            "login",
            "--wechat-code",
            &code,
            "--appid",
            "wx1111111111111111",
        ])
        .expect(SERVER_ERROR);
    assert!(r.stderr.starts_with("error: the server at "), "{r:#?}");
    // The server's own error name and description reach the user.
    assert!(
        r.stderr
            .contains("server refused (HTTP 400 invalid_grant): "),
        "{r:#?}"
    );
    assert!(r.stderr.contains("wx.login"), "{r:#?}");
    assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {r:#?}");
    // The failed sign-in left the session alone.
    let j = json(&p.run(&["whoami", "--json"]).expect(OK));
    assert_eq!(j["openid"], "o-by-code");
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Profile::new(tmp.path().join("profile"), "http://127.0.0.1:9");
    for args in [
        &["login"][..],
        &["login", "--anonymous", "--wechat-openid", "o"],
        &["login", "--wechat-code", "abc"],
        &["link"],
        &["whoami", "--bogus"],
    ] {
        let r = p.run(args);
        assert_eq!(r.code, USAGE, "{args:?}: {r:#?}");
    }
    let r = client_common::Profile::new(tmp.path().join("p2"), "127.0.0.1:8787")
        .run(&["status"])
        .expect(USAGE);
    assert!(r.stderr.contains("--server"), "{r:#?}");
    let r = client_common::Run::from(
        std::process::Command::new(client_common::BIN)
            .args(["status", "--env", "bad.env", "--profile-dir"])
            .arg(&p.dir)
            .output()
            .unwrap(),
    )
    .expect(USAGE);
    assert!(r.stderr.contains("invalid --env"), "{r:#?}");
    // --help documents the exit codes.
    let r = p.run(&["token", "--help"]).expect(OK);
    assert!(r.stdout.contains("3  not signed in"), "{r:#?}");
}

#[test]
fn unreachable_server_exits_4_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = Profile::new(
        tmp.path().join("profile"),
        &format!("http://127.0.0.1:{port}"),
    );
    let r = p.run(&["login", "--anonymous"]).expect(SERVER_ERROR);
    assert!(
        r.stderr
            .starts_with("error: cannot reach the auth server at http://127.0.0.1:")
    );
    assert!(r.stderr.contains("cloudbase-auth serve"), "{r:#?}");
    let r = p
        .run(&["login", "--wechat-openid", "o"])
        .expect(SERVER_ERROR);
    assert!(r.stderr.contains("cannot reach"), "{r:#?}");
}

#[test]
fn two_token_commands_at_once_refresh_once() {
    let tmp = tempfile::tempdir().unwrap();
    // 4 s tokens: the engine refreshes 2 s after issue (half the lifetime).
    let server = Server::start(&tmp.path().join("data"), &["--access-token-ttl", "4s"]);
    let relay = Relay::start(&server.url, REFRESH_REQUEST);
    let p = Profile::new(tmp.path().join("profile"), &relay.url);
    p.run(&["login", "--anonymous"]).expect(OK);
    let before = p.run(&["token"]).expect(OK).stdout;
    assert_eq!(relay.hits(), 0);
    thread::sleep(Duration::from_millis(2_100));

    let a = p
        .command(&["token"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = p
        .command(&["token"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let a = client_common::Run::from(a.wait_with_output().unwrap()).expect(OK);
    let b = client_common::Run::from(b.wait_with_output().unwrap()).expect(OK);
    assert_ne!(a.stdout, before, "refreshed");
    assert_eq!(
        a.stdout, b.stdout,
        "the second reads the first one's result"
    );
    assert_eq!(relay.hits(), 1, "exactly one refresh reached the server");
    // And the stored session works: its refresh token was the rotated one.
    let r = p.run(&["whoami"]).expect(OK);
    assert_eq!(r.field("login state"), "anonymous");
}

#[test]
fn damaged_profile_starts_signed_out_and_keeps_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let p = Profile::new(tmp.path().join("profile"), &server.url);
    p.run(&["login", "--anonymous"]).expect(OK);
    let good = std::fs::read(p.file()).unwrap();
    let corrupt = p.corrupt_file();

    // Truncated.
    let cut = &good[..good.len() / 2];
    std::fs::write(p.file(), cut).unwrap();
    let r = p.run(&["whoami"]).expect(NOT_SIGNED_IN);
    assert!(r.stderr.contains("is damaged or truncated"), "{r:#?}");
    assert!(r.stderr.contains("starts signed out"), "{r:#?}");
    assert!(r.stderr.contains(".session.corrupt"), "{r:#?}");
    assert_eq!(std::fs::read(&corrupt).unwrap(), cut);
    assert!(!p.file().exists());

    // Empty.
    std::fs::write(p.file(), b"").unwrap();
    let r = p.run(&["whoami"]).expect(NOT_SIGNED_IN);
    assert!(r.stderr.contains("is empty or truncated"), "{r:#?}");

    // One byte flipped.
    let mut flipped = good.clone();
    flipped[good.len() / 3] ^= 0x01;
    std::fs::write(p.file(), &flipped).unwrap();
    let r = p.run(&["status"]).expect(NOT_SIGNED_IN);
    assert!(r.stderr.contains("checksum mismatch"), "{r:#?}");
    assert_eq!(r.field("login state"), "signed-out");
    assert_eq!(std::fs::read(&corrupt).unwrap(), flipped);

    // A format from the future.
    let mut future = good.clone();
    future[0] = 9;
    std::fs::write(p.file(), &future).unwrap();
    let r = p.run(&["token"]).expect(NOT_SIGNED_IN);
    assert!(r.stderr.contains("version 9"), "{r:#?}");

    // Signing in again works and writes a good file.
    let r = p.run(&["login", "--anonymous"]).expect(OK);
    assert!(r.stderr.is_empty(), "{r:#?}");
    p.run(&["whoami"]).expect(OK);
}

#[test]
fn logout_while_the_server_is_down_still_signs_out() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start(&tmp.path().join("data"), &[]);
    let p = Profile::new(tmp.path().join("profile"), &server.url);
    p.run(&["login", "--anonymous"]).expect(OK);
    server.kill();

    let r = p.run(&["logout"]).expect(OK);
    assert!(r.stdout.starts_with("Signed out locally"), "{r:#?}");
    assert!(r.stdout.contains("was not told"), "{r:#?}");
    // The local session is gone, whatever the server would say.
    p.run(&["token"]).expect(NOT_SIGNED_IN);
    let r = p.run(&["status"]).expect(NOT_SIGNED_IN);
    assert_eq!(r.field("login state"), "signed-out");
    assert!(r.field("server").contains("not answering"), "{r:#?}");
}

#[test]
fn the_session_survives_a_server_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start(&data, &["--access-token-ttl", "4s"]);
    let p = Profile::new(tmp.path().join("profile"), &server.url);
    p.run(&["login", "--anonymous"]).expect(OK);
    let uid = p.run(&["whoami"]).expect(OK).field("uid");
    let before = p.run(&["token"]).expect(OK).stdout;
    server.kill();

    // The same address: the session belongs to the server at that URL.
    let listen = server.url.strip_prefix("http://").unwrap().to_owned();
    let server = Server::start_on(&listen, &data, &["--access-token-ttl", "4s"]);
    let p = Profile::new(p.dir.clone(), &server.url);
    assert_eq!(p.run(&["whoami"]).expect(OK).field("uid"), uid);
    // A refresh after the restart: the refresh token outlived the process.
    assert!(eventually(Duration::from_secs(5), || {
        p.run(&["token"]).expect(OK).stdout != before
    }));
    assert_eq!(p.run(&["whoami"]).expect(OK).field("uid"), uid);
}

/// Mints a `wx.login` code through the emulator (what a test's stand-in `wx.login` does).
fn mint(server: &str, appid: &str, openid: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(client_common::mint_code(server, appid, openid))
}

/// Makes `dir` impossible to write into, even for root (`chattr +i` where the caller is
/// root, mode 0500 otherwise), and proves it; undone on drop.
struct ReadOnlyDir<'a>(&'a std::path::Path);

impl<'a> ReadOnlyDir<'a> {
    fn new(dir: &'a std::path::Path) -> Self {
        use std::os::unix::fs::PermissionsExt;
        if rustix::process::geteuid().is_root() {
            let ok = std::process::Command::new("chattr")
                .arg("+i")
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "chattr +i {} failed: cannot make it read-only",
                dir.display()
            );
        } else {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        }
        assert!(
            std::fs::write(dir.join("probe"), b"x").is_err(),
            "{} is still writable",
            dir.display()
        );
        ReadOnlyDir(dir)
    }
}

impl Drop for ReadOnlyDir<'_> {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if rustix::process::geteuid().is_root() {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(self.0)
                .status();
        }
        let _ = std::fs::set_permissions(self.0, std::fs::Permissions::from_mode(0o700));
    }
}

#[test]
fn a_profile_that_cannot_be_written_spends_no_refresh_and_keeps_its_user() {
    let tmp = tempfile::tempdir().unwrap();
    // Short tokens, and no grace window: a rotated token presented again would revoke
    // the session at once.
    let server = Server::start(
        &tmp.path().join("data"),
        &["--access-token-ttl", "2s", "--refresh-grace", "0s"],
    );
    let relay = Relay::start(&server.url, REFRESH_REQUEST);
    let p = Profile::new(tmp.path().join("profile"), &relay.url);
    p.run(&["login", "--anonymous"]).expect(OK);
    let uid = json(&p.run(&["whoami", "--json"]).expect(OK))["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    thread::sleep(Duration::from_millis(1_200)); // the refresh is due (half-life)
    {
        let _read_only = ReadOnlyDir::new(&p.dir);
        let r = p.run(&["token"]).expect(1);
        assert!(r.stderr.contains(&p.dir.display().to_string()), "{r:#?}");
        assert!(r.stderr.contains("no refresh token was spent"), "{r:#?}");
        assert_eq!(relay.hits(), 0, "the refresh token was not spent");
    }
    thread::sleep(Duration::from_millis(1_100));
    // Writable again: the same user, refreshed with the token that was kept.
    let token = p.run(&["token"]).expect(OK);
    assert_eq!(relay.hits(), 1);
    assert!(!token.stdout.trim().is_empty());
    let j = json(&p.run(&["whoami", "--json"]).expect(OK));
    assert_eq!(j["uid"], uid.as_str(), "never silently another user");
}

#[test]
fn a_revoked_session_is_reported_not_replaced_by_a_new_user() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmp.path().join("data"),
        &["--access-token-ttl", "2s", "--refresh-grace", "0s"],
    );
    let p = Profile::new(tmp.path().join("profile"), &server.url);
    p.run(&["login", "--anonymous"]).expect(OK);
    // A copy of the profile (a backup restored, a profile copied to another machine).
    let copy = Profile::new(tmp.path().join("copy"), &server.url);
    std::fs::create_dir(&copy.dir).unwrap();
    std::fs::copy(p.file(), copy.file()).unwrap();
    thread::sleep(Duration::from_millis(1_200));
    p.run(&["token"]).expect(OK); // rotates the refresh token
    // The copy presents the rotated token: the server revokes the whole session.
    let r = copy.run(&["token"]).expect(NOT_SIGNED_IN);
    assert!(r.stderr.contains("revoked"), "{r:#?}");
    assert!(r.stdout.is_empty(), "no token printed: {r:#?}");
    // No new user took its place, on either profile.
    let r = copy.run(&["whoami"]).expect(NOT_SIGNED_IN);
    assert!(r.stderr.contains("not signed in"), "{r:#?}");
    thread::sleep(Duration::from_millis(1_100));
    p.run(&["token"]).expect(NOT_SIGNED_IN);
    p.run(&["whoami"]).expect(NOT_SIGNED_IN);
}

#[test]
fn a_session_is_only_ever_sent_to_the_server_that_issued_it() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let p = Profile::new(tmp.path().join("profile"), &server.url);
    p.run(&["login", "--anonymous"]).expect(OK);
    let uid = p.run(&["whoami"]).expect(OK).field("uid");

    // Another server that records every connection it gets.
    let capture = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = format!("http://{}", capture.local_addr().unwrap());
    capture.set_nonblocking(true).unwrap();
    let elsewhere = Profile::new(p.dir.clone(), &other);
    for args in [&["token"][..], &["whoami"], &["logout"]] {
        let r = elsewhere.run(args);
        if args == ["logout"] {
            assert!(r.stdout.contains("nothing to sign out of"), "{r:#?}");
        } else {
            assert_eq!(r.code, NOT_SIGNED_IN, "{r:#?}");
            assert!(
                r.stderr.contains(&format!("not signed in at {other}")),
                "{r:#?}"
            );
            assert!(r.stderr.contains(&format!("--server {other}")), "{r:#?}");
        }
    }
    // The same through the environment variable.
    let r = client_common::Run::from(
        std::process::Command::new(client_common::BIN)
            .args(["token", "--env", client_common::ENV, "--profile-dir"])
            .arg(&p.dir)
            .env("CLOUDBASE_AUTH_SERVER", &other)
            .output()
            .unwrap(),
    )
    .expect(NOT_SIGNED_IN);
    assert!(r.stderr.contains("not signed in at"), "{r:#?}");
    assert!(
        matches!(capture.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the other server was contacted"
    );
    // The session is untouched on its own server.
    assert_eq!(p.run(&["whoami"]).expect(OK).field("uid"), uid);
}

#[test]
fn a_fifo_in_place_of_the_profile_is_refused_not_waited_on() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Profile::new(tmp.path().join("profile"), "http://127.0.0.1:9");
    std::fs::create_dir(&p.dir).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p.file(),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let mut child = p
        .command(&["status"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || child
            .try_wait()
            .unwrap()
            .is_some()),
        "status hangs on a FIFO"
    );
    let r = client_common::Run::from(child.wait_with_output().unwrap()).expect(1);
    assert!(r.stderr.contains("not a regular file"), "{r:#?}");
}

#[test]
fn status_tells_a_server_that_is_not_one() {
    // Answers anything with 200 and random bytes.
    let impostor = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", impostor.local_addr().unwrap());
    thread::spawn(move || {
        for stream in impostor.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut buf);
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\n\x8f\x01zq\xffAB\x07",
            );
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let r = Profile::new(tmp.path().join("profile"), &url)
        .run(&["status"])
        .expect(NOT_SIGNED_IN);
    let line = r.field("server");
    assert!(line.contains("not answering"), "{r:#?}");
    assert!(line.contains("not a cloudbase-auth health reply"), "{r:#?}");
}

#[test]
fn profile_and_delete_account_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), &[]);
    let p = Profile::new(tmp.path().join("profile"), &server.url);
    let other = Profile::new(tmp.path().join("other"), &server.url);

    p.run(&["profile", "--nickname", "x"]).expect(NOT_SIGNED_IN);
    p.run(&["login", "--wechat-openid", "o-account-1"])
        .expect(OK);
    let r = p
        .run(&[
            "profile",
            "--nickname",
            "小明 \"Ming\"",
            "--avatar",
            "https://a.example/m.png",
            "--json",
        ])
        .expect(OK);
    let j = json(&r);
    assert_eq!(
        (j["nickname"].as_str(), j["avatar_url"].as_str()),
        (Some("小明 \"Ming\""), Some("https://a.example/m.png"))
    );
    // Bad values are refused before anything is sent, with the fix.
    let r = p
        .run(&["profile", "--avatar", "ftp://a.example/m.png"])
        .expect(USAGE);
    assert!(r.stderr.contains("invalid --avatar"), "{r:#?}");
    let long = "n".repeat(65);
    let r = p.run(&["profile", "--nickname", &long]).expect(USAGE);
    assert!(r.stderr.contains("invalid --nickname"), "{r:#?}");
    let r = p.run(&["profile"]).expect(USAGE);
    assert!(r.stderr.contains("--nickname"), "{r:#?}");

    // Another device of the same user sees the profile the first one set.
    other
        .run(&["login", "--wechat-openid", "o-account-1"])
        .expect(OK);
    let r = other.run(&["whoami"]).expect(OK);
    assert_eq!(r.field("nickname"), "小明 \"Ming\"");
    assert_eq!(r.field("avatar"), "https://a.example/m.png");
    let j = json(&other.run(&["whoami", "--json"]).expect(OK));
    assert_eq!(j["nickname"], "小明 \"Ming\"");
    assert_eq!(j["avatar_url"], "https://a.example/m.png");
    let r = p.run(&["delete-account"]).expect(USAGE);
    assert!(r.stderr.contains("--yes"), "{r:#?}");
    p.run(&["whoami"]).expect(OK);
    let r = p.run(&["delete-account", "--yes"]).expect(OK);
    assert!(r.stdout.starts_with("Deleted user "), "{r:#?}");
    let r = p.run(&["status"]).expect(NOT_SIGNED_IN);
    assert_eq!(r.field("login state"), "signed-out");
    // The other device is signed out by the server.
    let r = other.run(&["whoami"]).expect(NOT_SIGNED_IN);
    assert!(r.stderr.contains("session"), "{r:#?}");
}
