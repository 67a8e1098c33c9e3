//! Request and response bodies of the 1claw `/v1` API.

mod listing;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use strongroom_core::{Error, SecretId, SecretPath};
use strongroom_engine::{SecretMeta, User, Vault};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::problem::ApiError;

/// `POST /v1/auth/signup`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"email": "ann@example.com", "password": "Correct-Horse-42!"}))]
pub struct SignupRequest {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The `invite_token` of an invitation for this email: joins the
    /// organisation that sent it.
    #[serde(default)]
    pub invite_token: Option<String>,
}

/// `POST /v1/auth/token`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"email": "owner@example.com", "password": "Correct-Horse-42!"}))]
pub struct LoginRequest {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// A token.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until expiry.
    pub expires_in: u64,
}

/// `POST /v1/auth/signup` answer.
#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    /// A human message.
    pub message: &'static str,
    /// The registered email.
    pub email: String,
    /// The JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until expiry.
    pub expires_in: u64,
}

/// `GET /v1/auth/me`.
#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    /// User id.
    pub id: String,
    /// Email.
    pub email: String,
    /// Display name.
    pub display_name: Option<String>,
    /// `password`.
    pub auth_method: &'static str,
    /// Role in the org.
    pub role: &'static str,
    /// Organisation id.
    pub org_id: String,
    /// Always true (no email verification on a self-hosted server).
    pub email_verified: bool,
    /// Always false.
    pub marketing_emails: bool,
    /// TOTP enrolled.
    pub totp_enabled: bool,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<User> for MeResponse {
    fn from(u: User) -> Self {
        MeResponse {
            id: u.id.to_string(),
            email: u.email,
            display_name: u.display_name,
            auth_method: "password",
            role: u.role.as_str(),
            org_id: u.org_id.to_string(),
            email_verified: true,
            marketing_emails: false,
            totp_enabled: false,
            created_at: u.created_at,
        }
    }
}

/// `POST /v1/vaults`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "production", "description": "the live systems"}))]
pub struct CreateVaultRequest {
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
}

/// A vault.
#[derive(Serialize, ToSchema)]
pub struct VaultResponse {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Organisation.
    pub org_id: String,
    /// Creator's uuid (empty for a vault the server created for itself).
    pub created_by: String,
    /// `user`, `agent`, or `system` for a vault the server created for itself.
    pub created_by_type: &'static str,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Always false: client-side CMEK is not offered.
    pub cmek_enabled: bool,
}

impl From<Vault> for VaultResponse {
    fn from(v: Vault) -> Self {
        VaultResponse {
            id: v.id.to_string(),
            name: v.name,
            description: v.description,
            org_id: v.org_id.to_string(),
            created_by: v.created_by.map(|s| s.id_string()).unwrap_or_default(),
            created_by_type: v.created_by.map_or("system", |s| s.kind()),
            created_at: v.created_at,
            cmek_enabled: false,
        }
    }
}

/// `{vaults: [...]}`.
#[derive(Serialize, ToSchema)]
pub struct VaultList {
    /// The vaults.
    pub vaults: Vec<VaultResponse>,
}

/// `PUT /v1/vaults/{id}/secrets/{path}`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"value": "hunter2", "type": "password", "metadata": {"owner": "db-team"}}))]
pub struct PutSecretRequest {
    /// The value (UTF-8; binary values should be base64-encoded by the client).
    pub value: String,
    /// Type; default `generic`.
    #[serde(default, rename = "type")]
    pub secret_type: Option<String>,
    /// Client metadata (a JSON object).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Expiry (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// Maximum reads of this version.
    #[serde(default)]
    pub max_access_count: Option<i64>,
    /// A JSON object, accepted and ignored (reserved upstream); anything
    /// else is refused when the body is parsed.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub rotation_policy: Option<serde_json::Map<String, Value>>,
}

impl std::fmt::Debug for PutSecretRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PutSecretRequest(<redacted>)")
    }
}

/// `POST /v1/vaults/{id}/secret-rotate/{path}`.
#[derive(Deserialize, ToSchema, Default)]
pub struct RotateRequest {
    /// 8..=1024, default 32.
    #[serde(default)]
    #[schema(minimum = 8, maximum = 1024)]
    pub length: Option<u32>,
    /// `hex` (default), `base64`, `alphanumeric`, `ascii`.
    #[serde(default)]
    pub charset: Option<String>,
    /// Type of the new version.
    #[serde(default, rename = "type")]
    pub secret_type: Option<String>,
}

/// A secret's metadata after a write (never the value).
#[derive(Serialize, ToSchema)]
pub struct SecretCreatedResponse {
    /// Secret id.
    pub id: String,
    /// Path.
    pub path: String,
    /// Type.
    #[serde(rename = "type")]
    pub secret_type: String,
    /// The new version.
    pub version: u32,
    /// Metadata.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
}

