//! Drives a real server with the official Python SDK `oneclaw`, unchanged.
//! `bash compat/setup.sh` (run by `scripts/test`) prepares its virtualenv.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

#[test]
fn oneclaw_sdk_core_flows() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var("STRONGROOM_COMPAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("compat/.venv/bin/python"));
    assert!(
        python.exists(),
        "the compatibility suite needs the oneclaw SDK: run `bash compat/setup.sh` (scripts/test does) — looked for {}",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let out = Command::new(&python)
        .arg(root.join("compat/test_core_sdk.py"))
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
