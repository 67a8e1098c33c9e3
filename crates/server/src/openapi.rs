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

/// The answers the layers around and under a handler give, added to every
/// operation they can reach, so that an annotation lists only what its use
/// case decides (`403`, `404`, `410`, …):
///
/// - `400` where a path or query parameter or a body is parsed (a malformed
///   id, version, timestamp or JSON body);
/// - `401` (with `WWW-Authenticate: Bearer`) where a bearer token is required;
/// - `408`, `413` and `415` where a request body is read;
/// - `429` everywhere (the failed-authentication budget applies to every
///   route, the auth rate limit to the public auth routes);
/// - `503` where the database or the key provider is reached, and where a
///   password is hashed.
///
/// Every error answer is `application/problem+json` with the [`Problem`]
/// schema, except where an operation documents a body of its own (the health
/// checks' `503`).
///
/// [`Problem`]: crate::problem::Problem
struct ErrorAnswers;

impl Modify for ErrorAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::ResponseBuilder;
        use utoipa::openapi::schema::{Object, Type};
        let retry_after = utoipa::openapi::header::HeaderBuilder::new()
            .schema(Some(Object::with_type(Type::Integer)))
            .description(Some("seconds to wait before retrying"))
            .build();
        let www_authenticate = utoipa::openapi::header::HeaderBuilder::new()
            .schema(Some(Object::with_type(Type::String)))
            .description(Some("`Bearer`"))
            .build();
        let answer = |description: &str, header: Option<(&str, &Header)>| {
            let mut b = ResponseBuilder::new().description(description);
            if let Some((name, h)) = header {
                b = b.header(name, h.clone());
            }
            b.build()
        };
        let retry = Some(("Retry-After", &retry_after));
        let malformed = answer(
            "The request is malformed: a path or query parameter, or the body, is not what the operation takes",
            None,
        );
        let unauthenticated = answer(
            "The bearer token is missing, malformed, expired or revoked",
            Some(("WWW-Authenticate", &www_authenticate)),
        );
        let slow_body = answer("The request body did not arrive in time", None);
        let too_large = answer("The request body is larger than 5 MiB", None);
        let media_type = answer("The request body is not application/json", None);
        let too_many = answer(
            "Too many requests: this client's failed authentications (any route), or its attempts on the public authentication routes, are over their limit",
            retry,
        );
        let unavailable = answer(
            "The database or the key provider is unavailable; retry after the indicated delay",
            retry,
        );
        let busy = answer(
            "The server is busy checking passwords; retry after the indicated delay",
            retry,
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let public_auth = matches!(
                path.as_str(),
                "/v1/auth/signup"
                    | "/v1/auth/token"
                    | "/v1/auth/agent-token"
                    | "/v1/auth/api-key-token"
            );
            let hashes = path == "/v1/auth/signup" || path == "/v1/auth/token";
            let ops = [
                (&mut item.get, false),
                (&mut item.put, true),
                (&mut item.post, true),
                (&mut item.delete, true),
                (&mut item.patch, true),
            ];
            for (op, writes) in ops {
                let Some(op) = op else { continue };
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let has_body = op.request_body.is_some();
                let r = &mut op.responses.responses;
                if has_params || has_body {
                    merge(r, "400", &malformed);
                }
                if secured {
                    merge(r, "401", &unauthenticated);
                }
                if has_body {
                    merge(r, "408", &slow_body);
                    merge(r, "413", &too_large);
                    merge(r, "415", &media_type);
                }
                merge(r, "429", &too_many);
                if secured || (public_auth && op.request_body.is_some()) {
                    merge(r, "503", &unavailable);
                }
                if hashes && writes {
                    merge(r, "503", &busy);
                }
                for (status, resp) in r.iter_mut() {
                    if (status.starts_with('4') || status.starts_with('5'))
                        && let RefOr::T(resp) = resp
                    {
                        as_problem(resp);
                    }
                }
            }
        }
    }
}

/// An error answer without a body of its own gets the [`Problem`] body; one
/// documented as the `Problem` schema in `application/json` is moved to the
/// media type actually sent, `application/problem+json`.
///
/// [`Problem`]: crate::problem::Problem
fn as_problem(resp: &mut Response) {
    use utoipa::openapi::{Content, Ref};
    let problem = Ref::from_schema_name("Problem");
    if resp.content.is_empty() {
        resp.content.insert(
            crate::problem::PROBLEM_JSON.to_owned(),
            RefOr::T(Content::new(Some(problem))),
        );
        return;
    }
    let is_problem = matches!(
        resp.content.get("application/json"),
        Some(RefOr::T(Content { schema: Some(RefOr::Ref(r)), .. })) if r.ref_location == problem.ref_location
    );
    if is_problem && let Some(c) = resp.content.shift_remove("application/json") {
        resp.content
            .insert(crate::problem::PROBLEM_JSON.to_owned(), c);
    }
}

/// A body the handler takes as [`OptionalJson`] may be left out, but when it
/// is sent it is a JSON object: utoipa documents `request_body = Option<T>`
/// as `oneOf: [T, null]`, which would promise that a `null` body is taken.
/// This keeps the body optional (`required` unset) and its schema `T`.
///
/// [`OptionalJson`]: crate::extract::OptionalJson
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{Schema, Type};
        use utoipa::openapi::{Required, schema::SchemaType};
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.post, &mut item.put, &mut item.patch]
                .into_iter()
                .flatten()
            {
                let Some(RefOr::T(body)) = op.request_body.as_mut() else {
                    continue;
                };
                if body.required == Some(Required::True) {
                    continue;
                }
                for content in body.content.values_mut() {
                    let RefOr::T(content) = content else {
                        continue;
                    };
                    let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
                        continue;
                    };
                    let is_null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
                    let rest: Vec<_> = one_of
                        .items
                        .iter()
                        .filter(|s| !is_null(s))
                        .cloned()
                        .collect();
                    if rest.len() == 1 && rest.len() < one_of.items.len() {
                        content.schema = rest.into_iter().next();
                    }
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
            for (name, header) in &answer.headers {
                existing
                    .headers
                    .entry(name.clone())
                    .or_insert_with(|| header.clone());
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
    modifiers(&BearerAuth, &ErrorAnswers, &OptionalBodies),
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
