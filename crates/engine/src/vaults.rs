//! Vault use cases.

use serde_json::json;
use strongroom_core::audit::{AuditAction, AuditRecord, AuditResource};
use strongroom_core::authz::{self, Action, VaultKind};
use strongroom_core::time_util::now;
use strongroom_core::{Error, Principal, Result, VaultId};
use strongroom_store::VaultRow;

use crate::views::Vault;
use crate::{Engine, validate};

/// Vault names with this prefix belong to the server (`__agent-keys`).
pub const RESERVED_VAULT_PREFIX: &str = "__";

impl Engine {
    /// Creates a vault and its KEK inside the key provider. No description
    /// is an empty one.
    pub async fn create_vault(
        &self,
        who: &Principal,
        name: &str,
        description: Option<&str>,
    ) -> Result<Vault> {
        let name = validate::name("name", name, 255)?;
        if name.starts_with(RESERVED_VAULT_PREFIX) {
            return Err(Error::invalid(format!(
                "vault names starting with {RESERVED_VAULT_PREFIX} are reserved for the server"
            )));
        }
        let description = validate::text("description", description.unwrap_or(""), 2000)?;
        self.insert_vault(who, name, description, VaultKind::Standard)
            .await
            .map(Vault::from)
    }

    /// Creates a vault of `kind` and its KEK: a standard vault is created by
    /// `who`, any other kind by the server (no creator), on `who`'s request.
    pub(crate) async fn insert_vault(
        &self,
        who: &Principal,
        name: String,
        description: String,
        kind: VaultKind,
    ) -> Result<VaultRow> {
        let id = VaultId::new();
        let kek = self.kms.create_kek(&id).await?;
        let vault = VaultRow {
            id,
            org_id: who.org_id,
            name,
            description,
            kek_ref: kek.clone(),
            kek_version: 1,
            kek_provider: self.kms.name().to_owned(),
            pending_kek_ref: None,
            created_by: (kind == VaultKind::Standard).then_some(who.subject),
            kind,
            created_at: now(),
        };
        let audit = AuditRecord::by(who, AuditAction::VaultCreate, AuditResource::Vault(id))
            .with_details(json!({"vault_id": id.to_string(), "key_provider": self.kms.name(), "kind": kind.as_str()}));
        if let Err(e) = self.store.create_vault(&vault, &audit).await {
            // Don't leave an orphan key behind.
            if let Err(d) = self.kms.destroy_kek(&kek).await {
                tracing::warn!(error = %d, "could not destroy the KEK of a vault that failed to save");
            }
            return Err(e.into());
        }
        Ok(vault)
    }

    /// The vaults the caller may see.
    pub async fn list_vaults(&self, who: &Principal) -> Result<Vec<Vault>> {
        let now = strongroom_core::time_util::now();
        let mut out = vec![];
        for v in self.store.list_vaults(who.org_id).await? {
            let policies = self.policies_of(who, &v).await?;
            if authz::authorize(
                who,
                &crate::facts(&v),
                Action::ViewVault,
                None,
                &policies,
                now,
            )
            .is_ok()
            {
                out.push(v.into());
            }
        }
        Ok(out)
    }

    /// One vault.
    pub async fn get_vault(&self, who: &Principal, id: VaultId) -> Result<Vault> {
        Ok(self
            .vault_for(who, id, Action::ViewVault, None)
            .await?
            .0
            .into())
    }

    /// Deletes a vault, its secrets and (crypto-shredding) its KEK.
    pub async fn delete_vault(&self, who: &Principal, id: VaultId) -> Result<()> {
        let (vault, decision) = self.vault_for(who, id, Action::DeleteVault, None).await?;
        let audit = AuditRecord::by(who, AuditAction::VaultDelete, AuditResource::Vault(id))
            .with_details(json!({"vault_id": id.to_string(), "decision": decision.as_str(), "policy_id": decision.policy_id().map(|i| i.to_string())}));
        if !self.store.delete_vault(id, &audit).await? {
            return Err(Error::not_found("vault not found"));
        }
        // The rows are gone; destroying the KEK makes any copy of them useless.
        if let Err(e) = self.kms.destroy_kek(&vault.kek_ref).await {
            tracing::error!(error = %strongroom_core::Chain(&e), vault_id = %id, "vault deleted but its KEK could not be destroyed");
        }
        Ok(())
    }
}
