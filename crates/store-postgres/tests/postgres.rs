//! Runs the store conformance suite against PostgreSQL (a throwaway cluster
//! for this test binary, a fresh database per case), plus what only this
//! back-end has: schema migrations under a lock, a newer schema refused, the
//! audit sequencer, an outage and its recovery.

use std::sync::Arc;

use strongroom_pgtest::Cluster;
use strongroom_store::{AuditStore, SignupGate, Store, StoreError, conformance};
use strongroom_store_postgres::{MIGRATIONS, PgOptions, PgStore, migrate_database};

async fn fresh() -> ((), Arc<dyn Store>) {
    let url = Cluster::shared().fresh_database();
    let s = PgStore::connect(&PgOptions::new(url)).await.unwrap();
    ((), Arc::new(s))
}

strongroom_store::conformance_suite!(fresh());

fn dbname(url: &str) -> String {
    url.rsplit('/')
        .next()
        .and_then(|s| s.split('?').next())
        .unwrap()
        .to_owned()
}

/// Nodes starting at once migrate once; migrating again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_migrate_once() {
    let url = Cluster::shared().fresh_database();
    let o = PgOptions::new(&url);
    let (a, b, c) = tokio::join!(
        PgStore::connect(&o),
        PgStore::connect(&o),
        PgStore::connect(&o)
    );
    for s in [a, b, c] {
        s.unwrap().close().await;
    }
    let applied = Cluster::shared().psql(
        &dbname(&url),
        "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations",
    );
    let want: Vec<String> = (1..=MIGRATIONS.len()).map(|n| n.to_string()).collect();
    assert_eq!(applied, want.join(","));
    let r = migrate_database(&o).await.unwrap();
    assert_eq!(
        (r.from, r.to),
        (MIGRATIONS.len() as u32, MIGRATIONS.len() as u32)
    );
}

/// A database a newer build migrated is refused, not misread.
#[tokio::test]
async fn a_schema_newer_than_this_build_is_refused() {
    let url = Cluster::shared().fresh_database();
    let o = PgOptions::new(&url);
    PgStore::connect(&o).await.unwrap().close().await;
    Cluster::shared().psql(
        &dbname(&url),
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'from the future', 0)",
    );
    match PgStore::connect(&o).await {
        Err(StoreError::Unavailable(r)) => {
            assert!(r.to_string().contains("newer than this build"), "{r}")
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
}

/// One node at a time signs checkpoints; when it stops, another takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_holds_the_checkpoint_lease_until_it_stops() {
    let url = Cluster::shared().fresh_database();
    let o = PgOptions::new(&url);
    let a = PgStore::connect(&o).await.unwrap();
    let b = PgStore::connect(&o).await.unwrap();
    assert!(a.checkpoint_lease().await.unwrap());
    assert!(a.checkpoint_lease().await.unwrap(), "the holder keeps it");
    assert!(!b.checkpoint_lease().await.unwrap(), "two holders at once");
    a.close().await;
    assert!(b.checkpoint_lease().await.unwrap(), "not taken over");
}

/// Audit records a node committed but did not link before it died are
/// linked, in order, by another node; the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_dead_node_left_unlinked_are_linked_by_another() {
    use strongroom_core::audit::{GENESIS_HASH, verify_chain};
    let url = Cluster::shared().fresh_database();
    let s = PgStore::connect(&PgOptions::new(&url)).await.unwrap();
    let (org, _) = conformance::org_and_owner(&s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    s.append_audit(&conformance::audit(org.id, "before"))
        .await
        .unwrap();
    // What a node that died between commit and link leaves behind.
    Cluster::shared().psql(
        &dbname(&url),
        &format!(
            "INSERT INTO audit_intake (org_id, id, actor_type, actor_id, action, resource_type, resource_id, details, created_at)
             SELECT '{}', gen_random_uuid()::text, 'system', 'system', 'left-' || g, 'org', 'x', '{{}}', 1
             FROM generate_series(1, 3) g",
            org.id
        ),
    );
    let chain = s.audit_chain(org.id, 1, 100).await.unwrap();
    assert_eq!(
        chain.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["auth.signup", "before", "left-1", "left-2", "left-3"]
    );
    let r = verify_chain(&chain, &[], 1, (GENESIS_HASH, None), &|_, _, _| false);
    assert!(r.chain_valid, "{r:?}");
    let waiting = Cluster::shared().psql(&dbname(&url), "SELECT count(*) FROM audit_intake");
    assert_eq!(waiting, "0");
}

