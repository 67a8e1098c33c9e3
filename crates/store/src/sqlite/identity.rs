//! SQLite: users, invitations, agents, API keys, policies, revoked tokens, settings.

use std::str::FromStr;

use rusqlite::{Connection, Row, params};
use strongroom_core::audit::AuditRecord;
use strongroom_core::policy::{Conditions, Effect, PathPattern, Permission, Policy};
use strongroom_core::time_util::{from_micros, now, to_micros};
use strongroom_core::{OrgId, Role, Subject, UserId, VaultId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::db::{PreparedAudit, Tx, exec, get, query_all, query_i64, query_opt};
use super::{SqliteStore, json, parse, user_row};
use crate::*;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn opt_time(r: &Row<'_>, col: &str) -> StoreResult<Option<OffsetDateTime>> {
    Ok(get::<Option<i64>>(r, col)?.map(from_micros))
}

fn strings(r: &Row<'_>, col: &str) -> StoreResult<Vec<String>> {
    serde_json::from_value(json(r, col)?).map_err(|_| corrupt(col))
}

fn subject(r: &Row<'_>, col: &str) -> StoreResult<Subject> {
    parse(r, col)
}

fn agent_row(r: &Row<'_>) -> StoreResult<AgentRow> {
    let vault_ids = strings(r, "vault_ids")?
        .iter()
        .map(|v| {
            v.parse::<VaultId>()
                .map_err(|_| corrupt("agents.vault_ids"))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(AgentRow {
        id: parse(r, "id")?,
        org_id: parse(r, "org_id")?,
        name: get(r, "name")?,
        description: get(r, "description")?,
        auth_method: get(r, "auth_method")?,
        scopes: strings(r, "scopes")?,
        vault_ids,
        token_ttl_seconds: get(r, "token_ttl_seconds")?,
        expires_at: opt_time(r, "expires_at")?,
        api_key_expires_at: opt_time(r, "api_key_expires_at")?,
        is_active: get::<i64>(r, "is_active")? != 0,
        key_prefix: get(r, "key_prefix")?,
        key_hash: get(r, "key_hash")?,
        ssh_public_key: get(r, "ssh_public_key")?,
        ecdh_public_key: get(r, "ecdh_public_key")?,
        token_generation: u32::try_from(get::<i64>(r, "token_generation")?)
            .map_err(|_| corrupt("agents.token_generation"))?,
        extra: json(r, "extra")?,
        created_by: subject(r, "created_by")?,
        created_at: from_micros(get(r, "created_at")?),
        updated_at: from_micros(get(r, "updated_at")?),
    })
}

fn api_key_row(r: &Row<'_>) -> StoreResult<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: parse(r, "id")?,
        user_id: parse(r, "user_id")?,
        org_id: parse(r, "org_id")?,
        name: get(r, "name")?,
        key_prefix: get(r, "key_prefix")?,
        key_hash: get(r, "key_hash")?,
        scopes: strings(r, "scopes")?,
        is_active: get::<i64>(r, "is_active")? != 0,
        created_at: from_micros(get(r, "created_at")?),
        expires_at: opt_time(r, "expires_at")?,
    })
}

fn policy_core(r: &Row<'_>) -> StoreResult<Policy> {
    let kind: String = get(r, "principal_type")?;
    let pid: String = get(r, "principal_id")?;
    let principal =
        Subject::from_str(&format!("{kind}:{pid}")).map_err(|_| corrupt("policies.principal"))?;
    let pattern: String = get(r, "secret_path_pattern")?;
    let effect: String = get(r, "effect")?;
    Ok(Policy {
        id: parse(r, "id")?,
        vault_id: parse(r, "vault_id")?,
        pattern: PathPattern::parse(&pattern)
            .map_err(|_| corrupt("policies.secret_path_pattern"))?,
        principal,
        permissions: Permission::parse_list(&strings(r, "permissions")?)
            .map_err(|_| corrupt("policies.permissions"))?,
        conditions: Conditions::from_json(&json(r, "conditions")?)
            .map_err(|_| corrupt("policies.conditions"))?,
        expires_at: opt_time(r, "expires_at")?,
        effect: Effect::from_str(&effect).map_err(|_| corrupt("policies.effect"))?,
        priority: get::<i64>(r, "priority")? as i32,
    })
}

fn policy_row(r: &Row<'_>) -> StoreResult<PolicyRow> {
    Ok(PolicyRow {
        policy: policy_core(r)?,
        extra: json(r, "extra")?,
        created_by: subject(r, "created_by")?,
        created_at: from_micros(get(r, "created_at")?),
        updated_at: from_micros(get(r, "updated_at")?),
    })
}

fn invitation_row(r: &Row<'_>) -> StoreResult<InvitationRow> {
    let role: String = get(r, "role")?;
    Ok(InvitationRow {
        org_id: parse(r, "org_id")?,
        email: get(r, "email")?,
        role: Role::from_str(&role).map_err(|_| corrupt("invitations.role"))?,
        invited_by: parse(r, "invited_by")?,
        token_hash: get(r, "token_hash")?,
        created_at: from_micros(get(r, "created_at")?),
        expires_at: from_micros(get(r, "expires_at")?),
    })
}

fn to_json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializable")
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

impl SqliteStore {
    pub(super) async fn accept_invitation_impl(
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
                super::insert_user(tx, &user)?;
                tx.audit(audit)
            })
            .await
    }

    pub(super) async fn invitations_impl(&self, email: &str) -> StoreResult<Vec<InvitationRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM invitations WHERE email = ? ORDER BY created_at, org_id",
                [email],
                invitation_row,
            )
        })
    }

    pub(super) async fn put_invitation_impl(
        &self,
        inv: &InvitationRow,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
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

    pub(super) async fn list_users_impl(&self, org: OrgId) -> StoreResult<Vec<UserRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM users WHERE org_id = ? ORDER BY created_at, id",
                [org.to_string()],
                user_row,
            )
        })
    }

    pub(super) async fn set_user_role_impl(
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

    pub(super) async fn delete_user_impl(
        &self,
        user: UserId,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
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

    pub(super) async fn principal_status_impl(
        &self,
        org: OrgId,
        subject: &Subject,
        jti: Option<&str>,
    ) -> StoreResult<PrincipalStatus> {
        let (role, agent, revoked) = self.db.read(|c| {
            let role = match subject {
                Subject::User(_) => query_opt(
                    c,
                    "SELECT role FROM users WHERE id = ? AND org_id = ?",
                    params![subject.id_string(), org.to_string()],
                    |r| get::<String>(r, "role"),
                )?,
                Subject::Agent(_) => None,
            };
            let agent = match subject {
                Subject::Agent(_) => query_opt(
                    c,
                    "SELECT token_generation,
                        coalesce(json_extract(extra, '$.intents_api_enabled'), 0) IS 1 AS intents
                     FROM agents WHERE id = ? AND org_id = ? AND is_active = 1
                        AND (expires_at IS NULL OR expires_at > ?)",
                    params![subject.id_string(), org.to_string(), to_micros(now())],
                    |r| {
                        Ok((
                            get::<i64>(r, "token_generation")?,
                            get::<bool>(r, "intents")?,
                        ))
                    },
                )?,
                Subject::User(_) => None,
            };
            let revoked = match jti {
                Some(j) => query_opt(c, "SELECT 1 FROM revoked_tokens WHERE jti = ?", [j], |_| {
                    Ok(())
                })?
                .is_some(),
                None => false,
            };
            Ok((role, agent, revoked))
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

    pub(super) async fn revoke_token_impl(
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

    pub(super) async fn create_agent_impl(
        &self,
        a: &AgentRow,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
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

    pub(super) async fn agent_where(
        &self,
        col: &'static str,
        v: &str,
    ) -> StoreResult<Option<AgentRow>> {
        let sql = match col {
            "id" => "SELECT * FROM agents WHERE id = ?",
            _ => "SELECT * FROM agents WHERE key_prefix = ?",
        };
        self.db.read(|c| query_opt(c, sql, [v], agent_row))
    }

    pub(super) async fn list_agents_impl(&self, org: OrgId) -> StoreResult<Vec<AgentRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM agents WHERE org_id = ? ORDER BY created_at, id",
                [org.to_string()],
                agent_row,
            )
        })
    }

    pub(super) async fn update_agent_impl(
        &self,
        a: &AgentRow,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
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

    pub(super) async fn create_api_key_impl(
        &self,
        k: &ApiKeyRow,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
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

    pub(super) async fn api_key_by_prefix_impl(
        &self,
        prefix: &str,
    ) -> StoreResult<Option<ApiKeyRow>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM api_keys WHERE key_prefix = ?",
                [prefix],
                api_key_row,
            )
        })
    }

    pub(super) async fn list_api_keys_impl(&self, user: UserId) -> StoreResult<Vec<ApiKeyRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at, id",
                [user.to_string()],
                api_key_row,
            )
        })
    }

    pub(super) async fn revoke_api_key_impl(
        &self,
        user: UserId,
        id: Uuid,
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

    pub(super) async fn create_policy_impl(
        &self,
        row: &PolicyRow,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let row = row.clone();
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                let p = &row.policy;
                exec(
                    tx,
                    "INSERT INTO policies (id, vault_id, secret_path_pattern, principal_type, principal_id, permissions, conditions,
                expires_at, effect, priority, extra, created_by, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        p.id.to_string(),
                        p.vault_id.to_string(),
                        p.pattern.as_str(),
                        p.principal.kind(),
                        p.principal.id_string(),
                        to_json_text(&p.permissions.iter().map(|x| x.as_str()).collect::<Vec<_>>()),
                        p.conditions.to_json().to_string(),
                        p.expires_at.map(to_micros),
                        p.effect.as_str(),
                        p.priority as i64,
                        row.extra.to_string(),
                        row.created_by.to_string(),
                        to_micros(row.created_at),
                        to_micros(row.updated_at),
                    ],
                )?;
                tx.audit(audit)
            })
            .await
    }

    pub(super) async fn policy_impl(&self, id: Uuid) -> StoreResult<Option<PolicyRow>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT * FROM policies WHERE id = ?",
                [id.to_string()],
                policy_row,
            )
        })
    }

    pub(super) async fn list_policies_impl(&self, vault: VaultId) -> StoreResult<Vec<PolicyRow>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM policies WHERE vault_id = ? ORDER BY created_at, id",
                [vault.to_string()],
                policy_row,
            )
        })
    }

    pub(super) async fn policies_for_impl(
        &self,
        vault: VaultId,
        who: &Subject,
    ) -> StoreResult<Vec<Policy>> {
        self.db.read(|c| {
            query_all(
                c,
                "SELECT * FROM policies WHERE vault_id = ? AND principal_type = ? AND principal_id = ?",
                params![vault.to_string(), who.kind(), who.id_string()],
                policy_core,
            )
        })
    }

    pub(super) async fn update_policy_impl(
        &self,
        row: &PolicyRow,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let row = row.clone();
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                let p = &row.policy;
                // `id` is the primary key: the update changes one row or none.
                let n = exec(
                    tx,
                    "UPDATE policies SET permissions = ?, conditions = ?, expires_at = ?, effect = ?, priority = ?, extra = ?, updated_at = ?
             WHERE id = ? AND vault_id = ?",
                    params![
                        to_json_text(&p.permissions.iter().map(|x| x.as_str()).collect::<Vec<_>>()),
                        p.conditions.to_json().to_string(),
                        p.expires_at.map(to_micros),
                        p.effect.as_str(),
                        p.priority as i64,
                        row.extra.to_string(),
                        to_micros(row.updated_at),
                        p.id.to_string(),
                        p.vault_id.to_string(),
                    ],
                )?;
                tx.audit_if(n == 1, audit)
            })
            .await
    }

    pub(super) async fn delete_policy_impl(
        &self,
        id: Uuid,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let audit = PreparedAudit::new(audit);
        self.db
            .write(move |tx: &mut Tx<'_>| {
                // `id` is the primary key: the delete removes one row or none.
                let n = exec(tx, "DELETE FROM policies WHERE id = ?", [id.to_string()])?;
                tx.audit_if(n == 1, audit)
            })
            .await
    }

    pub(super) async fn setting_impl(&self, name: &str) -> StoreResult<Option<String>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT value FROM settings WHERE name = ?",
                [name],
                |r| get(r, "value"),
            )
        })
    }

    pub(super) async fn init_setting_impl(&self, name: &str, value: &str) -> StoreResult<String> {
        let name = name.to_owned();
        let value = value.to_owned();
        self.db
            .write(move |tx: &mut Tx<'_>| {
                exec(
                    tx,
                    "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                    params![name, value],
                )?;
                query_opt(tx, "SELECT value FROM settings WHERE name = ?", [&name], |r| {
                    get::<String>(r, "value")
                })?
                .ok_or_else(|| corrupt("settings: the value just written is missing"))
            })
            .await
    }
}
