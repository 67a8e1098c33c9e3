//! Who is calling: an authenticated principal, as established by a verified token.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{AgentId, Error, OrgId, UserId, VaultId};

/// A user's role in their organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Full control of the organisation.
    Owner,
    /// Manages members, vaults and policies.
    Admin,
    /// Uses the vaults they create or are granted.
    Member,
}

impl Role {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            _ => Err(Error::invalid("role must be owner, admin or member")),
        }
    }
}

/// The subject of a token: `user:<uuid>` or `agent:<uuid>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A human.
    User(UserId),
    /// An agent.
    Agent(AgentId),
}

impl Subject {
    /// `"user"` or `"agent"`, as 1claw's `actor_type` and `principal_type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::User(_) => "user",
            Subject::Agent(_) => "agent",
        }
    }
    /// The bare uuid, as a string.
    pub fn id_string(&self) -> String {
        match self {
            Subject::User(id) => id.to_string(),
            Subject::Agent(id) => id.to_string(),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(id) => write!(f, "user:{id}"),
            Subject::Agent(id) => write!(f, "agent:{id}"),
        }
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Subject {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Unauthenticated("malformed token subject".into());
        let (kind, id) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "user" => Ok(Subject::User(id.parse().map_err(|_| bad())?)),
            "agent" => Ok(Subject::Agent(id.parse().map_err(|_| bad())?)),
            _ => Err(bad()),
        }
    }
}

/// An authenticated caller, built only from a verified token.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Who.
    pub subject: Subject,
    /// Their organisation.
    pub org_id: OrgId,
    /// The role of a user in the org (agents have none).
    pub role: Option<Role>,
    /// Vault binding carried by the token: empty means unbound.
    pub vault_ids: Vec<VaultId>,
    /// Scopes carried by the token.
    pub scopes: Vec<String>,
    /// The token's id, for revocation.
    pub token_id: Option<String>,
    /// The token's expiry (seconds since the epoch), for revocation.
    pub token_exp: Option<i64>,
    /// The client's address, for policy conditions and audit.
    pub ip: Option<std::net::IpAddr>,
    /// An agent with 1claw's Intents API enabled: the server signs with its
    /// keys, so it may not read `private_key` or `ssh_key` secrets itself.
    pub intents_api: bool,
}

impl Principal {
    /// True for the organisation's owners.
    pub fn is_org_owner(&self) -> bool {
        matches!(self.role, Some(Role::Owner))
    }

    /// True when the credential carries a path ceiling (path-like scopes that
    /// don't open everything): such a credential acts only within it, so it
    /// may not create principals, change policies, manage members, delete
    /// vaults or read the organisation's audit log, all of which reach beyond
    /// its paths. See [`crate::policy::scope_ceiling_open`].
    pub fn is_restricted(&self) -> bool {
        !crate::policy::scope_ceiling_open(&self.scopes)
    }
}
