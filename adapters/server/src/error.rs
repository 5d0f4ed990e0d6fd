//! CloudBase error replies: an HTTP status and the core's [`ErrorBody`].
//!
//! The error names and codes are the core's (`wire::codes`, §6 of docs/wire.md).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloudbase_auth_core::wire::codes::{self, ErrorCode};
use cloudbase_auth_core::wire::{CONTENT_TYPE_JSON, ErrorBody};

/// An error answered to a CloudBase client. Descriptions go to the client only: they
/// may quote what the client sent, so they are never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: ErrorCode,
    pub(crate) description: String,
    /// Seconds the client should wait before trying again (`Retry-After`), on 429s.
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    /// Malformed request: bad JSON, wrong types, missing or invalid fields.
    pub(crate) fn invalid_argument(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_ARGUMENT,
            description,
        )
    }

    /// A refresh or provider token (or WeChat code) that is not accepted.
    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::INVALID_GRANT, description)
    }

    /// Missing, garbled, expired, revoked or forged access token (or admin token).
    pub(crate) fn unauthenticated(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            codes::UNAUTHENTICATED,
            description,
        )
    }

    /// No such endpoint (or user).
    pub(crate) fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, description)
    }

    /// The path exists with another method.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::UNIMPLEMENTED,
            "this path does not take this method",
        )
    }

    /// The account is disabled by an administrator (`user_blocked`).
    pub(crate) fn user_blocked() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            codes::USER_BLOCKED,
            "this account is disabled",
        )
    }

    /// Not allowed, e.g. an admin change requested from another origin.
    pub(crate) fn permission_denied(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, codes::PERMISSION_DENIED, description)
    }

    /// A conflicting resource, e.g. an openid bound to another user.
    pub(crate) fn already_exists(description: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, codes::ALREADY_EXISTS, description)
    }

    /// The request cannot be served in the current state (e.g. linking a second openid
    /// of the same Mini Program).
    pub(crate) fn failed_precondition(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            codes::FAILED_PRECONDITION,
            description,
        )
    }

    /// The Mini Program appid is not configured on this server.
    pub(crate) fn provider_not_enabled(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            codes::PROVIDER_NOT_ENABLED,
            description,
        )
    }

    /// Rate limited: try again in `retry_after` (sent as whole seconds, at least 1).
    pub(crate) fn resource_exhausted(
        description: impl Into<String>,
        retry_after: std::time::Duration,
    ) -> Self {
        let secs = retry_after
            .as_secs()
            .saturating_add(u64::from(retry_after.subsec_nanos() > 0))
            .max(1);
        Self {
            retry_after: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                codes::RESOURCE_EXHAUSTED,
                description,
            )
        }
    }

    /// Body larger than the limit.
    pub(crate) fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::INVALID_ARGUMENT,
            format!("request body larger than {limit} bytes"),
        )
    }

    /// The request was not finished in time (slow body, stuck upstream).
    pub(crate) fn deadline_exceeded() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            codes::DEADLINE_EXCEEDED,
            "request not completed in time",
        )
    }

    /// An upstream (WeChat) failed or refused this server's configuration.
    pub(crate) fn unavailable(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::UNAVAILABLE,
            description,
        )
    }

    /// The server itself failed (storage, randomness). Never caused by client input.
    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "internal error; see the server log",
        )
    }

    /// An endpoint of the core's table this server does not implement.
    pub(crate) fn unimplemented() -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            codes::UNIMPLEMENTED,
            "endpoint not implemented by this server",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = error_body(self.code, &self.description);
        let mut response = json_response(self.status, &body);
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The CloudBase error body of `code`, the description cut to fit.
pub(crate) fn error_body(code: ErrorCode, description: &str) -> ErrorBody {
    ErrorBody::new(code.name, code.code, description)
}

/// A JSON reply. Serializing our own reply types cannot fail; if it ever did, the
/// client gets a plain 500 instead of a panic.
pub(crate) fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(CONTENT_TYPE_JSON),
            )],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        let secs = |d| ApiError::resource_exhausted("x", d).retry_after;
        assert_eq!(secs(Duration::ZERO), Some(1));
        assert_eq!(secs(Duration::from_millis(1)), Some(1));
        assert_eq!(secs(Duration::from_millis(19_001)), Some(20));
        assert_eq!(secs(Duration::from_secs(60)), Some(60));
        let response = ApiError::resource_exhausted("x", Duration::from_secs(3)).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }
}
