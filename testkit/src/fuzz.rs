//! The bodies of the cargo-fuzz targets in `fuzz/fuzz_targets/`, one function each.
//!
//! Each target is a one-liner calling the function of the same name, so a crash input
//! replays in a plain `cargo test` (`tests/fuzz_inputs.rs` runs every file under
//! `fuzz/regressions/<target>/` and `fuzz/corpus/<target>/` through these). Every
//! function panics on a broken property and returns quietly otherwise; none may panic
//! for any input the engine or parser is right to refuse.

use cloudbase_auth_core::config::DEFAULT_REQUEST_TIMEOUT_MS;
use cloudbase_auth_core::testing::{ENV, Harness, observe};
use cloudbase_auth_core::wire::{self, Credentials, Endpoint, ErrorBody, ProviderTokenReply, User};
use cloudbase_auth_core::{
    Completion, Delivery, Error, LoginState, ServerErrorKind, SnapshotError, WireError,
};
use serde::Serialize;
use std::fmt::Debug;

use crate::snapshot_file::{self, SnapshotFile};

// ----- snapshot_decode ------------------------------------------------------------------

/// Host time of every restore in `snapshot_decode`: one hour after the harness's `T0`,
/// so the seed snapshots (saved around `T0`) restore on a clock that moved on, and
/// mutated `saved_at` values land on both sides of it.
pub const RESTORE_AT: u64 = cloudbase_auth_core::testing::T0 + 3_600_000;

/// A fresh harness at [`RESTORE_AT`] that holds requests for the caller to answer.
fn host() -> Box<Harness> {
    let mut h = Box::new(Harness::uninit());
    h.auto_reply = false;
    h.now = RESTORE_AT;
    h
}

/// `snapshot_decode`: `data` as stored snapshot bytes, restored into a fresh initialised
/// engine; then the same bytes with a valid CRC (so mutations reach the body decoder).
///
/// Checks: a refused snapshot leaves the engine `SignedOut` with storage cleared (or
/// untouched `Initialized` for another env's snapshot); an accepted one reads with the
/// independent [`snapshot_file`] reader and the engine shows exactly its fields (the
/// clock rule applied); the engine's own re-encoding (obtained through the public API:
/// the expiry, refresh or profile fetch that makes it persist) restores into a third
/// engine that shows the same login state, session view and user view.
pub fn fuzz_snapshot_decode(data: &[u8]) {
    restore_and_check(data);
    let mut sealed = data.to_vec();
    snapshot_file::reseal(&mut sealed);
    if sealed != data {
        restore_and_check(&sealed);
    }
}

fn restore_and_check(bytes: &[u8]) {
    let mut h = host();
    let result = h.restart_with(bytes);
    let file = snapshot_file::read(bytes);
    let initialized = (LoginState::Uninitialized, LoginState::Initialized);
    match result {
        Err(Error::Snapshot(SnapshotError::EnvMismatch)) => {
            let f = file.expect("EnvMismatch for bytes that do not read as a snapshot");
            assert_ne!(f.env, ENV, "EnvMismatch for the engine's own env");
            assert_eq!(h.engine.login_state(), LoginState::Initialized);
            assert_eq!(
                h.changes.as_slice(),
                [initialized],
                "foreign snapshot: no change"
            );
            assert_eq!(h.clears, 0, "a foreign snapshot is left alone");
            assert!(h.stored.is_none() && h.sent.is_empty());
            assert!(h.engine.session().is_none() && h.engine.user().is_none());
        }
        Err(Error::Snapshot(e)) => {
            assert_eq!(h.engine.login_state(), LoginState::SignedOut, "{e:?}");
            assert_eq!(
                h.changes.as_slice(),
                [
                    initialized,
                    (LoginState::Initialized, LoginState::SignedOut)
                ],
                "{e:?}"
            );
            assert_eq!(h.clears, 1, "a refused snapshot is cleared ({e:?})");
            assert!(h.stored.is_none() && h.sent.is_empty());
            assert!(h.engine.session().is_none() && h.engine.user().is_none());
            assert_eq!(h.engine.poll_timeout(), None);
            assert_eq!(h.deadline, None);
        }
        Err(e) => panic!("restore right after init failed with a non-snapshot error: {e:?}"),
        Ok(()) => {
            let f = file.expect("the engine accepted bytes that do not read as a snapshot");
            assert_eq!(f.env, ENV, "accepted another env's snapshot");
            check_restored(&h, &f);
            round_trip(h, &f);
        }
    }
}

