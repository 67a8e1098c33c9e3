//! `strongroom store copy`: a SQLite data directory moved into PostgreSQL,
//! interrupted (kill -9) and resumed, verified, then served by a node on
//! PostgreSQL with the same root key: same accounts, same values, same
//! audit chain growing on.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::json;
use strongroom_pgtest::Cluster;

fn copy(from: &std::path::Path, to: &str, batch: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strongroom"));
    c.args(["store", "copy", "--batch-size", batch, "--to", to])
        .arg("--from")
        .arg(format!("sqlite:{}", from.display()))
        .env_remove("STRONGROOM_ROOT_KEY");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_directory_moves_to_postgres_interrupted_resumed_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sqlite");
    // Data on SQLite: secrets with versions, an agent with a policy, audit.
    let server = Server::start(&data);
    let mut owner = server.client();
    owner.signup("owner@example.com").await;
    let vault = owner.create_vault("prod").await;
    for i in 0..150 {
        owner
            .put_secret(&vault, &format!("app/k{i}"), &format!("v1-{i}"))
            .await;
        owner
            .put_secret(&vault, &format!("app/k{i}"), &format!("v2-{i}"))
            .await;
    }
    let agent = owner
        .post("/v1/agents", json!({"name": "bot"}))
        .await
        .expect(201);
    let agent_key = agent["api_key"].as_str().unwrap().to_owned();
    owner
        .post(
            &format!("/v1/vaults/{vault}/policies"),
            json!({"principal_type": "agent", "principal_id": agent["agent"]["id"],
                   "secret_path_pattern": "app/*", "permissions": ["read"]}),
        )
        .await
        .expect(201);
    for i in 0..50 {
        owner
            .get_secret(&vault, &format!("app/k{i}"))
            .await
            .expect(200);
    }
    let (status, _) = server.stop();
    assert!(status.success());

    let cluster = Cluster::shared();
    let url = cluster.fresh_database();
    let db = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();

    // Interrupted: killed while it copies, one row per transaction.
    let mut child = copy(&data, &url, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let n: u64 = cluster
            .try_psql(&db, "SELECT count(*) FROM secret_versions")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if n > 20 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the copy made no progress"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial: u64 = cluster
        .psql(&db, "SELECT count(*) FROM audit_events")
        .parse()
        .unwrap();
    let source_events: u64 = raw_db(&data)
        .query_row("SELECT count(*) FROM audit_events", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap() as u64;
    assert!(partial < source_events, "the copy was not interrupted");

    // Resumed: the same command finishes and verifies.
    let out = copy(&data, &url, "100").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("copied and verified"), "{stdout}");
    let source_versions: i64 = raw_db(&data)
        .query_row("SELECT count(*) FROM secret_versions", [], |r| r.get(0))
        .unwrap();
    assert!(source_versions >= 300);
    assert!(
        stdout.contains(&format!("{source_versions} versions' envelopes identical")),
        "{stdout}"
    );
    // Again: nothing new, still verified.
    let again = copy(&data, &url, "100").output().unwrap();
    assert!(again.status.success());
    // An envelope changed in PostgreSQL fails the verification.
    let pick = "secret_id = (SELECT min(secret_id) FROM secret_versions) AND version = 1";
    let iv = cluster.psql(
        &db,
        &format!("SELECT encode(iv, 'hex') FROM secret_versions WHERE {pick}"),
    );
    cluster.psql(
        &db,
        &format!("UPDATE secret_versions SET iv = '\\x000000000000000000000000' WHERE {pick}"),
    );
    let tampered = copy(&data, &url, "100").output().unwrap();
    assert!(!tampered.status.success());
    let err = String::from_utf8_lossy(&tampered.stderr);
    assert!(err.contains("differs in PostgreSQL"), "{err}");
    cluster.psql(
        &db,
        &format!("UPDATE secret_versions SET iv = decode('{iv}', 'hex') WHERE {pick}"),
    );
    // The database holds no key in the clear: only sealed keyring entries.
    let keys: u32 = cluster
        .psql(&db, "SELECT count(*) FROM keyring")
        .parse()
        .unwrap();
    assert!(keys >= 2, "the keyring was not copied");

    // A node on PostgreSQL with the directory's root key (and nothing else
    // of it) serves the same accounts, values and audit chain.
    let root = std::fs::read_to_string(data.join("root.key")).unwrap();
    let node = Launch::new(&dir.path().join("node"))
        .env("STRONGROOM_ROOT_KEY", root.trim())
        .arg("--database-url")
        .arg(&url)
        .start();
    let mut api = node.client();
    api.login("owner@example.com").await;
    for i in [0, 77, 149] {
        assert_eq!(
            api.get_secret(&vault, &format!("app/k{i}"))
                .await
                .expect(200)["value"],
            format!("v2-{i}")
        );
        assert_eq!(
            api.get(&format!("/v1/vaults/{vault}/secret-version/app/k{i}/1"))
                .await
                .expect(200)["value"],
            format!("v1-{i}")
        );
    }
    let t = api
        .post("/v1/auth/agent-token", json!({"api_key": agent_key}))
        .await
        .expect(200);
    let mut bot = node.client();
    bot.token = Some(t["access_token"].as_str().unwrap().to_owned());
    bot.get_secret(&vault, "app/k3").await.expect(200);
    let v = api.get("/v1/audit/verify").await.expect(200);
    assert_eq!(v["chain_valid"], true, "{v}");
    assert!(
        v["events_verified"].as_u64().unwrap() > source_events,
        "{v}"
    );
}
