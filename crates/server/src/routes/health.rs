//! Health and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use strongroom_kms::ProviderHealth;

use crate::AppState;
use crate::wire::{HealthResponse, HsmHealthResponse};

/// Liveness, with the state of the store and the key provider folded in.
#[utoipa::path(get, path = "/v1/health", tag = "health", responses((status = 200, body = HealthResponse)))]
pub async fn health(State(s): State<AppState>) -> Json<HealthResponse> {
    let h = s.engine.health().await;
    let ok = h.store_ok && h.provider == ProviderHealth::Healthy;
    Json(HealthResponse {
        status: if ok { "healthy" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
    })
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

/// Prometheus metrics.
pub async fn metrics(State(s): State<AppState>) -> Response {
    match &s.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => crate::problem::Problem::new(StatusCode::NOT_FOUND, "metrics are disabled")
            .into_response(),
    }
}
