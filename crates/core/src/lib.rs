//! Domain types shared by every Strongroom crate: identifiers, validated secret
//! paths, principals, the authorization hook, audit records and the error kinds.
//!
//! This crate does no I/O. Everything here is plain data and pure functions, so the
//! rules it encodes (what a valid path is, who may touch a vault) can be tested
//! in isolation and reused by every adapter.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod authz;
pub mod encoding;
pub mod error;
pub mod ids;
pub mod path;
pub mod policy;
pub mod principal;
pub mod secret;
pub mod time_util;

pub use error::{
    Cause, Chain, Conflict, Dependency, Error, GoneReason, Reason, Result, Unavailable,
};
pub use ids::{AgentId, ApiKeyId, OrgId, PolicyId, SecretId, UserId, VaultId};
pub use path::SecretPath;
pub use principal::{Principal, Role, Subject};
