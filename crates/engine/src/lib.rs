//! The use cases of Strongroom, one function each. Every function takes an
//! authenticated [`Principal`] (or, for sign-up and login, nothing) and validated
//! input, authorizes, runs the envelope through the key provider, persists
//! through the store together with its audit record, and returns domain values.
//! Nothing here knows HTTP.
//!
//! The boundary with adapters: an adapter holds an [`Engine`] and sees only
//! [`views`] (never a store row) and the inputs of each use case; defaults and
//! bounds of those inputs are decided here. Operations that take no caller
//! (audit checkpoints, verifying any chain, the raw store and key provider)
//! are on [`Admin`], which only the hosting binary holds.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
pub mod agents;
pub mod audit;
mod auth;
pub mod auth_failures;
pub mod credentials;
pub mod envelope;
pub mod hashing;
pub mod keys;
mod org;
mod policies;
mod secrets;
pub mod tokens;
mod validate;
mod vaults;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use strongroom_core::audit::details::{OrgRefusal, Outcome, VaultRefusal};
use strongroom_core::audit::{Attempt, AuditAction, AuditRecord, AuditResource};
use strongroom_core::authz::{self, Action, PolicyDecision, Refusal, VaultFacts};
use strongroom_core::policy::Policy as PolicyRule;
use strongroom_core::time_util;
use strongroom_core::{Error, Principal, Result, SecretPath, VaultId};
use strongroom_crypto::password::PasswordParams;
use strongroom_kms::KeyProvider;
use strongroom_store::{SignupGate, Store, VaultRow};

pub use admin::Admin;
pub use agents::{AgentToken, AgentUpdate, AgentWithKey, NewAgent};
pub use audit::CheckpointPolicy;
pub use auth::{LoginOutput, NewApiKey, SignupInput};
pub use org::{INVITATION_TTL, NewInvitation};
pub use policies::{NewPolicy, PolicyUpdate};
pub use secrets::{PutSecret, SecretValue};
/// A secret value: zeroized on drop, never printed.
pub use strongroom_crypto::SecretBytes;
pub use tokens::TokenService;
pub use views::{
    Agent, ApiKeyInfo, AuditEvent, AuditFilter, AuditPage, Health, Invitation, JwtPublicKey,
    Policy, ProviderHealth, SecretMeta, User, Vault,
};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Lifetime of a user's access token.
    pub user_token_ttl: Duration,
    /// Whether sign-up is open beyond the first user.
    pub signup: SignupGate,
    /// Argon2id cost.
    pub password_params: PasswordParams,
    /// How much password hashing may run at once.
    pub hashing: hashing::HashingLimits,
    /// How failed authentications naming no organisation are aggregated.
    pub auth_failures: auth_failures::AuthFailureAggregation,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            user_token_ttl: Duration::from_secs(900),
            signup: SignupGate::FirstOnly,
            password_params: PasswordParams::default(),
            hashing: hashing::HashingLimits::default(),
            auth_failures: auth_failures::AuthFailureAggregation::default(),
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
    /// Seals, opens and rewraps secret values (see [`envelope`]).
    envelopes: envelope::EnvelopeCipher,
    /// The HMAC key of stored API-key hashes (see [`credentials`]).
    pepper: strongroom_crypto::Pepper,
    /// Bounded Argon2 work (permits and reusable buffers).
    password_work: hashing::PasswordWork,
    /// Failures naming no organisation, counted per client until flushed.
    auth_failures: auth_failures::AuthFailureLog,
}

impl Engine {
    /// Builds an engine: loads (or on first start creates) the API-key pepper.
    /// Hosts build it through [`Admin::new`].
    pub(crate) async fn new(
        store: Arc<dyn Store>,
        kms: Arc<dyn KeyProvider>,
        config: EngineConfig,
    ) -> Result<Self> {
        let tokens = TokenService::new(kms.clone());
        let dummy_password_hash = strongroom_crypto::password::dummy_hash(config.password_params);
        let pepper = credentials::load_or_create_pepper(&*store, &*kms).await?;
        // Buffers serve the configured cost and the default one, so hashes
        // made under either verify.
        let capacity = config
            .password_params
            .m_cost
            .max(PasswordParams::default().m_cost);
        let password_work = hashing::PasswordWork::new(config.hashing, capacity);
        let auth_failures = auth_failures::AuthFailureLog::new(config.auth_failures);
        Ok(Engine {
            envelopes: envelope::EnvelopeCipher::new(kms.clone()),
            password_work,
            auth_failures,
            store,
            kms,
            tokens,
            config,
            dummy_password_hash,
            pepper,
        })
    }

    /// The key that verifies every token (for JWKS publication).
    pub fn jwt_public_key(&self) -> JwtPublicKey {
        let k = self.tokens.public_key();
        JwtPublicKey {
            kid: k.kid.clone(),
            ed25519: k.ed25519,
        }
    }

    /// Checks the store and the key provider.
    pub async fn health(&self) -> Health {
        Health {
            store_ok: self.store.health().await.is_ok(),
            provider: self.kms.health().await.into(),
            provider_name: self.kms.name(),
        }
    }

