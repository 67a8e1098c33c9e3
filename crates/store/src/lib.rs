//! Persistence. The [`Store`] trait is what the engine needs from a database:
//! the sum of small traits, one concern each ([`traits`]):
//!
//! | trait | owns |
//! |---|---|
//! | [`SecretStore`] | secret heads, versions, reads, listing, disable, delete |
//! | [`VaultKeyStore`] | vaults, their KEK references, stale and replaced wrapped DEKs |
//! | [`IdentityStore`] | organisations, users, invitations, agents, API keys, principal status, token revocation |
//! | [`PolicyStore`] | vault policies |
//! | [`AuditStore`] | audit appends, queries, chains, heads, checkpoints |
//! | [`SettingsStore`] | server-wide settings, health |
//!
//! [`sqlite::SqliteStore`] is the embedded default. Every back-end passes the
//! same conformance suite (`conformance`, behind the `conformance` feature).
//!
//! Design rules that keep back-ends interchangeable:
//! - every mutation is one trait call that runs in one transaction together with
//!   its audit record, so "changed but not audited" can't happen;
//! - new versions are allocated with a compare-and-set on the secret's head, so
//!   concurrent writers never lose or duplicate a version;
//! - the store never sees a plaintext or a DEK: it moves ciphertext, IVs, tags
//!   and wrapped DEKs as opaque bytes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod model;
pub mod sqlite;
pub mod traits;

pub use model::*;
pub use strongroom_core::Reason;
pub use traits::{
    AuditAppendSignal, AuditStore, IdentityStore, PolicyStore, SecretStore, SettingsStore,
    SignupGate, VaultKeyStore,
};

/// True when this is a benchmark build with `STRONGROOM_BENCH_UNAUDITED=1` set:
/// audit records are then not written. The cargo feature `bench-unaudited`
/// exists only so the benchmark can measure the audit log's cost against a run
/// without it; release builds never enable it, and even a build that does
/// audits unless the variable is also set.
#[cfg(feature = "bench-unaudited")]
pub fn bench_unaudited() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("STRONGROOM_BENCH_UNAUDITED").as_deref() == Ok("1"))
}

/// Errors from a store.
///
/// A [`Reason`] is what the store was doing and the error underneath (the
/// driver's own, a `rusqlite::Error` for SQLite), which is this error's
/// `source()`: it is kept whole on its way to the log, not formatted into the
/// message. SQLite's errors never quote the values bound to a statement.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness rule or a compare-and-set failed. The message is one a
    /// caller may see.
    Conflict(String),
    /// The database can't be reached, is locked, read-only or full.
    Unavailable(Reason),
    /// Stored data is malformed.
    Corrupt(Reason),
    /// A rule of the schema (a foreign key, `NOT NULL`, `CHECK`) refused the
    /// change: the data it refers to changed meanwhile, or a bug. Never an
    /// outage.
    Constraint(Reason),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Conflict(m) => write!(f, "conflict: {m}"),
            StoreError::Unavailable(r) => r.fmt_after("database unavailable", f),
            StoreError::Corrupt(r) => r.fmt_after("corrupt row", f),
            StoreError::Constraint(r) => r.fmt_after("constraint violated", f),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Conflict(_) => None,
            StoreError::Unavailable(r) | StoreError::Corrupt(r) | StoreError::Constraint(r) => {
                r.cause()
            }
        }
    }
}

impl From<StoreError> for strongroom_core::Error {
    /// The caller hears a fixed message; the store's own words (paths, driver
    /// messages) stay in the error's `source()`, for the server to log with
    /// the request id.
    fn from(e: StoreError) -> Self {
        use strongroom_core::{Conflict, Dependency, Error};
        match e {
            StoreError::Conflict(m) => Error::Conflict(m.into()),
            e @ StoreError::Unavailable(_) => Error::unavailable(Dependency::Database, e),
            e @ StoreError::Corrupt(_) => Error::internal(e),
            // The caller hears that the change conflicts; which rule refused
            // it (SQLite's words) is the cause, logged with the request id.
            e @ StoreError::Constraint(_) => Error::Conflict(Conflict::because(
                "the change conflicts with the current state of related data",
                e,
            )),
        }
    }
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the engine needs from a database: the sum of the store's
/// concerns. Implement the six traits and this one comes with them. The
/// engine holds an `Arc<dyn Store>`, on which every method of the six is
/// callable; code holding a concrete back-end imports the traits it uses.
pub trait Store:
    SecretStore + VaultKeyStore + IdentityStore + PolicyStore + AuditStore + SettingsStore
{
}

impl<T> Store for T where
    T: SecretStore + VaultKeyStore + IdentityStore + PolicyStore + AuditStore + SettingsStore
{
}
