//! Connections and threads of the SQLite store.
//!
//! - **Writes** run on one dedicated writer thread that owns the only write
//!   connection. A write is a closure (one use case's statements, with its
//!   audit record) sent to that thread. The thread takes every write that is
//!   waiting, runs each inside a savepoint of one transaction, commits once
//!   with `synchronous=FULL` (one WAL fsync for the whole batch) and only then
//!   answers each caller. A write whose closure fails is rolled back to its
//!   savepoint and changes nothing; the others in the batch are unaffected.
//!   This is group commit without a hop per statement: the whole use case runs
//!   where the connection is.
//! - **Reads** run inline on the calling task's thread, on a connection taken
//!   from a small pool. They are index lookups on a page-cached database
//!   (microseconds); a hop to another thread would cost more than the query.
//!   WAL mode lets them proceed while the writer commits.
//! - **Checkpoints** run on a thread of their own, with `synchronous=FULL`,
//!   once a second (`PASSIVE`) and at close (`TRUNCATE`), so the writer
//!   rarely stalls behind one. Under a sustained write load those never find
//!   the log idle, and SQLite only starts a WAL over when it is: past
//!   `WAL_LIMIT` the writer itself, between two batches, checkpoints what is
//!   left and restarts the log, which keeps the WAL (and the disk) bounded.
//!
//! The writer keeps the head of every organisation's audit chain in memory
//! (committed heads plus an undo log for the open transaction), so appending
//! an audit event needs no read. That is valid because this store is the
//! database's only writer.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Params, Row, types::FromSql};
use strongroom_core::audit::{
    AuditRecord, ChainedEvent, GENESIS_HASH, canonical_json, event_hash_canonical, hash_hex,
    parse_hash,
};
use strongroom_core::time_util::to_micros;

use crate::{AuditAppendSignal, Reason, StoreError, StoreResult};

/// At most this many writes share one transaction (and one fsync).
const MAX_BATCH: usize = 256;
/// Idle read connections kept for reuse (inline reads use about one per
/// async worker thread, scans one per permit).
///
/// Each connection has a page cache of up to about 2 MiB (SQLite's default
/// `cache_size = -2000`), which fills as the database grows and the workload
/// touches more distinct pages. So the store's long-lived page caches are
/// bounded by (writer + checkpointer + `MAX_IDLE_READERS`) × 2 MiB ≈ 16 MiB;
/// a reader opened beyond the pool is closed after its read, cache and all.
/// That fill is the slow resident-memory rise a soak shows in its first
/// minutes, and it levels off.
const MAX_IDLE_READERS: usize = 6;
/// Past this size the writer restarts the WAL (see [`bound_wal`]); the file is
/// also truncated back to it after each restart.
const WAL_LIMIT: u64 = 64 << 20;
/// Batches between two looks at the WAL's size.
const WAL_CHECK_EVERY: u32 = 32;
/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 64;

/// The schema's migrations, in order: applying `MIGRATIONS[n]` takes a
/// database from `user_version` n to n + 1, in one transaction. Append a new
/// one at the end (`NNNN_what.sql`, numbered one past the last); never edit
/// or reorder one that has shipped.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        "0002_invitation_tokens_and_version_deletion",
        include_str!("../../migrations/sqlite/0002_invitation_tokens_and_version_deletion.sql"),
    ),
    (
        "0003_system_vaults_token_generations",
        include_str!("../../migrations/sqlite/0003_system_vaults_token_generations.sql"),
    ),
];

/// Maps a SQLite error: uniqueness → `Conflict`, any other rule of the schema
/// (foreign key, `NOT NULL`, `CHECK`) → `Constraint`, bad column data →
/// `Corrupt`, anything else (I/O, locked, full, read-only, a failing trigger)
/// → `Unavailable`. A change the schema refuses is never reported as an
/// outage; a trigger's `RAISE` is not part of our schema but how a database
/// refuses storage (an operator's guard, the fail-closed tests), so it is one.
pub(super) fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    match &e {
        rusqlite::Error::SqliteFailure(f, msg)
            if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Conflict(msg.clone().unwrap_or_else(|| f.to_string()))
        }
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == ffi::ErrorCode::ConstraintViolation
                && f.extended_code != ffi::SQLITE_CONSTRAINT_TRIGGER =>
        {
            StoreError::Constraint(Reason::of(e))
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::InvalidColumnName(_)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(Reason::of(e)),
        _ => StoreError::Unavailable(Reason::of(e)),
    }
}

