//! The DEK cache in front of the memory provider, with a wrapper that counts
//! the unwraps that reach the provider.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use strongroom_core::VaultId;
use strongroom_crypto::Dek;
use strongroom_kms::cache::{DekCache, DekCacheConfig};
use strongroom_kms::soft::SoftProvider;
use strongroom_kms::{KekRef, KeyProvider, KmsError, ProviderHealth, SigningPublicKey, WrappedDek};

/// The memory provider, counting unwraps; optionally slow to answer them.
struct Counting {
    inner: SoftProvider,
    unwraps: Arc<AtomicUsize>,
    unwrap_delay: Duration,
}

#[async_trait]
impl KeyProvider for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    async fn create_kek(&self, vault_id: &VaultId) -> Result<KekRef, KmsError> {
        self.inner.create_kek(vault_id).await
    }
    async fn wrap(&self, kek: &KekRef, dek: &Dek, aad: &[u8]) -> Result<WrappedDek, KmsError> {
        self.inner.wrap(kek, dek, aad).await
    }
    async fn unwrap(&self, kek: &KekRef, w: &WrappedDek, aad: &[u8]) -> Result<Arc<Dek>, KmsError> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        let r = self.inner.unwrap(kek, w, aad).await;
        // Slow *after* the provider answered: the window in which a destroy
        // can overtake an unwrap that already succeeded.
        tokio::time::sleep(self.unwrap_delay).await;
        r
    }
    async fn rotate_kek(&self, kek: &KekRef) -> Result<u32, KmsError> {
        self.inner.rotate_kek(kek).await
    }
    async fn destroy_kek(&self, kek: &KekRef) -> Result<(), KmsError> {
        self.inner.destroy_kek(kek).await
    }
    async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError> {
        self.inner.sign(msg).await
    }
    fn signing_public_key(&self) -> SigningPublicKey {
        self.inner.signing_public_key()
    }
    async fn health(&self) -> ProviderHealth {
        self.inner.health().await
    }
}

fn config(ttl: Duration, max_entries: usize, max_uses: u32) -> DekCacheConfig {
    DekCacheConfig {
        ttl,
        max_entries,
        max_uses,
    }
}

fn cached(cfg: DekCacheConfig, delay: Duration) -> (DekCache<Counting>, Arc<AtomicUsize>) {
    let unwraps = Arc::new(AtomicUsize::new(0));
    let inner = Counting {
        inner: SoftProvider::memory().unwrap(),
        unwraps: unwraps.clone(),
        unwrap_delay: delay,
    };
    (DekCache::new(Box::new(inner), cfg).unwrap(), unwraps)
}

fn roomy() -> DekCacheConfig {
    config(Duration::from_secs(60), 100, 100)
}

async fn wrapped(p: &impl KeyProvider, kek: &KekRef, aad: &[u8]) -> (Dek, WrappedDek) {
    let dek = Dek::generate();
    let w = p.wrap(kek, &dek, aad).await.unwrap();
    (dek, w)
}

#[tokio::test]
async fn hits_skip_the_provider_and_return_the_same_dek() {
    let (cache, unwraps) = cached(roomy(), Duration::ZERO);
    let kek = cache.create_kek(&VaultId::new()).await.unwrap();
    let (dek, w) = wrapped(&cache, &kek, b"ctx").await;
    // `wrap` is not cached: the first unwrap goes to the provider.
    assert!(cache.is_empty());
    for _ in 0..5 {
        let got = cache.unwrap(&kek, &w, b"ctx").await.unwrap();
        assert_eq!(got.expose(), dek.expose());
    }
    assert_eq!(unwraps.load(Ordering::SeqCst), 1);
    assert_eq!(cache.len(), 1);
}

