//! RFC 7807 problem responses: the one error type of the API and its mapper.
//!
//! Every error a client sees leaves through [`ApiError`]: a use case's
//! [`Error`], a refused request body, an unknown route, a rate limit. Its
//! response is `application/problem+json` whose `detail` is the error's
//! `Display` — for the server-side kinds (unavailable, internal, integrity) a
//! fixed string. The cause behind an engine error (its `source()` chain: a
//! store or provider error, a serde or join error) is never rendered: it
//! rides in the response's extensions as an [`ErrorReport`], and
//! [`crate::middleware::log_error_causes`] logs it once, with the request id
//! (the split of axum's `error-handling` example).

use std::borrow::Cow;
use std::error::Error as _;
use std::fmt;
use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use strongroom_core::{Chain, Error};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document: the body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type (`about:blank` for plain statuses).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the status.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, safe to show.
    pub detail: String,
}

impl Problem {
    /// A problem for a status, with a detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }
}

/// The one error type of the API: what every handler, extractor and
/// middleware answers an error with.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// A use case (or authentication) refused or failed: the engine's error,
    /// mapped by kind ([`status_of`]).
    Engine(Error),
    /// The HTTP layer refused the request before any use case ran: a body
    /// that is not JSON, is too large or too slow, an unknown route, a wrong
    /// method, a rate limit. The detail is fixed or names a field, never a
    /// value sent (it may be a secret).
    Http(StatusCode, Cow<'static, str>),
}

impl ApiError {
    /// A refusal by the HTTP layer itself.
    pub fn http(status: StatusCode, detail: impl Into<Cow<'static, str>>) -> Self {
        ApiError::Http(status, detail.into())
    }

    /// The status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Engine(e) => status_of(e),
            ApiError::Http(status, _) => *status,
        }
    }

    /// The problem document a client sees. Never holds a cause.
    pub fn problem(&self) -> Problem {
        match self {
            ApiError::Engine(e) => {
                let mut p = Problem::new(status_of(e), e.to_string());
                if matches!(e, Error::Integrity) {
                    p.kind = "urn:strongroom:problem:integrity".into();
                    p.title = "Integrity check failed".into();
                }
                p
            }
            ApiError::Http(status, detail) => Problem::new(*status, detail.clone()),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Engine(e)
    }
}

/// The status of each error kind.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Invalid(_) => StatusCode::BAD_REQUEST,
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Gone(_) => StatusCode::GONE,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Integrity | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error behind a response, with its cause, on its way to the log.
///
/// An [`ApiError`] whose engine error has a `source()` puts one of these in
/// the response's extensions; [`crate::middleware::log_error_causes`] takes it
/// out and logs it. Extensions are never sent, so the cause can't reach a
/// client by this road.
#[derive(Debug, Clone)]
pub struct ErrorReport(Arc<Error>);

impl ErrorReport {
    /// The error (its `Display` is what the client was told).
    pub fn error(&self) -> &Error {
        &self.0
    }

    /// The cause chain, outermost first, joined by `": "` (empty without one).
    pub fn causes(&self) -> impl fmt::Display + '_ {
        struct Causes<'a>(&'a Error);
        impl fmt::Display for Causes<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0.source() {
                    Some(cause) => fmt::Display::fmt(&Chain(cause), f),
                    None => Ok(()),
                }
            }
        }
        Causes(&self.0)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let problem = self.problem();
        let mut resp = (status, Json(problem)).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::Engine(e) = self {
            metrics::counter!("strongroom_errors_total", "kind" => e.kind()).increment(1);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            if e.source().is_some() {
                resp.extensions_mut().insert(ErrorReport(Arc::new(e)));
            }
        }
        resp
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::Dependency;

    #[test]
    fn a_cause_rides_in_the_extensions_never_in_the_body() {
        let e = Error::unavailable(
            Dependency::KeyProvider,
            "projects/p/locations/l/keyRings/r: deadline exceeded",
        );
        let p = ApiError::from(e.clone()).problem();
        assert_eq!(p.status, 503);
        assert_eq!(p.detail, "the key provider is unavailable");
        let resp = ApiError::from(e).into_response();
        let report = resp.extensions().get::<ErrorReport>().expect("report");
        assert_eq!(
            report.causes().to_string(),
            "projects/p/locations/l/keyRings/r: deadline exceeded"
        );
        // Refusals with nothing underneath carry no report.
        let resp = ApiError::from(Error::invalid("bad")).into_response();
        assert!(resp.extensions().get::<ErrorReport>().is_none());
        let resp = ApiError::http(StatusCode::PAYLOAD_TOO_LARGE, "too large").into_response();
        assert!(resp.extensions().get::<ErrorReport>().is_none());
    }
}
