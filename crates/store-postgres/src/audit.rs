//! PostgreSQL: [`AuditStore`] — standalone appends, queries, chains in
//! order, chain heads, the organisations to verify, signed checkpoints, and
//! which node signs them. Every read of a chain first links what is waiting
//! in the intake (`crate::chain`), so it sees every record committed before.

use async_trait::async_trait;
use strongroom_core::OrgId;
use strongroom_core::audit::{AuditRecord, ChainedEvent, Checkpoint};
use strongroom_store::*;

use crate::PgStore;
use crate::db::{IntakeRecord, conn, exec, intake, query_all, query_i64, rows};
use crate::rows::get;

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, audit: &AuditRecord) -> StoreResult<()> {
        let a = IntakeRecord::new(audit);
        let c = conn(&self.pool).await?;
        intake(&c, &a).await?;
        self.committed(&[&a.org_id]);
        Ok(())
    }

    async fn audit_query(&self, q: &AuditQuery) -> StoreResult<(Vec<ChainedEvent>, u64)> {
        const FILTER: &str = "org_id = $1 AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR actor_id = $3)
             AND ($4::text IS NULL OR resource_id = $4) AND ($5::bigint IS NULL OR created_at >= $5)
             AND ($6::bigint IS NULL OR created_at <= $6)";
        self.chain.seal(&q.org_id).await?;
        let c = conn(&self.pool).await?;
        let filter: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &q.org_id,
            &q.action,
            &q.actor_id,
            &q.resource_id,
            &q.from_us,
            &q.to_us,
        ];
        let (limit, offset) = (i64::from(q.limit), i64::from(q.offset));
        let mut page = filter.to_vec();
        page.extend([
            &limit as &(dyn tokio_postgres::types::ToSql + Sync),
            &offset,
        ]);
        let events = query_all(
            &c,
            &format!(
                "SELECT * FROM audit_events WHERE {FILTER} ORDER BY seq DESC LIMIT $7 OFFSET $8"
            ),
            &page,
        )
        .await?;
        let total = query_i64(
            &c,
            &format!("SELECT COUNT(*) FROM audit_events WHERE {FILTER}"),
            &filter,
        )
        .await?;
        Ok((events, total as u64))
    }

    async fn audit_chain(
        &self,
        org: OrgId,
        from_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedEvent>> {
        let org = org.to_string();
        self.chain.seal(&org).await?;
        self.all(
            "SELECT * FROM audit_events WHERE org_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
            &[&org, &(from_seq as i64), &i64::from(limit)],
        )
        .await
    }

    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
        self.chain.seal_all().await?;
        let c = conn(&self.pool).await?;
        // Each organisation's newest event, as stored (not the head row the
        // sequencer keeps: a verifier compares what the events say).
        query_all(
            &c,
            "SELECT DISTINCT ON (org_id) org_id, seq, id AS event_id, integrity_hash AS hash
             FROM audit_events ORDER BY org_id, seq DESC",
            &[],
        )
        .await
    }

    async fn audit_orgs(&self) -> StoreResult<Vec<String>> {
        self.chain.seal_all().await?;
        let c = conn(&self.pool).await?;
        rows(
            &c,
            "SELECT DISTINCT org_id FROM audit_events
             UNION SELECT org_id FROM audit_checkpoints
             UNION SELECT id FROM orgs
             ORDER BY 1",
            &[],
        )
        .await?
        .iter()
        .map(|r| get(r, 0))
        .collect()
    }

    async fn insert_checkpoint(&self, cp: &Checkpoint) -> StoreResult<()> {
        let c = conn(&self.pool).await?;
        exec(
            &c,
            "INSERT INTO audit_checkpoints (org_id, seq, event_id, head_hash, created_at, kid, signature)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id, seq) DO NOTHING",
            &[
                &cp.org_id,
                &(cp.seq as i64),
                &cp.event_id,
                &cp.head_hash,
                &cp.created_at_us,
                &cp.kid,
                &cp.signature,
            ],
        )
        .await
        .map(drop)
    }

    async fn checkpoints(&self, org: OrgId) -> StoreResult<Vec<Checkpoint>> {
        self.all(
            "SELECT * FROM audit_checkpoints WHERE org_id = $1 ORDER BY seq",
            &[&org.to_string()],
        )
        .await
    }

    async fn latest_checkpoint(&self, org: OrgId) -> StoreResult<Option<Checkpoint>> {
        self.opt(
            "SELECT * FROM audit_checkpoints WHERE org_id = $1 ORDER BY seq DESC LIMIT 1",
            &[&org.to_string()],
        )
        .await
    }

    async fn checkpoint_lease(&self) -> StoreResult<bool> {
        Ok(self.leader.hold().await)
    }
}