/// A column by name.
pub(super) fn get<T: FromSql>(r: &Row<'_>, col: &str) -> StoreResult<T> {
    r.get(col).map_err(map_err)
}

/// Runs a statement (cached), returning the number of rows changed.
pub(super) fn exec(c: &Connection, sql: &str, params: impl Params) -> StoreResult<usize> {
    c.prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(map_err)
}

/// The first row of a query, mapped, if there is one.
pub(super) fn query_opt<T>(
    c: &Connection,
    sql: &str,
    params: impl Params,
    f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = c.prepare_cached(sql).map_err(map_err)?;
    let mut rows = stmt.query(params).map_err(map_err)?;
    match rows.next().map_err(map_err)? {
        Some(r) => f(r).map(Some),
        None => Ok(None),
    }
}

/// Every row of a query, mapped.
pub(super) fn query_all<T>(
    c: &Connection,
    sql: &str,
    params: impl Params,
    mut f: impl FnMut(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = c.prepare_cached(sql).map_err(map_err)?;
    let mut rows = stmt.query(params).map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(map_err)? {
        out.push(f(r)?);
    }
    Ok(out)
}

/// One integer (`COUNT(*)` and the like).
pub(super) fn query_i64(c: &Connection, sql: &str, params: impl Params) -> StoreResult<i64> {
    query_opt(c, sql, params, |r| r.get(0).map_err(map_err))?
        .ok_or_else(|| StoreError::Corrupt("a scalar query returned no row".into()))
}

/// The newest event of a chain: what the next one links to.
#[derive(Clone)]
struct ChainHead {
    seq: u64,
    id: String,
    hash: [u8; 32],
}

/// Chain heads as the writer's connection sees them.
#[derive(Default)]
struct Heads {
    /// Known heads by organisation (committed, or appended by the open transaction).
    known: HashMap<String, ChainHead>,
    /// What the open transaction replaced, to undo a rolled-back write.
    undo: Vec<(String, Option<ChainHead>)>,
}

impl Heads {
    fn set(&mut self, org: String, head: ChainHead) {
        let old = self.known.insert(org.clone(), head);
        self.undo.push((org, old));
    }
    fn undo_to(&mut self, mark: usize) {
        while self.undo.len() > mark {
            let (org, old) = self.undo.pop().expect("len > mark");
            match old {
                Some(h) => self.known.insert(org, h),
                None => self.known.remove(&org),
            };
        }
    }
    /// After a failed transaction: forget everything, re-read from the database.
    fn reset(&mut self) {
        self.known.clear();
        self.undo.clear();
    }
}

/// What a write closure gets: the writer's connection, inside the batch
/// transaction and this write's savepoint.
pub(super) struct Tx<'a> {
    conn: &'a Connection,
    heads: &'a mut Heads,
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// An audit record with everything that does not depend on the chain (text
/// forms, canonical details) computed by the caller, off the writer thread.
pub(super) struct PreparedAudit {
    /// The event without its link: `seq`, `prev_event_id` and
    /// `integrity_hash` are set on append; `details` is held only as text.
    event: ChainedEvent,
    /// `canonical_json` of the details: what is hashed and what is stored.
    details: String,
}

impl PreparedAudit {
    pub(super) fn new(a: &AuditRecord) -> Self {
        PreparedAudit {
            event: ChainedEvent {
                seq: 0,
                id: a.id.to_string(),
                org_id: a.org_id.to_string(),
                actor_type: a.actor.kind().to_owned(),
                actor_id: a.actor.id_string(),
                action: a.action.clone(),
                resource_type: a.resource_type.clone(),
                resource_id: a.resource_id.clone(),
                details: serde_json::Value::Null,
                ip_address: a.ip_address.clone(),
                created_at_us: to_micros(a.created_at),
                prev_event_id: None,
                integrity_hash: String::new(),
            },
            details: canonical_json(&a.details),
        }
    }
}

impl Tx<'_> {
    /// Appends a record to its organisation's chain in this transaction, so
    /// the chain and the change commit together.
    pub(super) fn audit(&mut self, mut a: PreparedAudit) -> StoreResult<()> {
        // Benchmark builds only: measure what the audit log costs. Never in a release.
        #[cfg(feature = "bench-unaudited")]
        if crate::bench_unaudited() {
            let _ = a;
            return Ok(());
        }
        let e = &mut a.event;
        let prev_hash = match self.heads.known.get(&e.org_id) {
            Some(h) => link(e, h),
            None => match newest_event(self.conn, &e.org_id)? {
                Some(h) => link(e, &h),
                None => {
                    e.seq = 1;
                    GENESIS_HASH
                }
            },
        };
        let hash = insert_event(self.conn, &a, &prev_hash)?;
        let e = a.event;
        self.heads.set(
            e.org_id,
            ChainHead {
                seq: e.seq,
                id: e.id,
                hash,
            },
        );
        Ok(())
    }

    /// Appends `a` if the write changed something; returns whether it did.
    pub(super) fn audit_if(&mut self, changed: bool, a: PreparedAudit) -> StoreResult<bool> {
        if changed {
            self.audit(a)?;
        }
        Ok(changed)
    }
}

