//! The chain's format: an event as stored and exported, its canonical
//! encoding and hash (`docs/audit.md`, pinned by `tests/vectors/audit.json`),
//! and the canonical JSON of its details.

use serde_json::Value;

use super::Checkpoint;

/// An audit event as stored and exported: the record plus its place in the
/// organisation's hash chain.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChainedEvent {
    /// Position in the organisation's chain, from 1, without gaps.
    pub seq: u64,
    /// Event id.
    pub id: String,
    /// Organisation.
    pub org_id: String,
    /// `user`, `agent` or `anonymous`.
    pub actor_type: String,
    /// Actor uuid, or empty.
    pub actor_id: String,
    /// Action, e.g. `secret.read`.
    pub action: String,
    /// Resource kind.
    pub resource_type: String,
    /// Resource id.
    pub resource_id: String,
    /// Structured details (never a value, key or token).
    pub details: Value,
    /// Client address.
    pub ip_address: Option<String>,
    /// Time, microseconds since the Unix epoch (UTC).
    pub created_at_us: i64,
    /// The previous event of the chain (None for the first).
    pub prev_event_id: Option<String>,
    /// Hex SHA-256 over the canonical encoding of this event and the previous hash.
    pub integrity_hash: String,
}

/// The hash of the chain before its first event: 32 zero bytes.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

/// The canonical encoding of an event for hashing (see `docs/audit.md`):
/// `LengthPrefixed("strongroom/audit-event/v1")` then, in order: seq (u64),
/// id, org_id, actor_type, actor_id, action, resource_type, resource_id,
/// details (compact JSON with object keys sorted), ip_address (empty if none),
/// created_at_us (i64), prev_event_id (empty if none), prev_hash (32 bytes).
pub fn event_encoding(e: &ChainedEvent, prev_hash: &[u8; 32]) -> Vec<u8> {
    encode_event(e, &canonical_json(&e.details), prev_hash)
}

fn encode_event(e: &ChainedEvent, canonical_details: &str, prev_hash: &[u8; 32]) -> Vec<u8> {
    crate::encoding::LengthPrefixed::new("strongroom/audit-event/v1")
        .u64(e.seq)
        .field(&e.id)
        .field(&e.org_id)
        .field(&e.actor_type)
        .field(&e.actor_id)
        .field(&e.action)
        .field(&e.resource_type)
        .field(&e.resource_id)
        .field(canonical_details)
        .field(e.ip_address.as_deref().unwrap_or(""))
        .i64(e.created_at_us)
        .field(e.prev_event_id.as_deref().unwrap_or(""))
        .field(prev_hash)
        .finish()
}

/// SHA-256 of [`event_encoding`].
pub fn event_hash(e: &ChainedEvent, prev_hash: &[u8; 32]) -> [u8; 32] {
    event_hash_canonical(e, &canonical_json(&e.details), prev_hash)
}

/// [`event_hash`] when the caller already holds `canonical_json(&e.details)`
/// (the store writes that text too, so it is computed once).
pub fn event_hash_canonical(
    e: &ChainedEvent,
    canonical_details: &str,
    prev_hash: &[u8; 32],
) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(encode_event(e, canonical_details, prev_hash)).into()
}

/// Compact JSON with object keys in byte order, so a value hashes the same
/// whoever serializes it (serde_json's map is ordered by key unless its
/// `preserve_order` feature is on; this does not rely on that).
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(m) => {
                let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                out.push(b'{');
                for (i, (k, x)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, k).expect("writing to a Vec");
                    out.push(b':');
                    write(x, out);
                }
                out.push(b'}');
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(x, out);
                }
                out.push(b']');
            }
            scalar => serde_json::to_writer(&mut *out, scalar).expect("writing to a Vec"),
        }
    }
    let mut out = Vec::with_capacity(256);
    write(v, &mut out);
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Parses a 64-digit hex hash.
pub fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Lower-case hex of a hash.
pub fn hash_hex(h: &[u8; 32]) -> String {
    hex::encode(h)
}

