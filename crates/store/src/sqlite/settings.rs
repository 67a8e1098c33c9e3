//! SQLite: [`SettingsStore`] — server-wide settings, and the health probe.

use async_trait::async_trait;
use rusqlite::params;

use super::SqliteStore;
use super::db::{Tx, exec, get, query_i64, query_opt};
use super::rows::corrupt;
use crate::*;

#[async_trait]
impl SettingsStore for SqliteStore {
    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        self.db.read(|c| {
            query_opt(
                c,
                "SELECT value FROM settings WHERE name = ?",
                [name],
                |r| get(r, "value"),
            )
        })
    }

    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.db
            .write(move |tx| {
                exec(
                    tx,
                    "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    params![name, value],
                )?;
                Ok(())
            })
            .await
    }

    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<String> {
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

    async fn health(&self) -> StoreResult<()> {
        self.db.read(|c| query_i64(c, "SELECT 1", []).map(drop))
    }
}
