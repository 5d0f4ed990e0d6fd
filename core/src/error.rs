//! Errors, each classified by what it means for the session ([`Disposition`]).
//!
//! Small `Copy` enums in the style of smoltcp and rustls: one per concern, all
//! `#[non_exhaustive]`, folded into [`Error`]. [`Error::disposition`] tells a host what
//! the engine did (or will do) with the local session, so adapters never guess.

/// Bytes of the server's `error` name a [`ServerError`] keeps (0 without the
/// `error-text` feature).
#[cfg(feature = "error-text")]
pub const ERROR_NAME_KEPT: usize = crate::capacity::ERROR_NAME_MAX;
/// Bytes of the server's `error` name a [`ServerError`] keeps (0 without the
/// `error-text` feature).
#[cfg(not(feature = "error-text"))]
pub const ERROR_NAME_KEPT: usize = 0;
/// Bytes of the server's `error_description` a [`ServerError`] keeps (0 without the
/// `error-text` feature).
#[cfg(feature = "error-text")]
pub const ERROR_DESCRIPTION_KEPT: usize = crate::capacity::ERROR_DESCRIPTION_MAX;
/// Bytes of the server's `error_description` a [`ServerError`] keeps (0 without the
/// `error-text` feature).
#[cfg(not(feature = "error-text"))]
pub const ERROR_DESCRIPTION_KEPT: usize = 0;

/// What an error means for the local session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disposition {
    /// The session (if any) is untouched; retrying the same call is pointless until the
    /// cause is fixed (bad input, call order, server refusal of this request).
    KeepSession,
    /// The session was wiped locally; the user must sign in again.
    ClearSession,
    /// The session is untouched and the failure is transient (network, server busy);
    /// retry later.
    RetryLater,
}

/// Any error the engine reports, through an `OperationCompleted` output or a call's
/// return value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The call was made in the wrong order or with bad parameters. Never caused by
    /// untrusted data. Keeps the session.
    #[error("API misuse: {0}")]
    ApiMisuse(#[from] ApiMisuse),
    /// The server answered with a CloudBase error body (or a non-2xx status).
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The server's reply could not be understood. Keeps the session; retry later.
    #[error("malformed reply: {0}")]
    Wire(#[from] WireError),
    /// The request never got a reply: the host reported a transport failure or the
    /// request timed out. Keeps the session; retry later.
    #[error("transport failure: {0}")]
    Transport(#[from] TransportError),
    /// A stored snapshot could not be restored. The engine starts signed out and asks
    /// the host to clear storage.
    #[error("snapshot rejected: {0}")]
    Snapshot(#[from] SnapshotError),
    /// The operation needs a session and there is none (never signed in, signed out,
    /// or expired). Keeps (the absence of) the session.
    #[error("not signed in")]
    NotSignedIn,
    /// The session ended while this operation waited: the refresh token was rejected
    /// or the access token expired without a refresh token. The session is cleared.
    #[error("session expired: sign in again")]
    SessionExpired,
    /// A sign-in or sign-out started while this operation was in flight, so its result
    /// would be about a session that no longer exists. Whatever it had already done
    /// (a sign-in whose credentials arrived) was superseded by the newer call.
    #[error("cancelled by a newer sign-in or sign-out")]
    Cancelled,
}

impl Error {
    /// What this error means for the local session.
    pub fn disposition(&self) -> Disposition {
        match self {
            Error::ApiMisuse(_) | Error::Cancelled | Error::NotSignedIn => Disposition::KeepSession,
            Error::Server(e) => e.disposition(),
            Error::Wire(_) | Error::Transport(_) => Disposition::RetryLater,
            Error::Snapshot(_) | Error::SessionExpired => Disposition::ClearSession,
        }
    }
}

/// Wrong call order or parameters. Only ever caused by the host, never by a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// `init` has not been called (`wx.cloud.init()` comes before `auth()`).
    #[error("init() must be called first")]
    NotInitialized,
    /// `init` was called twice.
    #[error("init() was already called")]
    AlreadyInitialized,
    /// `restore` is only accepted right after `init`, before any operation.
    #[error("restore() is only accepted right after init()")]
    RestoreTooLate,
    /// Another operation that cannot be combined with this one is in flight, or the
    /// waiter list is full. Retry once it completes.
    #[error("another operation is in flight")]
    Busy,
    /// `link_wechat` needs an anonymous session.
    #[error("linking needs an anonymous session")]
    NotAnonymous,
    /// An input string is longer than its capacity (see [`crate::capacity`]).
    #[error("{field} is longer than {max} bytes")]
    InputTooLong {
        /// Which input.
        field: &'static str,
        /// Its capacity (every capacity fits in `u16`; keeps errors small).
        max: u16,
    },
    /// An input string is empty or has characters its wire position cannot carry.
    #[error("{field} has invalid characters or is empty")]
    InputInvalid {
        /// Which input.
        field: &'static str,
    },
    /// The buffer lent to `poll_output` is too small; the output stays queued.
    #[error("poll buffer too small: need {needed} bytes")]
    BufferTooSmall {
        /// Bytes needed ([`crate::capacity::POLL_BUFFER_MIN`] always suffices).
        needed: usize,
    },
    /// Too many outputs queued: the host did not drain `poll_output` after an input.
    #[error("output queue full: drain poll_output after every input")]
    OutputQueueFull,
}

/// A CloudBase error reply (§6 of docs/wire.md), with a bounded copy of the server's
/// `error` name and `error_description` so a developer can read why it refused. `Copy`
/// like every error of the crate; the texts are cut to [`ERROR_NAME_KEPT`] and
/// [`ERROR_DESCRIPTION_KEPT`] bytes on a UTF-8 boundary: 48 and 160 with the default
/// feature `error-text`, nothing without it.
///
/// Displays as `server refused (HTTP 400 invalid_argument): nickname too long`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerError {
    /// HTTP status of the reply.
    pub status: u16,
    /// The reply's classification, from its `error` name and status.
    pub kind: ServerErrorKind,
    /// The `error_code` (gRPC or business code; 0 when absent).
    pub code: i64,
    /// The server's `error` name (`invalid_argument`); empty when absent or too long.
    pub name: ErrorText<ERROR_NAME_KEPT>,
    /// The server's `error_description`, cut to fit; empty when absent.
    pub description: ErrorText<ERROR_DESCRIPTION_KEPT>,
}

impl ServerError {
    /// Build from the parts of a reply, without texts (see [`Self::with_text`]).
    pub fn new(status: u16, kind: ServerErrorKind, code: i64) -> Self {
        Self {
            status,
            kind,
            code,
            name: ErrorText::EMPTY,
            description: ErrorText::EMPTY,
        }
    }

    /// The same error carrying the server's `error` name and `error_description`, each
    /// cut to its capacity on a character boundary.
    pub fn with_text(mut self, name: &str, description: &str) -> Self {
        self.name = ErrorText::cut(name);
        self.description = ErrorText::cut(description);
        self
    }

    /// What this reply means for the session. Token rejection on a refresh is handled
    /// by the engine (it clears the session and reports [`Error::SessionExpired`]), so a
    /// plain `ServerError` clears nothing on its own except `unauthenticated`.
    pub fn disposition(&self) -> Disposition {
        match self.kind {
            ServerErrorKind::Unauthenticated => Disposition::ClearSession,
            ServerErrorKind::Unavailable | ServerErrorKind::ResourceExhausted => {
                Disposition::RetryLater
            }
            _ => Disposition::KeepSession,
        }
    }
}

impl core::fmt::Display for ServerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "server refused (HTTP {}", self.status)?;
        if !self.name.is_empty() {
            write!(f, " {}", self.name)?;
        } else if self.code != 0 {
            // Without a name the code is all there is to look up.
            write!(f, ", error_code {}", self.code)?;
        }
        f.write_str(")")?;
        if !self.description.is_empty() {
            write!(f, ": {}", self.description)?;
        }
        Ok(())
    }
}

