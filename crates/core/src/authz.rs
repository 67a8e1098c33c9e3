//! The authorization decision: one pure function that every use case asks
//! before touching a vault.
//!
//! Order, for a request on vault `V` (and path `P`, when there is one):
//!
//! 1. **Organisation**: a vault of another organisation is "not found", so ids
//!    of other tenants can't be probed.
//! 2. **Token vault binding**: a token carrying `vault_ids` reaches only those vaults.
//! 3. **Token scope ceiling**: on a path, the path must fall under one of the
//!    token's path-like scopes ([`crate::policy::scope_allows`]); a credential
//!    with such a ceiling may not delete the vault, manage its policies or
//!    rotate its keys at all, since those reach every path.
//! 4. **Vault policies** naming the caller ([`crate::policy::evaluate`]): an
//!    applicable `deny` refuses — even the vault's creator or an org owner, so an
//!    explicit deny always means what it says; an applicable `allow` grants.
//! 5. **Bypass**: with no applicable policy, the vault's creator and the
//!    organisation's owners are allowed; everyone else is refused.
//!
//! A listing shows the paths a read would be allowed: [`ReadFilter`] gives
//! [`authorize`]'s answer for [`Action::Read`] on each path, with everything
//! that doesn't depend on the path decided once per listing.
//!
//! Deleting a vault is for its creator and org owners only; managing its
//! policies for its creator and org owners and admins. Policies grant neither.
//!
//! **The agent-keys vault** ([`VaultKind::AgentKeys`]) holds every agent's
//! private identity keys. It belongs to the server, not to whoever caused it to
//! exist, so it has no creator and no bypass. Owners and admins may read it
//! and manage its policies; an agent may read only `agents/<its id>/…`, and
//! only where a policy grants it; nobody else reads it, whatever a policy says.
//! Nobody writes, deletes or rotates its secrets through the API, and nobody
//! deletes the vault; owners may rotate its KEK.

mod listing;

use std::net::IpAddr;

use time::OffsetDateTime;

use crate::policy::{self, Permission, Policy, PolicyOutcome};
use crate::{Error, OrgId, PolicyId, Principal, Role, SecretPath, Subject, VaultId};

pub use listing::ReadFilter;

/// What the caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See the vault and list what it holds.
    ViewVault,
    /// Delete the vault.
    DeleteVault,
    /// Create, change or delete the vault's policies.
    ManagePolicies,
    /// Rotate the vault's KEK or rewrap its DEKs.
    ManageKeys,
    /// Read a secret value or its versions.
    Read,
    /// Create a version, or disable one.
    Write,
    /// Delete a secret.
    Delete,
    /// Have the server generate a new version.
    Rotate,
}

impl Action {
    /// The name used in audit records.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::ViewVault => "view_vault",
            Action::DeleteVault => "delete_vault",
            Action::ManagePolicies => "manage_policies",
            Action::ManageKeys => "manage_keys",
            Action::Read => "read",
            Action::Write => "write",
            Action::Delete => "delete",
            Action::Rotate => "rotate",
        }
    }

    fn permission(&self) -> Option<Permission> {
        match self {
            Action::ViewVault | Action::Read => Some(Permission::Read),
            Action::Write => Some(Permission::Write),
            Action::Delete => Some(Permission::Delete),
            Action::Rotate => Some(Permission::Rotate),
            Action::DeleteVault | Action::ManagePolicies | Action::ManageKeys => None,
        }
    }
}

/// What a vault is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VaultKind {
    /// A vault people and agents create and use.
    #[default]
    Standard,
    /// The organisation's vault of agent identity keys, owned by the server
    /// (see the [module documentation](self)).
    AgentKeys,
}

impl VaultKind {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            VaultKind::Standard => "standard",
            VaultKind::AgentKeys => "agent_keys",
        }
    }

    /// The kind from its stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "standard" => Some(VaultKind::Standard),
            "agent_keys" => Some(VaultKind::AgentKeys),
            _ => None,
        }
    }
}

/// The facts about a vault that authorization needs.
#[derive(Debug, Clone, Copy)]
pub struct VaultFacts {
    /// The vault.
    pub id: VaultId,
    /// The vault's organisation.
    pub org_id: OrgId,
    /// Who created it; `None` for a vault the server created for itself.
    pub created_by: Option<Subject>,
    /// What the vault is for.
    pub kind: VaultKind,
}