/// The engine after an accepted restore shows the snapshot's fields.
fn check_restored(h: &Harness, f: &SnapshotFile) {
    let now = RESTORE_AT;
    let e = &h.engine;
    let initialized = (LoginState::Uninitialized, LoginState::Initialized);
    assert_eq!(e.device_id(), f.device_id, "device id");
    assert_eq!(e.generation(), f.generation.wrapping_add(1), "generation");
    assert_eq!(h.clears, 0, "an accepted snapshot is not cleared");
    assert!(h.deadline.is_none_or(|d| d >= now), "deadline in the past");
    assert_eq!(h.deadline, e.poll_timeout());
    let Some(s) = f.session.as_ref().filter(|_| f.state.is_signed_in()) else {
        assert!(matches!(
            f.state,
            LoginState::Initialized | LoginState::SignedOut
        ));
        assert!(
            f.session.is_none(),
            "accepted a session outside a signed-in state"
        );
        assert_eq!(e.login_state(), f.state, "state");
        let mut changes = vec![initialized];
        if f.state != LoginState::Initialized {
            changes.push((LoginState::Initialized, f.state));
        }
        assert_eq!(h.changes.as_slice(), changes.as_slice(), "restore changes");
        assert!(e.session().is_none() && e.user().is_none() && !e.is_busy());
        assert!(h.stored.is_none() && h.sent.is_empty() && h.deadline.is_none());
        return;
    };
    assert!(
        s.refresh_at <= s.expires_at,
        "accepted refresh_at > expires_at"
    );
    // A clock that went back since the save keeps the remaining lifetime.
    let shift = f.saved_at.saturating_sub(now);
    let expires_at = s.expires_at.saturating_sub(shift);
    let refresh_at = s.refresh_at.saturating_sub(shift);
    let refreshable = s.refresh_token.is_some();
    let restored = (LoginState::Initialized, f.state);
    if !refreshable && now >= expires_at {
        // Expired and cannot refresh: the session ends at once and is persisted so.
        assert_eq!(e.login_state(), LoginState::SignedOut, "expired session");
        assert_eq!(
            h.changes.as_slice(),
            [initialized, restored, (f.state, LoginState::SignedOut)]
        );
        assert!(e.session().is_none() && e.user().is_none() && !e.is_busy());
        assert!(h.stored.is_some(), "the ended session is persisted");
        assert!(h.sent.is_empty() && h.deadline.is_none());
        return;
    }
    assert_eq!(e.login_state(), f.state, "state");
    assert_eq!(
        h.changes.as_slice(),
        [initialized, restored],
        "restore changes"
    );
    assert!(
        h.stored.is_none(),
        "nothing to persist after a plain restore"
    );
    let view = e.session().expect("restored session");
    assert_eq!(
        (
            view.uid,
            view.token_type,
            view.access_token,
            view.expires_at_ms,
            view.refresh_at_ms,
            view.refreshable
        ),
        (
            s.uid.as_str(),
            s.token_type.as_str(),
            s.access_token.as_str(),
            expires_at,
            refresh_at,
            refreshable
        ),
        "restored session view"
    );
    let user = e.user().expect("restored user");
    let p = &f.profile;
    assert_eq!(
        (
            user.uid,
            user.nick_name,
            user.avatar_url,
            user.email,
            user.openid
        ),
        (
            s.uid.as_str(),
            p.name.as_str(),
            p.avatar.as_str(),
            p.email.as_str(),
            p.openid.as_str()
        ),
        "restored user view"
    );
    if refreshable && now >= refresh_at {
        // Due: the restore starts the refresh at once (never with the access token).
        assert!(e.is_refreshing(), "a due refresh starts on restore");
        assert_eq!(h.sent.len(), 1);
        assert_eq!(h.sent[0].endpoint, Endpoint::Token);
        assert_eq!(
            h.sent[0].authorization, None,
            "refresh carries no access token"
        );
        assert_eq!(h.deadline, Some(now + DEFAULT_REQUEST_TIMEOUT_MS));
    } else {
        assert!(!e.is_busy() && h.sent.is_empty());
        let due = if refreshable { refresh_at } else { expires_at };
        assert_eq!(h.deadline, Some(due), "deadline");
    }
}

