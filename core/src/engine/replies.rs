//! What a reply does: each step's effect on the session (store credentials, cache the
//! profile, change the login state), then what follows as [`flow::next`] decides, and
//! how a task ends for its caller and the callers waiting on it.

use super::flow::{self, Next, Outcome, Task};
use super::login::{Kind, Login, Side};
use super::{Call, Engine, Inflight, Queued};
use crate::capacity::REFRESH_TOKEN_MAX;
use crate::config::{MIN_REFRESH_GAP_MS, RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MIN_MS};
use crate::error::{Error, TransportError, WireError};
use crate::output::Completion;
use crate::session::{Profile, Session};
use crate::state::LoginState;
use crate::wire::{self, Credentials, Endpoint, ProviderTokenReply, User};
use heapless::String;

/// A reply as the engine sees it.
#[derive(Clone, Copy)]
pub(super) enum Reply<'a> {
    Http { status: u16, body: &'a [u8] },
    Failed(TransportError),
}

impl Reply<'_> {
    fn decode<T>(self, parse: fn(&[u8]) -> Result<T, WireError>) -> Result<T, Error> {
        match self {
            Reply::Http { status, body } => wire::decode_reply(status, body, parse),
            Reply::Failed(t) => Err(Error::Transport(t)),
        }
    }
}

impl Engine {
    /// The request in flight `f` got `reply` (or failed, or timed out).
    pub(super) fn on_reply(&mut self, f: Inflight, reply: Reply<'_>) {
        let outcome = match f.step {
            Endpoint::SignInAnonymously | Endpoint::SignInWithProvider => {
                self.took_credentials(f.task, reply)
            }
            Endpoint::ProviderToken => self.took_provider_token(reply),
            Endpoint::ProviderBind => self.took_bind(reply),
            Endpoint::Token => self.took_refresh(reply),
            // `user/profile` answers the updated user: cached as a `user/me` reply is.
            Endpoint::UserMe | Endpoint::UserProfile => self.took_user(f.step, reply),
            Endpoint::Revoke => match reply.decode(|_| Ok(())) {
                Ok(()) => Outcome::Ok,
                Err(e) => Outcome::Failed(e),
            },
            #[cfg(feature = "account")]
            Endpoint::DeleteMe => self.took_deletion(reply),
            // Not used by the engine's tasks.
            _ => Outcome::Failed(Error::Transport(TransportError::Failed)),
        };
        match flow::next(f.task, f.step, outcome, self.facts()) {
            Next::Send(task, step) => self.send(task, step, f.op),
            Next::Finish(completion) => self.finish(f, Ok(completion)),
            Next::Fail(e) => self.fail(f, e),
            Next::EndSession => self.session_rejected(f),
        }
    }

    // ----- each step's effect ---------------------------------------------------------

    /// `signin/anonymously`, `signin/with/provider`: a new session.
    fn took_credentials(&mut self, task: Task, reply: Reply<'_>) -> Outcome {
        let creds = match reply.decode(Credentials::parse) {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(e),
        };
        // Without a scope, the kind of sign-in decides.
        let kind = match (creds.scope.as_str(), task) {
            ("", Task::AnonymousSignIn { .. }) | (wire::SCOPE_ANONYMOUS, _) => Kind::Anonymous,
            _ => Kind::WeChat,
        };
        let appid = match &self.side {
            Side::Exchange(x) => x.appid.clone(),
            Side::Profile(_) => String::new(),
        };
        let session = self.session_from(creds, None);
        self.side = Side::Profile(Profile {
            appid,
            ..Profile::EMPTY
        });
        self.fresh_credentials();
        if task == (Task::AnonymousSignIn { recovery: true }) {
            // A new user, not the refused one: announced before the state change it
            // explains, so hosts never pass it off as the same session.
            self.push(Queued::Replaced);
        }
        match &mut self.login {
            // Anonymous → Anonymous (a WeChat sign-in answered with an anonymous scope)
            // is no change of state: the session is replaced in place.
            Login::SignedIn {
                kind: Kind::Anonymous,
                session: current,
            } if kind == Kind::Anonymous => *current = session,
            _ => self.set_login(Login::SignedIn { kind, session }),
        }
        self.push(Queued::Persist);
        Outcome::Ok
    }

