//! Restarts: graceful (SIGTERM) and brutal (SIGKILL during a write loop).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use serde_json::json;

#[tokio::test]
async fn values_survive_a_sigterm_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("v").await;
    for i in 0..30 {
        api.put_secret(&vault, &format!("k/{i}"), &format!("value-{i}"))
            .await;
    }
    api.put_secret(&vault, "k/0", "value-0-v2").await;
    let old_token = api.token.clone();
    let (status, logs) = server.stop();
    assert!(status.success(), "exit {status:?}\n{logs}");
    assert!(logs.contains("strongroom stopped"));

    let server = Server::start(dir.path());
    let mut api = server.client();
    // The old token is still valid (same signing key), and so is the password.
    let mut old = server.client();
    old.token = old_token;
    api.login("owner@example.com").await;
    for i in 1..30 {
        assert_eq!(
            api.get_secret(&vault, &format!("k/{i}")).await.expect(200)["value"],
            format!("value-{i}")
        );
    }
    assert_eq!(
        old.get_secret(&vault, "k/0").await.expect(200)["value"],
        "value-0-v2"
    );
    let v1 = api
        .get(&format!("/v1/vaults/{vault}/secret-version/k/0/1"))
        .await
        .expect(200);
    assert_eq!(v1["value"], "value-0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("v").await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = vec![];
    for w in 0..6 {
        let api = api.clone();
        let vault = vault.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = vec![];
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                // Distinct paths, plus a shared path that gains versions.
                let (path, value) = if i % 3 == 0 {
                    ("shared".to_owned(), format!("w{w}-{i}"))
                } else {
                    (format!("w{w}/k{i}"), format!("w{w}-value-{i}"))
                };
                let r = api
                    .http
                    .put(format!("{}/v1/vaults/{vault}/secrets/{path}", api.base))
                    .bearer_auth(api.token.as_ref().unwrap())
                    .json(&json!({"value": value}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let body: serde_json::Value = r.json().await.unwrap_or_default();
                        if let Some(v) = body["version"].as_u64() {
                            acked.push((path, v, value));
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            acked
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut acked = vec![];
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(
        acked.len() > 20,
        "too few writes acknowledged to mean anything: {}",
        acked.len()
    );

    let server = Server::start(dir.path());
    let mut api = server.client();
    api.login("owner@example.com").await;
    for (path, version, value) in &acked {
        let r = api
            .get(&format!(
                "/v1/vaults/{vault}/secret-version/{path}/{version}"
            ))
            .await;
        assert_eq!(
            r.status, 200,
            "acknowledged write {path} v{version} lost after kill -9: {}",
            r.text
        );
        assert_eq!(r.body["value"], value.as_str(), "{path} v{version}");
    }
}
