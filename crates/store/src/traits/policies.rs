//! [`PolicyStore`]: the access policies of vaults.

use async_trait::async_trait;
use strongroom_core::audit::AuditRecord;
use strongroom_core::policy::Policy;
use strongroom_core::{PolicyId, Subject, VaultId};

use crate::{PolicyRow, StoreResult};

/// Vault policies: what a principal may do on which paths.
#[async_trait]
pub trait PolicyStore: Send + Sync + 'static {
    /// Stores a new policy.
    async fn create_policy(&self, p: &PolicyRow, audit: &AuditRecord) -> StoreResult<()>;
    /// A policy by id.
    async fn policy(&self, id: PolicyId) -> StoreResult<Option<PolicyRow>>;
    /// A vault's policies, oldest first.
    async fn list_policies(&self, vault: VaultId) -> StoreResult<Vec<PolicyRow>>;
    /// The policies of a vault that name a principal (the hot path of authorization).
    async fn policies_for(&self, vault: VaultId, principal: &Subject) -> StoreResult<Vec<Policy>>;
    /// Replaces a policy's mutable fields (permissions, conditions, expiry, effect, priority, extra).
    async fn update_policy(&self, p: &PolicyRow, audit: &AuditRecord) -> StoreResult<bool>;
    /// Deletes a policy. False if it did not exist.
    async fn delete_policy(&self, id: PolicyId, audit: &AuditRecord) -> StoreResult<bool>;
}
