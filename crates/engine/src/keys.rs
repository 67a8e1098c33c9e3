//! Key lifecycle: KEK rotation, rewrapping stored DEKs under the newest KEK
//! version, and migrating every vault's KEK to another key provider.
//!
//! None of these ever touch a ciphertext: a DEK is unwrapped with the KEK that
//! wrapped it and wrapped again under the new KEK with the same context AAD,
//! and the rows' wrapped DEKs are replaced with a compare-and-set, a batch at
//! a time in one transaction with its audit record. Work lists are
//! derived from the rows themselves ("every wrap not under the vault's current
//! KEK"), so an interrupted rewrap or migration simply resumes where it stopped.

use serde_json::json;
use strongroom_core::audit::{AuditAction, AuditRecord, AuditResource};
use strongroom_core::authz::Action;
use strongroom_core::{Error, Principal, Result, VaultId};
use strongroom_crypto::SecretContext;
use strongroom_kms::{KekRef, KeyProvider};
use strongroom_store::{Store, VaultRow, WrapChange, WrapRow};

use crate::Engine;
use crate::envelope::{StoredWrap, rewrap_between};

/// DEKs rewrapped by one step when the caller names no batch size.
pub const REWRAP_BATCH_DEFAULT: u32 = 200;
/// The most DEKs one rewrap step takes on.
pub const REWRAP_BATCH_MAX: u32 = 1000;

/// Progress of a rewrap or migration step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RewrapProgress {
    /// Wrapped DEKs replaced by this step.
    pub rewrapped: u64,
    /// Wrapped DEKs still not under the current KEK.
    pub remaining: u64,
    /// The KEK version new wraps use.
    pub kek_version: u32,
}

/// The same DEK as `w`, unwrapped with `source` and wrapped anew under
/// `(target_ref, target)` with the same context AAD. Changes nothing stored.
async fn rewrapped(
    source: &dyn KeyProvider,
    target: &dyn KeyProvider,
    target_ref: &KekRef,
    w: WrapRow,
) -> Result<WrapChange> {
    let ctx = SecretContext {
        vault: w.vault_id,
        path: &w.path,
        version: w.version,
    };
    let new = rewrap_between(source, target, &ctx, &StoredWrap::of_row(&w), target_ref).await?;
    Ok(WrapChange {
        old: w,
        kek_ref: new.kek_ref,
        kek_version: new.wrapped.kek_version,
        wrapped_dek: new.wrapped.blob,
    })
}

/// The record of `vault` moving to its current KEK version; `late` when the
/// rotation happened in the provider earlier and could not be recorded then.
fn rotation_record(who: &Principal, vault: &VaultRow, late: bool) -> AuditRecord {
    let mut details = json!({"vault_id": vault.id.to_string(), "kek_version": vault.kek_version});
    if late {
        details["recorded_late"] = json!(true);
    }
    AuditRecord::by(
        who,
        AuditAction::VaultKekRotate,
        AuditResource::Vault(vault.id),
    )
    .with_details(details)
}

impl Engine {
    /// Adds a KEK version for a vault; new writes use it at once, and existing
    /// rows still unwrap under their old version until rewrapped.
    pub async fn rotate_vault_kek(
        &self,
        who: &Principal,
        vault_id: VaultId,
    ) -> Result<RewrapProgress> {
        let (mut vault, _) = self
            .vault_for(who, vault_id, Action::ManageKeys, None)
            .await?;
        let version = self.kms.rotate_kek(&vault.kek_ref).await?;
        vault.kek_version = version;
        let audit = rotation_record(who, &vault, false);
        self.store.set_vault_kek(&vault, Some(&audit)).await?;
        let remaining = self
            .store
            .count_stale_wraps(vault.id, vault.kek_ref.as_str(), version)
            .await?;
        Ok(RewrapProgress {
            rewrapped: 0,
            remaining,
            kek_version: version,
        })
    }

    /// Rewraps up to `batch` (default [`REWRAP_BATCH_DEFAULT`], at most
    /// [`REWRAP_BATCH_MAX`]) of a vault's DEKs under its newest KEK version.
    pub async fn rewrap_vault(
        &self,
        who: &Principal,
        vault_id: VaultId,
        batch: Option<u32>,
    ) -> Result<RewrapProgress> {
        let (mut vault, _) = self
            .vault_for(who, vault_id, Action::ManageKeys, None)
            .await?;
        let batch = batch
            .unwrap_or(REWRAP_BATCH_DEFAULT)
            .clamp(1, REWRAP_BATCH_MAX);
        let kek = vault.kek_ref.clone();
        let mut changes: Vec<WrapChange> = Vec::new();
        for w in self
            .store
            .stale_wraps(vault.id, vault.kek_ref.as_str(), vault.kek_version, batch)
            .await?
        {
            changes.push(rewrapped(&*self.kms, &*self.kms, &kek, w).await?);
        }
        if let Some(newest) = changes.iter().map(|c| c.kek_version).max()
            && newest > vault.kek_version
        {
            // The provider wraps under a version the vault row doesn't name: a
            // rotation happened in the provider but its record failed (say the
            // audit log was down). Record it now, or rewrapping never ends.
            vault.kek_version = newest;
            let audit = rotation_record(who, &vault, true);
            self.store.set_vault_kek(&vault, Some(&audit)).await?;
        }
        let done = changes.len() as u64;
        if done > 0 {
            // The rows and their audit record commit together, or neither does.
            let audit = AuditRecord::by(
                who,
                AuditAction::VaultKekRewrap,
                AuditResource::Vault(vault.id),
            )
            .with_details(json!({"vault_id": vault.id.to_string(), "rewrapped": done, "kek_version": vault.kek_version}));
            self.store.replace_wraps(&changes, Some(&audit)).await?;
        }
        let remaining = self
            .store
            .count_stale_wraps(vault.id, vault.kek_ref.as_str(), vault.kek_version)
            .await?;
        Ok(RewrapProgress {
            rewrapped: done,
            remaining,
            kek_version: vault.kek_version,
        })
    }
}

