//! What must hold after any step between the engine, the harness's record of its
//! outputs, and the model, one concern per function.

use cloudbase_auth_core::state::is_allowed;
use cloudbase_auth_core::testing::Harness;
use cloudbase_auth_core::wire::Endpoint;

use super::state::{Model, UserSession};
use super::world::restart;

/// Checks, after any step, everything that must hold between the engine, the harness's
/// record of its outputs, and the model. `clock_max` is the largest `now` given to the
/// engine (backwards time is ignored, so that is the engine's clock).
///
/// Free of any proptest or fuzzing machinery: the property tests and the `engine_ops`
/// fuzz target both reach it through [`World`](super::World).
pub fn check_invariants(h: &Harness, m: &Model, clock_max: u64) {
    assert_eq!(m.now, clock_max, "the model's clock is the engine's");
    login_and_session(h, m);
    one_request_in_flight(h, m);
    deadline(h, m, clock_max);
    transitions(h);
    storage(h, m, clock_max);
}

/// What a host reads of a session, owned, for comparisons.
type SessionRead = (String, String, bool, u64, u64);

fn model_session(s: &UserSession) -> SessionRead {
    (
        s.uid.clone(),
        s.access_token.clone(),
        s.refreshable(),
        s.expires_at,
        s.refresh_at,
    )
}

/// The login state is the model's; tokens exist exactly in `Anonymous` / `WeChat` and
/// are the model's.
fn login_and_session(h: &Harness, m: &Model) {
    let e = &h.engine;
    let state = e.login_state();
    assert_eq!(state, m.login, "login state");
    let session = e.session();
    assert_eq!(
        session.is_some(),
        state.is_signed_in(),
        "tokens outside a session"
    );
    assert_eq!(session.is_some(), m.session.is_some(), "session exists");
    assert_eq!(
        e.user().is_some(),
        session.is_some(),
        "user without session"
    );
    if let (Some(s), Some(ms)) = (session, &m.session) {
        let read = (
            s.uid.to_owned(),
            s.access_token.to_owned(),
            s.refreshable,
            s.expires_at_ms,
            s.refresh_at_ms,
        );
        assert_eq!(read, model_session(ms), "session");
        assert_eq!(s.token_type, ms.token_type, "token type");
        assert!(s.refresh_at_ms <= s.expires_at_ms);
        assert!(!s.uid.is_empty() && !s.access_token.is_empty());
        assert_eq!(e.user().map(|u| u.uid), Some(s.uid), "user's uid");
    }
}

/// At most one request in flight, and it is the model's (hence at most one refresh).
fn one_request_in_flight(h: &Harness, m: &Model) {
    let e = &h.engine;
    let f = m.in_flight.as_ref();
    assert_eq!(e.is_busy(), f.is_some(), "busy");
    assert_eq!(
        e.is_refreshing(),
        f.is_some_and(|f| f.on_the_wire() == Endpoint::Token),
        "refreshing"
    );
    if let Some(id) = f.and_then(|f| f.id) {
        let live = h.sent.iter().filter(|s| s.request == id).count();
        assert_eq!(live, 1, "the request in flight is held once");
        assert_eq!(h.sent.last().map(|s| s.request), Some(id), "newest is live");
        let refreshes = h
            .sent
            .iter()
            .filter(|s| s.endpoint == Endpoint::Token && s.request == id)
            .count();
        assert!(refreshes <= 1, "two refreshes in flight");
        assert_eq!(
            id.generation,
            e.generation(),
            "in flight in this generation"
        );
    }
}

/// The deadline is the model's and never in the past.
fn deadline(h: &Harness, m: &Model, clock_max: u64) {
    assert_eq!(h.deadline, m.deadline(), "deadline");
    assert_eq!(h.engine.poll_timeout(), h.deadline, "poll_timeout");
    if let Some(d) = h.deadline {
        assert!(
            d >= clock_max,
            "deadline {d} is before the engine clock {clock_max} (by {} ms)",
            clock_max - d
        );
    }
}

/// Every change is in the documented table.
fn transitions(h: &Harness) {
    for &(from, to) in &h.changes {
        assert!(
            is_allowed(from, to),
            "{from:?} -> {to:?} not in TRANSITIONS"
        );
    }
}

/// What is stored is what the model expects, describes the current session, and
/// restores into a fresh engine as the model predicts a restart.
fn storage(h: &Harness, m: &Model, clock_max: u64) {
    let state = h.engine.login_state();
    assert_eq!(h.stored.is_some(), m.stored.is_some(), "stored");
    if state.is_signed_in() {
        assert!(h.stored.is_some(), "a session that is not stored");
    }
    let (Some(bytes), Some(snap)) = (&h.stored, &m.stored) else {
        return;
    };
    assert_eq!(snap.login, state, "stored state is the current one");
    let ids = |s: &UserSession| (s.uid.clone(), s.refreshable());
    assert_eq!(
        snap.session.as_ref().map(ids),
        m.session.as_ref().map(ids),
        "stored session is the current one"
    );
    let mut r = Harness::uninit();
    r.auto_reply = false;
    r.now = clock_max;
    assert_eq!(
        restart(&mut r, m.setup, Some(bytes)),
        Ok(()),
        "stored snapshot restores"
    );
    let rm = Model::restarted(m.setup, clock_max, Some(snap.clone()));
    assert_eq!(
        r.changes.as_slice(),
        rm.step.changes.as_slice(),
        "restore changes"
    );
    assert_eq!(r.engine.login_state(), rm.login, "restored state");
    let restored = r.engine.session().map(|s| {
        (
            s.uid.to_owned(),
            s.access_token.to_owned(),
            s.refreshable,
            s.expires_at_ms,
            s.refresh_at_ms,
        )
    });
    assert_eq!(
        restored,
        rm.session.as_ref().map(model_session),
        "restored session"
    );
    assert_eq!(r.deadline, rm.deadline(), "restored deadline");
    assert_eq!(
        r.sent.first().map(|s| s.endpoint),
        rm.in_flight.as_ref().map(|f| f.on_the_wire()),
        "restored engine's first request"
    );
}
