//! Per-state, per-event unit tests (`test_<state>_<event>`), from fixtures such as
//! `engine_anonymous()`, in the style of smoltcp's TCP socket tests.

use cloudbase_auth_core::config::{
    DEFAULT_REFRESH_MARGIN_MS, DEFAULT_REQUEST_TIMEOUT_MS, RETRY_BACKOFF_MIN_MS,
};
use cloudbase_auth_core::testing::{APPID, ENV, Harness};
use cloudbase_auth_core::wire::Endpoint;
use cloudbase_auth_core::{
    ApiMisuse, Completion, Config, Delivery, Disposition, Engine, Error, LoginState,
    ServerErrorKind,
};

#[test]
fn engine_fits_in_4_kib() {
    let size = core::mem::size_of::<Engine>();
    println!("size_of::<Engine>() = {size} bytes");
    assert!(size <= 4096, "Engine is {size} bytes");
}

// ----- fixtures -------------------------------------------------------------------

fn engine_initialized() -> Harness {
    Harness::new()
}

fn engine_anonymous() -> Harness {
    let mut h = Harness::new();
    assert_eq!(
        h.sign_in_anonymously(),
        Ok(Completion::SignedIn(LoginState::Anonymous))
    );
    h.changes.clear();
    h.completions.clear();
    h
}

fn engine_wechat() -> Harness {
    let mut h = Harness::new();
    assert_eq!(
        h.sign_in_with_wechat("openid-alice"),
        Ok(Completion::SignedIn(LoginState::WeChat))
    );
    h.changes.clear();
    h.completions.clear();
    h
}

fn engine_signed_out() -> Harness {
    let mut h = engine_anonymous();
    let op = h.engine.sign_out(h.now).unwrap();
    h.run();
    assert_eq!(
        h.result(op),
        Some(Ok(Completion::SignedOut { revoked: true }))
    );
    h.changes.clear();
    h.completions.clear();
    h
}

fn held(mut h: Harness) -> Harness {
    h.auto_reply = false;
    h
}

