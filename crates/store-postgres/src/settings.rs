//! PostgreSQL: [`SettingsStore`] — server-wide settings, and the health probe.

use async_trait::async_trait;
use strongroom_store::*;

use crate::PgStore;
use crate::db::{conn, exec, query_i64, row_opt};
use crate::rows::{corrupt, get};

#[async_trait]
impl SettingsStore for PgStore {
    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let c = conn(&self.pool).await?;
        row_opt(&c, "SELECT value FROM settings WHERE name = $1", &[&name])
            .await?
            .map(|r| get(&r, "value"))
            .transpose()
    }

    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        let c = conn(&self.pool).await?;
        exec(
            &c,
            "INSERT INTO settings (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &[&name, &value],
        )
        .await
        .map(drop)
    }

    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        let c = conn(&self.pool).await?;
        // Two nodes initialising at once: one inserts, both read the winner.
        exec(
            &c,
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &value],
        )
        .await?;
        row_opt(&c, "SELECT value FROM settings WHERE name = $1", &[&name])
            .await?
            .map(|r| get(&r, "value"))
            .transpose()?
            .ok_or_else(|| corrupt("settings: the value just written is missing"))
    }

    async fn health(&self) -> StoreResult<()> {
        let c = conn(&self.pool).await?;
        query_i64(&c, "SELECT 1::bigint", &[]).await.map(drop)
    }
}
