//! SQLite: [`PolicyStore`] — vault policies, and the per-principal lookup on
//! the hot path of authorization.

use async_trait::async_trait;
use rusqlite::params;
use strongroom_core::audit::AuditRecord;
use strongroom_core::policy::Policy;
use strongroom_core::time_util::to_micros;
use strongroom_core::{PolicyId, Subject, VaultId};

use super::SqliteStore;
use super::db::{PreparedAudit, Tx, exec, query_all, query_opt};
use super::rows::{FromRow, to_json_text};
use crate::*;

#[async_trait]
impl PolicyStore for SqliteStore {
    async fn create_policy(&self, row: &PolicyRow, audit: &AuditRecord) -> StoreResult<()> {
        let row = row.clone();
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                let p = &row.policy;
                exec(
                    tx,
                    "INSERT INTO policies (id, vault_id, secret_path_pattern, principal_type, principal_id, permissions, conditions,
                expires_at, effect, priority, extra, created_by, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        p.id.to_string(),
                        p.vault_id.to_string(),
                        p.pattern.as_str(),
                        p.principal.kind(),
                        p.principal.id_string(),
                        to_json_text(&p.permissions.iter().map(|x| x.as_str()).collect::<Vec<_>>()),
                        p.conditions.to_json().to_string(),
                        p.expires_at.map(to_micros),
                        p.effect.as_str(),
                        p.priority as i64,
                        row.extra.to_string(),
                        row.created_by.to_string(),
                        to_micros(row.created_at),
                        to_micros(row.updated_at),
                    ],
                )?;
                tx.audit(audit)
            })
            .await
    }

    async fn policy(&self, id: PolicyId) -> StoreResult<Option<PolicyRow>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM policies WHERE id = ?",
                [id.to_string()],
                PolicyRow::from_row,
            )
        })
    }

    async fn list_policies(&self, vault: VaultId) -> StoreResult<Vec<PolicyRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM policies WHERE vault_id = ? ORDER BY created_at, id",
                [vault.to_string()],
                PolicyRow::from_row,
            )
        })
    }

    async fn policies_for(&self, vault: VaultId, who: &Subject) -> StoreResult<Vec<Policy>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM policies WHERE vault_id = ? AND principal_type = ? AND principal_id = ?",
                params![vault.to_string(), who.kind(), who.id_string()],
                Policy::from_row,
            )
        })
    }

    async fn update_policy(&self, row: &PolicyRow, audit: &AuditRecord) -> StoreResult<bool> {
        let row = row.clone();
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                let p = &row.policy;
                // `id` is the primary key: the update changes one row or none.
                let n = exec(
                    tx,
                    "UPDATE policies SET permissions = ?, conditions = ?, expires_at = ?, effect = ?, priority = ?, extra = ?, updated_at = ?
             WHERE id = ? AND vault_id = ?",
                    params![
                        to_json_text(&p.permissions.iter().map(|x| x.as_str()).collect::<Vec<_>>()),
                        p.conditions.to_json().to_string(),
                        p.expires_at.map(to_micros),
                        p.effect.as_str(),
                        p.priority as i64,
                        row.extra.to_string(),
                        to_micros(row.updated_at),
                        p.id.to_string(),
                        p.vault_id.to_string(),
                    ],
                )?;
                tx.audit_if(n == 1, audit)
            })
            .await
    }

    async fn delete_policy(&self, id: PolicyId, audit: &AuditRecord) -> StoreResult<bool> {
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                // `id` is the primary key: the delete removes one row or none.
                let n = exec(tx, "DELETE FROM policies WHERE id = ?", [id.to_string()])?;
                tx.audit_if(n == 1, audit)
            })
            .await
    }
}