fn uid(h: &Harness) -> String {
    h.engine.session().expect("signed in").uid.to_owned()
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

// ----- Uninitialized ----------------------------------------------------------------

#[test]
fn test_uninitialized_any_call() {
    let mut h = Harness::uninit();
    let misuse = Err(Error::ApiMisuse(ApiMisuse::NotInitialized));
    assert_eq!(h.engine.restore(h.now, &[1, 2, 3]), misuse);
    let misuse = Err(Error::ApiMisuse(ApiMisuse::NotInitialized));
    assert_eq!(h.engine.get_login_state(h.now), misuse);
    assert_eq!(h.engine.sign_in_anonymously(h.now), misuse);
    assert_eq!(h.engine.sign_in_with_wechat(h.now, "code", APPID), misuse);
    assert_eq!(h.engine.get_user_info(h.now), misuse);
    assert_eq!(h.engine.sign_out(h.now), misuse);
    assert_eq!(h.engine.login_state(), LoginState::Uninitialized);
}

#[test]
fn test_uninitialized_init() {
    let mut h = Harness::uninit();
    h.engine.init(h.now, Config::new(ENV), [1; 16]).unwrap();
    h.run();
    // The first poll after init reports the initial state, through the queue only.
    assert_eq!(
        h.changes.as_slice(),
        [(LoginState::Uninitialized, LoginState::Initialized)]
    );
    assert_eq!(h.deadline, None);
    assert!(is_hex32(h.engine.device_id()));
}

#[test]
fn test_uninitialized_init_bad_config() {
    let mut e = Engine::new();
    assert_eq!(
        e.init(0, Config::new("bad env"), [0; 16]),
        Err(Error::ApiMisuse(ApiMisuse::InputInvalid { field: "env" }))
    );
    let long = "e".repeat(65);
    assert!(matches!(
        e.init(0, Config::new(&long), [0; 16]),
        Err(Error::ApiMisuse(ApiMisuse::InputTooLong {
            field: "env",
            max: 64
        }))
    ));
    assert!(
        e.init(0, Config::new("ok").with_api_path("no-slash"), [0; 16])
            .is_err()
    );
    assert_eq!(e.login_state(), LoginState::Uninitialized);
}

// ----- Initialized ------------------------------------------------------------------

#[test]
fn test_initialized_init_again() {
    let mut h = engine_initialized();
    assert_eq!(
        h.engine.init(h.now, Config::new(ENV), [0; 16]),
        Err(Error::ApiMisuse(ApiMisuse::AlreadyInitialized))
    );
}

#[test]
fn test_initialized_get_login_state() {
    let mut h = engine_initialized();
    let op = h.engine.get_login_state(h.now).unwrap();
    h.run();
    assert_eq!(h.result(op), Some(Ok(Completion::LoginState)));
    assert_eq!(h.engine.login_state(), LoginState::Initialized);
    assert!(h.engine.session().is_none());
    assert_eq!(h.sent_count.iter().sum::<u32>(), 0);
}

#[test]
fn test_initialized_get_user_info() {
    let mut h = engine_initialized();
    let op = h.engine.get_user_info(h.now).unwrap();
    h.run();
    assert_eq!(h.result(op), Some(Err(Error::NotSignedIn)));
}

#[test]
fn test_initialized_sign_in_anonymously() {
    let mut h = held(engine_initialized());
    let op = h.engine.sign_in_anonymously(h.now).unwrap();
    h.run();
    let s = &h.sent[0];
    assert_eq!(s.endpoint, Endpoint::SignInAnonymously);
    assert_eq!(
        s.path.as_str(),
        format!("/auth/v1/signin/anonymously?client_id={ENV}")
    );
    assert_eq!(s.authorization, None, "sign-in never carries a token");
    assert_eq!(s.body.as_slice(), b"{}");
    assert!(is_hex32(&s.request_id_header));
    assert_eq!(s.device_id_header, h.engine.device_id());
    let first_request_id = s.request_id_header.clone();
    assert_eq!(h.reply_next(), Delivery::Accepted);
    // Credentials arrived: signed in, snapshot persisted, then the profile is fetched.
    assert_eq!(h.engine.login_state(), LoginState::Anonymous);
    assert!(h.stored.is_some());
    let me = &h.sent[0];
    assert_eq!(me.endpoint, Endpoint::UserMe);
    assert_eq!(me.path, "/auth/v1/user/me", "user/me carries no client_id");
    let token = h.engine.session().unwrap().access_token.to_owned();
    assert_eq!(
        me.authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
    assert_ne!(me.request_id_header, first_request_id);
    assert_eq!(h.reply_next(), Delivery::Accepted);
    assert_eq!(
        h.result(op),
        Some(Ok(Completion::SignedIn(LoginState::Anonymous)))
    );
    assert_eq!(
        h.changes.as_slice(),
        [
            (LoginState::Uninitialized, LoginState::Initialized),
            (LoginState::Initialized, LoginState::Anonymous)
        ]
    );
    assert_eq!(h.engine.user().unwrap().nick_name, "anonymous");
}

#[test]
fn test_initialized_sign_in_with_wechat() {
    let mut h = held(engine_initialized());
    let code = h.server.mint_code("openid-bob");
    let op = h.engine.sign_in_with_wechat(h.now, &code, APPID).unwrap();
    h.run();
    let s = &h.sent[0];
    assert_eq!(s.endpoint, Endpoint::ProviderToken);
    assert_eq!(
        s.path.as_str(),
        format!("/auth/v1/provider/token?client_id={ENV}")
    );
    assert_eq!(s.authorization, None);
    let body: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"provider_id": APPID, "provider_code": code.as_str(),
            "provider_params": {"provider_code_type": "open_id", "appid": APPID}})
    );
    assert_eq!(h.reply_next(), Delivery::Accepted);
    assert_eq!(h.sent[0].endpoint, Endpoint::SignInWithProvider);
    assert_eq!(h.sent[0].authorization, None);
    assert_eq!(
        h.sent[0].body.as_slice(),
        b"{\"provider_token\":\"pt:openid-bob\"}"
    );
    assert_eq!(h.reply_next(), Delivery::Accepted);
    assert_eq!(h.engine.login_state(), LoginState::WeChat);
    assert_eq!(h.reply_next(), Delivery::Accepted);
    assert_eq!(
        h.result(op),
        Some(Ok(Completion::SignedIn(LoginState::WeChat)))
    );
    let user = h.engine.user().unwrap();
    assert_eq!(user.openid, "openid-bob");
    assert_eq!(user.nick_name, "微信用户😀");
    assert_eq!(user.uid, h.server.uid_of_openid("openid-bob").unwrap());
}

#[test]
fn test_initialized_sign_in_with_wechat_bad_code() {
    let mut h = engine_initialized();
    let op = h
        .engine
        .sign_in_with_wechat(h.now, "never-minted", APPID)
        .unwrap();
    h.run();
    let Some(Err(Error::Server(e))) = h.result(op) else {
        panic!("{:?}", h.result(op))
    };
    assert_eq!(e.kind, ServerErrorKind::InvalidGrant);
    assert_eq!(e.status, 400);
    assert_eq!(h.engine.login_state(), LoginState::Initialized);
    assert_eq!(
        (e.name.as_str(), e.description.as_str()),
        ("invalid_grant", "invalid code")
    );
}

