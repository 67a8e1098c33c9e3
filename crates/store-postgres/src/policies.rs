//! PostgreSQL: [`PolicyStore`] — vault policies, and the per-principal lookup
//! on the hot path of authorization.

use async_trait::async_trait;
use strongroom_core::audit::AuditRecord;
use strongroom_core::policy::Policy;
use strongroom_core::time_util::to_micros;
use strongroom_core::{PolicyId, Subject, VaultId};
use strongroom_store::*;

use crate::PgStore;
use crate::cache::Change;
use crate::db::{IntakeRecord, conn, exec, map_err, row_opt};
use crate::rows::{parse, to_json_text};

fn permissions(p: &Policy) -> String {
    to_json_text(&p.permissions.iter().map(|x| x.as_str()).collect::<Vec<_>>())
}

#[async_trait]
impl PolicyStore for PgStore {
    async fn create_policy(&self, row: &PolicyRow, audit: &AuditRecord) -> StoreResult<()> {
        let a = IntakeRecord::new(audit);
        let p = &row.policy;
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        exec(
            &tx,
            "INSERT INTO policies (id, vault_id, secret_path_pattern, principal_type, principal_id, permissions, conditions,
                expires_at, effect, priority, extra, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            &[
                &p.id.to_string(),
                &p.vault_id.to_string(),
                &p.pattern.as_str(),
                &p.principal.kind(),
                &p.principal.id_string(),
                &permissions(p),
                &p.conditions.to_json().to_string(),
                &p.expires_at.map(to_micros),
                &p.effect.as_str(),
                &i64::from(p.priority),
                &row.extra.to_string(),
                &row.created_by.to_string(),
                &to_micros(row.created_at),
                &to_micros(row.updated_at),
            ],
        )
        .await?;
        self.finish_changing(tx, true, Some(&a), &[Change::Policies(p.vault_id)])
            .await
            .map(drop)
    }

    async fn policy(&self, id: PolicyId) -> StoreResult<Option<PolicyRow>> {
        self.opt("SELECT * FROM policies WHERE id = $1", &[&id.to_string()])
            .await
    }

    async fn list_policies(&self, vault: VaultId) -> StoreResult<Vec<PolicyRow>> {
        self.all(
            "SELECT * FROM policies WHERE vault_id = $1 ORDER BY created_at, id",
            &[&vault.to_string()],
        )
        .await
    }

    async fn policies_for(&self, vault: VaultId, who: &Subject) -> StoreResult<Vec<Policy>> {
        if let Some(p) = self.cache.policies(&vault, who) {
            return Ok(p);
        }
        let ticket = self.cache.ticket();
        let p: Vec<Policy> = self.all(
            "SELECT * FROM policies WHERE vault_id = $1 AND principal_type = $2 AND principal_id = $3",
            &[&vault.to_string(), &who.kind(), &who.id_string()],
        )
        .await?;
        self.cache.put_policies(&ticket, vault, *who, p.clone());
        Ok(p)
    }

    async fn update_policy(&self, row: &PolicyRow, audit: &AuditRecord) -> StoreResult<bool> {
        let a = IntakeRecord::new(audit);
        let p = &row.policy;
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        // `id` is the primary key: the update changes one row or none.
        let n = exec(
            &tx,
            "UPDATE policies SET permissions = $1, conditions = $2, expires_at = $3, effect = $4, priority = $5,
                extra = $6, updated_at = $7
             WHERE id = $8 AND vault_id = $9",
            &[
                &permissions(p),
                &p.conditions.to_json().to_string(),
                &p.expires_at.map(to_micros),
                &p.effect.as_str(),
                &i64::from(p.priority),
                &row.extra.to_string(),
                &to_micros(row.updated_at),
                &p.id.to_string(),
                &p.vault_id.to_string(),
            ],
        )
        .await?;
        self.finish_changing(tx, n == 1, Some(&a), &[Change::Policies(p.vault_id)])
            .await
    }

    async fn delete_policy(&self, id: PolicyId, audit: &AuditRecord) -> StoreResult<bool> {
        let a = IntakeRecord::new(audit);
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let vault = row_opt(
            &tx,
            "DELETE FROM policies WHERE id = $1 RETURNING vault_id",
            &[&id.to_string()],
        )
        .await?
        .map(|r| parse::<VaultId>(&r, "vault_id"))
        .transpose()?;
        let changes: Vec<Change> = vault.into_iter().map(Change::Policies).collect();
        self.finish_changing(tx, !changes.is_empty(), Some(&a), &changes)
            .await
    }
}
