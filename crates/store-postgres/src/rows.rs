//! Result rows to the store's types: one [`FromRow`] impl per type. A column
//! that does not hold what the schema says is `Corrupt`, naming the column,
//! never its value.

use std::str::FromStr;

use serde_json::Value;
use strongroom_core::audit::{ChainedEvent, Checkpoint};
use strongroom_core::policy::{Conditions, Effect, PathPattern, Permission, Policy};
use strongroom_core::time_util::from_micros;
use strongroom_core::{Role, SecretPath, Subject, VaultId};
use strongroom_store::*;
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::row::RowIndex;
use tokio_postgres::types::FromSql;

/// A type read from one result row, by column name.
pub(crate) trait FromRow: Sized {
    /// Maps the row; `Corrupt` if a column does not hold what the schema says.
    fn from_row(r: &Row) -> StoreResult<Self>;
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned().into())
}

/// A column, by name or position.
pub(crate) fn get<'a, T: FromSql<'a>, I: RowIndex + std::fmt::Display>(
    r: &'a Row,
    col: I,
) -> StoreResult<T> {
    r.try_get(&col)
        .map_err(|e| StoreError::Corrupt(Reason::because(format!("column {col}"), e)))
}

/// A text column parsed with `FromStr` (ids, subjects).
pub(crate) fn parse<T: FromStr>(r: &Row, col: &str) -> StoreResult<T> {
    get::<&str, _>(r, col)?
        .parse()
        .map_err(|_| corrupt(&format!("column {col}")))
}

fn json(r: &Row, col: &str) -> StoreResult<Value> {
    serde_json::from_str(get(r, col)?).map_err(|_| corrupt(&format!("column {col}")))
}

pub(crate) fn u32_col(r: &Row, col: &str) -> StoreResult<u32> {
    u32::try_from(get::<i64, _>(r, col)?).map_err(|_| corrupt(&format!("column {col}")))
}

fn time_col(r: &Row, col: &str) -> StoreResult<OffsetDateTime> {
    Ok(from_micros(get(r, col)?))
}

fn opt_time(r: &Row, col: &str) -> StoreResult<Option<OffsetDateTime>> {
    Ok(get::<Option<i64>, _>(r, col)?.map(from_micros))
}

fn strings(r: &Row, col: &str) -> StoreResult<Vec<String>> {
    serde_json::from_value(json(r, col)?).map_err(|_| corrupt(col))
}

fn path(r: &Row, col: &str) -> StoreResult<SecretPath> {
    SecretPath::parse(get(r, col)?).map_err(|_| corrupt("path"))
}

/// JSON text of a value stored in a JSON column.
pub(crate) fn to_json_text<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("serializable")
}

/// How a vault's creator is stored: the subject, or [`SYSTEM_CREATOR`] for
/// the server's own.
pub(crate) fn vault_creator(c: Option<Subject>) -> String {
    c.map_or_else(|| SYSTEM_CREATOR.to_owned(), |s| s.to_string())
}

const SYSTEM_CREATOR: &str = "system";

impl FromRow for ChainedEvent {
    fn from_row(r: &Row) -> StoreResult<Self> {
        Ok(ChainedEvent {
            seq: get::<i64, _>(r, "seq")? as u64,
            id: get(r, "id")?,
            org_id: get(r, "org_id")?,
            actor_type: get(r, "actor_type")?,
            actor_id: get(r, "actor_id")?,
            action: get(r, "action")?,
            resource_type: get(r, "resource_type")?,
            resource_id: get(r, "resource_id")?,
            details: json(r, "details")?,
            ip_address: get(r, "ip_address")?,
            created_at_us: get(r, "created_at")?,
            prev_event_id: get(r, "prev_event_id")?,
            integrity_hash: get(r, "integrity_hash")?,
        })
    }
}

