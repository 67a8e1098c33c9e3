//! The organisation: members, roles, invitations, the agent-keys vault.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use strongroom_core::UserId;
use strongroom_engine::User;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::{ApiJson, Auth};
use crate::problem::ApiResult;
use crate::routes::parse_id;

/// An organisation member.
#[derive(Serialize, ToSchema)]
pub struct MemberResponse {
    id: String,
    email: String,
    display_name: Option<String>,
    role: &'static str,
    auth_method: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
}

impl From<User> for MemberResponse {
    fn from(u: User) -> Self {
        MemberResponse {
            id: u.id.to_string(),
            email: u.email,
            display_name: u.display_name,
            role: u.role.as_str(),
            auth_method: "password",
            created_at: u.created_at,
        }
    }
}

/// `{members: [...]}`.
#[derive(Serialize, ToSchema)]
pub struct MemberList {
    members: Vec<MemberResponse>,
}

/// The organisation's members.
#[utoipa::path(get, path = "/v1/org/members", tag = "org", responses((status = 200, body = MemberList), (status = 403, description = "the caller's role may not do this")), security(("bearer" = [])))]
pub async fn list_members(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<Json<MemberList>> {
    Ok(Json(MemberList {
        members: s
            .engine
            .list_members(&p)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

/// `POST /v1/org/invite`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"email": "bob@example.com", "role": "member"}))]
pub struct InviteRequest {
    email: String,
    #[serde(default)]
    role: Option<String>,
}

/// `{message, email, role, invite_token, expires_at}`: 1claw's fields and the
/// token the invitee signs up with (shown once).
#[derive(Serialize, ToSchema)]
pub struct InviteResponse {
    message: &'static str,
    email: String,
    role: &'static str,
    /// Pass as `invite_token` to `POST /v1/auth/signup`; single use.
    invite_token: String,
    /// After this the token no longer joins.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: time::OffsetDateTime,
}

/// Invites an email address to the organisation: signing up with it and the
/// returned `invite_token` joins. The answer is the same whether or not the
/// email has an account.
#[utoipa::path(post, path = "/v1/org/invite", tag = "org", request_body = InviteRequest,
    responses(
        (status = 201, body = InviteResponse, links(("SignupInvited" = (operation_id = "signup", request_body = json!({"email": "$response.body#/email", "password": "Correct-Horse-42!", "invite_token": "$response.body#/invite_token"}))))),
        (status = 400, description = "malformed body, email or role", body = crate::problem::Problem),
        (status = 403, description = "not an owner or admin, or an admin inviting an owner", body = crate::problem::Problem)),
    security(("bearer" = [])))]
pub async fn invite(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(req): ApiJson<InviteRequest>,
) -> ApiResult<(StatusCode, Json<InviteResponse>)> {
    let inv = s.engine.invite(&p, &req.email, req.role.as_deref()).await?;
    Ok((
        StatusCode::CREATED,
        Json(InviteResponse {
            message: "invitation recorded: sign up with this email and the invite_token to join",
            email: inv.invitation.email,
            role: inv.invitation.role.as_str(),
            invite_token: inv.token.to_string(),
            expires_at: inv.invitation.expires_at,
        }),
    ))
}

/// `PATCH /v1/org/members/{id}`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"role": "admin"}))]
pub struct RoleRequest {
    role: String,
}

/// Changes a member's role.
#[utoipa::path(patch, path = "/v1/org/members/{user_id}", tag = "org", request_body = RoleRequest, params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, body = MemberResponse), (status = 400, description = "a malformed user id or role"), (status = 403, description = "the caller's role may not do this"), (status = 404, description = "no such member of the caller's organisation"),
        (status = 409, description = "the change would leave the organisation without an owner")),
    security(("bearer" = [])))]
pub async fn update_member(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RoleRequest>,
) -> ApiResult<Json<MemberResponse>> {
    Ok(Json(
        s.engine
            .set_member_role(&p, parse_id::<UserId>(&id, "user id")?, &req.role)
            .await?
            .into(),
    ))
}

/// Removes a member.
#[utoipa::path(delete, path = "/v1/org/members/{user_id}", tag = "org", params(("user_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, description = "the caller's role may not do this"), (status = 404, description = "no such member of the caller's organisation"),
        (status = 409, description = "the change would leave the organisation without an owner")), security(("bearer" = [])))]
pub async fn remove_member(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine
        .remove_member(&p, parse_id::<UserId>(&id, "user id")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/org/agent-keys-vault`.
#[derive(Serialize, ToSchema)]
pub struct AgentKeysVault {
    vault_id: String,
}

/// The vault holding the organisation's agent identity keys.
#[utoipa::path(get, path = "/v1/org/agent-keys-vault", tag = "agents", responses((status = 200, body = AgentKeysVault), (status = 403, description = "the caller's role may not do this"),
        (status = 404, description = "no agent has been created yet, so there is no such vault")), security(("bearer" = [])))]
pub async fn agent_keys_vault(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<AgentKeysVault>> {
    let id = s.engine.agent_keys_vault_id(&p).await?;
    Ok(Json(AgentKeysVault {
        vault_id: id.to_string(),
    }))
}
