//! [`SettingsStore`]: server-wide settings, and whether the database answers.

use async_trait::async_trait;

use crate::StoreResult;

/// Server-wide named values (the wrapped API-key pepper and the like).
#[async_trait]
pub trait SettingsStore: Send + Sync + 'static {
    /// A server-wide setting.
    async fn setting(&self, name: &str) -> StoreResult<Option<String>>;
    /// Stores a setting, replacing any value.
    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()>;
    /// Stores a setting unless one exists; returns the value in force.
    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<String>;

    /// Whether the database answers.
    async fn health(&self) -> StoreResult<()>;
}
