//! Drives a real server with the official Python SDK `oneclaw`, unchanged.
//! `bash compat/setup.sh` (run by `scripts/test`) prepares its virtualenv.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn run_suite(script: &str) {
    let dir = tempfile::tempdir().unwrap();
    run_suite_against(script, Server::start(dir.path()));
}

/// The suite against a node storing everything in PostgreSQL.
fn run_suite_on_postgres(script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let url = strongroom_pgtest::Cluster::shared().fresh_database();
    run_suite_against(
        script,
        Launch::new(dir.path())
            .arg("--database-url")
            .arg(url)
            .start(),
    );
}

fn run_suite_against(script: &str, server: Server) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var("STRONGROOM_COMPAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("compat/.venv/bin/python"));
    assert!(
        python.exists(),
        "the compatibility suite needs the oneclaw SDK: run `bash compat/setup.sh` (scripts/test does) — looked for {}",
        python.display()
    );
    let out = Command::new(&python)
        .arg(root.join("compat").join(script))
        .args([
            "--base-url",
            &server.base,
            "--email",
            "sdk-user@example.com",
            "--password",
            PASSWORD,
        ])
        .output()
        .expect("running the compat suite");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "oneclaw compat suite failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.logs()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

#[test]
fn oneclaw_sdk_core_flows() {
    run_suite("test_core_sdk.py");
}

/// Human login, agents, policies, an agent client from its `ocv_` key reading
/// exactly what it was granted, key rotation, personal keys, revocation.
#[test]
fn oneclaw_sdk_agent_flows() {
    run_suite("test_agents_sdk.py");
}

#[test]
fn oneclaw_sdk_core_flows_on_postgres() {
    run_suite_on_postgres("test_core_sdk.py");
}

#[test]
fn oneclaw_sdk_agent_flows_on_postgres() {
    run_suite_on_postgres("test_agents_sdk.py");
}
