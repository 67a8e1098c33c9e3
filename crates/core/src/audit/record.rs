//! An audit record before it is stored: who did what to which resource,
//! with structured details.
//!
//! Use cases build records from typed parts: [`AuditRecord::by`] for an
//! authenticated caller (organisation, actor and address come from the
//! [`Principal`]), [`AuditRecord::authenticated`] for a subject proving who
//! it is, [`AuditRecord::anonymous`] and [`AuditRecord::system`] for the
//! rest. The record itself holds the stored text of each field, which is
//! what the store writes and hashes.

use std::fmt;
use std::net::IpAddr;

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::AuditAction;
use crate::{AgentId, ApiKeyId, OrgId, PolicyId, Principal, SecretId, Subject, UserId, VaultId};

/// The actor of an audited action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An authenticated user or agent.
    Subject(Subject),
    /// Nobody authenticated (a failed login, say).
    Anonymous,
}

impl Actor {
    /// `user`, `agent` or `anonymous`.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Subject(s) => s.kind(),
            Actor::Anonymous => "anonymous",
        }
    }
    /// The actor's uuid, or an empty string.
    pub fn id_string(&self) -> String {
        match self {
            Actor::Subject(s) => s.id_string(),
            Actor::Anonymous => String::new(),
        }
    }
}

/// One audit event, before it is stored.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Event id.
    pub id: Uuid,
    /// The organisation it belongs to.
    pub org_id: OrgId,
    /// Who did it.
    pub actor: Actor,
    /// What, e.g. `secret.read`.
    pub action: String,
    /// The kind of object, e.g. `secret`.
    pub resource_type: String,
    /// The object's id (or path).
    pub resource_id: String,
    /// Structured context: vault, path, version, decision. Never a value.
    pub details: Value,
    /// The client's address.
    pub ip_address: Option<String>,
    /// When.
    pub created_at: OffsetDateTime,
}

impl AuditRecord {
    /// What `who` did to `resource`, in the caller's organisation, from the
    /// caller's address; details `{}` until [`AuditRecord::with_details`].
    pub fn by(who: &Principal, action: AuditAction, resource: AuditResource) -> Self {
        Self::authenticated(who.org_id, who.subject, who.ip, action, resource)
    }

    /// What `subject` of `org` did while proving who it is (signing up,
    /// logging in): it holds no [`Principal`] yet.
    pub fn authenticated(
        org: OrgId,
        subject: Subject,
        ip: Option<IpAddr>,
        action: AuditAction,
        resource: AuditResource,
    ) -> Self {
        Self::typed(
            org,
            Actor::Subject(subject),
            action,
            resource,
            ip.map(|i| i.to_string()),
        )
    }

    /// An event of `org` with nobody authenticated (a refused login naming a
    /// known user, an operator's command).
    pub fn anonymous(
        org: OrgId,
        action: AuditAction,
        resource: AuditResource,
        ip: Option<IpAddr>,
    ) -> Self {
        Self::typed(
            org,
            Actor::Anonymous,
            action,
            resource,
            ip.map(|i| i.to_string()),
        )
    }

    /// An event of the system chain ([`SYSTEM_ORG`]), with nobody
    /// authenticated; `client` is the client's address or network as text.
    pub fn system(action: AuditAction, resource: AuditResource, client: Option<String>) -> Self {
        Self::typed(SYSTEM_ORG, Actor::Anonymous, action, resource, client)
    }

    fn typed(
        org: OrgId,
        actor: Actor,
        action: AuditAction,
        resource: AuditResource,
        ip: Option<String>,
    ) -> Self {
        Self::new(
            org,
            actor,
            action.as_str(),
            resource.kind().as_str(),
            resource.id_string(),
            Value::Object(Default::default()),
            ip,
        )
    }

    /// The same event filed in `org`'s chain instead of the caller's: a
    /// refusal on another organisation's vault is told to that organisation.
    pub fn in_org(mut self, org: OrgId) -> Self {
        self.org_id = org;
        self
    }

    /// The event's details: a typed detail ([`super::details`]) or a
    /// `serde_json::json!` value for a shape used once.
    pub fn with_details(mut self, details: impl serde::Serialize) -> Self {
        // Details are plain structs and JSON values (string keys only), which
        // always serialize.
        self.details = serde_json::to_value(details).expect("audit details serialize to JSON");
        self
    }

