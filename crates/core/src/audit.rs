//! Audit records. One is written for every access and every change, in the
//! same transaction as the change (or, for reads, committed before the value
//! leaves the server). Records never carry a secret value, key or token.

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{OrgId, Subject};

/// The actor of an audited action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An authenticated user or agent.
    Subject(Subject),
    /// Nobody authenticated (a failed login, say).
    Anonymous,
}

impl Actor {
    /// `user`, `agent` or `anonymous`.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Subject(s) => s.kind(),
            Actor::Anonymous => "anonymous",
        }
    }
    /// The actor's uuid, or an empty string.
    pub fn id_string(&self) -> String {
        match self {
            Actor::Subject(s) => s.id_string(),
            Actor::Anonymous => String::new(),
        }
    }
}

/// One audit event, before it is stored.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Event id.
    pub id: Uuid,
    /// The organisation it belongs to.
    pub org_id: OrgId,
    /// Who did it.
    pub actor: Actor,
    /// What, e.g. `secret.read`.
    pub action: String,
    /// The kind of object, e.g. `secret`.
    pub resource_type: String,
    /// The object's id (or path).
    pub resource_id: String,
    /// Structured context: vault, path, version, decision. Never a value.
    pub details: Value,
    /// The client's address.
    pub ip_address: Option<String>,
    /// When.
    pub created_at: OffsetDateTime,
}

impl AuditRecord {
    /// A new record stamped now.
    pub fn new(
        org_id: OrgId,
        actor: Actor,
        action: &str,
        resource_type: &str,
        resource_id: impl Into<String>,
        details: Value,
        ip_address: Option<String>,
    ) -> Self {
        AuditRecord {
            id: Uuid::now_v7(),
            org_id,
            actor,
            action: action.to_owned(),
            resource_type: resource_type.to_owned(),
            resource_id: resource_id.into(),
            details,
            ip_address,
            created_at: crate::time_util::now(),
        }
    }
}

/// The organisation id under which events with no organisation are chained
/// (e.g. a failed login naming an unknown email): the nil UUID.
pub const SYSTEM_ORG: OrgId = OrgId(Uuid::nil());

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

/// The outcome of verifying one organisation's chain.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VerifyReport {
    /// True when every event and checkpoint checked out.
    pub chain_valid: bool,
    /// Events whose hash and link verified.
    pub events_verified: u64,
    /// Events examined.
    pub events_checked: u64,
    /// Checkpoints whose signature and head verified.
    pub checkpoints_verified: u64,
    /// The first bad event (or the event a bad checkpoint names).
    pub broken_at_event_id: Option<String>,
    /// The sequence number where the chain breaks.
    pub broken_at_seq: Option<u64>,
    /// What is wrong, in words.
    pub reason: Option<String>,
}

/// Checks a checkpoint signature: `(kid, message, signature) -> valid`.
pub type SignatureCheck<'a> = dyn Fn(&str, &[u8], &[u8]) -> bool + 'a;

/// Verifies a whole chain held in memory: see [`ChainVerifier`].
pub fn verify_chain(
    events: &[ChainedEvent],
    checkpoints: &[Checkpoint],
    start: u64,
    start_prev: ([u8; 32], Option<String>),
    verify_sig: &SignatureCheck<'_>,
) -> VerifyReport {
    let mut v = ChainVerifier::new(checkpoints, start, start_prev);
    v.feed(events);
    v.finish(checkpoints, verify_sig)
}

/// Verifies one organisation's chain incrementally, page by page, keeping
/// only the hashes that checkpoints refer to.
///
/// Events must be fed in stored order starting at `start` (with the hash and
/// id of the event before it, or `(GENESIS_HASH, None)` from the beginning).
/// Each event must carry the next sequence number, link to its predecessor,
/// and hash to its stored `integrity_hash`. Each checkpoint must carry a valid
/// signature (checked by the caller's `verify_sig(kid, message, signature)`)
/// and name an event whose id and hash it matches; a checkpoint beyond the last
/// event means events were removed from the end.
pub struct ChainVerifier {
    report: VerifyReport,
    prev_hash: [u8; 32],
    prev_id: Option<String>,
    start: u64,
    expected_seq: u64,
    wanted: std::collections::HashMap<u64, Option<(String, [u8; 32])>>,
}

impl ChainVerifier {
    /// Starts a verification.
    pub fn new(
        checkpoints: &[Checkpoint],
        start: u64,
        start_prev: ([u8; 32], Option<String>),
    ) -> Self {
        ChainVerifier {
            report: VerifyReport {
                chain_valid: true,
                events_verified: 0,
                events_checked: 0,
                checkpoints_verified: 0,
                broken_at_event_id: None,
                broken_at_seq: None,
                reason: None,
            },
            prev_hash: start_prev.0,
            prev_id: start_prev.1,
            start,
            expected_seq: start,
            wanted: checkpoints.iter().map(|c| (c.seq, None)).collect(),
        }
    }

