//! Cross-cutting layers: request ids, tracing, metrics, the guarantee that
//! every error response is problem+json (and that the cause behind one is
//! logged, never sent), and request bodies that arrive in
//! bounded time and never leave a connection half-read.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower::layer::util::Stack;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::problem::{ApiError, ErrorReport, PROBLEM_JSON};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request-id layers' type.
pub type RequestIdLayers = ServiceBuilder<
    Stack<
        PropagateRequestIdLayer,
        Stack<SetRequestIdLayer<MakeRequestUuid>, tower::layer::util::Identity>,
    >,
>;

/// Assigns (or keeps) `x-request-id` and echoes it on the response.
pub fn request_id_layers() -> RequestIdLayers {
    ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
}

/// The tracing layer's type.
pub type RequestTrace = TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    fn(&Request) -> tracing::Span,
    (),
    DefaultOnResponse,
>;

/// One span per request carrying the request id, so every log line of the
/// request names it. Headers and bodies are never recorded.
pub fn trace_layer() -> RequestTrace {
    fn span(req: &Request) -> tracing::Span {
        let id = req
            .extensions()
            .get::<RequestId>()
            .and_then(|r| r.header_value().to_str().ok())
            .unwrap_or("-")
            .to_owned();
        tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
    }
    TraceLayer::new_for_http()
        .make_span_with(span as fn(&Request) -> tracing::Span)
        .on_request(())
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
}

/// Counts requests and records latency by route and status.
pub async fn metrics(req: Request, next: Next) -> Response<Body> {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("strongroom_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("strongroom_http_request_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// Logs the cause behind an error response, once, with the request id.
///
/// An [`ApiError`] never renders a cause; it leaves an [`ErrorReport`] in the
/// response's extensions instead. This takes it out (so an outer layer can't
/// log it again) and logs the client-facing message, the kind and the whole
/// `source()` chain — the store's or the provider's own words.
pub async fn log_error_causes(req: Request, next: Next) -> Response<Body> {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|r| r.header_value().to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let mut resp = next.run(req).await;
    if let Some(report) = resp.extensions_mut().remove::<ErrorReport>() {
        let e = report.error();
        let dependency = match e {
            strongroom_core::Error::Unavailable(u) => u.dependency().as_str(),
            _ => "-",
        };
        let status = resp.status().as_u16();
        if resp.status().is_server_error() {
            tracing::error!(
                request_id = %request_id,
                status,
                kind = e.kind(),
                dependency,
                cause = %report.causes(),
                "{e}"
            );
        } else {
            // A refusal with a cause (a rule of the database's schema): the
            // caller's answer, not an outage.
            tracing::warn!(
                request_id = %request_id,
                status,
                kind = e.kind(),
                dependency,
                cause = %report.causes(),
                "{e}"
            );
        }
    }
    resp
}

/// Rewrites any error response that is not already problem+json (an unknown
/// route, a wrong method, a rejected extractor) into one.
pub async fn problem_for_bare_errors(req: Request, next: Next) -> Response<Body> {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // A handler that answers an error with its own JSON document (the HSM
        // health check's 503) meant it.
        .is_some_and(|ct| ct.starts_with(PROBLEM_JSON) || ct.starts_with("application/json"));
    if is_problem {
        return resp;
    }
    let detail = match status {
        StatusCode::NOT_FOUND => "no such resource",
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this resource",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported media type",
        StatusCode::REQUEST_TIMEOUT => "the request did not arrive in time",
        s if s.is_server_error() => "internal error",
        _ => "the request could not be processed",
    };
    let mut out = ApiError::http(status, detail).into_response();
    // Keep headers that matter to clients (Allow, Retry-After, request id).
    for name in [
        header::ALLOW,
        header::RETRY_AFTER,
        header::CONNECTION,
        REQUEST_ID,
    ] {
        if let Some(v) = resp.headers().get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// A panic becomes an opaque 500; the payload is not echoed (it could hold data).
pub fn panic_response(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    tracing::error!("a request handler panicked");
    ApiError::http(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// A request body shared between the handler and [`bounded_body`]: the
/// handler reads it through this handle, and whatever the handler leaves
/// unread stays reachable after the handler dropped its handle. Every read
/// obeys the request's body deadline.
struct SharedBody(Arc<Mutex<BodyState>>);

struct BodyState {
    body: Body,
    finished: bool,
    timed_out: bool,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl BodyState {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if self.timed_out || self.deadline.as_mut().poll(cx).is_ready() {
            self.timed_out = true;
            return Poll::Ready(Some(Err(axum::Error::new("the request body timed out"))));
        }
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            self.finished = true;
        }
        frame
    }
}

impl http_body::Body for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        let s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.finished || s.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .body
            .size_hint()
    }
}

/// Reads what is left of a body, up to `limit` bytes; whether it ended.
async fn drain(state: &Arc<Mutex<BodyState>>, limit: usize) -> bool {
    let mut read = 0usize;
    loop {
        let frame = std::future::poll_fn(|cx| {
            state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .poll_frame(cx)
        })
        .await;
        match frame {
            None => return true,
            Some(Err(_)) => return false,
            Some(Ok(f)) => {
                read = read.saturating_add(f.data_ref().map_or(0, Bytes::len));
                if read > limit {
                    return false;
                }
            }
        }
    }
}

/// Middleware: bounds how long a request body may take to arrive, and keeps
/// the connection usable when an answer comes before the body was read.
///
/// A handler (or an earlier refusal: unknown route, wrong method, 401, 429)
/// may answer without reading the body. hyper then reads a little and, if the
/// body is not over, closes the connection after the response, with unread
/// data still in the socket: the client's next keep-alive request fails
/// ("server disconnected"), and a close with unread data can even reset the
/// response. So after the handler, what is left of a body of at most
/// [`crate::MAX_BODY_BYTES`] is read and discarded (within the deadline);
/// anything else, or a body past its deadline, gets `Connection: close`, so
/// the client knows not to reuse the connection. A body that misses the
/// deadline while the handler reads it is answered `408`.
pub async fn bounded_body(
    State(timeout): State<Option<Duration>>,
    req: Request,
    next: Next,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let expects_continue = parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let declared_too_large = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > crate::MAX_BODY_BYTES as u64);
    // No deadline configured: a day, so the arithmetic stays simple.
    let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(86_400)));
    let state = Arc::new(Mutex::new(BodyState {
        body,
        finished: false,
        timed_out: false,
        deadline: Box::pin(deadline),
    }));
    let handle = Body::new(SharedBody(state.clone()));
    let mut resp = next.run(Request::from_parts(parts, handle)).await;

    let (finished, timed_out) = {
        let s = state.lock().unwrap_or_else(|p| p.into_inner());
        (s.finished || s.body.is_end_stream(), s.timed_out)
    };
    let closing = resp
        .headers()
        .get(header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    if timed_out {
        metrics::counter!("strongroom_request_body_timeouts_total").increment(1);
        resp = ApiError::http(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )
        .into_response();
    }
    let reusable = finished
        || (!timed_out
            && !closing
            && !expects_continue
            && !declared_too_large
            && drain(&state, crate::MAX_BODY_BYTES).await);
    if !reusable {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
