//! What the engine asks the host to do, drained with `Engine::poll_output`.

use crate::error::Error;
use crate::state::LoginState;
use crate::wire::{Endpoint, Method};

/// Identifies one call of the host API; echoed in [`Output::OperationCompleted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a plain id; its layout is the API"
)]
pub struct OpId(pub u32);

/// Identifies one HTTP request: the session generation it belongs to and a sequence
/// number. Hand it back with the reply; a reply whose id is not the one in flight (an
/// older generation, a duplicate, a late reply after a timeout) is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a plain id; its layout is the API"
)]
pub struct RequestId {
    /// Session generation (bumped by every sign-in and sign-out).
    pub generation: u32,
    /// Request sequence number within this engine.
    pub seq: u32,
}

impl RequestId {
    /// Packs into one integer (for FFI).
    pub const fn to_u64(self) -> u64 {
        ((self.generation as u64) << 32) | self.seq as u64
    }

    /// Unpacks [`Self::to_u64`].
    pub const fn from_u64(v: u64) -> Self {
        RequestId {
            generation: (v >> 32) as u32,
            seq: v as u32,
        }
    }
}

/// Successful result of an operation. Data is read from the engine afterwards
/// (`login_state`, `session`, `user`): outputs stay small and copyable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Completion {
    /// `get_login_state` answered: read `Engine::login_state` / `session` / `user`.
    LoginState,
    /// A sign-in finished; the session is of this kind.
    SignedIn(LoginState),
    /// `get_user_info` answered: read `Engine::user`.
    UserInfo,
    /// `link_wechat` finished: the anonymous user now has the WeChat identity, same uid.
    Linked,
    /// `sign_out` finished. The local session was wiped when it was called; `revoked`
    /// says whether the server confirmed the revocation (false: offline, error, or no
    /// session to revoke).
    SignedOut {
        /// Whether the server acknowledged the revoke request.
        revoked: bool,
    },
    /// `update_profile` finished: the server stored the change and the cached profile
    /// (read `Engine::user`) is the user object it answered with.
    ProfileUpdated,
    /// `delete_account` finished: the server deleted the user with every session on
    /// every device, and the local session ended (state `SignedOut`).
    AccountDeleted,
}

/// Whether a reply was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Delivery {
    /// The reply was for the request in flight and was processed.
    Accepted,
    /// Not the request in flight (older generation, duplicate, timed out): dropped.
    Stale,
}

/// One thing for the host to do. Drain until [`Output::Timeout`] after every input.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output<'a> {
    /// Send this HTTP request; reply with `handle_response` or `handle_transport_error`.
    Transmit(Transmit<'a>),
    /// Store these bytes (replacing the previous snapshot) before acting on any later
    /// output; give them to `restore` on the next start.
    PersistSnapshot(&'a [u8]),
    /// Delete the stored snapshot (it was corrupt or unreadable).
    ClearStorage,
    /// The login state changed. Emitted only here, never re-entrantly; the first poll
    /// after `init` reports `Uninitialized → Initialized`, and after `restore` the
    /// restored state.
    LoginStateChanged {
        /// Previous state.
        from: LoginState,
        /// New state.
        to: LoginState,
    },
    /// The server refused the anonymous session (its refresh token, or its access token
    /// even after a refresh) and the engine signed in a **new** anonymous user in its
    /// place (see
    /// [`Config::anonymous_recovery`](crate::Config::anonymous_recovery)). Comes right
    /// before the `SignedOut → Anonymous` change it explains (hosts that report state
    /// changes can mark that one as a new user). The uid differs from the refused one:
    /// anything the app keyed on the old uid belongs to a user this device can no longer
    /// reach, and no call that was waiting on the old session was answered with this
    /// one (they failed with [`Error::SessionExpired`]).
    SessionReplaced,
    /// An operation finished.
    OperationCompleted {
        /// The id its call returned.
        op: OpId,
        /// What happened.
        result: Result<Completion, Error>,
    },
    /// Nothing more to do now; call `handle_timeout` at this host time (ms) if no other
    /// input comes first. `None`: no deadline.
    Timeout(Option<u64>),
}

/// An HTTP request, laid out in the buffer lent to `poll_output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transmit<'a> {
    /// Hand this back with the reply.
    pub request: RequestId,
    /// Which CloudBase endpoint.
    pub endpoint: Endpoint,
    /// HTTP method to send with (`POST` for a `PATCH` endpoint, whose
    /// `x-http-method-override` header then says `PATCH`).
    pub method: Method,
    /// Path and query, e.g. `/auth/v1/token?client_id=env`; prepend the origin.
    pub path: &'a str,
    /// JSON body (`None` for `GET`).
    pub body: Option<&'a [u8]>,
    pub(crate) header_block: &'a str,
}

impl<'a> Transmit<'a> {
    /// The request headers as `(name, value)` pairs (lower-case names).
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.header_block
            .lines()
            .filter_map(|line| line.split_once(": "))
    }

    /// The header block: `name: value` lines, each ending in `\n` (lower-case names).
    pub fn header_block(&self) -> &'a str {
        self.header_block
    }

    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}
