//! Bulk import of another store's rows (`strongroom store copy`): the tables
//! in the order their foreign keys need, their columns and how each is
//! typed, and batched inserts that skip rows already there, so an
//! interrupted copy is resumed by running it again. Rows move as they are
//! stored: envelopes stay ciphertext; nothing is decrypted.

use std::collections::HashMap;

use deadpool_postgres::Pool;
use strongroom_store::{StoreError, StoreResult};
use tokio_postgres::types::ToSql;

use crate::db::{conn, exec, map_err, query_i64, rows};
use crate::rows::get;

/// How a column is typed here (SQLite stores flags as integers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `BIGINT`.
    Int,
    /// `TEXT`.
    Text,
    /// `BYTEA`.
    Bytes,
    /// `BOOLEAN` (an integer 0 or 1 in SQLite).
    Bool,
}

/// One value of a row being imported.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// SQL `NULL`.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A flag.
    Bool(bool),
}

/// A table the import copies.
#[derive(Debug)]
pub struct Table {
    /// Its name (the same in both stores).
    pub name: &'static str,
    /// Its columns (the same names in both stores) and their types here.
    pub columns: &'static [(&'static str, Kind)],
    /// Its primary key, the order rows are copied in.
    pub key: &'static [&'static str],
}

use Kind::{Bool, Bytes, Int, Text};

