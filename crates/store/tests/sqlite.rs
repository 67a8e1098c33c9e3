//! Runs the conformance suite against the SQLite store.

mod conformance;

use std::sync::Arc;

use strongroom_store::Store;
use strongroom_store::sqlite::SqliteStore;

async fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    (dir, Arc::new(s))
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let (_dir, s) = fresh().await;
            conformance::$name(&*s).await;
        }
    )*};
}

conformance!(
    key_lifecycle,
    signup_gate,
    vaults,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_audit_appends() {
    let (_dir, s) = fresh().await;
    conformance::concurrent_audit_appends(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_writes_amid_concurrent_ones() {
    let (_dir, s) = fresh().await;
    conformance::failed_writes_amid_concurrent_ones(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers() {
    let (_dir, s) = fresh().await;
    conformance::concurrent_writers(s).await;
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db.sqlite");
    let (org, owner) = {
        let s = SqliteStore::open(&p).await.unwrap();
        let r = conformance::org_and_owner(
            &s,
            "a@example.com",
            strongroom_store::SignupGate::FirstOnly,
        )
        .await
        .unwrap();
        s.close().await;
        r
    };
    let s = SqliteStore::open(&p).await.unwrap();
    assert_eq!(
        s.user_by_id(owner.id).await.unwrap().unwrap().org_id,
        org.id
    );
}
