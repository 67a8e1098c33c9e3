//! The PostgreSQL store: every store trait on one PostgreSQL database, for a
//! deployment of several stateless `strongroom serve` nodes behind a load
//! balancer. PostgreSQL is the system of record; nodes share nothing else.
//!
//! - **Driver**: `tokio-postgres` (async, pipelining, rustls for TLS) with a
//!   `deadpool-postgres` pool per node. Why not `sqlx`: the store needs no
//!   query macros or ORM, only prepared statements, arrays and explicit
//!   transactions, and tokio-postgres is the smaller, lower-level driver that
//!   sqlx's own PostgreSQL support mirrors (docs/operations/postgres.md).
//! - **Writes**: each mutation is one transaction with its audit record, as
//!   on SQLite. New versions are a compare-and-set on the secret's head row,
//!   so concurrent writers on any nodes never lose or reuse a version.
//! - **Audit chain**: the record is committed in the transaction of the change
//!   into `audit_intake`; a sequencer links intake rows into the
//!   organisation's hash chain under the chain head's row lock (`chain`).
//!   Holding that lock across every audited transaction's commit would
//!   serialize an organisation's requests behind one WAL flush each.
//! - **Schema**: versioned migrations under an advisory lock (`migrate`).
//!
//! `rows` maps result rows to the store's types; the traits are implemented one
//! per file, as they are declared: `secrets`, `vaults`, `identity`,
//! `policies`, `audit`, `settings`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction};
use strongroom_store::{AuditAppendSignal, Reason, StoreError, StoreResult};

mod audit;
mod cache;
mod chain;
mod db;
mod identity;
pub mod import;
mod keyring;
mod leader;
pub mod migrate;
mod policies;
mod rows;
mod secrets;
mod settings;
mod tls;
mod vaults;

pub use keyring::PgKeyring;
pub use migrate::{MIGRATIONS, MigrationReport};

/// How to reach the database.
#[derive(Clone)]
pub struct PgOptions {
    /// A `postgres://` URL (or a libpq key/value string). Its `sslmode`
    /// decides TLS: `disable` turns it off; anything else (or none) means TLS
    /// with the server's certificate verified (see [`PgOptions::ca_file`]).
    pub url: String,
    /// Connections this node keeps at most.
    pub pool_size: usize,
    /// PEM file of the certificate authorities that may sign the database's
    /// certificate; the system's roots when `None`.
    pub ca_file: Option<PathBuf>,
    /// How long to wait for a connection (to open one, or for one of the pool).
    pub connect_timeout: Duration,
}

impl PgOptions {
    /// Options for a URL, with the defaults: 16 connections, system roots, 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            pool_size: 16,
            ca_file: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// PostgreSQL-backed [`strongroom_store::Store`].
pub struct PgStore {
    pool: Pool,
    /// What this node caches, forgotten on every node's changes (`cache`).
    cache: Arc<cache::NodeCache>,
    listener: tokio::task::JoinHandle<()>,
    chain: Arc<chain::Chain>,
    leader: leader::Lease,
    /// Audit events committed through this handle.
    appended: AuditAppendSignal,
    sequencer: tokio::task::JoinHandle<()>,
}

/// The database's words stay in the error's source; the URL (which may hold a
/// password) is never part of a message.
fn unavailable(
    what: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Unavailable(Reason::because(what, e))
}

impl PgStore {
    /// Connects, brings the schema up to date (refusing a database whose
    /// schema is newer than this build knows) and starts the audit sequencer.
    pub async fn connect(opts: &PgOptions) -> StoreResult<Self> {
        let pool = pool(opts)?;
        {
            let mut c = db::conn(&pool).await?;
            migrate::migrate(&mut c).await?;
        }
        let chain = Arc::new(chain::Chain::new(pool.clone()));
        let sequencer = chain.spawn();
        let cache = Arc::new(cache::NodeCache::new());
        let listener = cache::spawn_listener(&cache, pg_config(opts)?, tls::connector(opts)?);
        Ok(PgStore {
            leader: leader::Lease::new(pg_config(opts)?, tls::connector(opts)?),
            cache,
            listener,
            pool,
            chain,
            appended: AuditAppendSignal::new(),
            sequencer,
        })
    }

    /// Whether this node caches now: only while its invalidation channel is
    /// up and on time (`cache`).
    pub fn caching(&self) -> bool {
        self.cache.live()
    }

    /// Bulk import of another store's rows (`strongroom store copy`).
    pub fn importer(&self) -> import::Importer {
        import::Importer::new(self.pool.clone())
    }

    /// The key provider's sealed keyring entries in this database (for the
    /// `file` provider shared by many nodes).
    pub fn keyring(&self) -> PgKeyring {
        PgKeyring::new(self.pool.clone())
    }

    /// The count of audit events this handle has committed since it was
    /// opened (see [`AuditAppendSignal`]).
    pub fn audit_appends(&self) -> AuditAppendSignal {
        self.appended.clone()
    }

