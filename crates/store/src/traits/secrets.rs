//! [`SecretStore`]: secret heads and versions, reads, listing, disable and delete.

use async_trait::async_trait;
use strongroom_core::audit::AuditRecord;
use strongroom_core::{SecretId, SecretPath, VaultId};

use crate::{NewSecretVersion, SecretHead, SecretMeta, StoreResult, VersionRow};

/// Secrets and their versions. A version is allocated with a compare-and-set
/// on the secret's head, so concurrent writers never lose or duplicate one.
#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
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
}
