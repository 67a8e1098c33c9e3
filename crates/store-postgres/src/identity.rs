//! PostgreSQL: [`IdentityStore`] — organisations, users (an organisation
//! always keeps an owner, however many nodes change roles at once),
//! invitations, revoked tokens, agents and personal API keys.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use strongroom_core::audit::AuditRecord;
use strongroom_core::time_util::{now, to_micros};
use strongroom_core::{AgentId, ApiKeyId, OrgId, Role, Subject, UserId};
use strongroom_store::*;
use time::OffsetDateTime;

use crate::PgStore;
use crate::cache::{Change, PrincipalFacts};
use crate::db::{IntakeRecord, conn, exec, map_err, query_i64, row_opt};
use crate::rows::{corrupt, get, to_json_text};

/// The advisory lock that serializes first signups ("strongroom signup").
const SIGNUP_LOCK: i64 = 0x5354_524f_4e47_5355;

async fn insert_user(c: &impl GenericClient, u: &UserRow) -> StoreResult<()> {
    exec(
        c,
        "INSERT INTO users (id, org_id, email, display_name, password_hash, role, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &u.id.to_string(),
            &u.org_id.to_string(),
            &u.email,
            &u.display_name,
            &u.password_hash,
            &u.role.as_str(),
            &to_micros(u.created_at),
        ],
    )
    .await
    .map(drop)
}

/// A user's organisation and role, with the organisation's row locked for
/// the rest of the transaction: changes to an organisation's members run one
/// at a time, so two demotions on two nodes can't both leave it ownerless.
async fn lock_member(c: &impl GenericClient, id: &str) -> StoreResult<Option<(String, String)>> {
    let Some(r) = row_opt(c, "SELECT org_id, role FROM users WHERE id = $1", &[&id]).await? else {
        return Ok(None);
    };
    let org: String = get(&r, "org_id")?;
    exec(c, "SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE", &[&org]).await?;
    // Read again under the lock: it may have changed while we waited.
    let Some(r) = row_opt(c, "SELECT org_id, role FROM users WHERE id = $1", &[&id]).await? else {
        return Ok(None);
    };
    Ok(Some((get(&r, "org_id")?, get(&r, "role")?)))
}

/// Owners of an org other than `except`, inside a transaction.
async fn other_owners(c: &impl GenericClient, org: &str, except: &str) -> StoreResult<i64> {
    query_i64(
        c,
        "SELECT COUNT(*) FROM users WHERE org_id = $1 AND role = 'owner' AND id <> $2",
        &[&org, &except],
    )
    .await
}

fn last_owner() -> StoreError {
    StoreError::Conflict("an organisation must keep at least one owner".into())
}

