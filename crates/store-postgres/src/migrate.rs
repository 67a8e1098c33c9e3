//! Versioned schema migrations, applied under an advisory lock so that nodes
//! starting at once migrate once: the first takes the lock and migrates, the
//! others wait for it, then find nothing left to do.
//!
//! `schema_migrations` records each applied migration in the transaction
//! that applies it. A database with a migration this build does not know (a
//! newer build migrated it) is refused: this build would misread or damage
//! what it doesn't know.

use deadpool_postgres::Object;
use strongroom_core::time_util::{now, to_micros};
use strongroom_store::{Reason, StoreError, StoreResult};

use crate::db::map_err;

/// The schema's migrations, in order: `MIGRATIONS[n]` takes the schema from
/// version n to n + 1. Append a new one at the end; never edit or reorder one
/// that has shipped.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../migrations/0001_init.sql")),
    (
        "0002_keyring",
        include_str!("../migrations/0002_keyring.sql"),
    ),
];

/// The advisory lock key of migrations ("strongroom migrate").
const MIGRATE_LOCK: i64 = 0x5354_524f_4e47_4d49;

/// What [`migrate`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// The schema version before.
    pub from: u32,
    /// The schema version now (the last this build knows).
    pub to: u32,
}

fn failed(e: tokio_postgres::Error) -> StoreError {
    match map_err(e) {
        StoreError::Unavailable(r) => StoreError::Unavailable(r),
        other => StoreError::Unavailable(Reason::because("migrating the database", other)),
    }
}

/// Brings the schema up to the last of [`MIGRATIONS`], each in a transaction
/// of its own, holding the migration lock throughout.
pub async fn migrate(c: &mut Object) -> StoreResult<MigrationReport> {
    // The lock first: creating the bookkeeping table is itself a change two
    // nodes starting at once would race on.
    c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(failed)?;
    let result = match c
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version     BIGINT PRIMARY KEY,
                name        TEXT NOT NULL,
                applied_at  BIGINT NOT NULL
            )",
        )
        .await
    {
        Ok(()) => apply(c).await,
        Err(e) => Err(failed(e)),
    };
    let unlocked = c
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK])
        .await;
    let report = result?;
    unlocked.map_err(failed)?;
    Ok(report)
}

async fn apply(c: &mut Object) -> StoreResult<MigrationReport> {
    let known = MIGRATIONS.len() as i64;
    let version: i64 = c
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(failed)?;
    if version > known {
        return Err(StoreError::Unavailable(
            format!(
                "the database schema is at version {version}, newer than this build knows ({known}): \
                 run a build at least as new as the one that migrated it"
            )
            .into(),
        ));
    }
    for (n, (name, sql)) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = c.transaction().await.map_err(failed)?;
        tx.batch_execute(sql).await.map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&(n as i64 + 1), name, &to_micros(now())],
        )
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        tracing::info!(migration = name, "database schema migrated");
    }
    Ok(MigrationReport {
        from: version as u32,
        to: known as u32,
    })
}
