//! Organisation membership.
//!
//! | role | may |
//! |---|---|
//! | owner | everything: all vaults (unless a policy denies), members and roles, including other owners |
//! | admin | invite and remove members and admins, change their roles, manage every vault's policies, read the audit log — but not read secrets without a policy |
//! | member | use the vaults they create and those policies grant them; create agents and manage their own |
//!
//! An organisation always keeps at least one owner.
//!
//! Invitations are per organisation: each inviting organisation keeps its own
//! pending invitation for an email, accepted only with its own single-use
//! token (`inv_…`, 256 random bits, stored as HMAC-SHA256 under the server
//! pepper like API keys, valid for [`INVITATION_TTL`]). Another organisation
//! inviting the same email can neither replace it nor redirect the sign-up.

use serde_json::json;
use strongroom_core::audit::{Attempt, AuditAction, AuditRecord, AuditResource};
use strongroom_core::authz::OrgAction;
use strongroom_core::time_util::now;
use strongroom_core::{Error, Principal, Result, Role, Subject, UserId};
use strongroom_store::{InvitationRow, StoreError, UserRow};
use zeroize::Zeroizing;

use crate::credentials::{self, INVITE_TOKEN_PREFIX};
use crate::views::{Invitation, User};
use crate::{Engine, org_resource, validate};

/// How long an invitation can be accepted.
pub const INVITATION_TTL: time::Duration = time::Duration::days(7);

/// A recorded invitation and its token: handed to the invitee, shown once,
/// stored only as an HMAC.
pub struct NewInvitation {
    /// What is stored (no token).
    pub invitation: Invitation,
    /// The token (`inv_…`) that accepts it.
    pub token: Zeroizing<String>,
}

impl std::fmt::Debug for NewInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewInvitation")
            .field("invitation", &self.invitation)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The calling owner or admin; anyone else's `attempted` is refused (and recorded).
    async fn member_manager(
        &self,
        who: &Principal,
        attempted: AuditAction,
        resource: AuditResource,
    ) -> Result<(UserId, Role)> {
        self.org_allowed(who, OrgAction::ManageMembers, attempted, resource)
            .await?;
        match (who.subject, who.role) {
            (Subject::User(id), Some(r)) => Ok((id, r)),
            _ => Err(Error::internal("a member manager without a user and role")),
        }
    }

    /// The caller's organisation's users.
    pub async fn list_members(&self, who: &Principal) -> Result<Vec<User>> {
        self.org_allowed(
            who,
            OrgAction::ListMembers,
            Attempt::MemberList,
            org_resource(who),
        )
        .await?;
        let rows = self.store.list_users(who.org_id).await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Invites an email address: signing up with it and the returned token
    /// joins this organisation. The answer is the same whether or not the
    /// email already has an account anywhere on the server (an invitation for
    /// a taken email is recorded but can't be accepted), so inviting can't be
    /// used to find out who has one.
    pub async fn invite(
        &self,
        who: &Principal,
        email: &str,
        role: Option<&str>,
    ) -> Result<NewInvitation> {
        let (me, my_role) = self
            .member_manager(who, AuditAction::MemberInvite, org_resource(who))
            .await?;
        let email = validate::email(email)?;
        let role: Role = role.unwrap_or("member").parse()?;
        if role == Role::Owner && my_role != Role::Owner {
            return self
                .refuse(
                    who,
                    AuditAction::MemberInvite,
                    AuditResource::Invitation(email),
                    "only owners may invite owners",
                )
                .await;
        }
        let issued = credentials::issue(INVITE_TOKEN_PREFIX, &self.pepper);
        let created_at = now();
        let row = InvitationRow {
            org_id: who.org_id,
            email: email.clone(),
            role,
            invited_by: me,
            token_hash: issued.hash,
            created_at,
            expires_at: created_at + INVITATION_TTL,
        };
        // The token is not in the record: whoever reads the log can't join.
        let audit = AuditRecord::by(
            who,
            AuditAction::MemberInvite,
            AuditResource::Invitation(email),
        )
        .with_details(
            json!({"role": role.as_str(), "expires_at": row.expires_at.unix_timestamp()}),
        );
        self.store.put_invitation(&row, &audit).await?;
        Ok(NewInvitation {
            invitation: row.into(),
            token: issued.key,
        })
    }

    async fn member(&self, who: &Principal, id: UserId) -> Result<UserRow> {
        self.store
            .user_by_id(id)
            .await?
            .filter(|u| u.org_id == who.org_id)
            .ok_or_else(|| Error::not_found("member not found"))
    }

    /// Changes a member's role.
    pub async fn set_member_role(&self, who: &Principal, id: UserId, role: &str) -> Result<User> {
        let user = AuditResource::User(id);
        let (_, my_role) = self
            .member_manager(who, AuditAction::MemberRoleChange, user.clone())
            .await?;
        let role: Role = role.parse()?;
        let mut target = self.member(who, id).await?;
        if my_role != Role::Owner && (role == Role::Owner || target.role == Role::Owner) {
            return self
                .refuse(
                    who,
                    AuditAction::MemberRoleChange,
                    user,
                    "only owners may grant or change the owner role",
                )
                .await;
        }
        let audit = AuditRecord::by(who, AuditAction::MemberRoleChange, AuditResource::User(id))
            .with_details(json!({"from": target.role.as_str(), "to": role.as_str()}));
        match self.store.set_user_role(id, role, &audit).await {
            Ok(true) => {
                target.role = role;
                Ok(target.into())
            }
            Ok(false) => Err(Error::not_found("member not found")),
            Err(StoreError::Conflict(m)) => Err(Error::Conflict(m.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a member (their API keys and their user policies go with them).
    pub async fn remove_member(&self, who: &Principal, id: UserId) -> Result<()> {
        let user = AuditResource::User(id);
        let (_, my_role) = self
            .member_manager(who, AuditAction::MemberRemove, user.clone())
            .await?;
        let target = self.member(who, id).await?;
        if my_role != Role::Owner && target.role == Role::Owner {
            return self
                .refuse(
                    who,
                    AuditAction::MemberRemove,
                    user,
                    "only owners may remove owners",
                )
                .await;
        }
        let audit = AuditRecord::by(who, AuditAction::MemberRemove, AuditResource::User(id))
            .with_details(json!({"role": target.role.as_str()}));
        match self.store.delete_user(id, &audit).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::not_found("member not found")),
            Err(StoreError::Conflict(m)) => Err(Error::Conflict(m.into())),
            Err(e) => Err(e.into()),
        }
    }
}