impl core::error::Error for ServerError {}

/// Text of at most `N` bytes (`N` ≤ 255) held inline, cut on a UTF-8 boundary.
///
/// `heapless::String` would do but is not `Copy`, and every error of the crate is `Copy`
/// (errors sit in the engine's output queue and are handed to several callers).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ErrorText<const N: usize> {
    len: u8,
    /// Bytes past `len` are always zero, so the derived equality compares the text.
    bytes: [u8; N],
}

impl<const N: usize> ErrorText<N> {
    /// No text.
    pub const EMPTY: Self = Self {
        len: 0,
        bytes: [0; N],
    };

    /// The longest prefix of `s` that fits in `N` bytes (and 255) and ends on a
    /// character boundary.
    pub fn cut(s: &str) -> Self {
        let mut out = Self::EMPTY;
        out.len = cut_into(s, &mut out.bytes);
        out
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ever filled from a `&str` cut on a boundary, so this never fails.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// Whether there is no text.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Copies the longest prefix of `s` that fits `out` (and 255 bytes) and ends on a
/// character boundary; its length. One body for every capacity (smaller wasm).
fn cut_into(s: &str, out: &mut [u8]) -> u8 {
    let mut end = s.len().min(out.len()).min(usize::from(u8::MAX));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&s.as_bytes()[..end]);
    end as u8
}

impl<const N: usize> Default for ErrorText<N> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<const N: usize> core::ops::Deref for ErrorText<N> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> core::fmt::Debug for ErrorText<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> core::fmt::Display for ErrorText<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> PartialEq<str> for ErrorText<N> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl<const N: usize> PartialEq<&str> for ErrorText<N> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Coarse meaning of a [`ServerError`], from its `error` name and HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerErrorKind {
    /// `invalid_grant`: a refresh or provider token was refused.
    InvalidGrant,
    /// `unauthenticated` (or HTTP 401): the access token is not accepted.
    Unauthenticated,
    /// `invalid_argument` / `invalid_request` (or HTTP 400 without a name).
    InvalidArgument,
    /// `permission_denied` (or HTTP 403).
    PermissionDenied,
    /// `not_found` (or HTTP 404).
    NotFound,
    /// `already_exists` / `failed_precondition` (or HTTP 409).
    Conflict,
    /// `resource_exhausted` (or HTTP 429): rate limited.
    ResourceExhausted,
    /// `unavailable` / `internal` (or HTTP 5xx): the server is in trouble.
    Unavailable,
    /// Anything else.
    Other,
}

impl ServerErrorKind {
    /// Classify by error name first, HTTP status second.
    pub fn classify(status: u16, name: &str) -> Self {
        use crate::wire::codes::*;
        let is = |c: ErrorCode| c.name == name;
        if is(INVALID_GRANT) {
            Self::InvalidGrant
        } else if is(UNAUTHENTICATED) {
            Self::Unauthenticated
        } else if is(INVALID_ARGUMENT) || name == "invalid_request" {
            Self::InvalidArgument
        } else if is(PERMISSION_DENIED) {
            Self::PermissionDenied
        } else if is(NOT_FOUND) {
            Self::NotFound
        } else if is(ALREADY_EXISTS) || is(FAILED_PRECONDITION) || is(ABORTED) {
            Self::Conflict
        } else if is(RESOURCE_EXHAUSTED) {
            Self::ResourceExhausted
        } else if is(UNAVAILABLE) || is(INTERNAL) || name == "unreachable" {
            Self::Unavailable
        } else {
            match status {
                400 => Self::InvalidArgument,
                401 => Self::Unauthenticated,
                403 => Self::PermissionDenied,
                404 => Self::NotFound,
                409 => Self::Conflict,
                429 => Self::ResourceExhausted,
                500..=599 => Self::Unavailable,
                _ => Self::Other,
            }
        }
    }
}

/// A reply body that is not the JSON docs/wire.md describes. Untrusted input: every
/// variant is reachable from server bytes, none panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The body is longer than [`crate::capacity::RESPONSE_BODY_MAX`].
    #[error("body too large")]
    BodyTooLarge,
    /// The body is not UTF-8.
    #[error("body is not UTF-8")]
    NotUtf8,
    /// The body ended inside a JSON value.
    #[error("body truncated")]
    Truncated,
    /// Not JSON at this byte offset.
    #[error("invalid JSON at byte {at}")]
    Syntax {
        /// Byte offset.
        at: usize,
    },
    /// A string escape is invalid (bad `\u` digits, lone surrogate, unknown escape).
    #[error("invalid string escape at byte {at}")]
    BadEscape {
        /// Byte offset.
        at: usize,
    },
    /// Nested deeper than [`crate::capacity::JSON_DEPTH_MAX`].
    #[error("JSON nested too deeply")]
    TooDeep,
    /// The top level is not an object.
    #[error("reply is not a JSON object")]
    NotAnObject,
    /// A known field has the wrong JSON type.
    #[error("field `{field}` has the wrong type")]
    WrongType {
        /// Field name.
        field: &'static str,
    },
    /// A required field is missing.
    #[error("field `{field}` is missing")]
    Missing {
        /// Field name.
        field: &'static str,
    },
    /// A field is longer than its capacity.
    #[error("field `{field}` is too long")]
    TooLong {
        /// Field name.
        field: &'static str,
    },
    /// A token or id has characters that cannot go into a header or request body as-is.
    #[error("field `{field}` has invalid characters")]
    InvalidValue {
        /// Field name.
        field: &'static str,
    },
    /// A field appears twice.
    #[error("field `{field}` appears twice")]
    Duplicate {
        /// Field name.
        field: &'static str,
    },
}

/// Why a request got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The host could not deliver the request or read the reply.
    #[error("network failure reported by the host")]
    Failed,
    /// No reply before the request deadline.
    #[error("request timed out")]
    TimedOut,
}

/// Why snapshot bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Empty, or shorter than version byte + CRC.
    #[error("snapshot too short")]
    TooShort,
    /// Longer than [`crate::snapshot::SNAPSHOT_MAX`].
    #[error("snapshot too long")]
    TooLong,
    /// A format version this build does not know (written by a newer release?).
    #[error("unknown snapshot version {0}")]
    UnknownVersion(u8),
    /// The CRC-32 does not match: the bytes were damaged.
    #[error("snapshot checksum mismatch")]
    BadChecksum,
    /// The checksum matched but the body does not decode (or has trailing bytes).
    #[error("snapshot body malformed")]
    Malformed,
    /// The body decoded but breaks an invariant (tokens without a signed-in state, …).
    #[error("snapshot content inconsistent")]
    Inconsistent,
    /// The snapshot belongs to another env id; it is left alone.
    #[error("snapshot belongs to another env")]
    EnvMismatch,
    /// The lent buffer is too small to write the snapshot.
    #[error("buffer too small for snapshot")]
    BufferTooSmall,
}
