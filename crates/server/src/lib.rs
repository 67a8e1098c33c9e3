//! The HTTP adapter: 1claw's `/v1` REST API over the [`strongroom_engine::Engine`].
//!
//! A handler parses (validated types at the boundary), calls one engine
//! function, and renders. Errors of every kind leave as RFC 7807
//! `application/problem+json` through [`problem::ApiError`]; a middleware turns
//! any other error response (unknown route, wrong method, oversized body) into
//! the same shape.
#![forbid(unsafe_code)]

pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod problem;
pub mod ratelimit;
pub mod routes;
pub mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use metrics_exporter_prometheus::PrometheusHandle;
use strongroom_engine::Engine;

/// The largest request body accepted (1claw's limit).
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The application core.
    pub engine: Arc<Engine>,
    /// Renders `/metrics`; `None` when metrics are off.
    pub metrics: Option<PrometheusHandle>,
}

/// Builds the complete router, without rate limits (tests, embedding).
pub fn router(state: AppState) -> Router {
    router_with_limits(state, None)
}

/// Builds the complete router; `auth_limit` rate-limits the public auth routes.
pub fn router_with_limits(state: AppState, auth_limit: Option<ratelimit::AuthRateLimit>) -> Router {
    let mut app = routes::routes().fallback(routes::not_found);
    if let Some(cfg) = auth_limit {
        app = app.layer(axum::middleware::from_fn_with_state(
            ratelimit::AuthLimiter::new(cfg),
            ratelimit::limit_auth,
        ));
    }
    app.layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(
            middleware::problem_for_bare_errors,
        ))
        .layer(axum::middleware::from_fn(middleware::metrics))
        .layer(middleware::trace_layer())
        .layer(middleware::request_id_layers())
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            middleware::panic_response,
        ))
        .with_state(state)
}

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn install_metrics() -> Option<PrometheusHandle> {
    use std::sync::OnceLock;
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .ok()
        })
        .clone()
}