    /// `provider/token`: the provider token replaces the `wx.login` code.
    fn took_provider_token(&mut self, reply: Reply<'_>) -> Outcome {
        match reply.decode(ProviderTokenReply::parse) {
            Ok(p) => {
                if let Side::Exchange(x) = &mut self.side {
                    x.secret = String::try_from(p.provider_token.as_str()).unwrap_or_default();
                }
                Outcome::Ok
            }
            Err(e) => Outcome::Failed(e),
        }
    }

    /// `user/provider/bind`: the user now has the WeChat identity, same uid.
    fn took_bind(&mut self, reply: Reply<'_>) -> Outcome {
        if let Err(e) = reply.decode(|_| Ok(())) {
            return Outcome::Failed(e);
        }
        let Some(session) = self.login.session_mut() else {
            return Outcome::Failed(Error::NotSignedIn);
        };
        let session = core::mem::take(session);
        self.set_login(Login::SignedIn {
            kind: Kind::WeChat,
            session,
        });
        self.push(Queued::Persist);
        Outcome::Ok
    }

    /// `token`: fresh credentials for the same user.
    fn took_refresh(&mut self, reply: Reply<'_>) -> Outcome {
        let creds = match reply.decode(Credentials::parse) {
            Ok(c) => c,
            Err(e) => {
                let outcome = Outcome::of_refresh(e);
                if !matches!(outcome, Outcome::Refused) {
                    // Offline or server trouble: keep the session (a network error is
                    // not an auth failure) and back off before the next proactive try.
                    self.retry_at = self.now.saturating_add(self.backoff_ms);
                    self.backoff_ms = (self.backoff_ms * 2).min(RETRY_BACKOFF_MAX_MS);
                }
                return outcome;
            }
        };
        let Some(old) = self.login.session() else {
            return Outcome::Failed(Error::NotSignedIn);
        };
        // No new refresh token in the reply: the old one stays valid (RFC 6749 §6).
        let keep = match creds.refresh_token {
            None => old.refresh_token.clone(),
            Some(_) => None,
        };
        let uid = old.uid.clone();
        let to_wechat = self.login.state() == LoginState::Anonymous
            && !creds.scope.is_empty()
            && !creds.is_anonymous();
        let mut session = self.session_from(creds, keep);
        if session.uid.is_empty() {
            session.uid = uid;
        }
        self.fresh_credentials();
        match self.login.session_mut() {
            Some(current) if !to_wechat => *current = session,
            _ => self.set_login(Login::SignedIn {
                kind: Kind::WeChat,
                session,
            }),
        }
        self.push(Queued::Persist);
        Outcome::Ok
    }

    /// `user/me` or `user/profile`: the profile. A refused `user/profile` (invalid value,
    /// token refused) fails only the change: the session and the cached profile stay.
    fn took_user(&mut self, step: Endpoint, reply: Reply<'_>) -> Outcome {
        match reply.decode(User::parse) {
            Ok(user) => {
                self.cache_profile(&user);
                self.push(Queued::Persist);
                Outcome::Ok
            }
            Err(e) if step == Endpoint::UserMe => Outcome::of_user(e),
            Err(e) => Outcome::Failed(e),
        }
    }

    /// `DELETE user/me`: the user is gone on the server with every session; the local
    /// session ends as after a sign-out (no `revoke`: nothing is left to revoke).
    #[cfg(feature = "account")]
    fn took_deletion(&mut self, reply: Reply<'_>) -> Outcome {
        match reply.decode(|_| Ok(())) {
            Ok(()) => {
                self.generation = self.generation.wrapping_add(1);
                self.end_session();
                Outcome::Ok
            }
            Err(e) => Outcome::Failed(e),
        }
    }

    fn cache_profile(&mut self, user: &User) {
        let mut p = Profile {
            appid: String::try_from(self.side.appid()).unwrap_or_default(),
            ..Profile::EMPTY
        };
        copy_cut(&mut p.name, &user.name);
        copy_cut(&mut p.avatar, &user.picture);
        copy_cut(&mut p.email, &user.email);
        copy_cut(&mut p.openid, user.openid_for(&p.appid).unwrap_or(""));
        self.side = Side::Profile(p);
        if let Some(s) = self.login.session_mut()
            && !user.sub.is_empty()
            && s.uid.is_empty()
        {
            copy_cut(&mut s.uid, &user.sub);
        }
    }

