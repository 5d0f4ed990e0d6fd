//! Each task's sequence of requests, in one place.
//!
//! [`first`] and [`next`] are the flow list of core/README.md ("Flows"), line for line:
//! which request a task starts with, and after each reply, whether it sends another,
//! finishes, fails, or ends the session. What a reply *does* to the session (store
//! credentials, cache the profile, change the login state) is the engine's business
//! (`replies.rs`); this module only decides the order. The tests at the bottom walk
//! every line of the list.

use crate::error::{Error, ServerErrorKind, TransportError};
use crate::output::Completion;
use crate::state::LoginState;
use crate::wire::Endpoint;

/// What a sequence of requests is for. The request in flight is its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Task {
    /// `signInAnonymously`. `recovery`: the automatic re-sign-in after an anonymous
    /// refresh token was rejected (sends `Basic` client auth; fails as
    /// `SessionExpired`).
    AnonymousSignIn { recovery: bool },
    /// `signInWithWeChat`.
    WeChatSignIn,
    /// `linkWithWeChat`. `bound`: `user/provider/bind` succeeded.
    Link { bound: bool },
    /// A refresh, proactive or for waiting callers.
    Refresh,
    /// `getUserInfo`. `refreshed`: the one refresh after `unauthenticated` was made.
    FetchUser { refreshed: bool },
    /// `signOut`.
    SignOut,
    /// `user.update()`: the profile change waits in the engine until written.
    #[cfg(feature = "account")]
    UpdateProfile,
    /// `deleteMe`: the user is deleted on the server, then the local session ends.
    #[cfg(feature = "account")]
    DeleteAccount,
}

impl Task {
    /// Whether it creates a new session.
    pub(super) fn is_sign_in(self) -> bool {
        matches!(self, Task::AnonymousSignIn { .. } | Task::WeChatSignIn)
    }
}

/// How a step ended, as far as the sequence is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The reply was what the step asked for, and the engine took it in.
    Ok,
    /// The server refused the session's credentials: a refresh token rejected, or
    /// `unauthenticated` on `user/me` (see [`Outcome::of_refresh`], [`Outcome::of_user`]).
    Refused,
    /// Anything else: transport failure, timeout, server trouble, a reply that does
    /// not parse, or a refusal of this request only.
    Failed(Error),
}

impl Outcome {
    /// A failed refresh: 4xx other than rate limiting (or `invalid_grant` whatever the
    /// status) means the refresh token itself was refused; anything else is transient.
    pub(super) fn of_refresh(e: Error) -> Self {
        let refused = matches!(e, Error::Server(s) if (400..500).contains(&s.status)
            && !matches!(s.kind, ServerErrorKind::ResourceExhausted | ServerErrorKind::Unavailable))
            || matches!(e, Error::Server(s) if s.kind == ServerErrorKind::InvalidGrant);
        if refused {
            Outcome::Refused
        } else {
            Outcome::Failed(e)
        }
    }

    /// A failed `user/me`: `unauthenticated` means the access token was refused.
    pub(super) fn of_user(e: Error) -> Self {
        match e {
            Error::Server(s) if s.kind == ServerErrorKind::Unauthenticated => Outcome::Refused,
            e => Outcome::Failed(e),
        }
    }
}

/// What the engine does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Send this request for the task (whose data may have moved on).
    Send(Task, Endpoint),
    /// The task succeeded: its caller and joined callers get this; waiting queries are
    /// evaluated again.
    Finish(Completion),
    /// The task failed: its caller and every waiter get this error.
    Fail(Error),
    /// The session's credentials were refused: the session ends, every caller gets
    /// `SessionExpired`, and an anonymous session signs in anonymously again, once.
    EndSession,
}

/// What the sequence branches on besides the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Facts {
    /// The session has a refresh token and its refresh time has come.
    pub(super) refresh_due: bool,
    /// The session has a refresh token.
    pub(super) refreshable: bool,
    /// The login state now.
    pub(super) state: LoginState,
}

