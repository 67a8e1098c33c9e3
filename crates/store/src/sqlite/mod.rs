//! The embedded SQLite store: one file in the data directory, WAL journal,
//! `synchronous=FULL` so every acknowledged commit survives a crash or power cut.
//!
//! [`db`] holds the threads and connections: one writer thread that runs each
//! write (a whole use case with its audit record) in a savepoint of a batch
//! transaction and commits the batch with one fsync; reads inline on pooled
//! connections.

use std::path::Path;
use std::str::FromStr;
use std::sync::LazyLock;

use async_trait::async_trait;
use rusqlite::{Row, params};
use serde_json::Value;
use strongroom_core::audit::{AuditRecord, ChainedEvent, Checkpoint};
use strongroom_core::time_util::{from_micros, to_micros};
use strongroom_core::{OrgId, Role, SecretId, SecretPath, Subject, UserId, VaultId};

use crate::*;
use db::{PreparedAudit, exec, get, query_all, query_i64, query_opt};

mod db;
mod identity;

/// A CTE `o(org_id)` of the organisations that have audit events, found by
/// hopping from one to the next along the primary key `(org_id, seq)` (the last
/// row is NULL).
macro_rules! event_orgs {
    () => {
        "WITH RECURSIVE o(org_id) AS (
             SELECT MIN(org_id) FROM audit_events
             UNION ALL
             SELECT (SELECT MIN(org_id) FROM audit_events WHERE org_id > o.org_id) FROM o
             WHERE o.org_id IS NOT NULL
         ) "
    };
}

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    db: std::sync::Arc<db::Db>,
    /// Bounds the scans running at once: each holds a blocking thread and a
    /// read connection with its page cache, and they are CPU-bound anyway.
    scans: tokio::sync::Semaphore,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies the schema.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let path = path.to_owned();
        let db = tokio::task::spawn_blocking(move || db::Db::open(&path))
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening the database: {e}")))??;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(SqliteStore {
            db: db.into(),
            scans: tokio::sync::Semaphore::new(cores.max(2)),
        })
    }

    /// Runs a read that may touch many rows (listings, audit queries) on the
    /// blocking pool, so it never holds up the async workers. Point lookups
    /// use `self.db.read` inline.
    async fn scan<R: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let _permit = self
            .scans
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.read(f))
            .await
            .map_err(|e| StoreError::Unavailable(format!("a database read failed: {e}")))?
    }

    /// Finishes the queued writes, then a final synced checkpoint empties the
    /// WAL and every connection closes. Later calls fail as `Unavailable`.
    pub async fn close(&self) {
        let db = self.db.clone();
        let _ = tokio::task::spawn_blocking(move || db.close()).await;
    }
}

fn parse<T: FromStr>(row: &Row<'_>, col: &str) -> StoreResult<T> {
    let s: String = get(row, col)?;
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("column {col}")))
}

fn json(row: &Row<'_>, col: &str) -> StoreResult<Value> {
    let s: String = get(row, col)?;
    serde_json::from_str(&s).map_err(|_| StoreError::Corrupt(format!("column {col}")))
}

fn u32_col(row: &Row<'_>, col: &str) -> StoreResult<u32> {
    let n: i64 = get(row, col)?;
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("column {col}")))
}

fn event_row(r: &Row<'_>) -> StoreResult<ChainedEvent> {
    let seq: i64 = get(r, "seq")?;
    Ok(ChainedEvent {
        seq: seq as u64,
        id: get(r, "id")?,
        org_id: get(r, "org_id")?,
        actor_type: get(r, "actor_type")?,
        actor_id: get(r, "actor_id")?,
        action: get(r, "action")?,
        resource_type: get(r, "resource_type")?,
        resource_id: get(r, "resource_id")?,
        details: json(r, "details")?,
        ip_address: get(r, "ip_address")?,
        created_at_us: get(r, "created_at")?,
        prev_event_id: get(r, "prev_event_id")?,
        integrity_hash: get(r, "integrity_hash")?,
    })
}

