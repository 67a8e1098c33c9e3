//! The API against its own OpenAPI document: `schemathesis` (pinned in
//! `compat/schema/requirements.txt`, venv made by `scripts/schema-venv.sh`,
//! which `scripts/test` runs) drives the real binary from `/openapi.json`
//! with real credentials, and `compat/schema/run.py` asserts that no check
//! failed and that every documented operation was called and answered.
//!
//! The test makes the fixtures the run needs: an owner (its token and a
//! personal API key, from which the destructive pass mints a fresh token per
//! call), a vault with a secret, an agent granted the vault (its token), a
//! policy, and a second member.

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use common::*;
use serde_json::json;

/// Examples per operation and phase: sized so the whole test takes well
/// under four minutes on two cores in a debug build.
const MAX_EXAMPLES: &str = "20";

fn python() -> PathBuf {
    let venv = std::env::var_os("STRONGROOM_SCHEMA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/strongroom-schemathesis")
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "the schema suite needs schemathesis: run `bash scripts/schema-venv.sh` (scripts/test does) — looked for {}",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_conforms_to_its_openapi_document() {
    let python = python();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    // Thousands of requests from one loopback client: the per-client limits
    // would turn most of them into 429s (which stay documented everywhere).
    let config = dir.path().join("strongroom.toml");
    std::fs::write(
        &config,
        "[limits]\nauth_per_second = 0\nfailed_auth_per_second = 0\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let server = Launch::new(&data)
        .arg("--config")
        .arg(config.to_str().unwrap())
        .env("STRONGROOM_LOG", "info")
        .start();

    // Fixtures.
    let mut owner = server.client();
    owner.signup("owner@example.com").await;
    let vault = owner.create_vault("fixture").await;
    owner.put_secret(&vault, "app/db-password", "s3cret").await;
    let agent = owner
        .post(
            "/v1/agents",
            json!({"name": "fixture-agent", "vault_ids": [vault]}),
        )
        .await
        .expect(201);
    let agent_id = agent["agent"]["id"].as_str().unwrap().to_owned();
    let policy = owner
        .post(
            &format!("/v1/vaults/{vault}/policies"),
            json!({"secret_path_pattern": "**", "principal_type": "agent",
                   "principal_id": agent_id, "permissions": ["read", "write"]}),
        )
        .await
        .expect(201);
    let agent_token = owner
        .post(
            "/v1/auth/agent-token",
            json!({"api_key": agent["api_key"], "agent_id": agent_id}),
        )
        .await
        .expect(200)["access_token"]
        .clone();
    let key = owner
        .post("/v1/auth/api-keys", json!({"name": "fixture-key"}))
        .await
        .expect(201);
    let invite = owner
        .post(
            "/v1/org/invite",
            json!({"email": "member@example.com", "role": "member"}),
        )
        .await
        .expect(201);
    let mut member = server.client();
    member.signup_invited("member@example.com", &invite).await;
    let member_id = member.get("/v1/auth/me").await.expect(200)["id"].clone();
    // The agent can read what it was granted (the agent pass relies on it).
    let mut as_agent = server.client();
    as_agent.token = Some(agent_token.as_str().unwrap().to_owned());
    as_agent
        .get_secret(&vault, "app/db-password")
        .await
        .expect(200);

    let fixtures = json!({
        "base_url": server.base,
        "user_token": owner.token,
        "agent_token": agent_token,
        "api_key": key["api_key"],
        "key_id": key["key"]["id"],
        "vault_id": vault,
        "secret_path": "app/db-password",
        "agent_id": agent_id,
        "policy_id": policy["id"],
        "member_id": member_id,
        "password": PASSWORD,
    });
    let fixtures_path = dir.path().join("fixtures.json");
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&fixtures_path)
            .unwrap();
        f.write_all(fixtures.to_string().as_bytes()).unwrap();
    }
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();

    let start = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(root.join("compat/schema/run.py"))
            .arg("--fixtures")
            .arg(&fixtures_path)
            .arg("--report-dir")
            .arg(&reports)
            .args(["--max-examples", MAX_EXAMPLES])
            .output()
            .expect("running compat/schema/run.py")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "schemathesis took {:.0}s:\n{stdout}",
        start.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "the API disagrees with its OpenAPI document:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.logs()
    );
    // run.py's last line, checked here too: a run that silently did nothing fails.
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("schema conformance: "))
        .unwrap_or_else(|| panic!("no summary from run.py:\n{stdout}\n{stderr}"));
    assert!(summary.contains(", 0 failures, 0 errors"), "{summary}");
    assert!(!stdout.contains("NEVER CALLED"), "{stdout}");
    // The server lived through it.
    server.client().get("/v1/health").await.expect(200);
}