/// Every table a store holds, parents before children. The audit intake
/// and chain heads are not copied: a copied chain is complete, and its head
/// row is made from its newest event when it next grows.
pub const TABLES: &[Table] = &[
    Table {
        name: "orgs",
        columns: &[("id", Text), ("name", Text), ("created_at", Int)],
        key: &["id"],
    },
    Table {
        name: "users",
        columns: &[
            ("id", Text),
            ("org_id", Text),
            ("email", Text),
            ("display_name", Text),
            ("password_hash", Text),
            ("role", Text),
            ("created_at", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "vaults",
        columns: &[
            ("id", Text),
            ("org_id", Text),
            ("name", Text),
            ("description", Text),
            ("kek_ref", Text),
            ("kek_version", Int),
            ("kek_provider", Text),
            ("pending_kek_ref", Text),
            ("created_by", Text),
            ("kind", Text),
            ("created_at", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "secrets",
        columns: &[
            ("id", Text),
            ("vault_id", Text),
            ("path", Text),
            ("latest_version", Int),
            ("deleted_at", Int),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "secret_versions",
        columns: VERSION_COLUMNS,
        key: &["secret_id", "version"],
    },
    Table {
        name: "policies",
        columns: &[
            ("id", Text),
            ("vault_id", Text),
            ("secret_path_pattern", Text),
            ("principal_type", Text),
            ("principal_id", Text),
            ("permissions", Text),
            ("conditions", Text),
            ("expires_at", Int),
            ("effect", Text),
            ("priority", Int),
            ("extra", Text),
            ("created_by", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "agents",
        columns: &[
            ("id", Text),
            ("org_id", Text),
            ("name", Text),
            ("description", Text),
            ("auth_method", Text),
            ("scopes", Text),
            ("vault_ids", Text),
            ("token_ttl_seconds", Int),
            ("expires_at", Int),
            ("api_key_expires_at", Int),
            ("is_active", Bool),
            ("key_prefix", Text),
            ("key_hash", Bytes),
            ("ssh_public_key", Text),
            ("ecdh_public_key", Text),
            ("extra", Text),
            ("token_generation", Int),
            ("created_by", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "api_keys",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("org_id", Text),
            ("name", Text),
            ("key_prefix", Text),
            ("key_hash", Bytes),
            ("scopes", Text),
            ("is_active", Bool),
            ("created_at", Int),
            ("expires_at", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "invitations",
        columns: &[
            ("org_id", Text),
            ("email", Text),
            ("role", Text),
            ("invited_by", Text),
            ("token_hash", Bytes),
            ("created_at", Int),
            ("expires_at", Int),
        ],
        key: &["org_id", "email"],
    },
    Table {
        name: "revoked_tokens",
        columns: &[("jti", Text), ("expires_at", Int)],
        key: &["jti"],
    },
    Table {
        name: "settings",
        columns: &[("name", Text), ("value", Text)],
        key: &["name"],
    },
    Table {
        name: "audit_events",
        columns: &[
            ("org_id", Text),
            ("seq", Int),
            ("id", Text),
            ("actor_type", Text),
            ("actor_id", Text),
            ("action", Text),
            ("resource_type", Text),
            ("resource_id", Text),
            ("details", Text),
            ("ip_address", Text),
            ("created_at", Int),
            ("prev_event_id", Text),
            ("integrity_hash", Text),
        ],
        key: &["org_id", "seq"],
    },
    Table {
        name: "audit_checkpoints",
        columns: &[
            ("org_id", Text),
            ("seq", Int),
            ("event_id", Text),
            ("head_hash", Text),
            ("created_at", Int),
            ("kid", Text),
            ("signature", Text),
        ],
        key: &["org_id", "seq"],
    },
];

const VERSION_COLUMNS: &[(&str, Kind)] = &[
    ("secret_id", Text),
    ("version", Int),
    ("vault_id", Text),
    ("path", Text),
    ("type", Text),
    ("metadata", Text),
    ("expires_at", Int),
    ("max_access_count", Int),
    ("access_count", Int),
    ("disabled", Bool),
    ("envelope_version", Int),
    ("ciphertext", Bytes),
    ("iv", Bytes),
    ("auth_tag", Bytes),
    ("wrapped_dek", Bytes),
    ("kek_ref", Text),
    ("kek_version", Int),
    ("created_by", Text),
    ("created_at", Int),
    ("deleted_at", Int),
];

/// The columns of a version's envelope, compared when a copy is verified.
pub const ENVELOPE_COLUMNS: &[&str] = &[
    "envelope_version",
    "ciphertext",
    "iv",
    "auth_tag",
    "wrapped_dek",
    "kek_ref",
    "kek_version",
];

/// Writes imported rows into this database.
#[derive(Clone)]
pub struct Importer {
    pool: Pool,
}

fn sql_value(c: &Cell) -> Box<dyn ToSql + Sync + Send> {
    match c {
        Cell::Null => Box::new(Option::<String>::None),
        Cell::Int(n) => Box::new(*n),
        Cell::Text(s) => Box::new(s.clone()),
        Cell::Bytes(b) => Box::new(b.clone()),
        Cell::Bool(b) => Box::new(*b),
    }
}

fn typed_null(kind: Kind) -> Box<dyn ToSql + Sync + Send> {
    match kind {
        Int => Box::new(Option::<i64>::None),
        Text => Box::new(Option::<String>::None),
        Bytes => Box::new(Option::<Vec<u8>>::None),
        Bool => Box::new(Option::<bool>::None),
    }
}

impl Importer {
    pub(crate) fn new(pool: Pool) -> Self {
        Importer { pool }
    }

    /// Rows of a table here.
    pub async fn count(&self, table: &Table) -> StoreResult<u64> {
        let c = conn(&self.pool).await?;
        query_i64(&c, &format!("SELECT COUNT(*) FROM {}", table.name), &[])
            .await
            .map(|n| n as u64)
    }

    /// Inserts rows (each in `table.columns` order) in one transaction,
    /// skipping any whose key is already here. Returns how many were new.
    pub async fn insert(&self, table: &Table, batch: &[Vec<Cell>]) -> StoreResult<u64> {
        if batch.is_empty() {
            return Ok(0);
        }
        let width = table.columns.len();
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::with_capacity(batch.len() * width);
        let mut values = Vec::with_capacity(batch.len());
        for (i, row) in batch.iter().enumerate() {
            if row.len() != width {
                return Err(StoreError::Corrupt(
                    format!("a {} row with {} columns", table.name, row.len()).into(),
                ));
            }
            let slots: Vec<String> = (0..width)
                .map(|j| format!("${}", i * width + j + 1))
                .collect();
            values.push(format!("({})", slots.join(", ")));
            for (cell, (_, kind)) in row.iter().zip(table.columns) {
                params.push(match cell {
                    Cell::Null => typed_null(*kind),
                    c => sql_value(c),
                });
            }
        }
        let names: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {} ON CONFLICT DO NOTHING",
            table.name,
            names.join(", "),
            values.join(", ")
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| &**p as _).collect();
        let mut c = conn(&self.pool).await?;
        let tx = c.transaction().await.map_err(map_err)?;
        let n = tx.execute(sql.as_str(), &refs).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    /// The stored envelopes of some versions, by (secret id, version), each
    /// as [`ENVELOPE_COLUMNS`].
    pub async fn envelopes(
        &self,
        keys: &[(String, i64)],
    ) -> StoreResult<HashMap<(String, i64), Vec<Cell>>> {
        let (ids, versions): (Vec<String>, Vec<i64>) = keys.iter().cloned().unzip();
        let c = conn(&self.pool).await?;
        let found = rows(
            &c,
            "SELECT v.secret_id, v.version, v.envelope_version, v.ciphertext, v.iv, v.auth_tag, v.wrapped_dek,
                    v.kek_ref, v.kek_version
             FROM secret_versions v JOIN unnest($1::text[], $2::bigint[]) k(id, version)
               ON v.secret_id = k.id AND v.version = k.version",
            &[&ids, &versions],
        )
        .await?;
        let mut out = HashMap::with_capacity(found.len());
        for r in &found {
            out.insert(
                (get(r, "secret_id")?, get(r, "version")?),
                vec![
                    Cell::Int(get(r, "envelope_version")?),
                    Cell::Bytes(get(r, "ciphertext")?),
                    Cell::Bytes(get(r, "iv")?),
                    Cell::Bytes(get(r, "auth_tag")?),
                    Cell::Bytes(get(r, "wrapped_dek")?),
                    Cell::Text(get(r, "kek_ref")?),
                    Cell::Int(get(r, "kek_version")?),
                ],
            );
        }
        Ok(out)
    }

    /// Puts sealed keyring entries into the database keyring, skipping
    /// names already there.
    pub async fn keyring(&self, entries: &[(String, Vec<u8>)]) -> StoreResult<u64> {
        let k = crate::PgKeyring::new(self.pool.clone());
        let mut added = 0;
        for (name, sealed) in entries {
            added += u64::from(k.insert(name, sealed).await?);
        }
        Ok(added)
    }

    /// Whether this database holds anything but an empty schema.
    pub async fn is_empty(&self) -> StoreResult<bool> {
        let c = conn(&self.pool).await?;
        Ok(exec(&c, "SELECT 1 FROM orgs LIMIT 1", &[]).await? == 0)
    }
}
