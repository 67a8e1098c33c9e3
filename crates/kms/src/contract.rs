//! The [`KeyProvider`] contract: what every back-end and every decorator must
//! do, as one suite of checks run against any `&dyn KeyProvider` (OpenBao's
//! cross-backend `crosstest`, for key providers).
//!
//! Run by the tests of every provider (memory, file, pkcs11 on SoftHSM2, gcp
//! against its stand-in) and decorator (`Metered`, the DEK cache), and by
//! `strongroom kms check --contract` against a live configuration. Each check
//! makes its own throwaway KEK and destroys it, so the checks are independent
//! and leave nothing behind but (on Cloud KMS) versions scheduled for
//! destruction.
//!
//! Checks return a description of what went wrong instead of panicking, so
//! the CLI can report them; [`assert_all_pass`] turns them into a test failure.

use std::future::Future;
use std::pin::Pin;

use strongroom_core::VaultId;
use strongroom_crypto::Dek;

use crate::{KekRef, KeyProvider, KmsError, ProviderHealth, WrappedDek, kid_for};

/// What a failed check says.
pub type CheckResult = Result<(), String>;

type CheckFn =
    for<'a> fn(&'a dyn KeyProvider) -> Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>>;

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// Every check: its name and the function that runs it.
        pub const CHECKS: &[(&str, CheckFn)] = &[
            $((stringify!($name), |p| Box::pin($name(p)))),*
        ];
    };
}

checks! {
    wrap_unwrap_round_trip,
    wrong_aad_fails_closed,
    wrong_kek_fails_closed,
    wrong_version_fails_closed,
    tampered_blob_fails_closed,
    rotation_keeps_old_versions,
    destroy_makes_unwrap_fail,
    signatures_verify,
    health_is_serving,
}

/// Runs every check, in order; returns each one's name and outcome.
pub async fn run(p: &dyn KeyProvider) -> Vec<(&'static str, CheckResult)> {
    let mut out = Vec::with_capacity(CHECKS.len());
    for (name, check) in CHECKS {
        out.push((*name, check(p).await));
    }
    out
}

/// The checks a provider is known to fail, by its [`KeyProvider::name`], with
/// the reason documented in `docs/operations/`: Cloud KMS reads the key
/// version from its own ciphertext, so a wrong recorded KEK version still
/// unwraps (under the right key and AAD: nothing leaks).
pub fn known_deviations(provider: &str) -> &'static [&'static str] {
    match provider {
        "gcp" => &["wrong_version_fails_closed"],
        _ => &[],
    }
}

/// Runs every check and panics listing the ones that failed (for tests).
pub async fn assert_all_pass(p: &dyn KeyProvider) {
    assert_all_pass_except(p, &[]).await;
}

