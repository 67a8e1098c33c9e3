//! PostgreSQL: [`VaultKeyStore`] — vaults (a delete takes everything that
//! names the vault with it), their KEK references, and the wrapped DEKs that
//! rotation and migration find stale and replace by compare-and-set.

use async_trait::async_trait;
use strongroom_core::audit::AuditRecord;
use strongroom_core::time_util::to_micros;
use strongroom_core::{OrgId, VaultId};
use strongroom_store::*;

use crate::PgStore;
use crate::cache::Change;
use crate::db::{IntakeRecord, conn, exec, map_err, query_i64, query_opt, row_opt};
use crate::rows::vault_creator;

#[async_trait]
impl VaultKeyStore for PgStore {
    async fn create_vault(&self, v: &VaultRow, audit: &AuditRecord) -> StoreResult<()> {
        let a = IntakeRecord::new(audit);
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        exec(
            &tx,
            "INSERT INTO vaults (id, org_id, name, description, kek_ref, kek_version, kek_provider, pending_kek_ref,
                created_by, kind, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &v.id.to_string(),
                &v.org_id.to_string(),
                &v.name,
                &v.description,
                &v.kek_ref.as_str(),
                &i64::from(v.kek_version),
                &v.kek_provider,
                &v.pending_kek_ref.as_ref().map(KekRef::as_str),
                &vault_creator(v.created_by),
                &v.kind.as_str(),
                &to_micros(v.created_at),
            ],
        )
        .await?;
        self.finish(tx, &a).await
    }

    async fn vault(&self, id: VaultId) -> StoreResult<Option<VaultRow>> {
        if let Some(v) = self.cache.vault(&id) {
            return Ok(v);
        }
        let ticket = self.cache.ticket();
        let c = conn(&self.pool).await?;
        let v: Option<VaultRow> =
            query_opt(&c, "SELECT * FROM vaults WHERE id = $1", &[&id.to_string()]).await?;
        self.cache.put_vault(&ticket, id, v.clone());
        Ok(v)
    }

    async fn system_vault(&self, org: OrgId, kind: VaultKind) -> StoreResult<Option<VaultRow>> {
        self.opt(
            "SELECT * FROM vaults WHERE org_id = $1 AND kind = $2",
            &[&org.to_string(), &kind.as_str()],
        )
        .await
    }

    async fn list_vaults(&self, org: OrgId) -> StoreResult<Vec<VaultRow>> {
        self.all(
            "SELECT * FROM vaults WHERE org_id = $1 ORDER BY created_at, id",
            &[&org.to_string()],
        )
        .await
    }

    async fn delete_vault(&self, id: VaultId, audit: &AuditRecord) -> StoreResult<bool> {
        let a = IntakeRecord::new(audit);
        let v = id;
        let id = id.to_string();
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        // The vault's row is locked first, so a concurrent write naming it
        // either commits before the delete (and goes with it) or fails on
        // its foreign key after.
        if row_opt(&tx, "SELECT 1 FROM vaults WHERE id = $1 FOR UPDATE", &[&id])
            .await?
            .is_none()
        {
            return Ok(false);
        }
        for sql in [
            "DELETE FROM secret_versions WHERE vault_id = $1",
            "DELETE FROM secrets WHERE vault_id = $1",
            "DELETE FROM policies WHERE vault_id = $1",
            "DELETE FROM vaults WHERE id = $1",
        ] {
            exec(&tx, sql, &[&id]).await?;
        }
        let vault = v;
        self.finish_changing(
            tx,
            true,
            Some(&a),
            &[Change::Vault(vault), Change::Policies(vault)],
        )
        .await
    }

    async fn all_vaults(&self) -> StoreResult<Vec<VaultRow>> {
        self.all("SELECT * FROM vaults ORDER BY created_at, id", &[])
            .await
    }

    async fn set_vault_kek(&self, v: &VaultRow, audit: Option<&AuditRecord>) -> StoreResult<()> {
        let a = audit.map(IntakeRecord::new);
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "UPDATE vaults SET kek_ref = $1, kek_version = $2, kek_provider = $3, pending_kek_ref = $4 WHERE id = $5",
            &[
                &v.kek_ref.as_str(),
                &i64::from(v.kek_version),
                &v.kek_provider,
                &v.pending_kek_ref.as_ref().map(KekRef::as_str),
                &v.id.to_string(),
            ],
        )
        .await?;
        if n != 1 {
            return Err(StoreError::Conflict("the vault no longer exists".into()));
        }
        self.finish_changing(tx, true, a.as_ref(), &[Change::Vault(v.id)])
            .await
            .map(drop)
    }

    async fn stale_wraps(
        &self,
        vault: VaultId,
        kek_ref: &str,
        kek_version: u32,
        limit: u32,
    ) -> StoreResult<Vec<WrapRow>> {
        self.all(
            "SELECT secret_id, version, vault_id, path, kek_ref, kek_version, wrapped_dek FROM secret_versions
             WHERE vault_id = $1 AND NOT (kek_ref = $2 AND kek_version = $3) ORDER BY secret_id, version LIMIT $4",
            &[
                &vault.to_string(),
                &kek_ref,
                &i64::from(kek_version),
                &i64::from(limit),
            ],
        )
        .await
    }

    async fn count_stale_wraps(
        &self,
        vault: VaultId,
        kek_ref: &str,
        kek_version: u32,
    ) -> StoreResult<u64> {
        let c = conn(&self.pool).await?;
        query_i64(
            &c,
            "SELECT COUNT(*) FROM secret_versions WHERE vault_id = $1 AND NOT (kek_ref = $2 AND kek_version = $3)",
            &[&vault.to_string(), &kek_ref, &i64::from(kek_version)],
        )
        .await
        .map(|n| n as u64)
    }

    async fn replace_wraps(
        &self,
        changes: &[WrapChange],
        audit: Option<&AuditRecord>,
    ) -> StoreResult<()> {
        let a = audit.map(IntakeRecord::new);
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        for ch in changes {
            let n = exec(
                &tx,
                "UPDATE secret_versions SET kek_ref = $1, kek_version = $2, wrapped_dek = $3
                 WHERE secret_id = $4 AND version = $5 AND kek_ref = $6 AND kek_version = $7 AND wrapped_dek = $8",
                &[
                    &ch.kek_ref.as_str(),
                    &i64::from(ch.kek_version),
                    &ch.wrapped_dek,
                    &ch.old.secret_id.to_string(),
                    &i64::from(ch.old.version),
                    &ch.old.kek_ref.as_str(),
                    &i64::from(ch.old.kek_version),
                    &ch.old.wrapped_dek,
                ],
            )
            .await?;
            if n != 1 {
                return Err(StoreError::Conflict(
                    "a wrapped DEK changed while it was being rewrapped".into(),
                ));
            }
        }
        self.finish_opt(tx, a.as_ref()).await
    }
}
