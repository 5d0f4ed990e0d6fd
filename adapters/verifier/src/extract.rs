//! axum integration: [`Claims`] as an extractor, [`VerifyError`] as a response.

use crate::{Claims, Verifier, VerifyError, bearer_token};
use axum_core::extract::{FromRef, FromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

/// The caller's claims: taken from the request extensions when a
/// [`VerifyLayer`](crate::VerifyLayer) already verified the request, else verified here
/// with the [`Verifier`] of the router's state. Rejects with [`VerifyError`] (401).
impl<S> FromRequestParts<S> for Claims
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = VerifyError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(claims) = parts.extensions.get::<Claims>() {
            return Ok(claims.clone());
        }
        let verifier = Verifier::from_ref(state);
        let token = bearer_token(&parts.headers)?;
        let claims = verifier.verify(token).await?;
        parts.extensions.insert(claims.clone());
        Ok(claims)
    }
}

impl IntoResponse for VerifyError {
    fn into_response(self) -> Response {
        self.to_response().map(axum_core::body::Body::new)
    }
}
