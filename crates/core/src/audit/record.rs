//! An audit record before it is stored: who did what to which resource,
//! with structured details.

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{OrgId, Subject};

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
    /// A new record stamped now.
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
