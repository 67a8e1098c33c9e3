//! `strongroom kms check`: exercises the configured key provider end to end
//! with a throwaway KEK, so an operator can check a live configuration (IAM
//! roles, key ring, token PIN) before pointing the server at it.
//!
//! With `--contract` it then runs the whole key-provider contract suite
//! (`strongroom_kms::contract`, the one every provider's tests run): each
//! check uses its own throwaway KEK, and several rotate it, so on Cloud KMS
//! it leaves a few more key versions scheduled for destruction.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use strongroom_core::VaultId;
use strongroom_crypto::Dek;

use crate::config::resolve_provider;
use crate::serve::open_provider;

#[derive(Args)]
pub struct CheckArgs {
    /// Configuration file (its `[kms]` section).
    #[arg(long, env = "STRONGROOM_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (for the `file` provider's keyring).
    #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "./strongroom-data")]
    data_dir: PathBuf,
    /// Provider to check (default: the configured one).
    #[arg(long)]
    provider: Option<String>,
    /// Also run the full key-provider contract suite (rotation, tampering,
    /// destroy; more KEKs and key versions than the basic check).
    #[arg(long)]
    contract: bool,
}

fn step(name: &str, detail: impl std::fmt::Display) {
    println!("ok   {name:<13} {detail}");
}

pub async fn run(a: CheckArgs) -> anyhow::Result<()> {
    let p = open_provider(
        resolve_provider(a.provider.as_deref(), a.config.as_deref(), &a.data_dir)?,
        false,
        // The throwaway key goes to the data directory's keyring (or the
        // provider), never into a database nodes share.
        None,
    )
    .await
    .context("connect")?;
    let public = p.signing_public_key();
    step(
        "connect",
        format!("provider {} — signing key kid {}", p.name(), public.kid),
    );
    let vault = VaultId::new();
    let kek = p.create_kek(&vault).await.context("create")?;
    step("create", format!("throwaway KEK {}", kek.0));
    let result = async {
        let dek = Dek::generate();
        let aad = b"strongroom kms check";
        let w = p.wrap(&kek, &dek, aad).await.context("wrap")?;
        step(
            "wrap",
            format!("{} bytes under KEK version {}", w.blob.len(), w.kek_version),
        );
        let back = p.unwrap(&kek, &w, aad).await.context("unwrap")?;
        if back.expose() != dek.expose() {
            bail!("unwrap: the provider returned a different key");
        }
        if p.unwrap(&kek, &w, b"another context").await.is_ok() {
            bail!("unwrap: a wrong AAD was accepted");
        }
        step("unwrap", "round trip matches; a wrong AAD is refused");
        Ok(())
    }
    .await;
    // Destroy the throwaway key whatever happened above.
    let destroyed = p.destroy_kek(&kek).await.context("destroy");
    result?;
    destroyed?;
    step(
        "destroy",
        "throwaway KEK destroyed (scheduled, on Cloud KMS)",
    );
    let msg = b"strongroom kms check: signing test";
    let sig = p.sign(msg).await.context("sign")?;
    if !strongroom_crypto::verify_ed25519(&public.ed25519, msg, &sig) {
        bail!("sign/verify: the signature does not verify with the published key");
    }
    step(
        "sign/verify",
        "Ed25519 signature verifies with the public key",
    );
    if a.contract {
        let mut failed = 0;
        let known = strongroom_kms::contract::known_deviations(p.name());
        for (name, outcome) in strongroom_kms::contract::run(&*p).await {
            match (outcome, known.contains(&name)) {
                (Ok(()), false) => step(name, "contract holds"),
                (Ok(()), true) => step(
                    name,
                    "contract holds (this provider was known to deviate here: the deviation can go)",
                ),
                (Err(why), true) => step(
                    name,
                    format!("known deviation of this provider, not a fault of the setup ({why})"),
                ),
                (Err(why), false) => {
                    failed += 1;
                    println!("FAIL {name:<13} {why}");
                }
            }
        }
        if failed > 0 {
            bail!("{failed} contract check(s) failed");
        }
    }
    println!("all checks passed");
    Ok(())
}
