//! The `keyring` table: sealed entries of a key provider's keyring shared by
//! every node (see `strongroom_kms::soft::SealedKeyStore`). This crate moves
//! the sealed bytes only; it never sees the root key or a key in the clear.

use deadpool_postgres::Pool;
use strongroom_core::time_util::{now, to_micros};
use strongroom_store::StoreResult;

use crate::db::{conn, exec, rows};
use crate::rows::get;

/// The sealed keyring entries in the database.
#[derive(Clone)]
pub struct PgKeyring {
    pool: Pool,
}

impl PgKeyring {
    pub(crate) fn new(pool: Pool) -> Self {
        PgKeyring { pool }
    }

    /// Every entry: name and sealed bytes.
    pub async fn entries(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let c = conn(&self.pool).await?;
        rows(&c, "SELECT name, sealed FROM keyring ORDER BY name", &[])
            .await?
            .iter()
            .map(|r| Ok((get(r, "name")?, get(r, "sealed")?)))
            .collect()
    }

    /// Adds an entry; false (changing nothing) if the name is taken.
    pub async fn insert(&self, name: &str, sealed: &[u8]) -> StoreResult<bool> {
        let c = conn(&self.pool).await?;
        exec(
            &c,
            "INSERT INTO keyring (name, sealed, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            &[&name, &sealed, &to_micros(now())],
        )
        .await
        .map(|n| n == 1)
    }

    /// Removes the entries whose names start with `prefix`.
    pub async fn remove_prefix(&self, prefix: &str) -> StoreResult<()> {
        let c = conn(&self.pool).await?;
        exec(
            &c,
            "DELETE FROM keyring WHERE starts_with(name, $1)",
            &[&prefix],
        )
        .await
        .map(drop)
    }
}