/// Makes `e` the successor of `head`; returns the hash it links to.
fn link(e: &mut ChainedEvent, head: &ChainHead) -> [u8; 32] {
    e.seq = head.seq + 1;
    e.prev_event_id = Some(head.id.clone());
    head.hash
}

fn newest_event(c: &Connection, org: &str) -> StoreResult<Option<ChainHead>> {
    query_opt(
        c,
        "SELECT seq, id, integrity_hash FROM audit_events WHERE org_id = ? ORDER BY seq DESC LIMIT 1",
        [org],
        |r| {
            let seq: i64 = get(r, "seq")?;
            let hash: String = get(r, "integrity_hash")?;
            Ok(ChainHead {
                seq: seq as u64,
                id: get(r, "id")?,
                hash: parse_hash(&hash)
                    .ok_or_else(|| StoreError::Corrupt("audit_events.integrity_hash".into()))?,
            })
        },
    )
}

/// Hashes a linked event and inserts it. Returns its hash.
fn insert_event(c: &Connection, a: &PreparedAudit, prev_hash: &[u8; 32]) -> StoreResult<[u8; 32]> {
    let e = &a.event;
    let hash = event_hash_canonical(e, &a.details, prev_hash);
    exec(
        c,
        "INSERT INTO audit_events (org_id, seq, id, actor_type, actor_id, action, resource_type, resource_id, details,
            ip_address, created_at, prev_event_id, integrity_hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rusqlite::params![
            e.org_id,
            e.seq as i64,
            e.id,
            e.actor_type,
            e.actor_id,
            e.action,
            e.resource_type,
            e.resource_id,
            a.details,
            e.ip_address,
            e.created_at_us,
            e.prev_event_id,
            hash_hex(&hash),
        ],
    )?;
    Ok(hash)
}

/// Sends the caller its answer once the batch's fate is known.
type Finish = Box<dyn FnOnce(StoreResult<()>) + Send>;
/// A write: run it (`Some`) or tell it the batch broke before its turn (`None`).
/// Returns whether it succeeded (else it is rolled back) and its finisher.
type Job = Box<dyn FnOnce(Option<&mut Tx<'_>>) -> (bool, Finish) + Send>;

/// The store's connections and threads.
pub(super) struct Db {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
    /// Audit events committed through this handle.
    appended: AuditAppendSignal,
}

fn open_conn(path: &Path, synchronous: &str) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    c.busy_timeout(Duration::from_secs(5))?;
    c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", synchronous)?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    // Only the checkpoint thread checkpoints.
    c.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(c)
}