impl FromRow for Checkpoint {
    fn from_row(r: &Row) -> StoreResult<Self> {
        Ok(Checkpoint {
            org_id: get(r, "org_id")?,
            seq: get::<i64, _>(r, "seq")? as u64,
            event_id: get(r, "event_id")?,
            head_hash: get(r, "head_hash")?,
            created_at_us: get(r, "created_at")?,
            kid: get(r, "kid")?,
            signature: get(r, "signature")?,
        })
    }
}

impl FromRow for AuditHead {
    fn from_row(r: &Row) -> StoreResult<Self> {
        Ok(AuditHead {
            org_id: get(r, "org_id")?,
            seq: get::<i64, _>(r, "seq")? as u64,
            event_id: get(r, "event_id")?,
            hash: get(r, "hash")?,
        })
    }
}

impl FromRow for UserRow {
    fn from_row(r: &Row) -> StoreResult<Self> {
        Ok(UserRow {
            id: parse(r, "id")?,
            org_id: parse(r, "org_id")?,
            email: get(r, "email")?,
            display_name: get(r, "display_name")?,
            password_hash: get(r, "password_hash")?,
            role: parse(r, "role")?,
            created_at: time_col(r, "created_at")?,
        })
    }
}

impl FromRow for VaultRow {
    fn from_row(r: &Row) -> StoreResult<Self> {
        let created_by = match get::<&str, _>(r, "created_by")? {
            SYSTEM_CREATOR => None,
            s => Some(Subject::from_str(s).map_err(|_| corrupt("vaults.created_by"))?),
        };
        Ok(VaultRow {
            id: parse(r, "id")?,
            org_id: parse(r, "org_id")?,
            name: get(r, "name")?,
            description: get(r, "description")?,
            kek_ref: KekRef(get(r, "kek_ref")?),
            kek_version: u32_col(r, "kek_version")?,
            kek_provider: get(r, "kek_provider")?,
            pending_kek_ref: get::<Option<String>, _>(r, "pending_kek_ref")?.map(KekRef),
            created_by,
            kind: VaultKind::parse(get(r, "kind")?).ok_or_else(|| corrupt("vaults.kind"))?,
            created_at: time_col(r, "created_at")?,
        })
    }
}

impl FromRow for SecretHead {
    fn from_row(r: &Row) -> StoreResult<Self> {
        Ok(SecretHead {
            id: parse(r, "id")?,
            latest_version: u32_col(r, "latest_version")?,
            deleted: get::<Option<i64>, _>(r, "deleted_at")?.is_some(),
        })
    }
}

impl FromRow for SecretMeta {
    fn from_row(r: &Row) -> StoreResult<Self> {
        Ok(SecretMeta {
            id: parse(r, "secret_id")?,
            vault_id: parse(r, "vault_id")?,
            path: path(r, "path")?,
            version: u32_col(r, "version")?,
            secret_type: get(r, "type")?,
            metadata: json(r, "metadata")?,
            expires_at: opt_time(r, "expires_at")?,
            disabled: get(r, "disabled")?,
            created_by: get(r, "created_by")?,
            created_at: time_col(r, "created_at")?,
        })
    }
}

impl FromRow for VersionRow {
    fn from_row(r: &Row) -> StoreResult<Self> {
        Ok(VersionRow {
            meta: SecretMeta::from_row(r)?,
            deleted: get::<Option<i64>, _>(r, "deleted_at")?.is_some(),
            access_count: get(r, "access_count")?,
            max_access_count: get(r, "max_access_count")?,
            envelope: Envelope {
                envelope_version: u32_col(r, "envelope_version")?,
                ciphertext: get(r, "ciphertext")?,
                iv: get(r, "iv")?,
                auth_tag: get(r, "auth_tag")?,
                wrapped_dek: get(r, "wrapped_dek")?,
                kek_ref: KekRef(get(r, "kek_ref")?),
                kek_version: u32_col(r, "kek_version")?,
            },
        })
    }
}