    /// Links every audit record still waiting, then closes the pool. Later
    /// calls fail as `Unavailable`.
    pub async fn close(&self) {
        self.sequencer.abort();
        self.listener.abort();
        if let Err(e) = self.chain.seal_all().await {
            tracing::warn!(error = %e, "audit records left for another node to link");
        }
        self.leader.release().await;
        self.pool.close();
    }

    /// After a write's transaction committed: its audit records are durable;
    /// have them linked into their chains soon.
    fn committed(&self, orgs: &[&str]) {
        self.appended.add(orgs.len() as u64);
        for org in orgs {
            self.chain.poke(org);
        }
    }
}

impl PgStore {
    /// Ends a write: its audit record into the intake, commit, then have the
    /// record linked.
    async fn finish(&self, tx: Transaction<'_>, a: &db::IntakeRecord) -> StoreResult<()> {
        self.finish_if(tx, true, a).await.map(drop)
    }

    /// Ends a write that may have changed nothing: audited (and committed)
    /// only if `changed`. Returns `changed`.
    async fn finish_if(
        &self,
        tx: Transaction<'_>,
        changed: bool,
        a: &db::IntakeRecord,
    ) -> StoreResult<bool> {
        self.finish_changing(tx, changed, Some(a), &[]).await
    }

    /// Ends a write that changes what nodes cache: if it changed anything,
    /// every node is told in the transaction (delivered at commit), and this
    /// node forgets at once after the commit.
    async fn finish_changing(
        &self,
        tx: Transaction<'_>,
        changed: bool,
        a: Option<&db::IntakeRecord>,
        changes: &[cache::Change],
    ) -> StoreResult<bool> {
        if changed {
            cache::announce(&tx, changes).await?;
            if let Some(a) = a {
                db::intake(&tx, a).await?;
            }
        }
        tx.commit().await.map_err(db::map_err)?;
        if changed {
            for c in changes {
                self.cache.forget(c);
            }
            if let Some(a) = a {
                self.committed(&[&a.org_id]);
            }
        }
        Ok(changed)
    }

    /// Ends a write whose audit record is optional (key maintenance run by
    /// an operator's command records its own summary).
    async fn finish_opt(
        &self,
        tx: Transaction<'_>,
        a: Option<&db::IntakeRecord>,
    ) -> StoreResult<()> {
        self.finish_changing(tx, true, a, &[]).await.map(drop)
    }
}

impl PgStore {
    /// Every row of a read-only query, on a connection of the pool.
    async fn all<T: rows::FromRow>(
        &self,
        sql: &str,
        params: db::Params<'_>,
    ) -> StoreResult<Vec<T>> {
        db::query_all(&db::conn(&self.pool).await?, sql, params).await
    }

    /// The first row of a read-only query, if any, on a connection of the pool.
    async fn opt<T: rows::FromRow>(
        &self,
        sql: &str,
        params: db::Params<'_>,
    ) -> StoreResult<Option<T>> {
        db::query_opt(&db::conn(&self.pool).await?, sql, params).await
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.sequencer.abort();
        self.listener.abort();
    }
}

fn pg_config(opts: &PgOptions) -> StoreResult<tokio_postgres::Config> {
    let mut cfg: tokio_postgres::Config = opts.url.parse().map_err(|e| {
        StoreError::Unavailable(Reason::because("the database URL does not parse", e))
    })?;
    if cfg.get_application_name().is_none() {
        cfg.application_name("strongroom");
    }
    cfg.connect_timeout(opts.connect_timeout);
    cfg.keepalives(true);
    cfg.keepalives_idle(Duration::from_secs(30));
    // TLS unless the URL turns it off; `prefer` would fall back to plain text
    // silently, so anything but `disable` requires it (and rustls verifies).
    if cfg.get_ssl_mode() != tokio_postgres::config::SslMode::Disable {
        cfg.ssl_mode(tokio_postgres::config::SslMode::Require);
    }
    Ok(cfg)
}

fn pool(opts: &PgOptions) -> StoreResult<Pool> {
    let mgr = Manager::from_config(
        pg_config(opts)?,
        tls::connector(opts)?,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(opts.pool_size.max(2))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(opts.connect_timeout))
        .create_timeout(Some(opts.connect_timeout))
        .recycle_timeout(Some(opts.connect_timeout))
        .build()
        .map_err(|e| unavailable("building the connection pool", e))
}

/// Brings a database's schema up to date and returns what changed, without
/// starting anything else (`strongroom migrate`).
pub async fn migrate_database(opts: &PgOptions) -> StoreResult<MigrationReport> {
    let pool = pool(opts)?;
    let mut c = db::conn(&pool).await?;
    let report = migrate::migrate(&mut c).await;
    drop(c);
    pool.close();
    report
}

impl std::fmt::Debug for PgOptions {
    /// The URL may hold a password: only where it points is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = pg_config(self)
            .map(|c| format!("{:?} / {:?}", c.get_hosts(), c.get_dbname()))
            .unwrap_or_else(|_| "<unparsable URL>".into());
        f.debug_struct("PgOptions")
            .field("target", &target)
            .field("pool_size", &self.pool_size)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}
