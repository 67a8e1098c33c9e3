//! Health and metrics.
//!
//! `/metrics` says a lot about the deployment (routes, error rates, provider
//! latency), so it is not public: by default only loopback clients (the client
//! address after trusted proxies, [`crate::client`]) may read it; with a
//! configured token, only requests carrying `Authorization: Bearer <token>`
//! may, compared in constant time. It can also have a listener of its own
//! ([`crate::metrics_router`]), whose bind address decides who reaches it.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use strongroom_engine::ProviderHealth;

use crate::AppState;
use crate::wire::{HealthResponse, HsmHealthResponse};

/// Liveness, with the state of the database and the key provider folded in.
/// `503` when the database does not answer: a load balancer stops sending
/// this node requests it could not serve, and sends them again once the
/// database is back (the node reconnects by itself).
#[utoipa::path(get, path = "/v1/health", tag = "health", responses(
    (status = 200, body = HealthResponse), (status = 503, body = HealthResponse)))]
pub async fn health(State(s): State<AppState>) -> Response {
    let h = s.engine.health().await;
    let code = if h.store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = HealthResponse {
        status: if !h.store_ok {
            "unavailable"
        } else if h.is_healthy() {
            "healthy"
        } else {
            "degraded"
        },
        version: env!("CARGO_PKG_VERSION"),
        database: if h.store_ok { "ok" } else { "unavailable" },
    };
    (code, Json(body)).into_response()
}

/// The key provider's reachability. Anyone may ask, so the answer is coarse:
/// the provider's own explanation (key names, endpoints) goes to the log only.
#[utoipa::path(get, path = "/v1/health/hsm", tag = "health", responses(
    (status = 200, body = HsmHealthResponse), (status = 503, body = HsmHealthResponse)))]
pub async fn health_hsm(State(s): State<AppState>) -> Response {
    let h = s.engine.health().await;
    let (code, status) = match &h.provider {
        ProviderHealth::Healthy => (StatusCode::OK, "ok"),
        ProviderHealth::Degraded(d) => {
            tracing::warn!(provider = h.provider_name, detail = %d, "key provider degraded");
            (StatusCode::OK, "degraded")
        }
        ProviderHealth::Unavailable(d) => {
            tracing::error!(provider = h.provider_name, detail = %d, "key provider unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    };
    (
        code,
        Json(HsmHealthResponse {
            status,
            provider: h.provider_name,
        }),
    )
        .into_response()
}

/// Who may read `/metrics`.
#[derive(Clone, Default)]
pub struct MetricsAccess(Rule);

#[derive(Clone, Default)]
enum Rule {
    /// Loopback clients only.
    #[default]
    Loopback,
    /// Requests bearing the token whose SHA-256 this is.
    Token([u8; 32]),
    /// Any client that reaches the listener (a dedicated metrics listener,
    /// whose bind address decides who that is).
    Anyone,
    /// Not on this listener: `/metrics` has a listener of its own.
    Elsewhere,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rule = match self.0 {
            Rule::Loopback => "loopback",
            Rule::Token(_) => "token",
            Rule::Anyone => "anyone reaching the listener",
            Rule::Elsewhere => "served elsewhere",
        };
        f.debug_struct("MetricsAccess")
            .field("rule", &rule)
            .finish()
    }
}

impl MetricsAccess {
    /// Loopback clients only (the default).
    pub fn loopback() -> Self {
        MetricsAccess(Rule::Loopback)
    }

    /// Requests bearing this token, from anywhere.
    pub fn token(token: &str) -> Self {
        use sha2::Digest;
        MetricsAccess(Rule::Token(sha2::Sha256::digest(token.as_bytes()).into()))
    }

    /// Every client of the listener (for a dedicated metrics listener).
    pub fn anyone() -> Self {
        MetricsAccess(Rule::Anyone)
    }

    /// `404` here: metrics are served on a listener of their own.
    pub fn elsewhere() -> Self {
        MetricsAccess(Rule::Elsewhere)
    }

    fn allows(&self, req: &axum::extract::Request) -> Result<(), StatusCode> {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        match &self.0 {
            Rule::Token(want) => {
                let presented = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split_once(' '))
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, t)| t.trim())
                    .ok_or(StatusCode::UNAUTHORIZED)?;
                let got: [u8; 32] = sha2::Sha256::digest(presented.as_bytes()).into();
                if bool::from(got.ct_eq(want)) {
                    Ok(())
                } else {
                    Err(StatusCode::UNAUTHORIZED)
                }
            }
            Rule::Loopback => {
                let client = req
                    .extensions()
                    .get::<crate::client::ClientAddr>()
                    .map(|c| c.0);
                if client.is_some_and(|ip| ip.is_loopback()) {
                    Ok(())
                } else {
                    Err(StatusCode::FORBIDDEN)
                }
            }
            Rule::Anyone => Ok(()),
            Rule::Elsewhere => Err(StatusCode::NOT_FOUND),
        }
    }
}

/// Middleware: applies [`MetricsAccess`] to `/metrics`.
pub async fn guard_metrics(
    State(access): State<MetricsAccess>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.uri().path() != "/metrics" {
        return next.run(req).await;
    }
    match access.allows(&req) {
        Ok(()) => next.run(req).await,
        // A 401 problem carries `WWW-Authenticate: Bearer`.
        Err(StatusCode::UNAUTHORIZED) => crate::problem::ApiError::http(
            StatusCode::UNAUTHORIZED,
            "the metrics token is missing or wrong",
        )
        .into_response(),
        Err(StatusCode::NOT_FOUND) => crate::problem::ApiError::http(
            StatusCode::NOT_FOUND,
            "metrics are served on their own listen address",
        )
        .into_response(),
        Err(status) => crate::problem::ApiError::http(
            status,
            "metrics are served to loopback clients only (or configure a metrics token)",
        )
        .into_response(),
    }
}

/// Prometheus metrics.
pub async fn metrics(State(s): State<AppState>) -> Response {
    match &s.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => crate::problem::ApiError::http(StatusCode::NOT_FOUND, "metrics are disabled")
            .into_response(),
    }
}