/// Why access was granted: recorded in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyDecision {
    /// The caller created the vault.
    VaultCreator,
    /// The caller owns the organisation.
    OrgOwner,
    /// The caller administers the organisation (policy management, and
    /// reading the agent-keys vault).
    OrgAdmin,
    /// A vault policy granted it.
    Policy(PolicyId),
    /// The server itself (e.g. storing an agent's identity keys).
    System,
}

impl PolicyDecision {
    /// A short label for audit details.
    pub fn as_str(&self) -> &'static str {
        match self {
            PolicyDecision::VaultCreator => "vault_creator",
            PolicyDecision::OrgOwner => "org_owner",
            PolicyDecision::OrgAdmin => "org_admin",
            PolicyDecision::Policy(_) => "policy",
            PolicyDecision::System => "system",
        }
    }

    /// The granting policy, if any.
    pub fn policy_id(&self) -> Option<PolicyId> {
        match self {
            PolicyDecision::Policy(id) => Some(*id),
            _ => None,
        }
    }
}

/// A refusal: the error to answer, and what to record about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 403 or 404.
    pub error: Error,
    /// Which rule refused: `org`, `vault_binding`, `scope`, `deny_policy`, `no_grant`.
    pub rule: &'static str,
    /// The deny policy, when one refused.
    pub policy_id: Option<PolicyId>,
}

fn refuse(rule: &'static str, msg: &str, policy_id: Option<PolicyId>) -> Refusal {
    Refusal {
        error: Error::forbidden(msg),
        rule,
        policy_id,
    }
}

/// An organisation-level operation (no vault involved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgAction {
    /// See the organisation's members.
    ListMembers,
    /// Invite people, change roles, remove members.
    ManageMembers,
    /// Read or verify the organisation's audit log.
    ReadAudit,
    /// Register an agent.
    RegisterAgent,
    /// Change, rotate or deactivate an agent (which one is the caller's
    /// business: see the engine's agent rules).
    ManageAgents,
    /// Learn the id of the agent-keys vault.
    FindAgentKeysVault,
}

impl OrgAction {
    /// Who may, in words (the refusal's message).
    fn refusal(&self) -> &'static str {
        match self {
            OrgAction::ListMembers | OrgAction::FindAgentKeysVault => "this endpoint is for users",
            OrgAction::ManageMembers => "only organisation owners and admins manage members",
            OrgAction::ReadAudit => "the audit log is open to organisation owners and admins",
            OrgAction::RegisterAgent | OrgAction::ManageAgents => "agents can't manage agents",
        }
    }

    /// Whether a credential with a path ceiling may do it: not when it
    /// reaches beyond the ceiling's paths (people, agents, the whole log).
    fn within_a_ceiling(&self) -> bool {
        matches!(self, OrgAction::ListMembers | OrgAction::FindAgentKeysVault)
    }
}

/// Decides an organisation-level operation: by role, then by the
/// credential's ceiling. The one place these rules live.
pub fn authorize_org(who: &Principal, action: OrgAction) -> Result<(), Refusal> {
    let by_role = match (who.subject, who.role) {
        (Subject::Agent(_), _) => false,
        (Subject::User(_), role) => match action {
            OrgAction::ManageMembers | OrgAction::ReadAudit => {
                matches!(role, Some(Role::Owner | Role::Admin))
            }
            _ => true,
        },
    };
    if !by_role {
        return Err(refuse("role", action.refusal(), None));
    }
    if who.is_restricted() && !action.within_a_ceiling() {
        return Err(refuse(
            "scope",
            "this credential's scopes limit it to some secret paths; it can't do this",
            None,
        ));
    }
    Ok(())
}

