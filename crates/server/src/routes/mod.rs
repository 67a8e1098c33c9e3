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
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::routing::{MethodFilter, on};

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
    table().router
}

/// Every `(method, path)` [`routes`] answers, in axum's path syntax
/// (`{*path}` for the rest of a secret's path). The OpenAPI test holds it
/// against `/openapi.json`.
pub fn operations() -> Vec<(Method, &'static str)> {
    table().operations
}

/// The route table: one line per operation, so the router and the list of
/// operations are the same table and can't disagree.
fn table() -> Table {
    Table::default()
        .op(Method::GET, "/v1/health", health)
        .op(Method::GET, "/v1/health/hsm", health_hsm)
        .op(Method::GET, "/metrics", metrics)
        .op(Method::GET, "/openapi.json", crate::openapi::serve)
        .op(Method::POST, "/v1/auth/signup", signup)
        .op(Method::POST, "/v1/auth/token", login)
        .op(Method::DELETE, "/v1/auth/token", revoke_token)
        .op(Method::POST, "/v1/auth/agent-token", agent_token)
        .op(Method::POST, "/v1/auth/api-key-token", api_key_token)
        .op(Method::POST, "/v1/auth/api-keys", create_api_key)
        .op(Method::GET, "/v1/auth/api-keys", list_api_keys)
        .op(Method::DELETE, "/v1/auth/api-keys/{key_id}", delete_api_key)
        .op(Method::POST, "/v1/agents", create_agent)
        .op(Method::GET, "/v1/agents", list_agents)
        .op(Method::GET, "/v1/agents/me", agent_me)
        .op(Method::GET, "/v1/agents/{agent_id}", get_agent)
        .op(Method::PATCH, "/v1/agents/{agent_id}", update_agent)
        .op(Method::DELETE, "/v1/agents/{agent_id}", delete_agent)
        .op(
            Method::POST,
            "/v1/agents/{agent_id}/rotate-key",
            rotate_agent_key,
        )
        .op(Method::GET, "/v1/org/members", list_members)
        .op(Method::PATCH, "/v1/org/members/{user_id}", update_member)
        .op(Method::DELETE, "/v1/org/members/{user_id}", remove_member)
        .op(Method::POST, "/v1/org/invite", invite)
        .op(Method::GET, "/v1/org/agent-keys-vault", agent_keys_vault)
        .op(Method::POST, "/v1/vaults/{vault_id}/kek/rotate", rotate_kek)
        .op(Method::POST, "/v1/vaults/{vault_id}/kek/rewrap", rewrap_kek)
        .op(
            Method::POST,
            "/v1/vaults/{vault_id}/policies",
            create_policy,
        )
        .op(Method::GET, "/v1/vaults/{vault_id}/policies", list_policies)
        .op(
            Method::PUT,
            "/v1/vaults/{vault_id}/policies/{policy_id}",
            update_policy,
        )
        .op(
            Method::DELETE,
            "/v1/vaults/{vault_id}/policies/{policy_id}",
            delete_policy,
        )
        .op(Method::GET, "/v1/auth/me", me)
        .op(Method::GET, "/v1/auth/jwt-public-key", jwt_public_key)
        .op(Method::GET, "/.well-known/jwks.json", jwks)
        .op(Method::GET, "/v1/audit/events", audit_events)
        .op(Method::GET, "/v1/audit/verify", audit_verify)
        .op(Method::POST, "/v1/vaults", create_vault)
        .op(Method::GET, "/v1/vaults", list_vaults)
        .op(Method::GET, "/v1/vaults/{vault_id}", get_vault)
        .op(Method::DELETE, "/v1/vaults/{vault_id}", delete_vault)
        .op(Method::GET, "/v1/vaults/{vault_id}/secrets", list_secrets)
        .op(
            Method::GET,
            "/v1/vaults/{vault_id}/secrets/{*path}",
            get_secret,
        )
        .op(
            Method::PUT,
            "/v1/vaults/{vault_id}/secrets/{*path}",
            put_secret,
        )
        .op(
            Method::DELETE,
            "/v1/vaults/{vault_id}/secrets/{*path}",
            delete_secret,
        )
        .op(
            Method::GET,
            "/v1/vaults/{vault_id}/secret-versions/{*path}",
            list_versions,
        )
        .op(
            Method::GET,
            "/v1/vaults/{vault_id}/secret-version/{*path}",
            get_version,
        )
        .op(
            Method::POST,
            "/v1/vaults/{vault_id}/secret-version-disable/{*path}",
            disable_version,
        )
        .op(
            Method::POST,
            "/v1/vaults/{vault_id}/secret-rotate/{*path}",
            rotate_secret,
        )
}

/// A router being built, and what it has been given.
#[derive(Default)]
struct Table {
    router: Router<AppState>,
    operations: Vec<(Method, &'static str)>,
}

impl Table {
    /// Routes `method` on `path` to `handler` (axum merges the methods of one
    /// path into one method router, which answers the others with `405`).
    fn op<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("{method} is not a method axum routes"));
        self.router = self.router.route(path, on(filter, handler));
        self.operations.push((method, path));
        self
    }
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
