//! A wrapper that counts and times every provider call for `/metrics`.

use std::time::Instant;

use async_trait::async_trait;
use strongroom_core::VaultId;
use strongroom_crypto::Dek;

use crate::{KekRef, KeyProvider, KmsError, ProviderHealth, SigningPublicKey, WrappedDek};

/// Records `strongroom_kms_calls_total{op,outcome}` and
/// `strongroom_kms_call_seconds{op}` around an inner provider.
pub struct Metered<P: ?Sized>(pub Box<P>);

fn record<T>(op: &'static str, start: Instant, r: &Result<T, KmsError>) {
    let outcome = match r {
        Ok(_) => "ok",
        Err(KmsError::KeyNotFound) => "key_not_found",
        Err(KmsError::Integrity) => "integrity",
        Err(KmsError::Unavailable(_)) => "unavailable",
        Err(KmsError::Internal(_)) => "error",
    };
    metrics::counter!("strongroom_kms_calls_total", "op" => op, "outcome" => outcome).increment(1);
    metrics::histogram!("strongroom_kms_call_seconds", "op" => op)
        .record(start.elapsed().as_secs_f64());
}

macro_rules! timed {
    ($op:literal, $e:expr) => {{
        let start = Instant::now();
        let r = $e;
        record($op, start, &r);
        r
    }};
}

#[async_trait]
impl<P: KeyProvider + ?Sized> KeyProvider for Metered<P> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    async fn create_kek(&self, vault_id: &VaultId) -> Result<KekRef, KmsError> {
        timed!("create_kek", self.0.create_kek(vault_id).await)
    }
    async fn wrap(&self, kek: &KekRef, dek: &Dek, aad: &[u8]) -> Result<WrappedDek, KmsError> {
        timed!("wrap", self.0.wrap(kek, dek, aad).await)
    }
    async fn unwrap(
        &self,
        kek: &KekRef,
        wrapped: &WrappedDek,
        aad: &[u8],
    ) -> Result<std::sync::Arc<Dek>, KmsError> {
        timed!("unwrap", self.0.unwrap(kek, wrapped, aad).await)
    }
    async fn rotate_kek(&self, kek: &KekRef) -> Result<u32, KmsError> {
        timed!("rotate_kek", self.0.rotate_kek(kek).await)
    }
    async fn destroy_kek(&self, kek: &KekRef) -> Result<(), KmsError> {
        timed!("destroy_kek", self.0.destroy_kek(kek).await)
    }
    async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError> {
        timed!("sign", self.0.sign(msg).await)
    }
    fn signing_public_key(&self) -> SigningPublicKey {
        self.0.signing_public_key()
    }
    async fn health(&self) -> ProviderHealth {
        self.0.health().await
    }
}