fn checkpoint_row(r: &Row<'_>) -> StoreResult<Checkpoint> {
    let seq: i64 = get(r, "seq")?;
    Ok(Checkpoint {
        org_id: get(r, "org_id")?,
        seq: seq as u64,
        event_id: get(r, "event_id")?,
        head_hash: get(r, "head_hash")?,
        created_at_us: get(r, "created_at")?,
        kid: get(r, "kid")?,
        signature: get(r, "signature")?,
    })
}

fn user_row(r: &Row<'_>) -> StoreResult<UserRow> {
    let role: String = get(r, "role")?;
    Ok(UserRow {
        id: parse(r, "id")?,
        org_id: parse(r, "org_id")?,
        email: get(r, "email")?,
        display_name: get(r, "display_name")?,
        password_hash: get(r, "password_hash")?,
        role: Role::from_str(&role).map_err(|_| StoreError::Corrupt("users.role".into()))?,
        created_at: from_micros(get(r, "created_at")?),
    })
}

/// How a vault's creator is stored: the subject, or `system` for the server's own.
fn vault_creator(c: Option<Subject>) -> String {
    c.map_or_else(|| SYSTEM_CREATOR.to_owned(), |s| s.to_string())
}

const SYSTEM_CREATOR: &str = "system";

fn vault_row(r: &Row<'_>) -> StoreResult<VaultRow> {
    let created_by: String = get(r, "created_by")?;
    let kind: String = get(r, "kind")?;
    let created_by = match created_by.as_str() {
        SYSTEM_CREATOR => None,
        s => Some(
            Subject::from_str(s).map_err(|_| StoreError::Corrupt("vaults.created_by".into()))?,
        ),
    };
    Ok(VaultRow {
        id: parse(r, "id")?,
        org_id: parse(r, "org_id")?,
        name: get(r, "name")?,
        description: get(r, "description")?,
        kek_ref: get(r, "kek_ref")?,
        kek_version: u32_col(r, "kek_version")?,
        kek_provider: get(r, "kek_provider")?,
        pending_kek_ref: get(r, "pending_kek_ref")?,
        created_by,
        kind: VaultKind::parse(&kind).ok_or_else(|| StoreError::Corrupt("vaults.kind".into()))?,
        created_at: from_micros(get(r, "created_at")?),
    })
}

fn meta_row(r: &Row<'_>) -> StoreResult<SecretMeta> {
    let path: String = get(r, "path")?;
    let expires: Option<i64> = get(r, "expires_at")?;
    Ok(SecretMeta {
        id: parse(r, "secret_id")?,
        vault_id: parse(r, "vault_id")?,
        path: SecretPath::parse(&path).map_err(|_| StoreError::Corrupt("path".into()))?,
        version: u32_col(r, "version")?,
        secret_type: get(r, "type")?,
        metadata: json(r, "metadata")?,
        expires_at: expires.map(from_micros),
        disabled: get::<i64>(r, "disabled")? != 0,
        created_by: get(r, "created_by")?,
        created_at: from_micros(get(r, "created_at")?),
    })
}

const VERSION_COLUMNS: &str = "v.secret_id, v.version, v.vault_id, v.path, v.type, v.metadata, v.expires_at, \
     v.max_access_count, v.access_count, v.disabled, v.envelope_version, v.ciphertext, v.iv, v.auth_tag, \
     v.wrapped_dek, v.kek_ref, v.kek_version, v.created_by, v.created_at, v.deleted_at";

fn version_row(r: &Row<'_>) -> StoreResult<VersionRow> {
    Ok(VersionRow {
        meta: meta_row(r)?,
        deleted: get::<Option<i64>>(r, "deleted_at")?.is_some(),
        access_count: get(r, "access_count")?,
        max_access_count: get(r, "max_access_count")?,
        envelope: Envelope {
            envelope_version: u32_col(r, "envelope_version")?,
            ciphertext: get(r, "ciphertext")?,
            iv: get(r, "iv")?,
            auth_tag: get(r, "auth_tag")?,
            wrapped_dek: get(r, "wrapped_dek")?,
            kek_ref: KekRef(get(r, "kek_ref")?),
            kek_version: u32_col(r, "kek_version")?,
        },
    })
}

