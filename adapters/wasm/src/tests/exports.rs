//! The exports one by one: host values validated, sessions through the exports, replies
//! oversized and stale, deadlines.

use super::*;
use crate::abi::{EXCHANGE_LEN, TIME_MAX, arg};
use cloudbase_auth_core::Error;

#[test]
fn values_from_the_host_are_validated() {
    let _g = fresh();
    let base = cba_buf().addr();
    let range = code(Error::CLASS_HOST, arg::RANGE);
    // Pointers outside the exchange buffer, overflowing lengths, a seed cut at the end.
    for (ptr, len) in [
        (0, 3),
        (usize::MAX, 2),
        (base, usize::MAX),
        (base + EXCHANGE_LEN, 1),
        (base - 1, 2),
    ] {
        let p = put(&[ENV.as_bytes(), &[1; 16]]);
        assert_eq!(
            input(cba_init(T0, ptr, len, 0, 0, p[1].0)),
            range,
            "{ptr} {len}"
        );
    }
    let p = put(&[ENV.as_bytes()]);
    assert_eq!(
        input(cba_init(T0, p[0].0, p[0].1, 0, 0, base + EXCHANGE_LEN - 15)),
        range
    );
    // An empty string at the very end is fine as a range (then refused as an env).
    let p = put(&[&[1; 16]]);
    assert_eq!(
        input(cba_init(T0, base + EXCHANGE_LEN, 0, 0, 0, p[0].0)),
        code(Error::CLASS_API_MISUSE, 7)
    );
    assert_eq!(last_error(), (2, 7, 0, 0, 0.0, "env".into()));
    // An input before the previous one was drained is refused (and changes nothing).
    let p = put(&[ENV.as_bytes(), &[1; 16]]);
    assert_eq!(cba_init(T0, p[0].0, p[0].1, 0, 0, p[1].0), 0.0);
    let not_drained = code(Error::CLASS_HOST, arg::NOT_DRAINED);
    assert_eq!(cba_get_login_state(T0), not_drained);
    assert_eq!(cba_handle_timeout(T0), not_drained);
    assert_eq!(drain(), [OutputRecord::Changed(0, 1), NO_DEADLINE]);
    cba_reset();
    // Not UTF-8.
    let p = put(&[b"env\xff", &[1; 16]]);
    assert_eq!(
        input(cba_init(T0, p[0].0, p[0].1, 0, 0, p[1].0)),
        code(Error::CLASS_HOST, arg::UTF8)
    );
    // Times.
    for t in [f64::NAN, -1.0, f64::INFINITY, f64::NEG_INFINITY, 1e300] {
        let p = put(&[ENV.as_bytes(), &[1; 16]]);
        let bad_time = code(Error::CLASS_HOST, arg::TIME);
        assert_eq!(input(cba_init(t, p[0].0, p[0].1, 0, 0, p[1].0)), bad_time);
        assert_eq!(input(cba_handle_timeout(t)), bad_time);
        assert_eq!(input(cba_sign_out(t)), bad_time);
    }
    // Calls before init are typed errors.
    let not_init = code(Error::CLASS_API_MISUSE, 1);
    for call in [
        cba_get_login_state,
        cba_get_user_info,
        cba_sign_in_anonymously,
        cba_sign_out,
    ] {
        assert_eq!(input(call(T0)), not_init);
    }
    assert_eq!(input(cba_restore(T0, base, 0)), not_init);
    assert_eq!(cba_login_state(), 0);
    assert_eq!(cba_session(), 0.0);
    assert_eq!(cba_user(), 0.0);
    // A bad client id names its field.
    let p = put(&[ENV.as_bytes(), b"bad id", &[1; 16]]);
    assert!(input(cba_init(T0, p[0].0, p[0].1, p[1].0, p[1].1, p[2].0)) < 0.0);
    assert_eq!(last_error().5, "client_id");
    // A status that is not a u16; a reply to a request that does not exist.
    init(T0);
    assert_eq!(
        input(cba_handle_response(T0, 0, 1, 70_000, base, 0)),
        code(Error::CLASS_HOST, arg::STATUS)
    );
    assert_eq!(input(cba_handle_transport_error(T0, 9, 9)), 0.0, "stale");
    // WeChat inputs.
    let p = put(&[b"code with space", APPID.as_bytes()]);
    assert!(input(cba_sign_in_with_wechat(T0, p[0].0, p[0].1, p[1].0, p[1].1)) < 0.0);
    assert_eq!(last_error(), (2, 7, 0, 0, 0.0, "code".into()));
    let p = put(&[b"code", APPID.as_bytes()]);
    assert!(input(cba_link_wechat(T0, p[0].0, p[0].1, p[1].0, p[1].1)) < 0.0);
    assert_eq!(last_error().1, 5, "not anonymous");
    let p = put(&[b"code", b"wx/bad"]);
    assert!(input(cba_sign_in_with_wechat(T0, p[0].0, p[0].1, p[1].0, p[1].1)) < 0.0);
    assert_eq!(last_error().5, "appid");
}

