//! Linking audit records into their organisation's hash chain.
//!
//! A write commits its audit record into `audit_intake` together with the
//! change. [`Chain::seal`] then moves an organisation's intake into
//! `audit_events` in one transaction that holds the chain head's row lock
//! (`audit_heads ... FOR UPDATE`): it gives each record the next `seq`, links
//! it to the previous event and hashes it, exactly as SQLite does inline. Only
//! one sealer runs per organisation at a time, on whichever node, so the chain
//! stays one linear chain however many nodes append to it.
//!
//! Why not link inside the writing transaction: the head's lock would then be
//! held until that transaction's commit is flushed, so an organisation's
//! audited requests would run one WAL flush at a time (measured on this
//! project's 2-core machine: 537 commits/s with the lock held to commit, 2114
//! without; docs/operations/postgres.md). Sealing links hundreds of records
//! per flush instead.
//!
//! When records are sealed:
//! - soon after a write commits on this node ([`Chain::poke`] wakes the
//!   sequencer task, which seals what is dirty);
//! - at least every second, for every organisation with records waiting
//!   (records left by a node that died between commit and seal);
//! - before any read of the chain (queries, heads, verification), so a reader
//!   always sees every record committed before it asked.
//!
//! Until it is sealed, a record is durable but not yet covered by the chain's
//! hashes; the window is the sequencer's latency, typically milliseconds.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use deadpool_postgres::{GenericClient, Pool};
use strongroom_core::audit::{
    ChainedEvent, GENESIS_HASH, event_hash_canonical, hash_hex, parse_hash,
};
use strongroom_store::{StoreError, StoreResult};
use tokio::sync::Notify;

use crate::db::{conn, exec, map_err, row_opt, rows};
use crate::rows::get;

/// Records linked per transaction at most.
const SEAL_BATCH: i64 = 2000;
/// How often every organisation's intake is looked at, whoever wrote it.
const SWEEP: Duration = Duration::from_secs(1);

pub(crate) struct Chain {
    pool: Pool,
    dirty: Mutex<HashSet<String>>,
    wake: Notify,
}

impl Chain {
    pub(crate) fn new(pool: Pool) -> Self {
        Chain {
            pool,
            dirty: Mutex::new(HashSet::new()),
            wake: Notify::new(),
        }
    }

    /// Asks for `org`'s intake to be sealed soon.
    pub(crate) fn poke(&self, org: &str) {
        let mut d = self.dirty.lock().expect("dirty set");
        if !d.contains(org) {
            d.insert(org.to_owned());
        }
        drop(d);
        self.wake.notify_one();
    }

    /// The sequencer: seals what writes on this node made dirty, as soon as
    /// they do, and every organisation's intake every [`SWEEP`]. Ends when
    /// the store is dropped.
    pub(crate) fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Chain> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(SWEEP);
            sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let Some(chain) = weak.upgrade() else { return };
                let all = tokio::select! {
                    _ = chain.wake.notified() => false,
                    _ = sweep.tick() => true,
                };
                let r = if all {
                    chain.seal_all().await
                } else {
                    let orgs: Vec<String> =
                        chain.dirty.lock().expect("dirty set").drain().collect();
                    chain.seal_each(&orgs).await
                };
                if let Err(e) = r {
                    // Nothing is lost: the records wait in the intake, and
                    // the next sweep (here or on another node) links them.
                    tracing::warn!(error = %e, "audit records not linked yet");
                    drop(chain);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        })
    }

    async fn seal_each(&self, orgs: &[String]) -> StoreResult<()> {
        for org in orgs {
            self.seal(org).await?;
        }
        Ok(())
    }

    /// Seals every organisation's intake.
    pub(crate) async fn seal_all(&self) -> StoreResult<()> {
        let orgs: Vec<String> = {
            let c = conn(&self.pool).await?;
            rows(&c, "SELECT DISTINCT org_id FROM audit_intake", &[])
                .await?
                .iter()
                .map(|r| get(r, 0))
                .collect::<StoreResult<_>>()?
        };
        self.seal_each(&orgs).await
    }

    /// Links every record of `org` waiting in the intake into its chain.
    /// Returns how many it linked.
    pub(crate) async fn seal(&self, org: &str) -> StoreResult<u64> {
        let mut c = conn(&self.pool).await?;
        let mut linked = 0;
        loop {
            let waiting = row_opt(
                &c,
                "SELECT EXISTS (SELECT 1 FROM audit_intake WHERE org_id = $1)",
                &[&org],
            )
            .await?
            .map(|r| get::<bool, _>(&r, 0))
            .transpose()?
            .unwrap_or(false);
            if !waiting {
                return Ok(linked);
            }
            let tx = c.transaction().await.map_err(map_err)?;
            let n = seal_batch(&tx, org).await?;
            tx.commit().await.map_err(map_err)?;
            linked += n;
        }
    }
}

