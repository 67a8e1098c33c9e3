//! The embedded SQLite store: one file in the data directory, WAL journal,
//! `synchronous=FULL` so every acknowledged commit survives a crash or power cut.
//!
//! Writes go through a single connection (SQLite has one writer anyway; this
//! avoids `SQLITE_BUSY` upgrades); reads use a small pool of their own.

use std::path::Path;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use strongroom_core::audit::AuditRecord;
use strongroom_core::time_util::{from_micros, to_micros};
use strongroom_core::{OrgId, Role, SecretId, SecretPath, Subject, UserId, VaultId};

use crate::*;

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.clone())
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating the database: {e}")))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(map_err)?;
        // Owner-only permissions on the database and its journals.
        restrict_permissions(path);
        Ok(SqliteStore { writer, reader })
    }

    /// Closes both pools, flushing the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.writer.begin().await.map_err(map_err)
    }
}

fn restrict_permissions(db: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
    }
}

async fn insert_audit(tx: &mut Transaction<'static, Sqlite>, a: &AuditRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_events (id, org_id, actor_type, actor_id, action, resource_type, resource_id, details, ip_address, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(a.id.to_string())
    .bind(a.org_id.to_string())
    .bind(a.actor.kind())
    .bind(a.actor.id_string())
    .bind(&a.action)
    .bind(&a.resource_type)
    .bind(&a.resource_id)
    .bind(a.details.to_string())
    .bind(&a.ip_address)
    .bind(to_micros(a.created_at))
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn commit(tx: Transaction<'static, Sqlite>) -> StoreResult<()> {
    tx.commit().await.map_err(map_err)
}

fn parse<T: FromStr>(row: &SqliteRow, col: &str) -> StoreResult<T> {
    let s: String = row.try_get(col).map_err(map_err)?;
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("column {col}")))
}

fn json(row: &SqliteRow, col: &str) -> StoreResult<Value> {
    let s: String = row.try_get(col).map_err(map_err)?;
    serde_json::from_str(&s).map_err(|_| StoreError::Corrupt(format!("column {col}")))
}

fn user_row(r: &SqliteRow) -> StoreResult<UserRow> {
    let role: String = r.try_get("role").map_err(map_err)?;
    Ok(UserRow {
        id: parse(r, "id")?,
        org_id: parse(r, "org_id")?,
        email: r.try_get("email").map_err(map_err)?,
        display_name: r.try_get("display_name").map_err(map_err)?,
        password_hash: r.try_get("password_hash").map_err(map_err)?,
        role: Role::from_str(&role).map_err(|_| StoreError::Corrupt("users.role".into()))?,
        created_at: from_micros(r.try_get("created_at").map_err(map_err)?),
    })
}

fn vault_row(r: &SqliteRow) -> StoreResult<VaultRow> {
    let created_by: String = r.try_get("created_by").map_err(map_err)?;
    Ok(VaultRow {
        id: parse(r, "id")?,
        org_id: parse(r, "org_id")?,
        name: r.try_get("name").map_err(map_err)?,
        description: r.try_get("description").map_err(map_err)?,
        kek_ref: r.try_get("kek_ref").map_err(map_err)?,
        created_by: Subject::from_str(&created_by)
            .map_err(|_| StoreError::Corrupt("vaults.created_by".into()))?,
        created_at: from_micros(r.try_get("created_at").map_err(map_err)?),
    })
}

fn meta_row(r: &SqliteRow) -> StoreResult<SecretMeta> {
    let path: String = r.try_get("path").map_err(map_err)?;
    let version: i64 = r.try_get("version").map_err(map_err)?;
    let expires: Option<i64> = r.try_get("expires_at").map_err(map_err)?;
    Ok(SecretMeta {
        id: parse(r, "secret_id")?,
        vault_id: parse(r, "vault_id")?,
        path: SecretPath::parse(&path).map_err(|_| StoreError::Corrupt("path".into()))?,
        version: u32::try_from(version).map_err(|_| StoreError::Corrupt("version".into()))?,
        secret_type: r.try_get("type").map_err(map_err)?,
        metadata: json(r, "metadata")?,
        expires_at: expires.map(from_micros),
        disabled: r.try_get::<i64, _>("disabled").map_err(map_err)? != 0,
        created_by: r.try_get("created_by").map_err(map_err)?,
        created_at: from_micros(r.try_get("created_at").map_err(map_err)?),
    })
}

const VERSION_COLUMNS: &str = "v.secret_id, v.version, v.vault_id, v.path, v.type, v.metadata, v.expires_at, \
     v.max_access_count, v.access_count, v.disabled, v.envelope_version, v.ciphertext, v.iv, v.auth_tag, \
     v.wrapped_dek, v.kek_version, v.created_by, v.created_at, s.deleted_at";

