//! Audit records. One is written for every access and every change, in the
//! same transaction as the change (or, for reads, committed before the value
//! leaves the server). Records never carry a secret value, key or token.
//!
//! - the catalogue of actions ([`AuditAction`], [`Attempt`]), typed resources
//!   ([`AuditResource`]) and the [`details`] shapes events share;
//! - [`AuditRecord`]: what a use case records, before it is stored;
//! - the chain: each stored event's canonical encoding and hash, linking it to
//!   the one before ([`ChainedEvent`], [`event_hash`], [`canonical_json`]);
//! - [`Checkpoint`]s: signed chain heads;
//! - verification of a chain and its checkpoints ([`ChainVerifier`]).

mod action;
mod chain;
mod checkpoint;
pub mod details;
mod record;
mod verify;

pub use action::{Attempt, AuditAction};

pub use chain::{
    ChainedEvent, ExportLine, GENESIS_HASH, canonical_json, event_encoding, event_hash,
    event_hash_canonical, hash_hex, parse_hash,
};
pub use checkpoint::{Checkpoint, checkpoint_message};
pub use record::{Actor, AuditRecord, AuditResource, ResourceKind, SYSTEM_ORG};
pub use verify::{ChainVerifier, SignatureCheck, VerifyReport, verify_chain};
