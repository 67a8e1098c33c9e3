//! Personal API keys (`1ck_…`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use strongroom_core::ApiKeyId;
use strongroom_engine::ApiKeyInfo;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::ApiResult;
use crate::routes::parse_id;

/// `POST /v1/auth/api-keys`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "laptop"}))]
pub struct CreateApiKeyRequest {
    name: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
}

/// A personal key (never the key itself).
#[derive(Serialize, ToSchema)]
pub struct ApiKeyResponse {
    id: String,
    name: String,
    key_prefix: String,
    scopes: Vec<String>,
    is_active: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
    last_used_at: Option<String>,
}

impl From<ApiKeyInfo> for ApiKeyResponse {
    fn from(k: ApiKeyInfo) -> Self {
        ApiKeyResponse {
            id: k.id.to_string(),
            name: k.name,
            key_prefix: k.key_prefix,
            scopes: k.scopes,
            is_active: k.is_active,
            created_at: k.created_at,
            expires_at: k.expires_at,
            last_used_at: None,
        }
    }
}

/// A new personal key, shown once.
#[derive(Serialize, ToSchema)]
pub struct NewApiKeyResponse {
    key: ApiKeyResponse,
    api_key: String,
}

/// `{keys: [...]}`.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    keys: Vec<ApiKeyResponse>,
}

/// Creates a personal `1ck_` key.
#[utoipa::path(post, path = "/v1/auth/api-keys", tag = "auth", request_body = CreateApiKeyRequest,
    responses((status = 201, body = NewApiKeyResponse, links(("ApiKeyToken" = (operation_id = "api_key_token", request_body = json!({"api_key": "$response.body#/api_key"}))), ("DeleteApiKey" = (operation_id = "delete_api_key", parameters(("key_id" = "$response.body#/key/id")))))), (status = 400, description = "a malformed name, scope or expiry"),
        (status = 403, description = "the caller is not a user, or asks for scopes beyond its own")),
    security(("bearer" = [])))]
pub async fn create_api_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<CreateApiKeyRequest>,
) -> ApiResult<(StatusCode, Json<NewApiKeyResponse>)> {
    let k = s
        .engine
        .create_api_key(&p, &req.name, req.scopes, req.expires_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewApiKeyResponse {
            key: k.info.into(),
            api_key: k.key.to_string(),
        }),
    ))
}

/// The caller's personal keys.
#[utoipa::path(get, path = "/v1/auth/api-keys", tag = "auth", responses((status = 200, body = ApiKeyList), (status = 403, description = "the caller is not a user")), security(("bearer" = [])))]
pub async fn list_api_keys(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<ApiKeyList>> {
    Ok(Json(ApiKeyList {
        keys: s
            .engine
            .list_api_keys(&p)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

/// Revokes a personal key.
#[utoipa::path(delete, path = "/v1/auth/api-keys/{key_id}", tag = "auth", params(("key_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, description = "the caller is not a user"), (status = 404, description = "no such key of the caller's")),
    security(("bearer" = [])))]
pub async fn delete_api_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id::<ApiKeyId>(&id, "key id")?;
    s.engine.revoke_api_key(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
