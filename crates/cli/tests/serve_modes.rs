//! How the server may be started: dev mode, TLS, and the plain-HTTP guard.

mod common;

use std::process::Command;

use common::*;

#[tokio::test]
async fn dev_mode_says_everything_vanishes_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path()).arg("--dev").start();
    let mut api = server.client();
    api.signup("dev@example.com").await;
    let v = api.create_vault("scratch").await;
    api.put_secret(&v, "a", "b").await;
    assert_eq!(api.get_secret(&v, "a").await.expect(200)["value"], "b");
    assert_eq!(
        api.get("/v1/health/hsm").await.expect(200)["provider"],
        "memory"
    );
    let (status, logs) = server.stop();
    assert!(status.success());
    assert!(logs.contains("DEVELOPMENT MODE"), "{logs}");
    assert!(logs.contains("VANISHES WHEN THE SERVER STOPS"), "{logs}");
    // Nothing was written to the --data-dir given alongside --dev.
    assert!(read_tree(dir.path()).is_empty());
}

#[test]
fn plain_http_on_a_public_address_needs_an_explicit_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("STRONGROOM_ALLOW_PLAIN_HTTP")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve plain HTTP"), "{err}");
}

#[tokio::test]
async fn plain_http_with_the_flag_warns() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .arg("--allow-plain-http")
        .start_on("0.0.0.0:0");
    let (status, logs) = server.stop();
    assert!(status.success());
    assert!(logs.contains("PLAIN HTTP"), "{logs}");
}

#[tokio::test]
async fn serves_https_with_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let data = dir.path().join("data");
    let server = Launch::new(&data)
        .arg("--tls-cert")
        .arg(cert_path.to_str().unwrap())
        .arg("--tls-key")
        .arg(key_path.to_str().unwrap())
        .start();
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/v1/health", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Plain HTTP to the TLS port does not get an answer in the clear.
    let plain = server.base.replacen("https://", "http://", 1);
    let r = reqwest::Client::new()
        .get(format!("{plain}/v1/health"))
        .send()
        .await;
    assert!(r.is_err() || r.unwrap().status().as_u16() != 200);
}

#[test]
fn config_file_sets_defaults_and_rejects_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("strongroom.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nbogus = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

#[tokio::test]
async fn config_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("strongroom.toml");
    std::fs::write(
        &cfg,
        "[auth]\nopen_signup = true\n[kms]\nprovider = \"memory\"\n",
    )
    .unwrap();
    let server = Launch::new(&dir.path().join("data"))
        .arg("--config")
        .arg(cfg.to_str().unwrap())
        .start();
    let mut a = server.client();
    a.signup("a@example.com").await;
    let mut b = server.client();
    b.signup("b@example.com").await; // open sign-up: a second organisation
    assert_eq!(
        a.get("/v1/health/hsm").await.expect(200)["provider"],
        "memory"
    );
    // Organisations are isolated: b can't see a's vault.
    let v = a.create_vault("a-only").await;
    b.get(&format!("/v1/vaults/{v}")).await.expect_problem(404);
    assert!(
        b.get("/v1/vaults").await.expect(200)["vaults"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn public_auth_routes_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("strongroom.toml");
    std::fs::write(&cfg, "[limits]\nauth_per_second = 1\nauth_burst = 3\n").unwrap();
    let server = Launch::new(&dir.path().join("data"))
        .arg("--config")
        .arg(cfg.to_str().unwrap())
        .start();
    let api = server.client();
    let mut limited = None;
    for _ in 0..8 {
        let r = api
            .http
            .post(format!("{}/v1/auth/token", server.base))
            .json(&serde_json::json!({"email": "x@example.com", "password": "Wrong-Horse-42!"}))
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status().as_u16(), 401);
    }
    let r = limited.expect("the sixth rapid login should be refused with 429");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );
    // Authenticated routes are not limited by it.
    api.get("/v1/health").await.expect(200);
}
