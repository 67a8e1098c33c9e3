//! The store's traits, one concern each. [`crate::Store`] is their sum.
//!
//! Each is small enough to implement (or wrap, or fake) on its own; a
//! back-end implements all of them and gets [`crate::Store`] for free.

mod audit;
mod identity;
mod policies;
mod secrets;
mod settings;
mod vaults;

pub use audit::{AuditAppendSignal, AuditStore};
pub use identity::{IdentityStore, SignupGate};
pub use policies::PolicyStore;
pub use secrets::SecretStore;
pub use settings::SettingsStore;
pub use vaults::VaultKeyStore;
