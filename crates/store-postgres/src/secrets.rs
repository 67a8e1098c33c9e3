//! PostgreSQL: [`SecretStore`] — heads, versions (allocated by compare-and-set
//! on the head row), reads counted with their audit record, listing, disable,
//! delete.

use std::sync::LazyLock;

use async_trait::async_trait;
use strongroom_core::audit::AuditRecord;
use strongroom_core::time_util::to_micros;
use strongroom_core::{SecretId, SecretPath, VaultId};
use strongroom_store::*;

use crate::PgStore;
use crate::db::{IntakeRecord, audited, conn, exec, map_err, query_all, query_opt};

const VERSION_COLUMNS: &str = "v.secret_id, v.version, v.vault_id, v.path, v.type, v.metadata, v.expires_at, \
     v.max_access_count, v.access_count, v.disabled, v.envelope_version, v.ciphertext, v.iv, v.auth_tag, \
     v.wrapped_dek, v.kek_ref, v.kek_version, v.created_by, v.created_at, v.deleted_at";

static VERSION_LATEST_SQL: LazyLock<String> =
    LazyLock::new(|| version_select("v.version = s.latest_version"));
static VERSION_EXACT_SQL: LazyLock<String> = LazyLock::new(|| version_select("v.version = $3"));

fn version_select(cond: &str) -> String {
    format!(
        "SELECT {VERSION_COLUMNS} FROM secrets s JOIN secret_versions v ON v.secret_id = s.id
         WHERE s.vault_id = $1 AND s.path = $2 AND {cond}"
    )
}

