//! The world a run happens in: the engine inside the `testing` harness (requests held
//! and answered by hand, the scripted server, a clock) beside the [`Model`]. Each [`Op`]
//! is one host action, applied to both; then the step's outputs are compared
//! (`compare.rs`) and the invariants checked (`invariants.rs`).

use cloudbase_auth_core::testing::{APPID, Harness, Sent};
use cloudbase_auth_core::wire::Endpoint;
use cloudbase_auth_core::{Engine, Error, OpId, RequestId, TransportError};

use super::answer::{Answer, Failure};
use super::ops::{
    ERROR_NAMES, ERROR_STATUSES, GARBAGE_STATUSES, OPENIDS, Op, PROFILE_CHANGES, Setup,
};
use super::state::Model;

/// A reply that arrives again after its request was answered or lost: credentials
/// that must never be taken.
const BAIT: &[u8] =
    br#"{"access_token":"at-bait","refresh_token":"rt-bait","expires_in":7200,"scope":"user","sub":"uid-bait"}"#;

/// Held requests beyond this many are "lost in the network" (oldest stale first).
const HELD_MAX: usize = 6;

/// Entropy a restarted host hands to `init` (the harness's restart uses the same).
const RESTART_SEED: [u8; 16] = [43; 16];
/// Entropy of the first start (the harness's).
const FIRST_SEED: [u8; 16] = [42; 16];

/// A host restart: a fresh engine, `init` with the run's settings, then `restore` of
/// `snapshot` if there is one; outputs drained.
pub(crate) fn restart(h: &mut Harness, setup: Setup, snapshot: Option<&[u8]>) -> Result<(), Error> {
    h.engine = Engine::new();
    h.engine
        .init(h.now, setup.config(), RESTART_SEED)
        .expect("valid config");
    h.run();
    let r = snapshot.map_or(Ok(()), |bytes| h.engine.restore(h.now, bytes));
    h.run();
    r
}

/// What the harness showed before the current step.
#[derive(Debug, Default)]
pub(crate) struct Before {
    pub(crate) held: Vec<RequestId>,
    pub(crate) clears: u32,
    pub(crate) replacements: u32,
    pub(crate) stored: Option<Vec<u8>>,
}

/// Engine (in the harness) and model side by side: [`World::apply`] runs one [`Op`]
/// on both and checks that a host sees the same from each.
pub struct World {
    pub(crate) h: Box<Harness>,
    pub(crate) m: Model,
    /// The largest `now` given to the engine: its clock.
    pub(crate) clock_max: u64,
    /// Requests answered, failed or lost (and their endpoints): any later reply to
    /// them is stale.
    pub(crate) answered: Vec<(RequestId, Endpoint)>,
    pub(crate) before: Before,
    /// The `x-request-id` of the last request sent.
    pub(crate) last_request_id: Option<String>,
}

fn corrupt(bytes: &[u8], flip: u16) -> Vec<u8> {
    let mut v = bytes.to_vec();
    let pos = usize::from(flip >> 1) % v.len();
    if flip & 1 == 0 {
        v.truncate(pos);
    } else {
        v[pos] ^= ((flip >> 8) as u8) | 1;
    }
    v
}

impl World {
    /// A fresh engine set up with `setup`, initialised and drained, with requests held
    /// for the ops to answer; the model in the same state. Checked once before any op.
    pub fn new(setup: Setup) -> Self {
        let mut h = Box::new(Harness::uninit());
        h.auto_reply = false;
        h.engine
            .init(h.now, setup.config(), FIRST_SEED)
            .expect("valid config");
        h.run();
        let m = Model::restarted(setup, h.now, None);
        let mut w = World {
            clock_max: h.now,
            h,
            m,
            answered: Vec::new(),
            before: Before::default(),
            last_request_id: None,
        };
        w.after_step();
        w
    }

    /// The harness passed `h.now` to the engine.
    fn input(&mut self) {
        self.clock_max = self.clock_max.max(self.h.now);
        self.m.begin(self.h.now);
    }

    /// Loses old held requests so the harness's list never fills.
    fn prune_held(&mut self) {
        let live = self.m.in_flight.as_ref().and_then(|f| f.id);
        while self.h.sent.len() >= HELD_MAX {
            let i = self
                .h
                .sent
                .iter()
                .position(|s| Some(s.request) != live)
                .expect("one live request at most");
            let lost = self.h.sent.remove(i);
            self.answered.push((lost.request, lost.endpoint));
        }
    }

