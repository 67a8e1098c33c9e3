//! Secrets and their versions.
//!
//! The secret path is taken from the raw request URI, not from the router's
//! decoded capture, and handed to [`SecretPath::from_url_encoded`]: each segment
//! is decoded on its own, so `%2F` can never become a separator.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use strongroom_core::{Error, SecretPath, VaultId};
use strongroom_engine::{PutSecret, SecretBytes};

use crate::AppState;
use crate::extract::{ApiJson, Auth, OptionalJson};
use crate::problem::ApiResult;
use crate::routes::vault_id;
use crate::wire::*;

/// Splits `/v1/vaults/{id}/{family}/{tail}` into the vault id and the raw tail.
fn vault_and_tail(uri: &Uri) -> ApiResult<(VaultId, &str)> {
    let mut parts = uri.path().splitn(6, '/');
    let (_, _, _, id, _, tail) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    );
    let id = vault_id(id.unwrap_or(""))?;
    Ok((id, tail.unwrap_or("")))
}

fn secret_path(uri: &Uri) -> ApiResult<(VaultId, SecretPath)> {
    let (id, tail) = vault_and_tail(uri)?;
    Ok((id, SecretPath::from_url_encoded(tail)?))
}

/// `{path}/{n}`: the path and a version number in 1..=u32::MAX.
fn path_and_version(uri: &Uri) -> ApiResult<(VaultId, SecretPath, u32)> {
    let (id, tail) = vault_and_tail(uri)?;
    let (path, n) = tail
        .rsplit_once('/')
        .ok_or_else(|| Error::invalid("expected {path}/{version}"))?;
    let bad = || Error::invalid("version must be a whole number between 1 and 4294967295");
    if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad().into());
    }
    let n: u32 = n.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(bad().into());
    }
    Ok((id, SecretPath::from_url_encoded(path)?, n))
}

/// Stores a new version.
#[utoipa::path(put, path = "/v1/vaults/{vault_id}/secrets/{path}", tag = "secrets", request_body = PutSecretRequest,
    params(("vault_id" = String, Path, format = Uuid), ("path" = String, Path)),
    responses((status = 201, body = SecretCreatedResponse, links(("GetSecret" = (operation_id = "get_secret", parameters(("vault_id" = "$request.path.vault_id"), ("path" = "$response.body#/path")))), ("ListVersions" = (operation_id = "list_versions", parameters(("vault_id" = "$request.path.vault_id"), ("path" = "$response.body#/path")))), ("GetVersion" = (operation_id = "get_version", parameters(("vault_id" = "$request.path.vault_id"), ("path" = "$response.body#/path"), ("version" = "$response.body#/version")))), ("DisableVersion" = (operation_id = "disable_version", parameters(("vault_id" = "$request.path.vault_id"), ("path" = "$response.body#/path"), ("version" = "$response.body#/version")))), ("RotateSecret" = (operation_id = "rotate_secret", parameters(("vault_id" = "$request.path.vault_id"), ("path" = "$response.body#/path")))), ("DeleteSecret" = (operation_id = "delete_secret", parameters(("vault_id" = "$request.path.vault_id"), ("path" = "$response.body#/path")))))),
        (status = 400, description = "a malformed path, value, type, metadata, expiry or access count"),
        (status = 409, description = "concurrent writes to the path kept conflicting, or its version numbers are exhausted"),
        (status = 403, description = "the caller may not do this in this vault"), (status = 404, description = "no such vault in the caller's organisation")),
    security(("bearer" = [])))]
pub async fn put_secret(
    State(s): State<AppState>,
    Auth(p): Auth,
    uri: Uri,
    ApiJson(req): ApiJson<PutSecretRequest>,
) -> ApiResult<(StatusCode, Json<SecretCreatedResponse>)> {
    let (vault, path) = secret_path(&uri)?;
    let input = PutSecret {
        value: SecretBytes::from(req.value),
        secret_type: req.secret_type,
        metadata: req.metadata,
        expires_at: req.expires_at,
        max_access_count: req.max_access_count,
    };
    let meta = s.engine.put_secret(&p, vault, &path, input).await?;
    Ok((StatusCode::CREATED, Json(meta.into())))
}

fn render_value(v: strongroom_engine::SecretValue) -> ApiResult<Json<SecretResponse>> {
    // Values enter as JSON strings, so they are UTF-8; anything else is corruption.
    let value = v.value.expose_str().ok_or(Error::Integrity)?.to_owned();
    let m = v.meta;
    Ok(Json(SecretResponse {
        id: m.id.to_string(),
        path: m.path.to_string(),
        secret_type: m.secret_type,
        value,
        version: m.version,
        metadata: m.metadata,
        created_by: m.created_by,
        created_at: m.created_at,
        expires_at: m.expires_at,
        cmek_encrypted: false,
    }))
}

/// Decrypts and returns the latest version.
#[utoipa::path(get, path = "/v1/vaults/{vault_id}/secrets/{path}", tag = "secrets",
    params(("vault_id" = String, Path, format = Uuid), ("path" = String, Path)),
    responses((status = 200, body = SecretResponse), (status = 403, description = "the caller may not do this in this vault"),
        (status = 404, description = "no such vault or secret"),
        (status = 410, description = "the secret is deleted, disabled, expired or over its access count"),
        (status = 500, description = "the stored value failed its integrity check")),
    security(("bearer" = [])))]
pub async fn get_secret(
    State(s): State<AppState>,
    Auth(p): Auth,
    uri: Uri,
) -> ApiResult<Json<SecretResponse>> {
    let (vault, path) = secret_path(&uri)?;
    render_value(s.engine.read_secret(&p, vault, &path, None).await?)
}

