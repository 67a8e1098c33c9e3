//! Organisation membership.
//!
//! | role | may |
//! |---|---|
//! | owner | everything: all vaults (unless a policy denies), members and roles, including other owners |
//! | admin | invite and remove members and admins, change their roles, manage every vault's policies, read the audit log — but not read secrets without a policy |
//! | member | use the vaults they create and those policies grant them; create agents and manage their own |
//!
//! An organisation always keeps at least one owner.

use serde_json::json;
use strongroom_core::audit::{Actor, AuditRecord};
use strongroom_core::time_util::now;
use strongroom_core::{Error, Principal, Result, Role, Subject, UserId};
use strongroom_store::{InvitationRow, StoreError, UserRow};

use crate::{Engine, ip_of, org_resource, validate};

impl Engine {
    /// The calling owner or admin; anyone else's `attempted` is refused (and recorded).
    async fn member_manager(
        &self,
        who: &Principal,
        attempted: &str,
        resource: (&str, String),
    ) -> Result<(UserId, Role)> {
        // A credential with a path ceiling can't add, promote or remove people.
        self.unrestricted(who, attempted, resource.clone()).await?;
        match (who.subject, who.role) {
            (Subject::User(id), Some(r @ (Role::Owner | Role::Admin))) => Ok((id, r)),
            _ => {
                let reason = "only organisation owners and admins manage members";
                self.refuse(who, attempted, resource, reason).await
            }
        }
    }

    /// The caller's organisation's users.
    pub async fn list_members(&self, who: &Principal) -> Result<Vec<UserRow>> {
        let users_only = match who.subject {
            Subject::User(_) => Ok(()),
            Subject::Agent(_) => Err(Error::forbidden("this endpoint is for users")),
        };
        self.checked(who, "member.list", org_resource(who), "role", users_only)
            .await?;
        Ok(self.store.list_users(who.org_id).await?)
    }

    /// Invites an email address: signing up with it joins this organisation.
    pub async fn invite(
        &self,
        who: &Principal,
        email: &str,
        role: Option<&str>,
    ) -> Result<InvitationRow> {
        let (me, my_role) = self
            .member_manager(who, "member.invite", org_resource(who))
            .await?;
        let email = validate::email(email)?;
        let role: Role = role.unwrap_or("member").parse()?;
        if role == Role::Owner && my_role != Role::Owner {
            return self
                .refuse(
                    who,
                    "member.invite",
                    ("invitation", email),
                    "only owners may invite owners",
                )
                .await;
        }
        let inv = InvitationRow {
            email: email.clone(),
            org_id: who.org_id,
            role,
            invited_by: me,
            created_at: now(),
        };
        let audit = AuditRecord::new(
            who.org_id,
            Actor::Subject(who.subject),
            "member.invite",
            "invitation",
            email,
            json!({"role": role.as_str()}),
            ip_of(who),
        );
        match self.store.put_invitation(&inv, &audit).await {
            Ok(()) => Ok(inv),
            Err(StoreError::Conflict(_)) => Err(Error::Conflict(
                "a user with this email already exists".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn member(&self, who: &Principal, id: UserId) -> Result<UserRow> {
        self.store
            .user_by_id(id)
            .await?
            .filter(|u| u.org_id == who.org_id)
            .ok_or_else(|| Error::not_found("member not found"))
    }

    /// Changes a member's role.
    pub async fn set_member_role(
        &self,
        who: &Principal,
        id: UserId,
        role: &str,
    ) -> Result<UserRow> {
        let user = ("user", id.to_string());
        let (_, my_role) = self
            .member_manager(who, "member.role_change", user.clone())
            .await?;
        let role: Role = role.parse()?;
        let mut target = self.member(who, id).await?;
        if my_role != Role::Owner && (role == Role::Owner || target.role == Role::Owner) {
            return self
                .refuse(
                    who,
                    "member.role_change",
                    user,
                    "only owners may grant or change the owner role",
                )
                .await;
        }
        let audit = AuditRecord::new(
            who.org_id,
            Actor::Subject(who.subject),
            "member.role_change",
            "user",
            id.to_string(),
            json!({"from": target.role.as_str(), "to": role.as_str()}),
            ip_of(who),
        );
        match self.store.set_user_role(id, role, &audit).await {
            Ok(true) => {
                target.role = role;
                Ok(target)
            }
            Ok(false) => Err(Error::not_found("member not found")),
            Err(StoreError::Conflict(m)) => Err(Error::Conflict(m)),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a member (their API keys and their user policies go with them).
    pub async fn remove_member(&self, who: &Principal, id: UserId) -> Result<()> {
        let user = ("user", id.to_string());
        let (_, my_role) = self
            .member_manager(who, "member.remove", user.clone())
            .await?;
        let target = self.member(who, id).await?;
        if my_role != Role::Owner && target.role == Role::Owner {
            return self
                .refuse(who, "member.remove", user, "only owners may remove owners")
                .await;
        }
        let audit = AuditRecord::new(
            who.org_id,
            Actor::Subject(who.subject),
            "member.remove",
            "user",
            id.to_string(),
            json!({"role": target.role.as_str()}),
            ip_of(who),
        );
        match self.store.delete_user(id, &audit).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::not_found("member not found")),
            Err(StoreError::Conflict(m)) => Err(Error::Conflict(m)),
            Err(e) => Err(e.into()),
        }
    }
}
