//! Key lifecycle through the binary: rotation, rewrap (interrupted and
//! resumed), crypto-shredding on vault deletion, and migration from the `file`
//! provider to a real SoftHSM2 token.

mod common;

use std::path::Path;

use common::*;
use serde_json::json;
use strongroom_crypto::SecretContext;
use strongroom_kms::root_key::RootKey;
use strongroom_kms::soft::SoftProvider;
use strongroom_kms::{KekRef, KeyProvider, KmsError, WrappedDek};

/// (path, version, kek_ref, kek_version, wrapped_dek, ciphertext) of every stored version.
async fn rows(data: &Path) -> Vec<(String, i64, String, i64, Vec<u8>, Vec<u8>)> {
    let conn = raw_db(data);
    let r = conn
        .prepare("SELECT path, version, kek_ref, kek_version, wrapped_dek, ciphertext, vault_id FROM secret_versions ORDER BY path, version")
        .unwrap()
        .query_map([], |r| Ok((r.get("path")?, r.get("version")?, r.get("kek_ref")?, r.get("kek_version")?, r.get("wrapped_dek")?, r.get("ciphertext")?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(conn);
    r
}

fn kek_cli(server: &Server, token: &str, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .arg("kek")
        .args(args)
        .env("STRONGROOM_URL", &server.base)
        .env("STRONGROOM_TOKEN", token)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn rotate_then_rewrap_resumes_after_interruption_and_never_touches_ciphertexts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("rotating").await;
    let other = api.create_vault("untouched").await;
    for i in 0..25 {
        api.put_secret(&vault, &format!("k/{i}"), &format!("value-{i}"))
            .await;
    }
    api.put_secret(&other, "x", "other-vault").await;
    let token = api.token.clone().unwrap();

    let (code, out, err) = kek_cli(&server, &token, &["rotate", "--vault", &vault]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("KEK version 2"), "{out}");
    assert!(out.contains("25 DEKs are under older versions"), "{out}");
    // New writes use the new version; old rows still read.
    api.put_secret(&vault, "new", "after-rotation").await;
    let before = rows(dir.path()).await;
    let new_row = before.iter().find(|r| r.0 == "new").unwrap();
    assert_eq!(new_row.3, 2);
    assert_eq!(
        api.get_secret(&vault, "k/3").await.expect(200)["value"],
        "value-3"
    );

    // An interrupted rewrap: one batch of 10, then the command finishes the rest.
    let b = api
        .post(
            &format!("/v1/vaults/{vault}/kek/rewrap"),
            json!({"batch_size": 10}),
        )
        .await
        .expect(200);
    assert_eq!(
        (b["rewrapped"].as_u64(), b["remaining"].as_u64()),
        (Some(10), Some(15))
    );
    let (code, out, err) = kek_cli(
        &server,
        &token,
        &["rewrap", "--vault", &vault, "--batch", "4"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("15 DEKs rewrapped"), "{out}");
    let after = rows(dir.path()).await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.5, a.5, "a ciphertext changed for {}", a.0);
        if a.0.starts_with("k/") {
            assert_eq!(a.3, 2, "{} still under version {}", a.0, a.3);
            assert_ne!(b.4, a.4, "{}'s wrapped DEK should be new", a.0);
        }
    }
    // The other vault was not touched.
    let x = after.iter().find(|r| r.0 == "x").unwrap();
    assert_eq!(x.3, 1);
    for i in 0..25 {
        assert_eq!(
            api.get_secret(&vault, &format!("k/{i}")).await.expect(200)["value"],
            format!("value-{i}")
        );
    }
    // Rewrapping everything is idempotent, across every vault the caller manages.
    let (code, out, _) = kek_cli(&server, &token, &["rewrap"]);
    assert_eq!(code, 0);
    assert!(out.contains("rewrap complete: 0 DEKs rewrapped"), "{out}");
    // Audited.
    let ev = api
        .get("/v1/audit/events?action=vault.kek_rewrap")
        .await
        .expect(200);
    assert!(ev["count"].as_u64().unwrap() >= 2);
}

#[tokio::test]
async fn deleting_a_vault_shreds_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("doomed").await;
    for i in 0..5 {
        api.put_secret(&vault, &format!("s{i}"), "shred-me").await;
    }
    let saved = rows(dir.path()).await;
    assert_eq!(api.delete(&format!("/v1/vaults/{vault}")).await.status, 204);
    server.stop();

    // The provider that held the KEK can no longer unwrap the saved rows.
    let (root, _) = RootKey::load_or_create(None, &dir.path().join("root.key")).unwrap();
    let kms = SoftProvider::open_file(dir.path().join("keyring.sealed"), root).unwrap();
    for (path, version, kek_ref, kek_version, wrapped, _) in saved {
        let secret_path = strongroom_core::SecretPath::parse(&path).unwrap();
        let aad = SecretContext {
            vault: vault.parse().unwrap(),
            path: &secret_path,
            version: version as u32,
        }
        .dek_wrap_aad();
        let r = kms
            .unwrap(
                &KekRef(kek_ref),
                &WrappedDek {
                    kek_version: kek_version as u32,
                    blob: wrapped,
                },
                &aad,
            )
            .await;
        assert!(
            matches!(r, Err(KmsError::KeyNotFound)),
            "{path} still unwraps"
        );
    }
}

#[tokio::test]
async fn migrating_from_file_to_pkcs11_keeps_every_value_and_credential() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let v1 = api.create_vault("one").await;
    let v2 = api.create_vault("two").await;
    for i in 0..12 {
        api.put_secret(&v1, &format!("a/{i}"), &format!("one-{i}"))
            .await;
        api.put_secret(&v2, &format!("b/{i}"), &format!("two-{i}"))
            .await;
    }
    api.put_secret(&v1, "a/0", "one-0-v2").await;
    let created = api
        .post("/v1/agents", json!({"name": "bot"}))
        .await
        .expect(201);
    let agent_key = created["api_key"].as_str().unwrap().to_owned();
    server.stop();

    let env = softhsm_env(&dir.path().join("hsm"), "migrate");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(["kek", "migrate", "--to", "pkcs11", "--data-dir"])
        .arg(&data)
        .envs(
            env.iter()
                .filter(|(k, _)| k != "STRONGROOM_KMS_PROVIDER")
                .cloned(),
        )
        .env_remove("STRONGROOM_KMS_PROVIDER")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Three vaults: the two and the agent-keys vault.
    assert!(stdout.contains("3 vaults moved"), "{stdout}");
    for r in rows(&data).await {
        assert!(!r.2.is_empty());
    }
    let conn = raw_db(&data);
    let providers: Vec<String> = conn
        .prepare("SELECT DISTINCT kek_provider FROM vaults")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(providers, ["pkcs11"]);
    drop(conn);

    // A second run has nothing left to do.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args([
            "kek",
            "migrate",
            "--to",
            "pkcs11",
            "--from",
            "file",
            "--data-dir",
        ])
        .arg(&data)
        .envs(
            env.iter()
                .filter(|(k, _)| k != "STRONGROOM_KMS_PROVIDER")
                .cloned(),
        )
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 vaults moved"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );

    // The server on the token serves everything: values, logins, agent keys.
    let server = Launch::new(&data).envs(&env).start();
    let mut api = server.client();
    api.login("owner@example.com").await;
    assert_eq!(
        api.get("/v1/health/hsm").await.expect(200)["provider"],
        "pkcs11"
    );
    for i in 1..12 {
        assert_eq!(
            api.get_secret(&v1, &format!("a/{i}")).await.expect(200)["value"],
            format!("one-{i}")
        );
        assert_eq!(
            api.get_secret(&v2, &format!("b/{i}")).await.expect(200)["value"],
            format!("two-{i}")
        );
    }
    assert_eq!(
        api.get_secret(&v1, "a/0").await.expect(200)["value"],
        "one-0-v2"
    );
    assert_eq!(
        api.get(&format!("/v1/vaults/{v1}/secret-version/a/0/1"))
            .await
            .expect(200)["value"],
        "one-0"
    );
    api.post("/v1/auth/agent-token", json!({"api_key": agent_key}))
        .await
        .expect(200);
    api.put_secret(&v1, "after", "migration").await;
}