    /// Delivers `status`/`body` (`None`: a transport failure) for a held request to
    /// `endpoint`, and what the model makes of it.
    fn deliver(&mut self, id: RequestId, endpoint: Endpoint, reply: Option<(u16, &[u8])>) {
        let (d, answer) = match reply {
            Some((status, body)) => (
                self.h.engine.handle_response(self.h.now, id, status, body),
                Answer::read(endpoint, status, body),
            ),
            None => (
                self.h.engine.handle_transport_error(self.h.now, id),
                Answer::NoReply(TransportError::Failed),
            ),
        };
        self.h.run();
        self.input();
        assert_eq!(d, self.m.reply(id, answer), "delivery of {id:?}");
        self.answered.push((id, endpoint));
    }

    fn take_held(&mut self, oldest: bool) -> Option<Sent> {
        if self.h.sent.is_empty() {
            None
        } else if oldest {
            Some(self.h.sent.remove(0))
        } else {
            self.h.sent.pop()
        }
    }

    /// A host restart: nothing held survives it. (Request ids are fresh per engine, but
    /// this host hands every restarted engine the same entropy.)
    fn restart(&mut self, snapshot: Option<&[u8]>) -> Result<(), Error> {
        self.last_request_id = None;
        self.h.sent.clear();
        self.answered.clear();
        self.before.held.clear();
        self.clock_max = self.h.now;
        restart(&mut self.h, self.m.setup, snapshot)
    }

    /// A call returned `r`; `expected` is the model's reading of it.
    fn called(&mut self, r: Result<OpId, Error>, on_model: impl FnOnce(&mut Model, OpId)) {
        self.h.run();
        self.input();
        on_model(
            &mut self.m,
            r.expect("an initialised engine accepts the call"),
        );
    }

    /// An account call (`update_profile`, `delete_account`) returned `r`: refused as
    /// the model says, or started.
    fn account_call(&mut self, r: Result<OpId, Error>, start: impl FnOnce(&mut Model, OpId)) {
        self.h.run();
        self.input();
        match self.m.account_refusal() {
            Some(refusal) => {
                assert_eq!(
                    r.map_err(|e| Failure::of(&e)),
                    Err(refusal),
                    "account call refused"
                );
                self.m.refused_call();
            }
            None => start(&mut self.m, r.expect("account call accepted")),
        }
    }

