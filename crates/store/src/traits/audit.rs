//! [`AuditStore`]: the tamper-evident log — appends, queries, chains, heads
//! and signed checkpoints — and [`AuditAppendSignal`], how a back-end tells
//! the checkpointer that events were committed.
//!
//! Most appends are not here: they ride in the transaction of the change they
//! record (every mutating method of the other traits takes its audit record).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use strongroom_core::OrgId;
use strongroom_core::audit::{AuditRecord, ChainedEvent, Checkpoint};

use crate::{AuditHead, AuditQuery, StoreResult};

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends an audit record on its own (for events that change nothing).
    async fn append_audit(&self, audit: &AuditRecord) -> StoreResult<()>;
    /// Events of one organisation matching a query, newest first, and how many
    /// match in all.
    async fn audit_query(&self, q: &AuditQuery) -> StoreResult<(Vec<ChainedEvent>, u64)>;
    /// A stretch of one chain in order: events with `seq >= from_seq`, at most `limit`.
    async fn audit_chain(
        &self,
        org: OrgId,
        from_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedEvent>>;
    /// The head of every chain (one per organisation that has events).
    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>>;
    /// Every organisation that has, or should have, a chain: those with events,
    /// with checkpoints (whose events may all have been deleted), or with an
    /// organisation row. Sorted. Ids as stored: a tampered log may hold one
    /// that is not a UUID, and the verifier must still see it.
    async fn audit_orgs(&self) -> StoreResult<Vec<String>>;
    /// Stores a signed checkpoint.
    async fn insert_checkpoint(&self, cp: &Checkpoint) -> StoreResult<()>;
    /// An organisation's checkpoints, oldest first.
    async fn checkpoints(&self, org: OrgId) -> StoreResult<Vec<Checkpoint>>;
    /// An organisation's newest checkpoint.
    async fn latest_checkpoint(&self, org: OrgId) -> StoreResult<Option<Checkpoint>>;
    /// Whether this handle may sign checkpoints now. Several nodes on one
    /// database elect one signer at a time (PostgreSQL: an advisory lock held
    /// by a session of the signer; when it dies, another node takes over). A
    /// database with one writer (SQLite) always may.
    async fn checkpoint_lease(&self) -> StoreResult<bool> {
        Ok(true)
    }
}

/// How many audit events one store handle has committed since it was opened:
/// a cheap, shared counter the checkpointer polls to sign a checkpoint every N
/// events. Not part of [`AuditStore`]: it describes one process's handle, not
/// the database, so the back-end that owns the handle hands it out (for
/// SQLite, `SqliteStore::audit_appends`) and the engine gets it when its
/// checkpointer starts.
#[derive(Debug, Clone, Default)]
pub struct AuditAppendSignal(Arc<AtomicU64>);

impl AuditAppendSignal {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `n` more events committed (a back-end calls this once their
    /// transaction is durable).
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Events committed so far.
    pub fn appended(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
