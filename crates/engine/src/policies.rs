//! Vault policies: who may read, write or rotate which paths of a vault.
//! Managed by the vault's creator and the organisation's owners and admins,
//! with two limits that keep an explicit deny binding:
//!
//! - **No self-grants.** Only an owner may create, change or delete a policy
//!   whose principal is themselves; anyone else denied by a policy could
//!   otherwise delete the deny or outrank it with a higher-priority allow.
//! - **An owner's deny is an owner's to change.** A `deny` created by a user
//!   who is an owner may be changed or deleted only by an owner, so admins
//!   can't lift denies on each other either.
//!
//! A credential with a path ceiling (a scoped `1ck_` key) manages no policy
//! (the decision in `strongroom_core::authz` refuses it).

use serde_json::{Value, json};
use strongroom_core::audit::{AuditAction, AuditRecord, AuditResource};
use strongroom_core::authz::{Action, VaultKind, is_under_agent};
use strongroom_core::policy::{Conditions, Effect, PathPattern, Permission, Policy};
use strongroom_core::time_util::now;
use strongroom_core::{Error, PolicyId, Principal, Result, Role, Subject, VaultId};
use strongroom_store::PolicyRow;
use time::OffsetDateTime;

use crate::{Engine, views};

/// The fields of a policy that an update can't change.
const IMMUTABLE_FIELDS: [&str; 3] = ["secret_path_pattern", "principal_type", "principal_id"];

/// A new policy, as the API receives it.
#[derive(Debug)]
pub struct NewPolicy {
    /// Glob over secret paths.
    pub secret_path_pattern: String,
    /// `user` or `agent`.
    pub principal_type: String,
    /// The principal's uuid.
    pub principal_id: String,
    /// `read`, `write`, `rotate`, `delete`.
    pub permissions: Vec<String>,
    /// `ip_allowlist`, `time_window`.
    pub conditions: Option<Value>,
    /// Expiry.
    pub expires_at: Option<OffsetDateTime>,
    /// `allow` (default) or `deny`.
    pub effect: Option<String>,
    /// Higher wins; default 0.
    pub priority: Option<i32>,
    /// Other 1claw fields, stored and echoed.
    pub extra: serde_json::Map<String, Value>,
}

/// Changes to a policy; the pattern and the principal can't change.
#[derive(Debug, Default)]
pub struct PolicyUpdate {
    /// Permissions.
    pub permissions: Option<Vec<String>>,
    /// Conditions (`null` clears).
    pub conditions: Option<Value>,
    /// Expiry (`Some(None)` clears).
    pub expires_at: Option<Option<OffsetDateTime>>,
    /// Effect.
    pub effect: Option<String>,
    /// Priority.
    pub priority: Option<i32>,
    /// Other 1claw fields, merged.
    pub extra: serde_json::Map<String, Value>,
}

fn audit_details(p: &Policy) -> Value {
    json!({
        "vault_id": p.vault_id.to_string(),
        "policy_id": p.id.to_string(),
        "secret_path_pattern": p.pattern.as_str(),
        "principal": p.principal.to_string(),
        "permissions": p.permissions.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        "effect": p.effect.as_str(),
        "priority": p.priority,
    })
}

impl Engine {
    /// Refuses a change to `policy` that the rules of the module refuse `who`:
    /// a non-owner touching a policy that names themselves, or a deny set by
    /// an owner.
    async fn may_change(
        &self,
        who: &Principal,
        policy: &Policy,
        created_by: Option<Subject>,
        attempted: AuditAction,
    ) -> Result<()> {
        if who.is_org_owner() {
            return Ok(());
        }
        let resource = || AuditResource::Policy(policy.id);
        if policy.principal == who.subject {
            let refused = Err(Error::forbidden(
                "only an owner may create, change or delete a policy that names yourself",
            ));
            return self
                .checked(who, attempted, resource(), "self_grant", refused)
                .await;
        }
        if policy.effect == Effect::Deny
            && let Some(Subject::User(creator)) = created_by
            && self
                .store
                .user_by_id(creator)
                .await?
                .is_some_and(|u| u.org_id == who.org_id && u.role == Role::Owner)
        {
            let refused = Err(Error::forbidden(
                "a deny set by an owner may be changed or deleted only by an owner",
            ));
            return self
                .checked(who, attempted, resource(), "owner_deny", refused)
                .await;
        }
        Ok(())
    }

    async fn check_principal(&self, who: &Principal, kind: &str, id: &str) -> Result<Subject> {
        let subject: Subject = format!("{kind}:{id}").parse().map_err(|_| {
            Error::invalid("principal_type must be user or agent, and principal_id a UUID")
        })?;
        let exists = match subject {
            Subject::User(u) => self
                .store
                .user_by_id(u)
                .await?
                .is_some_and(|u| u.org_id == who.org_id),
            Subject::Agent(a) => self
                .store
                .agent(a)
                .await?
                .is_some_and(|a| a.org_id == who.org_id),
        };
        if !exists {
            return Err(Error::invalid(format!(
                "no {kind} {id} in this organisation"
            )));
        }
        Ok(subject)
    }

