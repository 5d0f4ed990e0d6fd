//! Stable numeric codes of the public enums, for hosts that pass them across a language
//! boundary (the wasm module's exports and records; any FFI).
//!
//! Every map here is an exhaustive `match` inside this crate, where the
//! `#[non_exhaustive]` enums can be matched exhaustively: a new variant does not compile
//! until it has a code, so no host ever sees an unmapped value turn into a default. A code
//! never changes meaning; a new variant takes the next free number (and raises the
//! `CODE_MAX` of its enum, which hosts size their name tables with).
//!
//! | value | code |
//! |---|---|
//! | [`LoginState`] | 0 uninitialized, 1 initialized, 2 anonymous, 3 WeChat, 4 signed out |
//! | [`Output`] (its kind) | 0 timeout, 1 transmit, 2 persist snapshot, 3 clear storage, 4 login state changed, 5 operation completed, 6 session replaced |
//! | [`Completion`] | (kind, detail): 1 login state, 2 signed in (detail: the state's code), 3 user info, 4 linked, 5 signed out (detail: revoked 1/0), 6 profile updated, 7 account deleted |
//! | [`Delivery`] | 1 accepted, 0 stale |
//! | [`Error`] | (class, sub): see [`Error::code`] |
//! | [`ServerErrorKind`] | 0 other, 1 invalid grant, 2 unauthenticated, 3 invalid argument, 4 permission denied, 5 not found, 6 conflict, 7 rate limited, 8 unavailable |

use crate::error::{ApiMisuse, Error, ServerErrorKind, SnapshotError, TransportError, WireError};
use crate::output::{Completion, Delivery, Output};
use crate::state::LoginState;

impl LoginState {
    /// The highest login state code.
    pub const CODE_MAX: u8 = 4;

    /// This state's code: 0 uninitialized, 1 initialized, 2 anonymous, 3 WeChat,
    /// 4 signed out.
    pub const fn code(self) -> u8 {
        match self {
            LoginState::Uninitialized => 0,
            LoginState::Initialized => 1,
            LoginState::Anonymous => 2,
            LoginState::WeChat => 3,
            LoginState::SignedOut => 4,
        }
    }

    /// The state with this code, if any (the inverse of [`LoginState::code`]).
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => LoginState::Uninitialized,
            1 => LoginState::Initialized,
            2 => LoginState::Anonymous,
            3 => LoginState::WeChat,
            4 => LoginState::SignedOut,
            _ => return None,
        })
    }
}

impl Output<'_> {
    /// The highest output kind.
    pub const CODE_MAX: u8 = 6;

    /// This output's kind: 0 timeout, 1 transmit, 2 persist snapshot, 3 clear storage,
    /// 4 login state changed, 5 operation completed, 6 session replaced.
    pub const fn code(&self) -> u8 {
        match self {
            Output::Timeout(_) => 0,
            Output::Transmit(_) => 1,
            Output::PersistSnapshot(_) => 2,
            Output::ClearStorage => 3,
            Output::LoginStateChanged { .. } => 4,
            Output::OperationCompleted { .. } => 5,
            Output::SessionReplaced => 6,
        }
    }
}

impl Completion {
    /// The highest completion kind.
    pub const CODE_MAX: u8 = 7;

    /// `(kind, detail)`: 1 login state, 2 signed in (detail: the state's
    /// [code](LoginState::code)), 3 user info, 4 linked, 5 signed out (detail: 1 if
    /// revoked, else 0), 6 profile updated, 7 account deleted. The detail is 0 where the
    /// kind has none.
    pub const fn code(self) -> (u8, u8) {
        match self {
            Completion::LoginState => (1, 0),
            Completion::SignedIn(state) => (2, state.code()),
            Completion::UserInfo => (3, 0),
            Completion::Linked => (4, 0),
            Completion::SignedOut { revoked } => (5, revoked as u8),
            Completion::ProfileUpdated => (6, 0),
            Completion::AccountDeleted => (7, 0),
        }
    }
}

impl Delivery {
    /// 1 accepted, 0 stale.
    pub const fn code(self) -> u8 {
        match self {
            Delivery::Accepted => 1,
            Delivery::Stale => 0,
        }
    }
}

// The host's class comes before every engine error's.
const _: () = assert!(Error::CLASS_HOST < Error::CLASS_API_MISUSE);