/// [`assert_all_pass`] for a provider with a known, documented deviation:
/// the checks named in `known` must fail (so the exception is dropped the
/// day the provider conforms) and every other check must pass.
pub async fn assert_all_pass_except(p: &dyn KeyProvider, known: &[&str]) {
    let mut failed = Vec::new();
    let mut conforming = Vec::new();
    for (name, r) in run(p).await {
        match (r, known.contains(&name)) {
            (Err(e), false) => failed.push(format!("{name}: {e}")),
            (Ok(()), true) => conforming.push(name),
            _ => {}
        }
    }
    assert!(
        failed.is_empty(),
        "the {} provider breaks the KeyProvider contract:\n  {}",
        p.name(),
        failed.join("\n  ")
    );
    assert!(
        conforming.is_empty(),
        "the {} provider now passes {conforming:?}: drop the exception",
        p.name()
    );
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

const AAD: &[u8] = b"strongroom/contract: vault v, path p, version 1";

fn e(what: &str, err: KmsError) -> String {
    format!("{what}: {}", strongroom_core::Chain(&err))
}

/// A throwaway KEK, destroyed when the check is done with it.
async fn with_kek<F, Fut>(p: &dyn KeyProvider, f: F) -> CheckResult
where
    F: FnOnce(KekRef) -> Fut,
    Fut: Future<Output = CheckResult>,
{
    let kek = p
        .create_kek(&VaultId::new())
        .await
        .map_err(|x| e("create_kek", x))?;
    let result = f(kek.clone()).await;
    // A check that destroyed the KEK itself gets KeyNotFound here; fine.
    let _ = p.destroy_kek(&kek).await;
    result
}

async fn wrap_new(p: &dyn KeyProvider, kek: &KekRef) -> Result<(Dek, WrappedDek), String> {
    let dek = Dek::generate();
    let w = p.wrap(kek, &dek, AAD).await.map_err(|x| e("wrap", x))?;
    Ok((dek, w))
}

/// Refused with [`KmsError::Integrity`], nothing else.
fn integrity(what: &str, r: Result<std::sync::Arc<Dek>, KmsError>) -> CheckResult {
    match r {
        Err(KmsError::Integrity) => Ok(()),
        Err(other) => Err(format!("{what}: refused with {other:?}, not Integrity")),
        Ok(_) => Err(format!("{what}: unwrapped")),
    }
}

/// A wrapped DEK unwraps to the same key, and the blob does not contain it.
pub async fn wrap_unwrap_round_trip(p: &dyn KeyProvider) -> CheckResult {
    with_kek(p, |kek| async move {
        let (dek, w) = wrap_new(p, &kek).await?;
        ensure!(
            !w.blob
                .windows(dek.expose().len())
                .any(|s| s == dek.expose()),
            "the wrapped blob contains the DEK"
        );
        let back = p.unwrap(&kek, &w, AAD).await.map_err(|x| e("unwrap", x))?;
        ensure!(back.expose() == dek.expose(), "unwrap returned another key");
        let (other, w2) = wrap_new(p, &kek).await?;
        ensure!(w2.blob != w.blob, "two wraps gave the same blob");
        let back = p.unwrap(&kek, &w2, AAD).await.map_err(|x| e("unwrap", x))?;
        ensure!(
            back.expose() == other.expose(),
            "unwrap returned another key"
        );
        Ok(())
    })
    .await
}

/// Another AAD (a different or empty context, a prefix) is refused.
pub async fn wrong_aad_fails_closed(p: &dyn KeyProvider) -> CheckResult {
    with_kek(p, |kek| async move {
        let (_, w) = wrap_new(p, &kek).await?;
        integrity("another AAD", p.unwrap(&kek, &w, b"another context").await)?;
        integrity("empty AAD", p.unwrap(&kek, &w, b"").await)?;
        integrity(
            "truncated AAD",
            p.unwrap(&kek, &w, &AAD[..AAD.len() - 1]).await,
        )
    })
    .await
}

/// A blob wrapped under one KEK is refused under another.
pub async fn wrong_kek_fails_closed(p: &dyn KeyProvider) -> CheckResult {
    with_kek(p, |kek| async move {
        let (_, w) = wrap_new(p, &kek).await?;
        with_kek(p, |other| async move {
            integrity("another KEK", p.unwrap(&other, &w, AAD).await)
        })
        .await
    })
    .await
}

/// A blob presented as another existing version of its KEK is refused.
pub async fn wrong_version_fails_closed(p: &dyn KeyProvider) -> CheckResult {
    with_kek(p, |kek| async move {
        let (_, w1) = wrap_new(p, &kek).await?;
        let v2 = p.rotate_kek(&kek).await.map_err(|x| e("rotate_kek", x))?;
        let mut claimed = w1.clone();
        claimed.kek_version = v2;
        integrity(
            "a v1 blob presented as the newest version",
            p.unwrap(&kek, &claimed, AAD).await,
        )?;
        let (_, w2) = wrap_new(p, &kek).await?;
        let mut claimed = w2;
        claimed.kek_version = w1.kek_version;
        integrity(
            "a newest-version blob presented as v1",
            p.unwrap(&kek, &claimed, AAD).await,
        )
    })
    .await
}

/// Any flipped bit of the blob, and a truncated or extended blob, is refused.
pub async fn tampered_blob_fails_closed(p: &dyn KeyProvider) -> CheckResult {
    with_kek(p, |kek| async move {
        let (_, w) = wrap_new(p, &kek).await?;
        for i in [0, w.blob.len() / 2, w.blob.len() - 1] {
            let mut t = w.clone();
            t.blob[i] ^= 0x01;
            integrity(
                &format!("blob with byte {i} flipped"),
                p.unwrap(&kek, &t, AAD).await,
            )?;
        }
        let mut t = w.clone();
        t.blob.pop();
        integrity("truncated blob", p.unwrap(&kek, &t, AAD).await)?;
        let mut t = w.clone();
        t.blob.push(0);
        integrity("extended blob", p.unwrap(&kek, &t, AAD).await)?;
        let empty = WrappedDek {
            kek_version: w.kek_version,
            blob: Vec::new(),
        };
        integrity("empty blob", p.unwrap(&kek, &empty, AAD).await)
    })
    .await
}

/// Rotation adds a newer version that new wraps use; every old version
/// still unwraps what it wrapped.
pub async fn rotation_keeps_old_versions(p: &dyn KeyProvider) -> CheckResult {
    with_kek(p, |kek| async move {
        let (d1, w1) = wrap_new(p, &kek).await?;
        let v2 = p.rotate_kek(&kek).await.map_err(|x| e("rotate_kek", x))?;
        ensure!(
            v2 > w1.kek_version,
            "rotation returned version {v2}, not newer than {}",
            w1.kek_version
        );
        let (d2, w2) = wrap_new(p, &kek).await?;
        ensure!(
            w2.kek_version == v2,
            "a wrap after rotation used version {}, not the newest {v2}",
            w2.kek_version
        );
        let v3 = p.rotate_kek(&kek).await.map_err(|x| e("rotate_kek", x))?;
        ensure!(
            v3 > v2,
            "a second rotation returned {v3}, not newer than {v2}"
        );
        for (d, w) in [(&d1, &w1), (&d2, &w2)] {
            let back = p
                .unwrap(&kek, w, AAD)
                .await
                .map_err(|x| e(&format!("unwrap under version {}", w.kek_version), x))?;
            ensure!(
                back.expose() == d.expose(),
                "version {} unwrapped another key",
                w.kek_version
            );
        }
        Ok(())
    })
    .await
}

/// After destroy, nothing wrapped under any version unwraps, and new wraps fail.
pub async fn destroy_makes_unwrap_fail(p: &dyn KeyProvider) -> CheckResult {
    with_kek(p, |kek| async move {
        let (_, w1) = wrap_new(p, &kek).await?;
        p.rotate_kek(&kek).await.map_err(|x| e("rotate_kek", x))?;
        let (_, w2) = wrap_new(p, &kek).await?;
        // Unwrapped once before, so a cache in front has it.
        p.unwrap(&kek, &w1, AAD).await.map_err(|x| e("unwrap", x))?;
        p.destroy_kek(&kek).await.map_err(|x| e("destroy_kek", x))?;
        for w in [&w1, &w2] {
            match p.unwrap(&kek, w, AAD).await {
                Err(KmsError::KeyNotFound | KmsError::Integrity) => {}
                Err(other) => {
                    return Err(format!(
                        "unwrap after destroy (v{}): {other:?}, not KeyNotFound or Integrity",
                        w.kek_version
                    ));
                }
                Ok(_) => return Err(format!("v{} unwrapped after destroy", w.kek_version)),
            }
        }
        ensure!(
            p.wrap(&kek, &Dek::generate(), AAD).await.is_err(),
            "a destroyed KEK still wraps"
        );
        Ok(())
    })
    .await
}

/// Signatures verify with the published public key (and only for their
/// message), and the key id is derived from that key.
pub async fn signatures_verify(p: &dyn KeyProvider) -> CheckResult {
    let public = p.signing_public_key();
    ensure!(
        public.kid == kid_for(&public.ed25519),
        "kid {} is not derived from the public key",
        public.kid
    );
    let msg = b"strongroom/contract: signing test";
    let sig = p.sign(msg).await.map_err(|x| e("sign", x))?;
    ensure!(
        strongroom_crypto::verify_ed25519(&public.ed25519, msg, &sig),
        "the signature does not verify with signing_public_key"
    );
    ensure!(
        !strongroom_crypto::verify_ed25519(&public.ed25519, b"another message", &sig),
        "the signature verifies for another message"
    );
    Ok(())
}

/// The provider says it can serve.
pub async fn health_is_serving(p: &dyn KeyProvider) -> CheckResult {
    match p.health().await {
        ProviderHealth::Healthy | ProviderHealth::Degraded(_) => Ok(()),
        ProviderHealth::Unavailable(why) => Err(format!("health: unavailable ({why})")),
    }
}
