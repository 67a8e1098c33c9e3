//! Verifying a chain: every event's sequence, link and hash, and every
//! checkpoint's signature and head.

use super::{ChainedEvent, Checkpoint, checkpoint_message, event_hash, parse_hash};

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

#[cfg(test)]
mod chain_tests {
    use super::*;
    use crate::audit::{GENESIS_HASH, canonical_json, hash_hex};
    use serde_json::Value;
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
