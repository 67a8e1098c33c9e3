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
use strongroom_core::{OrgId, SecretId, SecretPath, UserId, VaultId};

pub use model::*;

/// Errors from a store.
#[derive(Debug, thiserror::Error)]
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
    /// An organisation's vaults, oldest first.
    async fn list_vaults(&self, org: OrgId) -> StoreResult<Vec<VaultRow>>;
    /// Deletes a vault with all its secrets and versions. False if it did not exist.
    async fn delete_vault(&self, id: VaultId, audit: &AuditRecord) -> StoreResult<bool>;

    /// The head of a path's version chain, deleted or not.
    async fn secret_head(
        &self,
        vault: VaultId,
        path: &SecretPath,
    ) -> StoreResult<Option<SecretHead>>;
    /// Appends a version if the head is still at `expected_latest` (0: the path
    /// has no secret yet). A lost race is `Conflict`. Undeletes a deleted secret.
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
    /// Every version of a path, oldest first.
    async fn list_versions(&self, secret: SecretId) -> StoreResult<Vec<SecretMeta>>;
    /// Disables one version. False if there is no such version.
    async fn disable_version(
        &self,
        secret: SecretId,
        version: u32,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    /// Soft-deletes a secret (every version).
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
    /// Stores a signed checkpoint.
    async fn insert_checkpoint(&self, cp: &Checkpoint) -> StoreResult<()>;
    /// An organisation's checkpoints, oldest first.
    async fn checkpoints(&self, org: &str) -> StoreResult<Vec<Checkpoint>>;

    /// Whether the database answers.
    async fn health(&self) -> StoreResult<()>;
}
