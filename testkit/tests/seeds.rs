//! The seed corpora: that each seed passes its target, that the `engine_ops` byte
//! layout decodes back to the intended settings and operations, and (ignored) the writer that
//! regenerates `fuzz/corpus/<target>/`.

use cloudbase_auth_testkit::corpus;
use cloudbase_auth_testkit::fuzz::decode_run;
use cloudbase_auth_testkit::seeds::{
    Seed, encode_ops, encode_run, engine_ops_seeds, op_sequences, response_seeds, snapshot_seeds,
};
use cloudbase_auth_testkit::{
    Op, Setup, fuzz_engine_ops, fuzz_response_parse, fuzz_snapshot_decode,
};

#[test]
fn every_seed_passes_its_target() {
    for (_, bytes) in snapshot_seeds() {
        fuzz_snapshot_decode(&bytes);
    }
    for (_, bytes) in response_seeds() {
        fuzz_response_parse(&bytes);
    }
    for (_, bytes) in engine_ops_seeds() {
        fuzz_engine_ops(&bytes);
    }
}

#[test]
fn encoded_ops_decode_back() {
    let every_variant = vec![
        Op::GetLoginState,
        Op::GetUserInfo,
        Op::SignInAnonymously,
        Op::SignInWeChat { openid_idx: 7 },
        Op::SignInWeChatBadCode,
        Op::LinkWeChat { openid_idx: 255 },
        Op::SignOut,
        Op::ReplyGood { oldest: true },
        Op::ReplyError {
            status_idx: 3,
            kind_idx: 9,
        },
        Op::ReplyGarbage {
            status_idx: 1,
            bytes: vec![0, 1, 255],
        },
        Op::ReplyLateDuplicate { idx: 2 },
        Op::TransportFail,
        Op::Advance { ms: 7_200_000 },
        Op::AdvanceToDeadline,
        Op::Elapse { ms: 1 },
        Op::Backwards { ms: u32::MAX },
        Op::Restore,
        Op::RestoreCorrupted { flip: 0xbeef },
        Op::ServerRevokesRefreshTokens,
        Op::ServerExpiresAccessTokens,
        Op::ShortTokens { secs: 120 },
        Op::NoRefreshTokens,
        Op::UpdateProfile { change_idx: 200 },
        Op::DeleteAccount,
    ];
    assert_eq!(
        decode_run(&encode_ops(&every_variant)),
        (Setup::default(), every_variant.clone())
    );
    let recovery_off = Setup {
        anonymous_recovery: false,
    };
    assert_eq!(
        decode_run(&encode_run(recovery_off, &every_variant)),
        (recovery_off, every_variant)
    );
    assert!(
        op_sequences()
            .iter()
            .any(|(_, setup, _)| *setup == recovery_off),
        "a seed runs without the anonymous recovery"
    );
    for (name, setup, ops) in op_sequences() {
        assert_eq!(decode_run(&encode_run(setup, &ops)), (setup, ops), "{name}");
    }
}

/// The states the snapshot seeds cover (the engine's five but `Uninitialized`, which
/// no snapshot may hold).
#[test]
fn snapshot_seeds_cover_every_state() {
    use cloudbase_auth_core::LoginState::*;
    use cloudbase_auth_testkit::snapshot_file::read;
    let states: Vec<_> = snapshot_seeds()
        .iter()
        .filter_map(|(_, b)| read(b))
        .map(|f| f.state)
        .collect();
    for s in [Initialized, Anonymous, WeChat, SignedOut] {
        assert!(states.contains(&s), "{s:?}");
    }
}

/// The core targets' seeds and the seed code agree.
#[test]
fn seed_corpora_are_committed() {
    for (target, seeds) in core_seeds() {
        corpus::assert_seeds_committed(target, &seeds, REGENERATE);
    }
}

const REGENERATE: &str =
    "cargo test -p cloudbase-auth-testkit --test seeds -- --ignored write_seed_corpora";

fn core_seeds() -> [(&'static str, Vec<Seed>); 3] {
    [
        ("snapshot_decode", snapshot_seeds()),
        ("response_parse", response_seeds()),
        ("engine_ops", engine_ops_seeds()),
    ]
}

/// Regenerates the committed seed corpora (`REGENERATE`).
#[test]
#[ignore = "writes fuzz/corpus/; run by hand to regenerate the seeds"]
fn write_seed_corpora() {
    for (target, seeds) in core_seeds() {
        corpus::write_seeds(target, &seeds);
    }
}