    fn fail(&mut self, id: Option<&str>, seq: Option<u64>, why: String) {
        if self.report.chain_valid {
            self.report.chain_valid = false;
            self.report.broken_at_event_id = id.map(str::to_owned);
            self.report.broken_at_seq = seq;
            self.report.reason = Some(why);
        }
    }

    /// Whether the chain is still intact (feeding more after a break is pointless).
    pub fn intact(&self) -> bool {
        self.report.chain_valid
    }

    /// Checks the next events.
    pub fn feed(&mut self, events: &[ChainedEvent]) {
        for e in events {
            if !self.report.chain_valid {
                return;
            }
            self.report.events_checked += 1;
            if e.seq != self.expected_seq {
                let why = format!(
                    "expected event #{}, found #{} (events missing or reordered)",
                    self.expected_seq, e.seq
                );
                self.fail(Some(&e.id), Some(e.seq), why);
                return;
            }
            if e.prev_event_id != self.prev_id {
                self.fail(
                    Some(&e.id),
                    Some(e.seq),
                    "the link to the previous event is wrong (an event was removed or reordered)"
                        .into(),
                );
                return;
            }
            let h = event_hash(e, &self.prev_hash);
            if parse_hash(&e.integrity_hash) != Some(h) {
                self.fail(
                    Some(&e.id),
                    Some(e.seq),
                    "the event's hash does not match its contents (it was altered)".into(),
                );
                return;
            }
            self.report.events_verified += 1;
            if let Some(slot) = self.wanted.get_mut(&e.seq) {
                *slot = Some((e.id.clone(), h));
            }
            self.prev_hash = h;
            self.prev_id = Some(e.id.clone());
            self.expected_seq += 1;
        }
    }

    /// Checks the checkpoints against what was fed, and returns the report.
    pub fn finish(
        mut self,
        checkpoints: &[Checkpoint],
        verify_sig: &SignatureCheck<'_>,
    ) -> VerifyReport {
        let last_seq = self.expected_seq - 1;
        for cp in checkpoints {
            let Some(head) = parse_hash(&cp.head_hash) else {
                self.fail(
                    None,
                    Some(cp.seq),
                    format!("checkpoint #{} is malformed", cp.seq),
                );
                continue;
            };
            let msg = checkpoint_message(&cp.org_id, cp.seq, &cp.event_id, &head, cp.created_at_us);
            let Some(sig) = base64_url_decode(&cp.signature) else {
                self.fail(
                    None,
                    Some(cp.seq),
                    format!("checkpoint #{} has a malformed signature", cp.seq),
                );
                continue;
            };
            if !verify_sig(&cp.kid, &msg, &sig) {
                self.fail(
                    Some(&cp.event_id),
                    Some(cp.seq),
                    format!("checkpoint #{}'s signature does not verify", cp.seq),
                );
                continue;
            }
            if cp.seq < self.start {
                self.report.checkpoints_verified += 1;
                continue;
            }
            match self.wanted.get(&cp.seq).cloned().flatten() {
                Some((id, h)) if id == cp.event_id && h == head => self.report.checkpoints_verified += 1,
                Some(_) => {
                    self.fail(Some(&cp.event_id), Some(cp.seq), format!("event #{} differs from the signed checkpoint", cp.seq))
                }
                None if self.report.chain_valid && cp.seq > last_seq => self.fail(
                    Some(&cp.event_id),
                    Some(cp.seq),
                    format!(
                        "a signed checkpoint covers event #{} but the chain ends at #{last_seq}: events were removed from the end",
                        cp.seq
                    ),
                ),
                None => {}
            }
        }
        self.report
    }
}

fn base64_url_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
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

#[cfg(test)]
mod chain_tests {
    use super::*;
    use serde_json::json;

    fn chain(n: u64) -> Vec<ChainedEvent> {
        let mut prev = GENESIS_HASH;
        let mut prev_id = None;
        (1..=n)
            .map(|seq| {
                let mut e = ChainedEvent {
                    seq,
                    id: format!("e{seq}"),
                    org_id: "org".into(),
                    actor_type: "user".into(),
                    actor_id: "u".into(),
                    action: "secret.read".into(),
                    resource_type: "secret".into(),
                    resource_id: "s".into(),
                    details: json!({"path": "a/b", "version": seq, "z": 1, "a": [1, {"y": 2, "b": 3}]}),
                    ip_address: Some("127.0.0.1".into()),
                    created_at_us: 1_000_000 + seq as i64,
                    prev_event_id: prev_id.clone(),
                    integrity_hash: String::new(),
                };
                let h = event_hash(&e, &prev);
                e.integrity_hash = hash_hex(&h);
                prev = h;
                prev_id = Some(e.id.clone());
                e
            })
            .collect()
    }

    fn checkpoint(events: &[ChainedEvent], seq: u64) -> Checkpoint {
        let e = &events[seq as usize - 1];
        Checkpoint {
            org_id: "org".into(),
            seq,
            event_id: e.id.clone(),
            head_hash: e.integrity_hash.clone(),
            created_at_us: 5,
            kid: "k".into(),
            // A "signature" our test verifier accepts: base64url of b"ok".
            signature: "b2s".into(),
        }
    }