#[test]
fn an_anonymous_session_through_the_exports() {
    let _g = fresh();
    init(T0);
    let outs = sign_in_anonymously();
    assert!(matches!(outs.last(), Some(OutputRecord::Timeout(Some(d))) if *d > T0));
    assert_eq!(cba_login_state(), 2);
    assert_eq!(cba_session(), 1.0);
    let s = read(|r| r.session());
    assert_eq!(
        (
            s.uid.as_str(),
            s.token_type.as_str(),
            s.access_token.as_str()
        ),
        ("100", "Bearer", "at-100")
    );
    assert_eq!(s.expires_at, T0 + 7_200_000.0);
    assert_eq!(s.refresh_at, T0 + 7_170_000.0);
    assert!(s.refreshable);
    assert_eq!(cba_user(), 1.0);
    assert_eq!(read(|r| r.user()), ["100", "匿名😀", "", "", ""]);

    // getLoginState answers at once; a second anonymous sign-in reuses the session.
    let op = cba_get_login_state(T0 + 1.0);
    assert_eq!(done(&drain()[0]), Some((op as u32, Ok((1, 0)))));
    let op = cba_sign_in_anonymously(T0 + 2.0);
    assert_eq!(done(&drain()[0]), Some((op as u32, Ok((2, 2)))));

    // getUserInfo fetches user/me; a server error arrives as an error record.
    let op = cba_get_user_info(T0 + 3.0);
    let t = transmits(&drain()).remove(0);
    let outs = respond(
        T0 + 4.0,
        &t,
        503,
        r#"{"error":"unavailable","error_code":14,"error_description":"busy"}"#,
    );
    let server = Error::CLASS_SERVER;
    assert_eq!(done(&outs[0]), Some((op as u32, Err((server, 0)))));
    let op = cba_get_user_info(T0 + 5.0);
    let t = transmits(&drain()).remove(0);
    let p = put(&[br#"{"error":"unavailable","error_code":14}"#]);
    cba_handle_response(T0 + 6.0, t.generation, t.seq, 503, p[0].0, p[0].1);
    assert_eq!(cba_poll(), 5.0);
    let (completed_op, ok) = read(|r| Ok((r.num("op")?, r.num("ok")?)));
    assert_eq!((completed_op, ok), (op, 0.0));
    let e = read(|r| {
        r.num("op")?;
        r.num("ok")?;
        r.error()
    });
    let e = flat(e);
    assert_eq!(e, (server, 0, 503, 8, 14.0, String::new()));
    let not_drained = code(Error::CLASS_HOST, arg::NOT_DRAINED);
    assert_eq!(cba_handle_timeout(T0), not_drained);
    drain();

    // Sign-out offline: state and snapshot change at once, the revoke fails later.
    let op = cba_sign_out(T0 + 7.0);
    let outs = drain();
    assert_eq!(outs[0], OutputRecord::Changed(2, 4));
    assert!(matches!(outs[1], OutputRecord::Persist(_)));
    let t = transmits(&outs).remove(0);
    assert!(t.path.starts_with("/auth/v1/revoke?client_id="));
    assert_eq!(
        cba_handle_transport_error(T0 + 8.0, t.generation, t.seq),
        1.0
    );
    assert_eq!(done(&drain()[0]), Some((op as u32, Ok((5, 0)))));
    assert_eq!(cba_session(), 0.0);
    assert_eq!(cba_user(), 0.0);
    let op = cba_get_user_info(T0 + 9.0);
    let not_signed_in = Error::CLASS_NOT_SIGNED_IN;
    assert_eq!(
        done(&drain()[0]),
        Some((op as u32, Err((not_signed_in, 0))))
    );
}

#[test]
fn a_refused_anonymous_session_is_announced_as_replaced() {
    let _g = fresh();
    init(T0);
    sign_in_anonymously();
    // The refresh, due at expires_at − 30 s, is refused: the refresh token was revoked.
    let due = T0 + 7_170_000.0;
    let op = cba_get_login_state(due);
    let t = transmits(&drain()).remove(0);
    let outs = respond(
        due,
        &t,
        400,
        r#"{"error":"invalid_grant","error_code":4,"error_description":"revoked"}"#,
    );
    assert!(outs.contains(&OutputRecord::Changed(2, 4)), "{outs:?}");
    assert!(
        completes(&outs, op, Err((Error::CLASS_SESSION_EXPIRED, 0))),
        "the waiting call learns the session ended: {outs:?}"
    );
    // The automatic anonymous sign-in: a new user, announced before its state change.
    let t = transmits(&outs).remove(0);
    let outs = respond(due, &t, 200, &creds("200", "anonymous"));
    let at = outs
        .iter()
        .position(|o| *o == OutputRecord::Replaced)
        .expect("kind 6");
    assert_eq!(outs[at + 1], OutputRecord::Changed(4, 2), "{outs:?}");
    assert_eq!(cba_session(), 1.0);
    assert_eq!(read(|r| r.session()).uid, "200");
}

#[test]
fn wechat_sign_in_and_link_through_the_exports() {
    let _g = fresh();
    init(T0);
    sign_in_anonymously();
    let p = put(&[b"code-1", APPID.as_bytes()]);
    let op = cba_link_wechat(T0, p[0].0, p[0].1, p[1].0, p[1].1);
    assert!(op >= 1.0);
    let t = transmits(&drain()).remove(0);
    assert!(t.path.starts_with("/auth/v1/provider/token?"));
    let body = String::from_utf8(t.body.clone().unwrap()).unwrap();
    assert!(body.contains("code-1") && body.contains(APPID), "{body}");
    let outs = respond(T0, &t, 200, r#"{"provider_token":"pt-1","expires_in":300}"#);
    let t = transmits(&outs).remove(0);
    assert_eq!(t.path, "/auth/v1/user/provider/bind");
    let outs = respond(T0, &t, 200, "{}");
    assert!(outs.contains(&OutputRecord::Changed(2, 3)));
    let outs = respond(T0, &transmits(&outs)[0], 200, &creds("100", "user"));
    let user = format!(
        r#"{{"sub":"100","name":"微信用户","picture":"https://a/b.png","providers":[{{"id":"{APPID}","provider_user_id":"oOPENID"}}]}}"#
    );
    let outs = respond(T0, &transmits(&outs)[0], 200, &user);
    assert!(completes(&outs, op, Ok((4, 0))), "{outs:?}");
    assert_eq!(cba_user(), 1.0);
    let u = read(|r| r.user());
    assert_eq!(u, ["100", "微信用户", "https://a/b.png", "", "oOPENID"]);

    // A fresh WeChat sign-in replaces the session.
    let p = put(&[b"code-2", APPID.as_bytes()]);
    let op = cba_sign_in_with_wechat(T0, p[0].0, p[0].1, p[1].0, p[1].1);
    let outs = drain();
    let outs = respond(
        T0,
        &transmits(&outs)[0],
        200,
        r#"{"provider_token":"pt-2","expires_in":300}"#,
    );
    let outs = respond(T0, &transmits(&outs)[0], 200, &creds("200", "user"));
    let outs = respond(T0, &transmits(&outs)[0], 200, r#"{"sub":"200"}"#);
    assert!(completes(&outs, op, Ok((2, 3))), "{outs:?}");
}

#[test]
fn oversized_and_stale_replies() {
    let _g = fresh();
    init(T0);
    cba_sign_in_anonymously(T0);
    let t = transmits(&drain()).remove(0);
    // The whole buffer: over the core's body limit, a typed wire error.
    let base = cba_buf().addr();
    with_exchange(|x| x.fill(b' '));
    assert_eq!(
        cba_handle_response(T0, t.generation, t.seq, 200, base, EXCHANGE_LEN),
        1.0
    );
    assert_eq!(done(&poll()), Some((1, Err((Error::CLASS_WIRE, 1)))));
    drain();
    // The same id again is stale.
    assert_eq!(
        cba_handle_response(T0, t.generation, t.seq, 200, base, 2),
        0.0
    );
    drain();
}

/// Found by the `wasm_abi` fuzz target: with the clock near 2^53 ms, the refresh
/// deadline of a new session lies past it and was reported as is, and
/// `cba_handle_timeout` refused that very deadline with `ARG_TIME`. Deadlines are
/// capped at 2^53 now.
#[test]
fn deadlines_are_times_the_exports_take() {
    let _g = fresh();
    let now = TIME_MAX as f64 - 1_000.0;
    init(now);
    cba_sign_in_anonymously(now);
    let t = transmits(&drain()).remove(0);
    let outs = respond(now, &t, 200, &creds("u1", "anonymous"));
    let Some(OutputRecord::Timeout(Some(deadline))) = outs.last() else {
        panic!("{outs:?}")
    };
    assert_eq!(*deadline, TIME_MAX as f64);
    assert_eq!(cba_handle_timeout(*deadline), 0.0);
    drain();
}

/// What the facade used to work out for itself comes from the engine: the default
/// origin of the env, and which login states have a session.
#[test]
fn the_engine_tells_the_default_origin_and_which_states_are_signed_in() {
    let _g = fresh();
    assert_eq!(cba_default_origin(), 0.0, "no env before init");
    init(T0);
    assert_eq!(cba_default_origin(), 1.0);
    let origin = read(|r| Ok(r.text("origin")?.to_string()));
    assert_eq!(
        origin,
        "https://wasm-test-1a2b.ap-shanghai.tcb-api.tencentcloudapi.com"
    );
    let signed_in: Vec<u32> = (0..6).map(cba_is_signed_in).collect();
    assert_eq!(
        signed_in,
        [0, 0, 1, 1, 0, 0],
        "anonymous (2) and WeChat (3)"
    );
    assert_eq!(cba_is_signed_in(u32::MAX), 0);
    assert_eq!(cba_is_signed_in(256 + 2), 0);
}

/// `cba_settled_until`: no window before init, no limit while signed out, the refresh
/// time of a session, none while a sign-in is in flight.
#[test]
fn the_engine_tells_how_long_the_login_state_holds() {
    let _g = fresh();
    assert_eq!(cba_settled_until(), -1.0, "nothing before init");
    init(T0);
    assert_eq!(cba_settled_until(), TIME_MAX as f64, "signed out: no limit");
    let op = cba_sign_in_anonymously(T0);
    assert!(op >= 1.0);
    let t = transmits(&drain()).remove(0);
    assert_eq!(
        cba_settled_until(),
        -1.0,
        "a sign-in in flight: callers wait"
    );
    let me = transmits(&respond(T0, &t, 200, &creds("100", "anonymous"))).remove(0);
    respond(T0, &me, 200, r#"{"sub":"100"}"#);
    assert_eq!(cba_session(), 1.0);
    let s = read(|r| r.session());
    assert_eq!(
        cba_settled_until(),
        s.refresh_at,
        "until the refresh is due"
    );
    assert!(s.refresh_at > T0);
}

#[test]
fn profile_update_and_account_deletion_through_the_exports() {
    use crate::abi::profile::{AVATAR_URL, NICKNAME};
    let _g = fresh();
    init(T0);
    // Before a session: refused by the engine, nothing sent.
    let p = put(&["Ming".as_bytes()]);
    assert_eq!(
        input(cba_update_profile(T0, p[0].0, p[0].1, 0, 0, NICKNAME)),
        code(Error::CLASS_NOT_SIGNED_IN, 0)
    );
    assert_eq!(
        input(cba_delete_account(T0)),
        code(Error::CLASS_NOT_SIGNED_IN, 0)
    );
    sign_in_anonymously();

    // Host values: unknown field bits, a pair outside the buffer or not UTF-8 (only the
    // pairs of the fields given are read), then the engine's own checks.
    let p = put(&["Ming".as_bytes(), b"\xff"]);
    assert_eq!(
        input(cba_update_profile(T0, p[0].0, p[0].1, 0, 0, 4)),
        code(Error::CLASS_HOST, arg::FLAGS)
    );
    let p = put(&["Ming".as_bytes(), b"\xff"]);
    assert_eq!(
        input(cba_update_profile(
            T0,
            p[0].0,
            p[0].1,
            p[1].0,
            p[1].1,
            NICKNAME | AVATAR_URL
        )),
        code(Error::CLASS_HOST, arg::UTF8)
    );
    assert_eq!(
        input(cba_update_profile(T0, 0, 9, 0, 0, AVATAR_URL)),
        code(Error::CLASS_HOST, arg::RANGE)
    );
    assert_eq!(
        input(cba_update_profile(T0, 0, 0, 0, 0, 0)),
        code(Error::CLASS_API_MISUSE, 7)
    );
    assert_eq!(last_error().5, "profile");

    // A change: the request the core writes, the reply cached and persisted.
    let p = put(&["Ming".as_bytes(), b"\xff"]);
    let op = cba_update_profile(T0, p[0].0, p[0].1, usize::MAX, 3, NICKNAME);
    assert!(op >= 1.0, "{op} {:?}", error_record());
    let t = transmits(&drain()).remove(0);
    assert_eq!(
        (t.method.as_str(), t.path.as_str()),
        ("POST", "/auth/v1/user/profile")
    );
    assert!(
        t.headers
            .contains(&("x-http-method-override".into(), "PATCH".into()))
    );
    assert_eq!(t.body.as_deref(), Some(&br#"{"name":"Ming"}"#[..]));
    let outs = respond(T0, &t, 200, r#"{"sub":"100","name":"Ming"}"#);
    assert!(completes(&outs, op, Ok((6, 0))), "{outs:?}");
    assert!(persisted(&outs).is_some());
    assert_eq!(cba_user(), 1.0);
    assert_eq!(read(|r| r.user())[1], "Ming");

    // A refusal carries the server's texts in the error record.
    let p = put(&["Ming".as_bytes()]);
    let op = cba_update_profile(T0, p[0].0, p[0].1, 0, 0, NICKNAME);
    let t = transmits(&drain()).remove(0);
    let outs = respond(
        T0,
        &t,
        400,
        r#"{"error":"invalid_argument","error_code":3,"error_description":"nickname taken"}"#,
    );
    let refused = outs
        .iter()
        .find_map(|o| match o {
            OutputRecord::Completed {
                op: id,
                result: Err(e),
            } if f64::from(*id) == op => Some(e.clone()),
            _ => None,
        })
        .expect("the refusal");
    assert_eq!((refused.class, refused.status), (Error::CLASS_SERVER, 400));
    assert_eq!(refused.error, "invalid_argument");
    assert_eq!(refused.error_description, "nickname taken");

    // Deletion: DELETE user/me, then signed out with a snapshot.
    let op = cba_delete_account(T0);
    let t = transmits(&drain()).remove(0);
    assert_eq!(
        (t.method.as_str(), t.path.as_str()),
        ("DELETE", "/auth/v1/user/me")
    );
    let outs = respond(T0, &t, 200, "{}");
    assert!(completes(&outs, op, Ok((7, 0))), "{outs:?}");
    assert!(outs.contains(&OutputRecord::Changed(2, 4)), "{outs:?}");
    assert_eq!(cba_session(), 0.0);
}
