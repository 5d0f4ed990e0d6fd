//! `Engine::login_state_settled_until`: the window in which a host may answer
//! `getLoginState` from its own copy of the session. Checked against the engine itself:
//! inside the window a `get_login_state` on a copy of the engine completes at once with
//! nothing else reported; at its end (or when there is none) it does not.

use cloudbase_auth_core::capacity::POLL_BUFFER_MIN;
use cloudbase_auth_core::testing::Harness;
use cloudbase_auth_core::{Completion, Delivery, Engine, LoginState, Output};

/// Whether `get_login_state(at)` on a copy of `engine` completes at once, with the
/// completion as its only output.
fn answers_at_once(engine: &Engine, at: u64) -> bool {
    let mut e = engine.clone();
    let Ok(op) = e.get_login_state(at) else {
        return false;
    };
    let mut buf = [0u8; POLL_BUFFER_MIN];
    let mut outputs = 0;
    let mut completed = false;
    loop {
        match e.poll_output(&mut buf).expect("buffer is POLL_BUFFER_MIN") {
            Output::Timeout(_) => return completed && outputs == 1,
            Output::OperationCompleted { op: o, result } => {
                completed = o == op && result == Ok(Completion::LoginState);
                outputs += 1;
            }
            _ => outputs += 1,
        }
    }
}

/// The window agrees with the engine now, just before its end, and at its end.
fn check(h: &Harness, what: &str) -> Option<u64> {
    let until = h.engine.login_state_settled_until();
    match until {
        Some(u) => {
            assert!(u > h.now, "{what}: the window ends in the future");
            assert!(answers_at_once(&h.engine, h.now), "{what}: at once now");
            if u != u64::MAX {
                assert!(
                    answers_at_once(&h.engine, u - 1),
                    "{what}: at once until the end"
                );
                assert!(!answers_at_once(&h.engine, u), "{what}: not at the end");
            } else {
                assert!(
                    answers_at_once(&h.engine, h.now + 365 * 86_400_000),
                    "{what}: no end"
                );
            }
        }
        None => assert!(
            !answers_at_once(&h.engine, h.now),
            "{what}: not at once now"
        ),
    }
    until
}

#[test]
fn uninitialized_has_no_window() {
    let h = Harness::uninit();
    assert_eq!(h.engine.login_state_settled_until(), None);
}

#[test]
fn signed_out_is_settled_for_good() {
    let h = Harness::new();
    assert_eq!(check(&h, "initialized"), Some(u64::MAX));
}

#[test]
fn a_session_is_settled_until_its_refresh_is_due() {
    let mut h = Harness::new();
    h.sign_in_anonymously().unwrap();
    let refresh_at = h.engine.session().unwrap().refresh_at_ms;
    assert_eq!(check(&h, "anonymous"), Some(refresh_at));

    // The refresh in flight: callers wait for it.
    h.auto_reply = false;
    h.advance_to_deadline();
    assert_eq!(h.sent.len(), 1, "the refresh went out");
    assert_eq!(check(&h, "refreshing"), None);
    assert_eq!(h.reply_next(), Delivery::Accepted);
    let after = h.engine.session().unwrap().refresh_at_ms;
    assert!(after > refresh_at);
    assert_eq!(check(&h, "refreshed"), Some(after));
}

#[test]
fn a_sign_in_in_flight_has_no_window() {
    let mut h = Harness::new();
    h.auto_reply = false;
    h.engine.sign_in_anonymously(h.now).unwrap();
    h.run();
    assert_eq!(check(&h, "signing in"), None);
    h.auto_reply = true;
    assert_eq!(h.reply_next(), Delivery::Accepted);
    assert_eq!(h.engine.login_state(), LoginState::Anonymous);
    assert!(check(&h, "signed in").is_some());
}

#[test]
fn another_request_in_flight_bounds_the_window() {
    let mut h = Harness::new();
    h.sign_in_with_wechat("openid-settled").unwrap();
    h.auto_reply = false;
    h.engine.get_user_info(h.now).unwrap();
    h.run();
    assert_eq!(h.sent.len(), 1, "user/me in flight");
    // Answered at once while user/me is out, until the request times out.
    let until = check(&h, "user/me in flight").expect("a window");
    assert_eq!(
        Some(until),
        h.deadline,
        "the request's deadline comes first"
    );
    assert_eq!(h.reply_next(), Delivery::Accepted);
    assert!(check(&h, "user/me answered").is_some());
}

#[test]
fn a_failed_refresh_closes_the_window_until_the_retry() {
    let mut h = Harness::new();
    h.sign_in_anonymously().unwrap();
    h.auto_reply = false;
    h.advance_to_deadline();
    assert_eq!(h.fail_next(), Delivery::Accepted);
    // The refresh time has passed and the retry waits for its backoff: a call now
    // would refresh at once, so there is no window.
    assert_eq!(check(&h, "backing off"), None);
}

#[test]
fn a_session_without_refresh_token_is_settled_until_it_expires() {
    let mut h = Harness::new();
    h.server.issue_refresh_tokens = false;
    h.sign_in_anonymously().unwrap();
    let s = h.engine.session().unwrap();
    assert!(!s.refreshable);
    assert_eq!(check(&h, "no refresh token"), Some(s.expires_at_ms));
}
