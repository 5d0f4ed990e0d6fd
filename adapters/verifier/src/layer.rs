//! [`VerifyLayer`]: a tower middleware that verifies the bearer token of every request.

use crate::{Verifier, VerifyError};
use bytes::Bytes;
use cloudbase_auth_core::wire::codes;
use cloudbase_auth_core::wire::{CONTENT_TYPE_JSON, ErrorBody, HEADER_AUTHORIZATION};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The bearer token of the `Authorization` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, VerifyError> {
    let value = headers
        .get(HEADER_AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(VerifyError::MissingToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(VerifyError::MissingToken)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(VerifyError::MissingToken);
    }
    Ok(token)
}

impl VerifyError {
    /// The HTTP status a backend answers with: 401 for a refused token, 503 when the
    /// server's keys are out of reach, 500 for a misconfigured verifier.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::JwksUnavailable(_) | Self::JwksInvalid(_) | Self::Introspect(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::BadBaseUrl(_) | Self::Http(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// This error as a CloudBase error reply (§6 of docs/wire.md):
    /// `{"error":"unauthenticated","error_code":16,"error_description":…}` with 401, so
    /// the official SDK and our client treat it as an expired session.
    pub fn to_response(&self) -> Response<Full<Bytes>> {
        let status = self.status();
        let code = match status {
            StatusCode::UNAUTHORIZED => codes::UNAUTHENTICATED,
            StatusCode::SERVICE_UNAVAILABLE => codes::UNAVAILABLE,
            _ => codes::INTERNAL,
        };
        let body = ErrorBody::new(code.name, code.code, &self.to_string());
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = Response::new(Full::new(Bytes::from(json)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE_JSON),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}

/// Verifies `Authorization: Bearer <token>` on every request: the inner service sees
/// the caller's [`Claims`](crate::Claims) in the request extensions, and a request
/// without a valid token is answered by [`VerifyError::to_response`].
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
}

impl VerifyLayer {
    /// A layer verifying with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }
}

impl<S> tower_layer::Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service [`VerifyLayer`] wraps around `S`.
#[derive(Debug, Clone)]
pub struct VerifyService<S> {
    inner: S,
    verifier: Verifier,
}

/// The future of [`VerifyService`].
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for VerifyService<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
{
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            let verified = match bearer_token(request.headers()) {
                Ok(token) => verifier.verify(token).await,
                Err(e) => Err(e),
            };
            match verified {
                Ok(claims) => {
                    request.extensions_mut().insert(claims);
                    Ok(inner.call(request).await?.map(Either::Left))
                }
                Err(e) => Ok(e.to_response().map(Either::Right)),
            }
        })
    }
}
