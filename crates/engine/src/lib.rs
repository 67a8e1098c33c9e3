//! The use cases of Strongroom, one function each. Every function takes an
//! authenticated [`Principal`] (or, for sign-up and login, nothing) and validated
//! input, authorizes, runs the envelope through the key provider, persists
//! through the store together with its audit record, and returns domain values.
//! Nothing here knows HTTP.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
mod auth;
mod secrets;
pub mod tokens;
mod validate;
mod vaults;

use std::sync::Arc;
use std::time::Duration;

use strongroom_core::audit::{Actor, AuditRecord};
use strongroom_core::authz::{self, Action, PolicyDecision, VaultFacts};
use strongroom_core::{Error, Principal, Result, SecretPath, VaultId};
use strongroom_crypto::password::PasswordParams;
use strongroom_kms::{KeyProvider, ProviderHealth};
use strongroom_store::{SignupGate, Store, VaultRow};

pub use audit::CheckpointPolicy;
pub use auth::{LoginOutput, SignupInput};
pub use secrets::{PutSecret, SecretValue};
pub use tokens::TokenService;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Lifetime of a user's access token.
    pub user_token_ttl: Duration,
    /// Whether sign-up is open beyond the first user.
    pub signup: SignupGate,
    /// Argon2id cost.
    pub password_params: PasswordParams,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            user_token_ttl: Duration::from_secs(900),
            signup: SignupGate::FirstOnly,
            password_params: PasswordParams::default(),
        }
    }
}

/// The application core: a store, a key provider, and the rules between them.
pub struct Engine {
    store: Arc<dyn Store>,
    kms: Arc<dyn KeyProvider>,
    tokens: TokenService,
    config: EngineConfig,
    /// A hash to verify against for unknown users, so timing does not tell.
    dummy_password_hash: String,
}

/// Health of the engine's dependencies.
#[derive(Debug, Clone)]
pub struct Health {
    /// Whether the database answers.
    pub store_ok: bool,
    /// The key provider's state.
    pub provider: ProviderHealth,
    /// The key provider's name.
    pub provider_name: &'static str,
}

impl Engine {
    /// Builds an engine.
    pub fn new(store: Arc<dyn Store>, kms: Arc<dyn KeyProvider>, config: EngineConfig) -> Self {
        let tokens = TokenService::new(kms.clone());
        let dummy_password_hash = strongroom_crypto::password::dummy_hash(config.password_params);
        Engine {
            store,
            kms,
            tokens,
            config,
            dummy_password_hash,
        }
    }

    /// The token service (for JWKS publication).
    pub fn tokens(&self) -> &TokenService {
        &self.tokens
    }

    /// The store (for administrative commands and tests).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The key provider (for administrative commands and tests).
    pub fn kms(&self) -> &Arc<dyn KeyProvider> {
        &self.kms
    }

    /// Checks the store and the key provider.
    pub async fn health(&self) -> Health {
        Health {
            store_ok: self.store.health().await.is_ok(),
            provider: self.kms.health().await,
            provider_name: self.kms.name(),
        }
    }

    /// Loads a vault and decides whether `who` may do `action` there.
    async fn vault_for(
        &self,
        who: &Principal,
        vault_id: VaultId,
        action: Action,
        path: Option<&SecretPath>,
    ) -> Result<(VaultRow, PolicyDecision)> {
        let vault = self
            .store
            .vault(vault_id)
            .await?
            .ok_or_else(|| Error::not_found("vault not found"))?;
        let facts = VaultFacts {
            id: vault.id,
            org_id: vault.org_id,
            created_by: vault.created_by,
        };
        match authz::authorize(who, &facts, action, path) {
            Ok(d) => Ok((vault, d)),
            Err(e) => {
                if matches!(e, Error::Forbidden(_)) {
                    let details = serde_json::json!({
                        "vault_id": vault.id.to_string(),
                        "path": path.map(|p| p.as_str()),
                        "attempted": format!("{action:?}").to_lowercase(),
                        "outcome": "denied",
                    });
                    self.audit_best_effort(AuditRecord::new(
                        who.org_id,
                        Actor::Subject(who.subject),
                        "access.denied",
                        if path.is_some() { "secret" } else { "vault" },
                        vault.id.to_string(),
                        details,
                        who.ip.map(|i| i.to_string()),
                    ))
                    .await;
                }
                Err(e)
            }
        }
    }

    /// Records an event whose failure must not change the answer (the answer is
    /// already a refusal).
    async fn audit_best_effort(&self, rec: AuditRecord) {
        if let Err(e) = self.store.append_audit(&rec).await {
            tracing::error!(error = %e, action = %rec.action, "could not write audit record");
        }
    }
}

fn ip_of(p: &Principal) -> Option<String> {
    p.ip.map(|i| i.to_string())
}