#[test]
fn test_initialized_sign_in_with_wechat_bad_code_every_waiter_reads_the_server_text() {
    let mut h = engine_initialized();
    let op = h
        .engine
        .sign_in_with_wechat(h.now, "never-minted", APPID)
        .unwrap();
    h.drain();
    let waiters: std::vec::Vec<_> = (0..3)
        .map(|_| {
            let w = h.engine.get_login_state(h.now).unwrap();
            h.drain();
            w
        })
        .collect();
    h.run();
    for id in std::iter::once(op).chain(waiters) {
        let Some(Err(Error::Server(e))) = h.result(id) else {
            panic!("{id:?}: {:?}", h.result(id))
        };
        assert_eq!(
            e.to_string(),
            "server refused (HTTP 400 invalid_grant): invalid code"
        );
    }
}

#[test]
fn test_initialized_sign_in_with_wechat_bad_input() {
    let mut h = engine_initialized();
    assert_eq!(
        h.engine.sign_in_with_wechat(h.now, "has space", APPID),
        Err(Error::ApiMisuse(ApiMisuse::InputInvalid { field: "code" }))
    );
    assert!(matches!(
        h.engine.sign_in_with_wechat(h.now, &"c".repeat(513), APPID),
        Err(Error::ApiMisuse(ApiMisuse::InputTooLong {
            field: "code",
            ..
        }))
    ));
    assert_eq!(
        h.engine.sign_in_with_wechat(h.now, "code", "wx\"x"),
        Err(Error::ApiMisuse(ApiMisuse::InputInvalid { field: "appid" }))
    );
}

#[test]
fn test_initialized_sign_out() {
    let mut h = engine_initialized();
    let op = h.engine.sign_out(h.now).unwrap();
    h.run();
    assert_eq!(
        h.result(op),
        Some(Ok(Completion::SignedOut { revoked: false }))
    );
    assert_eq!(h.engine.login_state(), LoginState::Initialized);
    assert_eq!(h.sent_count.iter().sum::<u32>(), 0);
}

#[test]
fn test_initialized_restore_corrupt() {
    let mut h = engine_initialized();
    let r = h.engine.restore(h.now, b"\x01garbage-bytes");
    h.run();
    assert!(matches!(r, Err(Error::Snapshot(_))));
    assert_eq!(r.unwrap_err().disposition(), Disposition::ClearSession);
    assert_eq!(h.engine.login_state(), LoginState::SignedOut);
    assert_eq!(h.clears, 1);
}

#[test]
fn test_initialized_restore_after_an_operation() {
    let mut h = engine_initialized();
    h.engine.get_login_state(h.now).unwrap();
    h.run();
    assert_eq!(
        h.engine.restore(h.now, &[1; 8]),
        Err(Error::ApiMisuse(ApiMisuse::RestoreTooLate))
    );
}

// ----- Anonymous --------------------------------------------------------------------

#[test]
fn test_anonymous_restore() {
    let mut h = engine_anonymous();
    let (before, bytes) = (uid(&h), h.stored.clone().unwrap());
    h.restart_with(&bytes).unwrap();
    assert_eq!(h.engine.login_state(), LoginState::Anonymous);
    assert_eq!(uid(&h), before);
    // The first poll after restore reports the restored state.
    assert_eq!(
        h.changes.last(),
        Some(&(LoginState::Initialized, LoginState::Anonymous))
    );
}

#[test]
fn test_anonymous_sign_in_anonymously() {
    let mut h = engine_anonymous();
    let before = uid(&h);
    assert_eq!(
        h.sign_in_anonymously(),
        Ok(Completion::SignedIn(LoginState::Anonymous))
    );
    assert_eq!(uid(&h), before, "no second anonymous user");
    assert_eq!(h.server.hits(Endpoint::SignInAnonymously), 1);
}

