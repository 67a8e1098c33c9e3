//! Agents: non-human principals with their own `ocv_` keys, exchanged for
//! short-lived JWTs that carry the agent's scopes and vault binding.
//!
//! Who may manage an agent: any user of the organisation may create agents;
//! the agent's creator and the organisation's owners and admins may change,
//! rotate or deactivate it. Deactivating keeps the record (and its history).

use std::net::IpAddr;
use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use serde_json::{Value, json};
use strongroom_core::audit::details::AuthDetails;
use strongroom_core::audit::{
    Attempt, AuditAction, AuditRecord, AuditResource, ResourceKind, SYSTEM_ORG,
};
use strongroom_core::authz::{OrgAction, PolicyDecision, VaultKind};
use strongroom_core::time_util::now;
use strongroom_core::{AgentId, Error, Principal, Result, Role, SecretPath, Subject, VaultId};
use strongroom_crypto::SecretBytes;
use strongroom_store::{AgentRow, StoreError, VaultRow};
use time::OffsetDateTime;

use crate::credentials::{self, AGENT_KEY_PREFIX};
use crate::views::Agent;
use crate::{Engine, org_resource, validate};

/// The default lifetime of an agent's token.
pub const DEFAULT_AGENT_TOKEN_TTL: i64 = 3600;
/// The name of each organisation's vault of agent identity keys.
pub const AGENT_KEYS_VAULT: &str = "__agent-keys";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A new agent's settings.
#[derive(Debug, Default)]
pub struct NewAgent {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// How the agent authenticates: only `api_key` (the default) is offered.
    pub auth_method: Option<String>,
    /// Scopes.
    pub scopes: Option<Vec<String>>,
    /// Vault binding.
    pub vault_ids: Option<Vec<VaultId>>,
    /// Token lifetime (60..=86400).
    pub token_ttl_seconds: Option<i64>,
    /// Agent expiry.
    pub expires_at: Option<OffsetDateTime>,
    /// Key expiry.
    pub api_key_expires_at: Option<OffsetDateTime>,
    /// Other 1claw fields, stored and echoed.
    pub extra: serde_json::Map<String, Value>,
}

/// Changes to an agent; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct AgentUpdate {
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Scopes.
    pub scopes: Option<Vec<String>>,
    /// Vault binding.
    pub vault_ids: Option<Vec<VaultId>>,
    /// Token lifetime.
    pub token_ttl_seconds: Option<Option<i64>>,
    /// Agent expiry.
    pub expires_at: Option<Option<OffsetDateTime>>,
    /// Key expiry.
    pub api_key_expires_at: Option<Option<OffsetDateTime>>,
    /// Active or not.
    pub is_active: Option<bool>,
    /// Other 1claw fields, merged into the stored ones.
    pub extra: serde_json::Map<String, Value>,
}

/// An agent and its key (shown once).
pub struct AgentWithKey {
    /// The agent.
    pub agent: Agent,
    /// Its `ocv_` key.
    pub api_key: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for AgentWithKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is shown once, to the caller: never in a log line.
        f.debug_struct("AgentWithKey")
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

/// An agent's token.
#[derive(Debug)]
pub struct AgentToken {
    /// The JWT and its lifetime.
    pub token: crate::tokens::IssuedToken,
    /// The agent.
    pub agent: Agent,
}

fn validate_ttl(ttl: Option<i64>) -> Result<Option<i64>> {
    match ttl {
        Some(t) if !(60..=86_400).contains(&t) => Err(Error::invalid(
            "token_ttl_seconds must be between 60 and 86400",
        )),
        t => Ok(t),
    }
}

impl Engine {
    fn may_manage_agent(who: &Principal, agent: &AgentRow) -> Result<()> {
        if agent.org_id != who.org_id {
            return Err(Error::not_found("agent not found"));
        }
        match (who.subject, who.role) {
            (Subject::User(_), Some(Role::Owner | Role::Admin)) => Ok(()),
            (s @ Subject::User(_), _) if s == agent.created_by => Ok(()),
            (Subject::User(_), _) => Err(Error::forbidden(
                "only the agent's creator or an organisation admin may change it",
            )),
            (Subject::Agent(_), _) => Err(Error::forbidden("agents can't manage agents")),
        }
    }

