//! Persistence. The [`Store`] trait is what the engine needs from a database;
//! [`sqlite::SqliteStore`] is the embedded default. Every back-end passes the same
//! conformance suite (`tests/conformance`).
//!
//! Design rules that keep back-ends interchangeable:
//! - every mutation is one trait call that runs in one transaction together with
//!   its audit record, so "changed but not audited" can't happen;
//! - new versions are allocated with a compare-and-set on the secret's head, so
//!   concurrent writers never lose or duplicate a version;
//! - the store never sees a plaintext or a DEK: it moves ciphertext, IVs, tags
//!   and wrapped DEKs as opaque bytes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod model;
pub mod sqlite;

use async_trait::async_trait;
use strongroom_core::audit::{AuditRecord, ChainedEvent, Checkpoint};
use strongroom_core::{AgentId, OrgId, Role, SecretId, SecretPath, Subject, UserId, VaultId};

pub use model::*;

/// True when this is a benchmark build with `STRONGROOM_BENCH_UNAUDITED=1` set:
/// audit records are then not written. The cargo feature `bench-unaudited`
/// exists only so the benchmark can measure the audit log's cost against a run
/// without it; release builds never enable it, and even a build that does
/// audits unless the variable is also set.
#[cfg(feature = "bench-unaudited")]
pub fn bench_unaudited() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("STRONGROOM_BENCH_UNAUDITED").as_deref() == Ok("1"))
}

/// Errors from a store.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness rule or a compare-and-set failed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database can't be reached, is locked, read-only or full.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Stored data is malformed.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A rule of the schema (a foreign key, `NOT NULL`, `CHECK`) refused the
    /// change: the data it refers to changed meanwhile, or a bug. Never an
    /// outage.
    #[error("constraint violated: {0}")]
    Constraint(String),
}

impl From<StoreError> for strongroom_core::Error {
    fn from(e: StoreError) -> Self {
        use strongroom_core::Error;
        match e {
            StoreError::Conflict(m) => Error::Conflict(m),
            StoreError::Unavailable(m) => {
                tracing::error!(error = %m, "database unavailable");
                Error::Unavailable("the database is unavailable".into())
            }
            StoreError::Corrupt(m) => Error::Internal(format!("corrupt row: {m}")),
            StoreError::Constraint(m) => {
                tracing::warn!(error = %m, "a change was refused by a database constraint");
                Error::Conflict(
                    "the change conflicts with the current state of related data".into(),
                )
            }
        }
    }
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Whether a signup may create an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupGate {
    /// Only when no user exists yet (the first signup bootstraps the server).
    FirstOnly,
    /// Always.
    Open,
}

/// What the engine needs from a database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
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

    /// Stores a new vault.
    async fn create_vault(&self, vault: &VaultRow, audit: &AuditRecord) -> StoreResult<()>;
    /// A vault by id.
    async fn vault(&self, id: VaultId) -> StoreResult<Option<VaultRow>>;
    /// The organisation's vault of `kind` (at most one exists for a kind other
    /// than [`VaultKind::Standard`]: a second `create_vault` of it is `Conflict`).
    async fn system_vault(&self, org: OrgId, kind: VaultKind) -> StoreResult<Option<VaultRow>>;
    /// An organisation's vaults, oldest first.
    async fn list_vaults(&self, org: OrgId) -> StoreResult<Vec<VaultRow>>;
    /// Deletes a vault with everything that names it (its secrets, versions
    /// and policies) in one transaction. False if it did not exist.
    async fn delete_vault(&self, id: VaultId, audit: &AuditRecord) -> StoreResult<bool>;

