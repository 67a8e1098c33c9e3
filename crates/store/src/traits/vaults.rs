//! [`VaultKeyStore`]: vaults, the KEK each is under, and the wrapped DEKs
//! that key rotation and migration rewrap.

use async_trait::async_trait;
use strongroom_core::audit::AuditRecord;
use strongroom_core::{OrgId, VaultId};

use crate::{StoreResult, VaultKind, VaultRow, WrapChange, WrapRow};

/// Vaults and their keys. Never a ciphertext: rewrapping moves wrapped DEKs only.
#[async_trait]
pub trait VaultKeyStore: Send + Sync + 'static {
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
}