impl Error {
    /// Never an engine error: the class hosts use for their own checks of the values that
    /// cross the boundary (the wasm module's pointers, times, UTF-8).
    pub const CLASS_HOST: u8 = 1;
    /// [`Error::ApiMisuse`]; sub: [`ApiMisuse::code`].
    pub const CLASS_API_MISUSE: u8 = 2;
    /// [`Error::Server`]; sub 0 (the reply's status, kind and `error_code` say more).
    pub const CLASS_SERVER: u8 = 3;
    /// [`Error::Wire`]; sub: [`WireError::code`].
    pub const CLASS_WIRE: u8 = 4;
    /// [`Error::Transport`]; sub: [`TransportError::code`].
    pub const CLASS_TRANSPORT: u8 = 5;
    /// [`Error::Snapshot`]; sub: [`SnapshotError::code`].
    pub const CLASS_SNAPSHOT: u8 = 6;
    /// [`Error::NotSignedIn`]; sub 0.
    pub const CLASS_NOT_SIGNED_IN: u8 = 7;
    /// [`Error::SessionExpired`]; sub 0.
    pub const CLASS_SESSION_EXPIRED: u8 = 8;
    /// [`Error::Cancelled`]; sub 0.
    pub const CLASS_CANCELLED: u8 = 9;
    /// The highest class.
    pub const CLASS_MAX: u8 = 9;

    /// `(class, sub)`: the class (`CLASS_*`: 2 API misuse, 3 server, 4 wire, 5 transport,
    /// 6 snapshot, 7 not signed in, 8 session expired, 9 cancelled) and the code of the
    /// inner error within it (0 for classes without one).
    pub const fn code(&self) -> (u8, u8) {
        match self {
            Error::ApiMisuse(m) => (Self::CLASS_API_MISUSE, m.code()),
            Error::Server(_) => (Self::CLASS_SERVER, 0),
            Error::Wire(w) => (Self::CLASS_WIRE, w.code()),
            Error::Transport(t) => (Self::CLASS_TRANSPORT, t.code()),
            Error::Snapshot(s) => (Self::CLASS_SNAPSHOT, s.code()),
            Error::NotSignedIn => (Self::CLASS_NOT_SIGNED_IN, 0),
            Error::SessionExpired => (Self::CLASS_SESSION_EXPIRED, 0),
            Error::Cancelled => (Self::CLASS_CANCELLED, 0),
        }
    }

    /// The name of the refused input or reply field this error is about; empty when it
    /// is about none.
    pub const fn field(&self) -> &'static str {
        match self {
            Error::ApiMisuse(m) => match m {
                ApiMisuse::InputTooLong { field, .. } | ApiMisuse::InputInvalid { field } => field,
                ApiMisuse::NotInitialized
                | ApiMisuse::AlreadyInitialized
                | ApiMisuse::RestoreTooLate
                | ApiMisuse::Busy
                | ApiMisuse::NotAnonymous
                | ApiMisuse::BufferTooSmall { .. }
                | ApiMisuse::OutputQueueFull => "",
            },
            Error::Wire(w) => match w {
                WireError::WrongType { field }
                | WireError::Missing { field }
                | WireError::TooLong { field }
                | WireError::InvalidValue { field }
                | WireError::Duplicate { field } => field,
                WireError::BodyTooLarge
                | WireError::NotUtf8
                | WireError::Truncated
                | WireError::Syntax { .. }
                | WireError::BadEscape { .. }
                | WireError::TooDeep
                | WireError::NotAnObject => "",
            },
            Error::Server(_)
            | Error::Transport(_)
            | Error::Snapshot(_)
            | Error::NotSignedIn
            | Error::SessionExpired
            | Error::Cancelled => "",
        }
    }
}

impl ApiMisuse {
    /// The highest sub-code.
    pub const CODE_MAX: u8 = 9;

    /// Sub-code: 1 not initialized, 2 already initialized, 3 restore too late, 4 busy,
    /// 5 not anonymous, 6 input too long, 7 input invalid, 8 buffer too small, 9 output
    /// queue full.
    pub const fn code(self) -> u8 {
        match self {
            ApiMisuse::NotInitialized => 1,
            ApiMisuse::AlreadyInitialized => 2,
            ApiMisuse::RestoreTooLate => 3,
            ApiMisuse::Busy => 4,
            ApiMisuse::NotAnonymous => 5,
            ApiMisuse::InputTooLong { .. } => 6,
            ApiMisuse::InputInvalid { .. } => 7,
            ApiMisuse::BufferTooSmall { .. } => 8,
            ApiMisuse::OutputQueueFull => 9,
        }
    }
}

