//! Wrap and unwrap throughput of each key provider, measured in one run:
//! `memory`, `file`, and `pkcs11` on a SoftHSM2 token (when `SOFTHSM2_CONF`
//! and `STRONGROOM_PKCS11_TOKEN_LABEL` point at one; `bench/run.sh` makes it).
//!
//! Usage: `strongroom-kmsbench [SECONDS] [CONCURRENCY]` — prints a markdown
//! table and writes JSON to stdout's last line prefixed with `JSON `.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use strongroom_core::VaultId;
use strongroom_crypto::Dek;
use strongroom_kms::root_key::RootKey;
use strongroom_kms::soft::SoftProvider;
use strongroom_kms::{KeyProvider, WrappedDek};

async fn measure(p: Arc<dyn KeyProvider>, secs: f64, conc: usize) -> anyhow::Result<(f64, f64)> {
    let kek = p.create_kek(&VaultId::new()).await?;
    // Shared by the tasks (a `Dek` is not `Clone`).
    let dek = Arc::new(Dek::generate());
    let aad = b"strongroom/bench".to_vec();
    let sample: WrappedDek = p.wrap(&kek, &dek, &aad).await?;
    let mut out = [0.0; 2];
    for (i, op) in ["wrap", "unwrap"].iter().enumerate() {
        let count = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut tasks = vec![];
        for _ in 0..conc {
            let (p, kek, dek, aad, sample, count) = (
                p.clone(),
                kek.clone(),
                dek.clone(),
                aad.clone(),
                sample.clone(),
                count.clone(),
            );
            let op = *op;
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    if op == "wrap" {
                        p.wrap(&kek, &dek, &aad).await.expect("wrap");
                    } else {
                        p.unwrap(&kek, &sample, &aad).await.expect("unwrap");
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let start = Instant::now();
        for t in tasks {
            t.await?;
        }
        out[i] = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    }
    p.destroy_kek(&kek).await?;
    Ok((out[0], out[1]))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let conc: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let dir = tempfile::tempdir()?;
    let mut providers: Vec<(&str, Arc<dyn KeyProvider>)> = vec![
        ("memory", Arc::new(SoftProvider::memory()?)),
        (
            "file",
            Arc::new(SoftProvider::open_file(
                dir.path().join("keyring"),
                RootKey::generate(),
            )?),
        ),
    ];
    if let Ok(label) = std::env::var("STRONGROOM_PKCS11_TOKEN_LABEL") {
        let cfg = strongroom_kms::pkcs11::Pkcs11Config::new(label);
        let p =
            tokio::task::spawn_blocking(move || strongroom_kms::pkcs11::Pkcs11Provider::open(cfg))
                .await??;
        providers.push(("pkcs11 (SoftHSM2)", Arc::new(p)));
    } else {
        eprintln!(
            "pkcs11 skipped: set SOFTHSM2_CONF, STRONGROOM_PKCS11_TOKEN_LABEL and STRONGROOM_PKCS11_PIN"
        );
    }
    println!("| provider | wrap ops/s | unwrap ops/s |\n|---|---:|---:|");
    let mut json = vec![];
    for (name, p) in providers {
        let (w, u) = measure(p, secs, conc).await?;
        println!("| {name} | {w:.0} | {u:.0} |");
        json.push(serde_json::json!({"provider": name, "wrap_per_s": w, "unwrap_per_s": u, "concurrency": conc, "seconds": secs}));
    }
    println!("JSON {}", serde_json::Value::Array(json));
    Ok(())
}
