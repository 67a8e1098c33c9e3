//! The embedded SQLite store: one file in the data directory, WAL journal,
//! `synchronous=FULL` so every acknowledged commit survives a crash or power cut.
//!
//! `db` holds the threads and connections: one writer thread that runs each
//! write (a whole use case with its audit record) in a savepoint of a batch
//! transaction and commits the batch with one fsync; reads inline on pooled
//! connections. `rows` maps result rows to the store's types (one `FromRow` impl each).
//! The traits are implemented one per file, as they are declared:
//! `secrets`, `vaults`, `identity`, `policies`, `audit`, `settings`.

use std::path::Path;

use crate::{AuditAppendSignal, Reason, StoreError, StoreResult};

mod audit;
mod db;
mod identity;
mod policies;
mod rows;
mod secrets;
mod settings;
mod vaults;

/// SQLite-backed [`crate::Store`].
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
            .map_err(|e| StoreError::Unavailable(Reason::because("opening the database", e)))??;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(SqliteStore {
            db: db.into(),
            scans: tokio::sync::Semaphore::new(cores.max(2)),
        })
    }

    /// The count of audit events this handle has committed since it was
    /// opened (shared: every clone sees later commits). The checkpointer
    /// polls it to sign a checkpoint every N events.
    pub fn audit_appends(&self) -> AuditAppendSignal {
        self.db.appended()
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
            .map_err(|e| StoreError::Unavailable(Reason::because("a database read failed", e)))?
    }

    /// Finishes the queued writes, then a final synced checkpoint empties the
    /// WAL and every connection closes. Later calls fail as `Unavailable`.
    pub async fn close(&self) {
        let db = self.db.clone();
        let _ = tokio::task::spawn_blocking(move || db.close()).await;
    }
}
