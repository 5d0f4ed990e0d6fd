//! What each `wx.cloud.auth()` call does, as the docs of its `Engine` method and
//! core/README.md describe it. Every call is an input: the timers run after it.

use cloudbase_auth_core::wire::Endpoint;
use cloudbase_auth_core::{Completion, LoginState, OpId};

use super::answer::Failure;
use super::state::{Model, Purpose, Query, Waiting, WxLogin};

impl Model {
    /// `get_login_state`: "Refreshes first when the access token is due, and waits for
    /// a sign-in or refresh in flight."
    pub(crate) fn get_login_state(&mut self, op: OpId) {
        self.opened(op);
        self.ask(op, Query::LoginState);
        self.tick();
    }

    /// `get_user_info`: `user/me`, "refreshing first when due"; concurrent callers share
    /// the one request (core/README.md, "single-flight").
    pub(crate) fn get_user_info(&mut self, op: OpId) {
        self.opened(op);
        self.ask(op, Query::UserInfo);
        self.tick();
    }

    /// `sign_in_anonymously`: a second call while an anonymous sign-in is in flight
    /// joins it; an anonymous session is returned as it is (no second anonymous user);
    /// otherwise whatever is in flight is cancelled and `signin/anonymously` →
    /// `user/me` starts.
    pub(crate) fn sign_in_anonymously(&mut self, op: OpId) {
        self.opened(op);
        let joining = self
            .in_flight
            .as_ref()
            .is_some_and(|f| matches!(f.purpose, Purpose::AnonymousSignIn { .. }));
        if joining {
            self.wait(Waiting::Shares(op));
        } else if self.login == LoginState::Anonymous {
            self.complete(op, Ok(Completion::SignedIn(LoginState::Anonymous)));
        } else {
            self.cancel_in_flight();
            self.start(
                Purpose::AnonymousSignIn { automatic: false },
                Some(op),
                &[Endpoint::SignInAnonymously, Endpoint::UserMe],
            );
        }
        self.tick();
    }

    /// `sign_in_with_wechat`: cancels anything in flight, then `provider/token` →
    /// `signin/with/provider` → `user/me`; the current session stays until the new one
    /// arrives.
    pub(crate) fn sign_in_with_wechat(&mut self, op: OpId, code: &str) {
        self.opened(op);
        self.cancel_in_flight();
        self.start(
            Purpose::WeChatSignIn(WxLogin {
                code: code.to_owned(),
                provider_token: None,
            }),
            Some(op),
            &[
                Endpoint::ProviderToken,
                Endpoint::SignInWithProvider,
                Endpoint::UserMe,
            ],
        );
        self.tick();
    }

    /// Why `link_wechat` is refused now, if it is: it "needs an anonymous session and
    /// nothing else in flight". Not anonymous wins over busy: waiting would not help.
    pub(crate) fn link_refusal(&self) -> Option<Failure> {
        if self.login != LoginState::Anonymous {
            Some(Failure::NotAnonymous)
        } else if self.in_flight.is_some() {
            Some(Failure::Busy)
        } else {
            None
        }
    }

    /// A refused call still brought the time: the timers run.
    pub(crate) fn refused_call(&mut self) {
        self.tick();
    }

    /// `link_wechat` (accepted): `provider/token` → `user/provider/bind` → a refresh "so
    /// the token reflects the new identity" (when the session can refresh) → `user/me`.
    /// The bind carries the access token, so a due token is refreshed first, as every
    /// call that sends it does ("refreshing first when due").
    pub(crate) fn link_wechat(&mut self, op: OpId, code: &str) {
        self.opened(op);
        let refreshable = self.session.as_ref().is_some_and(|s| s.refreshable());
        let mut plan = Vec::new();
        if self.refresh_due() {
            plan.push(Endpoint::Token);
        }
        plan.extend([Endpoint::ProviderToken, Endpoint::ProviderBind]);
        if refreshable {
            plan.push(Endpoint::Token);
        }
        plan.push(Endpoint::UserMe);
        self.start(
            Purpose::Link(WxLogin {
                code: code.to_owned(),
                provider_token: None,
            }),
            Some(op),
            &plan,
        );
        self.tick();
    }

    /// Why `update_profile` or `delete_account` is refused now, if it is: each "needs a
    /// session and nothing else in flight".
    pub(crate) fn account_refusal(&self) -> Option<Failure> {
        if self.session.is_none() {
            Some(Failure::NotSignedIn)
        } else if self.in_flight.is_some() {
            Some(Failure::Busy)
        } else {
            None
        }
    }