/// Brings the schema up to the last of [`MIGRATIONS`]: each migration the database
/// lacks runs in a transaction of its own, which also records its number in
/// `user_version`, so a crash leaves the database at a version it really has.
/// A database written by a newer build (a higher `user_version`) is refused:
/// this build would misread or damage what it does not know.
///
/// A database made by an earlier build that tracked migrations in
/// `_sqlx_migrations` (`user_version` 0 with the tables present) has the
/// first migration's schema.
fn migrate(c: &Connection) -> StoreResult<()> {
    apply_migrations(c, MIGRATIONS)
}

fn apply_migrations(c: &Connection, migrations: &[(&str, &str)]) -> StoreResult<()> {
    let known = migrations.len() as i64;
    let failed =
        |e: rusqlite::Error| StoreError::Unavailable(Reason::because("migrating the database", e));
    let mut version: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(failed)?;
    if version > known {
        return Err(StoreError::Unavailable(
            format!(
                "the database has schema version {version}, newer than this build knows \
                 ({known}): it was written by a newer Strongroom; run that version \
                 (or restore a backup made for this one)"
            )
            .into(),
        ));
    }
    if version == 0 {
        let earlier: bool = c
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'orgs')",
                [],
                |r| r.get(0),
            )
            .map_err(failed)?;
        if earlier {
            c.pragma_update(None, "user_version", 1).map_err(failed)?;
            version = 1;
        }
    }
    for (n, (name, sql)) in migrations.iter().enumerate().skip(version as usize) {
        let apply = || -> rusqlite::Result<()> {
            let tx = c.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", n as i64 + 1)?;
            tx.commit()
        };
        apply().map_err(|e| {
            StoreError::Unavailable(Reason::because(
                format!("migrating the database ({name})"),
                e,
            ))
        })?;
        tracing::info!(migration = name, "database schema migrated");
    }
    Ok(())
}

impl Db {
    /// Opens (creating if needed) the database, applies the schema and starts
    /// the writer and checkpoint threads.
    pub(super) fn open(path: &Path) -> StoreResult<Db> {
        Db::open_with_wal_limit(path, WAL_LIMIT)
    }