/// A read counted and audited in one statement (one round trip, one commit):
/// the intake row exists only if the count went up.
const RECORD_READ: &str = "WITH counted AS (
        UPDATE secret_versions SET access_count = access_count + 1
        WHERE secret_id = $11 AND version = $12 AND (max_access_count IS NULL OR access_count < max_access_count)
        RETURNING 1
    )
    INSERT INTO audit_intake
        (org_id, id, actor_type, actor_id, action, resource_type, resource_id, details, ip_address, created_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM counted";

#[async_trait]
impl SecretStore for PgStore {
    async fn secret_head(
        &self,
        vault: VaultId,
        path: &SecretPath,
    ) -> StoreResult<Option<SecretHead>> {
        self.opt(
            "SELECT id, latest_version, deleted_at FROM secrets WHERE vault_id = $1 AND path = $2",
            &[&vault.to_string(), &path.as_str()],
        )
        .await
    }

    async fn insert_version(&self, v: &NewSecretVersion, audit: &AuditRecord) -> StoreResult<()> {
        let a = IntakeRecord::new(audit);
        let now = to_micros(v.created_at);
        let (secret_id, vault_id) = (v.secret_id.to_string(), v.vault_id.to_string());
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if v.expected_latest == 0 {
            // A unique (vault_id, path) violation here means another writer won.
            exec(
                &tx,
                "INSERT INTO secrets (id, vault_id, path, latest_version, deleted_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, NULL, $5, $5)",
                &[&secret_id, &vault_id, &v.path.as_str(), &i64::from(v.version), &now],
            )
            .await?;
        } else {
            // Waits for a concurrent writer of the same head (its row lock),
            // then sees its version and changes nothing: a lost race.
            let n = exec(
                &tx,
                "UPDATE secrets SET latest_version = $1, deleted_at = NULL, updated_at = $2
                 WHERE id = $3 AND vault_id = $4 AND path = $5 AND latest_version = $6",
                &[
                    &i64::from(v.version),
                    &now,
                    &secret_id,
                    &vault_id,
                    &v.path.as_str(),
                    &i64::from(v.expected_latest),
                ],
            )
            .await?;
            if n != 1 {
                return Err(StoreError::Conflict(
                    "the secret changed concurrently".into(),
                ));
            }
        }
        let e = &v.envelope;
        exec(
            &tx,
            "INSERT INTO secret_versions (secret_id, version, vault_id, path, type, metadata, expires_at, max_access_count,
                access_count, disabled, envelope_version, ciphertext, iv, auth_tag, wrapped_dek, kek_ref, kek_version,
                created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, false, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            &[
                &secret_id,
                &i64::from(v.version),
                &vault_id,
                &v.path.as_str(),
                &v.secret_type,
                &v.metadata.to_string(),
                &v.expires_at.map(to_micros),
                &v.max_access_count,
                &i64::from(e.envelope_version),
                &e.ciphertext,
                &e.iv,
                &e.auth_tag,
                &e.wrapped_dek,
                &e.kek_ref.as_str(),
                &i64::from(e.kek_version),
                &v.created_by.to_string(),
                &now,
            ],
        )
        .await?;
        self.finish(tx, &a).await
    }

    async fn version(
        &self,
        vault: VaultId,
        path: &SecretPath,
        version: Option<u32>,
    ) -> StoreResult<Option<VersionRow>> {
        let c = conn(&self.pool).await?;
        let (vault, path) = (vault.to_string(), path.as_str());
        match version {
            None => query_opt(&c, &VERSION_LATEST_SQL, &[&vault, &path]).await,
            Some(n) => query_opt(&c, &VERSION_EXACT_SQL, &[&vault, &path, &i64::from(n)]).await,
        }
    }

    async fn record_read(
        &self,
        secret: SecretId,
        version: u32,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let a = IntakeRecord::new(audit);
        let c = conn(&self.pool).await?;
        let (secret, version) = (secret.to_string(), i64::from(version));
        let counted = if audited() {
            let p = a.params();
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = p.to_vec();
            params.extend([
                &secret as &(dyn tokio_postgres::types::ToSql + Sync),
                &version,
            ]);
            exec(&c, RECORD_READ, &params).await? == 1
        } else {
            exec(
                &c,
                "UPDATE secret_versions SET access_count = access_count + 1
                 WHERE secret_id = $1 AND version = $2 AND (max_access_count IS NULL OR access_count < max_access_count)",
                &[&secret, &version],
            )
            .await?
                == 1
        };
        if counted {
            self.committed(&[&a.org_id]);
        }
        Ok(counted)
    }

    async fn list_secrets(&self, vault: VaultId, prefix: &str) -> StoreResult<Vec<SecretMeta>> {
        let c = conn(&self.pool).await?;
        // Paths are "C"-collated: every path starting with `prefix` sorts
        // from `prefix` to below prefix + U+10FFFF, so the (vault_id, path)
        // index serves the range.
        query_all(
            &c,
            "SELECT v.secret_id, v.version, v.vault_id, v.path, v.type, v.metadata, v.expires_at, v.disabled, v.created_by, v.created_at
             FROM secrets s JOIN secret_versions v ON v.secret_id = s.id AND v.version = s.latest_version
             WHERE s.vault_id = $1 AND s.path >= $2 AND s.path < $3 AND s.deleted_at IS NULL
             ORDER BY s.path",
            &[&vault.to_string(), &prefix, &format!("{prefix}\u{10FFFF}")],
        )
        .await
    }

    async fn list_versions(&self, secret: SecretId) -> StoreResult<Vec<SecretMeta>> {
        self.all(
            "SELECT secret_id, version, vault_id, path, type, metadata, expires_at, disabled, created_by, created_at
             FROM secret_versions WHERE secret_id = $1 AND deleted_at IS NULL ORDER BY version",
            &[&secret.to_string()],
        )
        .await
    }

    async fn disable_version(
        &self,
        secret: SecretId,
        version: u32,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let a = IntakeRecord::new(audit);
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "UPDATE secret_versions SET disabled = true WHERE secret_id = $1 AND version = $2",
            &[&secret.to_string(), &i64::from(version)],
        )
        .await?;
        self.finish_if(tx, n == 1, &a).await
    }

    async fn delete_secret(&self, secret: SecretId, audit: &AuditRecord) -> StoreResult<()> {
        let at = to_micros(audit.created_at);
        let a = IntakeRecord::new(audit);
        let secret = secret.to_string();
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        // The versions that exist now are deleted for good; a later write
        // starts a live version beside them.
        exec(
            &tx,
            "UPDATE secret_versions SET deleted_at = $1 WHERE secret_id = $2 AND deleted_at IS NULL",
            &[&at, &secret],
        )
        .await?;
        exec(
            &tx,
            "UPDATE secrets SET deleted_at = $1, updated_at = $1 WHERE id = $2",
            &[&at, &secret],
        )
        .await?;
        self.finish(tx, &a).await
    }
}
