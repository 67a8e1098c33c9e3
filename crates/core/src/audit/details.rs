//! Typed details for the shapes several events share. Each serializes to the
//! JSON the events have always carried; the chain hashes the canonical form
//! ([`super::canonical_json`], keys sorted), so field order here is free but
//! names, presence and `null`s are not.

use serde::Serialize;

use super::Attempt;
use crate::authz::{Action, PolicyDecision};
use crate::{PolicyId, SecretPath, VaultId};

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why access was granted: `decision` and the granting `policy_id` (or `null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// `vault_creator`, `org_owner`, `org_admin`, `policy` or `system`.
    pub decision: &'static str,
    /// The granting policy.
    pub policy_id: Option<PolicyId>,
}

impl From<&PolicyDecision> for Grant {
    fn from(d: &PolicyDecision) -> Self {
        Grant {
            decision: d.as_str(),
            policy_id: d.policy_id(),
        }
    }
}

/// The context of a `secret.*` event: `vault_id`, `path`, and when known the
/// `version` and the [`Grant`].
#[derive(Debug, Clone, Serialize)]
pub struct SecretEvent<'a> {
    /// The vault.
    pub vault_id: VaultId,
    /// The secret's path.
    pub path: &'a SecretPath,
    /// The version (absent for a whole-secret event such as a deletion).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// What granted it (absent where nothing was granted, e.g. an integrity failure).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
}

/// The outcome of a refused attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Refused.
    Denied,
}

/// An `access.denied` of a vault or secret operation, decided by
/// authorization: `vault_id`, `path` (or `null`), `attempted`, `outcome`,
/// `rule`, `policy_id` (the deny policy, or `null`).
#[derive(Debug, Clone, Serialize)]
pub struct VaultRefusal<'a> {
    /// The vault.
    pub vault_id: VaultId,
    /// The secret's path, for a secret operation.
    pub path: Option<&'a SecretPath>,
    /// What the caller tried.
    pub attempted: Action,
    /// Always [`Outcome::Denied`].
    pub outcome: Outcome,
    /// The rule that refused.
    pub rule: &'a str,
    /// The deny policy that refused, if one did.
    pub policy_id: Option<PolicyId>,
}

/// An `access.denied` of a read the policy allowed but the secret's state
/// (or the caller's kind) refused: the read's [`SecretEvent`] plus
/// `attempted`, `outcome` and `rule`.
#[derive(Debug, Clone, Serialize)]
pub struct ReadRefusal<'a> {
    /// The read's context.
    #[serde(flatten)]
    pub secret: SecretEvent<'a>,
    /// Always [`Action::Read`].
    pub attempted: Action,
    /// Always [`Outcome::Denied`].
    pub outcome: Outcome,
    /// The rule that refused (`deleted`, `expired`, `intents_api`…).
    pub rule: &'a str,
}

/// An `access.denied` of an organisation operation: `attempted`, `outcome`,
/// `rule` and the refusal's fixed message as `reason`.
#[derive(Debug, Clone, Serialize)]
pub struct OrgRefusal<'a> {
    /// What the caller tried.
    pub attempted: Attempt,
    /// Always [`Outcome::Denied`].
    pub outcome: Outcome,
    /// The rule that refused (`role`, `scope`, `self_grant`…).
    pub rule: &'a str,
    /// The refusal's message.
    pub reason: &'a str,
}

/// An `auth.success` or per-attempt `auth.failure`: the `method`, and for a
/// failure the `reason`.
#[derive(Debug, Clone, Serialize)]
pub struct AuthDetails<'a> {
    /// `password`, `bearer`, `api_key` or `agent_key`.
    pub method: &'a str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    //! Each shape against the `json!` the engine wrote before it was typed,
    //! compared as canonical text (what is hashed and stored).
    use serde_json::json;

    use super::*;
    use crate::audit::{AuditAction, canonical_json};

    fn same(typed: impl Serialize, before: serde_json::Value) {
        let typed = serde_json::to_value(typed).unwrap();
        assert_eq!(canonical_json(&typed), canonical_json(&before));
    }

    #[test]
    fn typed_details_match_the_json_they_replace() {
        let v = VaultId::new();
        let p = SecretPath::parse("db/password").unwrap();
        let pol = PolicyId::new();
        for d in [PolicyDecision::Policy(pol), PolicyDecision::OrgOwner] {
            let pid = d.policy_id().map(|i| i.to_string());
            same(
                SecretEvent {
                    vault_id: v,
                    path: &p,
                    version: Some(3),
                    grant: Some((&d).into()),
                },
                json!({"vault_id": v.to_string(), "path": p.as_str(), "version": 3, "decision": d.as_str(), "policy_id": pid}),
            );
            same(
                SecretEvent {
                    vault_id: v,
                    path: &p,
                    version: None,
                    grant: Some((&d).into()),
                },
                json!({"vault_id": v.to_string(), "path": p.as_str(), "decision": d.as_str(), "policy_id": pid}),
            );
            let mut read = json!({"vault_id": v.to_string(), "path": p.as_str(), "version": 3, "decision": d.as_str(), "policy_id": pid});
            read["attempted"] = json!("read");
            read["outcome"] = json!("denied");
            read["rule"] = json!("expired");
            same(
                ReadRefusal {
                    secret: SecretEvent {
                        vault_id: v,
                        path: &p,
                        version: Some(3),
                        grant: Some((&d).into()),
                    },
                    attempted: Action::Read,
                    outcome: Outcome::Denied,
                    rule: "expired",
                },
                read,
            );
        }
        same(
            SecretEvent {
                vault_id: v,
                path: &p,
                version: Some(1),
                grant: None,
            },
            json!({"vault_id": v.to_string(), "path": p.as_str(), "version": 1}),
        );
        for (path, policy_id) in [(Some(&p), Some(pol)), (None, None)] {
            same(
                VaultRefusal {
                    vault_id: v,
                    path,
                    attempted: Action::ManageKeys,
                    outcome: Outcome::Denied,
                    rule: "deny_policy",
                    policy_id,
                },
                json!({
                    "vault_id": v.to_string(),
                    "path": path.map(|p| p.as_str()),
                    "attempted": "manage_keys",
                    "outcome": "denied",
                    "rule": "deny_policy",
                    "policy_id": policy_id.map(|id| id.to_string()),
                }),
            );
        }
        same(
            OrgRefusal {
                attempted: AuditAction::MemberInvite.into(),
                outcome: Outcome::Denied,
                rule: "role",
                reason: "no",
            },
            json!({"attempted": "member.invite", "outcome": "denied", "rule": "role", "reason": "no"}),
        );
        same(
            OrgRefusal {
                attempted: Attempt::AuditVerify,
                outcome: Outcome::Denied,
                rule: "scope",
                reason: "x",
            },
            json!({"attempted": "audit.verify", "outcome": "denied", "rule": "scope", "reason": "x"}),
        );
        same(
            AuthDetails {
                method: "password",
                reason: None,
            },
            json!({"method": "password"}),
        );
        same(
            AuthDetails {
                method: "agent_key",
                reason: Some("expired"),
            },
            json!({"method": "agent_key", "reason": "expired"}),
        );
    }
}
