//! Model-based property test of the session engine.
//!
//! Random runs — host settings ([`Setup`]) and a sequence of [`Op`]s, drawn by the
//! weighted strategies below — against the engine and the reference model of
//! `cloudbase_auth_testkit::model` (the same types, model and invariant checks the
//! `engine_ops` fuzz target replays): see that module for what is compared after every
//! step. The default is 256 cases; `PROPTEST_CASES` raises it.

use cloudbase_auth_testkit::{Op, Setup, run_ops, run_with};

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

// ----- proptest -------------------------------------------------------------------------

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::GetLoginState),
        3 => Just(Op::GetUserInfo),
        4 => Just(Op::SignInAnonymously),
        2 => any::<u8>().prop_map(|openid_idx| Op::SignInWeChat { openid_idx }),
        1 => Just(Op::SignInWeChatBadCode),
        3 => any::<u8>().prop_map(|openid_idx| Op::LinkWeChat { openid_idx }),
        1 => Just(Op::SignOut),
        20 => Just(Op::ReplyGood { oldest: false }),
        3 => Just(Op::ReplyGood { oldest: true }),
        3 => (any::<u8>(), any::<u8>())
            .prop_map(|(status_idx, kind_idx)| Op::ReplyError { status_idx, kind_idx }),
        1 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..24))
            .prop_map(|(status_idx, bytes)| Op::ReplyGarbage { status_idx, bytes }),
        1 => any::<u8>().prop_map(|idx| Op::ReplyLateDuplicate { idx }),
        2 => Just(Op::TransportFail),
        2 => (0u32..20_000).prop_map(|ms| Op::Advance { ms }),
        2 => (7_000_000u32..7_300_000).prop_map(|ms| Op::Advance { ms }),
        4 => Just(Op::AdvanceToDeadline),
        1 => (0u32..40_000).prop_map(|ms| Op::Elapse { ms }),
        1 => (0u32..10_000_000).prop_map(|ms| Op::Backwards { ms }),
        1 => Just(Op::Restore),
        1 => any::<u16>().prop_map(|flip| Op::RestoreCorrupted { flip }),
        2 => Just(Op::ServerRevokesRefreshTokens),
        2 => Just(Op::ServerExpiresAccessTokens),
        1 => any::<u8>().prop_map(|secs| Op::ShortTokens { secs }),
        1 => Just(Op::NoRefreshTokens),
        2 => any::<u8>().prop_map(|change_idx| Op::UpdateProfile { change_idx }),
        1 => Just(Op::DeleteAccount),
    ]
}

/// One run in four without the automatic anonymous recovery (`Config::new` has it on).
fn setup_strategy() -> impl Strategy<Value = Setup> {
    prop_oneof![
        3 => Just(Setup::default()),
        1 => Just(Setup { anonymous_recovery: false }),
    ]
}

proptest! {
    // 256 cases by default; `PROPTEST_CASES` overrides (read by `Config::default()`).
    // No regression files: a failure prints its minimal sequence; pin it as a `#[test]`.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_agrees_with_model(
        setup in setup_strategy(),
        ops in proptest::collection::vec(op_strategy(), 1..64),
    ) {
        run_with(setup, &ops);
    }
}

// ----- pinned sequences -----------------------------------------------------------------

#[test]
fn model_smoke_full_flow() {
    use Op::*;
    run_ops(&[
        SignInAnonymously,
        ReplyGood { oldest: false },
        ReplyGood { oldest: false },
        GetUserInfo,
        ReplyGood { oldest: false },
        LinkWeChat { openid_idx: 0 },
        ReplyGood { oldest: false },
        ReplyGood { oldest: false },
        ReplyGood { oldest: false },
        ReplyGood { oldest: false },
        AdvanceToDeadline,
        GetLoginState,
        ReplyGood { oldest: false },
        Restore,
        SignOut,
        ReplyGood { oldest: false },
    ]);
}

#[test]
fn model_smoke_refresh_rejected_recovers() {
    use Op::*;
    run_ops(&[
        SignInAnonymously,
        ReplyGood { oldest: false },
        ReplyGood { oldest: false },
        ServerRevokesRefreshTokens,
        AdvanceToDeadline,
        GetUserInfo,
        ReplyGood { oldest: false },
        ReplyGood { oldest: false },
        ReplyGood { oldest: false },
        ReplyGood { oldest: false },
    ]);
}

// ----- regressions: engine bugs the model found (fixed) --------------------------------

/// Was: a refused `link_wechat` (here `Busy`: a sign-in is in flight) brought a time
/// past the request's timeout but fired nothing: the next `Timeout` was 1 ms in the
/// past. Every input runs the timers, so no deadline `poll_timeout` reports is ever in
/// the past.
#[test]
fn regression_deadline_in_the_past_after_refused_link() {
    use Op::*;
    run_ops(&[
        SignInAnonymously,
        Elapse { ms: 15_001 },
        LinkWeChat { openid_idx: 0 },
    ]);
}

/// Was: the same through a stale reply: after the sign-in's credentials were taken, a
/// duplicate of that reply arrived 1 ms after the `user/me` request's deadline; the
/// engine dropped it (`Stale`), advanced its clock, ran no timers, and reported the
/// request deadline that had already passed.
#[test]
fn regression_deadline_in_the_past_after_stale_reply() {
    use Op::*;
    run_ops(&[
        SignInAnonymously,
        ReplyGood { oldest: false },
        Elapse { ms: 15_001 },
        ReplyLateDuplicate { idx: 0 },
    ]);
}

/// Was: of two `get_user_info` calls sharing one `user/me`, when the anonymous session
/// was refused (`user/me` 401 → `token` `invalid_grant` → automatic anonymous sign-in),
/// the second was answered with the automatic sign-in's `Ok(SignedIn(Anonymous))`.
/// Now both fail with `SessionExpired` (`Config::anonymous_recovery`: the calls waiting
/// on the refused user fail; none is answered with the new one), and the new user is
/// announced with `SessionReplaced`.
#[test]
fn regression_joined_user_info_gets_sign_in_result() {
    use Op::*;
    run_ops(&[
        SignInAnonymously,
        ReplyGood { oldest: false }, // credentials
        ReplyGood { oldest: false }, // user/me
        GetUserInfo,                 // op 2: user/me in flight
        GetUserInfo,                 // op 3: joins op 2
        ReplyError {
            status_idx: 0, // 400
            kind_idx: 1,   // unauthenticated → refresh
        },
        ReplyError {
            status_idx: 0, // 400
            kind_idx: 0,   // invalid_grant → ops 2, 3 SessionExpired → new user
        },
        ReplyGood { oldest: false }, // recovery credentials
        ReplyGood { oldest: false }, // the new user's user/me
    ]);
}
