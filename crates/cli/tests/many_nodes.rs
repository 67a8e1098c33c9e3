//! Three `strongroom serve` nodes on one PostgreSQL database, sharing one
//! key provider (Cloud KMS, here its stand-in: keys that live in a service
//! are shared by every node by nature), driven over real HTTP: concurrent writers never lose or reuse a version; a change made
//! on one node (a revoked token, a deactivated agent, a removed policy) is
//! enforced by the others within a second; the audit chain stays one chain
//! that verifies through the API and offline; a node killed under load loses
//! no acknowledged write while the others keep serving; and PostgreSQL going
//! down under load gives clean 503s, then service resumes by itself.

mod common;

#[path = "../../kms/tests/support/gcp_standin.rs"]
mod gcp_standin;

use std::time::Duration;

use common::load::*;
use common::*;
use serde_json::json;
use strongroom_pgtest::Cluster;

/// How soon a change on one node must be enforced by the others.
const STALENESS: Duration = Duration::from_secs(1);

struct Nodes {
    _dir: tempfile::TempDir,
    _kms: std::sync::Arc<gcp_standin::Fake>,
    servers: Vec<Server>,
    url: String,
}

impl Nodes {
    /// `n` nodes on `url`, sharing one key ring in the Cloud KMS stand-in.
    async fn start(n: usize, url: &str) -> Nodes {
        let (kms, endpoint) = gcp_standin::start().await;
        let ring = kms.create_key_ring("nodes", "global", "strongroom");
        let signing = kms.create_signing_key(&ring, "jwt");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("strongroom.toml");
        write_gcp_config(&config, "nodes", &signing, &endpoint);
        let servers = (0..n)
            .map(|i| {
                Launch::new(&dir.path().join(format!("node{i}")))
                    .arg("--config")
                    .arg(config.to_str().unwrap())
                    .arg("--database-url")
                    .arg(url)
                    .start()
            })
            .collect();
        Nodes {
            _dir: dir,
            _kms: kms,
            servers,
            url: url.to_owned(),
        }
    }

    /// A client of node `i` holding `token`.
    fn api(&self, i: usize, token: &Option<String>) -> Api {
        let mut a = self.servers[i].client();
        a.token = token.clone();
        a
    }
}