fn version_row(r: &SqliteRow) -> StoreResult<VersionRow> {
    let kek_version: i64 = r.try_get("kek_version").map_err(map_err)?;
    let envelope_version: i64 = r.try_get("envelope_version").map_err(map_err)?;
    Ok(VersionRow {
        meta: meta_row(r)?,
        secret_deleted: r
            .try_get::<Option<i64>, _>("deleted_at")
            .map_err(map_err)?
            .is_some(),
        access_count: r.try_get("access_count").map_err(map_err)?,
        max_access_count: r.try_get("max_access_count").map_err(map_err)?,
        envelope: Envelope {
            envelope_version: u32::try_from(envelope_version)
                .map_err(|_| StoreError::Corrupt("envelope_version".into()))?,
            ciphertext: r.try_get("ciphertext").map_err(map_err)?,
            iv: r.try_get("iv").map_err(map_err)?,
            auth_tag: r.try_get("auth_tag").map_err(map_err)?,
            wrapped_dek: r.try_get("wrapped_dek").map_err(map_err)?,
            kek_version: u32::try_from(kek_version)
                .map_err(|_| StoreError::Corrupt("kek_version".into()))?,
        },
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_org_with_owner(
        &self,
        org: &OrgRow,
        owner: &UserRow,
        gate: SignupGate,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        if gate == SignupGate::FirstOnly {
            let any: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
            if any.is_some() {
                return Err(StoreError::Conflict("signup is closed".into()));
            }
        }
        sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)")
            .bind(org.id.to_string())
            .bind(&org.name)
            .bind(to_micros(org.created_at))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO users (id, org_id, email, display_name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(owner.id.to_string())
        .bind(owner.org_id.to_string())
        .bind(&owner.email)
        .bind(&owner.display_name)
        .bind(&owner.password_hash)
        .bind(owner.role.as_str())
        .bind(to_micros(owner.created_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_audit(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        sqlx::query("SELECT * FROM users WHERE email = ?")
            .bind(email)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(user_row)
            .transpose()
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRow>> {
        sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(user_row)
            .transpose()
    }

    async fn create_vault(&self, v: &VaultRow, audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO vaults (id, org_id, name, description, kek_ref, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(v.id.to_string())
        .bind(v.org_id.to_string())
        .bind(&v.name)
        .bind(&v.description)
        .bind(&v.kek_ref)
        .bind(v.created_by.to_string())
        .bind(to_micros(v.created_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_audit(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn vault(&self, id: VaultId) -> StoreResult<Option<VaultRow>> {
        sqlx::query("SELECT * FROM vaults WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(vault_row)
            .transpose()
    }

    async fn list_vaults(&self, org: OrgId) -> StoreResult<Vec<VaultRow>> {
        sqlx::query("SELECT * FROM vaults WHERE org_id = ? ORDER BY created_at, id")
            .bind(org.to_string())
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?
            .iter()
            .map(vault_row)
            .collect()
    }

    async fn delete_vault(&self, id: VaultId, audit: &AuditRecord) -> StoreResult<bool> {
        let mut tx = self.tx().await?;
        let id = id.to_string();
        sqlx::query("DELETE FROM secret_versions WHERE vault_id = ?")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("DELETE FROM secrets WHERE vault_id = ?")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let n = sqlx::query("DELETE FROM vaults WHERE id = ?")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        commit(tx).await?;
        Ok(true)
    }

    async fn secret_head(
        &self,
        vault: VaultId,
        path: &SecretPath,
    ) -> StoreResult<Option<SecretHead>> {
        let row = sqlx::query(
            "SELECT id, latest_version, deleted_at FROM secrets WHERE vault_id = ? AND path = ?",
        )
        .bind(vault.to_string())
        .bind(path.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            let latest: i64 = r.try_get("latest_version").map_err(map_err)?;
            Ok(SecretHead {
                id: parse(&r, "id")?,
                latest_version: u32::try_from(latest)
                    .map_err(|_| StoreError::Corrupt("latest_version".into()))?,
                deleted: r
                    .try_get::<Option<i64>, _>("deleted_at")
                    .map_err(map_err)?
                    .is_some(),
            })
        })
        .transpose()
    }

    async fn insert_version(&self, v: &NewSecretVersion, audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        let now = to_micros(v.created_at);
        if v.expected_latest == 0 {
            // A unique (vault_id, path) violation here means another writer won.
            sqlx::query(
                "INSERT INTO secrets (id, vault_id, path, latest_version, deleted_at, created_at, updated_at) VALUES (?, ?, ?, ?, NULL, ?, ?)",
            )
            .bind(v.secret_id.to_string())
            .bind(v.vault_id.to_string())
            .bind(v.path.as_str())
            .bind(v.version as i64)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        } else {
            let n = sqlx::query(
                "UPDATE secrets SET latest_version = ?, deleted_at = NULL, updated_at = ?
                 WHERE id = ? AND vault_id = ? AND path = ? AND latest_version = ?",
            )
            .bind(v.version as i64)
            .bind(now)
            .bind(v.secret_id.to_string())
            .bind(v.vault_id.to_string())
            .bind(v.path.as_str())
            .bind(v.expected_latest as i64)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
            if n != 1 {
                return Err(StoreError::Conflict(
                    "the secret changed concurrently".into(),
                ));
            }
        }
        let e = &v.envelope;
        sqlx::query(
            "INSERT INTO secret_versions (secret_id, version, vault_id, path, type, metadata, expires_at, max_access_count,
                access_count, disabled, envelope_version, ciphertext, iv, auth_tag, wrapped_dek, kek_version, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(v.secret_id.to_string())
        .bind(v.version as i64)
        .bind(v.vault_id.to_string())
        .bind(v.path.as_str())
        .bind(&v.secret_type)
        .bind(v.metadata.to_string())
        .bind(v.expires_at.map(to_micros))
        .bind(v.max_access_count)
        .bind(e.envelope_version as i64)
        .bind(&e.ciphertext)
        .bind(&e.iv)
        .bind(&e.auth_tag)
        .bind(&e.wrapped_dek)
        .bind(e.kek_version as i64)
        .bind(v.created_by.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_audit(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn version(
        &self,
        vault: VaultId,
        path: &SecretPath,
        version: Option<u32>,
    ) -> StoreResult<Option<VersionRow>> {
        let sql: &'static str = match version {
            None => &VERSION_LATEST_SQL,
            Some(_) => &VERSION_EXACT_SQL,
        };
        let q = sqlx::query(sqlx::AssertSqlSafe(sql));
        let mut q = q.bind(vault.to_string()).bind(path.as_str());
        if let Some(n) = version {
            q = q.bind(n as i64);
        }
        q.fetch_optional(&self.reader)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(version_row)
            .transpose()
    }

    async fn record_read(
        &self,
        secret: SecretId,
        version: u32,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.tx().await?;
        let n = sqlx::query(
            "UPDATE secret_versions SET access_count = access_count + 1
             WHERE secret_id = ? AND version = ? AND (max_access_count IS NULL OR access_count < max_access_count)",
        )
        .bind(secret.to_string())
        .bind(version as i64)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        commit(tx).await?;
        Ok(true)
    }

    async fn list_secrets(&self, vault: VaultId, prefix: &str) -> StoreResult<Vec<SecretMeta>> {
        sqlx::query(
            "SELECT v.secret_id, v.version, v.vault_id, v.path, v.type, v.metadata, v.expires_at, v.disabled, v.created_by, v.created_at
             FROM secrets s JOIN secret_versions v ON v.secret_id = s.id AND v.version = s.latest_version
             WHERE s.vault_id = ? AND s.deleted_at IS NULL AND substr(s.path, 1, length(?)) = ?
             ORDER BY s.path",
        )
        .bind(vault.to_string())
        .bind(prefix)
        .bind(prefix)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?
        .iter()
        .map(meta_row)
        .collect()
    }

    async fn list_versions(&self, secret: SecretId) -> StoreResult<Vec<SecretMeta>> {
        sqlx::query(
            "SELECT secret_id, version, vault_id, path, type, metadata, expires_at, disabled, created_by, created_at
             FROM secret_versions WHERE secret_id = ? ORDER BY version",
        )
        .bind(secret.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?
        .iter()
        .map(meta_row)
        .collect()
    }

    async fn disable_version(
        &self,
        secret: SecretId,
        version: u32,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.tx().await?;
        let n = sqlx::query(
            "UPDATE secret_versions SET disabled = 1 WHERE secret_id = ? AND version = ?",
        )
        .bind(secret.to_string())
        .bind(version as i64)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        commit(tx).await?;
        Ok(true)
    }

    async fn delete_secret(&self, secret: SecretId, audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        sqlx::query("UPDATE secrets SET deleted_at = ?, updated_at = ? WHERE id = ?")
            .bind(to_micros(audit.created_at))
            .bind(to_micros(audit.created_at))
            .bind(secret.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_audit(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn append_audit(&self, audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        insert_audit(&mut tx, audit).await?;
        commit(tx).await
    }

    async fn audit_events(
        &self,
        org: OrgId,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Vec<StoredAuditEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events WHERE org_id = ? ORDER BY seq LIMIT ? OFFSET ?",
        )
        .bind(org.to_string())
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(StoredAuditEvent {
                    seq: r.try_get("seq").map_err(map_err)?,
                    id: r.try_get("id").map_err(map_err)?,
                    org_id: r.try_get("org_id").map_err(map_err)?,
                    actor_type: r.try_get("actor_type").map_err(map_err)?,
                    actor_id: r.try_get("actor_id").map_err(map_err)?,
                    action: r.try_get("action").map_err(map_err)?,
                    resource_type: r.try_get("resource_type").map_err(map_err)?,
                    resource_id: r.try_get("resource_id").map_err(map_err)?,
                    details: json(r, "details")?,
                    ip_address: r.try_get("ip_address").map_err(map_err)?,
                    created_at: from_micros(r.try_get("created_at").map_err(map_err)?),
                })
            })
            .collect()
    }

    async fn health(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

static VERSION_LATEST_SQL: LazyLock<String> =
    LazyLock::new(|| version_select("v.version = s.latest_version"));
static VERSION_EXACT_SQL: LazyLock<String> = LazyLock::new(|| version_select("v.version = ?"));

fn version_select(cond: &str) -> String {
    format!(
        "SELECT {VERSION_COLUMNS} FROM secrets s JOIN secret_versions v ON v.secret_id = s.id
         WHERE s.vault_id = ? AND s.path = ? AND {cond}"
    )
}
