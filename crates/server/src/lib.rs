//! The HTTP adapter: 1claw's `/v1` REST API over the [`strongroom_engine::Engine`].
//!
//! A handler parses (validated types at the boundary), calls one engine
//! function, and renders. Errors of every kind leave as RFC 7807
//! `application/problem+json` through the one error type,
//! [`problem::ApiError`] (JSON-body rejections included); a middleware turns
//! any other error response (unknown route, wrong method) into the same
//! shape, and another logs the cause behind an error with the request id —
//! a cause is never rendered.
#![forbid(unsafe_code)]

pub mod client;
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

/// How the HTTP layer protects itself; see [`router_with`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Rate limit of the public authentication routes (`None`: off).
    pub auth_limit: Option<ratelimit::AuthRateLimit>,
    /// Failed-authentication budget per client, on every route (`None`: off).
    pub failed_auth_limit: Option<ratelimit::FailedAuthLimit>,
    /// Proxies whose `X-Forwarded-For` names the client (default: none).
    pub trusted_proxies: client::TrustedProxies,
    /// Who may read `/metrics` (default: loopback clients).
    pub metrics_access: routes::MetricsAccess,
    /// How long a request body may take to arrive (`None`: unbounded).
    pub body_timeout: Option<std::time::Duration>,
}

impl Default for ServerOptions {
    /// The production defaults.
    fn default() -> Self {
        ServerOptions {
            auth_limit: Some(ratelimit::AuthRateLimit::default()),
            failed_auth_limit: Some(ratelimit::FailedAuthLimit::default()),
            trusted_proxies: client::TrustedProxies::default(),
            metrics_access: routes::MetricsAccess::loopback(),
            body_timeout: Some(std::time::Duration::from_secs(30)),
        }
    }
}

impl ServerOptions {
    /// The defaults without rate limits (tests, embedding).
    pub fn unlimited() -> Self {
        ServerOptions {
            auth_limit: None,
            failed_auth_limit: None,
            ..Default::default()
        }
    }
}

/// Builds the complete router, without rate limits (tests, embedding).
pub fn router(state: AppState) -> Router {
    router_with(state, ServerOptions::unlimited())
}

/// Builds the complete router; `auth_limit` rate-limits the public auth routes.
pub fn router_with_limits(state: AppState, auth_limit: Option<ratelimit::AuthRateLimit>) -> Router {
    router_with(
        state,
        ServerOptions {
            auth_limit,
            ..ServerOptions::unlimited()
        },
    )
}

/// Builds the complete router with the given protections.
///
/// Layers, outermost first: panic guard, request id, tracing, metrics,
/// logging the causes of errors, problem+json for bare errors, body deadline and draining, client address,
/// failed-authentication budget, `/metrics` access, auth-route rate limit,
/// body size limit, routes.
pub fn router_with(state: AppState, opts: ServerOptions) -> Router {
    let mut app = routes::routes().fallback(routes::not_found);
    app = app.layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    if let Some(cfg) = opts.auth_limit {
        app = app.layer(axum::middleware::from_fn_with_state(
            ratelimit::AuthLimiter::new(cfg),
            ratelimit::limit_auth,
        ));
    }
    // Inside the failure budget, so guessing the metrics token spends it.
    app = app.layer(axum::middleware::from_fn_with_state(
        opts.metrics_access,
        routes::guard_metrics,
    ));
    if let Some(cfg) = opts.failed_auth_limit {
        app = app.layer(axum::middleware::from_fn_with_state(
            ratelimit::FailedAuthLimiter::new(cfg),
            ratelimit::limit_failed_auth,
        ));
    }
    app.layer(axum::middleware::from_fn_with_state(
        opts.trusted_proxies,
        client::client_addr,
    ))
    .layer(axum::middleware::from_fn_with_state(
        opts.body_timeout,
        middleware::bounded_body,
    ))
    .layer(axum::middleware::from_fn(
        middleware::problem_for_bare_errors,
    ))
    .layer(axum::middleware::from_fn(middleware::log_error_causes))
    .layer(axum::middleware::from_fn(middleware::metrics))
    .layer(middleware::trace_layer())
    .layer(middleware::request_id_layers())
    .layer(tower_http::catch_panic::CatchPanicLayer::custom(
        middleware::panic_response,
    ))
    .with_state(state)
}

/// The router of a dedicated metrics listener: `/metrics` only, under `access`
/// ([`routes::MetricsAccess::anyone`] leaves it to the bind address).
pub fn metrics_router(state: AppState, access: routes::MetricsAccess) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(routes::metrics))
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(
            access,
            routes::guard_metrics,
        ))
        .layer(axum::middleware::from_fn_with_state(
            client::TrustedProxies::default(),
            client::client_addr,
        ))
        .with_state(state)
}

/// How often the recorder drains recorded histogram samples into its summaries.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the Prometheus recorder (once per process) and returns its handle.
///
/// The recorder keeps every histogram sample until its upkeep folds them into
/// the summaries; `install_recorder` leaves that to the caller, so without the
/// upkeep thread started here memory grew with every request until `/metrics`
/// was scraped (about 6 MiB a minute at 2,500 requests a second: found by
/// `bench/soak.sh`).
pub fn install_metrics() -> Option<PrometheusHandle> {
    use std::sync::OnceLock;
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .ok()?;
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP);
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .clone()
}
