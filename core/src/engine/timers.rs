//! The engine's timers, in one table: [`Engine::poll_timeout`] reports the earliest
//! deadline, `handle_timeout` (and every other input) fires the due ones, in the order
//! of [`Timer::ALL`], each at most once per input.

use super::Engine;
use super::replies::Reply;
use crate::error::TransportError;

/// One deadline the engine keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// The request in flight got no reply in time: it fails as timed out.
    Request,
    /// A session with a refresh token refreshes at `refresh_at` (`expires_at − margin`),
    /// or later while backing off after failures. Not while a request is in flight.
    Refresh,
    /// A session without a refresh token ends when its access token expires. Not while
    /// a request is in flight.
    Expiry,
}

impl Timer {
    /// Every timer, in firing order: a request that times out frees the way for a
    /// refresh in the same input.
    pub(super) const ALL: [Timer; 3] = [Timer::Request, Timer::Refresh, Timer::Expiry];
}

impl Engine {
    /// When `timer` fires (host ms), if it is armed.
    pub(super) fn deadline(&self, timer: Timer) -> Option<u64> {
        let idle = self.login.session().filter(|_| self.inflight.is_none());
        match timer {
            Timer::Request => self.inflight.map(|f| f.deadline),
            Timer::Refresh => idle
                .filter(|s| s.refresh_token.is_some())
                .map(|s| s.refresh_at.max(self.retry_at)),
            Timer::Expiry => idle
                .filter(|s| s.refresh_token.is_none())
                .map(|s| s.expires_at),
        }
    }

    /// The earliest armed deadline.
    pub(super) fn next_deadline(&self) -> Option<u64> {
        Timer::ALL
            .into_iter()
            .filter_map(|t| self.deadline(t))
            .min()
    }

    /// Fires every timer that is due. Runs after every input, so no deadline
    /// `poll_timeout` reports is ever in the past.
    pub(super) fn on_tick(&mut self) {
        for timer in Timer::ALL {
            if self.deadline(timer).is_some_and(|at| self.now >= at) {
                self.fire(timer);
            }
        }
    }

    fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::Request => {
                if let Some(f) = self.inflight.take() {
                    self.on_reply(f, Reply::Failed(TransportError::TimedOut));
                }
            }
            Timer::Refresh => self.start(super::flow::Task::Refresh, None),
            // No way to refresh: the session ends with its access token.
            Timer::Expiry => self.end_session(),
        }
    }
}