    /// One agent of the caller's organisation that the caller may change;
    /// a refusal of `attempted` is recorded. A credential with a path ceiling
    /// manages no agent (an agent's key and grants reach beyond its paths).
    async fn managed_agent(
        &self,
        who: &Principal,
        id: AgentId,
        attempted: AuditAction,
    ) -> Result<AgentRow> {
        self.org_allowed(
            who,
            OrgAction::ManageAgents,
            attempted,
            AuditResource::Agent(id),
        )
        .await?;
        let a = self.agent_row(who, id).await?;
        let check = Self::may_manage_agent(who, &a);
        self.checked(who, attempted, AuditResource::Agent(id), "role", check)
            .await?;
        Ok(a)
    }

    async fn check_vault_ids(&self, who: &Principal, ids: &[VaultId]) -> Result<()> {
        if ids.len() > 256 {
            return Err(Error::invalid("at most 256 vault_ids"));
        }
        for id in ids {
            match self.store.vault(*id).await? {
                Some(v) if v.org_id == who.org_id => {}
                _ => {
                    return Err(Error::invalid(format!(
                        "vault {id} does not exist in this organisation"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Registers an agent: its key (shown once), and its Ed25519 and P-256
    /// identity keys, whose private halves are stored as ordinary encrypted
    /// secrets in the organisation's `__agent-keys` vault.
    pub async fn create_agent(&self, who: &Principal, input: NewAgent) -> Result<AgentWithKey> {
        if input.auth_method.as_deref().is_some_and(|m| m != "api_key") {
            return Err(Error::invalid("only auth_method \"api_key\" is supported"));
        }
        self.org_allowed(
            who,
            OrgAction::RegisterAgent,
            AuditAction::AgentRegister,
            org_resource(who),
        )
        .await?;
        let name = validate::name("name", &input.name, 255)?;
        let description = validate::text(
            "description",
            input.description.as_deref().unwrap_or(""),
            2000,
        )?;
        let scopes = validate::scopes(input.scopes.unwrap_or_default())?;
        let vault_ids = input.vault_ids.unwrap_or_default();
        self.check_vault_ids(who, &vault_ids).await?;
        let token_ttl_seconds = validate_ttl(input.token_ttl_seconds)?;
        let id = AgentId::new();
        let (ssh_public, ssh_private) = ed25519_identity()?;
        let (ecdh_public, ecdh_private) = p256_identity()?;
        for attempt in 0..3 {
            let issued = credentials::issue(AGENT_KEY_PREFIX, &self.pepper);
            let agent = AgentRow {
                id,
                org_id: who.org_id,
                name: name.clone(),
                description: description.clone(),
                auth_method: "api_key".into(),
                scopes: scopes.clone(),
                vault_ids: vault_ids.clone(),
                token_ttl_seconds,
                expires_at: input.expires_at,
                api_key_expires_at: input.api_key_expires_at,
                is_active: true,
                key_prefix: issued.prefix.clone(),
                key_hash: issued.hash.clone(),
                ssh_public_key: Some(ssh_public.clone()),
                ecdh_public_key: Some(ecdh_public.clone()),
                token_generation: 0,
                extra: Value::Object(input.extra.clone()),
                created_by: who.subject,
                created_at: now(),
                updated_at: now(),
            };
            let audit = AuditRecord::by(who, AuditAction::AgentRegister, AuditResource::Agent(id))
                .with_details(json!({"name": agent.name, "scopes": agent.scopes, "vault_ids": agent.vault_ids, "key_prefix": agent.key_prefix}));
            match self.store.create_agent(&agent, &audit).await {
                Ok(()) => {
                    self.store_identity_keys(who, id, &ssh_private, &ecdh_private)
                        .await?;
                    return Ok(AgentWithKey {
                        agent: agent.into(),
                        api_key: issued.key,
                    });
                }
                Err(StoreError::Conflict(_)) if attempt < 2 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::internal("could not allocate a unique key prefix"))
    }

    /// The id of the organisation's agent-keys vault (users only; 404 until
    /// the first agent exists).
    pub async fn agent_keys_vault_id(&self, who: &Principal) -> Result<VaultId> {
        self.org_allowed(
            who,
            OrgAction::FindAgentKeysVault,
            Attempt::VaultAgentKeys,
            org_resource(who),
        )
        .await?;
        self.store
            .system_vault(who.org_id, VaultKind::AgentKeys)
            .await?
            .map(|v| v.id)
            .ok_or_else(|| Error::not_found("no agent has been created yet"))
    }

    /// The organisation's agent-keys vault, created by the server on first
    /// use (its id is what marks it, never its name; it has no creator).
    async fn agent_keys_vault(&self, who: &Principal) -> Result<VaultRow> {
        for _ in 0..2 {
            if let Some(v) = self
                .store
                .system_vault(who.org_id, VaultKind::AgentKeys)
                .await?
            {
                return Ok(v);
            }
            match self
                .insert_vault(
                    who,
                    AGENT_KEYS_VAULT.into(),
                    "identity keys of this organisation's agents".into(),
                    VaultKind::AgentKeys,
                )
                .await
            {
                Ok(v) => return Ok(v),
                // Another request created it first: use that one.
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::internal("the agent-keys vault could not be created"))
    }

    async fn store_identity_keys(
        &self,
        who: &Principal,
        id: AgentId,
        ssh: &SecretBytes,
        ecdh: &SecretBytes,
    ) -> Result<()> {
        let vault = self.agent_keys_vault(who).await?;
        for (path, value) in [
            (format!("agents/{id}/ssh/private_key"), ssh),
            (format!("agents/{id}/ecdh/private_key"), ecdh),
        ] {
            let path = SecretPath::parse(&path)?;
            self.write_version(
                who,
                &vault,
                &path,
                value,
                "private_key".into(),
                json!({"agent_id": id.to_string()}),
                None,
                None,
                AuditAction::SecretWrite,
                &PolicyDecision::System,
            )
            .await?;
        }
        Ok(())
    }

    /// The organisation's agents.
    pub async fn list_agents(&self, who: &Principal) -> Result<Vec<Agent>> {
        let Subject::User(_) = who.subject else {
            return Err(Error::forbidden("this endpoint is for users"));
        };
        let rows = self.store.list_agents(who.org_id).await?;
        Ok(rows.into_iter().map(Agent::from).collect())
    }

    /// One agent of the caller's organisation; an agent sees only itself.
    pub async fn get_agent(&self, who: &Principal, id: AgentId) -> Result<Agent> {
        self.agent_row(who, id).await.map(Agent::from)
    }

    /// [`Engine::get_agent`], as stored.
    async fn agent_row(&self, who: &Principal, id: AgentId) -> Result<AgentRow> {
        if let Subject::Agent(me) = who.subject
            && me != id
        {
            let refused = Err(Error::forbidden("an agent may see only its own record"));
            return self
                .checked(
                    who,
                    Attempt::AgentRead,
                    AuditResource::Agent(id),
                    "role",
                    refused,
                )
                .await;
        }
        match self.store.agent(id).await? {
            Some(a) if a.org_id == who.org_id => Ok(a),
            _ => Err(Error::not_found("agent not found")),
        }
    }

    /// The calling agent.
    pub async fn agent_me(&self, who: &Principal) -> Result<Agent> {
        match who.subject {
            Subject::Agent(id) => self.get_agent(who, id).await,
            Subject::User(_) => Err(Error::forbidden("this endpoint is for agents")),
        }
    }

    /// Changes an agent.
    pub async fn update_agent(
        &self,
        who: &Principal,
        id: AgentId,
        u: AgentUpdate,
    ) -> Result<Agent> {
        let mut a = self
            .managed_agent(who, id, AuditAction::AgentUpdate)
            .await?;
        if let Some(n) = u.name {
            a.name = validate::name("name", &n, 255)?;
        }
        if let Some(d) = u.description {
            a.description = validate::text("description", &d, 2000)?;
        }
        if let Some(s) = u.scopes {
            a.scopes = validate::scopes(s)?;
        }
        if let Some(v) = u.vault_ids {
            self.check_vault_ids(who, &v).await?;
            a.vault_ids = v;
        }
        if let Some(t) = u.token_ttl_seconds {
            a.token_ttl_seconds = validate_ttl(t)?;
        }
        if let Some(e) = u.expires_at {
            a.expires_at = e;
        }
        if let Some(e) = u.api_key_expires_at {
            a.api_key_expires_at = e;
        }
        let deactivated = u.is_active == Some(false) && a.is_active;
        if let Some(act) = u.is_active {
            a.is_active = act;
        }
        if deactivated {
            // Its tokens end now, and stay ended if it is reactivated later.
            a.token_generation = a.token_generation.saturating_add(1);
        }
        if let Value::Object(m) = &mut a.extra {
            m.extend(u.extra);
        }
        a.updated_at = now();
        let action = if deactivated {
            AuditAction::AgentDeactivate
        } else {
            AuditAction::AgentUpdate
        };
        self.save_agent(
            who,
            &a,
            action,
            json!({"is_active": a.is_active, "scopes": a.scopes, "vault_ids": a.vault_ids}),
        )
        .await?;
        Ok(a.into())
    }

    async fn save_agent(
        &self,
        who: &Principal,
        a: &AgentRow,
        action: AuditAction,
        details: Value,
    ) -> Result<()> {
        let audit = AuditRecord::by(who, action, AuditResource::Agent(a.id)).with_details(details);
        if self.store.update_agent(a, &audit).await? {
            Ok(())
        } else {
            Err(Error::not_found("agent not found"))
        }
    }

    /// Deactivates an agent: no new tokens, and its current tokens stop working.
    pub async fn deactivate_agent(&self, who: &Principal, id: AgentId) -> Result<()> {
        self.update_agent(
            who,
            id,
            AgentUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .map(|_| ())
    }

    /// Replaces an agent's key; the old one stops working at once.
    pub async fn rotate_agent_key(&self, who: &Principal, id: AgentId) -> Result<AgentWithKey> {
        let mut a = self
            .managed_agent(who, id, AuditAction::AgentRotateKey)
            .await?;
        // Tokens exchanged for the old key end with it.
        a.token_generation = a.token_generation.saturating_add(1);
        for attempt in 0..3 {
            let issued = credentials::issue(AGENT_KEY_PREFIX, &self.pepper);
            a.key_prefix = issued.prefix.clone();
            a.key_hash = issued.hash.clone();
            a.updated_at = now();
            match self
                .save_agent(
                    who,
                    &a,
                    AuditAction::AgentRotateKey,
                    json!({"key_prefix": a.key_prefix}),
                )
                .await
            {
                Ok(()) => {
                    return Ok(AgentWithKey {
                        agent: a.into(),
                        api_key: issued.key,
                    });
                }
                Err(Error::Conflict(_)) if attempt < 2 => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::internal("could not allocate a unique key prefix"))
    }

    /// Exchanges an agent key for a JWT. Unknown, wrong, inactive and expired
    /// all get the same 401 after the same work.
    pub async fn agent_token(
        &self,
        presented: &str,
        agent_id: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<AgentToken> {
        let fail = || Error::Unauthenticated("invalid agent credentials".into());
        // An empty id is no id; a malformed one is just another wrong
        // credential: the same 401.
        let agent_id: Option<AgentId> = match agent_id {
            None | Some("") => None,
            Some(raw) => Some(raw.parse().map_err(|_| fail())?),
        };
        let row = match (
            agent_id,
            credentials::lookup_prefix(presented, AGENT_KEY_PREFIX),
        ) {
            (_, None) => None,
            (Some(id), Some(_)) => self.store.agent(id).await?,
            (None, Some(prefix)) => self.store.agent_by_key_prefix(prefix).await?,
        };
        let key_ok = credentials::matches(
            &self.pepper,
            presented,
            row.as_ref().map(|a| a.key_hash.as_slice()),
        );
        let t = OffsetDateTime::now_utc();
        let usable = row.as_ref().is_some_and(|a| {
            key_ok
                && a.is_active
                && a.expires_at.is_none_or(|e| e > t)
                && a.api_key_expires_at.is_none_or(|e| e > t)
                && credentials::lookup_prefix(presented, AGENT_KEY_PREFIX)
                    == Some(a.key_prefix.as_str())
        });
        if !usable {
            // The caller hears the same 401 whatever went wrong. A known agent's
            // organisation is told which of its agents it was, and why.
            let (org, id, reason) = match &row {
                Some(a) => (
                    a.org_id,
                    AuditResource::Agent(a.id),
                    if !key_ok {
                        "bad_credentials"
                    } else if !a.is_active {
                        "inactive"
                    } else {
                        "expired"
                    },
                ),
                None => (
                    SYSTEM_ORG,
                    // Counted per client: the record names no agent.
                    AuditResource::Unnamed(ResourceKind::Agent),
                    "invalid_credentials",
                ),
            };
            self.audit_auth_failure(org, id, "agent_key", reason, ip)
                .await;
            return Err(fail());
        }
        let Some(agent) = row else {
            return Err(fail());
        };
        self.store
            .append_audit(
                &AuditRecord::authenticated(
                    agent.org_id,
                    Subject::Agent(agent.id),
                    ip,
                    AuditAction::AuthSuccess,
                    AuditResource::Agent(agent.id),
                )
                .with_details(AuthDetails {
                    method: "agent_key",
                    reason: None,
                }),
            )
            .await?;
        let ttl =
            Duration::from_secs(agent.token_ttl_seconds.unwrap_or(DEFAULT_AGENT_TOKEN_TTL) as u64);
        let token = self
            .tokens
            .issue(crate::tokens::TokenGrant {
                subject: Subject::Agent(agent.id),
                org: agent.org_id,
                role: None,
                scopes: agent.scopes.clone(),
                vault_ids: agent.vault_ids.clone(),
                api_key_id: None,
                generation: agent.token_generation,
                ttl,
            })
            .await?;
        Ok(AgentToken {
            token,
            agent: agent.into(),
        })
    }
}

fn ed25519_identity() -> Result<(String, SecretBytes)> {
    let seed = zeroize::Zeroizing::new(strongroom_crypto::random::bytes(32));
    let kp = Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|_| Error::internal("ed25519 key generation"))?;
    Ok((
        B64.encode(kp.public_key().as_ref()),
        SecretBytes::from(B64.encode(&seed[..])),
    ))
}

fn p256_identity() -> Result<(String, SecretBytes)> {
    use aws_lc_rs::agreement::{ECDH_P256, PrivateKey};
    use aws_lc_rs::encoding::AsBigEndian;
    let k =
        PrivateKey::generate(&ECDH_P256).map_err(|_| Error::internal("p-256 key generation"))?;
    let public = k
        .compute_public_key()
        .map_err(|_| Error::internal("p-256 public key"))?;
    let scalar = AsBigEndian::<aws_lc_rs::encoding::EcPrivateKeyBin>::as_be_bytes(&k)
        .map_err(|_| Error::internal("p-256 private key"))?;
    Ok((
        B64.encode(public.as_ref()),
        SecretBytes::from(B64.encode(scalar.as_ref())),
    ))
}