impl From<SecretMeta> for SecretCreatedResponse {
    fn from(m: SecretMeta) -> Self {
        SecretCreatedResponse {
            id: m.id.to_string(),
            path: m.path.to_string(),
            secret_type: m.secret_type,
            version: m.version,
            metadata: m.metadata,
            created_at: m.created_at,
            expires_at: m.expires_at,
        }
    }
}

/// A secret with its value.
#[derive(Serialize, ToSchema)]
pub struct SecretResponse {
    /// Secret id.
    pub id: String,
    /// Path.
    pub path: String,
    /// Type.
    #[serde(rename = "type")]
    pub secret_type: String,
    /// The decrypted value.
    pub value: String,
    /// Version.
    pub version: u32,
    /// Metadata.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// `user:<id>` or `agent:<id>`.
    pub created_by: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// Always false.
    pub cmek_encrypted: bool,
}

impl std::fmt::Debug for SecretResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretResponse(<redacted>)")
    }
}

/// A secret's metadata in a listing.
#[derive(Serialize, ToSchema)]
pub struct SecretMetadataResponse {
    /// Secret id.
    #[schema(value_type = String)]
    pub id: SecretId,
    /// Path.
    #[schema(value_type = String)]
    pub path: SecretPath,
    /// Type.
    #[serde(rename = "type")]
    pub secret_type: String,
    /// Version.
    pub version: u32,
    /// Metadata.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// Whether this version is disabled.
    pub is_disabled: bool,
    /// Author.
    pub created_by: String,
}

impl From<SecretMeta> for SecretMetadataResponse {
    fn from(m: SecretMeta) -> Self {
        SecretMetadataResponse {
            id: m.id,
            path: m.path,
            secret_type: m.secret_type,
            version: m.version,
            metadata: m.metadata,
            created_at: m.created_at,
            expires_at: m.expires_at,
            is_disabled: m.disabled,
            created_by: m.created_by,
        }
    }
}

/// `{secrets: [...]}`.
#[derive(Serialize, ToSchema)]
pub struct SecretList {
    /// The secrets.
    pub secrets: Vec<SecretMetadataResponse>,
}

impl SecretList {
    /// About what one entry takes serialized, path aside (ids, type, times,
    /// author, the keys): enough that a listing is written without regrowing
    /// its buffer.
    const ENTRY_BYTES: usize = 256;

    /// The response: the JSON of the derived `Serialize`, written by
    /// [`listing`] into a buffer reserved up front (a listing of a thousand
    /// secrets is about 250 KiB, which `axum::Json` would reach by doubling
    /// from 128 bytes, copying it each time).
    pub fn into_response(self) -> Response {
        let capacity = self
            .secrets
            .iter()
            .map(|s| Self::ENTRY_BYTES + s.path.as_str().len())
            .sum::<usize>()
            + 16;
        let mut body = Vec::with_capacity(capacity);
        match listing::write_list(&self, &mut body) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(_) => ApiError::from(Error::internal("a secret listing failed to serialize"))
                .into_response(),
        }
    }
}

/// `{versions: [...]}`.
#[derive(Serialize, ToSchema)]
pub struct VersionList {
    /// The versions, oldest first.
    pub versions: Vec<SecretMetadataResponse>,
}

/// `GET /v1/health`.
#[derive(Serialize, ToSchema)]
pub struct HealthResponse {
    /// `healthy`, `degraded` (the key provider is not healthy) or
    /// `unavailable` (the database does not answer: the answer is a `503`).
    pub status: &'static str,
    /// Server version.
    pub version: &'static str,
    /// `ok` or `unavailable`.
    pub database: &'static str,
}

/// `GET /v1/health/hsm`.
#[derive(Serialize, ToSchema)]
pub struct HsmHealthResponse {
    /// `ok`, `degraded` or `unavailable`.
    pub status: &'static str,
    /// The key provider in use.
    pub provider: &'static str,
}

/// `GET /v1/auth/jwt-public-key`.
#[derive(Serialize, ToSchema)]
pub struct JwtPublicKeyResponse {
    /// `EdDSA`.
    pub alg: &'static str,
    /// Standard base64 of the 32-byte Ed25519 key.
    pub public_key_base64: String,
    /// Key id.
    pub kid: String,
}

/// A JSON Web Key Set.
#[derive(Serialize, ToSchema)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// One OKP (Ed25519) JSON Web Key.
#[derive(Serialize, ToSchema)]
pub struct Jwk {
    /// `OKP`.
    pub kty: &'static str,
    /// `Ed25519`.
    pub crv: &'static str,
    /// Base64url public key.
    pub x: String,
    /// Key id.
    pub kid: String,
    /// `EdDSA`.
    pub alg: &'static str,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: &'static str,
}