/// Decides whether `who` may perform `action` on `vault` (and `path`).
/// `policies` are the vault's policies naming `who` (others are ignored).
pub fn authorize(
    who: &Principal,
    vault: &VaultFacts,
    action: Action,
    path: Option<&SecretPath>,
    policies: &[Policy],
    now: OffsetDateTime,
) -> Result<PolicyDecision, Refusal> {
    if who.org_id != vault.org_id {
        return Err(Refusal {
            error: Error::not_found("vault not found"),
            rule: "org",
            policy_id: None,
        });
    }
    if !who.vault_ids.is_empty() && !who.vault_ids.contains(&vault.id) {
        return Err(refuse(
            "vault_binding",
            "this token is not bound to this vault",
            None,
        ));
    }
    if let Some(p) = path
        && !policy::scope_allows(&who.scopes, p)
    {
        return Err(refuse(
            "scope",
            "this token's scopes do not cover this path",
            None,
        ));
    }
    if who.is_restricted() && action.permission().is_none() {
        // Deleting the vault, its policies and its keys reach every path.
        return Err(refuse(
            "scope",
            "this credential's scopes limit it to some secret paths; it can't do this",
            None,
        ));
    }
    if vault.kind == VaultKind::AgentKeys {
        return authorize_agent_keys(who, action, path, policies, now);
    }
    let is_creator = vault.created_by == Some(who.subject);
    let is_owner = who.role == Some(Role::Owner);
    let bypass = || {
        if is_creator {
            Some(PolicyDecision::VaultCreator)
        } else if is_owner {
            Some(PolicyDecision::OrgOwner)
        } else {
            None
        }
    };
    let Some(permission) = action.permission() else {
        // Vault deletion and policy management are never granted by policies.
        return match (action, bypass()) {
            (_, Some(d)) => Ok(d),
            (Action::ManagePolicies, None) if who.role == Some(Role::Admin) => {
                Ok(PolicyDecision::OrgAdmin)
            }
            _ => Err(refuse(
                "no_grant",
                "only the vault's creator or an organisation owner may do this",
                None,
            )),
        };
    };
    let ip: Option<IpAddr> = who.ip;
    match policy::evaluate(policies, &who.subject, path, permission, ip, now) {
        PolicyOutcome::Deny { policy_id } => Err(refuse(
            "deny_policy",
            "a policy denies this",
            Some(policy_id),
        )),
        PolicyOutcome::Allow { policy_id } => Ok(PolicyDecision::Policy(policy_id)),
        PolicyOutcome::NoMatch => bypass()
            .ok_or_else(|| refuse("no_grant", "no policy grants you this on this vault", None)),
    }
}

/// The rules of the agent-keys vault (see the [module documentation](self)).
fn authorize_agent_keys(
    who: &Principal,
    action: Action,
    path: Option<&SecretPath>,
    policies: &[Policy],
    now: OffsetDateTime,
) -> Result<PolicyDecision, Refusal> {
    let system = || {
        refuse(
            "system_vault",
            "the agent-keys vault is managed by the server",
            None,
        )
    };
    let admin = match who.role {
        Some(Role::Owner) => Some(PolicyDecision::OrgOwner),
        Some(Role::Admin) => Some(PolicyDecision::OrgAdmin),
        _ => None,
    };
    match action {
        Action::ManagePolicies => admin.ok_or_else(|| {
            refuse(
                "no_grant",
                "only organisation owners and admins manage the agent-keys vault's policies",
                None,
            )
        }),
        Action::ManageKeys if who.is_org_owner() => Ok(PolicyDecision::OrgOwner),
        Action::ViewVault | Action::Read => {
            let outcome =
                policy::evaluate(policies, &who.subject, path, Permission::Read, who.ip, now);
            if let PolicyOutcome::Deny { policy_id } = outcome {
                return Err(refuse(
                    "deny_policy",
                    "a policy denies this",
                    Some(policy_id),
                ));
            }
            if let Some(d) = admin {
                return Ok(d);
            }
            // An agent reaches its own keys, with a grant; nobody else reaches any.
            let own = match (who.subject, path) {
                (Subject::Agent(id), Some(p)) => is_under_agent(p.as_str(), &id.to_string()),
                (Subject::Agent(_), None) => true,
                (Subject::User(_), _) => false,
            };
            match outcome {
                PolicyOutcome::Allow { policy_id } if own => Ok(PolicyDecision::Policy(policy_id)),
                _ => Err(refuse(
                    "system_vault",
                    "only owners, admins and the agent itself may read an agent's keys",
                    None,
                )),
            }
        }
        _ => Err(system()),
    }
}

