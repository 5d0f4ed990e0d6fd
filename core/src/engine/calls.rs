//! What a call does now: answer at once, wait on the operation in flight
//! (single-flight: up to `WAITERS_MAX` callers), or start a task; and the bookkeeping of
//! the one request in flight.

use super::flow::{self, Facts, Task};
use super::{Engine, Queued};
use crate::capacity::{OUTPUTS_MAX, WAITERS_MAX};
use crate::error::{ApiMisuse, Error};
use crate::output::{Completion, OpId, RequestId};
use crate::state::LoginState;
use crate::wire::Endpoint;

/// The one operation in flight.
#[derive(Debug, Clone, Copy)]
pub(super) struct Inflight {
    pub(super) task: Task,
    pub(super) step: Endpoint,
    /// The call that started it (`None` for internal refreshes).
    pub(super) op: Option<OpId>,
    pub(super) request: RequestId,
    pub(super) deadline: u64,
}

/// What a waiting caller wants once the operation in flight ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    /// `get_login_state`: re-evaluated after success.
    LoginState,
    /// `get_user_info`: re-evaluated after success.
    UserInfo,
    /// Joined an identical operation: gets its result.
    Same,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Waiter {
    pub(super) op: OpId,
    pub(super) call: Call,
}

impl Engine {
    pub(super) fn begin_input(&mut self, now_ms: u64) {
        debug_assert!(
            self.outputs.is_empty(),
            "drain poll_output after every input"
        );
        // Time going backwards is ignored.
        self.now = self.now.max(now_ms);
    }

    pub(super) fn start_call(&mut self, now_ms: u64) -> Result<(), Error> {
        if self.login.state() == LoginState::Uninitialized {
            return Err(ApiMisuse::NotInitialized.into());
        }
        if self.outputs.len() + WAITERS_MAX + 5 > OUTPUTS_MAX {
            return Err(ApiMisuse::OutputQueueFull.into());
        }
        self.begin_input(now_ms);
        self.restorable = false;
        Ok(())
    }

    pub(super) fn new_op(&mut self) -> OpId {
        self.next_op = self.next_op.wrapping_add(1);
        OpId(self.next_op)
    }

    /// What the task sequences branch on.
    pub(super) fn facts(&self) -> Facts {
        let session = self.login.session();
        let refreshable = session.is_some_and(|s| s.refresh_token.is_some());
        Facts {
            refresh_due: refreshable && session.is_some_and(|s| self.now >= s.refresh_at),
            refreshable,
            state: self.login.state(),
        }
    }

    pub(super) fn expired(&self) -> bool {
        self.login
            .session()
            .is_some_and(|s| self.now >= s.expires_at)
    }

    /// Decides what a query call does now: answer, wait, or start a request.
    pub(super) fn dispatch(&mut self, op: OpId, call: Call) {
        let inflight = self.inflight.map(|f| f.task);
        if self.login.session().is_none() {
            match (inflight, call) {
                (Some(t), _) if t.is_sign_in() => self.wait(op, call),
                (_, Call::UserInfo) => self.complete(op, Err(Error::NotSignedIn)),
                _ => self.complete(op, Ok(Completion::LoginState)),
            }
            return;
        }
        match (inflight, call) {
            (Some(t), _) if t.is_sign_in() || t == Task::Refresh => self.wait(op, call),
            (Some(Task::FetchUser { .. }), Call::UserInfo) => self.wait(op, Call::Same),
            (Some(_), Call::LoginState) if !self.expired() => {
                self.complete(op, Ok(Completion::LoginState))
            }
            (Some(_), _) => self.wait(op, call),
            (None, _) if self.facts().refresh_due => {
                self.wait(op, call);
                self.start(Task::Refresh, None);
            }
            (None, Call::UserInfo) => self.start(Task::FetchUser { refreshed: false }, Some(op)),
            (None, _) => self.complete(op, Ok(Completion::LoginState)),
        }
    }

    /// Until when `get_login_state` answers at once, as `dispatch` and the timers decide:
    /// see [`Engine::login_state_settled_until`].
    pub(super) fn settled_until(&self) -> Option<u64> {
        let session = self.login.session();
        let until = match self.inflight {
            _ if self.login.state() == LoginState::Uninitialized => return None,
            // Callers wait for a sign-in or a refresh.
            Some(f) if f.task.is_sign_in() || f.task == Task::Refresh => return None,
            // Another request: answered at once while the token is unexpired, until the
            // request times out (its timer is the only one armed).
            Some(f) => session.map_or(f.deadline, |s| s.expires_at.min(f.deadline)),
            None => match session {
                None => u64::MAX,
                // A refresh is due at `refresh_at` (the backoff delays only its timer).
                Some(s) if s.refresh_token.is_some() => s.refresh_at.min(s.expires_at),
                // The expiry timer ends the session.
                Some(s) => s.expires_at,
            },
        };
        (until > self.now).then_some(until)
    }

    pub(super) fn wait(&mut self, op: OpId, call: Call) {
        if self.waiters.push(Waiter { op, call }).is_err() {
            self.complete(op, Err(ApiMisuse::Busy.into()));
        }
    }

    /// A sign-in or sign-out starts: whatever is in flight is about a session that is
    /// going away, so it ends here and its reply will be dropped.
    pub(super) fn supersede(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if let Some(f) = self.inflight.take() {
            let result = match f.task {
                Task::SignOut => Ok(Completion::SignedOut { revoked: false }),
                _ => Err(Error::Cancelled),
            };
            if let Some(op) = f.op {
                self.complete(op, result);
            }
            self.end_exchange();
        }
        self.release_waiters(Err(Error::Cancelled));
    }

    /// Starts `task` with its first request.
    pub(super) fn start(&mut self, task: Task, op: Option<OpId>) {
        let step = flow::first(task, self.facts());
        self.send(task, step, op);
    }

    /// Queues request `step` of `task`; it is the one in flight from now on.
    pub(super) fn send(&mut self, task: Task, step: Endpoint, op: Option<OpId>) {
        self.next_seq = self.next_seq.wrapping_add(1);
        let request = RequestId {
            generation: self.generation,
            seq: self.next_seq,
        };
        let deadline = self.now.saturating_add(self.request_timeout_ms);
        self.inflight = Some(Inflight {
            task,
            step,
            op,
            request,
            deadline,
        });
        self.push(Queued::Transmit(request));
    }

    pub(super) fn take_inflight(&mut self, id: RequestId) -> Option<Inflight> {
        match self.inflight {
            Some(f) if f.request == id && id.generation == self.generation => self.inflight.take(),
            _ => None,
        }
    }

    pub(super) fn complete(&mut self, op: OpId, result: Result<Completion, Error>) {
        self.queue_completion(op, result);
    }
}
