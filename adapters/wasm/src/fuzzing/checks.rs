//! The ABI contract, checked after every call: what the crate docs promise a host about
//! return values, error records, the drain rule and records, and what they say must
//! happen next. Every broken promise is a panic naming it.

use super::MAX_POLLS;
use crate::abi::{self, EXCHANGE_LEN, OUTPUTS, arg};
use crate::exports::{cba_login_state, cba_poll, cba_session, cba_settled_until, cba_user};
use crate::reader::{self, Check, OutputRecord, SessionRecord};
use crate::with_exchange;
use cloudbase_auth_core::{Error, LoginState, SnapshotError};

/// Runs `f` on the record the last export wrote; panics (outside the buffer's lock) on a
/// broken promise.
fn record<T>(what: &str, f: impl FnOnce(&mut reader::Reader<'_>) -> Check<T>) -> T {
    reader::read(f).unwrap_or_else(|e| panic!("{what} record: {e}"))
}

/// What an input export may fail with, from the values the host passes.
#[derive(Default)]
pub(super) struct Faults {
    subs: Vec<u8>,
    /// `(ptr, len)` pairs to check once every value is placed (a later value may
    /// overwrite an earlier one's bytes), and whether each is text.
    pub(super) pairs: Vec<((usize, usize), bool)>,
}

impl Faults {
    pub(super) fn add(&mut self, sub: u8) {
        if !self.subs.contains(&sub) {
            self.subs.push(sub);
        }
    }

    /// A time the exports refuse is a fault; the time.
    pub(super) fn time(&mut self, t: f64) -> f64 {
        if !(0.0..=abi::TIME_MAX as f64).contains(&t) {
            self.add(arg::TIME);
        }
        t
    }

    /// Checks the pairs against the buffer as it is now (right before the call): out of
    /// range, or (for text) not UTF-8, is a fault.
    pub(super) fn settle(&mut self, base: usize) {
        for (pair, text) in core::mem::take(&mut self.pairs) {
            if !inside(base, pair) {
                self.add(arg::RANGE);
                continue;
            }
            if text {
                let start = pair.0 - base;
                let utf8 =
                    with_exchange(|x| core::str::from_utf8(&x[start..start + pair.1]).is_ok());
                if !utf8 {
                    self.add(arg::UTF8);
                }
            }
        }
    }
}

/// The docs' "inside the exchange buffer" (at `base`).
pub(super) fn inside(base: usize, (ptr, len): (usize, usize)) -> bool {
    let start = ptr.wrapping_sub(base);
    start <= EXCHANGE_LEN && len <= EXCHANGE_LEN - start
}

/// How a successful input export's return value must look.
#[derive(Clone, Copy)]
pub(super) enum Returns {
    Zero,
    OpId,
    Delivery,
}

/// What the reads show: login state, session record, user record, how long the login
/// state holds. A refused input must leave them as they were.
#[derive(PartialEq, Debug)]
pub(super) struct Reads {
    state: u32,
    session: Option<SessionRecord>,
    user: Option<[String; 5]>,
    settled_until: f64,
}

/// What the docs say must happen next, from what the calls so far returned.
#[derive(Default)]
pub(super) struct Contract {
    /// An input was made (whatever it returned) and no poll returned the timeout since.
    undrained: bool,
    /// Polls since the last timeout kind.
    polls: u32,
    issued: Vec<u32>,
    completed: Vec<u32>,
    /// The login state as the state-change records tell it.
    reported: u8,
    /// A restore was refused as corrupt: the drain must show a state change and a
    /// clear-storage output.
    expect_clear: bool,
    seen_clear: bool,
    /// A "session replaced" was polled: the next state change must be to anonymous.
    replacing: bool,
    seen_change: bool,
}

impl Contract {
    /// A new engine (`cba_reset`): nothing issued, nothing owed.
    pub(super) fn reset(&mut self) {
        *self = Contract::default();
    }

    /// Before an input export: `Some(reads)` if it must be refused (the previous input
    /// was not drained) and change none of them.
    pub(super) fn before_input(&self) -> Option<Reads> {
        self.undrained.then(reads)
    }

    /// After an input export that returned `r`: refused if `before` says so, else an
    /// `ARG` error exactly for the faults the host's values have, else `returns`.
    pub(super) fn after_input(
        &mut self,
        r: f64,
        returns: Returns,
        faults: &Faults,
        before: Option<Reads>,
        restore: bool,
    ) {
        let class_sub = check_return("input", r);
        if let Some(before) = before {
            assert_eq!(
                r,
                abi::error_return(Error::CLASS_HOST, arg::NOT_DRAINED),
                "an input before the drain must be refused"
            );
            assert_eq!(before, reads(), "a refused input changed a read");
            return;
        }
        match class_sub {
            Some((Error::CLASS_HOST, sub)) => assert!(
                faults.subs.contains(&sub),
                "ARG sub {sub} but the host's bad values give {:?}",
                faults.subs
            ),
            _ => assert!(
                faults.subs.is_empty(),
                "bad host values {:?}, but the export returned {r}",
                faults.subs
            ),
        }
        match (class_sub, returns) {
            (Some(_), _) => {}
            (None, Returns::Zero) => assert_eq!(r, 0.0),
            (None, Returns::Delivery) => assert!(r == 0.0 || r == 1.0, "delivery {r}"),
            (None, Returns::OpId) => {
                assert!(r >= 1.0 && r <= f64::from(u32::MAX) && r.fract() == 0.0);
                assert!(!self.issued.contains(&(r as u32)), "op id {r} again");
                self.issued.push(r as u32);
            }
        }
        // Corrupt (not another env's): state change and clear storage follow.
        let env_mismatch = SnapshotError::EnvMismatch.code();
        self.expect_clear = restore
            && matches!(class_sub, Some((Error::CLASS_SNAPSHOT, sub)) if sub != env_mismatch);
        self.seen_clear = false;
        self.seen_change = false;
        self.undrained = true;
    }

    /// One `cba_poll`: its return value and record checked, and what it tells checked
    /// against what came before. The record, unless the poll failed.
    pub(super) fn poll(&mut self) -> Option<OutputRecord> {
        let r = cba_poll();
        if check_return("cba_poll", r).is_some() {
            return None;
        }
        let max = f64::from(cloudbase_auth_core::Output::CODE_MAX);
        assert!(r.fract() == 0.0 && r <= max, "cba_poll returned {r}");
        if r != 0.0 {
            self.polls += 1;
            assert!(
                self.polls <= MAX_POLLS,
                "no timeout within {MAX_POLLS} polls"
            );
        }
        let kind = r as u8;
        let (out, end) = record("poll", |rd| {
            let out = rd.output(kind)?;
            Ok((out, rd.position()))
        });
        // The typed read and the layout's items end at the same place.
        let items_end = with_exchange(|x| {
            let mut rd = reader::Reader::new(x);
            rd.output_items(kind).map(|_| rd.position())
        });
        assert_eq!(
            items_end,
            Ok(end),
            "the record of kind {kind} is not laid out as abi::OUTPUTS[{kind}] = {:?}",
            OUTPUTS[usize::from(kind)]
        );
        match &out {
            OutputRecord::Timeout(_) => {
                self.undrained = false;
                self.polls = 0;
                assert_eq!(
                    u32::from(self.reported),
                    cba_login_state(),
                    "the last state change of the drain vs cba_login_state"
                );
                if self.expect_clear {
                    assert!(
                        self.seen_clear && self.seen_change,
                        "a corrupt snapshot must queue a state change and clear storage"
                    );
                    self.expect_clear = false;
                }
                reads();
            }
            OutputRecord::Clear => self.seen_clear = true,
            &OutputRecord::Changed(from, to) => {
                assert_eq!(from, self.reported, "state change from {from} to {to}");
                if core::mem::take(&mut self.replacing) {
                    // The replacement comes from an anonymous sign-in, but the kind of a
                    // new session is the one its reply's `scope` names (a server may
                    // answer `user`): what holds is a new signed-in user after SignedOut.
                    let signed_in = [LoginState::Anonymous.code(), LoginState::WeChat.code()];
                    assert!(
                        from == LoginState::SignedOut.code() && signed_in.contains(&to),
                        "a replacement is a new signed-in user, not a change from {from} to {to}"
                    );
                }
                self.reported = to;
                self.seen_change = true;
            }
            OutputRecord::Replaced => {
                assert!(!self.replacing, "two replacements without a state change");
                self.replacing = true;
            }
            &OutputRecord::Completed { op, .. } => {
                assert!(self.issued.contains(&op), "completion of unknown op {op}");
                assert!(!self.completed.contains(&op), "op {op} completed twice");
                self.completed.push(op);
            }
            OutputRecord::Transmit(_) | OutputRecord::Persist(_) => {}
        }
        Some(out)
    }
}

/// Checks an `f64` return value and, when negative, its error record; the error's
/// `(class, sub)`.
pub(super) fn check_return(what: &str, r: f64) -> Option<(u8, u8)> {
    assert!(r.is_finite(), "{what}: returned {r}");
    if r >= 0.0 {
        return None;
    }
    let e = record("error", |rd| rd.error());
    assert_eq!(
        r,
        abi::error_return(e.class, e.sub),
        "{what}: return value vs error record"
    );
    Some(e.code())
}

/// `cba_login_state`, checked.
pub(super) fn login_state() -> u32 {
    let s = cba_login_state();
    assert!(s <= u32::from(LoginState::CODE_MAX), "login state {s}");
    s
}

/// `cba_login_state`, `cba_session` and `cba_user`: records well-formed, a session and a
/// user exactly when signed in.
pub(super) fn reads() -> Reads {
    let state = login_state();
    let signed_in = LoginState::from_code(state as u8).is_some_and(LoginState::is_signed_in);
    let s = cba_session();
    check_return("cba_session", s);
    assert!(s == 0.0 || s == 1.0, "cba_session returned {s}");
    let session = (s == 1.0).then(|| record("session", |r| r.session()));
    assert_eq!(s == 1.0, signed_in, "session vs login state {state}");
    let u = cba_user();
    check_return("cba_user", u);
    assert!(u == 0.0 || u == 1.0, "cba_user returned {u}");
    let user = (u == 1.0).then(|| record("user", |r| r.user()));
    assert_eq!(u == 1.0, signed_in, "user vs login state {state}");
    // A host may cache the login state until then: never past the token's expiry.
    let settled_until = cba_settled_until();
    assert!(
        settled_until == -1.0 || (0.0..=abi::TIME_MAX as f64).contains(&settled_until),
        "cba_settled_until returned {settled_until}"
    );
    if let (Some(s), true) = (&session, settled_until >= 0.0) {
        assert!(
            settled_until <= s.expires_at,
            "settled until {settled_until}, after the token expires at {}",
            s.expires_at
        );
    }
    Reads {
        state,
        session,
        user,
        settled_until,
    }
}