    /// Runs `op` against engine and model, then compares what the step produced and
    /// checks the invariants (panics on any disagreement).
    pub fn apply(&mut self, op: &Op) {
        self.prune_held();
        self.before = Before {
            held: self.h.sent.iter().map(|s| s.request).collect(),
            clears: self.h.clears,
            replacements: self.h.replacements,
            stored: self.h.stored.as_ref().map(|s| s.to_vec()),
        };
        let now = self.h.now;
        match op {
            Op::GetLoginState => {
                let r = self.h.engine.get_login_state(now);
                self.called(r, Model::get_login_state);
            }
            Op::GetUserInfo => {
                let r = self.h.engine.get_user_info(now);
                self.called(r, Model::get_user_info);
            }
            Op::SignInAnonymously => {
                let r = self.h.engine.sign_in_anonymously(now);
                self.called(r, Model::sign_in_anonymously);
            }
            Op::SignInWeChat { openid_idx } => {
                let openid = OPENIDS[usize::from(*openid_idx) % OPENIDS.len()];
                let code = self.h.server.mint_code(openid);
                let r = self.h.engine.sign_in_with_wechat(now, &code, APPID);
                self.called(r, |m, op| m.sign_in_with_wechat(op, &code));
            }
            Op::SignInWeChatBadCode => {
                let code = "never-minted";
                let r = self.h.engine.sign_in_with_wechat(now, code, APPID);
                self.called(r, |m, op| m.sign_in_with_wechat(op, code));
            }
            Op::LinkWeChat { openid_idx } => {
                let openid = OPENIDS[usize::from(*openid_idx) % OPENIDS.len()];
                let code = self.h.server.mint_code(openid);
                let r = self.h.engine.link_wechat(now, &code, APPID);
                self.h.run();
                self.input();
                match self.m.link_refusal() {
                    Some(refusal) => {
                        let got = r.map_err(|e| Failure::of(&e));
                        assert_eq!(got, Err(refusal), "link refused");
                        self.m.refused_call();
                    }
                    None => self.m.link_wechat(r.expect("link accepted"), &code),
                }
            }
            Op::SignOut => {
                let r = self.h.engine.sign_out(now);
                self.called(r, Model::sign_out);
            }
            Op::ReplyGood { oldest } => {
                if let Some(sent) = self.take_held(*oldest) {
                    let reply = self.h.server.handle(&sent);
                    let body = reply.body.to_vec();
                    self.deliver(sent.request, sent.endpoint, Some((reply.status, &body)));
                }
            }
            Op::ReplyError {
                status_idx,
                kind_idx,
            } => {
                if let Some(sent) = self.take_held(false) {
                    let status = ERROR_STATUSES[usize::from(*status_idx) % ERROR_STATUSES.len()];
                    let body = match ERROR_NAMES[usize::from(*kind_idx) % ERROR_NAMES.len()] {
                        Some(n) => format!(
                            r#"{{"error":"{n}","error_code":3,"error_description":"model"}}"#
                        ),
                        None => "<html>bad gateway</html>".to_owned(),
                    };
                    self.deliver(sent.request, sent.endpoint, Some((status, body.as_bytes())));
                }
            }
            Op::ReplyGarbage { status_idx, bytes } => {
                if let Some(sent) = self.take_held(false) {
                    let status =
                        GARBAGE_STATUSES[usize::from(*status_idx) % GARBAGE_STATUSES.len()];
                    let mut body = vec![b'<'];
                    body.extend_from_slice(bytes);
                    self.deliver(sent.request, sent.endpoint, Some((status, &body)));
                }
            }
            Op::ReplyLateDuplicate { idx } => {
                if !self.answered.is_empty() {
                    let (id, endpoint) = self.answered[usize::from(*idx) % self.answered.len()];
                    self.deliver(id, endpoint, Some((200, BAIT)));
                    assert_eq!(self.answered.pop(), Some((id, endpoint)));
                }
            }
            Op::TransportFail => {
                if let Some(sent) = self.take_held(false) {
                    self.deliver(sent.request, sent.endpoint, None);
                }
            }
            Op::Advance { ms } => {
                self.h.advance(u64::from(*ms));
                self.input();
                self.m.tick();
            }
            Op::AdvanceToDeadline => {
                if self.h.deadline.is_some() {
                    self.h.advance_to_deadline();
                    self.input();
                    self.m.tick();
                }
            }
            Op::Elapse { ms } => self.h.now += u64::from(*ms),
            Op::Backwards { ms } => {
                self.h.now = self.h.now.saturating_sub(u64::from(*ms));
                self.h.engine.handle_timeout(self.h.now);
                self.h.run();
                self.input();
                self.m.tick();
            }
            Op::Restore => {
                let stored = self.h.stored.as_ref().map(|s| s.to_vec());
                assert_eq!(self.restart(stored.as_deref()), Ok(()), "restore");
                self.m = Model::restarted(self.m.setup, self.h.now, self.m.stored.clone());
            }
            Op::RestoreCorrupted { flip } => {
                let bytes = match &self.h.stored {
                    Some(b) => corrupt(b, *flip),
                    None => flip.to_le_bytes().to_vec(),
                };
                let r = self.restart(Some(&bytes));
                assert!(matches!(r, Err(Error::Snapshot(_))), "{r:?}");
                self.m = Model::after_corrupt_snapshot(self.m.setup, self.h.now);
            }
            Op::ServerRevokesRefreshTokens => self.h.server.revoke_all_refresh_tokens(),
            Op::ServerExpiresAccessTokens => self.h.server.revoke_all_access_tokens(),
            Op::ShortTokens { secs } => {
                self.h.server.expires_in = match secs % 121 {
                    0 => 7200,
                    s => u64::from(s),
                };
            }
            Op::NoRefreshTokens => {
                self.h.server.issue_refresh_tokens = !self.h.server.issue_refresh_tokens;
            }
            Op::UpdateProfile { change_idx } => {
                let (name, picture) =
                    PROFILE_CHANGES[usize::from(*change_idx) % PROFILE_CHANGES.len()];
                let r = self.h.engine.update_profile(now, name, picture);
                self.account_call(r, |m, op| m.update_profile(op, name, picture));
            }
            Op::DeleteAccount => {
                let r = self.h.engine.delete_account(now);
                self.account_call(r, Model::delete_account);
            }
        }
        self.after_step();
    }

    /// Answers whatever is in flight until nothing is; then every call has completed.
    pub fn settle(&mut self) {
        for _ in 0..64 {
            if self.m.in_flight.is_none() {
                break;
            }
            self.apply(&Op::ReplyGood { oldest: false });
        }
        assert!(self.m.in_flight.is_none(), "still busy after 64 replies");
        assert!(
            self.m.open_calls.is_empty(),
            "calls never completed: {:?}",
            self.m.open_calls
        );
    }
}

/// Runs `ops` with `setup` against engine and model, checking after every step; then
/// settles. Panics on the first disagreement or broken invariant.
pub fn run_with(setup: Setup, ops: &[Op]) {
    let mut w = World::new(setup);
    for op in ops {
        w.apply(op);
    }
    w.settle();
}

/// [`run_with`] the default [`Setup`] (the defaults of `Config::new`).
pub fn run_ops(ops: &[Op]) {
    run_with(Setup::default(), ops);
}
