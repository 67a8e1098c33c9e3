//! Vaults.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::ApiResult;
use crate::routes::vault_id;
use crate::wire::*;

/// Creates a vault and its KEK.
#[utoipa::path(post, path = "/v1/vaults", tag = "vaults", request_body = CreateVaultRequest,
    responses((status = 201, body = VaultResponse, links(("GetVault" = (operation_id = "get_vault", parameters(("vault_id" = "$response.body#/id")))), ("ListSecrets" = (operation_id = "list_secrets", parameters(("vault_id" = "$response.body#/id")))), ("PutSecret" = (operation_id = "put_secret", parameters(("vault_id" = "$response.body#/id")))), ("CreatePolicy" = (operation_id = "create_policy", parameters(("vault_id" = "$response.body#/id")))), ("RotateKek" = (operation_id = "rotate_kek", parameters(("vault_id" = "$response.body#/id")))), ("RewrapKek" = (operation_id = "rewrap_kek", parameters(("vault_id" = "$response.body#/id")))), ("DeleteVault" = (operation_id = "delete_vault", parameters(("vault_id" = "$response.body#/id")))))), (status = 400, description = "a malformed or reserved name, or a malformed description"),
        (status = 403, description = "the caller may not create vaults")),
    security(("bearer" = [])))]
pub async fn create_vault(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<CreateVaultRequest>,
) -> ApiResult<(StatusCode, Json<VaultResponse>)> {
    let v = s
        .engine
        .create_vault(&p, &req.name, req.description.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(v.into())))
}

/// The vaults the caller may see.
#[utoipa::path(get, path = "/v1/vaults", tag = "vaults", responses((status = 200, body = VaultList), (status = 403, description = "the caller may not list vaults")), security(("bearer" = [])))]
pub async fn list_vaults(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<VaultList>> {
    let vaults = s
        .engine
        .list_vaults(&p)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(VaultList { vaults }))
}

/// One vault.
#[utoipa::path(get, path = "/v1/vaults/{vault_id}", tag = "vaults", params(("vault_id" = String, Path, format = Uuid)),
    responses((status = 200, body = VaultResponse), (status = 403, description = "the caller may not do this in this vault"), (status = 404, description = "no such vault in the caller's organisation")), security(("bearer" = [])))]
pub async fn get_vault(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<VaultResponse>> {
    Ok(Json(s.engine.get_vault(&p, vault_id(&id)?).await?.into()))
}

/// Deletes a vault, its secrets and its KEK.
#[utoipa::path(delete, path = "/v1/vaults/{vault_id}", tag = "vaults", params(("vault_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, description = "the caller may not do this in this vault"), (status = 404, description = "no such vault in the caller's organisation")), security(("bearer" = [])))]
pub async fn delete_vault(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.delete_vault(&p, vault_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A vault's KEK state after a rotation or rewrap step.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct KekResponse {
    vault_id: String,
    kek_version: u32,
    /// DEKs rewrapped by this call.
    rewrapped: u64,
    /// DEKs still under an older KEK version.
    remaining: u64,
}

/// `POST /v1/vaults/{id}/kek/rewrap`.
#[derive(serde::Deserialize, Default, utoipa::ToSchema)]
pub struct RewrapRequest {
    /// DEKs per call (default 200; more than 1000 is 1000, 0 is 1).
    #[serde(default)]
    #[schema(value_type = Option<u64>, maximum = 4294967295_u64)]
    batch_size: Option<u32>,
}

/// Adds a KEK version (Strongroom extension). New writes use it at once.
#[utoipa::path(post, path = "/v1/vaults/{vault_id}/kek/rotate", tag = "keys", params(("vault_id" = String, Path, format = Uuid)),
    responses((status = 200, body = KekResponse), (status = 403, description = "the caller may not do this in this vault"), (status = 404, description = "no such vault in the caller's organisation"),
        (status = 409, description = "the vault was deleted meanwhile")), security(("bearer" = [])))]
pub async fn rotate_kek(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<KekResponse>> {
    let id = vault_id(&id)?;
    let r = s.engine.rotate_vault_kek(&p, id).await?;
    Ok(Json(KekResponse {
        vault_id: id.to_string(),
        kek_version: r.kek_version,
        rewrapped: r.rewrapped,
        remaining: r.remaining,
    }))
}

/// Rewraps a batch of the vault's DEKs under its newest KEK version (Strongroom
/// extension); call until `remaining` is 0. Ciphertexts are never touched.
#[utoipa::path(post, path = "/v1/vaults/{vault_id}/kek/rewrap", tag = "keys", request_body = Option<RewrapRequest>,
    params(("vault_id" = String, Path, format = Uuid)),
    responses((status = 200, body = KekResponse), (status = 400, description = "a malformed vault id or batch size"), (status = 403, description = "the caller may not do this in this vault"), (status = 404, description = "no such vault in the caller's organisation"),
        (status = 409, description = "the vault was deleted, or a DEK changed, while it was being rewrapped")),
    security(("bearer" = [])))]
pub async fn rewrap_kek(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    crate::extract::OptionalJson(req): crate::extract::OptionalJson<RewrapRequest>,
) -> ApiResult<Json<KekResponse>> {
    let id = vault_id(&id)?;
    let r = s.engine.rewrap_vault(&p, id, req.batch_size).await?;
    Ok(Json(KekResponse {
        vault_id: id.to_string(),
        kek_version: r.kek_version,
        rewrapped: r.rewrapped,
        remaining: r.remaining,
    }))
}
