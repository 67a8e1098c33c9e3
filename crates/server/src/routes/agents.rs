//! Agents, personal API keys and token exchange.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strongroom_core::{AgentId, VaultId};
use strongroom_engine::{Agent, AgentUpdate, ApiKeyInfo, NewAgent};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{ApiJson, Auth, ClientIp};
use crate::problem::ApiResult;
use crate::routes::parse_id;
use crate::wire::TokenResponse;

/// `POST /v1/agents`.
#[derive(Deserialize, ToSchema)]
pub struct CreateAgentRequest {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    auth_method: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    vault_ids: Option<Vec<VaultId>>,
    #[serde(default)]
    token_ttl_seconds: Option<i64>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    api_key_expires_at: Option<OffsetDateTime>,
    /// Other 1claw fields (intents_api_enabled, shroud_enabled, …): stored and echoed.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    extra: Map<String, Value>,
}

/// An agent (never its key).
#[derive(Serialize, ToSchema)]
pub struct AgentResponse {
    id: String,
    org_id: String,
    name: String,
    description: String,
    auth_method: String,
    scopes: Vec<String>,
    vault_ids: Vec<String>,
    token_ttl_seconds: Option<i64>,
    is_active: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    api_key_expires_at: Option<OffsetDateTime>,
    ssh_public_key: Option<String>,
    ecdh_public_key: Option<String>,
    intents_api_enabled: bool,
    shroud_enabled: bool,
    created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    extra: Map<String, Value>,
}

impl From<Agent> for AgentResponse {
    fn from(a: Agent) -> Self {
        let mut extra = match a.extra {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let flag = |extra: &mut Map<String, Value>, k: &str| {
            extra.remove(k).and_then(|v| v.as_bool()).unwrap_or(false)
        };
        let intents_api_enabled = flag(&mut extra, "intents_api_enabled");
        let shroud_enabled = flag(&mut extra, "shroud_enabled");
        // Never let a stored extra field shadow a real one.
        for k in [
            "id",
            "org_id",
            "name",
            "description",
            "auth_method",
            "scopes",
            "vault_ids",
            "token_ttl_seconds",
            "is_active",
            "expires_at",
            "api_key_expires_at",
            "ssh_public_key",
            "ecdh_public_key",
            "created_by",
            "created_at",
            "api_key",
            "key_hash",
            "key_prefix",
        ] {
            extra.remove(k);
        }
        AgentResponse {
            id: a.id.to_string(),
            org_id: a.org_id.to_string(),
            name: a.name,
            description: a.description,
            auth_method: a.auth_method,
            scopes: a.scopes,
            vault_ids: a.vault_ids.iter().map(|v| v.to_string()).collect(),
            token_ttl_seconds: a.token_ttl_seconds,
            is_active: a.is_active,
            expires_at: a.expires_at,
            api_key_expires_at: a.api_key_expires_at,
            ssh_public_key: a.ssh_public_key,
            ecdh_public_key: a.ecdh_public_key,
            intents_api_enabled,
            shroud_enabled,
            created_by: a.created_by.id_string(),
            created_at: a.created_at,
            extra,
        }
    }
}

/// An agent and its key, shown once.
#[derive(Serialize, ToSchema)]
pub struct AgentWithKeyResponse {
    agent: AgentResponse,
    api_key: String,
}

/// `{agents: [...]}`.
#[derive(Serialize, ToSchema)]
pub struct AgentList {
    agents: Vec<AgentResponse>,
}

/// Registers an agent; its `ocv_` key is in this answer only.
#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = CreateAgentRequest,
    responses((status = 201, body = AgentWithKeyResponse)), security(("bearer" = [])))]
pub async fn create_agent(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<CreateAgentRequest>,
) -> ApiResult<(StatusCode, Json<AgentWithKeyResponse>)> {
    let out = s
        .engine
        .create_agent(
            &p,
            NewAgent {
                name: req.name,
                description: req.description,
                auth_method: req.auth_method,
                scopes: req.scopes,
                vault_ids: req.vault_ids,
                token_ttl_seconds: req.token_ttl_seconds,
                expires_at: req.expires_at,
                api_key_expires_at: req.api_key_expires_at,
                extra: req.extra,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AgentWithKeyResponse {
            agent: out.agent.into(),
            api_key: out.api_key.to_string(),
        }),
    ))
}

