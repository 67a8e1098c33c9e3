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
use strongroom_core::audit::{
    AuditRecord, ChainedEvent, Checkpoint, GENESIS_HASH, canonical_json, event_hash, hash_hex,
    parse_hash,
};
use strongroom_core::time_util::{from_micros, to_micros};
use strongroom_core::{OrgId, Role, SecretId, SecretPath, Subject, UserId, VaultId};

use crate::*;

mod group_sync;
mod identity;

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Runs checkpoints with `synchronous=FULL` (see [`group_sync`]).
    checkpointer: SqlitePool,
    sync: group_sync::GroupSync,
    checkpoint_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Committed chain heads by organisation, so an append needs no read.
    /// Valid because this store is the database's only writer and its write
    /// transactions run one at a time on one connection.
    heads: std::sync::Mutex<std::collections::HashMap<String, ChainHead>>,
    /// Heads appended by the open write transaction, published on commit.
    pending_heads: std::sync::Mutex<Vec<(String, ChainHead)>>,
}

/// The newest event of a chain: what the next one links to.
#[derive(Clone)]
struct ChainHead {
    seq: u64,
    id: String,
    hash: [u8; 32],
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
        // The writer never syncs or checkpoints by itself: commits are made
        // durable by the group fsync, the database file by the checkpointer.
        let writer_opts = opts
            .clone()
            .synchronous(SqliteSynchronous::Off)
            .pragma("wal_autocheckpoint", "0");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(writer_opts)
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating the database: {e}")))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.clone().pragma("wal_autocheckpoint", "0"))
            .await
            .map_err(map_err)?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(map_err)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let store = SqliteStore {
            writer,
            reader,
            checkpointer: checkpointer.clone(),
            sync: group_sync::GroupSync::new(wal.into()),
            checkpoint_task: std::sync::Mutex::new(None),
            heads: Default::default(),
            pending_heads: Default::default(),
        };
        // The migrations' own commits.
        store.sync.durable().await?;
        // Owner-only permissions on the database and its journals.
        restrict_permissions(path);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&checkpointer)
                    .await
                {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        });
        *store.checkpoint_task.lock().expect("lock") = Some(task);
        Ok(store)
    }

    /// Closes the pools: a final synced checkpoint, then the WAL is removed.
    pub async fn close(&self) {
        if let Some(t) = self.checkpoint_task.lock().expect("lock").take() {
            t.abort();
        }
        self.reader.close().await;
        self.writer.close().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.checkpointer)
            .await
        {
            tracing::warn!(error = %e, "final WAL checkpoint failed");
        }
        // The last connection to close runs with synchronous=FULL.
        self.checkpointer.close().await;
    }

    /// Commits a write transaction and waits until it is on disk.
    async fn commit(&self, tx: Transaction<'static, Sqlite>) -> StoreResult<()> {
        // Publish this transaction's chain heads before the connection is
        // released to the next writer; forget them all if the commit fails.
        let pending = std::mem::take(&mut *self.pending_heads.lock().expect("lock"));
        self.heads.lock().expect("lock").extend(pending);
        if let Err(e) = tx.commit().await {
            self.heads.lock().expect("lock").clear();
            return Err(map_err(e));
        }
        self.sync.durable().await
    }

    async fn tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        let tx = self.writer.begin().await.map_err(map_err)?;
        // Heads of a transaction that was rolled back (dropped) never count.
        self.pending_heads.lock().expect("lock").clear();
        Ok(tx)
    }

    /// The head a new event of `org` links to: this transaction's own last
    /// append, else the committed head, else the newest stored event.
    async fn chain_head(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        org: &str,
    ) -> StoreResult<Option<ChainHead>> {
        if let Some((_, h)) = self
            .pending_heads
            .lock()
            .expect("lock")
            .iter()
            .rev()
            .find(|(o, _)| o == org)
        {
            return Ok(Some(h.clone()));
        }
        if let Some(h) = self.heads.lock().expect("lock").get(org) {
            return Ok(Some(h.clone()));
        }
        let row = sqlx::query(
            "SELECT seq, id, integrity_hash FROM audit_events WHERE org_id = ? ORDER BY seq DESC LIMIT 1",
        )
        .bind(org)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            let seq: i64 = r.try_get("seq").map_err(map_err)?;
            let hash: String = r.try_get("integrity_hash").map_err(map_err)?;
            Ok(ChainHead {
                seq: seq as u64,
                id: r.try_get("id").map_err(map_err)?,
                hash: parse_hash(&hash)
                    .ok_or_else(|| StoreError::Corrupt("audit_events.integrity_hash".into()))?,
            })
        })
        .transpose()
    }

    /// Appends a record to its organisation's chain inside the caller's
    /// transaction, so the chain and the change commit together.
    async fn insert_audit(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        a: &AuditRecord,
    ) -> StoreResult<()> {
        // Benchmark builds only: measure what the audit log costs. Never in a release.
        #[cfg(feature = "bench-unaudited")]
        if crate::bench_unaudited() {
            let _ = (tx, a);
            return Ok(());
        }
        let org = a.org_id.to_string();
        let head = self.chain_head(tx, &org).await?;
        let e = insert_event(tx, a, head.as_ref()).await?;
        let hash = parse_hash(&e.integrity_hash).expect("computed just now");
        self.pending_heads.lock().expect("lock").push((
            org,
            ChainHead {
                seq: e.seq,
                id: e.id,
                hash,
            },
        ));
        Ok(())
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

/// Hashes an event over the previous head and inserts it.
async fn insert_event(
    tx: &mut Transaction<'static, Sqlite>,
    a: &AuditRecord,
    head: Option<&ChainHead>,
) -> StoreResult<ChainedEvent> {
    let org = a.org_id.to_string();
    let (prev_seq, prev_id, prev_hash) = match head {
        None => (0u64, None, GENESIS_HASH),
        Some(h) => (h.seq, Some(h.id.clone()), h.hash),
    };
    let mut e = ChainedEvent {
        seq: prev_seq + 1,
        id: a.id.to_string(),
        org_id: org,
        actor_type: a.actor.kind().to_owned(),
        actor_id: a.actor.id_string(),
        action: a.action.clone(),
        resource_type: a.resource_type.clone(),
        resource_id: a.resource_id.clone(),
        details: a.details.clone(),
        ip_address: a.ip_address.clone(),
        created_at_us: to_micros(a.created_at),
        prev_event_id: prev_id,
        integrity_hash: String::new(),
    };
    e.integrity_hash = hash_hex(&event_hash(&e, &prev_hash));
    sqlx::query(
        "INSERT INTO audit_events (org_id, seq, id, actor_type, actor_id, action, resource_type, resource_id, details,
            ip_address, created_at, prev_event_id, integrity_hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&e.org_id)
    .bind(e.seq as i64)
    .bind(&e.id)
    .bind(&e.actor_type)
    .bind(&e.actor_id)
    .bind(&e.action)
    .bind(&e.resource_type)
    .bind(&e.resource_id)
    .bind(canonical_json(&e.details))
    .bind(&e.ip_address)
    .bind(e.created_at_us)
    .bind(&e.prev_event_id)
    .bind(&e.integrity_hash)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(e)
}

fn event_row(r: &SqliteRow) -> StoreResult<ChainedEvent> {
    let seq: i64 = r.try_get("seq").map_err(map_err)?;
    Ok(ChainedEvent {
        seq: seq as u64,
        id: r.try_get("id").map_err(map_err)?,
        org_id: r.try_get("org_id").map_err(map_err)?,
        actor_type: r.try_get("actor_type").map_err(map_err)?,
        actor_id: r.try_get("actor_id").map_err(map_err)?,
        action: r.try_get("action").map_err(map_err)?,
        resource_type: r.try_get("resource_type").map_err(map_err)?,
        resource_id: r.try_get("resource_id").map_err(map_err)?,
        details: json(r, "details")?,
        ip_address: r.try_get("ip_address").map_err(map_err)?,
        created_at_us: r.try_get("created_at").map_err(map_err)?,
        prev_event_id: r.try_get("prev_event_id").map_err(map_err)?,
        integrity_hash: r.try_get("integrity_hash").map_err(map_err)?,
    })
}

fn checkpoint_row(r: &SqliteRow) -> StoreResult<Checkpoint> {
    let seq: i64 = r.try_get("seq").map_err(map_err)?;
    Ok(Checkpoint {
        org_id: r.try_get("org_id").map_err(map_err)?,
        seq: seq as u64,
        event_id: r.try_get("event_id").map_err(map_err)?,
        head_hash: r.try_get("head_hash").map_err(map_err)?,
        created_at_us: r.try_get("created_at").map_err(map_err)?,
        kid: r.try_get("kid").map_err(map_err)?,
        signature: r.try_get("signature").map_err(map_err)?,
    })
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
        kek_version: r.try_get::<i64, _>("kek_version").map_err(map_err)? as u32,
        kek_provider: r.try_get("kek_provider").map_err(map_err)?,
        pending_kek_ref: r.try_get("pending_kek_ref").map_err(map_err)?,
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
     v.wrapped_dek, v.kek_ref, v.kek_version, v.created_by, v.created_at, s.deleted_at";

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
            kek_ref: r.try_get("kek_ref").map_err(map_err)?,
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
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await
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
            "INSERT INTO vaults (id, org_id, name, description, kek_ref, kek_version, kek_provider, pending_kek_ref, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(v.id.to_string())
        .bind(v.org_id.to_string())
        .bind(&v.name)
        .bind(&v.description)
        .bind(&v.kek_ref)
        .bind(v.kek_version as i64)
        .bind(&v.kek_provider)
        .bind(&v.pending_kek_ref)
        .bind(v.created_by.to_string())
        .bind(to_micros(v.created_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await
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
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await?;
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
                access_count, disabled, envelope_version, ciphertext, iv, auth_tag, wrapped_dek, kek_ref, kek_version, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .bind(&e.kek_ref)
        .bind(e.kek_version as i64)
        .bind(v.created_by.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await
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
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    async fn list_secrets(&self, vault: VaultId, prefix: &str) -> StoreResult<Vec<SecretMeta>> {
        sqlx::query(
            "SELECT v.secret_id, v.version, v.vault_id, v.path, v.type, v.metadata, v.expires_at, v.disabled, v.created_by, v.created_at
             FROM secrets s JOIN secret_versions v ON v.secret_id = s.id AND v.version = s.latest_version
             WHERE s.vault_id = ? AND s.path >= ? AND s.path < ? AND s.deleted_at IS NULL
             ORDER BY s.path",
        )
        .bind(vault.to_string())
        .bind(prefix)
        // Every string starting with `prefix` sorts below prefix + U+10FFFF
        // (byte order), so the (vault_id, path) index serves the range.
        .bind(format!("{prefix}\u{10FFFF}"))
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
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await?;
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
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await
    }

    async fn append_audit(&self, audit: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await
    }

    async fn audit_query(&self, q: &AuditQuery) -> StoreResult<(Vec<ChainedEvent>, u64)> {
        const FILTER: &str = "org_id = ?1 AND (?2 IS NULL OR action = ?2) AND (?3 IS NULL OR actor_id = ?3)
             AND (?4 IS NULL OR resource_id = ?4) AND (?5 IS NULL OR created_at >= ?5) AND (?6 IS NULL OR created_at <= ?6)";
        static LIST: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT * FROM audit_events WHERE {FILTER} ORDER BY seq DESC LIMIT ?7 OFFSET ?8"
            )
        });
        static COUNT: LazyLock<String> =
            LazyLock::new(|| format!("SELECT COUNT(*) FROM audit_events WHERE {FILTER}"));
        let rows = sqlx::query(sqlx::AssertSqlSafe(LIST.as_str()))
            .bind(&q.org_id)
            .bind(&q.action)
            .bind(&q.actor_id)
            .bind(&q.resource_id)
            .bind(q.from_us)
            .bind(q.to_us)
            .bind(q.limit as i64)
            .bind(q.offset as i64)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(COUNT.as_str()))
            .bind(&q.org_id)
            .bind(&q.action)
            .bind(&q.actor_id)
            .bind(&q.resource_id)
            .bind(q.from_us)
            .bind(q.to_us)
            .fetch_one(&self.reader)
            .await
            .map_err(map_err)?;
        let events = rows
            .iter()
            .map(event_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((events, total as u64))
    }

    async fn audit_chain(
        &self,
        org: &str,
        from_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedEvent>> {
        sqlx::query("SELECT * FROM audit_events WHERE org_id = ? AND seq >= ? ORDER BY seq LIMIT ?")
            .bind(org)
            .bind(from_seq as i64)
            .bind(limit as i64)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?
            .iter()
            .map(event_row)
            .collect()
    }

    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
        let rows = sqlx::query(
            "SELECT e.org_id, e.seq, e.id AS event_id, e.integrity_hash AS hash FROM audit_events e
                 JOIN (SELECT org_id, MAX(seq) AS seq FROM audit_events GROUP BY org_id) m
                   ON e.org_id = m.org_id AND e.seq = m.seq
                 ORDER BY e.org_id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(AuditHead {
                    org_id: r.try_get("org_id").map_err(map_err)?,
                    seq: r.try_get::<i64, _>("seq").map_err(map_err)? as u64,
                    event_id: r.try_get("event_id").map_err(map_err)?,
                    hash: r.try_get("hash").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn insert_checkpoint(&self, cp: &Checkpoint) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (org_id, seq, event_id, head_hash, created_at, kid, signature)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (org_id, seq) DO NOTHING",
        )
        .bind(&cp.org_id)
        .bind(cp.seq as i64)
        .bind(&cp.event_id)
        .bind(&cp.head_hash)
        .bind(cp.created_at_us)
        .bind(&cp.kid)
        .bind(&cp.signature)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        self.commit(tx).await
    }

    async fn checkpoints(&self, org: &str) -> StoreResult<Vec<Checkpoint>> {
        sqlx::query("SELECT * FROM audit_checkpoints WHERE org_id = ? ORDER BY seq")
            .bind(org)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?
            .iter()
            .map(checkpoint_row)
            .collect()
    }

    async fn all_vaults(&self) -> StoreResult<Vec<VaultRow>> {
        sqlx::query("SELECT * FROM vaults ORDER BY created_at, id")
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?
            .iter()
            .map(vault_row)
            .collect()
    }

    async fn set_vault_kek(&self, v: &VaultRow, audit: Option<&AuditRecord>) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        let n = sqlx::query("UPDATE vaults SET kek_ref = ?, kek_version = ?, kek_provider = ?, pending_kek_ref = ? WHERE id = ?")
            .bind(&v.kek_ref)
            .bind(v.kek_version as i64)
            .bind(&v.kek_provider)
            .bind(&v.pending_kek_ref)
            .bind(v.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        if n != 1 {
            return Err(StoreError::Conflict("the vault no longer exists".into()));
        }
        if let Some(a) = audit {
            self.insert_audit(&mut tx, a).await?;
        }
        self.commit(tx).await
    }

    async fn stale_wraps(
        &self,
        vault: VaultId,
        kek_ref: &str,
        kek_version: u32,
        limit: u32,
    ) -> StoreResult<Vec<WrapRow>> {
        let rows = sqlx::query(
            "SELECT secret_id, version, vault_id, path, kek_ref, kek_version, wrapped_dek FROM secret_versions
             WHERE vault_id = ? AND NOT (kek_ref = ? AND kek_version = ?) ORDER BY secret_id, version LIMIT ?",
        )
        .bind(vault.to_string())
        .bind(kek_ref)
        .bind(kek_version as i64)
        .bind(limit as i64)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let path: String = r.try_get("path").map_err(map_err)?;
                Ok(WrapRow {
                    secret_id: parse(r, "secret_id")?,
                    version: r.try_get::<i64, _>("version").map_err(map_err)? as u32,
                    vault_id: parse(r, "vault_id")?,
                    path: SecretPath::parse(&path)
                        .map_err(|_| StoreError::Corrupt("path".into()))?,
                    kek_ref: r.try_get("kek_ref").map_err(map_err)?,
                    kek_version: r.try_get::<i64, _>("kek_version").map_err(map_err)? as u32,
                    wrapped_dek: r.try_get("wrapped_dek").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn count_stale_wraps(
        &self,
        vault: VaultId,
        kek_ref: &str,
        kek_version: u32,
    ) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM secret_versions WHERE vault_id = ? AND NOT (kek_ref = ? AND kek_version = ?)",
        )
        .bind(vault.to_string())
        .bind(kek_ref)
        .bind(kek_version as i64)
        .fetch_one(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(n as u64)
    }

    async fn replace_wrap(
        &self,
        old: &WrapRow,
        kek_ref: &str,
        kek_version: u32,
        wrapped_dek: &[u8],
    ) -> StoreResult<bool> {
        let mut tx = self.tx().await?;
        let n = sqlx::query(
            "UPDATE secret_versions SET kek_ref = ?, kek_version = ?, wrapped_dek = ?
             WHERE secret_id = ? AND version = ? AND kek_ref = ? AND kek_version = ? AND wrapped_dek = ?",
        )
        .bind(kek_ref)
        .bind(kek_version as i64)
        .bind(wrapped_dek)
        .bind(old.secret_id.to_string())
        .bind(old.version as i64)
        .bind(&old.kek_ref)
        .bind(old.kek_version as i64)
        .bind(&old.wrapped_dek)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        self.commit(tx).await?;
        Ok(n == 1)
    }

    async fn accept_invitation(&self, user: &UserRow, audit: &AuditRecord) -> StoreResult<()> {
        self.accept_invitation_impl(user, audit).await
    }
    async fn invitation(&self, email: &str) -> StoreResult<Option<InvitationRow>> {
        self.invitation_impl(email).await
    }
    async fn put_invitation(&self, inv: &InvitationRow, audit: &AuditRecord) -> StoreResult<()> {
        self.put_invitation_impl(inv, audit).await
    }
    async fn list_users(&self, org: OrgId) -> StoreResult<Vec<UserRow>> {
        self.list_users_impl(org).await
    }
    async fn set_user_role(
        &self,
        user: UserId,
        role: Role,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        self.set_user_role_impl(user, role, audit).await
    }
    async fn delete_user(&self, user: UserId, audit: &AuditRecord) -> StoreResult<bool> {
        self.delete_user_impl(user, audit).await
    }
    async fn principal_status(
        &self,
        org: OrgId,
        subject: &Subject,
        jti: Option<&str>,
    ) -> StoreResult<PrincipalStatus> {
        self.principal_status_impl(org, subject, jti).await
    }
    async fn revoke_token(
        &self,
        jti: &str,
        expires_at: time::OffsetDateTime,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        self.revoke_token_impl(jti, expires_at, audit).await
    }
    async fn create_agent(&self, agent: &AgentRow, audit: &AuditRecord) -> StoreResult<()> {
        self.create_agent_impl(agent, audit).await
    }
    async fn agent(&self, id: strongroom_core::AgentId) -> StoreResult<Option<AgentRow>> {
        self.agent_where("id", &id.to_string()).await
    }
    async fn agent_by_key_prefix(&self, prefix: &str) -> StoreResult<Option<AgentRow>> {
        self.agent_where("key_prefix", prefix).await
    }
    async fn list_agents(&self, org: OrgId) -> StoreResult<Vec<AgentRow>> {
        self.list_agents_impl(org).await
    }
    async fn update_agent(&self, agent: &AgentRow, audit: &AuditRecord) -> StoreResult<bool> {
        self.update_agent_impl(agent, audit).await
    }
    async fn create_api_key(&self, key: &ApiKeyRow, audit: &AuditRecord) -> StoreResult<()> {
        self.create_api_key_impl(key, audit).await
    }
    async fn api_key_by_prefix(&self, prefix: &str) -> StoreResult<Option<ApiKeyRow>> {
        self.api_key_by_prefix_impl(prefix).await
    }
    async fn list_api_keys(&self, user: UserId) -> StoreResult<Vec<ApiKeyRow>> {
        self.list_api_keys_impl(user).await
    }
    async fn revoke_api_key(
        &self,
        user: UserId,
        id: uuid::Uuid,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        self.revoke_api_key_impl(user, id, audit).await
    }
    async fn create_policy(&self, p: &PolicyRow, audit: &AuditRecord) -> StoreResult<()> {
        self.create_policy_impl(p, audit).await
    }
    async fn policy(&self, id: uuid::Uuid) -> StoreResult<Option<PolicyRow>> {
        self.policy_impl(id).await
    }
    async fn list_policies(&self, vault: VaultId) -> StoreResult<Vec<PolicyRow>> {
        self.list_policies_impl(vault).await
    }
    async fn policies_for(
        &self,
        vault: VaultId,
        principal: &Subject,
    ) -> StoreResult<Vec<strongroom_core::policy::Policy>> {
        self.policies_for_impl(vault, principal).await
    }
    async fn update_policy(&self, p: &PolicyRow, audit: &AuditRecord) -> StoreResult<bool> {
        self.update_policy_impl(p, audit).await
    }
    async fn delete_policy(&self, id: uuid::Uuid, audit: &AuditRecord) -> StoreResult<bool> {
        self.delete_policy_impl(id, audit).await
    }
    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        self.setting_impl(name).await
    }
    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        self.commit(tx).await
    }
    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        self.init_setting_impl(name, value).await
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
