//! Route table, grouped by family.

mod agents;
mod api_keys;
mod audit;
mod auth;
mod health;
mod org;
mod policies;
mod secrets;
mod vaults;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};

use crate::AppState;
use crate::problem::ApiError;

pub use agents::*;
pub use api_keys::*;
pub use audit::*;
pub use auth::*;
pub use health::*;
pub use org::*;
pub use policies::*;
pub use secrets::*;
pub use vaults::*;

/// Every route of the API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/health/hsm", get(health_hsm))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/v1/auth/signup", post(signup))
        .route("/v1/auth/token", post(login).delete(revoke_token))
        .route("/v1/auth/agent-token", post(agent_token))
        .route("/v1/auth/api-key-token", post(api_key_token))
        .route("/v1/auth/api-keys", post(create_api_key).get(list_api_keys))
        .route("/v1/auth/api-keys/{key_id}", delete(delete_api_key))
        .route("/v1/agents", post(create_agent).get(list_agents))
        .route("/v1/agents/me", get(agent_me))
        .route(
            "/v1/agents/{agent_id}",
            get(get_agent).patch(update_agent).delete(delete_agent),
        )
        .route("/v1/agents/{agent_id}/rotate-key", post(rotate_agent_key))
        .route("/v1/org/members", get(list_members))
        .route(
            "/v1/org/members/{user_id}",
            patch(update_member).delete(remove_member),
        )
        .route("/v1/org/invite", post(invite))
        .route("/v1/org/agent-keys-vault", get(agent_keys_vault))
        .route("/v1/vaults/{vault_id}/kek/rotate", post(rotate_kek))
        .route("/v1/vaults/{vault_id}/kek/rewrap", post(rewrap_kek))
        .route(
            "/v1/vaults/{vault_id}/policies",
            post(create_policy).get(list_policies),
        )
        .route(
            "/v1/vaults/{vault_id}/policies/{policy_id}",
            put(update_policy).delete(delete_policy),
        )
        .route("/v1/auth/me", get(me))
        .route("/v1/auth/jwt-public-key", get(jwt_public_key))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/audit/events", get(audit_events))
        .route("/v1/audit/verify", get(audit_verify))
        .route("/v1/vaults", post(create_vault).get(list_vaults))
        .route("/v1/vaults/{vault_id}", get(get_vault).delete(delete_vault))
        .route("/v1/vaults/{vault_id}/secrets", get(list_secrets))
        .route(
            "/v1/vaults/{vault_id}/secrets/{*path}",
            get(get_secret).put(put_secret).delete(delete_secret),
        )
        .route(
            "/v1/vaults/{vault_id}/secret-versions/{*path}",
            get(list_versions),
        )
        .route(
            "/v1/vaults/{vault_id}/secret-version/{*path}",
            get(get_version),
        )
        .route(
            "/v1/vaults/{vault_id}/secret-version-disable/{*path}",
            post(disable_version),
        )
        .route(
            "/v1/vaults/{vault_id}/secret-rotate/{*path}",
            post(rotate_secret),
        )
}

/// Parses an id from a URL segment: a UUID of the id type `T`, else 400
/// naming `what` (e.g. "vault id").
pub fn parse_id<T: std::str::FromStr>(raw: &str, what: &str) -> crate::problem::ApiResult<T> {
    raw.parse()
        .map_err(|_| strongroom_core::Error::invalid(format!("{what} must be a UUID")).into())
}

/// A vault id from a URL segment.
pub fn vault_id(raw: &str) -> crate::problem::ApiResult<strongroom_core::VaultId> {
    parse_id(raw, "vault id")
}

/// The answer for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::http(StatusCode::NOT_FOUND, "no such resource")
}