/// The request a task starts with.
pub(super) fn first(task: Task, facts: Facts) -> Endpoint {
    match task {
        Task::AnonymousSignIn { .. } => Endpoint::SignInAnonymously,
        Task::WeChatSignIn => Endpoint::ProviderToken,
        // A token due for refresh is refreshed before the link, so the bind does not
        // fail on an expired one.
        Task::Link { .. } if facts.refresh_due => Endpoint::Token,
        Task::Link { .. } => Endpoint::ProviderToken,
        Task::Refresh => Endpoint::Token,
        Task::FetchUser { .. } => Endpoint::UserMe,
        Task::SignOut => Endpoint::Revoke,
        // As for a link: a token due for refresh is refreshed first.
        #[cfg(feature = "account")]
        Task::UpdateProfile | Task::DeleteAccount if facts.refresh_due => Endpoint::Token,
        #[cfg(feature = "account")]
        Task::UpdateProfile => Endpoint::UserProfile,
        #[cfg(feature = "account")]
        Task::DeleteAccount => Endpoint::DeleteMe,
    }
}

/// What follows `step` of `task` ending with `outcome`.
pub(super) fn next(task: Task, step: Endpoint, outcome: Outcome, facts: Facts) -> Next {
    use Endpoint::*;
    use Outcome::{Failed, Ok, Refused};
    match (task, step, outcome) {
        // signInAnonymously: signin/anonymously → user/me. The profile is only a bonus:
        // the sign-in succeeded once the credentials came.
        (Task::AnonymousSignIn { .. }, SignInAnonymously, Ok) => Next::Send(task, UserMe),
        (Task::AnonymousSignIn { recovery: true }, SignInAnonymously, _) => {
            Next::Fail(Error::SessionExpired)
        }
        (Task::AnonymousSignIn { .. }, UserMe, _) => {
            Next::Finish(Completion::SignedIn(LoginState::Anonymous))
        }

        // signInWithWeChat: provider/token → signin/with/provider → user/me.
        (Task::WeChatSignIn, ProviderToken, Ok) => Next::Send(task, SignInWithProvider),
        (Task::WeChatSignIn, SignInWithProvider, Ok) => Next::Send(task, UserMe),
        (Task::WeChatSignIn, UserMe, _) => Next::Finish(Completion::SignedIn(facts.state)),

        // linkWithWeChat: [token if due] → provider/token → user/provider/bind →
        // [token if refreshable] → user/me. The refresh after the bind makes the token
        // reflect the new identity; once bound, its failure still links.
        (Task::Link { bound: false }, Token, Ok) => Next::Send(task, ProviderToken),
        (Task::Link { bound: false }, ProviderToken, Ok) => Next::Send(task, ProviderBind),
        (Task::Link { .. }, ProviderBind, Ok) if facts.refreshable => {
            Next::Send(Task::Link { bound: true }, Token)
        }
        (Task::Link { .. }, ProviderBind, Ok) => Next::Send(Task::Link { bound: true }, UserMe),
        (Task::Link { bound: true }, Token, Ok) => Next::Send(task, UserMe),
        (Task::Link { bound: true }, Token, Failed(_)) => Next::Finish(Completion::Linked),
        (Task::Link { .. }, UserMe, _) => Next::Finish(Completion::Linked),

        // Refresh: token.
        (Task::Refresh, Token, Ok) => Next::Finish(Completion::LoginState),

        // getUserInfo: user/me; on `unauthenticated` while refreshable, token then user/me
        // once more (the server wins over our clock).
        (Task::FetchUser { .. }, UserMe, Ok) => Next::Finish(Completion::UserInfo),
        (Task::FetchUser { refreshed: false }, UserMe, Refused) if facts.refreshable => {
            Next::Send(Task::FetchUser { refreshed: true }, Token)
        }
        (Task::FetchUser { .. }, Token, Ok) => {
            Next::Send(Task::FetchUser { refreshed: true }, UserMe)
        }

        // signOut: revoke; the local session is already gone, so any reply finishes.
        (Task::SignOut, Revoke, outcome) => Next::Finish(Completion::SignedOut {
            revoked: matches!(outcome, Ok),
        }),

        // user.update(): [token if due] → user/profile.
        #[cfg(feature = "account")]
        (Task::UpdateProfile, Token, Ok) => Next::Send(task, UserProfile),
        #[cfg(feature = "account")]
        (Task::UpdateProfile, UserProfile, Ok) => Next::Finish(Completion::ProfileUpdated),

        // deleteMe: [token if due] → DELETE user/me; the local session has ended by now.
        #[cfg(feature = "account")]
        (Task::DeleteAccount, Token, Ok) => Next::Send(task, DeleteMe),
        #[cfg(feature = "account")]
        (Task::DeleteAccount, DeleteMe, Ok) => Next::Finish(Completion::AccountDeleted),

        // Every other refusal ends the session; every other failure fails the task.
        (_, _, Refused) => Next::EndSession,
        (_, _, Failed(e)) => Next::Fail(e),
        // A step no task takes.
        (_, _, Ok) => Next::Fail(Error::Transport(TransportError::Failed)),
    }
}

