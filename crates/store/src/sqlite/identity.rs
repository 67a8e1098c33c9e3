//! SQLite: [`IdentityStore`] — organisations, users (an organisation always
//! keeps an owner), invitations, revoked tokens, agents and personal API keys.

use std::str::FromStr;

use async_trait::async_trait;
use rusqlite::{Connection, params};
use strongroom_core::audit::AuditRecord;
use strongroom_core::time_util::{now, to_micros};
use strongroom_core::{AgentId, ApiKeyId, OrgId, Role, Subject, UserId};
use time::OffsetDateTime;

use super::SqliteStore;
use super::db::{PreparedAudit, Tx, exec, get, query_all, query_i64, query_opt};
use super::rows::{FromRow, corrupt, to_json_text};
use crate::*;

fn insert_user(c: &Connection, u: &UserRow) -> StoreResult<()> {
    exec(
        c,
        "INSERT INTO users (id, org_id, email, display_name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![
            u.id.to_string(),
            u.org_id.to_string(),
            u.email,
            u.display_name,
            u.password_hash,
            u.role.as_str(),
            to_micros(u.created_at)
        ],
    )?;
    Ok(())
}

/// Owners of an org other than `except`, inside a transaction.
fn other_owners(c: &Connection, org: &str, except: &str) -> StoreResult<i64> {
    query_i64(
        c,
        "SELECT COUNT(*) FROM users WHERE org_id = ? AND role = 'owner' AND id <> ?",
        params![org, except],
    )
}

