//! SQLite: users, invitations, agents, API keys, policies, revoked tokens, settings.

use std::str::FromStr;

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use strongroom_core::audit::AuditRecord;
use strongroom_core::policy::{Conditions, Effect, PathPattern, Permission, Policy};
use strongroom_core::time_util::{from_micros, now, to_micros};
use strongroom_core::{OrgId, Role, Subject, UserId, VaultId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, json, map_err, parse, user_row};
use crate::*;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn opt_time(r: &SqliteRow, col: &str) -> StoreResult<Option<OffsetDateTime>> {
    Ok(r.try_get::<Option<i64>, _>(col)
        .map_err(map_err)?
        .map(from_micros))
}

fn strings(r: &SqliteRow, col: &str) -> StoreResult<Vec<String>> {
    serde_json::from_value(json(r, col)?).map_err(|_| corrupt(col))
}

fn subject(r: &SqliteRow, col: &str) -> StoreResult<Subject> {
    parse(r, col)
}

fn agent_row(r: &SqliteRow) -> StoreResult<AgentRow> {
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
        name: r.try_get("name").map_err(map_err)?,
        description: r.try_get("description").map_err(map_err)?,
        auth_method: r.try_get("auth_method").map_err(map_err)?,
        scopes: strings(r, "scopes")?,
        vault_ids,
        token_ttl_seconds: r.try_get("token_ttl_seconds").map_err(map_err)?,
        expires_at: opt_time(r, "expires_at")?,
        api_key_expires_at: opt_time(r, "api_key_expires_at")?,
        is_active: r.try_get::<i64, _>("is_active").map_err(map_err)? != 0,
        key_prefix: r.try_get("key_prefix").map_err(map_err)?,
        key_hash: r.try_get("key_hash").map_err(map_err)?,
        ssh_public_key: r.try_get("ssh_public_key").map_err(map_err)?,
        ecdh_public_key: r.try_get("ecdh_public_key").map_err(map_err)?,
        extra: json(r, "extra")?,
        created_by: subject(r, "created_by")?,
        created_at: from_micros(r.try_get("created_at").map_err(map_err)?),
        updated_at: from_micros(r.try_get("updated_at").map_err(map_err)?),
    })
}

fn api_key_row(r: &SqliteRow) -> StoreResult<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: parse(r, "id")?,
        user_id: parse(r, "user_id")?,
        org_id: parse(r, "org_id")?,
        name: r.try_get("name").map_err(map_err)?,
        key_prefix: r.try_get("key_prefix").map_err(map_err)?,
        key_hash: r.try_get("key_hash").map_err(map_err)?,
        scopes: strings(r, "scopes")?,
        is_active: r.try_get::<i64, _>("is_active").map_err(map_err)? != 0,
        created_at: from_micros(r.try_get("created_at").map_err(map_err)?),
        expires_at: opt_time(r, "expires_at")?,
    })
}

fn policy_core(r: &SqliteRow) -> StoreResult<Policy> {
    let kind: String = r.try_get("principal_type").map_err(map_err)?;
    let pid: String = r.try_get("principal_id").map_err(map_err)?;
    let principal =
        Subject::from_str(&format!("{kind}:{pid}")).map_err(|_| corrupt("policies.principal"))?;
    let pattern: String = r.try_get("secret_path_pattern").map_err(map_err)?;
    let effect: String = r.try_get("effect").map_err(map_err)?;
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
        priority: r.try_get::<i64, _>("priority").map_err(map_err)? as i32,
    })
}

fn policy_row(r: &SqliteRow) -> StoreResult<PolicyRow> {
    Ok(PolicyRow {
        policy: policy_core(r)?,
        extra: json(r, "extra")?,
        created_by: subject(r, "created_by")?,
        created_at: from_micros(r.try_get("created_at").map_err(map_err)?),
        updated_at: from_micros(r.try_get("updated_at").map_err(map_err)?),
    })
}

fn to_json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializable")
}

/// Owners of an org other than `except`, inside a transaction.
async fn other_owners(
    tx: &mut Transaction<'static, Sqlite>,
    org: &str,
    except: &str,
) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE org_id = ? AND role = 'owner' AND id <> ?")
        .bind(org)
        .bind(except)
        .fetch_one(&mut **tx)
        .await
        .map_err(map_err)
}