#[test]
fn test_anonymous_refresh_due() {
    let mut h = held(engine_anonymous());
    let session = h.engine.session().unwrap();
    // Refresh is scheduled at expires_at − 30 s through the deadline output.
    assert_eq!(session.expires_at_ms, h.now + 7_200_000);
    assert_eq!(
        h.deadline,
        Some(session.expires_at_ms - DEFAULT_REFRESH_MARGIN_MS)
    );
    h.advance_to_deadline();
    assert_eq!(h.sent.len(), 1);
    let s = &h.sent[0];
    assert_eq!(s.endpoint, Endpoint::Token);
    assert_eq!(
        s.authorization, None,
        "refresh never carries the access token"
    );
    let body: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
    assert_eq!(body["grant_type"], "refresh_token");
    assert_eq!(body["client_id"], ENV);
    assert_eq!(body["client_secret"], "");
    assert!(body["refresh_token"].as_str().unwrap().starts_with("rt-"));
    // Concurrent callers wait on the one refresh.
    let ops: Vec<_> = (0..3)
        .map(|_| h.engine.get_login_state(h.now).unwrap())
        .collect();
    let info = h.engine.get_user_info(h.now).unwrap();
    h.run();
    assert_eq!(h.sent.len(), 1, "single flight");
    assert!(ops.iter().all(|op| h.result(*op).is_none()));
    assert_eq!(h.reply_next(), Delivery::Accepted);
    for op in ops {
        assert_eq!(h.result(op), Some(Ok(Completion::LoginState)));
    }
    assert_eq!(h.sent[0].endpoint, Endpoint::UserMe);
    assert_eq!(h.reply_next(), Delivery::Accepted);
    assert_eq!(h.result(info), Some(Ok(Completion::UserInfo)));
    assert_eq!(h.server.hits(Endpoint::Token), 1);
    assert!(h.engine.session().unwrap().expires_at_ms > h.now + 7_000_000);
}

#[test]
fn test_anonymous_refresh_rejected() {
    let mut h = engine_anonymous();
    let before = uid(&h);
    h.server.revoke_all_refresh_tokens();
    h.auto_reply = false;
    h.advance_to_deadline();
    let op = h.engine.get_login_state(h.now).unwrap();
    h.run();
    assert_eq!(h.reply_next(), Delivery::Accepted); // 400 invalid_grant
    // The SDK's behaviour: one automatic anonymous sign-in, with Basic client auth.
    let s = &h.sent[0];
    assert_eq!(s.endpoint, Endpoint::SignInAnonymously);
    let basic = format!("Basic {}", base64(&format!("{ENV}:")));
    assert_eq!(s.authorization.as_deref(), Some(basic.as_str()));
    h.auto_reply = true;
    assert_eq!(h.reply_next(), Delivery::Accepted);
    assert_eq!(h.engine.login_state(), LoginState::Anonymous);
    assert_ne!(uid(&h), before);
    assert_eq!(
        h.changes.as_slice(),
        [
            (LoginState::Anonymous, LoginState::SignedOut),
            (LoginState::SignedOut, LoginState::Anonymous)
        ]
    );
    // The new user is announced as a replacement, and the call that asked about the
    // refused session is not answered with the new one.
    assert_eq!(h.replacements, 1);
    assert_eq!(h.result(op), Some(Err(Error::SessionExpired)));
}

#[test]
fn test_anonymous_refresh_rejected_without_recovery() {
    let mut h = Harness::uninit();
    h.engine
        .init(
            h.now,
            Config::new(ENV).with_anonymous_recovery(false),
            [42; 16],
        )
        .unwrap();
    h.run();
    h.sign_in_anonymously().unwrap();
    h.server.revoke_all_refresh_tokens();
    h.auto_reply = false;
    h.advance_to_deadline();
    let ops = [
        h.engine.get_login_state(h.now).unwrap(),
        h.engine.get_user_info(h.now).unwrap(),
    ];
    h.run();
    assert_eq!(h.reply_next(), Delivery::Accepted); // 400 invalid_grant
    assert!(h.sent.is_empty(), "no new user is signed in");
    assert_eq!(h.engine.login_state(), LoginState::SignedOut);
    assert!(h.engine.session().is_none());
    assert_eq!(h.replacements, 0);
    for op in ops {
        assert_eq!(h.result(op), Some(Err(Error::SessionExpired)));
    }
    h.restart_with(&h.stored.clone().unwrap()).unwrap();
    assert_eq!(h.engine.login_state(), LoginState::SignedOut);
}