/// A user's organisation and role, inside a transaction.
fn org_and_role(c: &Connection, id: &str) -> StoreResult<Option<(String, String)>> {
    query_opt(
        c,
        "SELECT org_id, role FROM users WHERE id = ?",
        [id],
        |r| Ok((get(r, "org_id")?, get(r, "role")?)),
    )
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn create_org_with_owner(
        &self,
        org: &OrgRow,
        owner: &UserRow,
        gate: SignupGate,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let (org, owner, audit) = (org.clone(), owner.clone(), PreparedAudit::new(audit));
        self.db
            .write(move |tx| {
                if gate == SignupGate::FirstOnly
                    && query_opt(tx, "SELECT 1 FROM users LIMIT 1", [], |_| Ok(()))?.is_some()
                {
                    return Err(StoreError::Conflict("signup is closed".into()));
                }
                exec(
                    tx,
                    "INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)",
                    params![org.id.to_string(), org.name, to_micros(org.created_at)],
                )?;
                insert_user(tx, &owner)?;
                tx.audit(audit)
            })
            .await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM users WHERE email = ?",
                [email],
                UserRow::from_row,
            )
        })
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRow>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM users WHERE id = ?",
                [id.to_string()],
                UserRow::from_row,
            )
        })
    }

    async fn accept_invitation(
        &self,
        user: &UserRow,
        token_hash: &[u8],
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let user = user.clone();
        let token_hash = token_hash.to_vec();
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                // Consumed only if it is this organisation's, for this email,
                // with this token and role, and still valid. A failure below
                // (the email taken meanwhile) rolls the delete back too.
                let n = exec(
                    tx,
                    "DELETE FROM invitations
                     WHERE org_id = ? AND email = ? AND token_hash = ? AND role = ? AND expires_at > ?",
                    params![
                        user.org_id.to_string(),
                        user.email,
                        token_hash,
                        user.role.as_str(),
                        to_micros(now()),
                    ],
                )?;
                if n != 1 {
                    return Err(StoreError::Conflict("no such invitation".into()));
                }
                insert_user(tx, &user)?;
                tx.audit(audit)
            })
            .await
    }

    async fn invitations(&self, email: &str) -> StoreResult<Vec<InvitationRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM invitations WHERE email = ? ORDER BY created_at, org_id",
                [email],
                InvitationRow::from_row,
            )
        })
    }

    async fn put_invitation(&self, inv: &InvitationRow, audit: &AuditRecord) -> StoreResult<()> {
        let inv = inv.clone();
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                exec(
                    tx,
                    "DELETE FROM invitations WHERE expires_at <= ?",
                    [to_micros(now())],
                )?;
                exec(
                    tx,
                    "INSERT INTO invitations (org_id, email, role, invited_by, token_hash, created_at, expires_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (org_id, email) DO UPDATE SET role = excluded.role,
                       invited_by = excluded.invited_by, token_hash = excluded.token_hash,
                       created_at = excluded.created_at, expires_at = excluded.expires_at",
                    params![
                        inv.org_id.to_string(),
                        inv.email,
                        inv.role.as_str(),
                        inv.invited_by.to_string(),
                        inv.token_hash,
                        to_micros(inv.created_at),
                        to_micros(inv.expires_at),
                    ],
                )?;
                tx.audit(audit)
            })
            .await
    }

    async fn list_users(&self, org: OrgId) -> StoreResult<Vec<UserRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM users WHERE org_id = ? ORDER BY created_at, id",
                [org.to_string()],
                UserRow::from_row,
            )
        })
    }

    async fn set_user_role(
        &self,
        user: UserId,
        role: Role,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                let id = user.to_string();
                let Some((org, current)) = org_and_role(tx, &id)? else {
                    return Ok(false);
                };
                if current == "owner" && role != Role::Owner && other_owners(tx, &org, &id)? == 0 {
                    return Err(StoreError::Conflict(
                        "an organisation must keep at least one owner".into(),
                    ));
                }
                exec(
                    tx,
                    "UPDATE users SET role = ? WHERE id = ?",
                    params![role.as_str(), id],
                )?;
                tx.audit(audit)?;
                Ok(true)
            })
            .await
    }

    async fn delete_user(&self, user: UserId, audit: &AuditRecord) -> StoreResult<bool> {
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                let id = user.to_string();
                let Some((org, role)) = org_and_role(tx, &id)? else {
                    return Ok(false);
                };
                if role == "owner" && other_owners(tx, &org, &id)? == 0 {
                    return Err(StoreError::Conflict(
                        "an organisation must keep at least one owner".into(),
                    ));
                }
                for sql in [
                    "DELETE FROM api_keys WHERE user_id = ?",
                    "DELETE FROM policies WHERE principal_type = 'user' AND principal_id = ?",
                    "DELETE FROM users WHERE id = ?",
                ] {
                    exec(tx, sql, [&id])?;
                }
                tx.audit(audit)?;
                Ok(true)
            })
            .await
    }

    async fn principal_status(
        &self,
        org: OrgId,
        subject: &Subject,
        jti: Option<&str>,
    ) -> StoreResult<PrincipalStatus> {
        // One statement: this runs on every authenticated request.
        let (role, agent, revoked) = self.db.read(|c| {
            query_opt(
                c,
                "SELECT (SELECT role FROM users WHERE id = ?1 AND org_id = ?2) AS role,
                    a.token_generation,
                    coalesce(json_extract(a.extra, '$.intents_api_enabled'), 0) IS 1 AS intents,
                    EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?3) AS revoked
                 FROM (SELECT 1) LEFT JOIN agents a ON a.id = ?1 AND a.org_id = ?2
                    AND a.is_active = 1 AND (a.expires_at IS NULL OR a.expires_at > ?4)",
                params![subject.id_string(), org.to_string(), jti, to_micros(now())],
                |r| {
                    let generation: Option<i64> = get(r, "token_generation")?;
                    let intents: bool = get(r, "intents")?;
                    Ok((
                        get::<Option<String>>(r, "role")?,
                        generation.map(|g| (g, intents)),
                        get::<i64>(r, "revoked")? != 0,
                    ))
                },
            )?
            .ok_or_else(|| corrupt("principal status: no row"))
        })?;
        let (active, role) = match subject {
            Subject::User(_) => (
                role.is_some(),
                role.as_deref()
                    .map(Role::from_str)
                    .transpose()
                    .map_err(|_| corrupt("users.role"))?,
            ),
            Subject::Agent(_) => (agent.is_some(), None),
        };
        let (generation, intents_api) = agent.unwrap_or_default();
        Ok(PrincipalStatus {
            active,
            role,
            revoked,
            token_generation: u32::try_from(generation)
                .map_err(|_| corrupt("agents.token_generation"))?,
            intents_api,
        })
    }

    async fn revoke_token(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let jti = jti.to_owned();
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                exec(
                    tx,
                    "DELETE FROM revoked_tokens WHERE expires_at < ?",
                    [to_micros(now())],
                )?;
                exec(
                    tx,
                    "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING",
                    params![jti, to_micros(expires_at)],
                )?;
                tx.audit(audit)
            })
            .await
    }

    async fn create_agent(&self, a: &AgentRow, audit: &AuditRecord) -> StoreResult<()> {
        let a = a.clone();
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                exec(
                    tx,
                    "INSERT INTO agents (id, org_id, name, description, auth_method, scopes, vault_ids, token_ttl_seconds, expires_at,
                api_key_expires_at, is_active, key_prefix, key_hash, ssh_public_key, ecdh_public_key, extra, created_by, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        a.id.to_string(),
                        a.org_id.to_string(),
                        a.name,
                        a.description,
                        a.auth_method,
                        to_json_text(&a.scopes),
                        to_json_text(&a.vault_ids),
                        a.token_ttl_seconds,
                        a.expires_at.map(to_micros),
                        a.api_key_expires_at.map(to_micros),
                        a.is_active as i64,
                        a.key_prefix,
                        a.key_hash,
                        a.ssh_public_key,
                        a.ecdh_public_key,
                        a.extra.to_string(),
                        a.created_by.to_string(),
                        to_micros(a.created_at),
                        to_micros(a.updated_at),
                    ],
                )?;
                tx.audit(audit)
            })
            .await
    }

    async fn agent(&self, id: AgentId) -> StoreResult<Option<AgentRow>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM agents WHERE id = ?",
                [id.to_string()],
                AgentRow::from_row,
            )
        })
    }

    async fn agent_by_key_prefix(&self, prefix: &str) -> StoreResult<Option<AgentRow>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM agents WHERE key_prefix = ?",
                [prefix],
                AgentRow::from_row,
            )
        })
    }

    async fn list_agents(&self, org: OrgId) -> StoreResult<Vec<AgentRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM agents WHERE org_id = ? ORDER BY created_at, id",
                [org.to_string()],
                AgentRow::from_row,
            )
        })
    }

    async fn update_agent(&self, a: &AgentRow, audit: &AuditRecord) -> StoreResult<bool> {
        let a = a.clone();
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                // `id` is the primary key: the update changes one row or none.
                let n = exec(
                    tx,
                    "UPDATE agents SET name = ?, description = ?, scopes = ?, vault_ids = ?, token_ttl_seconds = ?, expires_at = ?,
                api_key_expires_at = ?, is_active = ?, key_prefix = ?, key_hash = ?, ssh_public_key = ?, ecdh_public_key = ?,
                extra = ?, updated_at = ?, token_generation = MAX(token_generation, ?)
             WHERE id = ? AND org_id = ?",
                    params![
                        a.name,
                        a.description,
                        to_json_text(&a.scopes),
                        to_json_text(&a.vault_ids),
                        a.token_ttl_seconds,
                        a.expires_at.map(to_micros),
                        a.api_key_expires_at.map(to_micros),
                        a.is_active as i64,
                        a.key_prefix,
                        a.key_hash,
                        a.ssh_public_key,
                        a.ecdh_public_key,
                        a.extra.to_string(),
                        to_micros(a.updated_at),
                        i64::from(a.token_generation),
                        a.id.to_string(),
                        a.org_id.to_string(),
                    ],
                )?;
                tx.audit_if(n == 1, audit)
            })
            .await
    }

    async fn create_api_key(&self, k: &ApiKeyRow, audit: &AuditRecord) -> StoreResult<()> {
        let k = k.clone();
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                exec(
                    tx,
                    "INSERT INTO api_keys (id, user_id, org_id, name, key_prefix, key_hash, scopes, is_active, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        k.id.to_string(),
                        k.user_id.to_string(),
                        k.org_id.to_string(),
                        k.name,
                        k.key_prefix,
                        k.key_hash,
                        to_json_text(&k.scopes),
                        k.is_active as i64,
                        to_micros(k.created_at),
                        k.expires_at.map(to_micros),
                    ],
                )?;
                tx.audit(audit)
            })
            .await
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> StoreResult<Option<ApiKeyRow>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM api_keys WHERE key_prefix = ?",
                [prefix],
                ApiKeyRow::from_row,
            )
        })
    }

    async fn list_api_keys(&self, user: UserId) -> StoreResult<Vec<ApiKeyRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at, id",
                [user.to_string()],
                ApiKeyRow::from_row,
            )
        })
    }

    async fn revoke_api_key(
        &self,
        user: UserId,
        id: ApiKeyId,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                // `id` is the primary key: the update changes one row or none.
                let n = exec(
                    tx,
                    "UPDATE api_keys SET is_active = 0 WHERE id = ? AND user_id = ?",
                    params![id.to_string(), user.to_string()],
                )?;
                tx.audit_if(n == 1, audit)
            })
            .await
    }
}