/// True when `path` is `agents/<id>` or below it.
pub fn is_under_agent(path: &str, agent_id: &str) -> bool {
    path.strip_prefix("agents/")
        .and_then(|rest| rest.strip_prefix(agent_id))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Conditions, Effect, PathPattern};
    use crate::{AgentId, UserId};

    fn principal(subject: Subject, org: OrgId, role: Option<Role>) -> Principal {
        Principal {
            subject,
            org_id: org,
            role,
            vault_ids: vec![],
            scopes: vec![],
            token_id: None,
            token_exp: None,
            ip: None,
            intents_api: false,
        }
    }

    fn policy(
        vault: VaultId,
        who: Subject,
        pattern: &str,
        perms: &[Permission],
        effect: Effect,
        priority: i32,
    ) -> Policy {
        Policy {
            id: PolicyId(uuid::Uuid::new_v4()),
            vault_id: vault,
            pattern: PathPattern::parse(pattern).unwrap(),
            principal: who,
            permissions: perms.to_vec(),
            conditions: Conditions::default(),
            expires_at: None,
            effect,
            priority,
        }
    }

    fn path(p: &str) -> SecretPath {
        SecretPath::parse(p).unwrap()
    }

    struct World {
        org: OrgId,
        vault: VaultFacts,
        creator: Principal,
        owner: Principal,
        admin: Principal,
        member: Principal,
        agent: Principal,
    }

    fn world() -> World {
        let org = OrgId::new();
        let creator = principal(Subject::User(UserId::new()), org, Some(Role::Member));
        World {
            org,
            vault: VaultFacts {
                id: VaultId::new(),
                org_id: org,
                created_by: Some(creator.subject),
                kind: VaultKind::Standard,
            },
            creator,
            owner: principal(Subject::User(UserId::new()), org, Some(Role::Owner)),
            admin: principal(Subject::User(UserId::new()), org, Some(Role::Admin)),
            member: principal(Subject::User(UserId::new()), org, Some(Role::Member)),
            agent: principal(Subject::Agent(AgentId::new()), org, None),
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn bypass_for_creator_and_owner_only() {
        let w = world();
        let p = path("a/b");
        assert_eq!(
            authorize(&w.creator, &w.vault, Action::Read, Some(&p), &[], now()),
            Ok(PolicyDecision::VaultCreator)
        );
        assert_eq!(
            authorize(&w.owner, &w.vault, Action::Write, Some(&p), &[], now()),
            Ok(PolicyDecision::OrgOwner)
        );
        for who in [&w.admin, &w.member, &w.agent] {
            let r = authorize(who, &w.vault, Action::Read, Some(&p), &[], now()).unwrap_err();
            assert_eq!(r.rule, "no_grant");
            assert!(matches!(r.error, Error::Forbidden(_)));
        }
    }

    #[test]
    fn other_orgs_get_not_found() {
        let w = world();
        let stranger = principal(
            Subject::User(UserId::new()),
            OrgId::new(),
            Some(Role::Owner),
        );
        let r = authorize(&stranger, &w.vault, Action::ViewVault, None, &[], now()).unwrap_err();
        assert!(matches!(r.error, Error::NotFound(_)));
        let _ = w.org;
    }

    #[test]
    fn policies_grant_and_deny_beats_bypass() {
        let w = world();
        let allow = policy(
            w.vault.id,
            w.agent.subject,
            "prod/*",
            &[Permission::Read],
            Effect::Allow,
            0,
        );
        let p = path("prod/db");
        assert_eq!(
            authorize(
                &w.agent,
                &w.vault,
                Action::Read,
                Some(&p),
                std::slice::from_ref(&allow),
                now()
            ),
            Ok(PolicyDecision::Policy(allow.id))
        );
        assert!(
            authorize(
                &w.agent,
                &w.vault,
                Action::Write,
                Some(&p),
                std::slice::from_ref(&allow),
                now()
            )
            .is_err()
        );
        assert!(
            authorize(
                &w.agent,
                &w.vault,
                Action::Read,
                Some(&path("staging/db")),
                std::slice::from_ref(&allow),
                now()
            )
            .is_err()
        );
        // Seeing the vault follows from any read grant.
        assert!(
            authorize(
                &w.agent,
                &w.vault,
                Action::ViewVault,
                None,
                std::slice::from_ref(&allow),
                now()
            )
            .is_ok()
        );
        // An explicit deny binds the creator too.
        let deny = policy(
            w.vault.id,
            w.creator.subject,
            "prod/**",
            &[Permission::Read],
            Effect::Deny,
            0,
        );
        let r = authorize(
            &w.creator,
            &w.vault,
            Action::Read,
            Some(&p),
            std::slice::from_ref(&deny),
            now(),
        )
        .unwrap_err();
        assert_eq!((r.rule, r.policy_id), ("deny_policy", Some(deny.id)));
        assert!(
            authorize(
                &w.creator,
                &w.vault,
                Action::Read,
                Some(&path("other")),
                &[deny],
                now()
            )
            .is_ok()
        );
    }

    #[test]
    fn vault_binding_and_scopes() {
        let w = world();
        let allow = policy(
            w.vault.id,
            w.agent.subject,
            "**",
            &[Permission::Read],
            Effect::Allow,
            0,
        );
        let mut bound = w.agent.clone();
        bound.vault_ids = vec![VaultId::new()];
        let r = authorize(
            &bound,
            &w.vault,
            Action::Read,
            Some(&path("a")),
            std::slice::from_ref(&allow),
            now(),
        )
        .unwrap_err();
        assert_eq!(r.rule, "vault_binding");
        bound.vault_ids.push(w.vault.id);
        assert!(
            authorize(
                &bound,
                &w.vault,
                Action::Read,
                Some(&path("a")),
                std::slice::from_ref(&allow),
                now()
            )
            .is_ok()
        );

        let mut scoped = w.agent.clone();
        scoped.scopes = vec!["prod/**".into(), "vaults:read".into()];
        assert!(
            authorize(
                &scoped,
                &w.vault,
                Action::Read,
                Some(&path("prod/x")),
                std::slice::from_ref(&allow),
                now()
            )
            .is_ok()
        );
        let r = authorize(
            &scoped,
            &w.vault,
            Action::Read,
            Some(&path("dev/x")),
            std::slice::from_ref(&allow),
            now(),
        )
        .unwrap_err();
        assert_eq!(r.rule, "scope");
        // Scopes are a ceiling, not a grant.
        assert!(
            authorize(
                &scoped,
                &w.vault,
                Action::Read,
                Some(&path("prod/x")),
                &[],
                now()
            )
            .is_err()
        );
    }

    #[test]
    fn vault_deletion_and_policy_management() {
        let w = world();
        let all = policy(
            w.vault.id,
            w.member.subject,
            "**",
            &Permission::ALL,
            Effect::Allow,
            0,
        );
        assert!(authorize(&w.creator, &w.vault, Action::DeleteVault, None, &[], now()).is_ok());
        assert!(authorize(&w.owner, &w.vault, Action::DeleteVault, None, &[], now()).is_ok());
        assert!(authorize(&w.admin, &w.vault, Action::DeleteVault, None, &[], now()).is_err());
        assert!(
            authorize(
                &w.member,
                &w.vault,
                Action::DeleteVault,
                None,
                std::slice::from_ref(&all),
                now()
            )
            .is_err()
        );
        assert_eq!(
            authorize(&w.admin, &w.vault, Action::ManagePolicies, None, &[], now()),
            Ok(PolicyDecision::OrgAdmin)
        );
        assert!(
            authorize(
                &w.member,
                &w.vault,
                Action::ManagePolicies,
                None,
                &[all],
                now()
            )
            .is_err()
        );
        assert!(authorize(&w.agent, &w.vault, Action::ManagePolicies, None, &[], now()).is_err());
        assert!(authorize(&w.creator, &w.vault, Action::ManageKeys, None, &[], now()).is_ok());
        assert!(authorize(&w.admin, &w.vault, Action::ManageKeys, None, &[], now()).is_err());
    }

    #[test]
    fn the_agent_keys_vault_belongs_to_the_server() {
        let w = world();
        let keys = VaultFacts {
            created_by: None,
            kind: VaultKind::AgentKeys,
            ..w.vault
        };
        let Subject::Agent(agent_id) = w.agent.subject else {
            unreachable!()
        };
        let own = path(&format!("agents/{agent_id}/ssh/private_key"));
        let other = path(&format!("agents/{}/ssh/private_key", AgentId::new()));
        let decide = |who: &Principal, action, p: Option<&SecretPath>, policies: &[Policy]| {
            authorize(who, &keys, action, p, policies, now())
        };
        // Owners and admins read every agent's keys; members don't, even
        // with a grant (a grant can't make anyone but the agent a reader).
        assert_eq!(
            decide(&w.owner, Action::Read, Some(&other), &[]),
            Ok(PolicyDecision::OrgOwner)
        );
        assert_eq!(
            decide(&w.admin, Action::Read, Some(&other), &[]),
            Ok(PolicyDecision::OrgAdmin)
        );
        let member_all = policy(
            keys.id,
            w.member.subject,
            "**",
            &[Permission::Read],
            Effect::Allow,
            9,
        );
        assert_eq!(
            decide(&w.member, Action::Read, Some(&own), &[member_all])
                .unwrap_err()
                .rule,
            "system_vault"
        );
        // The agent reads its own keys with a grant, never another's.
        let agent_all = policy(
            keys.id,
            w.agent.subject,
            "**",
            &[Permission::Read],
            Effect::Allow,
            0,
        );
        assert!(decide(&w.agent, Action::Read, Some(&own), &[]).is_err());
        assert!(
            decide(
                &w.agent,
                Action::Read,
                Some(&own),
                std::slice::from_ref(&agent_all)
            )
            .is_ok()
        );
        assert_eq!(
            decide(&w.agent, Action::Read, Some(&other), &[agent_all])
                .unwrap_err()
                .rule,
            "system_vault"
        );
        // Nobody writes, deletes, rotates or deletes the vault; a deny binds owners.
        for action in [
            Action::Write,
            Action::Delete,
            Action::Rotate,
            Action::DeleteVault,
        ] {
            for who in [&w.owner, &w.admin, &w.member, &w.creator] {
                assert_eq!(
                    decide(who, action, Some(&own), &[]).unwrap_err().rule,
                    "system_vault",
                    "{action:?}"
                );
            }
        }
        let deny = policy(
            keys.id,
            w.owner.subject,
            "**",
            &[Permission::Read],
            Effect::Deny,
            0,
        );
        assert_eq!(
            decide(&w.owner, Action::Read, Some(&own), &[deny])
                .unwrap_err()
                .rule,
            "deny_policy"
        );
        assert!(decide(&w.admin, Action::ManagePolicies, None, &[]).is_ok());
        assert!(decide(&w.member, Action::ManagePolicies, None, &[]).is_err());
        assert!(decide(&w.owner, Action::ManageKeys, None, &[]).is_ok());
        assert!(decide(&w.admin, Action::ManageKeys, None, &[]).is_err());
    }

    #[test]
    fn agent_paths_are_matched_by_whole_segments() {
        assert!(is_under_agent("agents/abc", "abc"));
        assert!(is_under_agent("agents/abc/ssh/private_key", "abc"));
        assert!(!is_under_agent("agents/abcd/ssh/private_key", "abc"));
        assert!(!is_under_agent("agents", "abc"));
        assert!(!is_under_agent("x/agents/abc", "abc"));
    }

    #[test]
    fn organisation_operations_by_role_then_ceiling() {
        let w = world();
        let all = [
            OrgAction::ListMembers,
            OrgAction::ManageMembers,
            OrgAction::ReadAudit,
            OrgAction::RegisterAgent,
            OrgAction::ManageAgents,
            OrgAction::FindAgentKeysVault,
        ];
        for a in all {
            assert!(authorize_org(&w.owner, a).is_ok(), "{a:?}");
            assert!(authorize_org(&w.admin, a).is_ok(), "{a:?}");
            assert_eq!(
                authorize_org(&w.agent, a).unwrap_err().rule,
                "role",
                "{a:?}"
            );
        }
        for a in [OrgAction::ManageMembers, OrgAction::ReadAudit] {
            assert_eq!(
                authorize_org(&w.member, a).unwrap_err().rule,
                "role",
                "{a:?}"
            );
        }
        for a in [
            OrgAction::ListMembers,
            OrgAction::RegisterAgent,
            OrgAction::ManageAgents,
        ] {
            assert!(authorize_org(&w.member, a).is_ok(), "{a:?}");
        }
        let mut scoped = w.owner.clone();
        scoped.scopes = vec!["db/*".into()];
        for a in all {
            let r = authorize_org(&scoped, a);
            if matches!(a, OrgAction::ListMembers | OrgAction::FindAgentKeysVault) {
                assert!(r.is_ok(), "{a:?}");
            } else {
                assert_eq!(r.unwrap_err().rule, "scope", "{a:?}");
            }
        }
        scoped.scopes = vec!["*".into(), "vaults:read".into()];
        assert!(authorize_org(&scoped, OrgAction::ManageMembers).is_ok());
    }
}