#[async_trait]
impl IdentityStore for PgStore {
    async fn create_org_with_owner(
        &self,
        org: &OrgRow,
        owner: &UserRow,
        gate: SignupGate,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let a = IntakeRecord::new(audit);
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        if gate == SignupGate::FirstOnly {
            // Two first signups on two nodes: the second waits, then sees the first.
            exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&SIGNUP_LOCK]).await?;
            if row_opt(&tx, "SELECT 1 FROM users LIMIT 1", &[])
                .await?
                .is_some()
            {
                return Err(StoreError::Conflict("signup is closed".into()));
            }
        }
        exec(
            &tx,
            "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)",
            &[&org.id.to_string(), &org.name, &to_micros(org.created_at)],
        )
        .await?;
        insert_user(&tx, owner).await?;
        self.finish(tx, &a).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        self.opt("SELECT * FROM users WHERE email = $1", &[&email])
            .await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRow>> {
        self.opt("SELECT * FROM users WHERE id = $1", &[&id.to_string()])
            .await
    }

    async fn accept_invitation(
        &self,
        user: &UserRow,
        token_hash: &[u8],
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let a = IntakeRecord::new(audit);
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        // Consumed only if it is this organisation's, for this email, with
        // this token and role, and still valid. A failure below (the email
        // taken meanwhile) rolls the delete back too.
        let n = exec(
            &tx,
            "DELETE FROM invitations
             WHERE org_id = $1 AND email = $2 AND token_hash = $3 AND role = $4 AND expires_at > $5",
            &[
                &user.org_id.to_string(),
                &user.email,
                &token_hash,
                &user.role.as_str(),
                &to_micros(now()),
            ],
        )
        .await?;
        if n != 1 {
            return Err(StoreError::Conflict("no such invitation".into()));
        }
        insert_user(&tx, user).await?;
        self.finish(tx, &a).await
    }

    async fn invitations(&self, email: &str) -> StoreResult<Vec<InvitationRow>> {
        self.all(
            "SELECT * FROM invitations WHERE email = $1 ORDER BY created_at, org_id",
            &[&email],
        )
        .await
    }

    async fn put_invitation(&self, inv: &InvitationRow, audit: &AuditRecord) -> StoreResult<()> {
        let a = IntakeRecord::new(audit);
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        exec(
            &tx,
            "DELETE FROM invitations WHERE expires_at <= $1",
            &[&to_micros(now())],
        )
        .await?;
        exec(
            &tx,
            "INSERT INTO invitations (org_id, email, role, invited_by, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (org_id, email) DO UPDATE SET role = excluded.role,
               invited_by = excluded.invited_by, token_hash = excluded.token_hash,
               created_at = excluded.created_at, expires_at = excluded.expires_at",
            &[
                &inv.org_id.to_string(),
                &inv.email,
                &inv.role.as_str(),
                &inv.invited_by.to_string(),
                &inv.token_hash,
                &to_micros(inv.created_at),
                &to_micros(inv.expires_at),
            ],
        )
        .await?;
        self.finish(tx, &a).await
    }

    async fn list_users(&self, org: OrgId) -> StoreResult<Vec<UserRow>> {
        self.all(
            "SELECT * FROM users WHERE org_id = $1 ORDER BY created_at, id",
            &[&org.to_string()],
        )
        .await
    }

    async fn set_user_role(
        &self,
        user: UserId,
        role: Role,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let a = IntakeRecord::new(audit);
        let id = user.to_string();
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let Some((org, current)) = lock_member(&tx, &id).await? else {
            return Ok(false);
        };
        if current == "owner" && role != Role::Owner && other_owners(&tx, &org, &id).await? == 0 {
            return Err(last_owner());
        }
        exec(
            &tx,
            "UPDATE users SET role = $1 WHERE id = $2",
            &[&role.as_str(), &id],
        )
        .await?;
        self.finish_changing(
            tx,
            true,
            Some(&a),
            &[Change::Principal(Subject::User(user))],
        )
        .await
    }

    async fn delete_user(&self, user: UserId, audit: &AuditRecord) -> StoreResult<bool> {
        let a = IntakeRecord::new(audit);
        let id = user.to_string();
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let Some((org, role)) = lock_member(&tx, &id).await? else {
            return Ok(false);
        };
        if role == "owner" && other_owners(&tx, &org, &id).await? == 0 {
            return Err(last_owner());
        }
        for sql in [
            "DELETE FROM api_keys WHERE user_id = $1",
            "DELETE FROM policies WHERE principal_type = 'user' AND principal_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            exec(&tx, sql, &[&id]).await?;
        }
        self.finish_changing(
            tx,
            true,
            Some(&a),
            &[Change::Principal(Subject::User(user)), Change::AllPolicies],
        )
        .await
    }

    async fn principal_status(
        &self,
        org: OrgId,
        subject: &Subject,
        jti: Option<&str>,
    ) -> StoreResult<PrincipalStatus> {
        let org = org.to_string();
        let (facts, revoked) = match (
            self.cache.principal(&org, subject),
            jti.map(|j| self.cache.revoked(j)),
        ) {
            (Some(f), None) => (f, false),
            (Some(f), Some(Some(r))) => (f, r),
            _ => {
                // One statement: this runs on every authenticated request
                // whose principal this node has not cached.
                let ticket = self.cache.ticket();
                let c = conn(&self.pool).await?;
                let r = row_opt(
                    &c,
                    "SELECT (SELECT role FROM users WHERE id = $1 AND org_id = $2) AS role,
                        a.token_generation, a.is_active, a.expires_at,
                        coalesce((a.extra::jsonb -> 'intents_api_enabled') IN ('true'::jsonb, '1'::jsonb), false) AS intents,
                        EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $3) AS revoked
                     FROM (SELECT 1) one LEFT JOIN agents a ON a.id = $1 AND a.org_id = $2",
                    &[&subject.id_string(), &org, &jti],
                )
                .await?
                .ok_or_else(|| corrupt("principal status: no row"))?;
                let generation: Option<i64> = get(&r, "token_generation")?;
                let facts = PrincipalFacts {
                    role: get(&r, "role")?,
                    agent: match generation {
                        Some(g) => Some((
                            g,
                            get(&r, "is_active")?,
                            get(&r, "expires_at")?,
                            get(&r, "intents")?,
                        )),
                        None => None,
                    },
                };
                let revoked: bool = get(&r, "revoked")?;
                self.cache
                    .put_principal(&ticket, org.clone(), *subject, facts.clone());
                if let Some(j) = jti {
                    self.cache.put_revoked(&ticket, j.to_owned(), revoked);
                }
                (facts, revoked)
            }
        };
        let role = facts
            .role
            .as_deref()
            .map(str::parse::<Role>)
            .transpose()
            .map_err(|_| corrupt("users.role"))?;
        // An agent counts while active and unexpired, now.
        let now = to_micros(now());
        let agent = facts
            .agent
            .filter(|(_, active, expires, _)| *active && expires.is_none_or(|e| e > now));
        let (active, role) = match subject {
            Subject::User(_) => (role.is_some(), role),
            Subject::Agent(_) => (agent.is_some(), None),
        };
        Ok(PrincipalStatus {
            active,
            role,
            revoked,
            token_generation: u32::try_from(agent.map_or(0, |(g, ..)| g))
                .map_err(|_| corrupt("agents.token_generation"))?,
            intents_api: agent.is_some_and(|(.., intents)| intents),
        })
    }

    async fn revoke_token(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let a = IntakeRecord::new(audit);
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        exec(
            &tx,
            "DELETE FROM revoked_tokens WHERE expires_at < $1",
            &[&to_micros(now())],
        )
        .await?;
        exec(
            &tx,
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
            &[&jti, &to_micros(expires_at)],
        )
        .await?;
        self.finish_changing(tx, true, Some(&a), &[Change::Token(jti.to_owned())])
            .await
            .map(drop)
    }

    async fn create_agent(&self, ag: &AgentRow, audit: &AuditRecord) -> StoreResult<()> {
        let a = IntakeRecord::new(audit);
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        exec(
            &tx,
            "INSERT INTO agents (id, org_id, name, description, auth_method, scopes, vault_ids, token_ttl_seconds,
                expires_at, api_key_expires_at, is_active, key_prefix, key_hash, ssh_public_key, ecdh_public_key,
                extra, token_generation, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
            &[
                &ag.id.to_string(),
                &ag.org_id.to_string(),
                &ag.name,
                &ag.description,
                &ag.auth_method,
                &to_json_text(&ag.scopes),
                &to_json_text(&ag.vault_ids),
                &ag.token_ttl_seconds,
                &ag.expires_at.map(to_micros),
                &ag.api_key_expires_at.map(to_micros),
                &ag.is_active,
                &ag.key_prefix,
                &ag.key_hash,
                &ag.ssh_public_key,
                &ag.ecdh_public_key,
                &ag.extra.to_string(),
                &i64::from(ag.token_generation),
                &ag.created_by.to_string(),
                &to_micros(ag.created_at),
                &to_micros(ag.updated_at),
            ],
        )
        .await?;
        self.finish(tx, &a).await
    }

    async fn agent(&self, id: AgentId) -> StoreResult<Option<AgentRow>> {
        self.opt("SELECT * FROM agents WHERE id = $1", &[&id.to_string()])
            .await
    }

    async fn agent_by_key_prefix(&self, prefix: &str) -> StoreResult<Option<AgentRow>> {
        self.opt("SELECT * FROM agents WHERE key_prefix = $1", &[&prefix])
            .await
    }

    async fn list_agents(&self, org: OrgId) -> StoreResult<Vec<AgentRow>> {
        self.all(
            "SELECT * FROM agents WHERE org_id = $1 ORDER BY created_at, id",
            &[&org.to_string()],
        )
        .await
    }

    async fn update_agent(&self, ag: &AgentRow, audit: &AuditRecord) -> StoreResult<bool> {
        let a = IntakeRecord::new(audit);
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        // `id` is the primary key: the update changes one row or none. The
        // token generation only moves forward, whichever node wrote last.
        let n = exec(
            &tx,
            "UPDATE agents SET name = $1, description = $2, scopes = $3, vault_ids = $4, token_ttl_seconds = $5,
                expires_at = $6, api_key_expires_at = $7, is_active = $8, key_prefix = $9, key_hash = $10,
                ssh_public_key = $11, ecdh_public_key = $12, extra = $13, updated_at = $14,
                token_generation = GREATEST(token_generation, $15)
             WHERE id = $16 AND org_id = $17",
            &[
                &ag.name,
                &ag.description,
                &to_json_text(&ag.scopes),
                &to_json_text(&ag.vault_ids),
                &ag.token_ttl_seconds,
                &ag.expires_at.map(to_micros),
                &ag.api_key_expires_at.map(to_micros),
                &ag.is_active,
                &ag.key_prefix,
                &ag.key_hash,
                &ag.ssh_public_key,
                &ag.ecdh_public_key,
                &ag.extra.to_string(),
                &to_micros(ag.updated_at),
                &i64::from(ag.token_generation),
                &ag.id.to_string(),
                &ag.org_id.to_string(),
            ],
        )
        .await?;
        self.finish_changing(
            tx,
            n == 1,
            Some(&a),
            &[Change::Principal(Subject::Agent(ag.id))],
        )
        .await
    }

    async fn create_api_key(&self, k: &ApiKeyRow, audit: &AuditRecord) -> StoreResult<()> {
        let a = IntakeRecord::new(audit);
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        exec(
            &tx,
            "INSERT INTO api_keys (id, user_id, org_id, name, key_prefix, key_hash, scopes, is_active, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &k.id.to_string(),
                &k.user_id.to_string(),
                &k.org_id.to_string(),
                &k.name,
                &k.key_prefix,
                &k.key_hash,
                &to_json_text(&k.scopes),
                &k.is_active,
                &to_micros(k.created_at),
                &k.expires_at.map(to_micros),
            ],
        )
        .await?;
        self.finish(tx, &a).await
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> StoreResult<Option<ApiKeyRow>> {
        self.opt("SELECT * FROM api_keys WHERE key_prefix = $1", &[&prefix])
            .await
    }

    async fn list_api_keys(&self, user: UserId) -> StoreResult<Vec<ApiKeyRow>> {
        self.all(
            "SELECT * FROM api_keys WHERE user_id = $1 ORDER BY created_at, id",
            &[&user.to_string()],
        )
        .await
    }

    async fn revoke_api_key(
        &self,
        user: UserId,
        id: ApiKeyId,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let a = IntakeRecord::new(audit);
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = exec(
            &tx,
            "UPDATE api_keys SET is_active = false WHERE id = $1 AND user_id = $2",
            &[&id.to_string(), &user.to_string()],
        )
        .await?;
        self.finish_if(tx, n == 1, &a).await
    }
}
