//! What the engine shows its adapters, and the inputs it takes from them.
//!
//! An adapter (the HTTP server today; an MCP server or a dashboard later)
//! renders these views and never a persistence row: a row carries what only
//! the engine may handle — a user's password hash, the HMAC of an API key or an
//! invitation token, an agent's token generation, a vault's KEK reference —
//! and a field added to a row must not reach a JSON body or a log line by
//! accident. Each view is built from its row here, inside the engine, so
//! leaving a field out is one decision made in one place.
//!
//! Inputs (such as [`AuditFilter`]) carry what the caller asked for, unset
//! fields included: defaults and bounds are the engine's, so every way in
//! shares them.

use serde_json::Value;
use strongroom_core::audit::ChainedEvent;
use strongroom_core::authz::VaultKind;
use strongroom_core::time_util::from_micros;
use strongroom_core::{
    AgentId, ApiKeyId, OrgId, Role, SecretId, SecretPath, Subject, UserId, VaultId,
};
use strongroom_store::{AgentRow, ApiKeyRow, InvitationRow, PolicyRow, UserRow, VaultRow};
use time::OffsetDateTime;

/// A human user (never the password hash).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Organisation.
    pub org_id: OrgId,
    /// Lower-cased email.
    pub email: String,
    /// Optional display name.
    pub display_name: Option<String>,
    /// Role in the organisation.
    pub role: Role,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> Self {
        User {
            id: u.id,
            org_id: u.org_id,
            email: u.email,
            display_name: u.display_name,
            role: u.role,
            created_at: u.created_at,
        }
    }
}

