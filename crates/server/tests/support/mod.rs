//! The in-process server both router test suites drive: a fresh SQLite store in
//! a temporary directory, the memory key provider, cheap password hashing.

use std::sync::Arc;

use axum::Router;
use strongroom_crypto::password::PasswordParams;
use strongroom_engine::{Admin, EngineConfig};
use strongroom_kms::KeyProvider;
use strongroom_kms::soft::SoftProvider;
use strongroom_server::{AppState, router};
use strongroom_store::sqlite::SqliteStore;

/// The router, its engine's administrative handle, and the directory holding the database (keep it alive).
#[allow(dead_code)] // not every suite uses every helper
pub async fn app() -> (Router, Arc<Admin>, tempfile::TempDir) {
    app_with_provider(Arc::new(SoftProvider::memory().expect("memory provider"))).await
}

/// [`app`] over the given key provider.
#[allow(dead_code)] // not every suite uses every helper
pub async fn app_with_provider(
    kms: Arc<dyn KeyProvider>,
) -> (Router, Arc<Admin>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("db.sqlite"))
            .await
            .expect("store opens"),
    );
    let (app, admin) = app_over(store, kms).await;
    (app, admin, dir)
}

/// The router over a store the test keeps a handle on (to close it, or to
/// change its database behind the server's back).
#[allow(dead_code)] // not every suite uses every helper
pub async fn app_over(store: Arc<SqliteStore>, kms: Arc<dyn KeyProvider>) -> (Router, Arc<Admin>) {
    let admin = Arc::new(
        Admin::new(
            store,
            kms,
            EngineConfig {
                password_params: PasswordParams {
                    m_cost: 256,
                    t_cost: 1,
                },
                ..Default::default()
            },
        )
        .await
        .expect("engine starts"),
    );
    let app = router(AppState {
        engine: admin.engine().clone(),
        metrics: None,
    });
    (app, admin)
}