/// Makes the engine persist through the public API, restores those bytes into a third
/// engine, and compares what a host sees of both.
fn round_trip(mut h: Box<Harness>, f: &SnapshotFile) {
    let now = RESTORE_AT;
    let mut profile_kept = false;
    if h.stored.is_none() {
        if !h.engine.login_state().is_signed_in() {
            // Nothing the public API can make an engine without a session persist.
            return;
        }
        let before = observe(&h.engine);
        let session = h.engine.session().expect("signed in");
        if h.engine.is_refreshing() {
            // The due refresh gets the same access token back, without a new refresh
            // token (the old one stays, RFC 6749 §6): only the deadlines move.
            let body = serde_json::json!({
                "token_type": session.token_type,
                "access_token": session.access_token,
                "expires_in": 7200,
            });
            let d = h.reply_next_with(200, body.to_string().as_bytes());
            assert_eq!(d, Delivery::Accepted, "refresh reply");
            assert_eq!(
                h.engine.login_state(),
                before.state,
                "a refresh keeps the state"
            );
        } else {
            // Fetch the profile and answer with the cached one: nothing changes, but the
            // engine persists its (re-encoded) session.
            let user = h.engine.user().expect("signed in");
            let mut body = serde_json::json!({
                "name": user.nick_name,
                "picture": user.avatar_url,
                "email": user.email,
            });
            if !user.uid.is_empty() {
                body["sub"] = user.uid.into();
            }
            if !user.openid.is_empty() {
                body["providers"] = serde_json::json!([{
                    "id": f.profile.appid,
                    "provider_user_id": user.openid,
                }]);
            }
            let op = h.engine.get_user_info(now).expect("initialised");
            h.run();
            assert_eq!(h.sent.len(), 1, "get_user_info sends one request");
            assert_eq!(h.sent[0].endpoint, Endpoint::UserMe);
            let d = h.reply_next_with(200, body.to_string().as_bytes());
            assert_eq!(d, Delivery::Accepted, "user/me reply");
            assert_eq!(
                h.result(op),
                Some(Ok(Completion::UserInfo)),
                "the cached profile, served back, is accepted: {body}"
            );
            assert_eq!(
                observe(&h.engine),
                before,
                "serving the cached profile changes nothing"
            );
            profile_kept = true;
        }
        assert!(h.stored.is_some(), "the engine persisted");
    }
    let a = observe(&h.engine);
    let bytes = h.stored.as_ref().expect("persisted").to_vec();

    // The engine's encoding reads as the documented layout, with the same values.
    let g = snapshot_file::read(&bytes).expect("the engine wrote an unreadable snapshot");
    assert_eq!(g.env, f.env, "re-encoded env");
    assert_eq!(g.device_id, f.device_id, "re-encoded device id");
    assert_eq!(g.state, a.state, "re-encoded state");
    assert_eq!(g.generation, a.generation, "re-encoded generation");
    assert_eq!(g.saved_at, now, "re-encoded save time");
    if profile_kept {
        assert_eq!(g.profile, f.profile, "re-encoded profile");
        let shift = f.saved_at.saturating_sub(now);
        let expect = f.session.clone().map(|mut s| {
            s.expires_at = s.expires_at.saturating_sub(shift);
            s.refresh_at = s.refresh_at.saturating_sub(shift);
            s
        });
        assert_eq!(g.session, expect, "re-encoded session");
    }

    // ... and restores into a fresh engine that shows the same.
    let mut c = host();
    assert_eq!(
        c.restart_with(&bytes),
        Ok(()),
        "re-encoded snapshot restores"
    );
    let mut b = observe(&c.engine);
    assert_eq!(
        b.generation,
        a.generation.wrapping_add(1),
        "next generation"
    );
    b.generation = a.generation;
    assert_eq!(b, a, "restored from the re-encoded snapshot");
}

// ----- response_parse -------------------------------------------------------------------

