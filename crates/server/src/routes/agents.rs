//! Agents: registration, their records, key rotation and deactivation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strongroom_core::{AgentId, VaultId};
use strongroom_engine::{Agent, AgentUpdate, NewAgent};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::ApiResult;
use crate::routes::parse_id;

/// `POST /v1/agents`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "deploy-bot", "description": "reads the deploy keys", "scopes": ["vaults:read"]}))]
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
    responses((status = 201, body = AgentWithKeyResponse, links(("GetAgent" = (operation_id = "get_agent", parameters(("agent_id" = "$response.body#/agent/id")))), ("UpdateAgent" = (operation_id = "update_agent", parameters(("agent_id" = "$response.body#/agent/id")))), ("RotateAgentKey" = (operation_id = "rotate_agent_key", parameters(("agent_id" = "$response.body#/agent/id")))), ("DeleteAgent" = (operation_id = "delete_agent", parameters(("agent_id" = "$response.body#/agent/id")))), ("AgentToken" = (operation_id = "agent_token", request_body = json!({"api_key": "$response.body#/api_key", "agent_id": "$response.body#/agent/id"}))))),
        (status = 400, description = "a malformed name, scope, vault id, TTL, expiry or auth method"), (status = 403, description = "the caller may not manage agents"),
        (status = 404, description = "a vault in vault_ids is not in the caller's organisation")),
    security(("bearer" = [])))]
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
#[utoipa::path(get, path = "/v1/agents", tag = "agents", responses((status = 200, body = AgentList), (status = 403, description = "the caller may not manage agents")), security(("bearer" = [])))]
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
#[utoipa::path(get, path = "/v1/agents/me", tag = "agents", responses((status = 200, body = AgentResponse), (status = 403, description = "the caller is not an agent"),
        (status = 404, description = "the calling agent no longer exists")), security(("bearer" = [])))]
pub async fn agent_me(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<AgentResponse>> {
    Ok(Json(s.engine.agent_me(&p).await?.into()))
}

/// One agent.
#[utoipa::path(get, path = "/v1/agents/{agent_id}", tag = "agents", params(("agent_id" = String, Path, format = Uuid)),
    responses((status = 200, body = AgentResponse), (status = 403, description = "the caller may not see this agent"), (status = 404, description = "no such agent in the caller's organisation")),
    security(("bearer" = [])))]
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
#[utoipa::path(patch, path = "/v1/agents/{agent_id}", tag = "agents", request_body = UpdateAgentRequest, params(("agent_id" = String, Path, format = Uuid)),
    responses((status = 200, body = AgentResponse),
        (status = 400, description = "a malformed name, scope, vault id, TTL or expiry"), (status = 403, description = "the caller may not manage agents"), (status = 404, description = "no such agent in the caller's organisation")),
    security(("bearer" = [])))]
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
#[utoipa::path(delete, path = "/v1/agents/{agent_id}", tag = "agents", params(("agent_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, description = "the caller may not manage agents"), (status = 404, description = "no such agent in the caller's organisation")), security(("bearer" = [])))]
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
#[utoipa::path(post, path = "/v1/agents/{agent_id}/rotate-key", tag = "agents", params(("agent_id" = String, Path, format = Uuid)),
    responses((status = 200, body = AgentWithKeyResponse), (status = 403, description = "the caller may not manage agents"), (status = 404, description = "no such agent in the caller's organisation")), security(("bearer" = [])))]
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
