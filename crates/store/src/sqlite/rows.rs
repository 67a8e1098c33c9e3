//! Result rows to the store's types: one [`FromRow`] impl per type, and the
//! column readers they share. A column that does not parse is `Corrupt`,
//! naming the column, never its value.

use std::str::FromStr;

use rusqlite::Row;
use serde_json::Value;
use strongroom_core::audit::{ChainedEvent, Checkpoint};
use strongroom_core::policy::{Conditions, Effect, PathPattern, Permission, Policy};
use strongroom_core::time_util::from_micros;
use strongroom_core::{Role, SecretPath, Subject, VaultId};
use time::OffsetDateTime;

use super::db::{get, map_err};
use crate::*;

/// A type read from one result row, by column name.
pub(super) trait FromRow: Sized {
    /// Maps the row; `Corrupt` if a column does not hold what the schema says.
    fn from_row(r: &Row<'_>) -> StoreResult<Self>;
}

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned().into())
}

/// A text column parsed with `FromStr` (ids, subjects).
pub(super) fn parse<T: FromStr>(row: &Row<'_>, col: &str) -> StoreResult<T> {
    let s: String = get(row, col)?;
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("column {col}").into()))
}

fn json(row: &Row<'_>, col: &str) -> StoreResult<Value> {
    let s: String = get(row, col)?;
    serde_json::from_str(&s).map_err(|_| StoreError::Corrupt(format!("column {col}").into()))
}

pub(super) fn u32_col(row: &Row<'_>, col: &str) -> StoreResult<u32> {
    let n: i64 = get(row, col)?;
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("column {col}").into()))
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

/// JSON text of a value stored in a JSON column.
pub(super) fn to_json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializable")
}

/// How a vault's creator is stored: the subject, or [`SYSTEM_CREATOR`] for
/// the server's own.
pub(super) fn vault_creator(c: Option<Subject>) -> String {
    c.map_or_else(|| SYSTEM_CREATOR.to_owned(), |s| s.to_string())
}

const SYSTEM_CREATOR: &str = "system";

impl FromRow for ChainedEvent {
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
        let seq: i64 = get(r, "seq")?;
        Ok(ChainedEvent {
            seq: seq as u64,
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
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
        let seq: i64 = get(r, "seq")?;
        Ok(Checkpoint {
            org_id: get(r, "org_id")?,
            seq: seq as u64,
            event_id: get(r, "event_id")?,
            head_hash: get(r, "head_hash")?,
            created_at_us: get(r, "created_at")?,
            kid: get(r, "kid")?,
            signature: get(r, "signature")?,
        })
    }
}

impl FromRow for AuditHead {
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
        Ok(AuditHead {
            org_id: get(r, "org_id")?,
            seq: get::<i64>(r, "seq")? as u64,
            event_id: get(r, "event_id")?,
            hash: get(r, "hash")?,
        })
    }
}

impl FromRow for UserRow {
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
        let role: String = get(r, "role")?;
        Ok(UserRow {
            id: parse(r, "id")?,
            org_id: parse(r, "org_id")?,
            email: get(r, "email")?,
            display_name: get(r, "display_name")?,
            password_hash: get(r, "password_hash")?,
            role: Role::from_str(&role).map_err(|_| StoreError::Corrupt("users.role".into()))?,
            created_at: from_micros(get(r, "created_at")?),
        })
    }
}

impl FromRow for VaultRow {
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
        let created_by: String = get(r, "created_by")?;
        let kind: String = get(r, "kind")?;
        let created_by = match created_by.as_str() {
            SYSTEM_CREATOR => None,
            s => Some(
                Subject::from_str(s)
                    .map_err(|_| StoreError::Corrupt("vaults.created_by".into()))?,
            ),
        };
        Ok(VaultRow {
            id: parse(r, "id")?,
            org_id: parse(r, "org_id")?,
            name: get(r, "name")?,
            description: get(r, "description")?,
            kek_ref: KekRef(get(r, "kek_ref")?),
            kek_version: u32_col(r, "kek_version")?,
            kek_provider: get(r, "kek_provider")?,
            pending_kek_ref: get::<Option<String>>(r, "pending_kek_ref")?.map(KekRef),
            created_by,
            kind: VaultKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt("vaults.kind".into()))?,
            created_at: from_micros(get(r, "created_at")?),
        })
    }
}

impl FromRow for SecretHead {
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
        Ok(SecretHead {
            id: parse(r, "id")?,
            latest_version: u32_col(r, "latest_version")?,
            deleted: get::<Option<i64>>(r, "deleted_at")?.is_some(),
        })
    }
}

