//! An optional, bounded cache of unwrapped DEKs in front of a key provider.
//!
//! **Off by default.** With a remote provider (Cloud KMS, an HSM over the
//! network) every secret read costs one unwrap round trip and counts against
//! the provider's request quota. [`DekCache`] keeps the DEKs it has unwrapped
//! for a short while so that repeated reads of the same secret version skip
//! that round trip.
//!
//! # The trade-off
//!
//! - A DEK stays in process memory for up to `ttl` after it was unwrapped
//!   (plus at most one sweep interval, a quarter of `ttl` capped at one
//!   second), instead of only for the duration of one request. A compromised
//!   process already sees every plaintext it serves, but the cache widens the
//!   window: a memory dump or a heap-reading bug yields the DEKs of recent
//!   reads, not just of the request in flight.
//! - A hit does not reach the provider, so the provider's audit log (Cloud
//!   KMS Data Access logs, HSM logs) no longer records one decrypt per read.
//!   Strongroom's own audit log still records every read.
//! - Destroying or rotating a KEK through this wrapper drops every cached DEK
//!   of that KEK at once. A KEK destroyed *behind Strongroom's back* (in the
//!   Cloud console) keeps serving cached DEKs until they expire.
//!
//! # What is cached, and how
//!
//! - The key of an entry is (KEK reference, KEK version, SHA-256 of the
//!   wrapped blob, SHA-256 of the AAD). Nothing derived from the DEK is a key.
//!   A request with another AAD (another vault, path or version) is a
//!   different entry and goes to the provider, which refuses it: a wrong AAD
//!   is never answered from the cache.
//! - Only successful unwraps are cached; `wrap` is never cached.
//! - An entry leaves on whichever comes first: `ttl` after it was unwrapped,
//!   after `max_uses` unwraps answered by it (the miss that created it
//!   counts as one), or as the oldest entry when `max_entries` is reached.
//! - Each DEK lives once, in its own heap allocation behind an `Arc`: a hit
//!   hands out another reference to it, never a copy of its bytes, and the
//!   map's rehashing moves only the pointer. [`Dek`] (not `Clone`) zeroes
//!   itself when the entry and the last request holding it are gone.
//!
//! Metrics: `strongroom_dek_cache_total{outcome="hit"|"miss"}`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use strongroom_core::VaultId;
use strongroom_crypto::Dek;

use crate::{KekRef, KeyProvider, KmsError, ProviderHealth, SigningPublicKey, WrappedDek};

/// Limits of the DEK cache (`[kms.dek_cache]`). The section is absent by
/// default, which means no cache; when it is present every field is required.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DekCacheConfig {
    /// How long a DEK may stay cached after it was unwrapped. In the file:
    /// `ttl_secs`, 1 to 3600.
    #[serde(rename = "ttl_secs", deserialize_with = "seconds")]
    pub ttl: Duration,
    /// The most DEKs held at once (1 to 1 000 000); the oldest leaves first.
    pub max_entries: usize,
    /// The most unwraps one cached DEK answers, the first (a miss) included.
    /// At least 1; 1 caches nothing.
    pub max_uses: u32,
}

fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