/// A key migration from one provider to another, run offline (the server
/// stopped) by `strongroom kek migrate`: every vault gets a KEK in the target
/// provider, every DEK is rewrapped under it, then the old KEK is destroyed.
pub struct Migration<'a> {
    /// The store.
    pub store: &'a dyn Store,
    /// Where the KEKs are now.
    pub source: &'a dyn KeyProvider,
    /// Where they go.
    pub target: &'a dyn KeyProvider,
}

/// What a migration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MigrationSummary {
    /// Vaults moved.
    pub vaults: u64,
    /// Vaults already in the target provider.
    pub already: u64,
    /// DEKs rewrapped.
    pub rewrapped: u64,
}

impl Migration<'_> {
    /// Total wrapped DEKs still to move (for a progress bar).
    pub async fn pending(&self) -> Result<u64> {
        let mut n = 0;
        for v in self.store.all_vaults().await? {
            if v.kek_provider != self.target.name() || v.pending_kek_ref.is_some() {
                let target_ref = v.pending_kek_ref.as_ref().map_or("", KekRef::as_str);
                n += self.store.count_stale_wraps(v.id, target_ref, 1).await?;
            }
        }
        Ok(n)
    }

    /// Moves every vault; `progress(n)` is called after each batch of `n` DEKs.
    pub async fn run(&self, mut progress: impl FnMut(u64)) -> Result<MigrationSummary> {
        if self.source.name() == self.target.name() {
            return Err(Error::invalid(
                "the source and target providers are the same",
            ));
        }
        crate::credentials::migrate_pepper(self.store, self.source, self.target).await?;
        let mut summary = MigrationSummary::default();
        for vault in self.store.all_vaults().await? {
            if vault.kek_provider == self.target.name() && vault.pending_kek_ref.is_none() {
                summary.already += 1;
                continue;
            }
            summary.rewrapped += self.migrate_vault(vault, &mut progress).await?;
            summary.vaults += 1;
        }
        Ok(summary)
    }

    async fn migrate_vault(
        &self,
        mut vault: VaultRow,
        progress: &mut impl FnMut(u64),
    ) -> Result<u64> {
        // Record the target KEK before using it, so an interruption resumes with it.
        let target_ref = match &vault.pending_kek_ref {
            Some(r) => r.clone(),
            None => {
                let r = self.target.create_kek(&vault.id).await?;
                vault.pending_kek_ref = Some(r.clone());
                self.store.set_vault_kek(&vault, None).await?;
                r
            }
        };
        let mut moved = 0;
        loop {
            // Rows not yet under the target KEK (a new KEK has only version 1).
            let page: Vec<WrapRow> = self
                .store
                .stale_wraps(vault.id, target_ref.as_str(), 1, 500)
                .await?;
            if page.is_empty() {
                break;
            }
            let mut changes = Vec::with_capacity(page.len());
            for w in page {
                changes.push(rewrapped(self.source, self.target, &target_ref, w).await?);
            }
            // Audited once per vault, below, when its KEK changes: the server
            // is stopped, and an interrupted migration resumes from the rows.
            self.store.replace_wraps(&changes, None).await?;
            let n = changes.len() as u64;
            moved += n;
            progress(n);
        }
        let old = std::mem::replace(&mut vault.kek_ref, target_ref);
        vault.kek_version = 1;
        vault.kek_provider = self.target.name().to_owned();
        vault.pending_kek_ref = None;
        let audit = AuditRecord::anonymous(
            vault.org_id,
            AuditAction::VaultKekMigrate,
            AuditResource::Vault(vault.id),
            None,
        )
        .with_details(
            json!({"vault_id": vault.id.to_string(), "to": self.target.name(), "rewrapped": moved}),
        );
        self.store.set_vault_kek(&vault, Some(&audit)).await?;
        // Only now is the old KEK unused; a failure here leaves a harmless orphan.
        if let Err(e) = self.source.destroy_kek(&old).await {
            tracing::warn!(error = %strongroom_core::Chain(&e), vault_id = %vault.id, "the old KEK could not be destroyed after migration");
        }
        Ok(moved)
    }
}