/// Signs up on node 0; answers the owner's client (node 0) and a vault.
async fn owner_and_vault(nodes: &Nodes) -> (Api, String) {
    let mut owner = nodes.servers[0].client();
    owner.signup("owner@example.com").await;
    let vault = owner.create_vault("shared").await;
    (owner, vault)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_on_three_nodes_never_lose_or_reuse_a_version_and_the_chain_verifies() {
    let url = Cluster::shared().fresh_database();
    let nodes = Nodes::start(3, &url).await;
    let (owner, vault) = owner_and_vault(&nodes).await;

    // Eight writers over the three nodes, all on one path.
    let mut tasks = vec![];
    for w in 0..8usize {
        let api = nodes.api(w % 3, &owner.token);
        let vault = vault.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = vec![];
            let mut conflicts = 0;
            for i in 0..15 {
                let value = format!("w{w}-{i}");
                // A careful client retries a 409 ("try again"): the server
                // gave up after its own retries, having written nothing.
                loop {
                    let r = api
                        .put(
                            &format!("/v1/vaults/{vault}/secrets/contended"),
                            json!({"value": value}),
                        )
                        .await;
                    if r.status == 409 {
                        conflicts += 1;
                        continue;
                    }
                    assert_eq!(r.status, 201, "writer {w}: {}", r.text);
                    acked.push((r.body["version"].as_u64().unwrap(), value));
                    break;
                }
            }
            (acked, conflicts)
        }));
    }
    let (mut acked, mut conflicts) = (vec![], 0);
    for t in tasks {
        let (a, c) = t.await.unwrap();
        acked.extend(a);
        conflicts += c;
    }
    // Contention costs retries, not correctness; most writes get through.
    assert!(conflicts < 60, "{conflicts} writes of 120 answered 409");
    let mut versions: Vec<u64> = acked.iter().map(|(v, _)| *v).collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=120).collect::<Vec<u64>>(),
        "versions of one path written on three nodes are not 1..=120, each once"
    );
    // Every acknowledged version reads back its value, from every node.
    for (i, (v, value)) in acked.iter().enumerate() {
        let api = nodes.api(i % 3, &owner.token);
        let r = api
            .get(&format!("/v1/vaults/{vault}/secret-version/contended/{v}"))
            .await
            .expect(200);
        assert_eq!(r["value"], value.as_str(), "v{v}");
    }

    let latest = acked.iter().max_by_key(|(v, _)| *v).unwrap().1.clone();
    // Then many paths: three writers per node, each on paths of its own,
    // while readers on every node read what they wrote.
    let loads: Vec<Load> = (0..3)
        .map(|i| {
            Load::start(
                &nodes.api(i, &owner.token),
                &vault,
                &format!("n{i}-"),
                3,
                1,
                vec![("contended".into(), latest.clone())],
                Duration::from_secs(10),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut seen = Seen::default();
    for l in loads {
        let s = l.stop().await;
        seen.writes.extend(s.writes);
        seen.reads.extend(s.reads);
    }
    assert!(seen.acked().count() > 30, "too few writes acknowledged");
    // Reads of the last version may race later writes: only 200s matter here.
    seen.reads.clear();
    assert_clean_failures(&seen, 201, "");
    let checked = assert_nothing_lost(&nodes.api(1, &owner.token), &vault, &seen).await;
    assert!(checked >= seen.acked().count());

    // One linear chain, whichever node wrote: it verifies through every
    // node's API, and offline with only the public key.
    for i in 0..3 {
        assert_audit_verifies(&nodes.api(i, &owner.token)).await;
    }
    let jwks = owner.get("/.well-known/jwks.json").await.expect(200);
    let keyfile = nodes._dir.path().join("jwks.json");
    std::fs::write(&keyfile, jwks.to_string()).unwrap();
    let (code, out, err) = run_cli(&[
        "audit",
        "verify",
        "--database-url",
        &nodes.url,
        "--public-key",
        keyfile.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": OK"), "{out}");
    let events = owner.get("/v1/audit/events?limit=1").await.expect(200);
    assert!(
        events["count"].as_u64().unwrap() > 120,
        "every write is audited: {events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_on_one_node_is_enforced_by_the_others_within_a_second() {
    let url = Cluster::shared().fresh_database();
    let nodes = Nodes::start(3, &url).await;
    let (owner, vault) = owner_and_vault(&nodes).await;
    owner.put_secret(&vault, "app/db", "s3cret").await;

    // A token revoked on node 0 is refused by nodes 1 and 2.
    let mut second = nodes.servers[0].client();
    second.login("owner@example.com").await;
    for i in 1..3 {
        nodes
            .api(i, &second.token)
            .get("/v1/vaults")
            .await
            .expect(200);
    }
    second.delete("/v1/auth/token").await.expect(204);
    for i in 1..3 {
        let api = nodes.api(i, &second.token);
        eventually(
            STALENESS,
            "a revoked token refused on another node",
            || async { api.get("/v1/vaults").await.status == 401 },
        )
        .await;
    }

    // An agent with a policy reads on node 2; the policy removed on node 0
    // stops it there, and the agent deactivated on node 1 stops it everywhere.
    let created = owner
        .post("/v1/agents", json!({"name": "bot"}))
        .await
        .expect(201);
    let agent_id = created["agent"]["id"].as_str().unwrap().to_owned();
    let key = created["api_key"].as_str().unwrap().to_owned();
    let grant = |pattern: &str| {
        json!({"principal_type": "agent", "principal_id": agent_id,
               "secret_path_pattern": pattern, "permissions": ["read"]})
    };
    let policy = owner
        .post(&format!("/v1/vaults/{vault}/policies"), grant("app/*"))
        .await
        .expect(201);
    let t = nodes
        .api(1, &None)
        .post("/v1/auth/agent-token", json!({"api_key": key}))
        .await
        .expect(200);
    let agent_token = Some(t["access_token"].as_str().unwrap().to_owned());
    let agent2 = nodes.api(2, &agent_token);
    agent2.get_secret(&vault, "app/db").await.expect(200);
    owner
        .delete(&format!(
            "/v1/vaults/{vault}/policies/{}",
            policy["id"].as_str().unwrap()
        ))
        .await
        .expect(204);
    eventually(
        STALENESS,
        "a removed policy enforced on another node",
        || async { agent2.get_secret(&vault, "app/db").await.status == 403 },
    )
    .await;
    owner
        .post(&format!("/v1/vaults/{vault}/policies"), grant("app/*"))
        .await
        .expect(201);
    agent2.get_secret(&vault, "app/db").await.expect(200);
    nodes
        .api(1, &owner.token)
        .delete(&format!("/v1/agents/{agent_id}"))
        .await;
    for i in [0, 2] {
        let api = nodes.api(i, &agent_token);
        eventually(
            STALENESS,
            "a deactivated agent refused on another node",
            || async { api.get_secret(&vault, "app/db").await.status == 401 },
        )
        .await;
    }

    // A KEK rotated on node 0: node 2's next write is under the new version
    // (a rewrap then finds only what was written before the rotation), and
    // everything reads back everywhere.
    let rotated = owner
        .post(&format!("/v1/vaults/{vault}/kek/rotate"), json!({}))
        .await
        .expect(200);
    let stale = rotated["remaining"].as_u64().unwrap();
    assert!(stale > 0, "{rotated}");
    let on2 = nodes.api(2, &owner.token);
    on2.put_secret(&vault, "app/after", "rotated").await;
    let rewrapped = nodes
        .api(1, &owner.token)
        .post(
            &format!("/v1/vaults/{vault}/kek/rewrap"),
            json!({"batch_size": 1000}),
        )
        .await
        .expect(200);
    assert_eq!(rewrapped["kek_version"], rotated["kek_version"]);
    assert_eq!(
        (
            rewrapped["rewrapped"].as_u64(),
            rewrapped["remaining"].as_u64()
        ),
        (Some(stale), Some(0)),
        "node 2 wrote under an old KEK version after the rotation: {rewrapped}"
    );
    for i in 0..3 {
        let api = nodes.api(i, &owner.token);
        assert_eq!(
            api.get_secret(&vault, "app/after").await.expect(200)["value"],
            "rotated"
        );
        assert_eq!(
            api.get_secret(&vault, "app/db").await.expect(200)["value"],
            "s3cret"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_under_load_loses_nothing_acknowledged_and_the_others_serve_on() {
    let url = Cluster::shared().fresh_database();
    let mut nodes = Nodes::start(3, &url).await;
    let (owner, vault) = owner_and_vault(&nodes).await;
    let seed = vec![("seed".to_owned(), "seed-value".to_owned())];
    owner.put_secret(&vault, "seed", "seed-value").await;
    let doomed = Load::start(
        &nodes.api(1, &owner.token),
        &vault,
        "doomed-",
        3,
        1,
        seed.clone(),
        Duration::from_secs(5),
    );
    let survivor = Load::start(
        &nodes.api(2, &owner.token),
        &vault,
        "survivor-",
        3,
        1,
        seed,
        Duration::from_secs(10),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    nodes.servers.remove(1).kill9();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let doomed = doomed.stop().await;
    let survivor = survivor.stop().await;
    // The survivor never noticed.
    assert!(
        survivor.writes.iter().all(|w| w.version.is_some()),
        "a write to a surviving node failed"
    );
    assert!(survivor.reads.iter().all(|r| r.status == 200));
    assert!(doomed.acked().count() > 0);
    let api = nodes.api(1, &owner.token);
    assert_nothing_lost(&api, &vault, &doomed).await;
    assert_nothing_lost(&api, &vault, &survivor).await;
    // The dead node's audit records are linked by the others.
    assert_audit_verifies(&api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_down_under_load_is_503_then_service_resumes_without_restarting_nodes() {
    let cluster = Cluster::start();
    let url = cluster.fresh_database();
    let nodes = Nodes::start(2, &url).await;
    let (owner, vault) = owner_and_vault(&nodes).await;
    owner.put_secret(&vault, "seed", "seed-value").await;
    let seed = vec![("seed".to_owned(), "seed-value".to_owned())];
    let loads: Vec<Load> = (0..2)
        .map(|i| {
            Load::start(
                &nodes.api(i, &owner.token),
                &vault,
                &format!("n{i}-"),
                2,
                1,
                seed.clone(),
                Duration::from_secs(10),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cluster.stop();
    let down = nodes.api(0, &owner.token);
    eventually(
        Duration::from_secs(10),
        "503 while the database is down",
        || async { down.get_secret(&vault, "seed").await.status == 503 },
    )
    .await;
    let health = down.get("/v1/health").await;
    assert_eq!(health.status, 503, "{}", health.text);
    assert_eq!(health.body["database"], "unavailable");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.restart();
    for i in 0..2 {
        await_writes_resume(
            &nodes.api(i, &owner.token),
            &vault,
            Duration::from_secs(20),
            "writes after the database came back",
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut seen = Seen::default();
    for l in loads {
        let s = l.stop().await;
        seen.writes.extend(s.writes);
        seen.reads.extend(s.reads);
    }
    assert!(seen.count(503).0 + seen.count(503).1 > 0, "no 503 seen");
    assert_clean_failures(&seen, 201, "the database is unavailable");
    let api = nodes.api(1, &owner.token);
    assert_nothing_lost(&api, &vault, &seen).await;
    assert_audit_verifies(&api).await;
    nodes
        .api(0, &owner.token)
        .get("/v1/health")
        .await
        .expect(200);
}

/// The embedded `file` provider on many nodes: its keyring lives in the
/// database, sealed by the root key each node is given, so nodes with
/// nothing on disk in common share every key; the database alone (or with
/// another root key) opens nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_provider_nodes_share_keys_through_the_database_sealed_by_the_root_key() {
    let cluster = Cluster::shared();
    let url = cluster.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let root = "5a".repeat(32);
    let start = |name: &str, root: &str| {
        Launch::new(&dir.path().join(name))
            .env("STRONGROOM_ROOT_KEY", root)
            .arg("--database-url")
            .arg(&url)
            .start()
    };
    let (a, b) = (start("a", &root), start("b", &root));
    let mut owner = a.client();
    owner.signup("owner@example.com").await;
    let vault = owner.create_vault("v").await;
    owner
        .put_secret(&vault, "db/password", "hunter2-CANARY")
        .await;
    // Node B verifies A's token and decrypts A's secret.
    let mut on_b = b.client();
    on_b.token = owner.token.clone();
    assert_eq!(
        on_b.get_secret(&vault, "db/password").await.expect(200)["value"],
        "hunter2-CANARY"
    );
    // Rotated on A; B's next write is under the new version.
    let rotated = owner
        .post(&format!("/v1/vaults/{vault}/kek/rotate"), json!({}))
        .await
        .expect(200);
    tokio::time::sleep(STALENESS).await;
    on_b.put_secret(&vault, "db/other", "after").await;
    let rewrapped = owner
        .post(
            &format!("/v1/vaults/{vault}/kek/rewrap"),
            json!({"batch_size": 1000}),
        )
        .await
        .expect(200);
    assert_eq!(
        rewrapped["rewrapped"], rotated["remaining"],
        "node B wrapped under a stale KEK version: {rewrapped}"
    );
    assert_eq!(
        owner.get_secret(&vault, "db/other").await.expect(200)["value"],
        "after"
    );
    // Nothing in either data directory holds a keyring; the database holds
    // only sealed entries.
    for node in ["a", "b"] {
        assert!(!dir.path().join(node).join("keyring.sealed").exists());
    }
    let dbname = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let entries = cluster.psql(dbname, "SELECT count(*) FROM keyring");
    assert!(entries.parse::<u32>().unwrap() >= 3, "{entries}");
    let dump = cluster.psql(dbname, "SELECT encode(sealed, 'hex') FROM keyring");
    assert!(!dump.contains(&hex::encode(b"hunter2-CANARY")));
    // A node given another root key can't open the keyring, so doesn't start.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
        .arg("--data-dir")
        .arg(dir.path().join("c"))
        .env("STRONGROOM_ROOT_KEY", "77".repeat(32))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("root key"), "{err}");
}