fn insert_user(c: &rusqlite::Connection, u: &UserRow) -> StoreResult<()> {
    exec(
        c,
        "INSERT INTO users (id, org_id, email, display_name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![
            u.id.to_string(),
            u.org_id.to_string(),
            u.email,
            u.display_name,
            u.password_hash,
            u.role.as_str(),
            to_micros(u.created_at)
        ],
    )?;
    Ok(())
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
        let (org, owner, audit) = (org.clone(), owner.clone(), PreparedAudit::new(audit));
        self.db
            .write(move |tx| {
                if gate == SignupGate::FirstOnly
                    && query_opt(tx, "SELECT 1 FROM users LIMIT 1", [], |_| Ok(()))?.is_some()
                {
                    return Err(StoreError::Conflict("signup is closed".into()));
                }
                exec(
                    tx,
                    "INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)",
                    params![org.id.to_string(), org.name, to_micros(org.created_at)],
                )?;
                insert_user(tx, &owner)?;
                tx.audit(audit)
            })
            .await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        self.db
            .read(|c| query_opt(c, "SELECT * FROM users WHERE email = ?", [email], user_row))
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRow>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM users WHERE id = ?",
                [id.to_string()],
                user_row,
            )
        })
    }

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
                        v.kek_ref,
                        v.kek_version as i64,
                        v.kek_provider,
                        v.pending_kek_ref,
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
                vault_row,
            )
        })
    }

    async fn system_vault(&self, org: OrgId, kind: VaultKind) -> StoreResult<Option<VaultRow>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM vaults WHERE org_id = ? AND kind = ?",
                params![org.to_string(), kind.as_str()],
                vault_row,
            )
        })
    }

    async fn list_vaults(&self, org: OrgId) -> StoreResult<Vec<VaultRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM vaults WHERE org_id = ? ORDER BY created_at, id",
                [org.to_string()],
                vault_row,
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
                |r| {
                    Ok(SecretHead {
                        id: parse(r, "id")?,
                        latest_version: u32_col(r, "latest_version")?,
                        deleted: get::<Option<i64>>(r, "deleted_at")?.is_some(),
                    })
                },
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
                version_row,
            ),
            Some(n) => query_opt(
                c,
                &VERSION_EXACT_SQL,
                params![vault.to_string(), path.as_str(), n as i64],
                version_row,
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
                "SELECT v.secret_id, v.version, v.vault_id, v.path, v.type, v.metadata, v.expires_at, v.disabled, v.created_by, v.created_at
                 FROM secrets s JOIN secret_versions v ON v.secret_id = s.id AND v.version = s.latest_version
                 WHERE s.vault_id = ? AND s.path >= ? AND s.path < ? AND s.deleted_at IS NULL
                 ORDER BY s.path",
                // Every string starting with `prefix` sorts below prefix + U+10FFFF
                // (byte order), so the (vault_id, path) index serves the range.
                params![vault.to_string(), prefix, format!("{prefix}\u{10FFFF}")],
                meta_row,
            )
        })
        .await
    }

    async fn list_versions(&self, secret: SecretId) -> StoreResult<Vec<SecretMeta>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT secret_id, version, vault_id, path, type, metadata, expires_at, disabled, created_by, created_at
                 FROM secret_versions WHERE secret_id = ? AND deleted_at IS NULL ORDER BY version",
                [secret.to_string()],
                meta_row,
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

    async fn append_audit(&self, audit: &AuditRecord) -> StoreResult<()> {
        let audit = PreparedAudit::new(audit);
        self.db.write(move |tx| tx.audit(audit)).await
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
        let q = q.clone();
        self.scan(move |c| {
            let events = query_all(
                c,
                &LIST,
                params![
                    q.org_id,
                    q.action,
                    q.actor_id,
                    q.resource_id,
                    q.from_us,
                    q.to_us,
                    q.limit as i64,
                    q.offset as i64
                ],
                event_row,
            )?;
            let total = query_i64(
                c,
                &COUNT,
                params![
                    q.org_id,
                    q.action,
                    q.actor_id,
                    q.resource_id,
                    q.from_us,
                    q.to_us
                ],
            )?;
            Ok((events, total as u64))
        })
        .await
    }

    async fn audit_chain(
        &self,
        org: &str,
        from_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedEvent>> {
        let org = org.to_owned();
        self.scan(move |c| {
            query_all(
                c,
                "SELECT * FROM audit_events WHERE org_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
                params![org, from_seq as i64, limit as i64],
                event_row,
            )
        })
        .await
    }

    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
        self.db.read(|c| {
            query_all(
                c,
                // Each organisation's newest event: a few index lookups per
                // organisation, however long the chains are.
                concat!(
                    event_orgs!(),
                    "SELECT e.org_id, e.seq, e.id AS event_id, e.integrity_hash AS hash
                     FROM o JOIN audit_events e ON e.org_id = o.org_id
                       AND e.seq = (SELECT MAX(seq) FROM audit_events WHERE org_id = o.org_id)
                     ORDER BY e.org_id"
                ),
                [],
                |r| {
                    Ok(AuditHead {
                        org_id: get(r, "org_id")?,
                        seq: get::<i64>(r, "seq")? as u64,
                        event_id: get(r, "event_id")?,
                        hash: get(r, "hash")?,
                    })
                },
            )
        })
    }

    fn audit_appended(&self) -> u64 {
        self.db.appended()
    }

    async fn audit_orgs(&self) -> StoreResult<Vec<String>> {
        self.db.read(|c| {
            query_all(
                c,
                concat!(
                    event_orgs!(),
                    "SELECT org_id FROM o WHERE org_id IS NOT NULL
                     UNION SELECT org_id FROM audit_checkpoints
                     UNION SELECT id FROM orgs
                     ORDER BY 1"
                ),
                [],
                |r| get(r, "org_id"),
            )
        })
    }

    async fn insert_checkpoint(&self, cp: &Checkpoint) -> StoreResult<()> {
        let cp = cp.clone();
        self.db
            .write(move |tx| {
                exec(
                    tx,
                    "INSERT INTO audit_checkpoints (org_id, seq, event_id, head_hash, created_at, kid, signature)
                     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (org_id, seq) DO NOTHING",
                    params![
                        cp.org_id,
                        cp.seq as i64,
                        cp.event_id,
                        cp.head_hash,
                        cp.created_at_us,
                        cp.kid,
                        cp.signature
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn checkpoints(&self, org: &str) -> StoreResult<Vec<Checkpoint>> {
        let org = org.to_owned();
        self.scan(move |c| {
            query_all(
                c,
                "SELECT * FROM audit_checkpoints WHERE org_id = ? ORDER BY seq",
                [org],
                checkpoint_row,
            )
        })
        .await
    }

    async fn latest_checkpoint(&self, org: &str) -> StoreResult<Option<Checkpoint>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM audit_checkpoints WHERE org_id = ? ORDER BY seq DESC LIMIT 1",
                [org],
                checkpoint_row,
            )
        })
    }

    async fn all_vaults(&self) -> StoreResult<Vec<VaultRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM vaults ORDER BY created_at, id",
                [],
                vault_row,
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
                        v.kek_ref,
                        v.kek_version as i64,
                        v.kek_provider,
                        v.pending_kek_ref,
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
                |r| {
                    let path: String = get(r, "path")?;
                    Ok(WrapRow {
                        secret_id: parse(r, "secret_id")?,
                        version: u32_col(r, "version")?,
                        vault_id: parse(r, "vault_id")?,
                        path: SecretPath::parse(&path)
                            .map_err(|_| StoreError::Corrupt("path".into()))?,
                        kek_ref: KekRef(get(r, "kek_ref")?),
                        kek_version: u32_col(r, "kek_version")?,
                        wrapped_dek: get(r, "wrapped_dek")?,
                    })
                },
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

    async fn accept_invitation(
        &self,
        user: &UserRow,
        token_hash: &[u8],
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        self.accept_invitation_impl(user, token_hash, audit).await
    }
    async fn invitations(&self, email: &str) -> StoreResult<Vec<InvitationRow>> {
        self.invitations_impl(email).await
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
        let (name, value) = (name.to_owned(), value.to_owned());
        self.db
            .write(move |tx| {
                exec(
                    tx,
                    "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    params![name, value],
                )?;
                Ok(())
            })
            .await
    }
    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        self.init_setting_impl(name, value).await
    }

    async fn health(&self) -> StoreResult<()> {
        self.db.read(|c| query_i64(c, "SELECT 1", []).map(drop))
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