/// The columns [`SecretMeta`] is read from, by position: a query mapping rows
/// to a `SecretMeta` (or a [`VersionRow`]) selects these first, in this order,
/// from `secret_versions` aliased `v`.
///
/// By position rather than by name because a listing maps a thousand rows: a
/// lookup by name walks the statement's column names (`sqlite3_column_name`,
/// `strlen`, a case-insensitive compare) for every value read, which was most
/// of the cost of mapping a row. Text columns are read borrowed, so only what
/// the row keeps is allocated.
pub(super) const META_COLUMNS: &str = "v.secret_id, v.version, v.vault_id, v.path, v.type, \
     v.metadata, v.expires_at, v.disabled, v.created_by, v.created_at";

/// The names of [`META_COLUMNS`], for the check that a query selected them.
const META_NAMES: [&str; 10] = [
    "secret_id",
    "version",
    "vault_id",
    "path",
    "type",
    "metadata",
    "expires_at",
    "disabled",
    "created_by",
    "created_at",
];

/// A text column by position, borrowed from the row.
fn text_at<'r>(r: &'r Row<'_>, idx: usize) -> StoreResult<&'r str> {
    r.get_ref(idx)
        .map_err(map_err)?
        .as_str()
        .map_err(|_| StoreError::Corrupt(format!("column {}", META_NAMES[idx]).into()))
}

/// A text column by position, parsed with `FromStr`.
fn parse_at<T: FromStr>(r: &Row<'_>, idx: usize) -> StoreResult<T> {
    text_at(r, idx)?
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("column {}", META_NAMES[idx]).into()))
}

fn at<T: rusqlite::types::FromSql>(r: &Row<'_>, idx: usize) -> StoreResult<T> {
    r.get(idx).map_err(map_err)
}

/// A metadata object as stored. Most are empty, and `{}` needs no parser.
fn metadata(text: &str) -> StoreResult<Value> {
    if text == "{}" {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt("column metadata".into()))
}

impl FromRow for SecretMeta {
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
        debug_assert!(
            META_NAMES
                .iter()
                .enumerate()
                .all(|(i, n)| r.as_ref().column_name(i).is_ok_and(|c| c == *n)),
            "a SecretMeta query must select META_COLUMNS first"
        );
        let expires: Option<i64> = at(r, 6)?;
        Ok(SecretMeta {
            id: parse_at(r, 0)?,
            version: u32::try_from(at::<i64>(r, 1)?)
                .map_err(|_| StoreError::Corrupt("column version".into()))?,
            vault_id: parse_at(r, 2)?,
            path: SecretPath::parse(text_at(r, 3)?)
                .map_err(|_| StoreError::Corrupt("path".into()))?,
            secret_type: at(r, 4)?,
            metadata: metadata(text_at(r, 5)?)?,
            expires_at: expires.map(from_micros),
            disabled: at::<i64>(r, 7)? != 0,
            created_by: at(r, 8)?,
            created_at: from_micros(at(r, 9)?),
        })
    }
}

impl FromRow for VersionRow {
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
        Ok(VersionRow {
            meta: SecretMeta::from_row(r)?,
            deleted: get::<Option<i64>>(r, "deleted_at")?.is_some(),
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
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
        let path: String = get(r, "path")?;
        Ok(WrapRow {
            secret_id: parse(r, "secret_id")?,
            version: u32_col(r, "version")?,
            vault_id: parse(r, "vault_id")?,
            path: SecretPath::parse(&path).map_err(|_| StoreError::Corrupt("path".into()))?,
            kek_ref: KekRef(get(r, "kek_ref")?),
            kek_version: u32_col(r, "kek_version")?,
            wrapped_dek: get(r, "wrapped_dek")?,
        })
    }
}

impl FromRow for AgentRow {
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
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
}

impl FromRow for ApiKeyRow {
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
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
}

impl FromRow for Policy {
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
        let kind: String = get(r, "principal_type")?;
        let pid: String = get(r, "principal_id")?;
        let principal = Subject::from_str(&format!("{kind}:{pid}"))
            .map_err(|_| corrupt("policies.principal"))?;
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
}

impl FromRow for PolicyRow {
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
        Ok(PolicyRow {
            policy: Policy::from_row(r)?,
            extra: json(r, "extra")?,
            created_by: subject(r, "created_by")?,
            created_at: from_micros(get(r, "created_at")?),
            updated_at: from_micros(get(r, "updated_at")?),
        })
    }
}

impl FromRow for InvitationRow {
    fn from_row(r: &Row<'_>) -> StoreResult<Self> {
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
}
