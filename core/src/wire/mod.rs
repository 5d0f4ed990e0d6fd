//! The CloudBase Auth wire protocol: endpoints, headers, JSON shapes, and the codec
//! that turns a reply (status + body) into a typed value or a typed error.

pub mod codes;
pub mod endpoint;
pub(crate) mod reader;
pub(crate) mod request;
pub mod types;

pub use endpoint::*;
pub use types::*;

use crate::error::{Error, ServerError, ServerErrorKind};

/// Classifies a reply: a non-2xx status or an error-shaped body (truthy `error`,
/// `error_code` or `code`, as the SDK judges) is a [`ServerError`]; otherwise `parse`
/// reads the success body. A non-JSON error page (a proxy's HTML 502) still classifies
/// by its status.
pub fn decode_reply<T>(
    status: u16,
    body: &[u8],
    parse: fn(&[u8]) -> Result<T, crate::error::WireError>,
) -> Result<T, Error> {
    match server_error(status, body) {
        None => parse(body).map_err(Error::Wire),
        Some(e) => Err(e),
    }
}

/// The [`ServerError`] a reply is, or `None` for a success. Apart from the generic
/// [`decode_reply`], so each reply type's copy is only the call to its parser (smaller
/// wasm).
#[inline(never)]
fn server_error(status: u16, body: &[u8]) -> Option<Error> {
    if (200..300).contains(&status) && !ErrorBody::is_error_shaped(body) {
        return None;
    }
    let parsed = ErrorBody::parse(body).unwrap_or_default();
    let kind = ServerErrorKind::classify(status, &parsed.error);
    Some(Error::Server(
        ServerError::new(status, kind, parsed.error_code)
            .with_text(&parsed.error, &parsed.error_description),
    ))
}

#[cfg(test)]
mod tests;