/// Soft-deletes every version.
#[utoipa::path(delete, path = "/v1/vaults/{vault_id}/secrets/{path}", tag = "secrets",
    params(("vault_id" = String, Path, format = Uuid), ("path" = String, Path)),
    responses((status = 204), (status = 403, description = "the caller may not do this in this vault"), (status = 404, description = "no such vault or secret"),
        (status = 410, description = "the secret is already deleted")),
    security(("bearer" = [])))]
pub async fn delete_secret(
    State(s): State<AppState>,
    Auth(p): Auth,
    uri: Uri,
) -> ApiResult<StatusCode> {
    let (vault, path) = secret_path(&uri)?;
    s.engine.delete_secret(&p, vault, &path).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?prefix=`.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    prefix: Option<String>,
}

/// Lists live secrets (metadata only).
#[utoipa::path(get, path = "/v1/vaults/{vault_id}/secrets", tag = "secrets",
    params(("vault_id" = String, Path, format = Uuid), ("prefix" = Option<String>, Query)),
    responses((status = 200, body = SecretList), (status = 400, description = "a malformed vault id or prefix"),
        (status = 403, description = "the caller may not do this in this vault"), (status = 404, description = "no such vault in the caller's organisation")),
    security(("bearer" = [])))]
pub async fn list_secrets(
    State(s): State<AppState>,
    Auth(p): Auth,
    uri: Uri,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let (vault, _) = vault_and_tail(&uri)?;
    let list = s
        .engine
        .list_secrets(&p, vault, q.prefix.as_deref())
        .await?;
    Ok(SecretList {
        secrets: list.into_iter().map(Into::into).collect(),
    }
    .into_response())
}

/// Lists every version of a path.
#[utoipa::path(get, path = "/v1/vaults/{vault_id}/secret-versions/{path}", tag = "secrets",
    params(("vault_id" = String, Path, format = Uuid), ("path" = String, Path)),
    responses((status = 200, body = VersionList), (status = 403, description = "the caller may not do this in this vault"), (status = 404, description = "no such vault or secret"),
        (status = 410, description = "the secret is deleted")),
    security(("bearer" = [])))]
pub async fn list_versions(
    State(s): State<AppState>,
    Auth(p): Auth,
    uri: Uri,
) -> ApiResult<Json<VersionList>> {
    let (vault, path) = secret_path(&uri)?;
    let list = s.engine.list_versions(&p, vault, &path).await?;
    Ok(Json(VersionList {
        versions: list.into_iter().map(Into::into).collect(),
    }))
}

/// Decrypts one version.
#[utoipa::path(get, path = "/v1/vaults/{vault_id}/secret-version/{path}/{version}", tag = "secrets",
    params(("vault_id" = String, Path, format = Uuid), ("path" = String, Path), ("version" = u64, Path, minimum = 1, maximum = 4294967295_u64)),
    responses((status = 200, body = SecretResponse), (status = 403, description = "the caller may not do this in this vault"),
        (status = 404, description = "no such vault, secret or version"),
        (status = 410, description = "the version is deleted, disabled, expired or over its access count"),
        (status = 500, description = "the stored value failed its integrity check")),
    security(("bearer" = [])))]
pub async fn get_version(
    State(s): State<AppState>,
    Auth(p): Auth,
    uri: Uri,
) -> ApiResult<Json<SecretResponse>> {
    let (vault, path, n) = path_and_version(&uri)?;
    render_value(s.engine.read_secret(&p, vault, &path, Some(n)).await?)
}

/// Disables one version.
#[utoipa::path(post, path = "/v1/vaults/{vault_id}/secret-version-disable/{path}/{version}", tag = "secrets",
    params(("vault_id" = String, Path, format = Uuid), ("path" = String, Path), ("version" = u64, Path, minimum = 1, maximum = 4294967295_u64)),
    responses((status = 204), (status = 403, description = "the caller may not do this in this vault"), (status = 404, description = "no such vault, secret or version")),
    security(("bearer" = [])))]
pub async fn disable_version(
    State(s): State<AppState>,
    Auth(p): Auth,
    uri: Uri,
) -> ApiResult<StatusCode> {
    let (vault, path, n) = path_and_version(&uri)?;
    s.engine.disable_version(&p, vault, &path, n).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stores a server-generated random version.
#[utoipa::path(post, path = "/v1/vaults/{vault_id}/secret-rotate/{path}", tag = "secrets", request_body = Option<RotateRequest>,
    params(("vault_id" = String, Path, format = Uuid), ("path" = String, Path)),
    responses((status = 201, body = SecretCreatedResponse, links(("GetSecret" = (operation_id = "get_secret", parameters(("vault_id" = "$request.path.vault_id"), ("path" = "$response.body#/path")))), ("GetVersion" = (operation_id = "get_version", parameters(("vault_id" = "$request.path.vault_id"), ("path" = "$response.body#/path"), ("version" = "$response.body#/version")))))), (status = 400, description = "a malformed path, length, charset or type"),
        (status = 409, description = "concurrent writes to the path kept conflicting, or its version numbers are exhausted"),
        (status = 403, description = "the caller may not do this in this vault"), (status = 404, description = "no such vault in the caller's organisation")),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    State(s): State<AppState>,
    Auth(p): Auth,
    uri: Uri,
    OptionalJson(req): OptionalJson<RotateRequest>,
) -> ApiResult<(StatusCode, Json<SecretCreatedResponse>)> {
    let (vault, path) = secret_path(&uri)?;
    let meta = s
        .engine
        .rotate_secret(
            &p,
            vault,
            &path,
            req.length,
            req.charset.as_deref(),
            req.secret_type,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(meta.into())))
}
