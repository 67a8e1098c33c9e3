//! Row types exchanged with a [`crate::Store`].

use serde_json::Value;
pub use strongroom_core::authz::VaultKind;
use strongroom_core::{ApiKeyId, OrgId, Role, SecretId, SecretPath, Subject, UserId, VaultId};
use time::OffsetDateTime;

/// An organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgRow {
    /// Id.
    pub id: OrgId,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A human user. `password_hash` is an Argon2id PHC string.
#[derive(Clone, PartialEq)]
pub struct UserRow {
    /// Id.
    pub id: UserId,
    /// Organisation.
    pub org_id: OrgId,
    /// Lower-cased email.
    pub email: String,
    /// Optional display name.
    pub display_name: Option<String>,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Role in the organisation.
    pub role: Role,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A vault.
#[derive(Debug, Clone, PartialEq)]
pub struct VaultRow {
    /// Id.
    pub id: VaultId,
    /// Organisation.
    pub org_id: OrgId,
    /// Name.
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// The key provider's handle on the vault's KEK (new versions are wrapped under it).
    pub kek_ref: KekRef,
    /// The KEK's newest version.
    pub kek_version: u32,
    /// The key provider holding the KEK (`file`, `pkcs11`, …).
    pub kek_provider: String,
    /// During a key migration, the target KEK (in the target provider).
    pub pending_kek_ref: Option<KekRef>,
    /// Creator; `None` for a vault the server made for itself (stored as `system`).
    pub created_by: Option<Subject>,
    /// What the vault is for; at most one [`VaultKind::AgentKeys`] per organisation.
    pub kind: VaultKind,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// The head of a path's version chain.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretHead {
    /// The secret's id (stable across versions).
    pub id: SecretId,
    /// The newest version number.
    pub latest_version: u32,
    /// Whether the secret is soft-deleted: its latest version (and every
    /// earlier one) was deleted and nothing was written since.
    pub deleted: bool,
}

/// A version to append.
#[derive(Clone)]
pub struct NewSecretVersion {
    /// The secret's id: existing, or new when `expected_latest` is 0.
    pub secret_id: SecretId,
    /// Vault.
    pub vault_id: VaultId,
    /// Path.
    pub path: SecretPath,
    /// The version number (`expected_latest + 1`).
    pub version: u32,
    /// The head this version must follow.
    pub expected_latest: u32,
    /// Secret type.
    pub secret_type: String,
    /// Client metadata (JSON object).
    pub metadata: Value,
    /// Expiry.
    pub expires_at: Option<OffsetDateTime>,
    /// Maximum reads of this version.
    pub max_access_count: Option<i64>,
    /// The envelope.
    pub envelope: Envelope,
    /// Author.
    pub created_by: Subject,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// What is stored of a sealed value: enough to decrypt with the provider's
/// help. The type is the crypto crate's, shared with the engine's envelope
/// service; the store maps its columns and never looks inside.
pub use strongroom_crypto::{KekRef, StoredEnvelope};

/// The stored envelope under the name the store's rows used first.
pub type Envelope = StoredEnvelope;

/// A stored version, with its envelope.
#[derive(Debug, Clone)]
pub struct VersionRow {
    /// Metadata.
    pub meta: SecretMeta,
    /// Whether this version is deleted: it existed when its secret was
    /// deleted. A write after the deletion adds a live version; it never
    /// brings a deleted one back.
    pub deleted: bool,
    /// Reads so far.
    pub access_count: i64,
    /// Maximum reads.
    pub max_access_count: Option<i64>,
    /// The envelope.
    pub envelope: Envelope,
}

/// A version's metadata: what listings return. No value.
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

/// The head of one organisation's audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    /// Organisation (the nil UUID for the system chain).
    pub org_id: String,
    /// Sequence number of the newest event.
    pub seq: u64,
    /// Its id.
    pub event_id: String,
    /// Its hash (hex).
    pub hash: String,
}

/// A filter over one organisation's audit events.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Organisation.
    pub org_id: String,
    /// Exact action.
    pub action: Option<String>,
    /// Exact actor uuid.
    pub actor_id: Option<String>,
    /// Exact resource id.
    pub resource_id: Option<String>,
    /// Not before (microseconds).
    pub from_us: Option<i64>,
    /// Not after (microseconds).
    pub to_us: Option<i64>,
    /// Page size.
    pub limit: u32,
    /// Page offset.
    pub offset: u32,
}

