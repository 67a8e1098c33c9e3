//! SQLite: [`SecretStore`] — heads, versions (allocated by compare-and-set on
//! the head), reads counted with their audit record, listing, disable, delete.

use std::sync::LazyLock;

use async_trait::async_trait;
use rusqlite::params;
use strongroom_core::audit::AuditRecord;
use strongroom_core::time_util::to_micros;
use strongroom_core::{SecretId, SecretPath, VaultId};

use super::SqliteStore;
use super::db::{PreparedAudit, exec, query_all, query_opt};
use super::rows::{FromRow, META_COLUMNS};
use crate::*;

/// [`META_COLUMNS`] first: [`VersionRow`] reads its [`SecretMeta`] by position.
static VERSION_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{META_COLUMNS}, v.max_access_count, v.access_count, v.envelope_version, v.ciphertext, v.iv, \
         v.auth_tag, v.wrapped_dek, v.kek_ref, v.kek_version, v.deleted_at"
    )
});
static LIST_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {META_COLUMNS}
         FROM secrets s JOIN secret_versions v ON v.secret_id = s.id AND v.version = s.latest_version
         WHERE s.vault_id = ? AND s.path >= ? AND s.path < ? AND s.deleted_at IS NULL
         ORDER BY s.path"
    )
});
static LIST_VERSIONS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {META_COLUMNS} FROM secret_versions v
         WHERE v.secret_id = ? AND v.deleted_at IS NULL ORDER BY v.version"
    )
});

static VERSION_LATEST_SQL: LazyLock<String> =
    LazyLock::new(|| version_select("v.version = s.latest_version"));
static VERSION_EXACT_SQL: LazyLock<String> = LazyLock::new(|| version_select("v.version = ?"));

fn version_select(cond: &str) -> String {
    format!(
        "SELECT {} FROM secrets s JOIN secret_versions v ON v.secret_id = s.id
         WHERE s.vault_id = ? AND s.path = ? AND {cond}",
        *VERSION_COLUMNS
    )
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn secret_head(
        &self,
        vault: VaultId,
        path: &SecretPath,
    ) -> StoreResult<Option<SecretHead>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT id, latest_version, deleted_at FROM secrets WHERE vault_id = ? AND path = ?",
                params![vault.to_string(), path.as_str()],
                SecretHead::from_row,
            )
        })
    }

    async fn insert_version(&self, v: &NewSecretVersion, audit: &AuditRecord) -> StoreResult<()> {
        let (v, audit) = (v.clone(), PreparedAudit::new(audit));
        self.db
            .write(move |tx| {
                let now = to_micros(v.created_at);
                if v.expected_latest == 0 {
                    // A unique (vault_id, path) violation here means another writer won.
                    exec(
                        tx,
                        "INSERT INTO secrets (id, vault_id, path, latest_version, deleted_at, created_at, updated_at) VALUES (?, ?, ?, ?, NULL, ?, ?)",
                        params![
                            v.secret_id.to_string(),
                            v.vault_id.to_string(),
                            v.path.as_str(),
                            v.version as i64,
                            now,
                            now
                        ],
                    )?;
                } else {
                    let n = exec(
                        tx,
                        "UPDATE secrets SET latest_version = ?, deleted_at = NULL, updated_at = ?
                         WHERE id = ? AND vault_id = ? AND path = ? AND latest_version = ?",
                        params![
                            v.version as i64,
                            now,
                            v.secret_id.to_string(),
                            v.vault_id.to_string(),
                            v.path.as_str(),
                            v.expected_latest as i64
                        ],
                    )?;
                    if n != 1 {
                        return Err(StoreError::Conflict(
                            "the secret changed concurrently".into(),
                        ));
                    }
                }
                let e = &v.envelope;
                exec(
                    tx,
                    "INSERT INTO secret_versions (secret_id, version, vault_id, path, type, metadata, expires_at, max_access_count,
                        access_count, disabled, envelope_version, ciphertext, iv, auth_tag, wrapped_dek, kek_ref, kek_version, created_by, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        v.secret_id.to_string(),
                        v.version as i64,
                        v.vault_id.to_string(),
                        v.path.as_str(),
                        v.secret_type,
                        v.metadata.to_string(),
                        v.expires_at.map(to_micros),
                        v.max_access_count,
                        e.envelope_version as i64,
                        e.ciphertext,
                        e.iv,
                        e.auth_tag,
                        e.wrapped_dek,
                        e.kek_ref.as_str(),
                        e.kek_version as i64,
                        v.created_by.to_string(),
                        now
                    ],
                )?;
                tx.audit(audit)
            })
            .await
    }

    async fn version(
        &self,
        vault: VaultId,
        path: &SecretPath,
        version: Option<u32>,
    ) -> StoreResult<Option<VersionRow>> {
        self.db.read(|c| match version {
            None => query_opt(
                c,
                &VERSION_LATEST_SQL,
                params![vault.to_string(), path.as_str()],
                VersionRow::from_row,
            ),
            Some(n) => query_opt(
                c,
                &VERSION_EXACT_SQL,
                params![vault.to_string(), path.as_str(), n as i64],
                VersionRow::from_row,
            ),
        })
    }

    async fn record_read(
        &self,
        secret: SecretId,
        version: u32,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx| {
                let n = exec(
                    tx,
                    "UPDATE secret_versions SET access_count = access_count + 1
                     WHERE secret_id = ? AND version = ? AND (max_access_count IS NULL OR access_count < max_access_count)",
                    params![secret.to_string(), version as i64],
                )?;
                tx.audit_if(n == 1, audit)
            })
            .await
    }

    async fn list_secrets(&self, vault: VaultId, prefix: &str) -> StoreResult<Vec<SecretMeta>> {
        let prefix = prefix.to_owned();
        self.scan(move |c| {
            query_all(
                c,
                &LIST_SQL,
                // Every string starting with `prefix` sorts below prefix + U+10FFFF
                // (byte order), so the (vault_id, path) index serves the range.
                params![vault.to_string(), prefix, format!("{prefix}\u{10FFFF}")],
                SecretMeta::from_row,
            )
        })
        .await
    }

    async fn list_versions(&self, secret: SecretId) -> StoreResult<Vec<SecretMeta>> {
        self.db.read(|c| {
            query_all(
                c,
                &LIST_VERSIONS_SQL,
                [secret.to_string()],
                SecretMeta::from_row,
            )
        })
    }

    async fn disable_version(
        &self,
        secret: SecretId,
        version: u32,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx| {
                let n = exec(
                    tx,
                    "UPDATE secret_versions SET disabled = 1 WHERE secret_id = ? AND version = ?",
                    params![secret.to_string(), version as i64],
                )?;
                tx.audit_if(n == 1, audit)
            })
            .await
    }

    async fn delete_secret(&self, secret: SecretId, audit: &AuditRecord) -> StoreResult<()> {
        let at = to_micros(audit.created_at);
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx| {
                // The versions that exist now are deleted for good; a later
                // write starts a live version beside them.
                exec(
                    tx,
                    "UPDATE secret_versions SET deleted_at = ? WHERE secret_id = ? AND deleted_at IS NULL",
                    params![at, secret.to_string()],
                )?;
                exec(
                    tx,
                    "UPDATE secrets SET deleted_at = ?, updated_at = ? WHERE id = ?",
                    params![at, at, secret.to_string()],
                )?;
                tx.audit(audit)
            })
            .await
    }
}