/// One line of an audit export (JSON lines): an event or a checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ExportLine {
    /// An event.
    Event(ChainedEvent),
    /// A signed checkpoint.
    Checkpoint(Checkpoint),
}

/// Known answers for the audit chain's formats: the canonical encoding and
/// hash of fixed events, and the message a checkpoint signs. The vectors live
/// in `tests/vectors/audit.json`, computed independently of this code by
/// `tests/vectors/generate_audit.py`. Exported logs are verified against
/// these bytes; a change here would make every stored chain fail to verify.
#[cfg(test)]
mod known_answers {
    use super::*;
    use crate::audit::checkpoint_message;

    const VECTORS: &str = include_str!("../../tests/vectors/audit.json");

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).expect("tests/vectors/audit.json parses")
    }

    fn find(kind: &str, name: &str) -> Value {
        vectors()[kind]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} vector {name}"))
            .clone()
    }

    fn text(v: &Value, k: &str) -> String {
        v[k].as_str().unwrap().to_owned()
    }

    fn hash(v: &Value, k: &str) -> [u8; 32] {
        parse_hash(v[k].as_str().unwrap()).unwrap()
    }

    fn event(name: &str) {
        let v = find("events", name);
        let e = ChainedEvent {
            seq: v["seq"].as_u64().unwrap(),
            id: text(&v, "id"),
            org_id: text(&v, "org_id"),
            actor_type: text(&v, "actor_type"),
            actor_id: text(&v, "actor_id"),
            action: text(&v, "action"),
            resource_type: text(&v, "resource_type"),
            resource_id: text(&v, "resource_id"),
            details: v["details"].clone(),
            ip_address: v["ip_address"].as_str().map(str::to_owned),
            created_at_us: v["created_at_us"].as_i64().unwrap(),
            prev_event_id: v["prev_event_id"].as_str().map(str::to_owned),
            integrity_hash: String::new(),
        };
        let prev = hash(&v, "prev_hash");
        assert_eq!(
            hex::encode(event_encoding(&e, &prev)),
            text(&v, "encoding"),
            "canonical encoding of {name}"
        );
        assert_eq!(
            hash_hex(&event_hash(&e, &prev)),
            text(&v, "hash"),
            "hash of {name}"
        );
    }

    fn checkpoint(name: &str) {
        let v = find("checkpoints", name);
        let m = checkpoint_message(
            v["org_id"].as_str().unwrap(),
            v["seq"].as_u64().unwrap(),
            v["event_id"].as_str().unwrap(),
            &hash(&v, "head_hash"),
            v["created_at_us"].as_i64().unwrap(),
        );
        assert_eq!(
            hex::encode(m),
            text(&v, "message"),
            "checkpoint message {name}"
        );
    }

    /// One `#[test]` per vector: `kind::name` runs `kind("name")`; and a
    /// check that the file holds no vector without its test.
    macro_rules! known_answers {
        ($($kind:ident :: $name:ident),* $(,)?) => {
            $(
                #[test]
                fn $name() {
                    $kind(stringify!($name));
                }
            )*

            #[test]
            fn every_vector_is_run() {
                let mut listed = vec![$((stringify!($kind), stringify!($name))),*];
                let v = vectors();
                let mut in_file = Vec::new();
                for (kind, key) in [("event", "events"), ("checkpoint", "checkpoints")] {
                    for x in v[key].as_array().unwrap() {
                        in_file.push((kind, x["name"].as_str().unwrap()));
                    }
                }
                listed.sort();
                in_file.sort();
                assert_eq!(listed, in_file);
            }
        };
    }

    known_answers! {
        event::first_event,
        event::anonymous_without_ip,
        checkpoint::head_of_two,
        checkpoint::genesis_like,
    }

    /// The second vector chains onto the first: its prev_hash is the first's hash.
    #[test]
    fn the_vectors_form_a_chain() {
        let v = vectors();
        assert_eq!(v["events"][1]["prev_hash"], v["events"][0]["hash"]);
        assert_eq!(v["checkpoints"][0]["head_hash"], v["events"][1]["hash"]);
    }
}
