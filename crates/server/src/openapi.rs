//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Strongroom's API: the core of 1claw's `/v1`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Strongroom", description = "A self-hostable secrets vault for humans and AI agents, speaking the 1claw /v1 API."),
    paths(
        routes::health, routes::health_hsm,
        routes::signup, routes::login, routes::me, routes::jwt_public_key, routes::jwks,
        routes::create_vault, routes::list_vaults, routes::get_vault, routes::delete_vault,
        routes::put_secret, routes::get_secret, routes::delete_secret, routes::list_secrets,
        routes::list_versions, routes::get_version, routes::disable_version, routes::rotate_secret,
        routes::audit_events, routes::audit_verify,
        routes::agent_token, routes::api_key_token, routes::revoke_token,
        routes::create_api_key, routes::list_api_keys, routes::delete_api_key,
        routes::create_agent, routes::list_agents, routes::agent_me, routes::get_agent, routes::update_agent,
        routes::delete_agent, routes::rotate_agent_key, routes::agent_keys_vault,
        routes::create_policy, routes::list_policies, routes::update_policy, routes::delete_policy,
        routes::list_members, routes::invite, routes::update_member, routes::remove_member,
        routes::rotate_kek, routes::rewrap_kek,
    ),
    components(schemas(crate::problem::Problem)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
