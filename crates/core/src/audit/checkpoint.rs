//! Signed checkpoints: an organisation's chain head `(org, seq, hash)`
//! signed by the server, so removing events up to or past it is detectable
//! with the public key alone.

/// A signed statement of a chain's head at some point: `(org, seq, hash)`.
/// Deleting events up to or past a checkpoint is detectable with the public key.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Organisation.
    pub org_id: String,
    /// The sequence number of the head event.
    pub seq: u64,
    /// The head event's id.
    pub event_id: String,
    /// The head event's hash (hex).
    pub head_hash: String,
    /// When it was signed (microseconds since the epoch).
    pub created_at_us: i64,
    /// Key id of the signing key.
    pub kid: String,
    /// Base64url (no padding) Ed25519 signature over [`checkpoint_message`].
    pub signature: String,
}

/// The message a checkpoint signs: `LengthPrefixed("strongroom/audit-checkpoint/v1")`
/// then org_id, seq (u64), event_id, head_hash (32 bytes), created_at_us (i64).
pub fn checkpoint_message(
    org_id: &str,
    seq: u64,
    event_id: &str,
    head_hash: &[u8; 32],
    created_at_us: i64,
) -> Vec<u8> {
    crate::encoding::LengthPrefixed::new("strongroom/audit-checkpoint/v1")
        .field(org_id)
        .u64(seq)
        .field(event_id)
        .field(head_hash)
        .i64(created_at_us)
        .finish()
}
