//! The full secret lifecycle over real HTTP on loopback, against the real binary.

mod common;

#[cfg(feature = "gcp")]
#[path = "../../kms/tests/support/gcp_standin.rs"]
mod gcp_standin;

use common::*;
use serde_json::json;

#[tokio::test]
async fn full_flow_with_the_file_provider() {
    let dir = tempfile::tempdir().unwrap();
    full_flow(Server::start(dir.path()), "file").await;
}

#[tokio::test]
async fn full_flow_with_the_memory_provider() {
    let dir = tempfile::tempdir().unwrap();
    full_flow(
        Launch::new(dir.path())
            .arg("--kms-provider")
            .arg("memory")
            .start(),
        "memory",
    )
    .await;
}

/// The same flow with everything stored in PostgreSQL (a throwaway cluster).
#[tokio::test]
async fn full_flow_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let url = strongroom_pgtest::Cluster::shared().fresh_database();
    full_flow(
        Launch::new(dir.path())
            .arg("--database-url")
            .arg(url)
            .start(),
        "file",
    )
    .await;
}

#[tokio::test]
async fn full_flow_with_the_pkcs11_provider_on_softhsm2() {
    let dir = tempfile::tempdir().unwrap();
    let env = softhsm_env(&dir.path().join("hsm"), "flow");
    full_flow(
        Launch::new(&dir.path().join("data")).envs(&env).start(),
        "pkcs11",
    )
    .await;
}

/// The `gcp` provider, configured from a file, against the in-process Cloud KMS
/// stand-in (which runs on this test's runtime: hence two worker threads, one
/// of which may block while the server starts).
#[cfg(feature = "gcp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_flow_with_the_gcp_provider_on_the_stand_in() {
    let (fake, endpoint) = gcp_standin::start().await;
    let ring = fake.create_key_ring("flow-project", "global", "strongroom");
    let signing = fake.create_signing_key(&ring, "jwt");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strongroom.toml");
    write_gcp_config(&config, "flow-project", &signing, &endpoint);
    full_flow(
        Launch::new(&dir.path().join("data"))
            .arg("--config")
            .arg(config.to_str().unwrap())
            .start(),
        "gcp",
    )
    .await;

    // The flow went through the stand-in, on its documented routes, with no
    // credentials.
    for method in [
        "getPublicKey",
        "asymmetricSign",
        "createCryptoKey",
        "encrypt",
        "decrypt",
        "listCryptoKeyVersions",
        "destroy",
    ] {
        assert!(fake.count(method) > 0, "no {method} reached the stand-in");
    }
    let st = fake.state.lock().unwrap();
    assert!(st.unknown_routes.is_empty(), "{:?}", st.unknown_routes);
    assert!(st.calls.iter().all(|c| !c.3), "anonymous sends no token");
}

