//! Sign-up, login, bearer authentication, personal API keys and revocation.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::json;
use strongroom_core::audit::details::AuthDetails;
use strongroom_core::audit::{AuditAction, AuditRecord, AuditResource, ResourceKind, SYSTEM_ORG};
use strongroom_core::time_util::now;
use strongroom_core::{ApiKeyId, Error, OrgId, Principal, Result, Role, Subject, UserId};
use strongroom_store::{ApiKeyRow, OrgRow, StoreError, UserRow};
use time::OffsetDateTime;

use crate::credentials::{self, PERSONAL_KEY_PREFIX};
use crate::tokens::TokenGrant;
use crate::views::{ApiKeyInfo, User};
use crate::{Engine, validate};

/// What a sign-up needs.
pub struct SignupInput {
    /// Email address.
    pub email: String,
    /// Password (checked against the policy, then hashed).
    pub password: String,
    /// Optional display name.
    pub display_name: Option<String>,
    /// The token of an invitation (`inv_…`) to accept.
    pub invite_token: Option<String>,
}

/// A successful login or sign-up.
#[derive(Debug)]
pub struct LoginOutput {
    /// The user.
    pub user: User,
    /// The access token.
    pub token: crate::tokens::IssuedToken,
}

/// A new personal API key: what is stored of it, and the key itself (shown once).
pub struct NewApiKey {
    /// What is stored (no key).
    pub info: ApiKeyInfo,
    /// The key.
    pub key: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is shown once, to the caller: never in a log line.
        f.debug_struct("NewApiKey")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Lifetime of a token exchanged for a personal API key. Clients (the Python
/// SDK among them) exchange such keys once and never refresh, so it is longer
/// than a login's; revoking the key ends these tokens at once.
const API_KEY_TOKEN_TTL: Duration = Duration::from_secs(3600);

fn unauthenticated() -> Error {
    Error::Unauthenticated("invalid or expired token".into())
}

impl Engine {
    /// Creates an account. With the token of a pending, unexpired invitation
    /// for the email it joins that invitation's organisation (even when
    /// sign-up is otherwise closed) and consumes the invitation; without one
    /// (no token, or a wrong, expired or consumed one) it is an uninvited
    /// sign-up: an organisation of its own if sign-up allows.
    pub async fn signup(&self, input: SignupInput, ip: Option<IpAddr>) -> Result<LoginOutput> {
        let email = validate::email(&input.email)?;
        validate::password(&input.password)?;
        let display_name = input
            .display_name
            .map(|d| validate::text("display_name", d.trim(), 200))
            .transpose()?
            .filter(|d| !d.is_empty());
        let params = self.config.password_params;
        let password = zeroize::Zeroizing::new(input.password);
        let password_hash = self
            .password_work
            .run(move |mem| strongroom_crypto::password::hash_in(&password, params, mem))
            .await?;
        let closed = || {
            // One answer for "closed" and "email taken", so sign-up can't be used
            // to probe for accounts.
            Error::forbidden(
                "sign-up is closed on this server or the email is already registered; ask an administrator for an invitation",
            )
        };
        let invite_token = input.invite_token.map(zeroize::Zeroizing::new);
        let invitation = match invite_token.as_deref() {
            Some(token)
                if token.starts_with(credentials::INVITE_TOKEN_PREFIX) && token.len() <= 256 =>
            {
                // One per inviting organisation: the token picks its own.
                let at = now();
                self.store
                    .invitations(&email)
                    .await?
                    .into_iter()
                    .filter(|inv| inv.expires_at > at)
                    .find(|inv| credentials::matches(&self.pepper, token, Some(&inv.token_hash)))
            }
            _ => None,
        };
        let invited = invitation.is_some();
        let (org_id, role) = match &invitation {
            Some(inv) => (inv.org_id, inv.role),
            None => (OrgId::new(), Role::Owner),
        };
        let user = UserRow {
            id: UserId::new(),
            org_id,
            email: email.clone(),
            display_name,
            password_hash,
            role,
            created_at: now(),
        };
        let audit = AuditRecord::authenticated(
            org_id,
            Subject::User(user.id),
            ip,
            AuditAction::AuthSignup,
            AuditResource::User(user.id),
        )
        .with_details(
            json!({"org_id": org_id.to_string(), "role": role.as_str(), "invited": invited}),
        );
        let stored = match &invitation {
            Some(inv) => {
                self.store
                    .accept_invitation(&user, &inv.token_hash, &audit)
                    .await
            }
            None => {
                let org = OrgRow {
                    id: org_id,
                    name: format!("{email}'s organisation"),
                    created_at: now(),
                };
                self.store
                    .create_org_with_owner(&org, &user, self.config.signup, &audit)
                    .await
            }
        };
        match stored {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(closed()),
            Err(e) => return Err(e.into()),
        }
        let token = self
            .user_token(&user, vec![], None, self.config.user_token_ttl)
            .await?;
        Ok(LoginOutput {
            user: user.into(),
            token,
        })
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
        let ok = self
            .password_work
            .run(move |mem| strongroom_crypto::password::verify_in(&pw, &hash, mem))
            .await?;
        match user {
            Some(user) if ok => {
                self.store
                    .append_audit(
                        &AuditRecord::authenticated(
                            user.org_id,
                            Subject::User(user.id),
                            ip,
                            AuditAction::AuthSuccess,
                            AuditResource::User(user.id),
                        )
                        .with_details(AuthDetails {
                            method: "password",
                            reason: None,
                        }),
                    )
                    .await?;
                let token = self
                    .user_token(&user, vec![], None, self.config.user_token_ttl)
                    .await?;
                Ok(LoginOutput {
                    user: user.into(),
                    token,
                })
            }
            Some(user) => {
                self.audit_auth_failure(
                    user.org_id,
                    AuditResource::User(user.id),
                    "password",
                    "bad_credentials",
                    ip,
                )
                .await;
                Err(fail())
            }
            None => {
                self.audit_auth_failure(
                    SYSTEM_ORG,
                    AuditResource::Unnamed(ResourceKind::User),
                    "password",
                    "unknown_user",
                    ip,
                )
                .await;
                Err(fail())
            }
        }
    }

    /// Records a failed authentication. One that names an organisation (a
    /// known user or agent) is recorded per attempt in that organisation's
    /// chain; one that names none is counted per client and written as one
    /// aggregated record per window (see [`crate::auth_failures`]).
    pub(crate) async fn audit_auth_failure(
        &self,
        org: OrgId,
        resource: AuditResource,
        method: &str,
        reason: &str,
        ip: Option<IpAddr>,
    ) {
        if org == SYSTEM_ORG {
            self.auth_failures
                .count(ip, resource.kind(), method, reason);
            return;
        }
        let rec = AuditRecord::anonymous(org, AuditAction::AuthFailure, resource, ip).with_details(
            AuthDetails {
                method,
                reason: Some(reason),
            },
        );
        self.audit_best_effort(rec).await;
    }

    async fn user_token(
        &self,
        user: &UserRow,
        scopes: Vec<String>,
        api_key: Option<ApiKeyId>,
        ttl: Duration,
    ) -> Result<crate::tokens::IssuedToken> {
        self.tokens
            .issue(TokenGrant {
                subject: Subject::User(user.id),
                org: user.org_id,
                role: Some(user.role),
                scopes,
                vault_ids: vec![],
                api_key_id: api_key,
                generation: 0,
                ttl,
            })
            .await
    }

    /// Verifies a bearer credential — an EdDSA JWT, or a personal `1ck_` key
    /// used directly — and returns the principal as it stands now: a removed
    /// user, a deactivated or expired agent, a revoked token or key is refused,
    /// and a user's role is the current one. Refusals are audited on the system
    /// chain (a refused credential names no organisation we can trust).
    pub async fn authenticate(&self, bearer: &str, ip: Option<IpAddr>) -> Result<Principal> {
        let result = if bearer.starts_with(PERSONAL_KEY_PREFIX) {
            self.authenticate_api_key(bearer, ip).await
        } else {
            self.authenticate_jwt(bearer, ip).await
        };
        if let Err(Error::Unauthenticated(_)) = &result {
            self.audit_auth_failure(
                SYSTEM_ORG,
                AuditResource::Unnamed(ResourceKind::Token),
                "bearer",
                "invalid_credential",
                ip,
            )
            .await;
        }
        result
    }

    async fn authenticate_jwt(&self, bearer: &str, ip: Option<IpAddr>) -> Result<Principal> {
        let crate::tokens::VerifiedToken {
            principal: mut p,
            api_key,
            generation,
        } = self.tokens.principal(bearer, ip)?;
        let status = self
            .store
            .principal_status(p.org_id, &p.subject, p.token_id.as_deref())
            .await?;
        // An agent's rotation or deactivation moved its generation on: every
        // token issued before it is over, even if the agent is active again.
        let superseded =
            matches!(p.subject, Subject::Agent(_)) && generation != status.token_generation;
        if !status.active || status.revoked || superseded {
            return Err(unauthenticated());
        }
        p.intents_api = status.intents_api;
        if let Some(key_id) = api_key {
            let Subject::User(uid) = p.subject else {
                return Err(unauthenticated());
            };
            let keys = self.store.list_api_keys(uid).await?;
            if !keys.iter().any(|k| k.id == key_id && key_usable(k)) {
                return Err(unauthenticated());
            }
        }
        if status.role.is_some() {
            p.role = status.role;
        }
        Ok(p)
    }

    /// Finds and checks a personal key; `None` for any mismatch.
    async fn check_api_key(&self, presented: &str) -> Result<Option<ApiKeyRow>> {
        let row = match credentials::lookup_prefix(presented, PERSONAL_KEY_PREFIX) {
            Some(prefix) => self.store.api_key_by_prefix(prefix).await?,
            None => None,
        };
        let ok = credentials::matches(
            &self.pepper,
            presented,
            row.as_ref().map(|r| r.key_hash.as_slice()),
        );
        Ok(row.filter(|r| ok && key_usable(r)))
    }

    async fn authenticate_api_key(&self, presented: &str, ip: Option<IpAddr>) -> Result<Principal> {
        let key = self
            .check_api_key(presented)
            .await?
            .ok_or_else(unauthenticated)?;
        let subject = Subject::User(key.user_id);
        let status = self
            .store
            .principal_status(key.org_id, &subject, None)
            .await?;
        if !status.active {
            return Err(unauthenticated());
        }
        Ok(Principal {
            subject,
            org_id: key.org_id,
            role: status.role,
            vault_ids: vec![],
            scopes: key.scopes,
            token_id: None,
            token_exp: None,
            ip,
            intents_api: false,
        })
    }

    /// Exchanges a personal `1ck_` key for a JWT carrying the key's scopes.
    pub async fn api_key_token(
        &self,
        presented: &str,
        ip: Option<IpAddr>,
    ) -> Result<crate::tokens::IssuedToken> {
        let fail = || Error::Unauthenticated("invalid API key".into());
        let Some(key) = self.check_api_key(presented).await? else {
            self.audit_auth_failure(
                SYSTEM_ORG,
                AuditResource::Unnamed(ResourceKind::ApiKey),
                "api_key",
                "invalid_key",
                ip,
            )
            .await;
            return Err(fail());
        };
        let user = self
            .store
            .user_by_id(key.user_id)
            .await?
            .filter(|u| u.org_id == key.org_id)
            .ok_or_else(fail)?;
        self.store
            .append_audit(
                &AuditRecord::authenticated(
                    user.org_id,
                    Subject::User(user.id),
                    ip,
                    AuditAction::AuthSuccess,
                    AuditResource::ApiKey(key.id),
                )
                .with_details(AuthDetails {
                    method: "api_key",
                    reason: None,
                }),
            )
            .await?;
        self.user_token(&user, key.scopes.clone(), Some(key.id), API_KEY_TOKEN_TTL)
            .await
    }

    /// Revokes the presented token (its id joins the deny list until it expires).
    pub async fn revoke_token(&self, who: &Principal) -> Result<()> {
        let (Some(jti), Some(exp)) = (&who.token_id, who.token_exp) else {
            return Err(Error::invalid(
                "this credential is an API key: delete the key to revoke it",
            ));
        };
        let audit = AuditRecord::by(
            who,
            AuditAction::AuthTokenRevoke,
            AuditResource::Token(jti.clone()),
        );
        let exp = OffsetDateTime::from_unix_timestamp(exp)
            .map_err(|_| Error::invalid("bad token expiry"))?;
        Ok(self.store.revoke_token(jti, exp, &audit).await?)
    }

    /// The calling user's profile.
    pub async fn me(&self, who: &Principal) -> Result<User> {
        match who.subject {
            Subject::User(id) => self
                .store
                .user_by_id(id)
                .await?
                .filter(|u| u.org_id == who.org_id)
                .map(User::from)
                .ok_or_else(|| Error::Unauthenticated("the account no longer exists".into())),
            Subject::Agent(_) => Err(Error::forbidden("this endpoint is for users")),
        }
    }

    fn require_user(who: &Principal) -> Result<UserId> {
        match who.subject {
            Subject::User(id) => Ok(id),
            Subject::Agent(_) => Err(Error::forbidden("this endpoint is for users")),
        }
    }

    /// Creates a personal API key for the calling user. Without scopes (or
    /// with none) it has the scopes of the credential creating it.
    pub async fn create_api_key(
        &self,
        who: &Principal,
        name: &str,
        scopes: Option<Vec<String>>,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<NewApiKey> {
        let user = Self::require_user(who)?;
        let name = validate::name("name", name, 255)?;
        let scopes = validate::scopes(scopes.unwrap_or_default())?;
        // A key is never broader than the credential that made it.
        let scopes = if scopes.is_empty() {
            who.scopes.clone()
        } else if who.scopes.is_empty() || scopes.iter().all(|s| who.scopes.contains(s)) {
            scopes
        } else {
            let refused = Err(Error::forbidden(
                "a key's scopes must be among the scopes of the credential creating it",
            ));
            let me = AuditResource::User(user);
            return self
                .checked(who, AuditAction::ApiKeyCreate, me, "scopes", refused)
                .await;
        };
        for attempt in 0..3 {
            let issued = credentials::issue(PERSONAL_KEY_PREFIX, &self.pepper);
            let row = ApiKeyRow {
                id: ApiKeyId::new(),
                user_id: user,
                org_id: who.org_id,
                name: name.clone(),
                key_prefix: issued.prefix.clone(),
                key_hash: issued.hash.clone(),
                scopes: scopes.clone(),
                is_active: true,
                created_at: now(),
                expires_at,
            };
            let audit = AuditRecord::by(
                who,
                AuditAction::ApiKeyCreate,
                AuditResource::ApiKey(row.id),
            )
            .with_details(json!({"name": row.name, "key_prefix": row.key_prefix}));
            match self.store.create_api_key(&row, &audit).await {
                Ok(()) => {
                    return Ok(NewApiKey {
                        info: row.into(),
                        key: issued.key,
                    });
                }
                Err(StoreError::Conflict(_)) if attempt < 2 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::internal("could not allocate a unique key prefix"))
    }

    /// The calling user's personal keys (never the keys themselves).
    pub async fn list_api_keys(&self, who: &Principal) -> Result<Vec<ApiKeyInfo>> {
        let user = Self::require_user(who)?;
        let rows = self.store.list_api_keys(user).await?;
        Ok(rows.into_iter().map(ApiKeyInfo::from).collect())
    }

    /// Revokes one of the calling user's keys.
    pub async fn revoke_api_key(&self, who: &Principal, id: ApiKeyId) -> Result<()> {
        let user = Self::require_user(who)?;
        let audit = AuditRecord::by(who, AuditAction::ApiKeyRevoke, AuditResource::ApiKey(id));
        if self.store.revoke_api_key(user, id, &audit).await? {
            Ok(())
        } else {
            Err(Error::not_found("API key not found"))
        }
    }
}

fn key_usable(k: &ApiKeyRow) -> bool {
    k.is_active && k.expires_at.is_none_or(|t| t > OffsetDateTime::now_utc())
}
