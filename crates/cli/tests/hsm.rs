//! The `pkcs11` provider through the server, on a real SoftHSM2 token: keys
//! survive restarts, a vanished token gives 503 and `unavailable`, and service
//! resumes by itself when it is back.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test]
async fn token_outage_gives_503_and_service_resumes_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    let env = softhsm_env(&hsm, "outage");
    let data = dir.path().join("data");
    let server = Launch::new(&data).envs(&env).start();
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("hsm-backed").await;
    api.put_secret(&vault, "db/password", "kept-in-the-hsm")
        .await;

    // The token disappears.
    let tokens = hsm.join("tokens");
    let away = hsm.join("tokens-away");
    std::fs::rename(&tokens, &away).unwrap();
    let r = api.get_secret(&vault, "db/password").await;
    assert!(!r.text.contains("kept-in-the-hsm"));
    r.expect_problem(503);
    api.put(
        &format!("/v1/vaults/{vault}/secrets/new"),
        serde_json::json!({"value": "x"}),
    )
    .await
    .expect_problem(503);
    let h = api.get("/v1/health/hsm").await;
    assert_eq!(h.status, 503);
    assert_eq!(h.body["status"], "unavailable");

    // It comes back: the same server serves again, with nothing lost.
    std::fs::rename(&away, &tokens).unwrap();
    let start = Instant::now();
    loop {
        let r = api.get_secret(&vault, "db/password").await;
        if r.status == 200 {
            assert_eq!(r.body["value"], "kept-in-the-hsm");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no recovery: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(api.get("/v1/health/hsm").await.expect(200)["status"], "ok");
    api.put_secret(&vault, "after", "outage").await;

    // And the keys survive a restart.
    let (status, _) = server.stop();
    assert!(status.success());
    let server = Launch::new(&data).envs(&env).start();
    let mut api2 = server.client();
    api2.login("owner@example.com").await;
    assert_eq!(
        api2.get_secret(&vault, "db/password").await.expect(200)["value"],
        "kept-in-the-hsm"
    );
    assert_eq!(
        api2.get_secret(&vault, "after").await.expect(200)["value"],
        "outage"
    );
    // The signing key is the token's: the token issued before the restart still works.
    let mut old = server.client();
    old.token = api.token.clone();
    old.get("/v1/vaults").await.expect(200);
}