#[cfg(test)]
mod tests {
    //! Each task walked along the flow list of core/README.md.
    use super::*;
    use crate::error::ServerError;

    const FACTS: Facts = Facts {
        refresh_due: false,
        refreshable: true,
        state: LoginState::Anonymous,
    };
    const OFFLINE: Error = Error::Transport(TransportError::Failed);

    /// The requests a task sends when every step succeeds, and how it finishes.
    fn happy_path(task: Task, facts: Facts) -> (std::vec::Vec<Endpoint>, Next) {
        let mut steps = vec![first(task, facts)];
        let mut task = task;
        loop {
            match next(task, *steps.last().unwrap(), Outcome::Ok, facts) {
                Next::Send(t, step) => {
                    task = t;
                    steps.push(step);
                }
                end => return (steps, end),
            }
        }
    }

    #[test]
    fn every_task_on_its_happy_path() {
        use Endpoint::*;
        let signed_in = |s| Next::Finish(Completion::SignedIn(s));
        assert_eq!(
            happy_path(Task::AnonymousSignIn { recovery: false }, FACTS),
            (
                vec![SignInAnonymously, UserMe],
                signed_in(LoginState::Anonymous)
            )
        );
        let wechat = Facts {
            state: LoginState::WeChat,
            ..FACTS
        };
        assert_eq!(
            happy_path(Task::WeChatSignIn, wechat),
            (
                vec![ProviderToken, SignInWithProvider, UserMe],
                signed_in(LoginState::WeChat)
            )
        );
        let link = Task::Link { bound: false };
        let linked = Next::Finish(Completion::Linked);
        assert_eq!(
            happy_path(link, FACTS),
            (vec![ProviderToken, ProviderBind, Token, UserMe], linked)
        );
        let due = Facts {
            refresh_due: true,
            ..FACTS
        };
        assert_eq!(
            happy_path(link, due),
            (
                vec![Token, ProviderToken, ProviderBind, Token, UserMe],
                linked
            )
        );
        let unrefreshable = Facts {
            refreshable: false,
            ..FACTS
        };
        assert_eq!(
            happy_path(link, unrefreshable),
            (vec![ProviderToken, ProviderBind, UserMe], linked)
        );
        assert_eq!(
            happy_path(Task::Refresh, FACTS),
            (vec![Token], Next::Finish(Completion::LoginState))
        );
        assert_eq!(
            happy_path(Task::FetchUser { refreshed: false }, FACTS),
            (vec![UserMe], Next::Finish(Completion::UserInfo))
        );
        assert_eq!(
            happy_path(Task::SignOut, FACTS),
            (
                vec![Revoke],
                Next::Finish(Completion::SignedOut { revoked: true })
            )
        );
    }