impl DekCacheConfig {
    /// Checks the limits.
    pub fn validate(&self) -> Result<(), KmsError> {
        let bad = |m: &str| Err(KmsError::Internal(format!("[kms.dek_cache] {m}").into()));
        if self.ttl.is_zero() || self.ttl > Duration::from_secs(3600) {
            return bad("ttl_secs must be between 1 and 3600");
        }
        if !(1..=1_000_000).contains(&self.max_entries) {
            return bad("max_entries must be between 1 and 1000000");
        }
        if self.max_uses == 0 {
            return bad("max_uses must be at least 1");
        }
        Ok(())
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    kek: String,
    kek_version: u32,
    blob_sha256: [u8; 32],
    aad_sha256: [u8; 32],
}

impl CacheKey {
    fn new(kek: &KekRef, wrapped: &WrappedDek, aad: &[u8]) -> Self {
        CacheKey {
            kek: kek.0.clone(),
            kek_version: wrapped.kek_version,
            blob_sha256: sha256(&wrapped.blob),
            aad_sha256: sha256(aad),
        }
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

struct Entry {
    dek: Arc<Dek>,
    born: Instant,
    uses: u32,
    seq: u64,
}

#[derive(Default)]
struct State {
    map: HashMap<CacheKey, Entry>,
    /// Insertion order (= age order): `seq` → key.
    order: BTreeMap<u64, CacheKey>,
    next_seq: u64,
    /// Bumped by every invalidation, so an unwrap that was in flight across
    /// one doesn't put back what was just dropped.
    generation: u64,
}

impl State {
    fn remove(&mut self, key: &CacheKey) {
        if let Some(e) = self.map.remove(key) {
            self.order.remove(&e.seq);
        }
    }

    fn purge_expired(&mut self, now: Instant, ttl: Duration) {
        while let Some((&seq, key)) = self.order.first_key_value() {
            let expired = self
                .map
                .get(key)
                .is_none_or(|e| now.duration_since(e.born) >= ttl);
            if !expired {
                break;
            }
            let key = key.clone();
            self.order.remove(&seq);
            self.map.remove(&key);
        }
    }

    fn drop_kek(&mut self, kek: &KekRef) {
        self.generation += 1;
        self.map.retain(|k, _| k.kek != kek.0);
        self.order.retain(|_, k| k.kek != kek.0);
    }
}

/// A [`KeyProvider`] that caches unwrapped DEKs; see the module docs.
pub struct DekCache<P: KeyProvider + ?Sized> {
    inner: Box<P>,
    cfg: DekCacheConfig,
    state: Arc<Mutex<State>>,
}

impl<P: KeyProvider + ?Sized> DekCache<P> {
    /// Wraps `inner`. Inside a Tokio runtime this also starts a task that
    /// drops expired entries even when no request touches the cache; the task
    /// ends when the cache is dropped.
    pub fn new(inner: Box<P>, cfg: DekCacheConfig) -> Result<Self, KmsError> {
        cfg.validate()?;
        let state = Arc::new(Mutex::new(State::default()));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&state);
            let every = (cfg.ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
            rt.spawn(sweep(weak, every, cfg.ttl));
        }
        tracing::info!(
            ttl_secs = cfg.ttl.as_secs_f64(),
            max_entries = cfg.max_entries,
            max_uses = cfg.max_uses,
            "DEK cache enabled: unwrapped DEKs stay in memory up to the ttl"
        );
        Ok(DekCache { inner, cfg, state })
    }

    /// The provider behind the cache.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// How many DEKs are cached now.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock can't leave the maps inconsistent in
        // a way that serves a wrong DEK (entries are keyed by content), so
        // poisoning is not fatal.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A hit: the DEK (counted as one use). Expired or used-up entries are
    /// dropped on the way.
    fn lookup(&self, key: &CacheKey) -> Option<Arc<Dek>> {
        let mut st = self.lock();
        st.purge_expired(Instant::now(), self.cfg.ttl);
        let entry = st.map.get_mut(key)?;
        entry.uses += 1;
        let dek = Arc::clone(&entry.dek);
        if entry.uses >= self.cfg.max_uses {
            st.remove(key);
        }
        Some(dek)
    }

    fn insert(&self, key: CacheKey, dek: &Arc<Dek>, generation: u64) {
        if self.cfg.max_uses <= 1 {
            return;
        }
        let mut st = self.lock();
        if st.generation != generation {
            return;
        }
        st.purge_expired(Instant::now(), self.cfg.ttl);
        st.remove(&key);
        while st.map.len() >= self.cfg.max_entries {
            let Some((_, oldest)) = st.order.pop_first() else {
                break;
            };
            st.map.remove(&oldest);
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        st.order.insert(seq, key.clone());
        st.map.insert(
            key,
            Entry {
                dek: Arc::clone(dek),
                born: Instant::now(),
                uses: 1,
                seq,
            },
        );
    }
}

async fn sweep(state: Weak<Mutex<State>>, every: Duration, ttl: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(state) = state.upgrade() else {
            return;
        };
        state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .purge_expired(Instant::now(), ttl);
    }
}

fn count(outcome: &'static str) {
    metrics::counter!("strongroom_dek_cache_total", "outcome" => outcome).increment(1);
}

#[async_trait]
impl<P: KeyProvider + ?Sized> KeyProvider for DekCache<P> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn create_kek(&self, vault_id: &VaultId) -> Result<KekRef, KmsError> {
        self.inner.create_kek(vault_id).await
    }

    async fn wrap(&self, kek: &KekRef, dek: &Dek, aad: &[u8]) -> Result<WrappedDek, KmsError> {
        self.inner.wrap(kek, dek, aad).await
    }

    async fn unwrap(
        &self,
        kek: &KekRef,
        wrapped: &WrappedDek,
        aad: &[u8],
    ) -> Result<Arc<Dek>, KmsError> {
        let key = CacheKey::new(kek, wrapped, aad);
        if let Some(dek) = self.lookup(&key) {
            count("hit");
            return Ok(dek);
        }
        count("miss");
        let generation = self.lock().generation;
        let dek = self.inner.unwrap(kek, wrapped, aad).await?;
        self.insert(key, &dek, generation);
        Ok(dek)
    }

    async fn rotate_kek(&self, kek: &KekRef) -> Result<u32, KmsError> {
        self.lock().drop_kek(kek);
        let r = self.inner.rotate_kek(kek).await;
        self.lock().drop_kek(kek);
        r
    }

    async fn destroy_kek(&self, kek: &KekRef) -> Result<(), KmsError> {
        // Before: the KEK's entries go at once. After: whatever an unwrap that
        // raced with the destroy managed to cache goes too.
        self.lock().drop_kek(kek);
        let r = self.inner.destroy_kek(kek).await;
        self.lock().drop_kek(kek);
        r
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
