//! What a reply does to the operation in flight: the documented flows (core/README.md
//! "Behaviour worth knowing", the docs of the `Engine` calls, §3 and §8 of
//! docs/wire.md), one request after another, and how each ends.

use cloudbase_auth_core::config::{MIN_REFRESH_GAP_MS, RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MIN_MS};
use cloudbase_auth_core::wire::Endpoint;
use cloudbase_auth_core::{Completion, Delivery, LoginState, RequestId, ServerErrorKind};

use super::answer::{Answer, Failure, Grant};
use super::state::{Model, Operation, Outcome, Purpose, UserSession, Waiting};

/// The scope that marks an anonymous session (§4: "anonymous" and nothing else).
const ANONYMOUS_SCOPE: &str = "anonymous";

/// What `answer` means for a request to `endpoint`: the success it expects, or why the
/// request failed. `user/provider/bind` and `revoke` take any 2xx body that is not an
/// error (§3: "any"); the others need their shape (§4, §5).
fn meaning(endpoint: Endpoint, answer: Answer) -> Result<Answer, Failure> {
    match (endpoint, answer) {
        (_, Answer::NoReply(t)) => Err(Failure::NoReply(t)),
        (_, Answer::Refused(r)) => Err(Failure::Server(r)),
        (
            Endpoint::SignInAnonymously | Endpoint::SignInWithProvider | Endpoint::Token,
            a @ Answer::Grant(_),
        )
        | (Endpoint::ProviderToken, a @ Answer::ProviderToken(_))
        | (Endpoint::UserMe | Endpoint::UserProfile, a @ Answer::User { .. })
        | (Endpoint::ProviderBind | Endpoint::Revoke | Endpoint::DeleteMe, a) => Ok(a),
        _ => Err(Failure::Malformed),
    }
}

impl Model {
    /// A reply (or transport failure) for request `id`: taken only when it is the
    /// request on the wire; anything else (an older generation, a duplicate, one after
    /// its timeout) is stale. Either way the input brought the time: the timers run.
    pub(crate) fn reply(&mut self, id: RequestId, answer: Answer) -> Delivery {
        let delivery = match self.in_flight.take_if(|f| f.id == Some(id)) {
            Some(f) => {
                self.on_answer(f, answer);
                Delivery::Accepted
            }
            None => Delivery::Stale,
        };
        self.tick();
        delivery
    }

    /// The request on the wire got `answer`.
    pub(crate) fn on_answer(&mut self, f: Operation, answer: Answer) {
        match meaning(f.on_the_wire(), answer) {
            Ok(a) => self.step_succeeded(f, a),
            Err(e) => self.step_failed(f, e),
        }
    }

    fn step_succeeded(&mut self, mut f: Operation, answer: Answer) {
        match answer {
            Answer::Grant(c) if f.on_the_wire() == Endpoint::Token => self.refreshed(&c),
            Answer::Grant(c) => self.signed_in(&f.purpose, &c),
            Answer::ProviderToken(token) => match &mut f.purpose {
                Purpose::WeChatSignIn(x) | Purpose::Link(x) => x.provider_token = Some(token),
                other => panic!("model bug: {other:?} asked for a provider token"),
            },
            Answer::User { sub } => {
                // §5: `sub` is the user id; it fills in one the credentials lacked.
                if let Some(s) = &mut self.session
                    && s.uid.is_empty()
                {
                    s.uid = sub;
                }
                self.persist();
            }
            _ if f.on_the_wire() == Endpoint::DeleteMe => {
                // The user is gone on the server: the local session ends as after a
                // sign-out (nothing left to revoke).
                self.end_session();
            }
            _ if f.on_the_wire() == Endpoint::ProviderBind => {
                // Bound: the anonymous user now has the WeChat identity, same uid.
                self.set_state(LoginState::WeChat);
                self.persist();
            }
            _ => {} // `revoke` acknowledged.
        }
        if f.plan.len() > 1 {
            return self.send_next(f);
        }
        let done = match &f.purpose {
            Purpose::AnonymousSignIn { .. } | Purpose::WeChatSignIn(_) => {
                Completion::SignedIn(self.login)
            }
            Purpose::Link(_) => Completion::Linked,
            Purpose::UserInfo { .. } => Completion::UserInfo,
            Purpose::Refresh => Completion::LoginState,
            Purpose::SignOut { .. } => Completion::SignedOut { revoked: true },
            Purpose::UpdateProfile { .. } => Completion::ProfileUpdated,
            Purpose::DeleteAccount => Completion::AccountDeleted,
        };
        self.finish(f, Ok(done));
    }