/// The organisation's agents.
#[utoipa::path(get, path = "/v1/agents", tag = "agents", responses((status = 200, body = AgentList)), security(("bearer" = [])))]
pub async fn list_agents(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<AgentList>> {
    Ok(Json(AgentList {
        agents: s
            .engine
            .list_agents(&p)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

/// The calling agent.
#[utoipa::path(get, path = "/v1/agents/me", tag = "agents", responses((status = 200, body = AgentResponse)), security(("bearer" = [])))]
pub async fn agent_me(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<AgentResponse>> {
    Ok(Json(s.engine.agent_me(&p).await?.into()))
}

/// One agent.
#[utoipa::path(get, path = "/v1/agents/{agent_id}", tag = "agents", params(("agent_id" = String, Path)),
    responses((status = 200, body = AgentResponse)), security(("bearer" = [])))]
pub async fn get_agent(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentResponse>> {
    Ok(Json(
        s.engine
            .get_agent(&p, parse_id::<AgentId>(&id, "agent id")?)
            .await?
            .into(),
    ))
}

/// `PATCH /v1/agents/{id}`: absent fields are left alone; `null` clears an expiry or TTL.
#[derive(Deserialize, ToSchema)]
pub struct UpdateAgentRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    vault_ids: Option<Vec<VaultId>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    token_ttl_seconds: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Option<OffsetDateTime>>,
    #[serde(default, deserialize_with = "double_option_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    api_key_expires_at: Option<Option<OffsetDateTime>>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    extra: Map<String, Value>,
}

fn double_option<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn double_option_time<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<OffsetDateTime>>, D::Error> {
    time::serde::rfc3339::option::deserialize(d).map(Some)
}

/// Changes an agent.
#[utoipa::path(patch, path = "/v1/agents/{agent_id}", tag = "agents", request_body = UpdateAgentRequest, params(("agent_id" = String, Path)),
    responses((status = 200, body = AgentResponse)), security(("bearer" = [])))]
pub async fn update_agent(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateAgentRequest>,
) -> ApiResult<Json<AgentResponse>> {
    let u = AgentUpdate {
        name: req.name,
        description: req.description,
        scopes: req.scopes,
        vault_ids: req.vault_ids,
        token_ttl_seconds: req.token_ttl_seconds,
        expires_at: req.expires_at,
        api_key_expires_at: req.api_key_expires_at,
        is_active: req.is_active,
        extra: req.extra,
    };
    Ok(Json(
        s.engine
            .update_agent(&p, parse_id::<AgentId>(&id, "agent id")?, u)
            .await?
            .into(),
    ))
}

/// Deactivates an agent (its history stays).
#[utoipa::path(delete, path = "/v1/agents/{agent_id}", tag = "agents", params(("agent_id" = String, Path)),
    responses((status = 204)), security(("bearer" = [])))]
pub async fn delete_agent(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine
        .deactivate_agent(&p, parse_id::<AgentId>(&id, "agent id")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces an agent's key; the old one stops working at once.
#[utoipa::path(post, path = "/v1/agents/{agent_id}/rotate-key", tag = "agents", params(("agent_id" = String, Path)),
    responses((status = 200, body = AgentWithKeyResponse)), security(("bearer" = [])))]
pub async fn rotate_agent_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentWithKeyResponse>> {
    let out = s
        .engine
        .rotate_agent_key(&p, parse_id::<AgentId>(&id, "agent id")?)
        .await?;
    Ok(Json(AgentWithKeyResponse {
        agent: out.agent.into(),
        api_key: out.api_key.to_string(),
    }))
}

/// `GET /v1/org/agent-keys-vault`.
#[derive(Serialize, ToSchema)]
pub struct AgentKeysVault {
    vault_id: String,
}

/// The vault holding the organisation's agent identity keys.
#[utoipa::path(get, path = "/v1/org/agent-keys-vault", tag = "agents", responses((status = 200, body = AgentKeysVault)), security(("bearer" = [])))]
pub async fn agent_keys_vault(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<AgentKeysVault>> {
    let id = s.engine.agent_keys_vault_id(&p).await?;
    Ok(Json(AgentKeysVault {
        vault_id: id.to_string(),
    }))
}

/// `POST /v1/auth/agent-token`.
#[derive(Deserialize, ToSchema)]
pub struct AgentTokenRequest {
    api_key: String,
    #[serde(default)]
    agent_id: Option<String>,
}

/// An agent's token.
#[derive(Serialize, ToSchema)]
pub struct AgentTokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    agent_id: String,
    vault_ids: Vec<String>,
}

/// Exchanges an `ocv_` key (with or without `agent_id`) for a JWT.
#[utoipa::path(post, path = "/v1/auth/agent-token", tag = "auth", request_body = AgentTokenRequest,
    responses((status = 200, body = AgentTokenResponse), (status = 401, body = crate::problem::Problem), (status = 429, body = crate::problem::Problem)))]
pub async fn agent_token(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<AgentTokenRequest>,
) -> ApiResult<Json<AgentTokenResponse>> {
    let out = s
        .engine
        .agent_token(&req.api_key, req.agent_id.as_deref(), ip)
        .await?;
    Ok(Json(AgentTokenResponse {
        access_token: out.token.token,
        token_type: "Bearer",
        expires_in: out.token.expires_in,
        agent_id: out.agent.id.to_string(),
        vault_ids: out.agent.vault_ids.iter().map(|v| v.to_string()).collect(),
    }))
}

/// `POST /v1/auth/api-key-token`.
#[derive(Deserialize, ToSchema)]
pub struct ApiKeyTokenRequest {
    api_key: String,
}

/// Exchanges a `1ck_` key for a JWT carrying the key's scopes.
#[utoipa::path(post, path = "/v1/auth/api-key-token", tag = "auth", request_body = ApiKeyTokenRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = crate::problem::Problem)))]
pub async fn api_key_token(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ApiKeyTokenRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let t = s.engine.api_key_token(&req.api_key, ip).await?;
    Ok(Json(TokenResponse {
        access_token: t.token,
        token_type: "Bearer",
        expires_in: t.expires_in,
    }))
}

/// `POST /v1/auth/api-keys`.
#[derive(Deserialize, ToSchema)]
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
    responses((status = 201, body = NewApiKeyResponse)), security(("bearer" = [])))]
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
#[utoipa::path(get, path = "/v1/auth/api-keys", tag = "auth", responses((status = 200, body = ApiKeyList)), security(("bearer" = [])))]
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
#[utoipa::path(delete, path = "/v1/auth/api-keys/{key_id}", tag = "auth", params(("key_id" = String, Path)),
    responses((status = 204)), security(("bearer" = [])))]
pub async fn delete_api_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id, "key id")?;
    s.engine.revoke_api_key(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes the presented token.
#[utoipa::path(delete, path = "/v1/auth/token", tag = "auth", responses((status = 204)), security(("bearer" = [])))]
pub async fn revoke_token(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<StatusCode> {
    s.engine.revoke_token(&p).await?;
    Ok(StatusCode::NO_CONTENT)
}