#[tokio::test]
async fn entries_expire_after_the_ttl_even_untouched() {
    let (cache, unwraps) = cached(config(Duration::from_millis(200), 100, 100), Duration::ZERO);
    let kek = cache.create_kek(&VaultId::new()).await.unwrap();
    let (_, w) = wrapped(&cache, &kek, b"ctx").await;
    cache.unwrap(&kek, &w, b"ctx").await.unwrap();
    cache.unwrap(&kek, &w, b"ctx").await.unwrap();
    assert_eq!(unwraps.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The sweeper dropped it without any request touching the cache.
    assert!(cache.is_empty());
    cache.unwrap(&kek, &w, b"ctx").await.unwrap();
    assert_eq!(unwraps.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_entry_answers_at_most_max_uses_unwraps() {
    let (cache, unwraps) = cached(config(Duration::from_secs(60), 100, 3), Duration::ZERO);
    let kek = cache.create_kek(&VaultId::new()).await.unwrap();
    let (_, w) = wrapped(&cache, &kek, b"ctx").await;
    for _ in 0..7 {
        cache.unwrap(&kek, &w, b"ctx").await.unwrap();
    }
    // miss hit hit | miss hit hit | miss
    assert_eq!(unwraps.load(Ordering::SeqCst), 3);

    let (cache, unwraps) = cached(config(Duration::from_secs(60), 100, 1), Duration::ZERO);
    let kek = cache.create_kek(&VaultId::new()).await.unwrap();
    let (_, w) = wrapped(&cache, &kek, b"ctx").await;
    for _ in 0..3 {
        cache.unwrap(&kek, &w, b"ctx").await.unwrap();
    }
    assert_eq!(
        unwraps.load(Ordering::SeqCst),
        3,
        "max_uses = 1 caches nothing"
    );
    assert!(cache.is_empty());
}

#[tokio::test]
async fn max_entries_bounds_the_cache_and_the_oldest_leaves_first() {
    let (cache, unwraps) = cached(config(Duration::from_secs(60), 3, 100), Duration::ZERO);
    let kek = cache.create_kek(&VaultId::new()).await.unwrap();
    let mut ws = Vec::new();
    for _ in 0..5 {
        let (_, w) = wrapped(&cache, &kek, b"ctx").await;
        cache.unwrap(&kek, &w, b"ctx").await.unwrap();
        ws.push(w);
        assert!(cache.len() <= 3);
    }
    assert_eq!(cache.len(), 3);
    assert_eq!(unwraps.load(Ordering::SeqCst), 5);
    // The newest three are hits...
    for w in &ws[2..] {
        cache.unwrap(&kek, w, b"ctx").await.unwrap();
    }
    assert_eq!(unwraps.load(Ordering::SeqCst), 5);
    // ...the oldest was evicted.
    cache.unwrap(&kek, &ws[0], b"ctx").await.unwrap();
    assert_eq!(unwraps.load(Ordering::SeqCst), 6);
    assert_eq!(cache.len(), 3);
}

#[tokio::test]
async fn destroy_drops_the_keks_entries_and_nothing_is_served_after() {
    let (cache, unwraps) = cached(roomy(), Duration::ZERO);
    let kek = cache.create_kek(&VaultId::new()).await.unwrap();
    let other = cache.create_kek(&VaultId::new()).await.unwrap();
    let (_, w) = wrapped(&cache, &kek, b"ctx").await;
    let (_, w_other) = wrapped(&cache, &other, b"ctx").await;
    cache.unwrap(&kek, &w, b"ctx").await.unwrap();
    cache.unwrap(&other, &w_other, b"ctx").await.unwrap();
    assert_eq!(cache.len(), 2);
    cache.destroy_kek(&kek).await.unwrap();
    assert_eq!(cache.len(), 1, "only the destroyed KEK's entries go");
    assert!(matches!(
        cache.unwrap(&kek, &w, b"ctx").await,
        Err(KmsError::KeyNotFound)
    ));
    assert_eq!(unwraps.load(Ordering::SeqCst), 3);
    // The other vault is still a hit.
    cache.unwrap(&other, &w_other, b"ctx").await.unwrap();
    assert_eq!(unwraps.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_unwrap_racing_a_destroy_does_not_repopulate_the_cache() {
    let (cache, _) = cached(roomy(), Duration::from_millis(300));
    let cache = Arc::new(cache);
    let kek = cache.create_kek(&VaultId::new()).await.unwrap();
    let (_, w) = wrapped(&*cache, &kek, b"ctx").await;
    let racing = {
        let (cache, kek, w) = (cache.clone(), kek.clone(), w.clone());
        tokio::spawn(async move { cache.unwrap(&kek, &w, b"ctx").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    cache.destroy_kek(&kek).await.unwrap();
    // The provider had answered before the destroy: the caller gets its DEK,
    // but the cache must not keep it.
    racing.await.unwrap().unwrap();
    assert!(cache.is_empty());
    assert!(cache.unwrap(&kek, &w, b"ctx").await.is_err());
}

#[tokio::test]
async fn rotate_drops_the_keks_entries_and_old_wraps_still_open() {
    let (cache, unwraps) = cached(roomy(), Duration::ZERO);
    let kek = cache.create_kek(&VaultId::new()).await.unwrap();
    let (dek, w) = wrapped(&cache, &kek, b"ctx").await;
    cache.unwrap(&kek, &w, b"ctx").await.unwrap();
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.rotate_kek(&kek).await.unwrap(), 2);
    assert!(cache.is_empty());
    let got = cache.unwrap(&kek, &w, b"ctx").await.unwrap();
    assert_eq!(got.expose(), dek.expose());
    assert_eq!(unwraps.load(Ordering::SeqCst), 2);
    let w2 = cache.wrap(&kek, &dek, b"ctx").await.unwrap();
    assert_eq!(w2.kek_version, 2);
}

#[tokio::test]
async fn a_wrong_aad_or_a_tampered_blob_is_never_answered_from_the_cache() {
    let (cache, unwraps) = cached(roomy(), Duration::ZERO);
    let kek = cache.create_kek(&VaultId::new()).await.unwrap();
    let (_, w) = wrapped(&cache, &kek, b"vault=a;path=x;v=1").await;
    cache.unwrap(&kek, &w, b"vault=a;path=x;v=1").await.unwrap();
    assert_eq!(cache.len(), 1);
    for _ in 0..2 {
        assert!(matches!(
            cache.unwrap(&kek, &w, b"vault=a;path=y;v=1").await,
            Err(KmsError::Integrity)
        ));
    }
    let mut tampered = w.clone();
    tampered.blob[20] ^= 1;
    assert!(matches!(
        cache.unwrap(&kek, &tampered, b"vault=a;path=x;v=1").await,
        Err(KmsError::Integrity)
    ));
    let mut other_version = w.clone();
    other_version.kek_version = 2;
    assert!(
        cache
            .unwrap(&kek, &other_version, b"vault=a;path=x;v=1")
            .await
            .is_err()
    );
    // Every bad request reached the provider; failures are not cached.
    assert_eq!(unwraps.load(Ordering::SeqCst), 5);
    assert_eq!(cache.len(), 1);
}

#[tokio::test]
async fn works_over_a_trait_object() {
    let inner: Box<dyn KeyProvider> = Box::new(SoftProvider::memory().unwrap());
    let cache: DekCache<dyn KeyProvider> = DekCache::new(inner, roomy()).unwrap();
    assert_eq!(cache.name(), "memory");
    let kek = cache.create_kek(&VaultId::new()).await.unwrap();
    let (dek, w) = wrapped(&cache, &kek, b"ctx").await;
    assert_eq!(
        cache.unwrap(&kek, &w, b"ctx").await.unwrap().expose(),
        dek.expose()
    );
    let sig = cache.sign(b"m").await.unwrap();
    let pk = cache.signing_public_key();
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, pk.ed25519)
        .verify(b"m", &sig)
        .unwrap();
}

#[test]
fn hit_and_miss_counters() {
    use metrics_exporter_prometheus::PrometheusBuilder;
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let (cache, _) = cached(roomy(), Duration::ZERO);
            let kek = cache.create_kek(&VaultId::new()).await.unwrap();
            let (_, w) = wrapped(&cache, &kek, b"ctx").await;
            for _ in 0..4 {
                cache.unwrap(&kek, &w, b"ctx").await.unwrap();
            }
        })
    });
    let text = handle.render();
    assert!(
        text.contains(r#"strongroom_dek_cache_total{outcome="miss"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"strongroom_dek_cache_total{outcome="hit"} 3"#),
        "{text}"
    );
}

#[test]
fn config_is_all_required_and_checked() {
    let cfg: DekCacheConfig = serde_json::from_value(serde_json::json!({
        "ttl_secs": 30, "max_entries": 1000, "max_uses": 50,
    }))
    .unwrap();
    assert_eq!(cfg, config(Duration::from_secs(30), 1000, 50));
    cfg.validate().unwrap();
    for missing in ["ttl_secs", "max_entries", "max_uses"] {
        let mut v = serde_json::json!({"ttl_secs": 30, "max_entries": 1000, "max_uses": 50});
        v.as_object_mut().unwrap().remove(missing);
        assert!(
            serde_json::from_value::<DekCacheConfig>(v).is_err(),
            "{missing}"
        );
    }
    assert!(
        serde_json::from_value::<DekCacheConfig>(serde_json::json!({
            "ttl_secs": 30, "max_entries": 1000, "max_uses": 50, "ttl": 3,
        }))
        .is_err()
    );
    for bad in [
        config(Duration::ZERO, 10, 10),
        config(Duration::from_secs(3601), 10, 10),
        config(Duration::from_secs(1), 0, 10),
        config(Duration::from_secs(1), 10, 0),
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
        let inner = Box::new(SoftProvider::memory().unwrap());
        assert!(DekCache::new(inner, bad).is_err());
    }
}