/// `response_parse`: `data[0] % 4` picks the reply kind (credentials, provider token,
/// user, error), `data[1..3]` is the HTTP status (little-endian), the rest the body.
///
/// Checks: the public parser of that kind and [`wire::decode_reply`] never panic and
/// agree with each other (a 2xx body that is not error-shaped gives the parser's value
/// or its `WireError`; anything else a `ServerError` carrying the status, the error
/// body's classification and code); a parsed value serialized with serde_json (as the
/// server writes it) parses back to the same value, and is accepted as a 200 reply.
pub fn fuzz_response_parse(data: &[u8]) {
    let [kind, s0, s1, body @ ..] = data else {
        return;
    };
    let status = u16::from_le_bytes([*s0, *s1]);
    match kind % 4 {
        0 => check_reply(status, body, Credentials::parse),
        1 => check_reply(status, body, ProviderTokenReply::parse),
        2 => check_reply(status, body, User::parse),
        _ => check_reply(status, body, ErrorBody::parse),
    }
}

fn check_reply<T: Debug + PartialEq + Serialize>(
    status: u16,
    body: &[u8],
    parse: fn(&[u8]) -> Result<T, WireError>,
) {
    let parsed = parse(body);
    if let Ok(v) = &parsed {
        let json = serde_json::to_vec(v).expect("a parsed reply serializes");
        let again = parse(&json);
        assert_eq!(
            again.as_ref(),
            Ok(v),
            "serialized as {}",
            String::from_utf8_lossy(&json)
        );
        if !ErrorBody::is_error_shaped(&json) {
            assert_eq!(
                wire::decode_reply(200, &json, parse).as_ref(),
                Ok(v),
                "the server's serialization of a value is a good 200 reply"
            );
        }
    }
    let decoded = wire::decode_reply(status, body, parse);
    if (200..300).contains(&status) && !ErrorBody::is_error_shaped(body) {
        assert_eq!(
            decoded,
            parsed.map_err(Error::Wire),
            "2xx, not error-shaped"
        );
    } else {
        let e = ErrorBody::parse(body).unwrap_or_default();
        match decoded {
            Err(Error::Server(s)) => {
                assert_eq!(s.status, status, "server error status");
                assert_eq!(s.kind, ServerErrorKind::classify(status, &e.error));
                assert_eq!(s.code, e.error_code, "server error code");
                // The error keeps the body's texts, cut on a character boundary.
                assert_eq!(s.name.as_str(), e.error.as_str(), "server error name");
                assert_eq!(
                    s.description.as_str(),
                    e.error_description.as_str(),
                    "server error description"
                );
            }
            other => panic!("status {status}, error-shaped or not 2xx, gave {other:?}"),
        }
    }
}

// ----- engine_ops -----------------------------------------------------------------------

/// Longest operation sequence `engine_ops` replays (the proptest suite draws 1..64).
pub const MAX_OPS: usize = 128;

/// `engine_ops`: `data` decoded with `arbitrary` into at most [`MAX_OPS`] [`Op`]s (each
/// preceded by a "more" byte, as `Unstructured::arbitrary_iter` reads them; see
/// [`crate::seeds::encode_ops`]) and the host [`Setup`] (see [`decode_run`]), replayed
/// with [`run_with`]: the same model and invariants as the property test, after every
/// step.
///
/// [`Op`]: crate::Op
/// [`Setup`]: crate::Setup
/// [`run_with`]: crate::run_with
#[cfg(feature = "arbitrary")]
pub fn fuzz_engine_ops(data: &[u8]) {
    let (setup, ops) = decode_run(data);
    crate::run_with(setup, &ops);
}

/// The run `fuzz_engine_ops` replays for `data`: the [`Op`](crate::Op) sequence, then
/// the host settings from the first byte after it, if any (bit 0 set: anonymous
/// recovery off). Inputs that end with the sequence, such as every seed written before
/// the settings existed, run with the defaults of `Config::new`.
#[cfg(feature = "arbitrary")]
pub fn decode_run(data: &[u8]) -> (crate::Setup, Vec<crate::Op>) {
    let mut u = arbitrary::Unstructured::new(data);
    let ops = match u.arbitrary_iter::<crate::Op>() {
        Ok(iter) => iter.take(MAX_OPS).map_while(Result::ok).collect(),
        Err(_) => Vec::new(),
    };
    let mut setup = crate::Setup::default();
    if let Some(b) = u.take_rest().first() {
        setup.anonymous_recovery = b & 1 == 0;
    }
    (setup, ops)
}
