//! Sign-up, login and the caller's profile.

use std::net::IpAddr;

use serde_json::json;
use strongroom_core::audit::{Actor, AuditRecord, SYSTEM_ORG};
use strongroom_core::time_util::now;
use strongroom_core::{Error, OrgId, Principal, Result, Role, Subject, UserId};
use strongroom_store::{OrgRow, StoreError, UserRow};

use crate::{Engine, validate};

/// What a sign-up needs.
pub struct SignupInput {
    /// Email address.
    pub email: String,
    /// Password (checked against the policy, then hashed).
    pub password: String,
    /// Optional display name.
    pub display_name: Option<String>,
}

/// A successful login or sign-up.
#[derive(Debug)]
pub struct LoginOutput {
    /// The user.
    pub user: UserRow,
    /// The access token.
    pub token: crate::tokens::IssuedToken,
}

impl Engine {
    /// Creates an organisation and its owner, and logs them in.
    pub async fn signup(&self, input: SignupInput, ip: Option<IpAddr>) -> Result<LoginOutput> {
        let email = validate::email(&input.email)?;
        validate::password(&input.password)?;
        let display_name = input
            .display_name
            .map(|d| validate::text("display_name", d.trim(), 200))
            .transpose()?
            .filter(|d| !d.is_empty());
        let params = self.config.password_params;
        let password = input.password;
        let password_hash = tokio::task::spawn_blocking(move || {
            strongroom_crypto::password::hash(&password, params)
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
        let org = OrgRow {
            id: OrgId::new(),
            name: format!("{email}'s organisation"),
            created_at: now(),
        };
        let user = UserRow {
            id: UserId::new(),
            org_id: org.id,
            email: email.clone(),
            display_name,
            password_hash,
            role: Role::Owner,
            created_at: now(),
        };
        let audit = AuditRecord::new(
            org.id,
            Actor::Subject(Subject::User(user.id)),
            "auth.signup",
            "user",
            user.id.to_string(),
            json!({"org_id": org.id.to_string()}),
            ip.map(|i| i.to_string()),
        );
        match self
            .store
            .create_org_with_owner(&org, &user, self.config.signup, &audit)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                // Either sign-up is closed or the email is taken; one answer for
                // both, so sign-up can't be used to probe for accounts.
                return Err(Error::forbidden(
                    "sign-up is closed on this server or the email is already registered; ask an administrator for an invitation",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let token = self.user_token(&user).await?;
        Ok(LoginOutput { user, token })
    }

    /// Email and password login. Unknown users and wrong passwords get the same
    /// answer after the same work.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<LoginOutput> {
        let fail = || Error::Unauthenticated("Invalid credentials".into());
        if password.len() > 1024 || email.len() > 254 {
            return Err(fail());
        }
        let email = email.trim().to_lowercase();
        let user = self.store.user_by_email(&email).await?;
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_password_hash.clone());
        let pw = zeroize::Zeroizing::new(password.to_owned());
        let ok =
            tokio::task::spawn_blocking(move || strongroom_crypto::password::verify(&pw, &hash))
                .await
                .map_err(|e| Error::internal(e.to_string()))?;
        match user {
            Some(user) if ok => {
                self.store
                    .append_audit(&AuditRecord::new(
                        user.org_id,
                        Actor::Subject(Subject::User(user.id)),
                        "auth.success",
                        "user",
                        user.id.to_string(),
                        json!({"method": "password"}),
                        ip.map(|i| i.to_string()),
                    ))
                    .await?;
                let token = self.user_token(&user).await?;
                Ok(LoginOutput { user, token })
            }
            Some(user) => {
                self.audit_best_effort(AuditRecord::new(
                    user.org_id,
                    Actor::Anonymous,
                    "auth.failure",
                    "user",
                    user.id.to_string(),
                    json!({"method": "password", "reason": "bad_credentials"}),
                    ip.map(|i| i.to_string()),
                ))
                .await;
                Err(fail())
            }
            None => {
                self.audit_best_effort(AuditRecord::new(
                    SYSTEM_ORG,
                    Actor::Anonymous,
                    "auth.failure",
                    "user",
                    "",
                    json!({"method": "password", "reason": "unknown_user"}),
                    ip.map(|i| i.to_string()),
                ))
                .await;
                Err(fail())
            }
        }
    }

    async fn user_token(&self, user: &UserRow) -> Result<crate::tokens::IssuedToken> {
        self.tokens
            .issue(
                Subject::User(user.id),
                user.org_id,
                Some(user.role),
                vec![],
                vec![],
                self.config.user_token_ttl,
            )
            .await
    }

    /// Verifies a bearer credential and returns the principal. A refused
    /// credential is audited on the system chain (it names no organisation we
    /// can trust).
    pub async fn authenticate(&self, bearer: &str, ip: Option<IpAddr>) -> Result<Principal> {
        match self.tokens.principal(bearer, ip) {
            Ok(p) => Ok(p),
            Err(e) => {
                self.audit_best_effort(AuditRecord::new(
                    SYSTEM_ORG,
                    Actor::Anonymous,
                    "auth.failure",
                    "token",
                    "",
                    json!({"method": "bearer", "reason": "invalid_token"}),
                    ip.map(|i| i.to_string()),
                ))
                .await;
                Err(e)
            }
        }
    }

    /// The calling user's profile.
    pub async fn me(&self, who: &Principal) -> Result<UserRow> {
        match who.subject {
            Subject::User(id) => self
                .store
                .user_by_id(id)
                .await?
                .filter(|u| u.org_id == who.org_id)
                .ok_or_else(|| Error::Unauthenticated("the account no longer exists".into())),
            Subject::Agent(_) => Err(Error::forbidden("this endpoint is for users")),
        }
    }
}