/// An agent.
#[derive(Clone, PartialEq)]
pub struct AgentRow {
    /// Id.
    pub id: strongroom_core::AgentId,
    /// Organisation.
    pub org_id: OrgId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `api_key` (the only method offered).
    pub auth_method: String,
    /// Scopes (path globs are ceilings; `x:y` capability strings are kept but not enforced).
    pub scopes: Vec<String>,
    /// Vault binding: empty means any vault of the org (still subject to policies).
    pub vault_ids: Vec<VaultId>,
    /// Token lifetime; default 3600 s.
    pub token_ttl_seconds: Option<i64>,
    /// The agent stops working after this.
    pub expires_at: Option<OffsetDateTime>,
    /// The key stops working after this.
    pub api_key_expires_at: Option<OffsetDateTime>,
    /// Deactivated agents can't get tokens.
    pub is_active: bool,
    /// Lookup prefix of the current key.
    pub key_prefix: String,
    /// HMAC-SHA256(pepper, key).
    pub key_hash: Vec<u8>,
    /// Base64 Ed25519 public key.
    pub ssh_public_key: Option<String>,
    /// Base64 uncompressed P-256 public key.
    pub ecdh_public_key: Option<String>,
    /// Tokens carry the generation they were issued under; rotating the key
    /// or deactivating the agent moves it on, ending every earlier token.
    /// Never decreases.
    pub token_generation: u32,
    /// Echoed 1claw fields that Strongroom stores but does not act on.
    pub extra: Value,
    /// Creator.
    pub created_by: Subject,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl std::fmt::Debug for AgentRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRow")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .finish_non_exhaustive()
    }
}

/// A personal API key.
#[derive(Clone, PartialEq)]
pub struct ApiKeyRow {
    /// Id.
    pub id: ApiKeyId,
    /// Owner.
    pub user_id: UserId,
    /// Organisation.
    pub org_id: OrgId,
    /// Name.
    pub name: String,
    /// Lookup prefix.
    pub key_prefix: String,
    /// HMAC-SHA256(pepper, key).
    pub key_hash: Vec<u8>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Revoked keys are inactive.
    pub is_active: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Expiry.
    pub expires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for ApiKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRow")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// A stored policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRow {
    /// The rule.
    pub policy: strongroom_core::policy::Policy,
    /// Echoed 1claw fields (attribute_conditions, tx_conditions, …) that are stored, not evaluated.
    pub extra: Value,
    /// Author.
    pub created_by: Subject,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A pending invitation: one per (organisation, email). It is accepted only
/// with its own token, of which the store keeps only the HMAC.
#[derive(Debug, Clone, PartialEq)]
pub struct InvitationRow {
    /// Organisation to join.
    pub org_id: OrgId,
    /// Lower-cased email.
    pub email: String,
    /// Role on joining.
    pub role: Role,
    /// Who invited.
    pub invited_by: UserId,
    /// HMAC-SHA256(pepper, token).
    pub token_hash: Vec<u8>,
    /// When.
    pub created_at: OffsetDateTime,
    /// From when it can no longer be accepted.
    pub expires_at: OffsetDateTime,
}

/// What a request's principal looks like now, in one read: whether it still
/// exists and is active, its current role, and whether its token was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrincipalStatus {
    /// The user or agent exists in the org and is active.
    pub active: bool,
    /// A user's current role.
    pub role: Option<Role>,
    /// The token id is on the deny list.
    pub revoked: bool,
    /// An agent's current token generation (see [`AgentRow::token_generation`]).
    pub token_generation: u32,
    /// An agent with the Intents API enabled (`extra.intents_api_enabled`).
    pub intents_api: bool,
}

/// A stored wrapped DEK with the context it is bound to: what key rotation
/// (rewrap) and migration work on. Never the ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapRow {
    /// The secret.
    pub secret_id: SecretId,
    /// The version.
    pub version: u32,
    /// Its vault.
    pub vault_id: VaultId,
    /// Its path.
    pub path: SecretPath,
    /// The KEK that wrapped it.
    pub kek_ref: KekRef,
    /// That KEK's version.
    pub kek_version: u32,
    /// The wrapped DEK.
    pub wrapped_dek: Vec<u8>,
}

/// A wrapped DEK to replace: the row as read, and the same DEK wrapped anew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapChange {
    /// The row as read (the compare-and-set is on its KEK and wrapped DEK).
    pub old: WrapRow,
    /// The KEK that wrapped it anew.
    pub kek_ref: KekRef,
    /// That KEK's version.
    pub kek_version: u32,
    /// The new wrapped DEK.
    pub wrapped_dek: Vec<u8>,
}
