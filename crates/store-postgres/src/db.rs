//! Connections, statements and errors: the helpers every trait file uses.
//!
//! Statements are prepared once per connection (`prepare_cached`). A write is
//! a transaction on one pooled connection; its audit records go into
//! `audit_intake` in that transaction ([`intake`]), and the sequencer links
//! them into their chain after the commit (`crate::chain`).

use deadpool_postgres::{GenericClient, Object, Pool, PoolError};
use strongroom_core::audit::{AuditRecord, canonical_json};
use strongroom_core::time_util::to_micros;
use strongroom_store::{Reason, StoreError, StoreResult};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::rows::FromRow;

/// Statement parameters.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Maps a driver error: a uniqueness rule → `Conflict`; any other rule of the
/// schema (foreign key, `NOT NULL`, `CHECK`), or a value the column can't
/// hold → `Constraint`; a deadlock or serialization failure (the transaction
/// was rolled back: nothing happened) → `Conflict`, which callers retry
/// like any lost race; anything else (the connection, the server going down,
/// a full disk, a trigger's `RAISE`) → `Unavailable`. The database's message
/// stays in the error's source, never in what a caller sees.
pub(crate) fn map_err(e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else {
        return StoreError::Unavailable(Reason::of(e));
    };
    if *code == SqlState::UNIQUE_VIOLATION {
        let what = e
            .as_db_error()
            .and_then(|d| d.constraint())
            .unwrap_or("a uniqueness rule")
            .to_owned();
        return StoreError::Conflict(format!("already exists ({what})"));
    }
    if *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE {
        return StoreError::Conflict("a concurrent change won; try again".into());
    }
    let class = &code.code()[..2];
    match class {
        // Integrity constraint violation; data exception.
        "23" | "22" => StoreError::Constraint(Reason::of(e)),
        _ => StoreError::Unavailable(Reason::of(e)),
    }
}

fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => map_err(e),
        e => StoreError::Unavailable(Reason::because("no database connection", e)),
    }
}

/// A connection of the pool.
pub(crate) async fn conn(pool: &Pool) -> StoreResult<Object> {
    pool.get().await.map_err(pool_err)
}

/// Runs a statement, returning the number of rows it changed.
pub(crate) async fn exec(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<u64> {
    let stmt = c.prepare_cached(sql).await.map_err(map_err)?;
    c.execute(&stmt, params).await.map_err(map_err)
}

/// The first row of a query, if any, as it came.
pub(crate) async fn row_opt(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Option<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(map_err)?;
    c.query_opt(&stmt, params).await.map_err(map_err)
}

/// Every row of a query, as they came.
pub(crate) async fn rows(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(map_err)?;
    c.query(&stmt, params).await.map_err(map_err)
}

/// The first row of a query, mapped, if there is one.
pub(crate) async fn query_opt<T: FromRow>(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Option<T>> {
    row_opt(c, sql, params)
        .await?
        .as_ref()
        .map(T::from_row)
        .transpose()
}

/// Every row of a query, mapped.
pub(crate) async fn query_all<T: FromRow>(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Vec<T>> {
    rows(c, sql, params)
        .await?
        .iter()
        .map(T::from_row)
        .collect()
}

/// One `BIGINT` (`COUNT(*)` and the like).
pub(crate) async fn query_i64(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<i64> {
    let row = row_opt(c, sql, params)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a scalar query returned no row".into()))?;
    crate::rows::get(&row, 0)
}

/// The statement that puts an audit record into the intake; its parameters
/// come from [`IntakeRecord::params`], `$1` to `$10`.
pub(crate) const INTAKE_INSERT: &str = "INSERT INTO audit_intake
    (org_id, id, actor_type, actor_id, action, resource_type, resource_id, details, ip_address, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// An audit record as the intake stores it: text forms and canonical
/// details, computed before the transaction starts.
pub(crate) struct IntakeRecord {
    pub(crate) org_id: String,
    id: String,
    actor_type: &'static str,
    actor_id: String,
    action: String,
    resource_type: String,
    resource_id: String,
    details: String,
    ip_address: Option<String>,
    created_at: i64,
}

impl IntakeRecord {
    pub(crate) fn new(a: &AuditRecord) -> Self {
        IntakeRecord {
            org_id: a.org_id.to_string(),
            id: a.id.to_string(),
            actor_type: a.actor.kind(),
            actor_id: a.actor.id_string(),
            action: a.action.clone(),
            resource_type: a.resource_type.clone(),
            resource_id: a.resource_id.clone(),
            details: canonical_json(&a.details),
            ip_address: a.ip_address.clone(),
            created_at: to_micros(a.created_at),
        }
    }

    /// The ten parameters of [`INTAKE_INSERT`], in order.
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.org_id,
            &self.id,
            &self.actor_type,
            &self.actor_id,
            &self.action,
            &self.resource_type,
            &self.resource_id,
            &self.details,
            &self.ip_address,
            &self.created_at,
        ]
    }
}

/// Whether audit records are written at all (always, except in a benchmark
/// build asked to measure the log's cost).
pub(crate) fn audited() -> bool {
    #[cfg(feature = "bench-unaudited")]
    if strongroom_store::bench_unaudited() {
        return false;
    }
    true
}

/// Puts an audit record into the intake, in the caller's transaction, so the
/// record and the change commit together.
pub(crate) async fn intake(c: &impl GenericClient, a: &IntakeRecord) -> StoreResult<()> {
    if audited() {
        exec(c, INTAKE_INSERT, &a.params()).await?;
    }
    Ok(())
}
