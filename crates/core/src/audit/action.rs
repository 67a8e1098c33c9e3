//! What an audit event records: the catalogue of actions ([`AuditAction`])
//! and, for a refused organisation operation, what the caller attempted
//! ([`Attempt`]).
//!
//! The names are part of the stored, hashed chain (`action` is a field of
//! the canonical encoding) and of `docs/audit.md`'s table, which a test
//! checks against [`AuditAction::ALL`]: a name here never changes.

use std::fmt;

/// Declares [`AuditAction`] with its stored names, and `ALL` from the same
/// list so nothing can be left out of it.
macro_rules! audit_actions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// An audited action: the `action` field of every event.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($(#[$doc])* $variant,)*
        }

        impl AuditAction {
            /// Every action, in catalogue order.
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant),*];

            /// The stored name, e.g. `secret.read`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $name,)*
                }
            }
        }
    };
}

audit_actions! {
    /// A user signed up (the first event of a new organisation's chain).
    AuthSignup = "auth.signup",
    /// A login with a password, an API key or an agent key.
    AuthSuccess = "auth.success",
    /// A login or credential was refused.
    AuthFailure = "auth.failure",
    /// A token was revoked.
    AuthTokenRevoke = "auth.token_revoke",
    /// A personal API key was made.
    ApiKeyCreate = "api_key.create",
    /// An API key was revoked.
    ApiKeyRevoke = "api_key.revoke",
    /// Someone was invited.
    MemberInvite = "member.invite",
    /// A member's role changed.
    MemberRoleChange = "member.role_change",
    /// A member was removed.
    MemberRemove = "member.remove",
    /// A vault was created.
    VaultCreate = "vault.create",
    /// A vault was deleted.
    VaultDelete = "vault.delete",
    /// A vault's KEK got a new version.
    VaultKekRotate = "vault.kek_rotate",
    /// A batch of DEKs moved to the newest KEK version.
    VaultKekRewrap = "vault.kek_rewrap",
    /// A vault's KEK moved to another key provider.
    VaultKekMigrate = "vault.kek_migrate",
    /// A policy was created.
    PolicyCreate = "policy.create",
    /// A policy was changed.
    PolicyUpdate = "policy.update",
    /// A policy was deleted.
    PolicyDelete = "policy.delete",
    /// An agent was registered.
    AgentRegister = "agent.register",
    /// An agent was changed.
    AgentUpdate = "agent.update",
    /// A change deactivated an active agent.
    AgentDeactivate = "agent.deactivate",
    /// An agent's key was replaced.
    AgentRotateKey = "agent.rotate_key",
    /// A secret version was written.
    SecretWrite = "secret.write",
    /// The server generated a new version.
    SecretRotate = "secret.rotate",
    /// A value was read.
    SecretRead = "secret.read",
    /// A version was disabled.
    SecretVersionDisable = "secret.version_disable",
    /// A secret was deleted.
    SecretDelete = "secret.delete",
    /// A stored version failed its integrity check.
    SecretIntegrityFailure = "secret.integrity_failure",
    /// An authenticated caller was refused.
    AccessDenied = "access.denied",
}

impl AuditAction {
    /// The action stored under `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What a caller was refused at the organisation level: the `attempted`
/// field of an `access.denied` event (a vault or secret refusal names an
/// [`crate::authz::Action`] instead).
///
/// A refused change is named by the action it would have recorded; an
/// operation that records nothing when allowed (a read) has its own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attempt {
    /// A change that, allowed, would have been recorded as this action.
    Change(AuditAction),
    /// Listing the organisation's members.
    MemberList,
    /// Reading another agent's record.
    AgentRead,
    /// Learning the id of the agent-keys vault.
    VaultAgentKeys,
    /// Reading the organisation's audit log.
    AuditRead,
    /// Verifying the organisation's audit chain.
    AuditVerify,
}

impl Attempt {
    /// The attempts that are not changes, for the catalogue check.
    pub const READS: &'static [Attempt] = &[
        Attempt::MemberList,
        Attempt::AgentRead,
        Attempt::VaultAgentKeys,
        Attempt::AuditRead,
        Attempt::AuditVerify,
    ];

    /// The stored name, e.g. `member.invite` or `audit.read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Attempt::Change(a) => a.as_str(),
            Attempt::MemberList => "member.list",
            Attempt::AgentRead => "agent.read",
            Attempt::VaultAgentKeys => "vault.agent_keys",
            Attempt::AuditRead => "audit.read",
            Attempt::AuditVerify => "audit.verify",
        }
    }

    /// The attempt stored under `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::READS
            .iter()
            .copied()
            .find(|a| a.as_str() == name)
            .or_else(|| AuditAction::parse(name).map(Attempt::Change))
    }
}

impl From<AuditAction> for Attempt {
    fn from(a: AuditAction) -> Self {
        Attempt::Change(a)
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Attempt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for a in AuditAction::ALL {
            assert!(seen.insert(a.as_str()), "{a} twice");
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
        }
        for a in Attempt::READS {
            assert!(seen.insert(a.as_str()), "{a} is also an action");
            assert_eq!(Attempt::parse(a.as_str()), Some(*a));
        }
        assert_eq!(
            Attempt::parse("member.invite"),
            Some(Attempt::Change(AuditAction::MemberInvite))
        );
        assert_eq!(AuditAction::parse("secret.reads"), None);
    }

    #[test]
    fn names_serialize_as_their_stored_strings() {
        assert_eq!(
            serde_json::to_value(AuditAction::SecretVersionDisable).unwrap(),
            "secret.version_disable"
        );
        assert_eq!(
            serde_json::to_value(Attempt::VaultAgentKeys).unwrap(),
            "vault.agent_keys"
        );
    }
}
