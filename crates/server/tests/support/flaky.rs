//! A key provider that fails on demand, with error text naming a Cloud KMS
//! key (what only the provider knows and a client must never see). Shared by
//! the suites that check where a provider's words go.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;
use strongroom_core::VaultId;
use strongroom_crypto::Dek;
use strongroom_kms::soft::SoftProvider;
use strongroom_kms::{KekRef, KeyProvider, KmsError, ProviderHealth, SigningPublicKey, WrappedDek};

/// What only the provider knows: it must never leave the server.
pub const RESOURCE: &str =
    "projects/acme-prod/locations/europe-west1/keyRings/strongroom/cryptoKeys/vault-7f3a";

pub const HEALTHY: u8 = 0;
pub const UNAVAILABLE: u8 = 1;
pub const BROKEN: u8 = 2;

/// The memory provider, failing on demand with a message naming [`RESOURCE`].
pub struct Flaky {
    inner: SoftProvider,
    mode: Arc<AtomicU8>,
}

/// A healthy flaky provider and the switch that sets its mode.
pub fn flaky() -> (Arc<Flaky>, Arc<AtomicU8>) {
    let mode = Arc::new(AtomicU8::new(HEALTHY));
    let kms = Arc::new(Flaky {
        inner: SoftProvider::memory().expect("memory provider"),
        mode: mode.clone(),
    });
    (kms, mode)
}

impl Flaky {
    fn fail(&self) -> Result<(), KmsError> {
        match self.mode.load(Ordering::SeqCst) {
            UNAVAILABLE => Err(KmsError::Unavailable(
                format!("{RESOURCE}: deadline exceeded").into(),
            )),
            BROKEN => Err(KmsError::Internal(
                format!("{RESOURCE}: permission denied").into(),
            )),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl KeyProvider for Flaky {
    fn name(&self) -> &'static str {
        "gcp"
    }
    async fn create_kek(&self, vault_id: &VaultId) -> Result<KekRef, KmsError> {
        self.fail()?;
        self.inner.create_kek(vault_id).await
    }
    async fn wrap(&self, kek: &KekRef, dek: &Dek, aad: &[u8]) -> Result<WrappedDek, KmsError> {
        self.fail()?;
        self.inner.wrap(kek, dek, aad).await
    }
    async fn unwrap(&self, kek: &KekRef, w: &WrappedDek, aad: &[u8]) -> Result<Arc<Dek>, KmsError> {
        self.fail()?;
        self.inner.unwrap(kek, w, aad).await
    }
    async fn rotate_kek(&self, kek: &KekRef) -> Result<u32, KmsError> {
        self.fail()?;
        self.inner.rotate_kek(kek).await
    }
    async fn destroy_kek(&self, kek: &KekRef) -> Result<(), KmsError> {
        self.fail()?;
        self.inner.destroy_kek(kek).await
    }
    async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError> {
        self.fail()?;
        self.inner.sign(msg).await
    }
    fn signing_public_key(&self) -> SigningPublicKey {
        self.inner.signing_public_key()
    }
    async fn health(&self) -> ProviderHealth {
        match self.mode.load(Ordering::SeqCst) {
            HEALTHY => ProviderHealth::Healthy,
            UNAVAILABLE => ProviderHealth::Unavailable(format!("{RESOURCE}: deadline exceeded")),
            _ => ProviderHealth::Degraded(format!("{RESOURCE}: permission denied")),
        }
    }
}