    /// Loads a vault and decides whether `who` may do `action` there (and on
    /// `path`). Refusals are audited with the rule (and deny policy) that refused.
    async fn vault_for(
        &self,
        who: &Principal,
        vault_id: VaultId,
        action: Action,
        path: Option<&SecretPath>,
    ) -> Result<(VaultRow, PolicyDecision)> {
        let (vault, decision, _) = self.vault_access(who, vault_id, action, path).await?;
        Ok((vault, decision))
    }

    /// [`Engine::vault_for`], also returning the caller's policies on the vault
    /// (for use cases that decide path by path, such as listing).
    async fn vault_access(
        &self,
        who: &Principal,
        vault_id: VaultId,
        action: Action,
        path: Option<&SecretPath>,
    ) -> Result<(VaultRow, PolicyDecision, Vec<PolicyRule>)> {
        let vault = self
            .store
            .vault(vault_id)
            .await?
            .ok_or_else(|| Error::not_found("vault not found"))?;
        let policies = self.policies_of(who, &vault).await?;
        match authz::authorize(
            who,
            &facts(&vault),
            action,
            path,
            &policies,
            time_util::now(),
        ) {
            Ok(d) => Ok((vault, d, policies)),
            Err(refusal) => {
                self.audit_denied(who, &vault, action, path, &refusal).await;
                Err(refusal.error)
            }
        }
    }

    /// The vault's policies that name `who` (none for other organisations).
    async fn policies_of(&self, who: &Principal, vault: &VaultRow) -> Result<Vec<PolicyRule>> {
        if who.org_id != vault.org_id {
            return Ok(vec![]);
        }
        Ok(self.store.policies_for(vault.id, &who.subject).await?)
    }

    async fn audit_denied(
        &self,
        who: &Principal,
        vault: &VaultRow,
        action: Action,
        path: Option<&SecretPath>,
        r: &Refusal,
    ) {
        let resource = match path {
            Some(_) => AuditResource::SecretOf(vault.id),
            None => AuditResource::Vault(vault.id),
        };
        let details = VaultRefusal {
            vault_id: vault.id,
            path,
            attempted: action,
            outcome: Outcome::Denied,
            rule: r.rule,
            policy_id: r.policy_id,
        };
        // A caller of another organisation is told the vault doesn't exist;
        // the vault's organisation is told someone tried.
        let rec = AuditRecord::by(who, AuditAction::AccessDenied, resource)
            .in_org(vault.org_id)
            .with_details(details);
        self.audit_best_effort(rec).await;
    }

    /// Passes `check` through, recording a refusal (`Forbidden`) of `attempted`
    /// on `resource` first, as `access.denied` with the `rule` that refused.
    async fn checked<T>(
        &self,
        who: &Principal,
        attempted: impl Into<Attempt>,
        resource: AuditResource,
        rule: &str,
        check: Result<T>,
    ) -> Result<T> {
        if let Err(Error::Forbidden(reason)) = &check {
            let details = OrgRefusal {
                attempted: attempted.into(),
                outcome: Outcome::Denied,
                rule,
                reason,
            };
            let rec =
                AuditRecord::by(who, AuditAction::AccessDenied, resource).with_details(details);
            self.audit_best_effort(rec).await;
        }
        check
    }

    /// Refuses `attempted` on `resource` for the caller's role, with `reason`,
    /// recording it first (see [`Engine::checked`]).
    async fn refuse<T>(
        &self,
        who: &Principal,
        attempted: impl Into<Attempt>,
        resource: AuditResource,
        reason: &str,
    ) -> Result<T> {
        let refused = Err(Error::forbidden(reason));
        self.checked(who, attempted, resource, "role", refused)
            .await
    }

    /// Decides an organisation-level operation ([`authz::authorize_org`]),
    /// recording a refusal of `attempted` on `resource` with its rule.
    async fn org_allowed(
        &self,
        who: &Principal,
        action: authz::OrgAction,
        attempted: impl Into<Attempt>,
        resource: AuditResource,
    ) -> Result<()> {
        match authz::authorize_org(who, action) {
            Ok(()) => Ok(()),
            Err(r) => {
                self.checked(who, attempted, resource, r.rule, Err(r.error))
                    .await
            }
        }
    }

    /// Records an event whose failure must not change the answer (the answer is
    /// already a refusal).
    async fn audit_best_effort(&self, rec: AuditRecord) {
        if let Err(e) = self.store.append_audit(&rec).await {
            tracing::error!(error = %strongroom_core::Chain(&e), action = %rec.action, "could not write audit record");
        }
    }
}

/// The facts authorization needs about a vault.
fn facts(v: &VaultRow) -> VaultFacts {
    VaultFacts {
        id: v.id,
        org_id: v.org_id,
        created_by: v.created_by,
        kind: v.kind,
    }
}

/// The caller's organisation as the resource of an audit record.
fn org_resource(who: &Principal) -> AuditResource {
    AuditResource::Org(who.org_id)
}
