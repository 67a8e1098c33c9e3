//! Crashes (`kill -9`) in the middle of long operations, on the real binary:
//! a KEK rewrap (the server killed under `strongroom kek rewrap`), a KEK
//! migration to SoftHSM2 (`strongroom kek migrate` killed), and a schema
//! migration at start (the server killed while it migrates an old database).
//! Each resumes when run again, and every value reads back afterwards.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// (vault, path, version, value) of every version written.
type Written = Vec<(String, String, u64, String)>;

/// `per_vault` secrets in each vault, every fourth with a second version,
/// written by 8 concurrent clients.
async fn populate(api: &Api, vaults: &[String], per_vault: usize) -> Written {
    let mut jobs = vec![];
    for v in vaults {
        for i in 0..per_vault {
            jobs.push((v.clone(), format!("s/{i}"), format!("{v}-value-{i}")));
            if i % 4 == 0 {
                jobs.push((v.clone(), format!("s/{i}"), format!("{v}-value-{i}-v2")));
            }
        }
    }
    let mut written = vec![];
    // Versions of one path are written in order: chunk by path.
    for chunk in jobs.chunks(8) {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (v, p, val)) in chunk.iter().cloned().enumerate() {
            let api = api.clone();
            // A second version waits for its first (the same chunk may hold both).
            let after_first = i > 0 && chunk[i - 1].1 == p;
            tasks.spawn(async move {
                if after_first {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let b = api.put_secret(&v, &p, &val).await;
                (v, p, b["version"].as_u64().unwrap(), val)
            });
        }
        while let Some(r) = tasks.join_next().await {
            written.push(r.unwrap());
        }
    }
    written
}

/// Every version written reads back its value.
async fn assert_all_readable(api: &Api, written: &Written) {
    for (v, p, n, val) in written {
        let r = api
            .get(&format!("/v1/vaults/{v}/secret-version/{p}/{n}"))
            .await;
        assert_eq!(r.status, 200, "{v} {p} v{n}: {}", r.text);
        assert_eq!(r.body["value"], val.as_str(), "{v} {p} v{n}");
    }
}

fn count(data: &Path, sql: &str) -> i64 {
    raw_db(data).query_row(sql, [], |r| r.get(0)).unwrap()
}

fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn kek_cli(base: &str, token: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strongroom"));
    c.arg("kek")
        .args(args)
        .env("STRONGROOM_URL", base)
        .env("STRONGROOM_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_killed_during_a_kek_rewrap_resumes_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("rewrap").await;
    let written = populate(&api, std::slice::from_ref(&vault), 400).await;
    let token = api.token.clone().unwrap();
    let out = kek_cli(&server.base, &token, &["rotate", "--vault", &vault])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stale_sql = format!(
        "SELECT COUNT(*) FROM secret_versions WHERE vault_id = '{vault}' AND kek_version = 1"
    );
    let total = count(&data, &stale_sql);
    assert_eq!(total, written.len() as i64);

    // Kill the server when a fifth, half and four fifths are done.
    let mut server = server;
    let mut killed_at = vec![];
    for fraction in [0.8, 0.5, 0.2] {
        let mut rewrap = kek_cli(
            &server.base,
            &token,
            &["rewrap", "--vault", &vault, "--batch", "3"],
        )
        .spawn()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stale = count(&data, &stale_sql);
            if stale as f64 <= total as f64 * fraction || rewrap.try_wait().unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "the rewrap made no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        server.kill9();
        let status = rewrap.wait().unwrap();
        let stale = count(&data, &stale_sql);
        killed_at.push(stale);
        assert!(
            !status.success() || stale == 0,
            "the rewrap said it finished with {stale} DEKs left"
        );
        server = Server::start(&data);
    }
    eprintln!("{total} DEKs; killed with {killed_at:?} left under the old version");
    assert!(
        killed_at.iter().filter(|s| **s > 0 && **s < total).count() >= 2,
        "too few kills landed mid-rewrap: {killed_at:?}"
    );

    // Run again to the end, on the server that came back.
    let out = kek_cli(&server.base, &token, &["rewrap", "--vault", &vault])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all under KEK version 2"), "{stdout}");
    assert_eq!(count(&data, &stale_sql), 0);
    let mut api = server.client();
    api.token = Some(token);
    assert_all_readable(&api, &written).await;
    let v = api.get("/v1/audit/verify").await.expect(200);
    assert_eq!(v["chain_valid"], true, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kek_migration_killed_midway_resumes_and_every_value_reads_on_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let mut vaults = vec![];
    // Many vaults: each is a step the kills below can land between.
    for i in 0..8 {
        vaults.push(api.create_vault(&format!("v{i}")).await);
    }
    let written = populate(&api, &vaults, 50).await;
    // The signing key moves with the provider: checkpoints signed before the
    // move verify offline with a JWKS that lists both keys (docs/audit.md).
    let jwks_before = api.get("/.well-known/jwks.json").await.expect(200);
    let (status, _) = server.stop();
    assert!(status.success());

    let env: Vec<(String, String)> = softhsm_env(&dir.path().join("hsm"), "crash")
        .into_iter()
        .filter(|(k, _)| k != "STRONGROOM_KMS_PROVIDER")
        .collect();
    let migrate = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_strongroom"));
        c.args([
            "kek",
            "migrate",
            "--from",
            "file",
            "--to",
            "pkcs11",
            "--data-dir",
        ])
        .arg(&data)
        .envs(env.iter().cloned())
        .env_remove("STRONGROOM_KMS_PROVIDER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        c
    };
    // Where the migration is: vaults moved, vaults mid-move, DEKs already
    // under a migration's target KEK.
    let watch = raw_db(&data);
    let progress = || {
        let c = &watch;
        let q = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        (
            q(
                "SELECT COUNT(*) FROM vaults WHERE kek_provider = 'pkcs11' AND pending_kek_ref IS NULL",
            ),
            q("SELECT COUNT(*) FROM vaults WHERE pending_kek_ref IS NOT NULL"),
            q(
                "SELECT COUNT(*) FROM secret_versions sv JOIN vaults v ON v.id = sv.vault_id \
               WHERE sv.kek_ref = v.pending_kek_ref",
            ),
        )
    };
    let all_vaults = count(&data, "SELECT COUNT(*) FROM vaults");
    // Kill it each time it has moved on from where the last run left it.
    let mut states = vec![];
    let mut finished = false;
    for _ in 0..6 {
        let before = progress();
        let mut child = migrate().spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                assert!(
                    st.success(),
                    "a migration run failed: {:?}",
                    child.wait_with_output()
                );
                finished = true;
                break;
            }
            if progress() != before {
                kill9(&mut child);
                break;
            }
            assert!(Instant::now() < deadline, "the migration made no progress");
            std::thread::sleep(Duration::from_millis(1));
        }
        if finished {
            break;
        }
        states.push(progress());
    }
    eprintln!(
        "{all_vaults} vaults; killed at (moved, mid-move, DEKs under the target): {states:?}"
    );
    let mid = states
        .iter()
        .filter(|(moved, _, _)| *moved < all_vaults)
        .count();
    assert!(mid >= 2, "too few kills landed mid-migration: {states:?}");
    if !finished {
        let out = migrate().output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    assert_eq!(progress(), (all_vaults, 0, 0));

    let server = Launch::new(&data).envs(&softhsm_env_again(&env)).start();
    let mut api = server.client();
    api.login("owner@example.com").await;
    assert_eq!(
        api.get("/v1/health/hsm").await.expect(200)["provider"],
        "pkcs11"
    );
    assert_all_readable(&api, &written).await;
    api.put_secret(&vaults[0], "after", "migration").await;
    // Online, with the new key only: every event verifies; what fails is the
    // signature of a checkpoint made with the old key, as documented.
    let v = api.get("/v1/audit/verify").await.expect(200);
    assert_eq!(v["events_verified"], v["events_checked"], "{v}");
    if v["chain_valid"] == false {
        assert!(
            v["reason"]
                .as_str()
                .unwrap()
                .contains("signature does not verify"),
            "{v}"
        );
    }
    let mut both = api.get("/.well-known/jwks.json").await.expect(200);
    both["keys"]
        .as_array_mut()
        .unwrap()
        .extend(jwks_before["keys"].as_array().unwrap().iter().cloned());
    let (status, _) = server.stop();
    assert!(status.success());
    let jwks = dir.path().join("both-keys.json");
    std::fs::write(&jwks, both.to_string()).unwrap();
    let (code, out, err) = run_cli(&[
        "audit",
        "verify",
        "--data-dir",
        data.to_str().unwrap(),
        "--public-key",
        jwks.to_str().unwrap(),
    ]);
    assert_eq!(
        code, 0,
        "the chain and every checkpoint verify with both keys:\n{out}{err}"
    );
}

/// The token's environment with the provider chosen.
fn softhsm_env_again(env: &[(String, String)]) -> Vec<(String, String)> {
    let mut e = env.to_vec();
    e.push(("STRONGROOM_KMS_PROVIDER".into(), "pkcs11".into()));
    e
}

/// The columns of a table.
fn columns(c: &rusqlite::Connection, table: &str) -> Vec<String> {
    c.prepare(&format!("PRAGMA table_info({table})"))
        .unwrap()
        .query_map([], |r| r.get::<_, String>("name"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Takes a data directory's database back to the first schema (what a build
/// from before migrations 0002 and 0003 left), keeping its data, and adds
/// `filler` deleted secrets so migration 0002 has rows to work through.
fn downgrade_to_first_schema(data: &Path, filler: u32) {
    let first = include_str!("../../store/migrations/sqlite/0001_init.sql");
    let start = first.find("CREATE TABLE invitations").unwrap();
    let invitations = &first[start..start + first[start..].find(");").unwrap() + 2];
    let c = raw_db(data);
    c.pragma_update(None, "foreign_keys", "OFF").unwrap();
    let vault: String = c
        .query_row(
            "SELECT id FROM vaults WHERE kind = 'standard' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    c.execute_batch(&format!(
        "BEGIN;
         DROP INDEX vaults_one_agent_keys;
         ALTER TABLE vaults DROP COLUMN kind;
         ALTER TABLE agents DROP COLUMN token_generation;
         ALTER TABLE secret_versions DROP COLUMN deleted_at;
         DROP TABLE invitations;
         {invitations};
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {filler})
         INSERT INTO secrets SELECT 'filler-' || i, '{vault}', 'filler/' || i, 1, 5, 1, 5 FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {filler})
         INSERT INTO secret_versions SELECT 'filler-' || i, 1, '{vault}', 'filler/' || i, 'generic', '{{}}',
             NULL, NULL, 0, 0, 1, x'00', x'00', x'00', x'00', 'none', 1, 'user:none', 1 FROM n;
         PRAGMA user_version = 1;
         COMMIT;"
    ))
    .unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
}

/// The schema a database is at, checked against what it holds: each
/// migration's columns are there exactly when `user_version` says it ran.
fn schema_state(data: &Path) -> i64 {
    let c = raw_db(data);
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "at schema {v}");
    let has = |t: &str, col: &str| columns(&c, t).iter().any(|n| n == col);
    assert_eq!(
        has("secret_versions", "deleted_at"),
        v >= 2,
        "at schema {v}"
    );
    assert_eq!(has("invitations", "token_hash"), v >= 2, "at schema {v}");
    assert_eq!(has("vaults", "kind"), v >= 3, "at schema {v}");
    assert_eq!(has("agents", "token_generation"), v >= 3, "at schema {v}");
    if v >= 2 {
        // 0002 marks the versions of deleted secrets, all or none.
        let unmarked: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM secret_versions WHERE secret_id LIKE 'filler-%' AND deleted_at IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unmarked, 0, "a half-applied migration 0002");
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_killed_while_migrating_an_old_schema_resumes_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("old").await;
    let written = populate(&api, std::slice::from_ref(&vault), 100).await;
    api.put_secret(&vault, "gone", "deleted-before").await;
    api.delete(&format!("/v1/vaults/{vault}/secrets/gone"))
        .await
        .expect(204);
    let (status, _) = server.stop();
    assert!(status.success());
    downgrade_to_first_schema(&data, 60_000);
    let pristine = dir.path().join("pristine");
    copy_tree(&data, &pristine);

    // How long a start takes on this machine, migration included (a copy).
    let calib = dir.path().join("calib");
    copy_tree(&pristine, &calib);
    let t = Instant::now();
    let s = Server::start(&calib);
    let full_start = t.elapsed();
    assert!(
        s.logs()
            .contains("0002_invitation_tokens_and_version_deletion")
    );
    drop(s);
    assert_eq!(schema_state(&calib), 3);

    // Kill starts at points spread across that time, each on what the last left.
    let mut seen = vec![];
    for k in 1..=6u32 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strongroom"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env_remove("STRONGROOM_ROOT_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full_start * k / 8);
        kill9(&mut child);
        seen.push(schema_state(&data));
    }
    eprintln!("a start takes {full_start:?}; schema after each kill: {seen:?}");
    assert!(
        seen.iter().any(|v| *v < 3),
        "no kill landed before the migration finished: {seen:?}"
    );

    let server = Server::start(&data);
    assert_eq!(schema_state(&data), 3);
    let mut api = server.client();
    api.login("owner@example.com").await;
    assert_all_readable(&api, &written).await;
    api.get_secret(&vault, "gone").await.expect_problem(410);
    api.put_secret(&vault, "after", "migration").await;
    let v = api.get("/v1/audit/verify").await.expect(200);
    assert_eq!(v["chain_valid"], true, "{v}");
}