#[test]
fn test_anonymous_refresh_rejected_and_recovery_fails() {
    let mut h = held(engine_anonymous());
    h.server.revoke_all_refresh_tokens();
    h.advance_to_deadline();
    let op = h.engine.get_login_state(h.now).unwrap();
    h.run();
    assert_eq!(h.reply_next(), Delivery::Accepted); // invalid_grant
    assert_eq!(
        h.reply_next_with(403, br#"{"error":"permission_denied","error_code":7}"#),
        Delivery::Accepted
    );
    assert_eq!(h.engine.login_state(), LoginState::SignedOut);
    assert_eq!(h.result(op), Some(Err(Error::SessionExpired)));
    assert!(h.sent.is_empty(), "once, not in a loop");
}

#[test]
fn test_anonymous_refresh_transport_failure_keeps_session() {
    let mut h = held(engine_anonymous());
    let before = uid(&h);
    h.advance_to_deadline();
    assert_eq!(h.fail_next(), Delivery::Accepted);
    assert_eq!(h.engine.login_state(), LoginState::Anonymous);
    assert_eq!(uid(&h), before);
    // Backoff: the next try is one backoff step (a second) later, not at once.
    assert_eq!(h.deadline, Some(h.now + RETRY_BACKOFF_MIN_MS));
    h.advance_to_deadline();
    assert_eq!(h.sent[0].endpoint, Endpoint::Token);
    assert_eq!(h.reply_next(), Delivery::Accepted);
    assert!(h.engine.session().unwrap().refresh_at_ms > h.now);
}

#[test]
fn test_anonymous_request_timeout() {
    let mut h = held(engine_anonymous());
    let op = h.engine.get_user_info(h.now).unwrap();
    h.run();
    assert_eq!(h.deadline, Some(h.now + DEFAULT_REQUEST_TIMEOUT_MS));
    h.advance(DEFAULT_REQUEST_TIMEOUT_MS);
    assert!(matches!(h.result(op), Some(Err(Error::Transport(_)))));
    assert_eq!(
        h.result(op).unwrap().unwrap_err().disposition(),
        Disposition::RetryLater
    );
    // The late reply is dropped.
    assert_eq!(h.reply_next(), Delivery::Stale);
    assert_eq!(h.engine.login_state(), LoginState::Anonymous);
}

#[test]
fn test_anonymous_sign_out() {
    let mut h = held(engine_anonymous());
    let token = h.engine.session().unwrap().access_token.to_owned();
    let op = h.engine.sign_out(h.now).unwrap();
    h.run();
    // Wiped locally before the server answers.
    assert_eq!(h.engine.login_state(), LoginState::SignedOut);
    assert!(h.engine.session().is_none());
    h.restart_with(&h.stored.clone().unwrap()).unwrap();
    assert_eq!(h.engine.login_state(), LoginState::SignedOut);
    let s = &h.sent[0];
    assert_eq!(s.endpoint, Endpoint::Revoke);
    assert_eq!(s.authorization, None);
    assert_eq!(
        s.body.as_slice(),
        format!("{{\"token\":\"{token}\"}}").as_bytes()
    );
    let _ = op;
}

#[test]
fn test_anonymous_sign_out_offline() {
    let mut h = held(engine_anonymous());
    let op = h.engine.sign_out(h.now).unwrap();
    h.run();
    assert_eq!(h.fail_next(), Delivery::Accepted);
    assert_eq!(
        h.result(op),
        Some(Ok(Completion::SignedOut { revoked: false }))
    );
    assert_eq!(h.engine.login_state(), LoginState::SignedOut);
    assert!(h.engine.session().is_none());
}

#[test]
fn test_anonymous_sign_out_server_error() {
    let mut h = held(engine_anonymous());
    let op = h.engine.sign_out(h.now).unwrap();
    h.run();
    assert_eq!(
        h.reply_next_with(500, b"<html>oops</html>"),
        Delivery::Accepted
    );
    assert_eq!(
        h.result(op),
        Some(Ok(Completion::SignedOut { revoked: false }))
    );
    assert!(h.engine.session().is_none());
}

#[test]
fn test_anonymous_sign_out_during_refresh() {
    let mut h = held(engine_anonymous());
    h.advance_to_deadline();
    let waiting = h.engine.get_login_state(h.now).unwrap();
    h.run();
    assert!(h.engine.is_refreshing());
    let out = h.engine.sign_out(h.now).unwrap();
    h.run();
    assert_eq!(h.result(waiting), Some(Err(Error::Cancelled)));
    // The refresh reply lands after the sign-out: dropped, the session stays gone.
    assert_eq!(h.reply_next(), Delivery::Stale);
    assert_eq!(h.engine.login_state(), LoginState::SignedOut);
    assert!(h.engine.session().is_none());
    assert_eq!(h.reply_next(), Delivery::Accepted);
    assert_eq!(
        h.result(out),
        Some(Ok(Completion::SignedOut { revoked: true }))
    );
}

#[test]
fn test_anonymous_reply_from_older_generation() {
    let mut h = held(engine_anonymous());
    let gen_before = h.engine.generation();
    let info = h.engine.get_user_info(h.now).unwrap();
    h.run();
    let code = h.server.mint_code("openid-carol");
    h.engine.sign_in_with_wechat(h.now, &code, APPID).unwrap();
    h.run();
    assert!(h.engine.generation() > gen_before);
    assert_eq!(h.result(info), Some(Err(Error::Cancelled)));
    assert_eq!(h.reply_next(), Delivery::Stale); // the user/me of the old session
    assert_eq!(h.reply_next(), Delivery::Accepted); // provider/token
}

#[test]
fn test_anonymous_no_refresh_token_expires() {
    let mut h = engine_initialized();
    h.server.issue_refresh_tokens = false;
    h.sign_in_anonymously().unwrap();
    let s = h.engine.session().unwrap();
    assert!(!s.refreshable);
    assert_eq!(h.deadline, Some(s.expires_at_ms));
    h.advance_to_deadline();
    assert_eq!(h.engine.login_state(), LoginState::SignedOut);
    assert!(h.engine.session().is_none());
    assert_eq!(h.server.hits(Endpoint::Token), 0);
}

#[test]
fn test_anonymous_time_backwards() {
    let mut h = engine_anonymous();
    let deadline = h.deadline;
    h.now -= 3_600_000;
    h.engine.handle_timeout(h.now);
    h.run();
    assert_eq!(h.deadline, deadline);
    assert_eq!(h.sent_count.iter().sum::<u32>(), 2);
    // A later call at the earlier time still sees the later clock.
    let op = h.engine.get_login_state(h.now).unwrap();
    h.run();
    assert_eq!(h.result(op), Some(Ok(Completion::LoginState)));
}

#[test]
fn test_anonymous_get_user_info_unauthenticated() {
    let mut h = engine_anonymous();
    h.server.revoke_all_access_tokens();
    let op = h.engine.get_user_info(h.now).unwrap();
    h.run();
    // user/me 401 → one refresh → user/me again.
    assert_eq!(h.result(op), Some(Ok(Completion::UserInfo)));
    assert_eq!(h.server.hits(Endpoint::Token), 1);
    assert_eq!(h.server.hits(Endpoint::UserMe), 3);
}

#[test]
fn test_anonymous_link_wechat() {
    let mut h = engine_anonymous();
    let before = uid(&h);
    let code = h.server.mint_code("openid-dave");
    let op = h.engine.link_wechat(h.now, &code, APPID).unwrap();
    h.run();
    assert_eq!(h.result(op), Some(Ok(Completion::Linked)));
    assert_eq!(h.engine.login_state(), LoginState::WeChat);
    assert_eq!(uid(&h), before, "linking keeps the uid");
    assert_eq!(h.engine.user().unwrap().openid, "openid-dave");
    assert_eq!(h.server.uid_of_openid("openid-dave"), Some(before.as_str()));
    assert_eq!(
        h.changes.as_slice(),
        [(LoginState::Anonymous, LoginState::WeChat)]
    );
}

#[test]
fn test_anonymous_link_wechat_already_bound() {
    let mut h = engine_wechat();
    let op = h.engine.sign_in_anonymously(h.now).unwrap();
    h.run();
    assert_eq!(
        h.result(op),
        Some(Ok(Completion::SignedIn(LoginState::Anonymous)))
    );
    let code = h.server.mint_code("openid-alice");
    let op = h.engine.link_wechat(h.now, &code, APPID).unwrap();
    h.run();
    let Some(Err(Error::Server(e))) = h.result(op) else {
        panic!("{:?}", h.result(op))
    };
    assert_eq!(e.status, 409);
    assert_eq!(h.engine.login_state(), LoginState::Anonymous);
}

#[test]
fn test_anonymous_link_while_busy() {
    let mut h = held(engine_anonymous());
    h.engine.get_user_info(h.now).unwrap();
    h.run();
    assert_eq!(
        h.engine.link_wechat(h.now, "code-1", APPID),
        Err(Error::ApiMisuse(ApiMisuse::Busy))
    );
}

// ----- WeChat -----------------------------------------------------------------------

#[test]
fn test_wechat_link() {
    let mut h = engine_wechat();
    assert_eq!(
        h.engine.link_wechat(h.now, "code-1", APPID),
        Err(Error::ApiMisuse(ApiMisuse::NotAnonymous))
    );
}

#[test]
fn test_wechat_refresh_rejected() {
    let mut h = held(engine_wechat());
    h.server.revoke_all_refresh_tokens();
    h.advance_to_deadline();
    let op = h.engine.get_user_info(h.now).unwrap();
    h.run();
    assert_eq!(h.reply_next(), Delivery::Accepted);
    assert_eq!(h.engine.login_state(), LoginState::SignedOut);
    assert_eq!(h.result(op), Some(Err(Error::SessionExpired)));
    assert!(
        h.sent.is_empty(),
        "a WeChat session is not replaced by an anonymous one"
    );
}

#[test]
fn test_wechat_sign_in_with_wechat_again() {
    let mut h = engine_wechat();
    assert_eq!(
        h.sign_in_with_wechat("openid-erin"),
        Ok(Completion::SignedIn(LoginState::WeChat))
    );
    assert_eq!(
        h.changes.as_slice(),
        [(LoginState::WeChat, LoginState::WeChat)]
    );
    assert_eq!(h.engine.user().unwrap().openid, "openid-erin");
}

#[test]
fn test_wechat_sign_out() {
    let mut h = engine_wechat();
    let op = h.engine.sign_out(h.now).unwrap();
    h.run();
    assert_eq!(
        h.result(op),
        Some(Ok(Completion::SignedOut { revoked: true }))
    );
    assert_eq!(
        h.changes.as_slice(),
        [(LoginState::WeChat, LoginState::SignedOut)]
    );
    assert!(h.engine.user().is_none());
}

// ----- SignedOut --------------------------------------------------------------------

#[test]
fn test_signed_out_sign_in_anonymously() {
    let mut h = engine_signed_out();
    assert_eq!(
        h.sign_in_anonymously(),
        Ok(Completion::SignedIn(LoginState::Anonymous))
    );
    assert_eq!(
        h.changes.as_slice(),
        [(LoginState::SignedOut, LoginState::Anonymous)]
    );
}

#[test]
fn test_signed_out_get_login_state() {
    let mut h = engine_signed_out();
    let op = h.engine.get_login_state(h.now).unwrap();
    h.run();
    assert_eq!(h.result(op), Some(Ok(Completion::LoginState)));
    assert!(h.engine.session().is_none());
    assert_eq!(h.deadline, None);
}

// ----- host contract ----------------------------------------------------------------

#[test]
fn test_any_poll_buffer_too_small() {
    let mut e = Engine::new();
    e.init(0, Config::new(ENV), [0; 16]).unwrap();
    let mut small = [0u8; 8];
    // A state change needs no buffer.
    assert!(matches!(
        e.poll_output(&mut small),
        Ok(cloudbase_auth_core::Output::LoginStateChanged { .. })
    ));
    e.sign_in_anonymously(0).unwrap();
    assert!(matches!(
        e.poll_output(&mut small),
        Err(Error::ApiMisuse(ApiMisuse::BufferTooSmall { .. }))
    ));
    let mut big = [0u8; cloudbase_auth_core::capacity::POLL_BUFFER_MIN];
    assert!(matches!(
        e.poll_output(&mut big),
        Ok(cloudbase_auth_core::Output::Transmit(_))
    ));
}

#[test]
fn test_any_error_dispositions() {
    use cloudbase_auth_core::{ServerError, TransportError, WireError};
    assert_eq!(Error::NotSignedIn.disposition(), Disposition::KeepSession);
    assert_eq!(
        Error::SessionExpired.disposition(),
        Disposition::ClearSession
    );
    assert_eq!(
        Error::Transport(TransportError::Failed).disposition(),
        Disposition::RetryLater
    );
    assert_eq!(
        Error::Wire(WireError::Truncated).disposition(),
        Disposition::RetryLater
    );
    let s = |status, kind| Error::Server(ServerError::new(status, kind, 0)).disposition();
    assert_eq!(
        s(401, ServerErrorKind::Unauthenticated),
        Disposition::ClearSession
    );
    assert_eq!(
        s(429, ServerErrorKind::ResourceExhausted),
        Disposition::RetryLater
    );
    assert_eq!(
        s(400, ServerErrorKind::InvalidArgument),
        Disposition::KeepSession
    );
}

/// The expected `Basic` credentials, from the `base64` crate (an independent encoder).
fn base64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

// ----- the user's account: profile update, deletion --------------------------------------

#[test]
fn test_wechat_update_profile() {
    let mut h = engine_wechat();
    let op = h
        .engine
        .update_profile(h.now, Some("Bob 😀 B"), Some("https://a.example/b.png"))
        .unwrap();
    h.run();
    assert_eq!(h.result(op), Some(Ok(Completion::ProfileUpdated)));
    let user = h.engine.user().unwrap();
    assert_eq!(
        (user.nick_name, user.avatar_url),
        ("Bob 😀 B", "https://a.example/b.png")
    );
    assert_eq!(h.engine.login_state(), LoginState::WeChat);
    assert_eq!(h.server.hits(Endpoint::UserProfile), 1);
    // The change is in the snapshot: a restart shows it without a request.
    let stored = h.stored.clone().unwrap();
    h.restart_with(&stored).unwrap();
    let user = h.engine.user().unwrap();
    assert_eq!(user.nick_name, "Bob 😀 B");
}

#[test]
fn test_anonymous_update_profile_refused_keeps_the_cached_profile() {
    let mut h = engine_anonymous();
    let before = h.engine.user().unwrap().nick_name.to_owned();
    let op = h
        .engine
        .update_profile(
            h.now,
            Some("a nickname far longer than twenty characters"),
            None,
        )
        .unwrap();
    h.run();
    let Some(Err(Error::Server(e))) = h.result(op) else {
        panic!("{:?}", h.result(op))
    };
    assert_eq!(
        e.to_string(),
        "server refused (HTTP 400 invalid_argument): nickname too long"
    );
    assert_eq!(h.engine.user().unwrap().nick_name, before);
    assert_eq!(h.engine.login_state(), LoginState::Anonymous);
}

#[test]
fn test_anonymous_update_profile_bad_input_sends_nothing() {
    let mut h = engine_anonymous();
    let misuse = |r: Result<_, Error>| match r {
        Err(Error::ApiMisuse(m)) => m,
        other => panic!("{other:?}"),
    };
    let long = "名".repeat(22); // 66 bytes
    assert_eq!(
        misuse(h.engine.update_profile(h.now, Some(&long), None)),
        ApiMisuse::InputTooLong {
            field: "nickname",
            max: 64
        }
    );
    for bad in [
        "ftp://a.example/x.png",
        "javascript:alert(1)",
        "https://",
        "https://a b",
    ] {
        assert_eq!(
            misuse(h.engine.update_profile(h.now, None, Some(bad))),
            ApiMisuse::InputInvalid {
                field: "avatar_url"
            },
            "{bad}"
        );
    }
    let long_url = format!("https://a.example/{}", "x".repeat(256));
    assert_eq!(
        misuse(h.engine.update_profile(h.now, None, Some(&long_url))),
        ApiMisuse::InputTooLong {
            field: "avatar_url",
            max: 256
        }
    );
    assert_eq!(
        misuse(h.engine.update_profile(h.now, None, None)),
        ApiMisuse::InputInvalid { field: "profile" }
    );
    assert_eq!(
        misuse(h.engine.update_profile(h.now, Some(" "), None)),
        ApiMisuse::InputInvalid { field: "nickname" }
    );
    h.run();
    assert_eq!(h.server.hits(Endpoint::UserProfile), 0);
}

#[test]
fn test_signed_out_update_profile_and_delete_account_not_signed_in() {
    let mut h = engine_initialized();
    assert_eq!(
        h.engine.update_profile(h.now, Some("x"), None),
        Err(Error::NotSignedIn)
    );
    assert_eq!(h.engine.delete_account(h.now), Err(Error::NotSignedIn));
}

#[test]
fn test_anonymous_update_profile_when_due_refreshes_first() {
    let mut h = engine_anonymous();
    let refresh_at = h.engine.session().unwrap().refresh_at_ms;
    h.now = refresh_at; // due, but the timer has not fired yet
    let op = h
        .engine
        .update_profile(h.now, None, Some("http://a.example/c.png"))
        .unwrap();
    h.run();
    assert_eq!(h.result(op), Some(Ok(Completion::ProfileUpdated)));
    assert_eq!(h.server.hits(Endpoint::Token), 1);
    assert_eq!(
        h.engine.user().unwrap().avatar_url,
        "http://a.example/c.png"
    );
}

#[test]
fn test_wechat_delete_account() {
    let mut h = engine_wechat();
    let op = h.engine.delete_account(h.now).unwrap();
    h.run();
    assert_eq!(h.result(op), Some(Ok(Completion::AccountDeleted)));
    assert_eq!(h.engine.login_state(), LoginState::SignedOut);
    assert!(h.engine.session().is_none());
    assert_eq!(h.server.hits(Endpoint::DeleteMe), 1);
    assert_eq!(h.server.hits(Endpoint::Revoke), 0, "nothing left to revoke");
    // The stored snapshot is signed out.
    let stored = h.stored.clone().unwrap();
    h.restart_with(&stored).unwrap();
    assert_eq!(h.engine.login_state(), LoginState::SignedOut);
}

#[test]
fn test_anonymous_delete_account_while_busy() {
    let mut h = held(engine_anonymous());
    h.engine.get_user_info(h.now).unwrap();
    h.drain();
    assert_eq!(
        h.engine.delete_account(h.now),
        Err(Error::ApiMisuse(ApiMisuse::Busy))
    );
}
