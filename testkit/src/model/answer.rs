//! What a reply says, read the way the documentation describes CloudBase replies
//! (§4–§6 of docs/wire.md), and how a call can fail, in the model's own terms.
//!
//! The model reads the replies it sees with `serde_json`, never with the core's parser:
//! a reply is an error when its status is not 2xx or its body is error-shaped (a truthy
//! `error`, `error_code` or `code`); an error is classified by its `error` name first and
//! by its status only for a name the client does not know (§6, and the docs of
//! [`ServerErrorKind`]).

use cloudbase_auth_core::wire::Endpoint;
use cloudbase_auth_core::{ApiMisuse, Error, ServerErrorKind, TransportError};
use serde_json::Value;

/// A CloudBase error reply as a host sees it in [`Error::Server`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) kind: ServerErrorKind,
    /// `error_code` (0 when absent or not a number).
    pub(crate) code: i64,
}

impl Refusal {
    /// Whether a refused refresh means the session itself was refused: core/README.md
    /// says "4xx other than 429", and the error kinds say what a name means whatever its
    /// status (`invalid_grant`: the token was refused; `resource_exhausted`: rate
    /// limited; `unavailable`: server trouble). Read together: an `invalid_grant`, or any
    /// other 4xx that is neither rate limiting nor server trouble.
    pub(crate) fn refuses_session(self) -> bool {
        self.kind == ServerErrorKind::InvalidGrant
            || ((400..500).contains(&self.status)
                && !matches!(
                    self.kind,
                    ServerErrorKind::ResourceExhausted | ServerErrorKind::Unavailable
                ))
    }
}

/// How a call ends badly, as the model tells the cases apart. Parse details
/// ([`Error::Wire`]) and snapshot details ([`Error::Snapshot`]) are not predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Server(Refusal),
    /// The reply could not be understood.
    Malformed,
    NoReply(TransportError),
    NotSignedIn,
    SessionExpired,
    Cancelled,
    Busy,
    NotAnonymous,
    Snapshot,
    /// Anything the model never predicts (shown in a mismatch).
    Unexpected(Error),
}

impl Failure {
    /// The model's name for an error the engine reported.
    pub(crate) fn of(e: &Error) -> Failure {
        match *e {
            Error::Server(s) => Failure::Server(Refusal {
                status: s.status,
                kind: s.kind,
                code: s.code,
            }),
            Error::Wire(_) => Failure::Malformed,
            Error::Transport(t) => Failure::NoReply(t),
            Error::NotSignedIn => Failure::NotSignedIn,
            Error::SessionExpired => Failure::SessionExpired,
            Error::Cancelled => Failure::Cancelled,
            Error::ApiMisuse(ApiMisuse::Busy) => Failure::Busy,
            Error::ApiMisuse(ApiMisuse::NotAnonymous) => Failure::NotAnonymous,
            Error::Snapshot(_) => Failure::Snapshot,
            other => Failure::Unexpected(other),
        }
    }
}

/// The `error` names the client knows, with their kinds (the docs of
/// [`ServerErrorKind`], §6 of docs/wire.md).
const KNOWN_NAMES: [(&str, ServerErrorKind); 11] = [
    ("invalid_grant", ServerErrorKind::InvalidGrant),
    ("unauthenticated", ServerErrorKind::Unauthenticated),
    ("invalid_argument", ServerErrorKind::InvalidArgument),
    ("invalid_request", ServerErrorKind::InvalidArgument),
    ("permission_denied", ServerErrorKind::PermissionDenied),
    ("not_found", ServerErrorKind::NotFound),
    ("already_exists", ServerErrorKind::Conflict),
    ("failed_precondition", ServerErrorKind::Conflict),
    ("resource_exhausted", ServerErrorKind::ResourceExhausted),
    ("unavailable", ServerErrorKind::Unavailable),
    ("internal", ServerErrorKind::Unavailable),
];

/// Name first, status second.
pub(crate) fn classify(status: u16, name: &str) -> ServerErrorKind {
    if let Some((_, kind)) = KNOWN_NAMES.iter().find(|(n, _)| *n == name) {
        return *kind;
    }
    match status {
        400 => ServerErrorKind::InvalidArgument,
        401 => ServerErrorKind::Unauthenticated,
        403 => ServerErrorKind::PermissionDenied,
        404 => ServerErrorKind::NotFound,
        409 => ServerErrorKind::Conflict,
        429 => ServerErrorKind::ResourceExhausted,
        500..=599 => ServerErrorKind::Unavailable,
        _ => ServerErrorKind::Other,
    }
}

/// A credentials reply (§4), with what the session logic needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) token_type: String,
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    pub(crate) expires_in_s: u64,
    pub(crate) scope: String,
    pub(crate) sub: String,
}

/// What a reply (or its absence) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Grant(Grant),
    ProviderToken(String),
    /// A user object (§5); `sub` is its user id (empty when absent).
    User {
        sub: String,
    },
    /// A 2xx body that is not an error and none of the shapes above (`{}`, an HTML page).
    Other,
    Refused(Refusal),
    NoReply(TransportError),
}

impl Answer {
    /// Reads `status` and `body` as the reply to a request to `endpoint`.
    pub(crate) fn read(endpoint: Endpoint, status: u16, body: &[u8]) -> Answer {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let field = |k: &str| json.as_ref().and_then(|v| v.get(k));
        let text = |k: &str| field(k).and_then(Value::as_str).map(str::to_owned);
        let truthy = |k: &str| {
            field(k).is_some_and(|v| match v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            })
        };
        let error_shaped = truthy("error") || truthy("error_code") || truthy("code");
        if !(200..300).contains(&status) || error_shaped {
            let name = text("error").unwrap_or_default();
            return Answer::Refused(Refusal {
                status,
                kind: classify(status, &name),
                // A number, or a string of digits (core/README.md).
                code: field("error_code")
                    .and_then(|c| c.as_i64().or_else(|| c.as_str()?.parse().ok()))
                    .unwrap_or(0),
            });
        }
        match endpoint {
            Endpoint::SignInAnonymously | Endpoint::SignInWithProvider | Endpoint::Token => {
                match (
                    text("access_token"),
                    field("expires_in").and_then(Value::as_u64),
                ) {
                    (Some(access_token), Some(expires_in_s)) => Answer::Grant(Grant {
                        token_type: text("token_type").unwrap_or_default(),
                        access_token,
                        refresh_token: text("refresh_token"),
                        expires_in_s,
                        scope: text("scope").unwrap_or_default(),
                        sub: text("sub").unwrap_or_default(),
                    }),
                    _ => Answer::Other,
                }
            }
            Endpoint::ProviderToken => {
                text("provider_token").map_or(Answer::Other, Answer::ProviderToken)
            }
            Endpoint::UserMe | Endpoint::UserProfile
                if json.as_ref().is_some_and(Value::is_object) =>
            {
                Answer::User {
                    sub: text("sub").unwrap_or_default(),
                }
            }
            _ => Answer::Other,
        }
    }
}