    fn session_from(
        &self,
        creds: Credentials,
        keep_refresh: Option<String<REFRESH_TOKEN_MAX>>,
    ) -> Session {
        let lifetime = creds.expires_in.saturating_mul(1000);
        let expires_at = self.now.saturating_add(lifetime);
        let refresh_at = expires_at - self.refresh_margin_ms.min(lifetime / 2);
        Session {
            token_type: creds.token_type,
            access_token: creds.access_token,
            refresh_token: creds.refresh_token.or(keep_refresh),
            expires_at,
            refresh_at,
            uid: creds.sub,
        }
    }

    fn fresh_credentials(&mut self) {
        self.backoff_ms = RETRY_BACKOFF_MIN_MS;
        self.retry_at = self.now.saturating_add(MIN_REFRESH_GAP_MS);
    }

    // ----- how a task ends --------------------------------------------------------------

    /// The server refused the session's credentials. An anonymous session signs in
    /// anonymously again, once (as the SDK does); a WeChat session ends.
    ///
    /// Every call that was waiting on the refused session completes with
    /// [`Error::SessionExpired`]: none of them is answered with another user. The
    /// automatic recovery (when [`Config::anonymous_recovery`](crate::Config) is on)
    /// signs in a *new* anonymous user in the background; its arrival is announced with
    /// [`Output::SessionReplaced`](crate::Output::SessionReplaced).
    fn session_rejected(&mut self, f: Inflight) {
        let was = self.login.state();
        self.end_session();
        self.fail(f, Error::SessionExpired);
        let recovered_already = f.task == (Task::AnonymousSignIn { recovery: true });
        if was == LoginState::Anonymous && !recovered_already && self.anonymous_recovery {
            self.generation = self.generation.wrapping_add(1);
            self.start(Task::AnonymousSignIn { recovery: true }, None);
        }
    }

    /// The session is gone (refused, or expired without a way to refresh).
    pub(super) fn end_session(&mut self) {
        self.side = Side::Profile(Profile::EMPTY);
        self.retry_at = 0;
        self.backoff_ms = RETRY_BACKOFF_MIN_MS;
        match &mut self.login {
            Login::SignedIn { .. } => self.set_login(Login::SignedOut { revoking: None }),
            Login::SignedOut { revoking } => *revoking = None,
            Login::Uninitialized | Login::Initialized => {}
        }
        self.push(Queued::Persist);
    }

    /// A WeChat exchange is over, whatever its result: the profile cache comes back
    /// (empty; it is fetched again).
    pub(super) fn end_exchange(&mut self) {
        if matches!(self.side, Side::Exchange(_)) {
            self.side = Side::Profile(Profile::EMPTY);
        }
    }

    /// The task ends successfully: its caller and joined callers get `result`, query
    /// waiters re-evaluate.
    fn finish(&mut self, f: Inflight, result: Result<Completion, Error>) {
        self.end_exchange();
        if let Some(op) = f.op {
            self.complete(op, result);
        }
        let waiters = core::mem::take(&mut self.waiters);
        for w in waiters {
            match w.call {
                Call::Same => self.complete(w.op, result),
                call => self.dispatch(w.op, call),
            }
        }
    }

    /// The task failed: its caller and every waiter get `err`.
    fn fail(&mut self, f: Inflight, err: Error) {
        self.end_exchange();
        if let Some(op) = f.op {
            self.complete(op, Err(err));
        }
        self.release_waiters(Err(err));
    }

    pub(super) fn release_waiters(&mut self, result: Result<Completion, Error>) {
        for w in core::mem::take(&mut self.waiters) {
            self.complete(w.op, result);
        }
    }
}

/// Copies as much of `s` as fits (profile fields are shown, not used as keys).
fn copy_cut<const N: usize>(out: &mut String<N>, s: &str) {
    out.clear();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
}
