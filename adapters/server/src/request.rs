//! Reading untrusted request parts: the body (JSON whatever the content type, at most
//! 64 KiB), the `client_id` query parameter and the `Authorization: Bearer` header.
//! Every failure is a typed [`ApiError`].

use super::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::http::{HeaderMap, Uri, header};
use cloudbase_auth_core::wire::{CLIENT_ID_PARAM, HEADER_AUTHORIZATION, HEADER_DEVICE_ID};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// Largest request body accepted.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// Reads the whole body, refusing more than [`BODY_LIMIT`] bytes with 413.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    read_body_up_to(headers, body, BODY_LIMIT).await
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub(crate) async fn read_body_up_to(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::payload_too_large(limit))
        }
        Err(_) => Err(ApiError::invalid_argument(
            "could not read the request body",
        )),
    }
}

/// Parses a JSON body into `T` whatever the content type says (the browser SDK sends
/// `text/plain`). An empty body counts as `{}`.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_argument(format!("invalid request body: {e}")))
}

/// The `client_id` query parameter, if present.
pub(crate) fn client_id(uri: &Uri) -> Result<Option<String>, ApiError> {
    query_param(uri, CLIENT_ID_PARAM)
}

/// The query parameter `name`, if present.
pub(crate) fn query_param(uri: &Uri, name: &str) -> Result<Option<String>, ApiError> {
    let Query(mut params) = Query::<HashMap<String, String>>::try_from_uri(uri)
        .map_err(|_| ApiError::invalid_argument("malformed query string"))?;
    Ok(params.remove(name))
}

/// The bearer token of the `Authorization` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(HEADER_AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("missing Authorization header"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthenticated("Authorization header is not `Bearer <token>`"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::unauthenticated(
            "Authorization header is not `Bearer <token>`",
        ));
    }
    Ok(token)
}

/// The `x-device-id` header, if it is readable text.
pub(crate) fn device_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(HEADER_DEVICE_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_forms() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).is_err());
        h.insert(HEADER_AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer(&h).unwrap(), "abc");
        h.insert(
            HEADER_AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer(&h).unwrap(), "abc");
        for bad in ["Basic abc", "Bearer", "Bearer ", "abc"] {
            h.insert(HEADER_AUTHORIZATION, HeaderValue::from_static(bad));
            assert!(bearer(&h).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_parse_as_json_or_fail_typed() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[allow(dead_code, reason = "only parsed")]
            a: Option<u8>,
        }
        assert!(parse_json::<T>(b"").is_ok());
        assert!(parse_json::<T>(b" {\"a\":1} ").is_ok());
        assert_eq!(
            parse_json::<T>(b"{").unwrap_err().code.name,
            "invalid_argument"
        );
        assert_eq!(
            parse_json::<T>(b"{\"a\":\"x\"}").unwrap_err().code.name,
            "invalid_argument"
        );
    }

    #[test]
    fn client_id_from_query() {
        let uri: Uri = "/auth/v1/token?client_id=env-1&x=y".parse().unwrap();
        assert_eq!(client_id(&uri).unwrap().as_deref(), Some("env-1"));
        let uri: Uri = "/auth/v1/token".parse().unwrap();
        assert_eq!(client_id(&uri).unwrap(), None);
    }
}
