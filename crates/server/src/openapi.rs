//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::header::Header;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response};
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

/// The answers the HTTP layer gives before (or instead of) a handler, added
/// to every operation they can reach: `429` (the failed-authentication budget
/// applies to every route, the auth rate limit to the public auth routes),
/// `408` where a request body is read, and `503` where a password is hashed.
struct TransportAnswers;

impl Modify for TransportAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{Object, Type};
        use utoipa::openapi::{Content, Ref, ResponseBuilder};
        let retry_after = utoipa::openapi::header::HeaderBuilder::new()
            .schema(Some(Object::with_type(Type::Integer)))
            .description(Some("seconds to wait before retrying"))
            .build();
        let problem = |description: &str, retry: bool| {
            let mut b = ResponseBuilder::new().description(description).content(
                crate::problem::PROBLEM_JSON,
                Content::new(Some(Ref::from_schema_name("Problem"))),
            );
            if retry {
                b = b.header("Retry-After", retry_after.clone());
            }
            b.build()
        };
        let too_many = problem(
            "Too many requests: this client's failed authentications (any route), or its attempts on the public authentication routes, are over their limit",
            true,
        );
        let slow_body = problem("The request body did not arrive in time", false);
        let busy = problem(
            "The server is busy checking passwords; retry after the indicated delay",
            true,
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let hashes = path == "/v1/auth/signup" || path == "/v1/auth/token";
            let ops = [
                (&mut item.get, false),
                (&mut item.put, false),
                (&mut item.post, hashes),
                (&mut item.delete, false),
                (&mut item.patch, false),
            ];
            for (op, hashes) in ops {
                let Some(op) = op else { continue };
                let r = &mut op.responses.responses;
                merge(r, "429", &too_many, &retry_after);
                if op.request_body.is_some() {
                    merge(r, "408", &slow_body, &retry_after);
                }
                if hashes {
                    merge(r, "503", &busy, &retry_after);
                }
            }
        }
    }
}

/// Adds `answer` under `status`; a route that already documents the status
/// keeps its own text, extended with `answer`'s, and gains its headers.
fn merge(
    responses: &mut std::collections::BTreeMap<String, RefOr<Response>>,
    status: &str,
    answer: &Response,
    retry_after: &Header,
) {
    match responses.get_mut(status) {
        None => {
            responses.insert(status.to_owned(), answer.clone().into());
        }
        Some(RefOr::T(existing)) => {
            if !existing.description.contains(&answer.description) {
                existing.description =
                    format!("{}; or: {}", existing.description, answer.description);
            }
            if answer.headers.contains_key("Retry-After") {
                existing
                    .headers
                    .entry("Retry-After".into())
                    .or_insert_with(|| retry_after.clone().into());
            }
        }
        Some(RefOr::Ref(_)) => {}
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
    modifiers(&BearerAuth, &TransportAnswers),
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