    fn open_with_wal_limit(path: &Path, wal_limit: u64) -> StoreResult<Db> {
        let writer = open_conn(path, "FULL").map_err(map_err)?;
        migrate(&writer)?;
        writer
            .pragma_update(None, "journal_size_limit", wal_limit as i64)
            .map_err(map_err)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let checkpoint_conn = open_conn(path, "FULL").map_err(map_err)?;
        restrict_permissions(path);

        let (jobs, rx) = mpsc::channel::<Job>();
        let appended = AuditAppendSignal::new();
        let counter = appended.clone();
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx, &wal, wal_limit, &counter))
            .map_err(|e| {
                StoreError::Unavailable(Reason::because("starting the writer thread", e))
            })?;
        let (stop, stopped) = mpsc::channel::<()>();
        let checkpointer = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_conn, stopped))
            .map_err(|e| {
                StoreError::Unavailable(Reason::because("starting the checkpoint thread", e))
            })?;
        Ok(Db {
            path: path.to_owned(),
            readers: Mutex::new(Vec::new()),
            jobs: Mutex::new(Some(jobs)),
            writer: Mutex::new(Some(writer)),
            checkpointer: Mutex::new(Some((stop, checkpointer))),
            appended,
        })
    }

    /// The count of audit events committed through this handle.
    pub(super) fn appended(&self) -> AuditAppendSignal {
        self.appended.clone()
    }

    /// Runs `f` on a read connection, on this thread.
    pub(super) fn read<R>(&self, f: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
        let pooled = self.readers.lock().expect("lock").pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = open_conn(&self.path, "FULL").map_err(map_err)?;
                c.pragma_update(None, "query_only", "ON").map_err(map_err)?;
                c
            }
        };
        let r = f(&conn);
        let mut idle = self.readers.lock().expect("lock");
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        r
    }

    /// Runs `f` on the writer thread inside the next batch transaction and
    /// answers once that transaction is committed and synced (or failed).
    pub(super) async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> StoreResult<R> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<StoreResult<R>>();
        let job: Job = Box::new(move |tx| {
            let r = match tx {
                Some(tx) => match std::panic::catch_unwind(AssertUnwindSafe(|| f(tx))) {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::error!("a store write panicked; it was rolled back");
                        Err(StoreError::Unavailable("a store write failed".into()))
                    }
                },
                None => Err(StoreError::Unavailable(
                    "the transaction failed before this write ran".into(),
                )),
            };
            let ok = r.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let _ = reply.send(commit.and(r));
            });
            (ok, finish)
        });
        {
            let jobs = self.jobs.lock().expect("lock");
            let Some(jobs) = jobs.as_ref() else {
                return Err(StoreError::Unavailable("the store is closed".into()));
            };
            jobs.send(job)
                .map_err(|_| StoreError::Unavailable("the writer thread has stopped".into()))?;
        }
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer thread has stopped".into()))?
    }

    /// Stops the threads after the queued writes, runs a final synced
    /// checkpoint that empties the WAL, and closes every connection.
    pub(super) fn close(&self) {
        drop(self.jobs.lock().expect("lock").take());
        if let Some(w) = self.writer.lock().expect("lock").take() {
            let _ = w.join();
        }
        if let Some((stop, t)) = self.checkpointer.lock().expect("lock").take() {
            drop(stop);
            let _ = t.join();
        }
        self.readers.lock().expect("lock").clear();
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.close();
    }
}

fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<Job>,
    wal: &Path,
    wal_limit: u64,
    appended: &AuditAppendSignal,
) {
    let mut heads = Heads::default();
    let mut since_check = 0;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        metrics::histogram!("strongroom_store_write_batch_size").record(batch.len() as f64);
        run_batch(&conn, &mut heads, batch, appended);
        since_check += 1;
        if since_check >= WAL_CHECK_EVERY {
            since_check = 0;
            bound_wal(&conn, wal, wal_limit);
        }
    }
}

/// Restarts a WAL that grew past [`WAL_LIMIT`]: copies the frames the
/// background checkpoints have not yet copied, syncs the database, and lets
/// the next transaction write the log from its start (`journal_size_limit`
/// then truncates the file). Runs between batches, after their callers were
/// answered; waits at most 100 ms for readers on older snapshots and otherwise
/// tries again later.
fn bound_wal(conn: &Connection, wal: &Path, limit: u64) {
    match std::fs::metadata(wal) {
        Ok(m) if m.len() > limit => {}
        _ => return,
    }
    let _ = conn.busy_timeout(Duration::from_millis(100));
    match conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0)) {
        Ok(0) => metrics::counter!("strongroom_store_wal_restarts_total").increment(1),
        Ok(_) => tracing::debug!("WAL restart deferred: readers on an older snapshot"),
        Err(e) => tracing::warn!(error = %e, "WAL restart checkpoint failed"),
    }
    let _ = conn.busy_timeout(Duration::from_secs(5));
}

