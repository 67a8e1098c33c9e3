//! Sign-up, login, token exchange and revocation, profile, and the published
//! verification key.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use strongroom_engine::SignupInput;
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{ApiJson, Auth, ClientIp};
use crate::problem::ApiResult;
use crate::wire::*;

/// Creates an account: with an `invite_token`, in the organisation that sent
/// it; otherwise (if sign-up is open, or for the first account) in an
/// organisation of its own. A wrong, expired or used token is no invitation.
#[utoipa::path(post, path = "/v1/auth/signup", tag = "auth", request_body = SignupRequest, responses(
    (status = 201, body = SignupResponse),
    (status = 400, description = "malformed body, email or weak password", body = crate::problem::Problem),
    (status = 403, description = "sign-up is closed or the email is taken", body = crate::problem::Problem),
    (status = 429, description = "rate limited", body = crate::problem::Problem)))]
pub async fn signup(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<SignupRequest>,
) -> ApiResult<(StatusCode, Json<SignupResponse>)> {
    let out = s
        .engine
        .signup(
            SignupInput {
                email: req.email,
                password: req.password,
                display_name: req.display_name,
                invite_token: req.invite_token,
            },
            ip,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse {
            message: "account created",
            email: out.user.email,
            access_token: out.token.token,
            token_type: "Bearer",
            expires_in: out.token.expires_in,
        }),
    ))
}

/// Email and password login.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, body = TokenResponse), (status = 401, description = "wrong email or password")))]
pub async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let out = s.engine.login(&req.email, &req.password, ip).await?;
    Ok(Json(TokenResponse {
        access_token: out.token.token,
        token_type: "Bearer",
        expires_in: out.token.expires_in,
    }))
}

/// The caller's profile.
#[utoipa::path(get, path = "/v1/auth/me", tag = "auth", responses((status = 200, body = MeResponse), (status = 403, description = "the caller is an agent")), security(("bearer" = [])))]
pub async fn me(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<MeResponse>> {
    Ok(Json(s.engine.me(&p).await?.into()))
}

/// The Ed25519 key that verifies every token.
#[utoipa::path(get, path = "/v1/auth/jwt-public-key", tag = "auth", responses((status = 200, body = JwtPublicKeyResponse)))]
pub async fn jwt_public_key(State(s): State<AppState>) -> Json<JwtPublicKeyResponse> {
    let k = s.engine.jwt_public_key();
    Json(JwtPublicKeyResponse {
        alg: "EdDSA",
        public_key_base64: base64::engine::general_purpose::STANDARD.encode(k.ed25519),
        kid: k.kid,
    })
}

/// The same key as a JWKS.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, body = Jwks)))]
pub async fn jwks(State(s): State<AppState>) -> Json<Jwks> {
    let k = s.engine.jwt_public_key();
    Json(Jwks {
        keys: vec![Jwk {
            kty: "OKP",
            crv: "Ed25519",
            x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k.ed25519),
            kid: k.kid,
            alg: "EdDSA",
            use_: "sig",
        }],
    })
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
    responses((status = 200, body = AgentTokenResponse), (status = 401, description = "a wrong, expired or rotated key, or an inactive agent")))]
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
    responses((status = 200, body = TokenResponse), (status = 401, description = "a wrong, expired or revoked key")))]
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

/// Revokes the presented token.
#[utoipa::path(delete, path = "/v1/auth/token", tag = "auth", responses((status = 204), (status = 400, description = "the credential is an API key, not a token: delete the key to revoke it")),
    security(("bearer" = [])))]
pub async fn revoke_token(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<StatusCode> {
    s.engine.revoke_token(&p).await?;
    Ok(StatusCode::NO_CONTENT)
}
