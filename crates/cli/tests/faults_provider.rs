//! Key provider outages in the middle of a load, against the real binary and
//! real providers: a SoftHSM2 token that vanishes, and a Cloud KMS (the
//! in-repo stand-in) that goes down or answers past the client's timeout.
//!
//! What must hold: while the provider is out, operations that need it answer
//! `503` problem+json ("the key provider is unavailable", `Retry-After`); no
//! acknowledged write is lost; no version exists without a readable value;
//! and the same process (same pid) serves again once the provider is back.
//! No DEK cache is configured (the default), so reads need the provider too.

mod common;

#[cfg(feature = "gcp")]
#[path = "../../kms/tests/support/gcp_standin.rs"]
mod gcp_standin;

use std::time::Duration;

use common::load::*;
use common::*;

const KEY_DOWN: &str = "the key provider is unavailable";

/// Seeds `n` secrets and answers (path, value) pairs for the readers.
async fn seed(api: &Api, vault: &str, n: usize) -> Vec<(String, String)> {
    let mut out = vec![];
    for i in 0..n {
        let (p, v) = (format!("seed/{i}"), format!("seed-value-{i}"));
        api.put_secret(vault, &p, &v).await;
        out.push((p, v));
    }
    out
}

/// The outage's outcome: some work acknowledged, some refused cleanly,
/// nothing lost, and the chain intact.
async fn check_after_outage(api: &Api, vault: &str, seen: &Seen, pid_before: u32, pid: u32) {
    let (w201, _) = seen.count(201);
    let (w503, r503) = seen.count(503);
    let (_, r200) = seen.count(200);
    eprintln!(
        "writes: {} attempted, {w201} acknowledged, {w503} refused (503); reads: {r200} ok, {r503} refused (503)",
        seen.writes.len()
    );
    assert!(w201 > 10, "too few writes acknowledged to mean anything");
    assert!(w503 > 0, "no write met the outage");
    assert!(r503 > 0, "no read met the outage");
    assert_clean_failures(seen, 201, KEY_DOWN);
    // Counted as what they are: the `unavailable` kind.
    assert!(errors_of_kind(api, "unavailable").await >= (w503 + r503) as u64);
    assert_eq!(pid, pid_before, "the server restarted");
    let checked = assert_nothing_lost(api, vault, seen).await;
    eprintln!("{checked} versions read back");
    assert_audit_verifies(api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_softhsm_token_vanishing_mid_load_gives_503_and_recovers_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = dir.path().join("hsm");
    let env = softhsm_env(&hsm, "faults");
    let server = Launch::new(&dir.path().join("data")).envs(&env).start();
    let pid = server.pid();
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("hsm").await;
    let seeded = seed(&api, &vault, 20).await;

    let load = Load::start(&api, &vault, "w", 4, 2, seeded, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // The token goes away: SoftHSM2 finds no token directory, so every C_*
    // call on the token (the provider's sessions included) fails.
    let (tokens, away) = (hsm.join("tokens"), hsm.join("tokens-away"));
    std::fs::rename(&tokens, &away).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let h = api.get("/v1/health/hsm").await;
    assert_eq!(
        (h.status, h.body["status"].as_str()),
        (503, Some("unavailable"))
    );
    std::fs::rename(&away, &tokens).unwrap();
    // Back without a restart: the load's own writes succeed again.
    await_writes_resume(
        &api,
        &vault,
        Duration::from_secs(15),
        "a write after the token came back",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = load.stop().await;
    assert_eq!(api.get("/v1/health/hsm").await.expect(200)["status"], "ok");
    check_after_outage(&api, &vault, &seen, pid, server.pid()).await;
}

/// A TCP relay in front of the Cloud KMS stand-in: stopping it is the
/// service going away (connections reset, then refused); starting it again
/// on the same port is the service coming back.
#[cfg(feature = "gcp")]
struct Relay {
    port: u16,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[cfg(feature = "gcp")]
impl Relay {
    async fn start(upstream: &str) -> Relay {
        let mut r = Relay {
            port: 0,
            upstream: upstream.trim_start_matches("http://").to_owned(),
            task: None,
        };
        r.up().await;
        r
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("binding the relay's port again");
        self.port = listener.local_addr().unwrap().port();
        let upstream = self.upstream.clone();
        self.task = Some(tokio::spawn(async move {
            // Dropped with the task: every relayed connection ends with it.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let upstream = upstream.clone();
                conns.spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        }));
    }

    async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

#[cfg(feature = "gcp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cloud_kms_down_or_slow_mid_load_gives_503_and_recovers_without_restart() {
    use gcp_standin::Fault;
    let (fake, endpoint) = gcp_standin::start().await;
    let ring = fake.create_key_ring("faults", "global", "strongroom");
    let signing = fake.create_signing_key(&ring, "jwt");
    let mut relay = Relay::start(&endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strongroom.toml");
    // A short timeout and one retry, so an outage is answered within seconds.
    std::fs::write(
        &config,
        format!(
            "[kms]\nprovider = \"gcp\"\n\n[kms.gcp]\nproject = \"faults\"\nlocation = \"global\"\n\
             key_ring = \"strongroom\"\nsigning_key_version = \"{signing}\"\nendpoint = \"{}\"\n\
             anonymous = true\ntimeout_ms = 1000\nmax_retries = 1\n",
            relay.endpoint()
        ),
    )
    .unwrap();
    let server = Launch::new(&dir.path().join("data"))
        .arg("--config")
        .arg(config.to_str().unwrap())
        .start();
    let pid = server.pid();
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("gcp").await;
    let seeded = seed(&api, &vault, 20).await;

    // 1. Down: the stand-in's port closes mid-load.
    let load = Load::start(
        &api,
        &vault,
        "down",
        4,
        2,
        seeded.clone(),
        Duration::from_secs(30),
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    relay.down().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let h = api.get("/v1/health/hsm").await;
    assert_eq!(
        (h.status, h.body["status"].as_str()),
        (503, Some("unavailable"))
    );
    relay.up().await;
    await_writes_resume(
        &api,
        &vault,
        Duration::from_secs(15),
        "a write after Cloud KMS came back",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = load.stop().await;
    check_after_outage(&api, &vault, &seen, pid, server.pid()).await;

    // 2. Slow: every encrypt and decrypt answers after 3 s, past the 1 s timeout.
    let load = Load::start(&api, &vault, "slow", 4, 2, seeded, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    fake.fault("encrypt", Fault::Delay(Duration::from_secs(3)), 1_000_000);
    fake.fault("decrypt", Fault::Delay(Duration::from_secs(3)), 1_000_000);
    tokio::time::sleep(Duration::from_millis(4000)).await;
    fake.state.lock().unwrap().faults.clear();
    await_writes_resume(
        &api,
        &vault,
        Duration::from_secs(15),
        "a write once Cloud KMS is fast again",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = load.stop().await;
    check_after_outage(&api, &vault, &seen, pid, server.pid()).await;
    assert_eq!(api.get("/v1/health/hsm").await.expect(200)["status"], "ok");
    relay.down().await;
}

/// With the DEK cache on (`[kms.dek_cache]`, off by default), what its
/// documentation says holds through an outage: a version read recently is
/// answered from the cache without the provider; a write (a wrap is never
/// cached) and a read of a version not cached answer 503.
#[cfg(feature = "gcp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_dek_cache_recent_reads_outlive_a_cloud_kms_outage_and_nothing_else_does() {
    let (fake, endpoint) = gcp_standin::start().await;
    let ring = fake.create_key_ring("cached", "global", "strongroom");
    let signing = fake.create_signing_key(&ring, "jwt");
    let mut relay = Relay::start(&endpoint).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strongroom.toml");
    std::fs::write(
        &config,
        format!(
            "[kms]\nprovider = \"gcp\"\n\n[kms.gcp]\nproject = \"cached\"\nlocation = \"global\"\n\
             key_ring = \"strongroom\"\nsigning_key_version = \"{signing}\"\nendpoint = \"{}\"\n\
             anonymous = true\ntimeout_ms = 1000\nmax_retries = 1\n\n\
             [kms.dek_cache]\nttl_secs = 300\nmax_entries = 1000\nmax_uses = 1000\n",
            relay.endpoint()
        ),
    )
    .unwrap();
    let server = Launch::new(&dir.path().join("data"))
        .arg("--config")
        .arg(config.to_str().unwrap())
        .start();
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("cached").await;
    let seeded = seed(&api, &vault, 10).await;
    // Half of them are read once (cached); the others never.
    for (p, v) in &seeded[..5] {
        assert_eq!(
            api.get_secret(&vault, p).await.expect(200)["value"],
            v.as_str()
        );
    }
    let decrypts = fake.count("decrypt");
    relay.down().await;
    for (p, v) in &seeded[..5] {
        assert_eq!(
            api.get_secret(&vault, p).await.expect(200)["value"],
            v.as_str()
        );
    }
    for (p, _) in &seeded[5..] {
        let r = api.get_secret(&vault, p).await;
        assert!(!r.text.contains("seed-value"));
        assert_eq!(r.expect_problem(503)["detail"], KEY_DOWN);
    }
    let r = api
        .put(
            &format!("/v1/vaults/{vault}/secrets/seed/0"),
            serde_json::json!({"value": "new"}),
        )
        .await;
    assert_eq!(r.expect_problem(503)["detail"], KEY_DOWN);
    assert_eq!(fake.count("decrypt"), decrypts, "the stand-in was down");
    relay.up().await;
    eventually(
        Duration::from_secs(15),
        "an uncached read after the outage",
        || {
            let api = api.clone();
            let (vault, p) = (vault.clone(), seeded[9].0.clone());
            async move { api.get_secret(&vault, &p).await.status == 200 }
        },
    )
    .await;
    // The refused write left nothing: seed/0 still has one version.
    assert_eq!(api.put_secret(&vault, "seed/0", "new").await["version"], 2);
    relay.down().await;
}