/// One batch of [`Chain::seal`], in the caller's transaction.
async fn seal_batch(tx: &impl GenericClient, org: &str) -> StoreResult<u64> {
    // The head row exists from the organisation's first seal on; a chain
    // copied in from elsewhere starts from its newest event.
    exec(
        tx,
        "INSERT INTO audit_heads (org_id, seq, event_id, hash)
         SELECT $1, coalesce(e.seq, 0), e.id, coalesce(e.integrity_hash, $2)
         FROM (SELECT 1) one LEFT JOIN LATERAL (
             SELECT seq, id, integrity_hash FROM audit_events WHERE org_id = $1 ORDER BY seq DESC LIMIT 1
         ) e ON true
         ON CONFLICT (org_id) DO NOTHING",
        &[&org, &hash_hex(&GENESIS_HASH)],
    )
    .await?;
    let head = row_opt(
        tx,
        "SELECT seq, event_id, hash FROM audit_heads WHERE org_id = $1 FOR UPDATE",
        &[&org],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("audit_heads: the head just ensured is missing".into()))?;
    let mut seq = get::<i64, _>(&head, "seq")?;
    let mut prev_id: Option<String> = get(&head, "event_id")?;
    let mut prev_hash = parse_hash(get(&head, "hash")?)
        .ok_or_else(|| StoreError::Corrupt("audit_heads.hash".into()))?;

    let waiting = rows(
        tx,
        "SELECT n, id, actor_type, actor_id, action, resource_type, resource_id, details, ip_address, created_at
         FROM audit_intake WHERE org_id = $1 ORDER BY n LIMIT $2",
        &[&org, &SEAL_BATCH],
    )
    .await?;
    if waiting.is_empty() {
        return Ok(0);
    }
    let mut cols = Columns::default();
    for r in &waiting {
        seq += 1;
        let details: String = get(r, "details")?;
        let e = ChainedEvent {
            seq: seq as u64,
            id: get(r, "id")?,
            org_id: org.to_owned(),
            actor_type: get(r, "actor_type")?,
            actor_id: get(r, "actor_id")?,
            action: get(r, "action")?,
            resource_type: get(r, "resource_type")?,
            resource_id: get(r, "resource_id")?,
            details: serde_json::Value::Null,
            ip_address: get(r, "ip_address")?,
            created_at_us: get(r, "created_at")?,
            prev_event_id: prev_id.take(),
            integrity_hash: String::new(),
        };
        prev_hash = event_hash_canonical(&e, &details, &prev_hash);
        prev_id = Some(e.id.clone());
        cols.push(get(r, "n")?, e, details, hash_hex(&prev_hash));
    }
    exec(
        tx,
        "INSERT INTO audit_events (org_id, seq, id, actor_type, actor_id, action, resource_type, resource_id,
            details, ip_address, created_at, prev_event_id, integrity_hash)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[], $13::text[])",
        &[
            &org,
            &cols.seq,
            &cols.id,
            &cols.actor_type,
            &cols.actor_id,
            &cols.action,
            &cols.resource_type,
            &cols.resource_id,
            &cols.details,
            &cols.ip_address,
            &cols.created_at,
            &cols.prev_event_id,
            &cols.integrity_hash,
        ],
    )
    .await?;
    exec(tx, "DELETE FROM audit_intake WHERE n = ANY($1)", &[&cols.n]).await?;
    exec(
        tx,
        "UPDATE audit_heads SET seq = $2, event_id = $3, hash = $4 WHERE org_id = $1",
        &[&org, &seq, &prev_id, &hash_hex(&prev_hash)],
    )
    .await?;
    Ok(waiting.len() as u64)
}

/// A batch of linked events, column by column, for one `unnest` insert.
#[derive(Default)]
struct Columns {
    n: Vec<i64>,
    seq: Vec<i64>,
    id: Vec<String>,
    actor_type: Vec<String>,
    actor_id: Vec<String>,
    action: Vec<String>,
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    details: Vec<String>,
    ip_address: Vec<Option<String>>,
    created_at: Vec<i64>,
    prev_event_id: Vec<Option<String>>,
    integrity_hash: Vec<String>,
}

impl Columns {
    fn push(&mut self, n: i64, e: ChainedEvent, details: String, hash: String) {
        self.n.push(n);
        self.seq.push(e.seq as i64);
        self.id.push(e.id);
        self.actor_type.push(e.actor_type);
        self.actor_id.push(e.actor_id);
        self.action.push(e.action);
        self.resource_type.push(e.resource_type);
        self.resource_id.push(e.resource_id);
        self.details.push(details);
        self.ip_address.push(e.ip_address);
        self.created_at.push(e.created_at_us);
        self.prev_event_id.push(e.prev_event_id);
        self.integrity_hash.push(hash);
    }
}