impl FromRow for WrapRow {
    fn from_row(r: &Row) -> StoreResult<Self> {
        Ok(WrapRow {
            secret_id: parse(r, "secret_id")?,
            version: u32_col(r, "version")?,
            vault_id: parse(r, "vault_id")?,
            path: path(r, "path")?,
            kek_ref: KekRef(get(r, "kek_ref")?),
            kek_version: u32_col(r, "kek_version")?,
            wrapped_dek: get(r, "wrapped_dek")?,
        })
    }
}

impl FromRow for AgentRow {
    fn from_row(r: &Row) -> StoreResult<Self> {
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
            is_active: get(r, "is_active")?,
            key_prefix: get(r, "key_prefix")?,
            key_hash: get(r, "key_hash")?,
            ssh_public_key: get(r, "ssh_public_key")?,
            ecdh_public_key: get(r, "ecdh_public_key")?,
            token_generation: u32_col(r, "token_generation")?,
            extra: json(r, "extra")?,
            created_by: parse(r, "created_by")?,
            created_at: time_col(r, "created_at")?,
            updated_at: time_col(r, "updated_at")?,
        })
    }
}

impl FromRow for ApiKeyRow {
    fn from_row(r: &Row) -> StoreResult<Self> {
        Ok(ApiKeyRow {
            id: parse(r, "id")?,
            user_id: parse(r, "user_id")?,
            org_id: parse(r, "org_id")?,
            name: get(r, "name")?,
            key_prefix: get(r, "key_prefix")?,
            key_hash: get(r, "key_hash")?,
            scopes: strings(r, "scopes")?,
            is_active: get(r, "is_active")?,
            created_at: time_col(r, "created_at")?,
            expires_at: opt_time(r, "expires_at")?,
        })
    }
}

impl FromRow for Policy {
    fn from_row(r: &Row) -> StoreResult<Self> {
        let kind: &str = get(r, "principal_type")?;
        let pid: &str = get(r, "principal_id")?;
        let principal = Subject::from_str(&format!("{kind}:{pid}"))
            .map_err(|_| corrupt("policies.principal"))?;
        Ok(Policy {
            id: parse(r, "id")?,
            vault_id: parse(r, "vault_id")?,
            pattern: PathPattern::parse(get(r, "secret_path_pattern")?)
                .map_err(|_| corrupt("policies.secret_path_pattern"))?,
            principal,
            permissions: Permission::parse_list(&strings(r, "permissions")?)
                .map_err(|_| corrupt("policies.permissions"))?,
            conditions: Conditions::from_json(&json(r, "conditions")?)
                .map_err(|_| corrupt("policies.conditions"))?,
            expires_at: opt_time(r, "expires_at")?,
            effect: Effect::from_str(get(r, "effect")?).map_err(|_| corrupt("policies.effect"))?,
            priority: i32::try_from(get::<i64, _>(r, "priority")?)
                .map_err(|_| corrupt("policies.priority"))?,
        })
    }
}

impl FromRow for PolicyRow {
    fn from_row(r: &Row) -> StoreResult<Self> {
        Ok(PolicyRow {
            policy: Policy::from_row(r)?,
            extra: json(r, "extra")?,
            created_by: parse(r, "created_by")?,
            created_at: time_col(r, "created_at")?,
            updated_at: time_col(r, "updated_at")?,
        })
    }
}

impl FromRow for InvitationRow {
    fn from_row(r: &Row) -> StoreResult<Self> {
        Ok(InvitationRow {
            org_id: parse(r, "org_id")?,
            email: get(r, "email")?,
            role: Role::from_str(get(r, "role")?).map_err(|_| corrupt("invitations.role"))?,
            invited_by: parse(r, "invited_by")?,
            token_hash: get(r, "token_hash")?,
            created_at: time_col(r, "created_at")?,
            expires_at: time_col(r, "expires_at")?,
        })
    }
}