impl WireError {
    /// The highest sub-code.
    pub const CODE_MAX: u8 = 12;

    /// Sub-code: 1 body too large, 2 not UTF-8, 3 truncated, 4 syntax, 5 bad escape,
    /// 6 too deep, 7 not an object, 8 wrong type, 9 missing, 10 too long, 11 invalid
    /// value, 12 duplicate.
    pub const fn code(self) -> u8 {
        match self {
            WireError::BodyTooLarge => 1,
            WireError::NotUtf8 => 2,
            WireError::Truncated => 3,
            WireError::Syntax { .. } => 4,
            WireError::BadEscape { .. } => 5,
            WireError::TooDeep => 6,
            WireError::NotAnObject => 7,
            WireError::WrongType { .. } => 8,
            WireError::Missing { .. } => 9,
            WireError::TooLong { .. } => 10,
            WireError::InvalidValue { .. } => 11,
            WireError::Duplicate { .. } => 12,
        }
    }
}

impl TransportError {
    /// The highest sub-code.
    pub const CODE_MAX: u8 = 2;

    /// Sub-code: 1 failed, 2 timed out.
    pub const fn code(self) -> u8 {
        match self {
            TransportError::Failed => 1,
            TransportError::TimedOut => 2,
        }
    }
}

impl SnapshotError {
    /// The highest sub-code.
    pub const CODE_MAX: u8 = 8;

    /// Sub-code: 1 too short, 2 too long, 3 unknown version, 4 bad checksum,
    /// 5 malformed, 6 inconsistent, 7 another env, 8 buffer too small.
    pub const fn code(self) -> u8 {
        match self {
            SnapshotError::TooShort => 1,
            SnapshotError::TooLong => 2,
            SnapshotError::UnknownVersion(_) => 3,
            SnapshotError::BadChecksum => 4,
            SnapshotError::Malformed => 5,
            SnapshotError::Inconsistent => 6,
            SnapshotError::EnvMismatch => 7,
            SnapshotError::BufferTooSmall => 8,
        }
    }
}

impl ServerErrorKind {
    /// The highest kind code.
    pub const CODE_MAX: u8 = 8;