    fn sig_ok(kid: &str, _m: &[u8], s: &[u8]) -> bool {
        kid == "k" && s == b"ok"
    }

    fn verify(events: &[ChainedEvent], cps: &[Checkpoint]) -> VerifyReport {
        verify_chain(events, cps, 1, (GENESIS_HASH, None), &sig_ok)
    }

    #[test]
    fn a_good_chain_verifies() {
        let ev = chain(10);
        let r = verify(&ev, &[checkpoint(&ev, 5), checkpoint(&ev, 10)]);
        assert!(r.chain_valid, "{r:?}");
        assert_eq!((r.events_verified, r.checkpoints_verified), (10, 2));
    }

    #[test]
    fn every_field_edit_is_detected_at_that_event() {
        let base = chain(6);
        type Edit = Box<dyn Fn(&mut ChainedEvent)>;
        let edits: Vec<Edit> = vec![
            Box::new(|e| e.action = "secret.write".into()),
            Box::new(|e| e.actor_id = "v".into()),
            Box::new(|e| e.actor_type = "agent".into()),
            Box::new(|e| e.resource_id = "t".into()),
            Box::new(|e| e.resource_type = "vault".into()),
            Box::new(|e| e.details = json!({"path": "a/c"})),
            Box::new(|e| e.ip_address = None),
            Box::new(|e| e.created_at_us += 1),
            Box::new(|e| e.org_id = "other".into()),
            Box::new(|e| e.id = "forged".into()),
        ];
        for edit in edits {
            let mut ev = base.clone();
            edit(&mut ev[3]);
            let r = verify(&ev, &[]);
            assert!(!r.chain_valid);
            assert_eq!(r.broken_at_seq, Some(4), "{r:?}");
        }
    }

    #[test]
    fn deletion_and_swaps_are_detected() {
        let mut ev = chain(6);
        ev.remove(2);
        let r = verify(&ev, &[]);
        assert!(!r.chain_valid);
        assert_eq!(r.broken_at_event_id.as_deref(), Some("e4"));

        let mut ev = chain(6);
        ev.swap(2, 3);
        let r = verify(&ev, &[]);
        assert!(!r.chain_valid);
        assert_eq!(r.broken_at_seq, Some(4));

        // Swapping and renumbering is still caught by the hashes.
        let mut ev = chain(6);
        ev.swap(2, 3);
        ev[2].seq = 3;
        ev[3].seq = 4;
        assert!(!verify(&ev, &[]).chain_valid);
    }

    #[test]
    fn truncation_past_a_checkpoint_is_detected() {
        let ev = chain(8);
        let cps = [checkpoint(&ev, 6)];
        let r = verify(&ev[..5], &cps);
        assert!(!r.chain_valid);
        assert_eq!(r.broken_at_seq, Some(6));
        assert!(r.reason.unwrap().contains("removed from the end"));
        // Truncating only events after the last checkpoint is the documented window.
        assert!(verify(&ev[..6], &cps).chain_valid);
    }

    #[test]
    fn forged_checkpoints_fail() {
        let ev = chain(4);
        let mut cp = checkpoint(&ev, 4);
        cp.signature = "YmFk".into();
        assert!(!verify(&ev, &[cp]).chain_valid);
        let mut cp = checkpoint(&ev, 4);
        cp.head_hash = ev[2].integrity_hash.clone();
        assert!(!verify(&ev, &[cp]).chain_valid);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"d":[1,{"z":0,"y":null}],"c":"x"}}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":"x","d":[1,{"y":null,"z":0}]},"b":1}"#
        );
        // Strings are escaped as JSON, keys included; numbers keep their form.
        let b: Value = serde_json::from_str(r#"{"\u00e9\"k":"line\nbreak","n":-1.5e3}"#).unwrap();
        assert_eq!(canonical_json(&b), r#"{"n":-1500.0,"é\"k":"line\nbreak"}"#);
    }

    #[test]
    fn hashes_round_trip_through_hex_and_malformed_hex_is_refused() {
        let h = [0xa5u8; 32];
        assert_eq!(hash_hex(&h), "a5".repeat(32));
        assert_eq!(parse_hash(&hash_hex(&h)), Some(h));
        for bad in [
            "a5".repeat(31),
            "a5".repeat(33),
            format!("+f{}", "a5".repeat(31)),
            "zz".repeat(32),
        ] {
            assert_eq!(parse_hash(&bad), None, "{bad}");
        }
    }
}

/// Known answers for the audit chain's formats: the canonical encoding and
/// hash of fixed events, and the message a checkpoint signs. The vectors live
/// in `tests/vectors/audit.json`, computed independently of this code by
/// `tests/vectors/generate_audit.py`. Exported logs are verified against
/// these bytes; a change here would make every stored chain fail to verify.
#[cfg(test)]
mod known_answers {
    use super::*;

    const VECTORS: &str = include_str!("../tests/vectors/audit.json");

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