    #[test]
    fn failures_and_refusals() {
        use Endpoint::*;
        let failed = Outcome::Failed(OFFLINE);
        // A sign-in fails with its error; the recovery sign-in as an expired session.
        let anonymous = Task::AnonymousSignIn { recovery: false };
        assert_eq!(
            next(anonymous, SignInAnonymously, failed, FACTS),
            Next::Fail(OFFLINE)
        );
        let recovery = Task::AnonymousSignIn { recovery: true };
        assert_eq!(
            next(recovery, SignInAnonymously, failed, FACTS),
            Next::Fail(Error::SessionExpired)
        );
        // The profile fetch after a sign-in or link cannot fail it.
        for outcome in [failed, Outcome::Refused] {
            assert_eq!(
                next(recovery, UserMe, outcome, FACTS),
                Next::Finish(Completion::SignedIn(LoginState::Anonymous))
            );
            assert_eq!(
                next(Task::Link { bound: true }, UserMe, outcome, FACTS),
                Next::Finish(Completion::Linked)
            );
        }
        for step in [ProviderToken, SignInWithProvider] {
            assert_eq!(
                next(Task::WeChatSignIn, step, failed, FACTS),
                Next::Fail(OFFLINE)
            );
        }
        // Link: a failed refresh before the bind fails it, after the bind still links;
        // a refused refresh ends the session either way.
        let link = Task::Link { bound: false };
        assert_eq!(next(link, Token, failed, FACTS), Next::Fail(OFFLINE));
        let bound = Task::Link { bound: true };
        assert_eq!(
            next(bound, Token, failed, FACTS),
            Next::Finish(Completion::Linked)
        );
        for task in [link, bound, Task::Refresh] {
            assert_eq!(next(task, Token, Outcome::Refused, FACTS), Next::EndSession);
        }
        for step in [ProviderToken, ProviderBind] {
            assert_eq!(next(link, step, failed, FACTS), Next::Fail(OFFLINE));
        }
        assert_eq!(
            next(Task::Refresh, Token, failed, FACTS),
            Next::Fail(OFFLINE)
        );
        // getUserInfo: one refresh after `unauthenticated`, then the session ends.
        let fetch = Task::FetchUser { refreshed: false };
        let refetch = Task::FetchUser { refreshed: true };
        assert_eq!(
            next(fetch, UserMe, Outcome::Refused, FACTS),
            Next::Send(refetch, Token)
        );
        assert_eq!(
            next(refetch, Token, Outcome::Ok, FACTS),
            Next::Send(refetch, UserMe)
        );
        assert_eq!(
            next(refetch, UserMe, Outcome::Refused, FACTS),
            Next::EndSession
        );
        let unrefreshable = Facts {
            refreshable: false,
            ..FACTS
        };
        assert_eq!(
            next(fetch, UserMe, Outcome::Refused, unrefreshable),
            Next::EndSession
        );
        assert_eq!(next(fetch, UserMe, failed, FACTS), Next::Fail(OFFLINE));
        // signOut finishes whatever the server says.
        assert_eq!(
            next(Task::SignOut, Revoke, failed, FACTS),
            Next::Finish(Completion::SignedOut { revoked: false })
        );
    }

    #[test]
    fn which_errors_refuse_the_session() {
        let server = |status, kind| Error::Server(ServerError::new(status, kind, 0));
        for e in [
            server(400, ServerErrorKind::InvalidGrant),
            server(401, ServerErrorKind::Unauthenticated),
            server(403, ServerErrorKind::PermissionDenied),
            server(500, ServerErrorKind::InvalidGrant),
        ] {
            assert_eq!(Outcome::of_refresh(e), Outcome::Refused, "{e:?}");
        }
        for e in [
            server(429, ServerErrorKind::ResourceExhausted),
            server(503, ServerErrorKind::Unavailable),
            server(400, ServerErrorKind::Unavailable),
            OFFLINE,
        ] {
            assert_eq!(Outcome::of_refresh(e), Outcome::Failed(e), "{e:?}");
        }
        let unauthenticated = server(401, ServerErrorKind::Unauthenticated);
        assert_eq!(Outcome::of_user(unauthenticated), Outcome::Refused);
        let forbidden = server(403, ServerErrorKind::PermissionDenied);
        assert_eq!(Outcome::of_user(forbidden), Outcome::Failed(forbidden));
    }
}