    /// Kind code: 0 other, 1 invalid grant, 2 unauthenticated, 3 invalid argument,
    /// 4 permission denied, 5 not found, 6 conflict, 7 rate limited, 8 unavailable.
    pub const fn code(self) -> u8 {
        match self {
            ServerErrorKind::Other => 0,
            ServerErrorKind::InvalidGrant => 1,
            ServerErrorKind::Unauthenticated => 2,
            ServerErrorKind::InvalidArgument => 3,
            ServerErrorKind::PermissionDenied => 4,
            ServerErrorKind::NotFound => 5,
            ServerErrorKind::Conflict => 6,
            ServerErrorKind::ResourceExhausted => 7,
            ServerErrorKind::Unavailable => 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerError;
    use std::vec::Vec;

    /// Codes `1..=max` (or `0..=max`), each exactly once.
    fn assert_dense(codes: &[u8], first: u8, max: u8, what: &str) {
        let mut sorted: Vec<u8> = codes.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, (first..=max).collect::<Vec<u8>>(), "{what}");
    }

    #[test]
    fn every_enum_fills_its_code_range_once() {
        use LoginState::*;
        let states = [Uninitialized, Initialized, Anonymous, WeChat, SignedOut];
        assert_dense(
            &states.map(LoginState::code),
            0,
            LoginState::CODE_MAX,
            "states",
        );
        for s in states {
            assert_eq!(LoginState::from_code(s.code()), Some(s));
        }
        assert_eq!(LoginState::from_code(LoginState::CODE_MAX + 1), None);

        let f = "field";
        let misuse = [
            ApiMisuse::NotInitialized,
            ApiMisuse::AlreadyInitialized,
            ApiMisuse::RestoreTooLate,
            ApiMisuse::Busy,
            ApiMisuse::NotAnonymous,
            ApiMisuse::InputTooLong { field: f, max: 1 },
            ApiMisuse::InputInvalid { field: f },
            ApiMisuse::BufferTooSmall { needed: 1 },
            ApiMisuse::OutputQueueFull,
        ];
        assert_dense(
            &misuse.map(ApiMisuse::code),
            1,
            ApiMisuse::CODE_MAX,
            "misuse",
        );
        let wire = [
            WireError::BodyTooLarge,
            WireError::NotUtf8,
            WireError::Truncated,
            WireError::Syntax { at: 1 },
            WireError::BadEscape { at: 1 },
            WireError::TooDeep,
            WireError::NotAnObject,
            WireError::WrongType { field: f },
            WireError::Missing { field: f },
            WireError::TooLong { field: f },
            WireError::InvalidValue { field: f },
            WireError::Duplicate { field: f },
        ];
        assert_dense(&wire.map(WireError::code), 1, WireError::CODE_MAX, "wire");
        let transport = [TransportError::Failed, TransportError::TimedOut];
        let transport = transport.map(TransportError::code);
        assert_dense(&transport, 1, TransportError::CODE_MAX, "transport");
        let snapshot = [
            SnapshotError::TooShort,
            SnapshotError::TooLong,
            SnapshotError::UnknownVersion(9),
            SnapshotError::BadChecksum,
            SnapshotError::Malformed,
            SnapshotError::Inconsistent,
            SnapshotError::EnvMismatch,
            SnapshotError::BufferTooSmall,
        ];
        let snapshot = snapshot.map(SnapshotError::code);
        assert_dense(&snapshot, 1, SnapshotError::CODE_MAX, "snapshot");
        use ServerErrorKind as K;
        let kinds = [
            K::Other,
            K::InvalidGrant,
            K::Unauthenticated,
            K::InvalidArgument,
            K::PermissionDenied,
            K::NotFound,
            K::Conflict,
            K::ResourceExhausted,
            K::Unavailable,
        ];
        assert_dense(&kinds.map(K::code), 0, K::CODE_MAX, "server kinds");

        let server = Error::Server(ServerError::new(503, K::Unavailable, 14));
        let classes = [
            Error::ApiMisuse(ApiMisuse::Busy),
            server,
            Error::Wire(WireError::TooDeep),
            Error::Transport(TransportError::Failed),
            Error::Snapshot(SnapshotError::TooShort),
            Error::NotSignedIn,
            Error::SessionExpired,
            Error::Cancelled,
        ];
        let classes = classes.map(|e| e.code().0);
        assert_dense(
            &classes,
            Error::CLASS_API_MISUSE,
            Error::CLASS_MAX,
            "classes",
        );

        let completions = [
            Completion::LoginState,
            Completion::SignedIn(WeChat),
            Completion::UserInfo,
            Completion::Linked,
            Completion::SignedOut { revoked: true },
            Completion::ProfileUpdated,
            Completion::AccountDeleted,
        ];
        let kinds = completions.map(|c| c.code().0);
        assert_dense(&kinds, 1, Completion::CODE_MAX, "completions");
        assert_eq!(Completion::SignedIn(WeChat).code(), (2, 3));
        assert_eq!(Completion::SignedOut { revoked: false }.code(), (5, 0));
        assert_eq!(Delivery::Accepted.code(), 1);
        assert_eq!(Delivery::Stale.code(), 0);

        let transmit = crate::Transmit {
            request: crate::RequestId {
                generation: 1,
                seq: 1,
            },
            endpoint: crate::wire::Endpoint::Token,
            method: crate::wire::Method::Post,
            path: "/",
            body: None,
            header_block: "",
        };
        let outputs = [
            Output::Timeout(None),
            Output::Transmit(transmit),
            Output::PersistSnapshot(&[]),
            Output::ClearStorage,
            Output::LoginStateChanged {
                from: Initialized,
                to: Anonymous,
            },
            Output::OperationCompleted {
                op: crate::OpId(1),
                result: Err(Error::Cancelled),
            },
            Output::SessionReplaced,
        ];
        let kinds: Vec<u8> = outputs.iter().map(Output::code).collect();
        assert_dense(&kinds, 0, Output::CODE_MAX, "outputs");
    }

    #[test]
    fn errors_name_their_field() {
        let long = ApiMisuse::InputTooLong {
            field: "code",
            max: 512,
        };
        assert_eq!(Error::ApiMisuse(long).field(), "code");
        let missing = WireError::Missing {
            field: "access_token",
        };
        assert_eq!(Error::Wire(missing).field(), "access_token");
        assert_eq!(Error::Wire(WireError::TooDeep).field(), "");
        assert_eq!(Error::NotSignedIn.field(), "");
    }
}