/// A vault (never the key provider's handle on its KEK).
#[derive(Debug, Clone, PartialEq)]
pub struct Vault {
    /// Id.
    pub id: VaultId,
    /// Organisation.
    pub org_id: OrgId,
    /// Name.
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// Creator; `None` for a vault the server made for itself.
    pub created_by: Option<Subject>,
    /// What the vault is for.
    pub kind: VaultKind,
    /// The KEK's newest version.
    pub kek_version: u32,
    /// The key provider holding the KEK (`file`, `pkcs11`, …).
    pub kek_provider: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

impl From<VaultRow> for Vault {
    fn from(v: VaultRow) -> Self {
        Vault {
            id: v.id,
            org_id: v.org_id,
            name: v.name,
            description: v.description,
            created_by: v.created_by,
            kind: v.kind,
            kek_version: v.kek_version,
            kek_provider: v.kek_provider,
            created_at: v.created_at,
        }
    }
}

/// An agent (never its key's hash or its token generation).
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    /// Id.
    pub id: AgentId,
    /// Organisation.
    pub org_id: OrgId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `api_key` (the only method offered).
    pub auth_method: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Vault binding: empty means any vault of the org (still subject to policies).
    pub vault_ids: Vec<VaultId>,
    /// Token lifetime (`None`: the default).
    pub token_ttl_seconds: Option<i64>,
    /// The agent stops working after this.
    pub expires_at: Option<OffsetDateTime>,
    /// The key stops working after this.
    pub api_key_expires_at: Option<OffsetDateTime>,
    /// Deactivated agents can't get tokens.
    pub is_active: bool,
    /// Base64 Ed25519 public key.
    pub ssh_public_key: Option<String>,
    /// Base64 uncompressed P-256 public key.
    pub ecdh_public_key: Option<String>,
    /// Echoed 1claw fields that Strongroom stores but does not act on.
    pub extra: Value,
    /// Creator.
    pub created_by: Subject,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl From<AgentRow> for Agent {
    fn from(a: AgentRow) -> Self {
        Agent {
            id: a.id,
            org_id: a.org_id,
            name: a.name,
            description: a.description,
            auth_method: a.auth_method,
            scopes: a.scopes,
            vault_ids: a.vault_ids,
            token_ttl_seconds: a.token_ttl_seconds,
            expires_at: a.expires_at,
            api_key_expires_at: a.api_key_expires_at,
            is_active: a.is_active,
            ssh_public_key: a.ssh_public_key,
            ecdh_public_key: a.ecdh_public_key,
            extra: a.extra,
            created_by: a.created_by,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// A personal API key (never the key or its hash).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyInfo {
    /// Id.
    pub id: ApiKeyId,
    /// Owner.
    pub user_id: UserId,
    /// Organisation.
    pub org_id: OrgId,
    /// Name.
    pub name: String,
    /// Lookup prefix (shown so a user can tell keys apart).
    pub key_prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Revoked keys are inactive.
    pub is_active: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Expiry.
    pub expires_at: Option<OffsetDateTime>,
}

impl From<ApiKeyRow> for ApiKeyInfo {
    fn from(k: ApiKeyRow) -> Self {
        ApiKeyInfo {
            id: k.id,
            user_id: k.user_id,
            org_id: k.org_id,
            name: k.name,
            key_prefix: k.key_prefix,
            scopes: k.scopes,
            is_active: k.is_active,
            created_at: k.created_at,
            expires_at: k.expires_at,
        }
    }
}

/// A secret version's metadata: what listings and writes return. Never the value.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretMeta {
    /// The secret's id.
    pub id: SecretId,
    /// Vault.
    pub vault_id: VaultId,
    /// Path.
    pub path: SecretPath,
    /// Version number.
    pub version: u32,
    /// Type.
    pub secret_type: String,
    /// Client metadata.
    pub metadata: Value,
    /// Expiry.
    pub expires_at: Option<OffsetDateTime>,
    /// Whether this version is disabled.
    pub disabled: bool,
    /// Author (`user:<id>` / `agent:<id>`).
    pub created_by: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

impl From<strongroom_store::SecretMeta> for SecretMeta {
    fn from(m: strongroom_store::SecretMeta) -> Self {
        SecretMeta {
            id: m.id,
            vault_id: m.vault_id,
            path: m.path,
            version: m.version,
            secret_type: m.secret_type,
            metadata: m.metadata,
            expires_at: m.expires_at,
            disabled: m.disabled,
            created_by: m.created_by,
            created_at: m.created_at,
        }
    }
}

/// A vault policy: the rule, and what is recorded about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The rule (pattern, principal, permissions, conditions, effect, priority).
    pub rule: strongroom_core::policy::Policy,
    /// Echoed 1claw fields (attribute_conditions, tx_conditions, …): stored, not evaluated.
    pub extra: Value,
    /// Author.
    pub created_by: Subject,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl From<PolicyRow> for Policy {
    fn from(r: PolicyRow) -> Self {
        Policy {
            rule: r.policy,
            extra: r.extra,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A pending invitation (never its token's hash).
#[derive(Debug, Clone, PartialEq)]
pub struct Invitation {
    /// Organisation to join.
    pub org_id: OrgId,
    /// Lower-cased email.
    pub email: String,
    /// Role on joining.
    pub role: Role,
    /// Who invited.
    pub invited_by: UserId,
    /// When.
    pub created_at: OffsetDateTime,
    /// From when it can no longer be accepted.
    pub expires_at: OffsetDateTime,
}

impl From<InvitationRow> for Invitation {
    fn from(i: InvitationRow) -> Self {
        Invitation {
            org_id: i.org_id,
            email: i.email,
            role: i.role,
            invited_by: i.invited_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

/// The default page size of an audit query.
pub const AUDIT_PAGE_DEFAULT: u32 = 100;
/// The largest page size of an audit query.
pub const AUDIT_PAGE_MAX: u32 = 1000;

/// Which of the caller's organisation's audit events to return. Unset fields
/// don't filter; the page is [`AUDIT_PAGE_DEFAULT`] events unless `limit`
/// says otherwise, and never more than [`AUDIT_PAGE_MAX`].
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact action.
    pub action: Option<String>,
    /// Exact actor uuid.
    pub actor_id: Option<String>,
    /// Exact resource id.
    pub resource_id: Option<String>,
    /// Not before.
    pub from: Option<OffsetDateTime>,
    /// Not after.
    pub to: Option<OffsetDateTime>,
    /// Page size (clamped to 1..=[`AUDIT_PAGE_MAX`]).
    pub limit: Option<u32>,
    /// Events to skip.
    pub offset: Option<u32>,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Event id.
    pub id: String,
    /// Position in its organisation's chain.
    pub seq: u64,
    /// Organisation.
    pub org_id: String,
    /// `user`, `agent`, `anonymous`, …
    pub actor_type: String,
    /// The actor's id.
    pub actor_id: String,
    /// What happened.
    pub action: String,
    /// What it happened to.
    pub resource_type: String,
    /// Its id.
    pub resource_id: String,
    /// Details (never a secret value).
    pub details: Value,
    /// The client's address, when known.
    pub ip_address: Option<String>,
    /// When.
    pub created_at: OffsetDateTime,
    /// The previous event of the chain.
    pub prev_event_id: Option<String>,
    /// The chain hash (hex).
    pub integrity_hash: String,
}

impl From<ChainedEvent> for AuditEvent {
    fn from(e: ChainedEvent) -> Self {
        AuditEvent {
            id: e.id,
            seq: e.seq,
            org_id: e.org_id,
            actor_type: e.actor_type,
            actor_id: e.actor_id,
            action: e.action,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            details: e.details,
            ip_address: e.ip_address,
            created_at: from_micros(e.created_at_us),
            prev_event_id: e.prev_event_id,
            integrity_hash: e.integrity_hash,
        }
    }
}

/// A page of audit events, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    /// The events.
    pub events: Vec<AuditEvent>,
    /// How many events match the filter in all (the page may hold fewer).
    pub total: u64,
}

/// A key provider's state. The detail of a problem is for the log: it may
/// name keys or endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderHealth {
    /// Serving.
    Healthy,
    /// Serving, with a problem worth attention.
    Degraded(String),
    /// Not serving.
    Unavailable(String),
}

impl From<strongroom_kms::ProviderHealth> for ProviderHealth {
    fn from(h: strongroom_kms::ProviderHealth) -> Self {
        match h {
            strongroom_kms::ProviderHealth::Healthy => ProviderHealth::Healthy,
            strongroom_kms::ProviderHealth::Degraded(d) => ProviderHealth::Degraded(d),
            strongroom_kms::ProviderHealth::Unavailable(d) => ProviderHealth::Unavailable(d),
        }
    }
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

impl Health {
    /// Everything serves: the database answers and the provider is healthy.
    pub fn is_healthy(&self) -> bool {
        self.store_ok && self.provider == ProviderHealth::Healthy
    }
}

/// The Ed25519 key that verifies every token the engine issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtPublicKey {
    /// Key id (the JWT header's `kid`).
    pub kid: String,
    /// The raw 32-byte Ed25519 public key.
    pub ed25519: [u8; 32],
}
