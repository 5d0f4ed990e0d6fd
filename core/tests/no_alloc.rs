//! The engine never allocates: a whole session (init, anonymous sign-in, proactive
//! refresh, user info, WeChat link, sign-out) runs through the `testing` harness under a
//! counting global allocator, and the count must not move.
//!
//! Only allocations made by the test's own thread while counting is switched on are
//! counted, so the test framework's threads cannot disturb the figure.

use cloudbase_auth_core::testing::{APPID, ENV, Harness};
use cloudbase_auth_core::wire::Endpoint;
use cloudbase_auth_core::{Completion, Config, LoginState};
use cloudbase_auth_testkit::alloc::{Counting, counted};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_whole_session_allocates_nothing() {
    // Everything that may allocate happens before counting starts: the harness is boxed
    // (it is large), the thread-local is touched, the allocator is exercised once.
    let mut h = Box::new(Harness::uninit());
    h.server.expires_in = 7200;
    drop(vec![0u8; 1]);

    let (observed, allocations) = counted(|| {
        // init
        h.engine
            .init(h.now, Config::new(ENV), [9; 16])
            .expect("valid config");
        h.run();
        let init_state = h.engine.login_state();

        // sign_in_anonymously
        let signed_in = h.sign_in_anonymously();
        let anon_state = h.engine.login_state();
        let anon_uid_len = h.engine.session().map(|s| s.uid.len());

        // advance to 10 s before expiry: past the refresh point (expires_at − the default
        // refresh margin of 30 s)
        let expires_before = h.engine.session().map(|s| s.expires_at_ms);
        h.advance(7_200_000 - 10_000);
        let token_hits = h.server.hits(Endpoint::Token);
        let expires_after = h.engine.session().map(|s| s.expires_at_ms);
        let after_refresh_state = h.engine.login_state();

        // get_user_info
        let info_op = h.engine.get_user_info(h.now).expect("initialised");
        h.run();
        let info = h.result(info_op);
        let nick_is_anonymous = h.engine.user().map(|u| u.nick_name == "anonymous");

        // link_wechat
        let code = h.server.mint_code("openid-no-alloc");
        let link_op = h
            .engine
            .link_wechat(h.now, &code, APPID)
            .expect("anonymous");
        h.run();
        let linked = h.result(link_op);
        let linked_state = h.engine.login_state();
        let openid_ok = h.engine.user().map(|u| u.openid == "openid-no-alloc");

        // sign_out
        let out_op = h.engine.sign_out(h.now).expect("initialised");
        h.run();
        let signed_out = h.result(out_op);
        let final_state = h.engine.login_state();
        let final_session = h.engine.session().is_some();
        (
            init_state,
            signed_in,
            anon_state,
            anon_uid_len,
            expires_before,
            token_hits,
            expires_after,
            after_refresh_state,
            info,
            nick_is_anonymous,
            linked,
            linked_state,
            openid_ok,
            signed_out,
            final_state,
            final_session,
        )
    });
    let (
        init_state,
        signed_in,
        anon_state,
        anon_uid_len,
        expires_before,
        token_hits,
        expires_after,
        after_refresh_state,
        info,
        nick_is_anonymous,
        linked,
        linked_state,
        openid_ok,
        signed_out,
        final_state,
        final_session,
    ) = observed;

    assert_eq!(init_state, LoginState::Initialized);
    assert_eq!(signed_in, Ok(Completion::SignedIn(LoginState::Anonymous)));
    assert_eq!(anon_state, LoginState::Anonymous);
    assert!(anon_uid_len.is_some_and(|n| n > 0));
    assert_eq!(token_hits, 1, "one proactive refresh");
    assert_eq!(after_refresh_state, LoginState::Anonymous);
    assert!(
        expires_after > expires_before,
        "the refresh extended the session: {expires_before:?} -> {expires_after:?}"
    );
    assert_eq!(info, Some(Ok(Completion::UserInfo)));
    assert_eq!(nick_is_anonymous, Some(true));
    assert_eq!(linked, Some(Ok(Completion::Linked)));
    assert_eq!(linked_state, LoginState::WeChat);
    assert_eq!(openid_ok, Some(true));
    assert_eq!(
        signed_out,
        Some(Ok(Completion::SignedOut { revoked: true }))
    );
    assert_eq!(final_state, LoginState::SignedOut);
    assert!(!final_session);
    assert_eq!(
        h.changes.as_slice(),
        [
            (LoginState::Uninitialized, LoginState::Initialized),
            (LoginState::Initialized, LoginState::Anonymous),
            (LoginState::Anonymous, LoginState::WeChat),
            (LoginState::WeChat, LoginState::SignedOut),
        ]
    );
    assert_eq!(allocations, 0, "the session allocated {allocations} times");
}
