//! The authorization hook. Every use case that touches a vault asks
//! [`authorize`] first; today the rule is "the vault's creator or an org
//! owner", and vault policies slot in at the marked step without changing any
//! caller.

use crate::{Error, OrgId, Principal, SecretPath, Subject};

/// What the caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See the vault's metadata.
    ViewVault,
    /// Delete the vault.
    DeleteVault,
    /// Read a secret value, its versions or list metadata.
    Read,
    /// Create a version, delete or disable.
    Write,
    /// Have the server generate a new version.
    Rotate,
}

/// The facts about a vault that authorization needs.
#[derive(Debug, Clone, Copy)]
pub struct VaultFacts {
    /// The vault.
    pub id: crate::VaultId,
    /// The vault's organisation.
    pub org_id: OrgId,
    /// Who created it.
    pub created_by: Subject,
}

/// Why access was granted: recorded in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyDecision {
    /// The caller created the vault.
    VaultCreator,
    /// The caller owns the organisation.
    OrgOwner,
}

impl PolicyDecision {
    /// A short label for audit details.
    pub fn as_str(&self) -> &'static str {
        match self {
            PolicyDecision::VaultCreator => "vault_creator",
            PolicyDecision::OrgOwner => "org_owner",
        }
    }
}

/// Decides whether `who` may perform `action` on `vault` (and `path`, if any).
///
/// A vault of another organisation answers `NotFound`, so ids of other tenants
/// can't be probed.
pub fn authorize(
    who: &Principal,
    vault: &VaultFacts,
    action: Action,
    _path: Option<&SecretPath>,
) -> Result<PolicyDecision, Error> {
    if who.org_id != vault.org_id {
        return Err(Error::not_found("vault not found"));
    }
    // A token bound to some vaults reaches no other.
    if !who.vault_ids.is_empty() && !who.vault_ids.contains(&vault.id) {
        return Err(Error::forbidden("this token is not bound to this vault"));
    }
    if who.subject == vault.created_by {
        return Ok(PolicyDecision::VaultCreator);
    }
    if who.is_org_owner() {
        return Ok(PolicyDecision::OrgOwner);
    }
    // Vault policies will be evaluated here.
    let _ = action;
    Err(Error::forbidden("you do not have access to this vault"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Role, UserId};

    fn user(org: OrgId, role: Role) -> (Principal, Subject) {
        let s = Subject::User(UserId::new());
        (
            Principal {
                subject: s,
                org_id: org,
                role: Some(role),
                vault_ids: vec![],
                scopes: vec![],
                token_id: None,
                ip: None,
            },
            s,
        )
    }

    #[test]
    fn creator_and_owner_allowed_others_refused() {
        let org = OrgId::new();
        let (creator, creator_s) = user(org, Role::Member);
        let (owner, _) = user(org, Role::Owner);
        let (member, _) = user(org, Role::Member);
        let (stranger, _) = user(OrgId::new(), Role::Owner);
        let v = VaultFacts {
            id: crate::VaultId::new(),
            org_id: org,
            created_by: creator_s,
        };
        assert_eq!(
            authorize(&creator, &v, Action::Read, None),
            Ok(PolicyDecision::VaultCreator)
        );
        assert_eq!(
            authorize(&owner, &v, Action::Write, None),
            Ok(PolicyDecision::OrgOwner)
        );
        assert!(matches!(
            authorize(&member, &v, Action::Read, None),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            authorize(&stranger, &v, Action::Read, None),
            Err(Error::NotFound(_))
        ));
        let mut bound = creator.clone();
        bound.vault_ids = vec![crate::VaultId::new()];
        assert!(matches!(
            authorize(&bound, &v, Action::Read, None),
            Err(Error::Forbidden(_))
        ));
        bound.vault_ids.push(v.id);
        assert!(authorize(&bound, &v, Action::Read, None).is_ok());
    }
}