/// The core flow of the API, run once per key provider.
async fn full_flow(server: Server, provider: &str) {
    let mut api = server.client();

    api.get("/v1/health").await.expect(200);
    let hsm = api.get("/v1/health/hsm").await.expect(200);
    assert_eq!(hsm["status"], "ok");
    assert_eq!(hsm["provider"], provider);

    api.signup("owner@example.com").await;
    // Sign-up is closed after the first account.
    Api::new(&server.base)
        .post(
            "/v1/auth/signup",
            json!({"email": "second@example.com", "password": PASSWORD}),
        )
        .await
        .expect_problem(403);
    // Login with the right and the wrong password.
    api.login("owner@example.com").await;
    Api::new(&server.base)
        .post(
            "/v1/auth/token",
            json!({"email": "owner@example.com", "password": "Wrong-Horse-42!"}),
        )
        .await
        .expect_problem(401);
    assert_token_verifies_with_jwks(&api).await;
    let me = api.get("/v1/auth/me").await.expect(200);
    assert_eq!(me["email"], "owner@example.com");
    assert_eq!(me["role"], "owner");

    let vault = api.create_vault("production").await;
    let listed = api.get("/v1/vaults").await.expect(200);
    assert_eq!(listed["vaults"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.get(&format!("/v1/vaults/{vault}")).await.expect(200)["name"],
        "production"
    );

    // Two versions; the write answers metadata, never the value.
    let v1 = api
        .put_secret(&vault, "prod/db/password", "pw-version-one")
        .await;
    assert_eq!(v1["version"], 1);
    assert!(v1.get("value").is_none());
    let v2 = api
        .put(
            &format!("/v1/vaults/{vault}/secrets/prod/db/password"),
            json!({"value": "pw-version-two", "type": "password", "metadata": {"owner": "db-team"}}),
        )
        .await
        .expect(201);
    assert_eq!(v2["version"], 2);
    assert_eq!(v1["id"], v2["id"]);
    api.put_secret(&vault, "prod/api/stripe", "sk_live_x").await;
    api.put_secret(&vault, "staging/db/password", "staging-pw")
        .await;

    let latest = api.get_secret(&vault, "prod/db/password").await.expect(200);
    assert_eq!(latest["value"], "pw-version-two");
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["type"], "password");
    assert_eq!(latest["metadata"], json!({"owner": "db-team"}));
    assert!(latest["created_by"].as_str().unwrap().starts_with("user:"));

    let first = api
        .get(&format!(
            "/v1/vaults/{vault}/secret-version/prod/db/password/1"
        ))
        .await
        .expect(200);
    assert_eq!(first["value"], "pw-version-one");
    assert_eq!(first["version"], 1);

    let list = api
        .get(&format!("/v1/vaults/{vault}/secrets?prefix=prod/"))
        .await
        .expect(200);
    let paths: Vec<&str> = list["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["prod/api/stripe", "prod/db/password"]);
    assert!(
        list["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s.get("value").is_none())
    );

    let versions = api
        .get(&format!(
            "/v1/vaults/{vault}/secret-versions/prod/db/password"
        ))
        .await
        .expect(200);
    let nums: Vec<u64> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(nums, [1, 2]);

    // Disable version 1: reading it is 410, the latest still reads.
    let r = api
        .post(
            &format!("/v1/vaults/{vault}/secret-version-disable/prod/db/password/1"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    api.get(&format!(
        "/v1/vaults/{vault}/secret-version/prod/db/password/1"
    ))
    .await
    .expect_problem(410);
    api.get_secret(&vault, "prod/db/password").await.expect(200);
    let versions = api
        .get(&format!(
            "/v1/vaults/{vault}/secret-versions/prod/db/password"
        ))
        .await
        .expect(200);
    assert_eq!(versions["versions"][0]["is_disabled"], true);

    // Delete: 204, then 410, and gone from the listing.
    assert_eq!(
        api.delete(&format!("/v1/vaults/{vault}/secrets/prod/db/password"))
            .await
            .status,
        204
    );
    api.get_secret(&vault, "prod/db/password")
        .await
        .expect_problem(410);
    let list = api
        .get(&format!("/v1/vaults/{vault}/secrets?prefix=prod/"))
        .await
        .expect(200);
    assert_eq!(list["secrets"].as_array().unwrap().len(), 1);

    // Rotate: a new random value of the asked length and charset, per charset.
    for (charset, len, ok) in [
        (
            "hex",
            64usize,
            (|c: char| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) as fn(char) -> bool,
        ),
        ("alphanumeric", 40, |c: char| c.is_ascii_alphanumeric()),
        ("base64", 33, |c: char| {
            c.is_ascii_alphanumeric() || c == '+' || c == '/'
        }),
        ("ascii", 100, |c: char| c.is_ascii_graphic()),
    ] {
        let path = format!("rotated/{charset}");
        api.put_secret(&vault, &path, "before-rotation").await;
        let r = api
            .post(
                &format!("/v1/vaults/{vault}/secret-rotate/{path}"),
                json!({"length": len, "charset": charset}),
            )
            .await
            .expect(201);
        assert_eq!(r["version"], 2);
        assert!(r.get("value").is_none());
        let got = api.get_secret(&vault, &path).await.expect(200);
        let value = got["value"].as_str().unwrap();
        assert_eq!(value.len(), len, "{charset}");
        assert!(value.chars().all(ok), "{charset}: {value}");
        assert_ne!(value, "before-rotation");
    }
    // Two rotations never produce the same value.
    let a = api
        .post(
            &format!("/v1/vaults/{vault}/secret-rotate/rotated/hex"),
            json!({}),
        )
        .await
        .expect(201);
    assert_eq!(a["version"], 3);
    let v3 = api.get_secret(&vault, "rotated/hex").await.expect(200)["value"].clone();
    assert_eq!(v3.as_str().unwrap().len(), 32, "default length is 32");
    api.post(
        &format!("/v1/vaults/{vault}/secret-rotate/rotated/hex"),
        json!({"length": 7}),
    )
    .await
    .expect_problem(400);
    api.post(
        &format!("/v1/vaults/{vault}/secret-rotate/rotated/hex"),
        json!({"charset": "emoji"}),
    )
    .await
    .expect_problem(400);

    // max_access_count and expiry answer 410 once past.
    api.put(
        &format!("/v1/vaults/{vault}/secrets/once"),
        json!({"value": "x", "max_access_count": 1}),
    )
    .await
    .expect(201);
    api.get_secret(&vault, "once").await.expect(200);
    api.get_secret(&vault, "once").await.expect_problem(410);
    api.put(
        &format!("/v1/vaults/{vault}/secrets/expired"),
        json!({"value": "x", "expires_at": "2020-01-01T00:00:00Z"}),
    )
    .await
    .expect(201);
    api.get_secret(&vault, "expired").await.expect_problem(410);

    // Deleting the vault: 204, then 404.
    assert_eq!(api.delete(&format!("/v1/vaults/{vault}")).await.status, 204);
    api.get(&format!("/v1/vaults/{vault}"))
        .await
        .expect_problem(404);
    api.get_secret(&vault, "prod/api/stripe")
        .await
        .expect_problem(404);
}

#[tokio::test]
async fn operability_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("v").await;
    api.put_secret(&vault, "a", "value-a").await;
    api.get_secret(&vault, "a").await.expect(200);
    api.get_secret(&vault, "missing").await.expect_problem(404);

    // Every response carries a request id.
    let r = api
        .http
        .get(format!("{}/v1/health", server.base))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-request-id").is_some());

    let metrics = api
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("strongroom_http_requests_total"),
        "{metrics}"
    );
    assert!(metrics.contains("strongroom_kms_calls_total"), "{metrics}");
    assert!(metrics.contains(r#"op="unwrap""#), "{metrics}");
    assert!(metrics.contains("strongroom_errors_total"), "{metrics}");
    assert!(
        metrics.contains("strongroom_http_request_seconds"),
        "{metrics}"
    );

    let doc = api.get("/openapi.json").await.expect(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/v1/vaults",
        "/v1/vaults/{vault_id}/secrets/{path}",
        "/v1/auth/token",
        "/v1/health/hsm",
    ] {
        assert!(doc["paths"].get(p).is_some(), "OpenAPI lacks {p}");
    }

    // The published key verifies the tokens we were given.
    let jwks = api.get("/.well-known/jwks.json").await.expect(200);
    let pk = api.get("/v1/auth/jwt-public-key").await.expect(200);
    assert_eq!(jwks["keys"][0]["kid"], pk["kid"]);
    assert_eq!(pk["alg"], "EdDSA");
    let token = api.token.clone().unwrap();
    let header: serde_json::Value = {
        use base64::Engine as _;
        let h = token.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], pk["kid"]);
    {
        use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
        use base64::Engine as _;
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwks["keys"][0]["x"].as_str().unwrap())
            .unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap();
        UnparsedPublicKey::new(&ED25519, key)
            .verify(input.as_bytes(), &sig)
            .expect("token verifies with the JWKS key");
    }

    // Logs carry request ids, and never the value.
    let (status, logs) = server.stop();
    assert!(status.success());
    assert!(logs.contains("request_id="), "{logs}");
    assert!(!logs.contains("value-a"));
}
