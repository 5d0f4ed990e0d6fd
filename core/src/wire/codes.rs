//! CloudBase error names and their `error_code` (§6 of docs/wire.md): the client
//! classifies replies with them, the server answers with them.

/// One CloudBase error: the snake_case `error` name and its gRPC-style `error_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorCode {
    /// The `error` name, e.g. `invalid_grant`.
    pub name: &'static str,
    /// The `error_code`, e.g. 3.
    pub code: i64,
}

const fn code(name: &'static str, code: i64) -> ErrorCode {
    ErrorCode { name, code }
}

/// Malformed request (bad JSON, wrong types, missing fields).
pub const INVALID_ARGUMENT: ErrorCode = code("invalid_argument", 3);
/// A refresh token, provider token or code that is not accepted.
pub const INVALID_GRANT: ErrorCode = code("invalid_grant", 3);
/// The request did not finish in time.
pub const DEADLINE_EXCEEDED: ErrorCode = code("deadline_exceeded", 4);
/// No such endpoint or resource.
pub const NOT_FOUND: ErrorCode = code("not_found", 5);
/// A conflicting resource (an openid bound to another user).
pub const ALREADY_EXISTS: ErrorCode = code("already_exists", 6);
/// Not allowed.
pub const PERMISSION_DENIED: ErrorCode = code("permission_denied", 7);
/// Rate limited.
pub const RESOURCE_EXHAUSTED: ErrorCode = code("resource_exhausted", 8);
/// Not possible in the current state.
pub const FAILED_PRECONDITION: ErrorCode = code("failed_precondition", 9);
/// The sign-in provider (Mini Program appId) is not configured.
pub const PROVIDER_NOT_ENABLED: ErrorCode = code("provider_not_enabled", 9);
/// Conflict with a concurrent change.
pub const ABORTED: ErrorCode = code("aborted", 10);
/// The path does not take this method.
pub const UNIMPLEMENTED: ErrorCode = code("unimplemented", 12);
/// Server fault.
pub const INTERNAL: ErrorCode = code("internal", 13);
/// The server (or an upstream such as WeChat) is unavailable.
pub const UNAVAILABLE: ErrorCode = code("unavailable", 14);
/// Missing, expired, revoked or forged access token.
pub const UNAUTHENTICATED: ErrorCode = code("unauthenticated", 16);
/// The account is disabled (blocked) by an administrator: sign-in, refresh and every
/// call with its access token are refused. The name is the SDK's `ErrorType.USER_BLOCKED`;
/// the number is UNCONFIRMED (docs/wire.md §6): `permission_denied`'s gRPC code.
pub const USER_BLOCKED: ErrorCode = code("user_blocked", 7);

/// Every error above, for tables and tests (a reply naming anything else did not come
/// from a server that follows §6).
pub const ALL: [ErrorCode; 15] = [
    INVALID_ARGUMENT,
    INVALID_GRANT,
    DEADLINE_EXCEEDED,
    NOT_FOUND,
    ALREADY_EXISTS,
    PERMISSION_DENIED,
    RESOURCE_EXHAUSTED,
    FAILED_PRECONDITION,
    PROVIDER_NOT_ENABLED,
    ABORTED,
    UNIMPLEMENTED,
    INTERNAL,
    UNAVAILABLE,
    UNAUTHENTICATED,
    USER_BLOCKED,
];

#[cfg(test)]
mod tests {
    use super::ALL;

    #[test]
    fn names_are_unique_snake_case() {
        for (i, e) in ALL.iter().enumerate() {
            assert!(e.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(ALL[..i].iter().all(|o| o.name != e.name), "{}", e.name);
        }
    }
}