/// One transaction: every job in its own savepoint, one commit, then the answers.
fn run_batch(conn: &Connection, heads: &mut Heads, batch: Vec<Job>, appended: &AuditAppendSignal) {
    let mut finishers = Vec::with_capacity(batch.len());
    let mut broken = conn.execute_batch("BEGIN IMMEDIATE").err().map(map_err);
    for job in batch {
        if broken.is_some() {
            finishers.push(job(None).1);
            continue;
        }
        if let Err(e) = conn.execute_batch("SAVEPOINT w") {
            broken = Some(map_err(e));
            finishers.push(job(None).1);
            continue;
        }
        let mark = heads.undo.len();
        let (ok, finish) = job(Some(&mut Tx { conn, heads }));
        finishers.push(finish);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (I/O error, full disk):
            // every write of the batch is gone.
            broken = Some(StoreError::Unavailable(
                "the database rolled back the transaction".into(),
            ));
            continue;
        }
        let end = if ok {
            conn.execute_batch("RELEASE w")
        } else {
            heads.undo_to(mark);
            conn.execute_batch("ROLLBACK TO w; RELEASE w")
        };
        if let Err(e) = end {
            broken = Some(map_err(e));
        }
    }
    let outcome = match broken {
        Some(e) => Err(e),
        None => conn.execute_batch("COMMIT").map_err(map_err),
    };
    match &outcome {
        Ok(()) => {
            // One undo entry per event appended (and not rolled back) in the batch.
            appended.add(heads.undo.len() as u64);
            heads.undo.clear();
        }
        Err(e) => {
            tracing::error!(error = %e, "a write transaction failed");
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            heads.reset();
        }
    }
    for f in finishers {
        f(outcome.clone());
    }
}

fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>) {
    loop {
        match stop.recv_timeout(Duration::from_secs(1)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
            // Closing: the writer has stopped; copy everything and empty the WAL.
            _ => {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "final WAL checkpoint failed");
                }
                return;
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::rows::FromRow;
    use strongroom_core::OrgId;
    use strongroom_core::audit::{Actor, GENESIS_HASH, verify_chain};

    fn record(org: OrgId, action: &str) -> PreparedAudit {
        PreparedAudit::new(&AuditRecord::new(
            org,
            Actor::Anonymous,
            action,
            "test",
            "r",
            serde_json::json!({}),
            None,
        ))
    }

    fn chain(db: &Db, org: OrgId) -> Vec<ChainedEvent> {
        db.read(|c| {
            query_all(
                c,
                "SELECT * FROM audit_events WHERE org_id = ? ORDER BY seq",
                [org.to_string()],
                ChainedEvent::from_row,
            )
        })
        .unwrap()
    }

    /// A write that appended an event and then failed is rolled back to its
    /// savepoint, and the cached chain head with it: the next event links to
    /// the last committed one.
    #[tokio::test]
    async fn failed_write_after_an_append_leaves_no_event_and_no_stale_head() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db.sqlite")).unwrap();
        let org = OrgId::new();
        let a = record(org, "first");
        db.write(move |tx| tx.audit(a)).await.unwrap();
        let b = record(org, "rolled-back");
        let r = db
            .write(move |tx| {
                tx.audit(b)?;
                Err::<(), _>(StoreError::Conflict("refused after the append".into()))
            })
            .await;
        assert!(matches!(r, Err(StoreError::Conflict(_))));
        let c = record(org, "third");
        db.write(move |tx| tx.audit(c)).await.unwrap();
        let events = chain(&db, org);
        let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["first", "third"]);
        assert_eq!(events[1].seq, 2);
        let v = verify_chain(&events, &[], 1, (GENESIS_HASH, None), &|_, _, _| false);
        assert!(v.chain_valid, "{v:?}");
    }

    /// A write that panics is rolled back and reported; the writer thread lives on.
    #[tokio::test]
    async fn a_panicking_write_is_contained() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db.sqlite")).unwrap();
        let org = OrgId::new();
        let a = record(org, "before-panic");
        let r = db
            .write(move |tx| {
                let after_the_append = !a.event.action.is_empty();
                tx.audit(a)?;
                if after_the_append {
                    panic!("bug in a write");
                }
                Ok(())
            })
            .await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))));
        let b = record(org, "after");
        db.write(move |tx| tx.audit(b)).await.unwrap();
        let events = chain(&db, org);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].action, "after");
        assert_eq!(events[0].seq, 1);
    }

    /// Many reads at once each get a connection, but only `MAX_IDLE_READERS`
    /// of them are kept afterwards: the connections (and their page caches,
    /// about 2 MiB each) do not pile up with the peak concurrency.
    #[test]
    fn the_idle_reader_pool_stays_bounded_after_a_burst_of_reads() {
        let dir = tempfile::tempdir().unwrap();
        let db = std::sync::Arc::new(Db::open(&dir.path().join("db.sqlite")).unwrap());
        let burst = 4 * MAX_IDLE_READERS;
        let all_in = std::sync::Arc::new(std::sync::Barrier::new(burst));
        let threads: Vec<_> = (0..burst)
            .map(|_| {
                let (db, all_in) = (db.clone(), all_in.clone());
                std::thread::spawn(move || {
                    // Every read holds its connection until all of them have one.
                    db.read(|c| {
                        all_in.wait();
                        query_i64(c, "SELECT COUNT(*) FROM settings", [])
                    })
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let idle = db.readers.lock().unwrap().len();
        assert_eq!(
            idle, MAX_IDLE_READERS,
            "{burst} concurrent reads left {idle} idle connections"
        );
    }

    /// Sustained writes with no idle moment for the background checkpoints:
    /// the WAL stays near its limit instead of growing with every write.
    #[tokio::test]
    async fn the_wal_stays_bounded_under_sustained_writes() {
        async fn wal_after_writes(limit: u64) -> u64 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db.sqlite");
            let db = Db::open_with_wal_limit(&path, limit).unwrap();
            for i in 0..400 {
                db.write(move |tx| {
                    exec(
                        tx,
                        "INSERT INTO settings (name, value) VALUES (?, ?)",
                        rusqlite::params![format!("k{i}"), "v".repeat(4000)],
                    )
                })
                .await
                .unwrap();
            }
            let len = std::fs::metadata(dir.path().join("db.sqlite-wal"))
                .unwrap()
                .len();
            // Every row is still there.
            let n = db
                .read(|c| query_i64(c, "SELECT COUNT(*) FROM settings", []))
                .unwrap();
            assert_eq!(n, 400);
            len
        }
        let unbounded = wal_after_writes(u64::MAX).await;
        let bounded = wal_after_writes(256 << 10).await;
        assert!(
            unbounded > 2 << 20,
            "the test needs a growing WAL: {unbounded}"
        );
        assert!(bounded < 1 << 20, "WAL of {bounded} bytes");
    }

    fn user_version(c: &Connection) -> i64 {
        c.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    /// The list is numbered 0001, 0002, … with no gap or repeat, so an
    /// appended migration that takes a taken number (or skips one) fails here.
    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, (name, sql)) in MIGRATIONS.iter().enumerate() {
            assert!(
                name.starts_with(&format!("{:04}_", i + 1)),
                "migration {i} is named {name}"
            );
            assert!(!sql.trim().is_empty(), "{name} is empty");
        }
    }

    /// A migration that fails changes nothing and leaves the version where it
    /// was; the ones before it stay applied; a later open resumes.
    #[test]
    fn a_failing_migration_is_rolled_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let c = open_conn(&dir.path().join("db.sqlite"), "FULL").unwrap();
        let first = ("0001_t", "CREATE TABLE t (x INTEGER);");
        let broken = (
            "0002_broken",
            "CREATE TABLE u (x INTEGER); INSERT INTO t VALUES (1); SELECT no_such_function();",
        );
        let e = apply_migrations(&c, &[first, broken]).unwrap_err();
        assert!(e.to_string().contains("0002_broken"), "{e}");
        assert_eq!(user_version(&c), 1);
        let tables = |name: &str| -> i64 {
            c.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                [name],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(tables("t"), 1);
        assert_eq!(tables("u"), 0);
        let rows: i64 = c
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
        let fixed = ("0002_fixed", "CREATE TABLE u (x INTEGER);");
        apply_migrations(&c, &[first, fixed]).unwrap();
        assert_eq!(user_version(&c), 2);
        assert_eq!(tables("u"), 1);
    }

    /// Writes after `close` fail cleanly instead of hanging.
    #[tokio::test]
    async fn writes_after_close_fail() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db.sqlite")).unwrap();
        db.close();
        let r = db.write(|_| Ok(())).await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))));
    }
}
