//! Group commit for the SQLite store.
//!
//! Committing a transaction does not fsync by itself (the writer connection
//! runs with `synchronous=OFF`); instead every commit then waits in
//! [`GroupSync::durable`] until one `fdatasync` of the WAL file that started
//! after its commit has finished. Concurrent commits share that fsync, so a
//! burst of N writes costs about one disk flush instead of N, while a commit is
//! still acknowledged only once it is on disk.
//!
//! The database file itself is written only by checkpoints, which run on a
//! separate connection with `synchronous=FULL` (the writer's automatic
//! checkpoints are off): the database is synced before the WAL is ever reused.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{StoreError, StoreResult};

pub(super) struct GroupSync {
    wal: PathBuf,
    /// Commits that asked to be made durable (a ticket counter).
    requested: AtomicU64,
    /// The highest ticket known to be on disk.
    synced: AtomicU64,
    /// One fsync at a time; waiters queue here and usually find their ticket covered.
    syncing: tokio::sync::Mutex<()>,
}

impl GroupSync {
    pub(super) fn new(wal: PathBuf) -> Self {
        GroupSync {
            wal,
            requested: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            syncing: tokio::sync::Mutex::new(()),
        }
    }

    /// Returns once everything committed before this call is on disk.
    pub(super) async fn durable(&self) -> StoreResult<()> {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        loop {
            if self.synced.load(Ordering::SeqCst) >= ticket {
                return Ok(());
            }
            let _turn = self.syncing.lock().await;
            if self.synced.load(Ordering::SeqCst) >= ticket {
                return Ok(());
            }
            // Every ticket taken so far belongs to a commit that already wrote
            // its WAL frames: this fsync covers them all.
            let upto = self.requested.load(Ordering::SeqCst);
            let wal = self.wal.clone();
            tokio::task::spawn_blocking(move || {
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&wal)?
                    .sync_data()
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("WAL sync task: {e}")))?
            .map_err(|e| StoreError::Unavailable(format!("syncing the WAL: {e}")))?;
            metrics::counter!("strongroom_store_wal_syncs_total").increment(1);
            self.synced.fetch_max(upto, Ordering::SeqCst);
        }
    }
}