    /// Every vault of every organisation (for key migration).
    async fn all_vaults(&self) -> StoreResult<Vec<VaultRow>>;
    /// Records a vault's current KEK (after rotation or migration), with an audit record.
    async fn set_vault_kek(&self, vault: &VaultRow, audit: Option<&AuditRecord>)
    -> StoreResult<()>;
    /// Wrapped DEKs of a vault that are not under `(kek_ref, kek_version)`, at most `limit`.
    async fn stale_wraps(
        &self,
        vault: VaultId,
        kek_ref: &str,
        kek_version: u32,
        limit: u32,
    ) -> StoreResult<Vec<WrapRow>>;
    /// How many wrapped DEKs of a vault are not under `(kek_ref, kek_version)`.
    async fn count_stale_wraps(
        &self,
        vault: VaultId,
        kek_ref: &str,
        kek_version: u32,
    ) -> StoreResult<u64>;
    /// Replaces wrapped DEKs, with the audit record of the change, in one
    /// transaction: every row still as read (compare-and-set on its KEK
    /// reference, version and wrapped DEK) is replaced, or — if any changed
    /// meanwhile — none is, and the answer is `Conflict`. Never touches a
    /// ciphertext.
    async fn replace_wraps(
        &self,
        changes: &[WrapChange],
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()>;

    /// The head of a path's version chain, deleted or not.
    async fn secret_head(
        &self,
        vault: VaultId,
        path: &SecretPath,
    ) -> StoreResult<Option<SecretHead>>;
    /// Appends a version if the head is still at `expected_latest` (0: the path
    /// has no secret yet). A lost race is `Conflict`. On a deleted secret the
    /// new version is live (the path is listed again) but the deleted versions
    /// stay deleted.
    async fn insert_version(&self, v: &NewSecretVersion, audit: &AuditRecord) -> StoreResult<()>;
    /// One version of a path (the latest when `version` is `None`).
    async fn version(
        &self,
        vault: VaultId,
        path: &SecretPath,
        version: Option<u32>,
    ) -> StoreResult<Option<VersionRow>>;
    /// Counts a read of a version and stores its audit record, atomically.
    /// Returns false, and changes nothing, if the access limit is already reached.
    async fn record_read(
        &self,
        secret: SecretId,
        version: u32,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    /// The latest version of every live secret whose path starts with `prefix`.
    async fn list_secrets(&self, vault: VaultId, prefix: &str) -> StoreResult<Vec<SecretMeta>>;
    /// Every version of a path that is not deleted, oldest first.
    async fn list_versions(&self, secret: SecretId) -> StoreResult<Vec<SecretMeta>>;
    /// Disables one version. False if there is no such version.
    async fn disable_version(
        &self,
        secret: SecretId,
        version: u32,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    /// Soft-deletes a secret: every version it has now is deleted for good
    /// (see [`VersionRow::deleted`]).
    async fn delete_secret(&self, secret: SecretId, audit: &AuditRecord) -> StoreResult<()>;

    /// Appends an audit record on its own (for events that change nothing).
    async fn append_audit(&self, audit: &AuditRecord) -> StoreResult<()>;
    /// Events of one organisation matching a query, newest first, and how many
    /// match in all.
    async fn audit_query(&self, q: &AuditQuery) -> StoreResult<(Vec<ChainedEvent>, u64)>;
    /// A stretch of one chain in order: events with `seq >= from_seq`, at most `limit`.
    async fn audit_chain(
        &self,
        org: &str,
        from_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedEvent>>;
    /// The head of every chain (one per organisation that has events).
    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>>;
    /// Every organisation that has, or should have, a chain: those with events,
    /// with checkpoints (whose events may all have been deleted), or with an
    /// organisation row. Sorted.
    async fn audit_orgs(&self) -> StoreResult<Vec<String>>;
    /// How many audit events this store handle has committed since it was
    /// opened (a cheap counter: the checkpointer polls it to sign a
    /// checkpoint every N events).
    fn audit_appended(&self) -> u64;
    /// Stores a signed checkpoint.
    async fn insert_checkpoint(&self, cp: &Checkpoint) -> StoreResult<()>;
    /// An organisation's checkpoints, oldest first.
    async fn checkpoints(&self, org: &str) -> StoreResult<Vec<Checkpoint>>;
    /// An organisation's newest checkpoint.
    async fn latest_checkpoint(&self, org: &str) -> StoreResult<Option<Checkpoint>>;

    // --- identities -------------------------------------------------------

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
        id: uuid::Uuid,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;

    /// Stores a new policy.
    async fn create_policy(&self, p: &PolicyRow, audit: &AuditRecord) -> StoreResult<()>;
    /// A policy by id.
    async fn policy(&self, id: uuid::Uuid) -> StoreResult<Option<PolicyRow>>;
    /// A vault's policies, oldest first.
    async fn list_policies(&self, vault: VaultId) -> StoreResult<Vec<PolicyRow>>;
    /// The policies of a vault that name a principal (the hot path of authorization).
    async fn policies_for(
        &self,
        vault: VaultId,
        principal: &Subject,
    ) -> StoreResult<Vec<strongroom_core::policy::Policy>>;
    /// Replaces a policy's mutable fields (permissions, conditions, expiry, effect, priority, extra).
    async fn update_policy(&self, p: &PolicyRow, audit: &AuditRecord) -> StoreResult<bool>;
    /// Deletes a policy. False if it did not exist.
    async fn delete_policy(&self, id: uuid::Uuid, audit: &AuditRecord) -> StoreResult<bool>;

    /// A server-wide setting.
    async fn setting(&self, name: &str) -> StoreResult<Option<String>>;
    /// Stores a setting, replacing any value.
    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()>;
    /// Stores a setting unless one exists; returns the value in force.
    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<String>;

    /// Whether the database answers.
    async fn health(&self) -> StoreResult<()>;
}