impl SqliteStore {
    pub(super) async fn accept_invitation_impl(
        &self,
        user: &UserRow,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        let inv = sqlx::query("SELECT org_id, role FROM invitations WHERE email = ?")
            .bind(&user.email)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
            .ok_or_else(|| StoreError::Conflict("no invitation".into()))?;
        let org: String = inv.try_get("org_id").map_err(map_err)?;
        let role: String = inv.try_get("role").map_err(map_err)?;
        if org != user.org_id.to_string() || role != user.role.as_str() {
            return Err(StoreError::Conflict(
                "the invitation is for another organisation or role".into(),
            ));
        }
        sqlx::query("DELETE FROM invitations WHERE email = ?")
            .bind(&user.email)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO users (id, org_id, email, display_name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user.id.to_string())
        .bind(user.org_id.to_string())
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(to_micros(user.created_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await
    }

    pub(super) async fn invitation_impl(&self, email: &str) -> StoreResult<Option<InvitationRow>> {
        let r = sqlx::query("SELECT * FROM invitations WHERE email = ?")
            .bind(email)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?;
        r.map(|r| {
            let role: String = r.try_get("role").map_err(map_err)?;
            Ok(InvitationRow {
                email: r.try_get("email").map_err(map_err)?,
                org_id: parse(&r, "org_id")?,
                role: Role::from_str(&role).map_err(|_| corrupt("invitations.role"))?,
                invited_by: parse(&r, "invited_by")?,
                created_at: from_micros(r.try_get("created_at").map_err(map_err)?),
            })
        })
        .transpose()
    }

    pub(super) async fn put_invitation_impl(
        &self,
        inv: &InvitationRow,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE email = ?")
            .bind(&inv.email)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if taken.is_some() {
            return Err(StoreError::Conflict(
                "a user with this email already exists".into(),
            ));
        }
        sqlx::query(
            "INSERT INTO invitations (email, org_id, role, invited_by, created_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (email) DO UPDATE SET org_id = excluded.org_id, role = excluded.role,
               invited_by = excluded.invited_by, created_at = excluded.created_at",
        )
        .bind(&inv.email)
        .bind(inv.org_id.to_string())
        .bind(inv.role.as_str())
        .bind(inv.invited_by.to_string())
        .bind(to_micros(inv.created_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await
    }

    pub(super) async fn list_users_impl(&self, org: OrgId) -> StoreResult<Vec<UserRow>> {
        sqlx::query("SELECT * FROM users WHERE org_id = ? ORDER BY created_at, id")
            .bind(org.to_string())
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?
            .iter()
            .map(user_row)
            .collect()
    }

    pub(super) async fn set_user_role_impl(
        &self,
        user: UserId,
        role: Role,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.tx().await?;
        let id = user.to_string();
        let Some(row) = sqlx::query("SELECT org_id, role FROM users WHERE id = ?")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
        else {
            return Ok(false);
        };
        let org: String = row.try_get("org_id").map_err(map_err)?;
        let current: String = row.try_get("role").map_err(map_err)?;
        if current == "owner" && role != Role::Owner && other_owners(&mut tx, &org, &id).await? == 0
        {
            return Err(StoreError::Conflict(
                "an organisation must keep at least one owner".into(),
            ));
        }
        sqlx::query("UPDATE users SET role = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    pub(super) async fn delete_user_impl(
        &self,
        user: UserId,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.tx().await?;
        let id = user.to_string();
        let Some(row) = sqlx::query("SELECT org_id, role FROM users WHERE id = ?")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
        else {
            return Ok(false);
        };
        let org: String = row.try_get("org_id").map_err(map_err)?;
        let role: String = row.try_get("role").map_err(map_err)?;
        if role == "owner" && other_owners(&mut tx, &org, &id).await? == 0 {
            return Err(StoreError::Conflict(
                "an organisation must keep at least one owner".into(),
            ));
        }
        for sql in [
            "DELETE FROM api_keys WHERE user_id = ?",
            "DELETE FROM policies WHERE principal_type = 'user' AND principal_id = ?",
            "DELETE FROM users WHERE id = ?",
        ] {
            sqlx::query(sql)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    pub(super) async fn principal_status_impl(
        &self,
        org: OrgId,
        subject: &Subject,
        jti: Option<&str>,
    ) -> StoreResult<PrincipalStatus> {
        let r = sqlx::query(
            "SELECT (SELECT role FROM users WHERE id = ?1 AND org_id = ?2) AS role,
                    (SELECT 1 FROM agents WHERE id = ?1 AND org_id = ?2 AND is_active = 1
                        AND (expires_at IS NULL OR expires_at > ?4)) AS agent_active,
                    EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?3) AS revoked",
        )
        .bind(subject.id_string())
        .bind(org.to_string())
        .bind(jti)
        .bind(to_micros(now()))
        .fetch_one(&self.reader)
        .await
        .map_err(map_err)?;
        let role: Option<String> = r.try_get("role").map_err(map_err)?;
        let agent_active: Option<i64> = r.try_get("agent_active").map_err(map_err)?;
        let revoked: i64 = r.try_get("revoked").map_err(map_err)?;
        let (active, role) = match subject {
            Subject::User(_) => (
                role.is_some(),
                role.as_deref()
                    .map(Role::from_str)
                    .transpose()
                    .map_err(|_| corrupt("users.role"))?,
            ),
            Subject::Agent(_) => (agent_active.is_some(), None),
        };
        Ok(PrincipalStatus {
            active,
            role,
            revoked: revoked != 0,
        })
    }

    pub(super) async fn revoke_token_impl(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < ?")
            .bind(to_micros(now()))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(to_micros(expires_at))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await
    }

    pub(super) async fn create_agent_impl(
        &self,
        a: &AgentRow,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO agents (id, org_id, name, description, auth_method, scopes, vault_ids, token_ttl_seconds, expires_at,
                api_key_expires_at, is_active, key_prefix, key_hash, ssh_public_key, ecdh_public_key, extra, created_by, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(a.id.to_string())
        .bind(a.org_id.to_string())
        .bind(&a.name)
        .bind(&a.description)
        .bind(&a.auth_method)
        .bind(to_json_text(&a.scopes))
        .bind(to_json_text(&a.vault_ids))
        .bind(a.token_ttl_seconds)
        .bind(a.expires_at.map(to_micros))
        .bind(a.api_key_expires_at.map(to_micros))
        .bind(a.is_active as i64)
        .bind(&a.key_prefix)
        .bind(&a.key_hash)
        .bind(&a.ssh_public_key)
        .bind(&a.ecdh_public_key)
        .bind(a.extra.to_string())
        .bind(a.created_by.to_string())
        .bind(to_micros(a.created_at))
        .bind(to_micros(a.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await
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
        sqlx::query(sql)
            .bind(v)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(agent_row)
            .transpose()
    }

    pub(super) async fn list_agents_impl(&self, org: OrgId) -> StoreResult<Vec<AgentRow>> {
        sqlx::query("SELECT * FROM agents WHERE org_id = ? ORDER BY created_at, id")
            .bind(org.to_string())
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?
            .iter()
            .map(agent_row)
            .collect()
    }

    pub(super) async fn update_agent_impl(
        &self,
        a: &AgentRow,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.tx().await?;
        let n = sqlx::query(
            "UPDATE agents SET name = ?, description = ?, scopes = ?, vault_ids = ?, token_ttl_seconds = ?, expires_at = ?,
                api_key_expires_at = ?, is_active = ?, key_prefix = ?, key_hash = ?, ssh_public_key = ?, ecdh_public_key = ?,
                extra = ?, updated_at = ?
             WHERE id = ? AND org_id = ?",
        )
        .bind(&a.name)
        .bind(&a.description)
        .bind(to_json_text(&a.scopes))
        .bind(to_json_text(&a.vault_ids))
        .bind(a.token_ttl_seconds)
        .bind(a.expires_at.map(to_micros))
        .bind(a.api_key_expires_at.map(to_micros))
        .bind(a.is_active as i64)
        .bind(&a.key_prefix)
        .bind(&a.key_hash)
        .bind(&a.ssh_public_key)
        .bind(&a.ecdh_public_key)
        .bind(a.extra.to_string())
        .bind(to_micros(a.updated_at))
        .bind(a.id.to_string())
        .bind(a.org_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    pub(super) async fn create_api_key_impl(
        &self,
        k: &ApiKeyRow,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, org_id, name, key_prefix, key_hash, scopes, is_active, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(k.id.to_string())
        .bind(k.user_id.to_string())
        .bind(k.org_id.to_string())
        .bind(&k.name)
        .bind(&k.key_prefix)
        .bind(&k.key_hash)
        .bind(to_json_text(&k.scopes))
        .bind(k.is_active as i64)
        .bind(to_micros(k.created_at))
        .bind(k.expires_at.map(to_micros))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await
    }

    pub(super) async fn api_key_by_prefix_impl(
        &self,
        prefix: &str,
    ) -> StoreResult<Option<ApiKeyRow>> {
        sqlx::query("SELECT * FROM api_keys WHERE key_prefix = ?")
            .bind(prefix)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(api_key_row)
            .transpose()
    }

    pub(super) async fn list_api_keys_impl(&self, user: UserId) -> StoreResult<Vec<ApiKeyRow>> {
        sqlx::query("SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at, id")
            .bind(user.to_string())
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?
            .iter()
            .map(api_key_row)
            .collect()
    }

    pub(super) async fn revoke_api_key_impl(
        &self,
        user: UserId,
        id: Uuid,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.tx().await?;
        let n = sqlx::query("UPDATE api_keys SET is_active = 0 WHERE id = ? AND user_id = ?")
            .bind(id.to_string())
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    pub(super) async fn create_policy_impl(
        &self,
        row: &PolicyRow,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let p = &row.policy;
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO policies (id, vault_id, secret_path_pattern, principal_type, principal_id, permissions, conditions,
                expires_at, effect, priority, extra, created_by, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(p.id.to_string())
        .bind(p.vault_id.to_string())
        .bind(p.pattern.as_str())
        .bind(p.principal.kind())
        .bind(p.principal.id_string())
        .bind(to_json_text(&p.permissions.iter().map(|x| x.as_str()).collect::<Vec<_>>()))
        .bind(p.conditions.to_json().to_string())
        .bind(p.expires_at.map(to_micros))
        .bind(p.effect.as_str())
        .bind(p.priority as i64)
        .bind(row.extra.to_string())
        .bind(row.created_by.to_string())
        .bind(to_micros(row.created_at))
        .bind(to_micros(row.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await
    }

    pub(super) async fn policy_impl(&self, id: Uuid) -> StoreResult<Option<PolicyRow>> {
        sqlx::query("SELECT * FROM policies WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(policy_row)
            .transpose()
    }

    pub(super) async fn list_policies_impl(&self, vault: VaultId) -> StoreResult<Vec<PolicyRow>> {
        sqlx::query("SELECT * FROM policies WHERE vault_id = ? ORDER BY created_at, id")
            .bind(vault.to_string())
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?
            .iter()
            .map(policy_row)
            .collect()
    }

    pub(super) async fn policies_for_impl(
        &self,
        vault: VaultId,
        who: &Subject,
    ) -> StoreResult<Vec<Policy>> {
        sqlx::query(
            "SELECT * FROM policies WHERE vault_id = ? AND principal_type = ? AND principal_id = ?",
        )
        .bind(vault.to_string())
        .bind(who.kind())
        .bind(who.id_string())
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?
        .iter()
        .map(policy_core)
        .collect()
    }

    pub(super) async fn update_policy_impl(
        &self,
        row: &PolicyRow,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let p = &row.policy;
        let mut tx = self.tx().await?;
        let n = sqlx::query(
            "UPDATE policies SET permissions = ?, conditions = ?, expires_at = ?, effect = ?, priority = ?, extra = ?, updated_at = ?
             WHERE id = ? AND vault_id = ?",
        )
        .bind(to_json_text(&p.permissions.iter().map(|x| x.as_str()).collect::<Vec<_>>()))
        .bind(p.conditions.to_json().to_string())
        .bind(p.expires_at.map(to_micros))
        .bind(p.effect.as_str())
        .bind(p.priority as i64)
        .bind(row.extra.to_string())
        .bind(to_micros(row.updated_at))
        .bind(p.id.to_string())
        .bind(p.vault_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    pub(super) async fn delete_policy_impl(
        &self,
        id: Uuid,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.tx().await?;
        let n = sqlx::query("DELETE FROM policies WHERE id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        self.insert_audit(&mut tx, audit).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    pub(super) async fn setting_impl(&self, name: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)
    }

    pub(super) async fn init_setting_impl(&self, name: &str, value: &str) -> StoreResult<String> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let v: String = sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        self.commit(tx).await?;
        Ok(v)
    }
}