    /// A record from its stored text, stamped now, with no check against
    /// the catalogue: for stores and their tests. Use cases use
    /// [`AuditRecord::by`] and its siblings.
    pub fn new(
        org_id: OrgId,
        actor: Actor,
        action: &str,
        resource_type: &str,
        resource_id: impl Into<String>,
        details: Value,
        ip_address: Option<String>,
    ) -> Self {
        AuditRecord {
            id: Uuid::now_v7(),
            org_id,
            actor,
            action: action.to_owned(),
            resource_type: resource_type.to_owned(),
            resource_id: resource_id.into(),
            details,
            ip_address,
            created_at: crate::time_util::now(),
        }
    }
}

/// The organisation id under which events with no organisation are chained
/// (e.g. a failed login naming an unknown email): the nil UUID.
pub const SYSTEM_ORG: OrgId = OrgId(Uuid::nil());

/// The kind of object an event is about: its `resource_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// A user.
    User,
    /// A personal API key.
    ApiKey,
    /// An agent.
    Agent,
    /// A token.
    Token,
    /// An invitation.
    Invitation,
    /// A vault.
    Vault,
    /// A secret.
    Secret,
    /// A vault policy.
    Policy,
    /// The organisation.
    Org,
}

impl ResourceKind {
    /// The stored name, e.g. `api_key`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::User => "user",
            ResourceKind::ApiKey => "api_key",
            ResourceKind::Agent => "agent",
            ResourceKind::Token => "token",
            ResourceKind::Invitation => "invitation",
            ResourceKind::Vault => "vault",
            ResourceKind::Secret => "secret",
            ResourceKind::Policy => "policy",
            ResourceKind::Org => "org",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The object an event is about: its `resource_type` and `resource_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditResource {
    /// A user.
    User(UserId),
    /// A personal API key.
    ApiKey(ApiKeyId),
    /// An agent.
    Agent(AgentId),
    /// A token, by its `jti`.
    Token(String),
    /// An invitation, by the invited email (never its token).
    Invitation(String),
    /// A vault.
    Vault(VaultId),
    /// A secret.
    Secret(SecretId),
    /// A secret of a vault, named by the vault's id: a refusal decided
    /// before the secret was looked up (`secret` / the vault id).
    SecretOf(VaultId),
    /// A vault policy.
    Policy(PolicyId),
    /// The organisation.
    Org(OrgId),
    /// An object of this kind that the event can't name (an unknown user,
    /// an invalid token): resource id `""`.
    Unnamed(ResourceKind),
}

impl AuditResource {
    /// The kind: the stored `resource_type`.
    pub fn kind(&self) -> ResourceKind {
        match self {
            AuditResource::User(_) => ResourceKind::User,
            AuditResource::ApiKey(_) => ResourceKind::ApiKey,
            AuditResource::Agent(_) => ResourceKind::Agent,
            AuditResource::Token(_) => ResourceKind::Token,
            AuditResource::Invitation(_) => ResourceKind::Invitation,
            AuditResource::Vault(_) => ResourceKind::Vault,
            AuditResource::Secret(_) | AuditResource::SecretOf(_) => ResourceKind::Secret,
            AuditResource::Policy(_) => ResourceKind::Policy,
            AuditResource::Org(_) => ResourceKind::Org,
            AuditResource::Unnamed(k) => *k,
        }
    }

    /// The stored `resource_id`.
    pub fn id_string(&self) -> String {
        match self {
            AuditResource::User(id) => id.to_string(),
            AuditResource::ApiKey(id) => id.to_string(),
            AuditResource::Agent(id) => id.to_string(),
            AuditResource::Token(s) | AuditResource::Invitation(s) => s.clone(),
            AuditResource::Vault(id) | AuditResource::SecretOf(id) => id.to_string(),
            AuditResource::Secret(id) => id.to_string(),
            AuditResource::Policy(id) => id.to_string(),
            AuditResource::Org(id) => id.to_string(),
            AuditResource::Unnamed(_) => String::new(),
        }
    }
}