/// TLS to the database is required unless the URL turns it off, and the
/// server's certificate is verified against the configured CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_required_and_the_certificate_verified() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let cluster = Cluster::start_with_tls(&server.pem(), &server_key.serialize_pem());
    let dir = tempfile_dir();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    // No sslmode: TLS required and verified.
    let url = format!("postgres://postgres@localhost:{}/postgres", cluster.port());

    let mut verified = PgOptions::new(&url);
    verified.ca_file = Some(ca_file.clone());
    PgStore::connect(&verified).await.unwrap().close().await;

    // The system's roots don't know this CA: refused.
    assert!(PgStore::connect(&PgOptions::new(&url)).await.is_err());
    // A server without TLS is refused unless the URL says `sslmode=disable`.
    let plain = Cluster::shared()
        .url("postgres")
        .replace("?sslmode=disable", "");
    let mut o = PgOptions::new(plain);
    o.ca_file = Some(ca_file);
    assert!(PgStore::connect(&o).await.is_err());
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("strongroom-pgtls-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A node caches policies and principals; a change made through another
/// node reaches it within the bound; a change behind every node's back (no
/// notification) shows the cache is really used; when the invalidation
/// channel drops, the node stops caching until it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_are_invalidated_across_nodes_and_off_without_the_channel() {
    use strongroom_core::Subject;
    use strongroom_store::{IdentityStore, PolicyStore};
    let url = Cluster::shared().fresh_database();
    let db = dbname(&url);
    let o = PgOptions::new(&url);
    let (a, b) = (
        PgStore::connect(&o).await.unwrap(),
        PgStore::connect(&o).await.unwrap(),
    );
    until("both nodes caching", || a.caching() && b.caching()).await;
    let (org, owner) = conformance::org_and_owner(&a, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let vault = conformance::vault(&a, &org, &owner).await;
    let who = Subject::User(owner.id);
    let row = conformance::policy_row(&vault, who, "app/*");
    a.create_policy(&row, &conformance::audit(org.id, "policy.create"))
        .await
        .unwrap();
    // Once the creation's notification has reached B, B caches what it reads.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(b.policies_for(vault.id, &who).await.unwrap().len(), 1);

    // Behind every node's back: B still answers from its cache.
    Cluster::shared().psql(&db, "UPDATE policies SET priority = 77");
    assert_ne!(
        b.policies_for(vault.id, &who).await.unwrap()[0].priority,
        77
    );
    // Through node A: B forgets within the bound.
    let mut changed = row.clone();
    changed.policy.priority = 5;
    a.update_policy(&changed, &conformance::audit(org.id, "policy.update"))
        .await
        .unwrap();
    let start = std::time::Instant::now();
    while b.policies_for(vault.id, &who).await.unwrap()[0].priority != 5 {
        assert!(start.elapsed() < std::time::Duration::from_millis(500));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // A revocation through A: B refuses the token within the bound.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !b.principal_status(org.id, &who, Some("jti-1"))
            .await
            .unwrap()
            .revoked
    );
    // (cached: a revocation behind every node's back is not seen)
    Cluster::shared().psql(&db, "INSERT INTO revoked_tokens VALUES ('jti-1', 1)");
    assert!(
        !b.principal_status(org.id, &who, Some("jti-1"))
            .await
            .unwrap()
            .revoked
    );
    Cluster::shared().psql(&db, "DELETE FROM revoked_tokens");
    a.revoke_token(
        "jti-1",
        time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        &conformance::audit(org.id, "auth.logout"),
    )
    .await
    .unwrap();
    let start = std::time::Instant::now();
    while !b
        .principal_status(org.id, &who, Some("jti-1"))
        .await
        .unwrap()
        .revoked
    {
        assert!(start.elapsed() < std::time::Duration::from_millis(500));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // The channel drops: no node caches until it is back, so a change
    // nobody announces is seen at once.
    Cluster::shared().psql(
        &db,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'strongroom-cache-listener' AND datname = current_database()",
    );
    until("caching off without the channel", || !b.caching()).await;
    Cluster::shared().psql(&db, "UPDATE policies SET priority = 42");
    assert_eq!(
        b.policies_for(vault.id, &who).await.unwrap()[0].priority,
        42
    );
    until("caching back with the channel", || {
        a.caching() && b.caching()
    })
    .await;
}