    /// `update_profile` (accepted): `user/profile` with the change, "refreshing first
    /// when due"; the session and state stay whatever the reply.
    pub(crate) fn update_profile(&mut self, op: OpId, name: Option<&str>, picture: Option<&str>) {
        self.opened(op);
        let mut plan = Vec::new();
        if self.refresh_due() {
            plan.push(Endpoint::Token);
        }
        plan.push(Endpoint::UserProfile);
        let purpose = Purpose::UpdateProfile {
            name: name.map(str::to_owned),
            picture: picture.map(str::to_owned),
        };
        self.start(purpose, Some(op), &plan);
        self.tick();
    }

    /// `delete_account` (accepted): `DELETE user/me`, "refreshing first when due"; on
    /// success the local session ends as after a sign-out, without `revoke`.
    pub(crate) fn delete_account(&mut self, op: OpId) {
        self.opened(op);
        let mut plan = Vec::new();
        if self.refresh_due() {
            plan.push(Endpoint::Token);
        }
        plan.push(Endpoint::DeleteMe);
        self.start(Purpose::DeleteAccount, Some(op), &plan);
        self.tick();
    }

    /// `sign_out`: cancels anything in flight and wipes the local session at once
    /// (`SignedOut`, persisted), then tells the server with `revoke`. Without a session
    /// there is nothing to revoke: `SignedOut { revoked: false }` at once.
    pub(crate) fn sign_out(&mut self, op: OpId) {
        self.opened(op);
        self.cancel_in_flight();
        match self.session.take() {
            Some(s) => {
                self.set_state(LoginState::SignedOut);
                self.persist();
                self.start(
                    Purpose::SignOut {
                        access_token: s.access_token,
                    },
                    Some(op),
                    &[Endpoint::Revoke],
                );
            }
            None => self.complete(op, Ok(Completion::SignedOut { revoked: false })),
        }
        self.tick();
    }

    /// A query: answered now, queued behind the operation in flight, or the start of a
    /// request.
    pub(crate) fn ask(&mut self, op: OpId, query: Query) {
        let busy_with = self.in_flight.as_ref().map(|f| f.purpose.clone());
        if self.session.is_none() {
            // No session: a sign-in on the way may bring one; otherwise the answer is
            // the state, and user info needs a session.
            match (busy_with, query) {
                (Some(p), _) if p.is_sign_in() => self.wait(Waiting::AsksAgain(op, query)),
                (_, Query::UserInfo) => self.complete(op, Err(Failure::NotSignedIn)),
                (_, Query::LoginState) => self.complete(op, Ok(Completion::LoginState)),
            }
            return;
        }
        match (busy_with, query) {
            (Some(p), _) if p.is_sign_in() || p == Purpose::Refresh => {
                self.wait(Waiting::AsksAgain(op, query));
            }
            (Some(Purpose::UserInfo { .. }), Query::UserInfo) => self.wait(Waiting::Shares(op)),
            // A user fetch or link in flight: the state is known and the token still
            // works, so there is nothing to wait for.
            (Some(_), Query::LoginState) if !self.token_expired() => {
                self.complete(op, Ok(Completion::LoginState));
            }
            (Some(_), _) => self.wait(Waiting::AsksAgain(op, query)),
            (None, _) if self.refresh_due() => {
                self.wait(Waiting::AsksAgain(op, query));
                self.start(Purpose::Refresh, None, &[Endpoint::Token]);
            }
            (None, Query::UserInfo) => self.start(
                Purpose::UserInfo { refreshed: false },
                Some(op),
                &[Endpoint::UserMe],
            ),
            (None, Query::LoginState) => self.complete(op, Ok(Completion::LoginState)),
        }
    }

    /// A sign-in or sign-out starts: what is in flight ends (its caller and waiters are
    /// cancelled; a sign-out in flight already did its local part and ends unconfirmed)
    /// and its reply will be stale.
    pub(crate) fn cancel_in_flight(&mut self) {
        if let Some(f) = self.in_flight.take()
            && let Some(op) = f.caller
        {
            let r = match f.purpose {
                Purpose::SignOut { .. } => Ok(Completion::SignedOut { revoked: false }),
                _ => Err(Failure::Cancelled),
            };
            self.complete(op, r);
        }
        self.release_waiters(Err(Failure::Cancelled));
    }
}
