//! [`IdentityStore`]: organisations, users, invitations, agents, personal API
//! keys, and what a token's principal looks like now (status, revocation).

use async_trait::async_trait;
use strongroom_core::audit::AuditRecord;
use strongroom_core::{AgentId, ApiKeyId, OrgId, Role, Subject, UserId};

use crate::{AgentRow, ApiKeyRow, InvitationRow, OrgRow, PrincipalStatus, StoreResult, UserRow};

/// Whether a signup may create an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupGate {
    /// Only when no user exists yet (the first signup bootstraps the server).
    FirstOnly,
    /// Always.
    Open,
}

/// Who exists: organisations and the principals in them.
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// Creates an organisation and its owner. With [`SignupGate::FirstOnly`],
    /// fails with `Conflict` if any user exists (checked in the same transaction).
    /// A taken email is also `Conflict`.
    async fn create_org_with_owner(
        &self,
        org: &OrgRow,
        owner: &UserRow,
        gate: SignupGate,
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    /// A user by (lower-cased) email.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>>;
    /// A user by id.
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRow>>;

    /// Joins `user.org_id` through its pending invitation for `user.email`,
    /// proven by the token's HMAC `token_hash`; the invitation is consumed in
    /// the same transaction. `Conflict` (and nothing changes) if that
    /// organisation has no such invitation, the hash or the role differ, it
    /// has expired, or the email is taken.
    async fn accept_invitation(
        &self,
        user: &UserRow,
        token_hash: &[u8],
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    /// The pending invitations for an email, one per inviting organisation,
    /// expired ones included, oldest first.
    async fn invitations(&self, email: &str) -> StoreResult<Vec<InvitationRow>>;
    /// Creates or replaces the inviting organisation's invitation for an
    /// email (a new token replaces the old one); other organisations'
    /// invitations for the email are untouched. Recorded whether or not the
    /// email has an account (it can't be accepted while it does). Expired
    /// invitations may be pruned on the way.
    async fn put_invitation(&self, inv: &InvitationRow, audit: &AuditRecord) -> StoreResult<()>;
    /// An organisation's users, oldest first.
    async fn list_users(&self, org: OrgId) -> StoreResult<Vec<UserRow>>;
    /// Changes a user's role. `Conflict` if it would leave the org without an owner.
    async fn set_user_role(
        &self,
        user: UserId,
        role: Role,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    /// Removes a user with their API keys and policies. `Conflict` if it would
    /// leave the org without an owner.
    async fn delete_user(&self, user: UserId, audit: &AuditRecord) -> StoreResult<bool>;
    /// The current state of a token's principal (see [`PrincipalStatus`]).
    async fn principal_status(
        &self,
        org: OrgId,
        subject: &Subject,
        jti: Option<&str>,
    ) -> StoreResult<PrincipalStatus>;
    /// Puts a token id on the deny list until `expires_at` (and prunes expired entries).
    async fn revoke_token(
        &self,
        jti: &str,
        expires_at: time::OffsetDateTime,
        audit: &AuditRecord,
    ) -> StoreResult<()>;

    /// Stores a new agent.
    async fn create_agent(&self, agent: &AgentRow, audit: &AuditRecord) -> StoreResult<()>;
    /// An agent by id.
    async fn agent(&self, id: AgentId) -> StoreResult<Option<AgentRow>>;
    /// An agent by the lookup prefix of its key.
    async fn agent_by_key_prefix(&self, prefix: &str) -> StoreResult<Option<AgentRow>>;
    /// An organisation's agents, oldest first.
    async fn list_agents(&self, org: OrgId) -> StoreResult<Vec<AgentRow>>;
    /// Replaces an agent's mutable fields (everything but id, org, auth method, creator, creation time).
    async fn update_agent(&self, agent: &AgentRow, audit: &AuditRecord) -> StoreResult<bool>;

    /// Stores a new personal API key.
    async fn create_api_key(&self, key: &ApiKeyRow, audit: &AuditRecord) -> StoreResult<()>;
    /// A personal API key by lookup prefix.
    async fn api_key_by_prefix(&self, prefix: &str) -> StoreResult<Option<ApiKeyRow>>;
    /// A user's API keys, oldest first.
    async fn list_api_keys(&self, user: UserId) -> StoreResult<Vec<ApiKeyRow>>;
    /// Deactivates a user's API key. False if the user has no such key.
    async fn revoke_api_key(
        &self,
        user: UserId,
        id: ApiKeyId,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
}