    fn step_failed(&mut self, mut f: Operation, e: Failure) {
        let refusal = match e {
            Failure::Server(r) => Some(r),
            _ => None,
        };
        match (f.on_the_wire(), &f.purpose) {
            // "its failure (offline, 5xx) only shows as `SignedOut { revoked: false }`".
            (Endpoint::Revoke, _) => self.finish(f, Ok(Completion::SignedOut { revoked: false })),
            // The sign-in or link itself succeeded; the profile is fetched on demand.
            (Endpoint::UserMe, Purpose::AnonymousSignIn { .. } | Purpose::WeChatSignIn(_)) => {
                let done = Completion::SignedIn(self.login);
                self.finish(f, Ok(done));
            }
            (Endpoint::UserMe, Purpose::Link(_)) => self.finish(f, Ok(Completion::Linked)),
            // "`unauthenticated` on `user/me` while our clock says the token is valid: the
            // server wins; one refresh, then one retry." After that, or with no way to
            // refresh, the server has refused the session.
            (Endpoint::UserMe, Purpose::UserInfo { refreshed })
                if refusal.is_some_and(|r| r.kind == ServerErrorKind::Unauthenticated) =>
            {
                let refreshable = self.session.as_ref().is_some_and(UserSession::refreshable);
                if !refreshed && refreshable {
                    f.purpose = Purpose::UserInfo { refreshed: true };
                    f.plan = [Endpoint::UserMe, Endpoint::Token, Endpoint::UserMe].into();
                    self.send_next(f);
                } else {
                    self.session_refused(f);
                }
            }
            // The automatic sign-in is made once; if it fails the session stays gone.
            (_, Purpose::AnonymousSignIn { automatic: true }) => {
                self.fail(f, Failure::SessionExpired);
            }
            (Endpoint::Token, _) if refusal.is_some_and(|r| r.refuses_session()) => {
                self.session_refused(f);
            }
            (Endpoint::Token, purpose) => {
                // Offline, server trouble, a reply we cannot read: the session stays and
                // the proactive refresh backs off (1 s, 2 s, … 5 min).
                self.proactive_not_before = self.now.saturating_add(self.next_backoff);
                self.next_backoff = (self.next_backoff * 2).min(RETRY_BACKOFF_MAX_MS);
                let bound = matches!(purpose, Purpose::Link(_))
                    && !f.plan.contains(&Endpoint::ProviderBind);
                if bound {
                    // Linked already; the refreshed token can come later.
                    self.finish(f, Ok(Completion::Linked));
                } else {
                    self.fail(f, e);
                }
            }
            _ => self.fail(f, e),
        }
    }

    /// A sign-in's credentials: the new session (its kind from the `scope`, §4), with
    /// the refresh schedule started afresh. The automatic sign-in of a new anonymous
    /// user is announced (`SessionReplaced`) before the state change it explains.
    fn signed_in(&mut self, purpose: &Purpose, c: &Grant) {
        let kind = match c.scope.as_str() {
            "" if matches!(purpose, Purpose::AnonymousSignIn { .. }) => LoginState::Anonymous,
            "" => LoginState::WeChat,
            ANONYMOUS_SCOPE => LoginState::Anonymous,
            _ => LoginState::WeChat,
        };
        self.session = Some(UserSession::from_credentials(self.now, c));
        self.fresh_credentials();
        if *purpose == (Purpose::AnonymousSignIn { automatic: true }) {
            self.step.replaced += 1;
        }
        // Anonymous → Anonymous is no change of state.
        if !(self.login == LoginState::Anonymous && kind == LoginState::Anonymous) {
            self.set_state(kind);
        }
        self.persist();
    }

    /// A refresh's credentials. A reply without a refresh token keeps the old one
    /// (§4); one without `sub` keeps the uid. A non-anonymous scope makes an anonymous
    /// session WeChat; the converse never happens (core/README.md: a linked session
    /// stays WeChat even if the server still says `anonymous`).
    fn refreshed(&mut self, c: &Grant) {
        let old = self
            .session
            .take()
            .expect("model bug: a refresh without a session");
        let mut s = UserSession::from_credentials(self.now, c);
        if s.refresh_token.is_none() {
            s.refresh_token = old.refresh_token;
        }
        if s.uid.is_empty() {
            s.uid = old.uid;
        }
        self.session = Some(s);
        self.fresh_credentials();
        if self.login == LoginState::Anonymous && !c.scope.is_empty() && c.scope != ANONYMOUS_SCOPE
        {
            self.set_state(LoginState::WeChat);
        }
        self.persist();
    }

    /// New credentials: no proactive refresh sooner than `MIN_REFRESH_GAP_MS`, and the
    /// backoff starts over.
    fn fresh_credentials(&mut self) {
        self.proactive_not_before = self.now.saturating_add(MIN_REFRESH_GAP_MS);
        self.next_backoff = RETRY_BACKOFF_MIN_MS;
    }

    /// The server refused the session. It ends (`SignedOut`); every caller waiting on
    /// it fails with `SessionExpired` (none is answered with another user); an anonymous
    /// one is then replaced by the automatic sign-in of a new anonymous user when
    /// `Config::anonymous_recovery` is on.
    fn session_refused(&mut self, f: Operation) {
        let was_anonymous = self.login == LoginState::Anonymous;
        self.end_session();
        self.fail(f, Failure::SessionExpired);
        if was_anonymous && self.setup.anonymous_recovery {
            self.start(
                Purpose::AnonymousSignIn { automatic: true },
                None,
                &[Endpoint::SignInAnonymously, Endpoint::UserMe],
            );
        }
    }

    /// Success: the caller and the callers sharing its result get `r`; queued queries
    /// ask again.
    fn finish(&mut self, f: Operation, r: Outcome) {
        if let Some(op) = f.caller {
            self.complete(op, r);
        }
        for w in std::mem::take(&mut self.waiting) {
            match w {
                Waiting::Shares(op) => self.complete(op, r),
                Waiting::AsksAgain(op, query) => self.ask(op, query),
            }
        }
    }

    /// Failure: the caller and every waiting caller get `e`.
    fn fail(&mut self, f: Operation, e: Failure) {
        if let Some(op) = f.caller {
            self.complete(op, Err(e));
        }
        self.release_waiters(Err(e));
    }
}
