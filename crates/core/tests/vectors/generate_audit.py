#!/usr/bin/env python3
"""Regenerates audit.json independently of the Rust code: the length-prefixed
encoding (core/src/encoding.rs) and the canonical event encoding and
checkpoint message of docs/audit.md, written out by hand, with hashlib's
SHA-256. Exported audit logs are verified against these bytes: they must not
change."""
import hashlib, json, struct

def lp(label, *fields):
    out = struct.pack(">H", len(label)) + label.encode()
    for f in fields:
        out += struct.pack(">I", len(f)) + f
    return out

u64 = lambda n: struct.pack(">Q", n)
i64 = lambda n: struct.pack(">q", n)
canon = lambda v: json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

EVENTS = [
    dict(name="first_event", seq=1, id="0190a3c4-0000-7000-8000-000000000001",
         org_id="0190a3c4-0000-7000-8000-0000000000aa", actor_type="user",
         actor_id="0190a3c4-0000-7000-8000-0000000000bb", action="secret.read",
         resource_type="secret", resource_id="0190a3c4-0000-7000-8000-0000000000cc",
         details={"vault_id": "v", "path": "db/password", "version": 1, "decision": "allow",
                  "policy_id": None, "nested": {"z": [1, 2], "a": True}},
         ip_address="203.0.113.7", created_at_us=1767225600000000, prev_event_id=None),
    dict(name="anonymous_without_ip", seq=2, id="0190a3c4-0000-7000-8000-000000000002",
         org_id="00000000-0000-0000-0000-000000000000", actor_type="anonymous", actor_id="",
         action="auth.login_failed", resource_type="user", resource_id="",
         details={}, ip_address=None, created_at_us=-1,
         prev_event_id="0190a3c4-0000-7000-8000-000000000001"),
]
events = []
prev = bytes(32)
for e in EVENTS:
    enc = lp("strongroom/audit-event/v1", u64(e["seq"]), e["id"].encode(), e["org_id"].encode(),
             e["actor_type"].encode(), e["actor_id"].encode(), e["action"].encode(),
             e["resource_type"].encode(), e["resource_id"].encode(), canon(e["details"]).encode(),
             (e["ip_address"] or "").encode(), i64(e["created_at_us"]),
             (e["prev_event_id"] or "").encode(), prev)
    h = hashlib.sha256(enc).digest()
    events.append(dict(e, prev_hash=prev.hex(), encoding=enc.hex(), hash=h.hex()))
    prev = h

checkpoints = []
for name, org, seq, eid, head, at in [
    ("head_of_two", EVENTS[1]["org_id"], 2, EVENTS[1]["id"], prev, 1767225601000000),
    ("genesis_like", "org", 0, "", bytes(32), 0),
]:
    msg = lp("strongroom/audit-checkpoint/v1", org.encode(), u64(seq), eid.encode(), head, i64(at))
    checkpoints.append(dict(name=name, org_id=org, seq=seq, event_id=eid, head_hash=head.hex(),
                            created_at_us=at, message=msg.hex()))

print(json.dumps({"events": events, "checkpoints": checkpoints}, indent=2))