    /// Creates a policy.
    pub async fn create_policy(
        &self,
        who: &Principal,
        vault_id: VaultId,
        input: NewPolicy,
    ) -> Result<views::Policy> {
        let (vault, decision) = self
            .vault_for(who, vault_id, Action::ManagePolicies, None)
            .await?;
        let principal = self
            .check_principal(who, &input.principal_type, &input.principal_id)
            .await?;
        let policy = Policy {
            id: PolicyId::new(),
            vault_id: vault.id,
            pattern: PathPattern::parse(&input.secret_path_pattern)?,
            principal,
            permissions: Permission::parse_list(&input.permissions)?,
            conditions: Conditions::from_json(input.conditions.as_ref().unwrap_or(&Value::Null))?,
            expires_at: input.expires_at,
            effect: input
                .effect
                .as_deref()
                .unwrap_or("allow")
                .parse::<Effect>()?,
            priority: input.priority.unwrap_or(0),
        };
        policy.validate()?;
        if vault.kind == VaultKind::AgentKeys {
            agent_keys_grant(&policy)?;
        }
        self.may_change(who, &policy, Some(who.subject), AuditAction::PolicyCreate)
            .await?;
        let row = PolicyRow {
            policy,
            extra: Value::Object(input.extra),
            created_by: who.subject,
            created_at: now(),
            updated_at: now(),
        };
        let mut details = audit_details(&row.policy);
        details["decision"] = json!(decision.as_str());
        let audit = AuditRecord::by(
            who,
            AuditAction::PolicyCreate,
            AuditResource::Policy(row.policy.id),
        )
        .with_details(details);
        self.store.create_policy(&row, &audit).await?;
        Ok(row.into())
    }

    /// A vault's policies.
    pub async fn list_policies(
        &self,
        who: &Principal,
        vault_id: VaultId,
    ) -> Result<Vec<views::Policy>> {
        let (vault, _) = self
            .vault_for(who, vault_id, Action::ManagePolicies, None)
            .await?;
        let rows = self.store.list_policies(vault.id).await?;
        Ok(rows.into_iter().map(views::Policy::from).collect())
    }

    async fn policy_in(&self, vault_id: VaultId, id: PolicyId) -> Result<PolicyRow> {
        self.store
            .policy(id)
            .await?
            .filter(|p| p.policy.vault_id == vault_id)
            .ok_or_else(|| Error::not_found("policy not found"))
    }

    /// Changes a policy's permissions, conditions, expiry, effect or priority.
    /// Its pattern and principal can't change: naming one in `u.extra` is
    /// refused (create a new policy instead).
    pub async fn update_policy(
        &self,
        who: &Principal,
        vault_id: VaultId,
        id: PolicyId,
        u: PolicyUpdate,
    ) -> Result<views::Policy> {
        for immutable in IMMUTABLE_FIELDS {
            if u.extra.contains_key(immutable) {
                return Err(Error::invalid(format!(
                    "{immutable} can't be changed; create a new policy instead"
                )));
            }
        }
        let (vault, _) = self
            .vault_for(who, vault_id, Action::ManagePolicies, None)
            .await?;
        let mut row = self.policy_in(vault.id, id).await?;
        self.may_change(
            who,
            &row.policy,
            Some(row.created_by),
            AuditAction::PolicyUpdate,
        )
        .await?;
        if let Some(p) = u.permissions {
            row.policy.permissions = Permission::parse_list(&p)?;
        }
        if let Some(c) = u.conditions {
            row.policy.conditions = Conditions::from_json(&c)?;
        }
        if let Some(e) = u.expires_at {
            row.policy.expires_at = e;
        }
        if let Some(e) = u.effect {
            row.policy.effect = e.parse()?;
        }
        if let Some(p) = u.priority {
            row.policy.priority = p;
        }
        row.policy.validate()?;
        if vault.kind == VaultKind::AgentKeys {
            agent_keys_grant(&row.policy)?;
        }
        if let Value::Object(m) = &mut row.extra {
            m.extend(u.extra);
        }
        row.updated_at = now();
        let audit = AuditRecord::by(who, AuditAction::PolicyUpdate, AuditResource::Policy(id))
            .with_details(audit_details(&row.policy));
        if !self.store.update_policy(&row, &audit).await? {
            return Err(Error::not_found("policy not found"));
        }
        Ok(row.into())
    }

    /// Deletes a policy.
    pub async fn delete_policy(
        &self,
        who: &Principal,
        vault_id: VaultId,
        id: PolicyId,
    ) -> Result<()> {
        let (vault, _) = self
            .vault_for(who, vault_id, Action::ManagePolicies, None)
            .await?;
        let row = self.policy_in(vault.id, id).await?;
        self.may_change(
            who,
            &row.policy,
            Some(row.created_by),
            AuditAction::PolicyDelete,
        )
        .await?;
        let audit = AuditRecord::by(who, AuditAction::PolicyDelete, AuditResource::Policy(id))
            .with_details(audit_details(&row.policy));
        if self.store.delete_policy(id, &audit).await? {
            Ok(())
        } else {
            Err(Error::not_found("policy not found"))
        }
    }
}

/// On the agent-keys vault a policy can only let an agent read its own keys
/// (or deny someone): anything else would be a grant nobody can use.
fn agent_keys_grant(p: &Policy) -> Result<()> {
    if p.effect == Effect::Deny {
        return Ok(());
    }
    let own = match p.principal {
        Subject::Agent(id) => is_under_agent(p.pattern.as_str(), &id.to_string()),
        Subject::User(_) => false,
    };
    if own && p.permissions == [Permission::Read] {
        Ok(())
    } else {
        Err(Error::invalid(
            "on the agent-keys vault a policy may only grant an agent read of its own keys (agents/<agent id>/**)",
        ))
    }
}
