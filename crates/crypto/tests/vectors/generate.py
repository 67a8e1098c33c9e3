#!/usr/bin/env python3
"""Regenerates envelope.json from first principles, independently of the Rust
code: the length-prefixed encoding of core/src/encoding.rs written out by hand,
and AES-256-GCM from pyca/cryptography. Run only when the stored format changes
on purpose (it must not, for existing databases to open)."""
import json, struct
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def lp(label, *fields):
    out = struct.pack(">H", len(label)) + label.encode()
    for f in fields:
        out += struct.pack(">I", len(f)) + f
    return out

def u64(n):
    return struct.pack(">Q", n)

def ctx_aad(label, vault, path, version):
    return lp(label, u64(1), vault.encode(), path.encode(), u64(version))

CONTEXTS = [
    ("simple", "00000000-0000-0000-0000-000000000001", "db/password", 1),
    ("deep_path_high_version", "0190a3c4-7b2e-7c11-9f00-1234567890ab", "prod/eu-west/payments/stripe_key", 4294967295),
    ("one_segment", "ffffffff-ffff-ffff-ffff-ffffffffffff", "x", 2),
]
aad = []
for name, vault, path, version in CONTEXTS:
    aad.append({
        "name": name, "vault": vault, "path": path, "version": version,
        "secret_aad": ctx_aad("strongroom/secret-payload", vault, path, version).hex(),
        "dek_wrap_aad": ctx_aad("strongroom/dek-wrap", vault, path, version).hex(),
    })

SEALS = [
    ("empty_value", "00" * 32, "000000000000000000000000", CONTEXTS[0], b""),
    ("short_value", bytes(range(32)).hex(), "0102030405060708090a0b0c", CONTEXTS[0], b"hunter2"),
    ("longer_value", "ff" * 32, "cafebabefacedbaddecaf888", CONTEXTS[1], b"sk_live_" + b"0123456789abcdef" * 4),
]
seal = []
for name, key, nonce, (_, vault, path, version), pt in SEALS:
    a = ctx_aad("strongroom/secret-payload", vault, path, version)
    ct_tag = AESGCM(bytes.fromhex(key)).encrypt(bytes.fromhex(nonce), pt, a)
    seal.append({
        "name": name, "key": key, "nonce": nonce, "vault": vault, "path": path,
        "version": version, "plaintext": pt.hex(), "ciphertext_and_tag": ct_tag.hex(),
    })

print(json.dumps({"aad": aad, "seal": seal}, indent=2))
