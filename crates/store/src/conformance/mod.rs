//! The store conformance suite: every [`Store`](crate::Store) back-end must pass it
//! unchanged (like OpenBao's `crosstest`). Each case takes a fresh, empty
//! store and panics on the first difference.
//!
//! Built only with the `conformance` cargo feature. A back-end runs every case
//! with [`conformance_suite!`](crate::conformance_suite) in one of its test
//! files, given a factory of fresh stores:
//!
//! ```ignore
//! // Cargo.toml: [dev-dependencies]
//! // strongroom-store = { workspace = true, features = ["conformance"] }
//! // tokio = { workspace = true }
//! async fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) { /* a new, empty store */ }
//! strongroom_store::conformance_suite!(fresh());
//! ```
//!
//! The helpers (`org_and_owner`, `vault`, `audit`, …) are public so a
//! back-end's own tests can build the same fixtures.

/// Generates one `#[tokio::test]` per conformance case, each on a store of its
/// own. `$fresh` is an expression evaluated once per test, to a future of
/// `(guard, Arc<dyn Store>)`: the store must be new and empty, and `guard`
/// (a temporary directory, a database to drop) lives until the test ends.
/// The calling crate needs `tokio` (with `macros` and the multi-threaded
/// runtime) among its dev-dependencies.
///
/// Every case of the suite is listed here, so a back-end that invokes this
/// runs a case added later without changing its own tests.
#[macro_export]
macro_rules! conformance_suite {
    ($fresh:expr) => {
        $crate::conformance_suite!(@each $fresh;
            key_lifecycle,
            signup_gate,
            vaults,
            refused_changes_are_not_outages,
            versions,
            listing_and_delete,
            access_counting,
            audit_log,
            invitations,
            users_and_roles,
            delete_user_cascade,
            principal_status,
            token_revocation,
            agents,
            api_keys,
            policies,
            settings,
            system_vaults,
            token_generations
        );
        $crate::conformance_suite!(@concurrent $fresh;
            concurrent_audit_appends,
            failed_writes_amid_concurrent_ones,
            concurrent_writers
        );
    };
    (@each $fresh:expr; $($name:ident),* $(,)?) => {$(
        #[::tokio::test]
        async fn $name() {
            let (_guard, store) = $fresh.await;
            $crate::conformance::$name(&*store).await;
        }
    )*};
    (@concurrent $fresh:expr; $($name:ident),* $(,)?) => {$(
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_guard, store) = $fresh.await;
            $crate::conformance::$name(store).await;
        }
    )*};
}

/// Evaluates `$call` and asserts it appended exactly `$n` events to `$org`'s
/// audit chain (one per successful mutation, none for a refusal).
macro_rules! audited {
    ($s:expr, $org:expr, $n:expr, $call:expr) => {{
        let before = chain_len($s, $org).await;
        let r = $call;
        assert_eq!(
            chain_len($s, $org).await,
            before + $n,
            "audit events appended by `{}`",
            stringify!($call)
        );
        r
    }};
}

mod fixtures;

mod audit;
mod identity;
mod policies;
mod secrets;
mod settings;
mod vaults;

pub use audit::*;
pub use fixtures::{audit, chain_len, join, new_version, org_and_owner, policy_row, vault};
pub use identity::*;
pub use policies::*;
pub use secrets::*;
pub use settings::*;
pub use vaults::*;
