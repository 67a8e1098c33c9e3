//! Vault policies.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strongroom_core::PolicyId;
use strongroom_engine::{NewPolicy, Policy, PolicyUpdate};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::ApiResult;
use crate::routes::{parse_id, vault_id};

/// `POST /v1/vaults/{id}/policies`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"secret_path_pattern": "app/**", "principal_type": "agent", "principal_id": "0190a5c4-7f3e-7a2b-9c1d-2e3f4a5b6c7d", "permissions": ["read"]}))]
pub struct CreatePolicyRequest {
    secret_path_pattern: String,
    principal_type: String,
    principal_id: String,
    permissions: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    conditions: Option<Value>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
    #[serde(default)]
    effect: Option<String>,
    #[serde(default)]
    priority: Option<i32>,
    /// Other 1claw fields (attribute_conditions, tx_conditions, …): stored and echoed, not evaluated.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    extra: Map<String, Value>,
}

/// A policy.
#[derive(Serialize, ToSchema)]
pub struct PolicyResponse {
    id: String,
    vault_id: String,
    secret_path_pattern: String,
    principal_type: &'static str,
    principal_id: String,
    permissions: Vec<&'static str>,
    #[schema(value_type = Object)]
    conditions: Value,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
    effect: &'static str,
    priority: i32,
    created_by: String,
    created_by_type: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    extra: Map<String, Value>,
}

impl From<Policy> for PolicyResponse {
    fn from(r: Policy) -> Self {
        let p = r.rule;
        let mut extra = match r.extra {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        for k in [
            "id",
            "vault_id",
            "secret_path_pattern",
            "principal_type",
            "principal_id",
            "permissions",
            "conditions",
            "expires_at",
            "effect",
            "priority",
            "created_by",
            "created_by_type",
            "created_at",
        ] {
            extra.remove(k);
        }
        PolicyResponse {
            id: p.id.to_string(),
            vault_id: p.vault_id.to_string(),
            secret_path_pattern: p.pattern.as_str().to_owned(),
            principal_type: p.principal.kind(),
            principal_id: p.principal.id_string(),
            permissions: p.permissions.iter().map(|x| x.as_str()).collect(),
            conditions: p.conditions.to_json(),
            expires_at: p.expires_at,
            effect: p.effect.as_str(),
            priority: p.priority,
            created_by: r.created_by.id_string(),
            created_by_type: r.created_by.kind(),
            created_at: r.created_at,
            extra,
        }
    }
}

/// `{policies: [...]}`.
#[derive(Serialize, ToSchema)]
pub struct PolicyList {
    policies: Vec<PolicyResponse>,
}

/// Grants (or denies) a principal access to paths of a vault.
#[utoipa::path(post, path = "/v1/vaults/{vault_id}/policies", tag = "policies", request_body = CreatePolicyRequest,
    params(("vault_id" = String, Path, format = Uuid)),
    responses((status = 201, body = PolicyResponse, links(("UpdatePolicy" = (operation_id = "update_policy", parameters(("vault_id" = "$response.body#/vault_id"), ("policy_id" = "$response.body#/id")))), ("DeletePolicy" = (operation_id = "delete_policy", parameters(("vault_id" = "$response.body#/vault_id"), ("policy_id" = "$response.body#/id")))))),
        (status = 400, description = "a malformed pattern, principal, permission, condition, effect or expiry"), (status = 403, description = "the caller may not manage this vault's policies"), (status = 404, description = "no such vault in the caller's organisation")),
    security(("bearer" = [])))]
pub async fn create_policy(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(vid): Path<String>,
    ApiJson(req): ApiJson<CreatePolicyRequest>,
) -> ApiResult<(StatusCode, Json<PolicyResponse>)> {
    let input = NewPolicy {
        secret_path_pattern: req.secret_path_pattern,
        principal_type: req.principal_type,
        principal_id: req.principal_id,
        permissions: req.permissions,
        conditions: req.conditions,
        expires_at: req.expires_at,
        effect: req.effect,
        priority: req.priority,
        extra: req.extra,
    };
    let row = s.engine.create_policy(&p, vault_id(&vid)?, input).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// A vault's policies.
#[utoipa::path(get, path = "/v1/vaults/{vault_id}/policies", tag = "policies", params(("vault_id" = String, Path, format = Uuid)),
    responses((status = 200, body = PolicyList), (status = 403, description = "the caller may not manage this vault's policies"), (status = 404, description = "no such vault in the caller's organisation")), security(("bearer" = [])))]
pub async fn list_policies(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(vid): Path<String>,
) -> ApiResult<Json<PolicyList>> {
    let list = s.engine.list_policies(&p, vault_id(&vid)?).await?;
    Ok(Json(PolicyList {
        policies: list.into_iter().map(Into::into).collect(),
    }))
}

/// `PUT /v1/vaults/{id}/policies/{pid}`: the pattern and principal can't change.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"permissions": ["read"], "priority": 10}))]
pub struct UpdatePolicyRequest {
    #[serde(default)]
    permissions: Option<Vec<String>>,
    /// Absent: unchanged; `null`: cleared.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    conditions: Option<Value>,
    #[serde(default, deserialize_with = "expiry")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Option<OffsetDateTime>>,
    #[serde(default)]
    effect: Option<String>,
    #[serde(default)]
    priority: Option<i32>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    extra: Map<String, Value>,
}

/// A present field, even `null`, is `Some` (`null` becomes `Value::Null`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn expiry<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<OffsetDateTime>>, D::Error> {
    time::serde::rfc3339::option::deserialize(d).map(Some)
}

/// Changes a policy.
#[utoipa::path(put, path = "/v1/vaults/{vault_id}/policies/{policy_id}", tag = "policies", request_body = UpdatePolicyRequest,
    params(("vault_id" = String, Path, format = Uuid), ("policy_id" = String, Path, format = Uuid)), responses((status = 200, body = PolicyResponse),
        (status = 400, description = "a malformed id, permission, condition, effect or expiry"), (status = 403, description = "the caller may not manage this vault's policies"),
        (status = 404, description = "no such vault, or no such policy in it")),
    security(("bearer" = [])))]
pub async fn update_policy(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((vid, pid)): Path<(String, String)>,
    ApiJson(req): ApiJson<UpdatePolicyRequest>,
) -> ApiResult<Json<PolicyResponse>> {
    let u = PolicyUpdate {
        permissions: req.permissions,
        conditions: req.conditions,
        expires_at: req.expires_at,
        effect: req.effect,
        priority: req.priority,
        extra: req.extra,
    };
    Ok(Json(
        s.engine
            .update_policy(
                &p,
                vault_id(&vid)?,
                parse_id::<PolicyId>(&pid, "policy id")?,
                u,
            )
            .await?
            .into(),
    ))
}

/// Deletes a policy.
#[utoipa::path(delete, path = "/v1/vaults/{vault_id}/policies/{policy_id}", tag = "policies",
    params(("vault_id" = String, Path, format = Uuid), ("policy_id" = String, Path, format = Uuid)), responses((status = 204), (status = 403, description = "the caller may not manage this vault's policies"), (status = 404, description = "no such vault, or no such policy in it")),
    security(("bearer" = [])))]
pub async fn delete_policy(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((vid, pid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.engine
        .delete_policy(
            &p,
            vault_id(&vid)?,
            parse_id::<PolicyId>(&pid, "policy id")?,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
