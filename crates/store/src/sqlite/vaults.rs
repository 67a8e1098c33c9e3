//! SQLite: [`VaultKeyStore`] — vaults (a delete takes everything that names
//! the vault with it), their KEK references, and the wrapped DEKs that
//! rotation and migration find stale and replace by compare-and-set.

use async_trait::async_trait;
use rusqlite::params;
use strongroom_core::audit::AuditRecord;
use strongroom_core::time_util::to_micros;
use strongroom_core::{OrgId, VaultId};

use super::SqliteStore;
use super::db::{PreparedAudit, exec, query_all, query_i64, query_opt};
use super::rows::{FromRow, vault_creator};
use crate::*;

#[async_trait]
impl VaultKeyStore for SqliteStore {
    async fn create_vault(&self, v: &VaultRow, audit: &AuditRecord) -> StoreResult<()> {
        let (v, audit) = (v.clone(), PreparedAudit::new(audit));
        self.db
            .write(move |tx| {
                exec(
                    tx,
                    "INSERT INTO vaults (id, org_id, name, description, kek_ref, kek_version, kek_provider, pending_kek_ref, created_by, kind, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        v.id.to_string(),
                        v.org_id.to_string(),
                        v.name,
                        v.description,
                        v.kek_ref.as_str(),
                        v.kek_version as i64,
                        v.kek_provider,
                        v.pending_kek_ref.as_ref().map(KekRef::as_str),
                        vault_creator(v.created_by),
                        v.kind.as_str(),
                        to_micros(v.created_at)
                    ],
                )?;
                tx.audit(audit)
            })
            .await
    }

    async fn vault(&self, id: VaultId) -> StoreResult<Option<VaultRow>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM vaults WHERE id = ?",
                [id.to_string()],
                VaultRow::from_row,
            )
        })
    }

    async fn system_vault(&self, org: OrgId, kind: VaultKind) -> StoreResult<Option<VaultRow>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM vaults WHERE org_id = ? AND kind = ?",
                params![org.to_string(), kind.as_str()],
                VaultRow::from_row,
            )
        })
    }

    async fn list_vaults(&self, org: OrgId) -> StoreResult<Vec<VaultRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM vaults WHERE org_id = ? ORDER BY created_at, id",
                [org.to_string()],
                VaultRow::from_row,
            )
        })
    }

    async fn delete_vault(&self, id: VaultId, audit: &AuditRecord) -> StoreResult<bool> {
        let audit = PreparedAudit::new(audit);
        let id = id.to_string();
        self.db
            .write(move |tx| {
                if query_opt(tx, "SELECT 1 FROM vaults WHERE id = ?", [&id], |_| Ok(()))?.is_none()
                {
                    return Ok(false);
                }
                // Everything that names the vault goes with it, in this
                // transaction: its versions, secrets and policies.
                for sql in [
                    "DELETE FROM secret_versions WHERE vault_id = ?",
                    "DELETE FROM secrets WHERE vault_id = ?",
                    "DELETE FROM policies WHERE vault_id = ?",
                    "DELETE FROM vaults WHERE id = ?",
                ] {
                    exec(tx, sql, [&id])?;
                }
                tx.audit(audit)?;
                Ok(true)
            })
            .await
    }

    async fn all_vaults(&self) -> StoreResult<Vec<VaultRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM vaults ORDER BY created_at, id",
                [],
                VaultRow::from_row,
            )
        })
    }

    async fn set_vault_kek(&self, v: &VaultRow, audit: Option<&AuditRecord>) -> StoreResult<()> {
        let (v, audit) = (v.clone(), audit.map(PreparedAudit::new));
        self.db
            .write(move |tx| {
                let n = exec(
                    tx,
                    "UPDATE vaults SET kek_ref = ?, kek_version = ?, kek_provider = ?, pending_kek_ref = ? WHERE id = ?",
                    params![
                        v.kek_ref.as_str(),
                        v.kek_version as i64,
                        v.kek_provider,
                        v.pending_kek_ref.as_ref().map(KekRef::as_str),
                        v.id.to_string()
                    ],
                )?;
                if n != 1 {
                    return Err(StoreError::Conflict("the vault no longer exists".into()));
                }
                match audit {
                    Some(a) => tx.audit(a),
                    None => Ok(()),
                }
            })
            .await
    }

    async fn stale_wraps(
        &self,
        vault: VaultId,
        kek_ref: &str,
        kek_version: u32,
        limit: u32,
    ) -> StoreResult<Vec<WrapRow>> {
        let kek_ref = kek_ref.to_owned();
        self.scan(move |c| {
            query_all(
                c,
                "SELECT secret_id, version, vault_id, path, kek_ref, kek_version, wrapped_dek FROM secret_versions
                 WHERE vault_id = ? AND NOT (kek_ref = ? AND kek_version = ?) ORDER BY secret_id, version LIMIT ?",
                params![vault.to_string(), kek_ref, kek_version as i64, limit as i64],
                WrapRow::from_row,
            )
        })
        .await
    }

    async fn count_stale_wraps(
        &self,
        vault: VaultId,
        kek_ref: &str,
        kek_version: u32,
    ) -> StoreResult<u64> {
        let kek_ref = kek_ref.to_owned();
        self.scan(move |c| {
            query_i64(
                c,
                "SELECT COUNT(*) FROM secret_versions WHERE vault_id = ? AND NOT (kek_ref = ? AND kek_version = ?)",
                params![vault.to_string(), kek_ref, kek_version as i64],
            )
            .map(|n| n as u64)
        })
        .await
    }

    async fn replace_wraps(
        &self,
        changes: &[WrapChange],
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()> {
        let (changes, audit) = (changes.to_vec(), audit.map(PreparedAudit::new));
        self.db
            .write(move |tx| {
                for c in &changes {
                    let n = exec(
                        tx,
                        "UPDATE secret_versions SET kek_ref = ?, kek_version = ?, wrapped_dek = ?
                         WHERE secret_id = ? AND version = ? AND kek_ref = ? AND kek_version = ? AND wrapped_dek = ?",
                        params![
                            c.kek_ref.as_str(),
                            c.kek_version as i64,
                            c.wrapped_dek,
                            c.old.secret_id.to_string(),
                            c.old.version as i64,
                            c.old.kek_ref.as_str(),
                            c.old.kek_version as i64,
                            c.old.wrapped_dek
                        ],
                    )?;
                    if n != 1 {
                        return Err(StoreError::Conflict(
                            "a wrapped DEK changed while it was being rewrapped".into(),
                        ));
                    }
                }
                match audit {
                    Some(a) => tx.audit(a),
                    None => Ok(()),
                }
            })
            .await
    }
}
