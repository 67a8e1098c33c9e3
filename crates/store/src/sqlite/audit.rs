//! SQLite: [`AuditStore`] — standalone appends, queries, chains in order,
//! chain heads, the organisations to verify, and signed checkpoints.
//! Appends that record a change are made by that change's write (see
//! `db::Tx::audit`).

use std::sync::LazyLock;

use async_trait::async_trait;
use rusqlite::params;
use strongroom_core::OrgId;
use strongroom_core::audit::{AuditRecord, ChainedEvent, Checkpoint};

use super::SqliteStore;
use super::db::{PreparedAudit, exec, get, query_all, query_i64, query_opt};
use super::rows::FromRow;
use crate::*;

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

#[async_trait]
impl AuditStore for SqliteStore {
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
                ChainedEvent::from_row,
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
        org: OrgId,
        from_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedEvent>> {
        let org = org.to_string();
        self.scan(move |c| {
            query_all(
                c,
                "SELECT * FROM audit_events WHERE org_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
                params![org, from_seq as i64, limit as i64],
                ChainedEvent::from_row,
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
                AuditHead::from_row,
            )
        })
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

    async fn checkpoints(&self, org: OrgId) -> StoreResult<Vec<Checkpoint>> {
        let org = org.to_string();
        self.scan(move |c| {
            query_all(
                c,
                "SELECT * FROM audit_checkpoints WHERE org_id = ? ORDER BY seq",
                [org],
                Checkpoint::from_row,
            )
        })
        .await
    }

    async fn latest_checkpoint(&self, org: OrgId) -> StoreResult<Option<Checkpoint>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM audit_checkpoints WHERE org_id = ? ORDER BY seq DESC LIMIT 1",
                [org.to_string()],
                Checkpoint::from_row,
            )
        })
    }
}
