//! The `KeyProvider` contract (`strongroom_kms::contract`) run by the software
//! providers and by the decorators over them. The pkcs11 and gcp providers run
//! the same suite in `pkcs11.rs` and `gcp.rs`, beside their fixtures.

use std::time::Duration;

use strongroom_kms::cache::{DekCache, DekCacheConfig};
use strongroom_kms::contract::{self, assert_all_pass};
use strongroom_kms::root_key::RootKey;
use strongroom_kms::soft::SoftProvider;
use strongroom_kms::{KeyProvider, Metered};

fn cache_config() -> DekCacheConfig {
    DekCacheConfig {
        ttl: Duration::from_secs(60),
        max_entries: 100,
        max_uses: 100,
    }
}

fn file_provider(dir: &tempfile::TempDir) -> SoftProvider {
    SoftProvider::open_file(
        dir.path().join("keyring"),
        RootKey::parse(&"33".repeat(32)).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn memory_provider() {
    assert_all_pass(&SoftProvider::memory().unwrap()).await;
}

#[tokio::test]
async fn file_provider_keyring() {
    let dir = tempfile::tempdir().unwrap();
    assert_all_pass(&file_provider(&dir)).await;
}

#[tokio::test]
async fn metered_decorator() {
    assert_all_pass(&Metered(Box::new(SoftProvider::memory().unwrap()))).await;
}

#[tokio::test]
async fn dek_cache_decorator() {
    let cache = DekCache::new(Box::new(SoftProvider::memory().unwrap()), cache_config()).unwrap();
    assert_all_pass(&cache).await;
}

#[tokio::test]
async fn decorators_stacked_as_the_server_stacks_them() {
    // serve: Metered(provider), then the cache on top of the shared provider.
    let dir = tempfile::tempdir().unwrap();
    let metered: Box<dyn KeyProvider> = Box::new(Metered(Box::new(file_provider(&dir))));
    let cache = DekCache::new(metered, cache_config()).unwrap();
    assert_all_pass(&cache).await;
}

/// The suite itself can fail: a provider that ignores the AAD is caught.
#[tokio::test]
async fn the_suite_catches_a_provider_that_ignores_the_aad() {
    use std::sync::Arc;

    use async_trait::async_trait;
    use strongroom_core::VaultId;
    use strongroom_crypto::Dek;
    use strongroom_kms::{KekRef, KmsError, ProviderHealth, SigningPublicKey, WrappedDek};

    struct IgnoresAad(SoftProvider);

    #[async_trait]
    impl KeyProvider for IgnoresAad {
        fn name(&self) -> &'static str {
            "ignores-aad"
        }
        async fn create_kek(&self, v: &VaultId) -> Result<KekRef, KmsError> {
            self.0.create_kek(v).await
        }
        async fn wrap(&self, k: &KekRef, d: &Dek, _aad: &[u8]) -> Result<WrappedDek, KmsError> {
            self.0.wrap(k, d, b"").await
        }
        async fn unwrap(
            &self,
            k: &KekRef,
            w: &WrappedDek,
            _aad: &[u8],
        ) -> Result<Arc<Dek>, KmsError> {
            self.0.unwrap(k, w, b"").await
        }
        async fn rotate_kek(&self, k: &KekRef) -> Result<u32, KmsError> {
            self.0.rotate_kek(k).await
        }
        async fn destroy_kek(&self, k: &KekRef) -> Result<(), KmsError> {
            self.0.destroy_kek(k).await
        }
        async fn sign(&self, m: &[u8]) -> Result<Vec<u8>, KmsError> {
            self.0.sign(m).await
        }
        fn signing_public_key(&self) -> SigningPublicKey {
            self.0.signing_public_key()
        }
        async fn health(&self) -> ProviderHealth {
            self.0.health().await
        }
    }

    let results = contract::run(&IgnoresAad(SoftProvider::memory().unwrap())).await;
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(failed, ["wrong_aad_fails_closed"]);
}
