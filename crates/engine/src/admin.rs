//! The administrative handle: what the binary that hosts the engine may do and
//! an adapter may not.
//!
//! Every use case on [`Engine`] takes the caller's [`Principal`] and decides
//! what that caller may do. The operations here take no caller: verifying any
//! organisation's audit chain, signing checkpoints, flushing aggregated
//! authentication failures, and the raw store, key provider and token service
//! (for offline commands and tests). They live on [`Admin`], which only the
//! code that built the engine holds; an adapter is handed the engine alone
//! ([`Admin::engine`]), so it cannot reach past the rules even by mistake.
//!
//! [`Principal`]: strongroom_core::Principal

use std::sync::Arc;

use strongroom_core::Result;
use strongroom_core::audit::VerifyReport;
use strongroom_kms::KeyProvider;
use strongroom_store::Store;

use crate::tokens::TokenService;
use crate::{CheckpointPolicy, Engine, EngineConfig};

/// The engine together with its caller-less operations. Build it with
/// [`Admin::new`]; give adapters [`Admin::engine`].
pub struct Admin {
    engine: Arc<Engine>,
}

impl Admin {
    /// Builds an engine over `store` and `kms`: loads (or on first start
    /// creates) the API-key pepper.
    pub async fn new(
        store: Arc<dyn Store>,
        kms: Arc<dyn KeyProvider>,
        config: EngineConfig,
    ) -> Result<Self> {
        Ok(Admin {
            engine: Arc::new(Engine::new(store, kms, config).await?),
        })
    }

    /// The engine: the only thing an adapter gets.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The store (for administrative commands and tests).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.engine.store
    }

    /// The key provider (for administrative commands and tests).
    pub fn kms(&self) -> &Arc<dyn KeyProvider> {
        &self.engine.kms
    }

    /// The token service (it issues tokens for any grant: tests only).
    pub fn tokens(&self) -> &TokenService {
        &self.engine.tokens
    }

    /// Verifies one organisation's chain and its signed checkpoints.
    pub async fn verify_chain_of(&self, org: strongroom_core::OrgId) -> Result<VerifyReport> {
        self.engine.verify_chain_of(org).await
    }

    /// Signs a checkpoint of every chain that grew past the policy's bounds;
    /// returns how many were signed.
    pub async fn checkpoint_due(&self, policy: CheckpointPolicy) -> Result<usize> {
        self.engine.checkpoint_due(policy).await
    }

    /// Signs a checkpoint of every chain whose head has none (at shutdown).
    pub async fn checkpoint_all(&self) -> Result<usize> {
        self.engine.checkpoint_all().await
    }

    /// Signs due checkpoints in the background until the engine is dropped,
    /// every `policy.every_events` events counted by `appends` (the store
    /// handle's count of committed events) and at least every `policy.every`.
    pub fn spawn_checkpointer(
        &self,
        policy: CheckpointPolicy,
        appends: strongroom_store::AuditAppendSignal,
    ) -> tokio::task::JoinHandle<()> {
        self.engine.spawn_checkpointer(policy, appends)
    }

    /// Writes the aggregated authentication-failure records of the current
    /// window and starts a new one (at shutdown).
    pub async fn flush_auth_failures(&self) {
        self.engine.flush_auth_failures().await
    }

    /// Flushes the aggregated failure records every window until the engine
    /// is dropped.
    pub fn spawn_auth_failure_flusher(&self) -> tokio::task::JoinHandle<()> {
        self.engine.spawn_auth_failure_flusher()
    }
}
