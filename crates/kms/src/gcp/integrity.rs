//! CRC32C checks of Cloud KMS requests and responses, and the Ed25519 public
//! key inside the PEM that `getPublicKey` returns.
//!
//! Google recommends sending a CRC32C of every input and checking the one of
//! every output ("end-to-end data integrity"): the checks catch corruption in
//! memory, on the wire or in a proxy, which TLS alone does not cover.

use base64::Engine as _;

/// CRC32C (Castagnoli) as Cloud KMS's JSON carries it: an int64.
pub(crate) fn crc32c(data: &[u8]) -> i64 {
    i64::from(::crc32c::crc32c(data))
}

/// True when the response carried a checksum and it matches `data`.
pub(crate) fn matches(checksum: Option<i64>, data: &[u8]) -> bool {
    checksum == Some(crc32c(data))
}

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE,
/// AlgorithmIdentifier { id-Ed25519 }, BIT STRING of 33 bytes (0 unused bits).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The raw 32-byte key from a `-----BEGIN PUBLIC KEY-----` PEM of an Ed25519
/// SubjectPublicKeyInfo. Anything else is refused.
pub(crate) fn ed25519_from_spki_pem(pem: &str) -> Result<[u8; 32], String> {
    let mut lines = pem.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("-----BEGIN PUBLIC KEY-----") {
        return Err("the public key is not a PEM PUBLIC KEY".into());
    }
    let mut body = String::new();
    let mut ended = false;
    for line in lines {
        if line == "-----END PUBLIC KEY-----" {
            ended = true;
            break;
        }
        body.push_str(line);
    }
    if !ended {
        return Err("the public key PEM is truncated".into());
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| "the public key PEM is not valid base64".to_owned())?;
    match der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
        Some(key) if key.len() == 32 => {
            let mut out = [0u8; 32];
            out.copy_from_slice(key);
            Ok(out)
        }
        _ => Err("the public key is not an Ed25519 SubjectPublicKeyInfo".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_answer() {
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert!(matches(Some(0xe306_9283), b"123456789"));
        assert!(!matches(None, b"123456789"));
        assert!(!matches(Some(0xe306_9284), b"123456789"));
    }

    #[test]
    fn parses_ed25519_spki_pem() {
        // RFC 8410 section 10.1.
        let pem = "-----BEGIN PUBLIC KEY-----\n\
                   MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
                   -----END PUBLIC KEY-----\n";
        let key = ed25519_from_spki_pem(pem).unwrap();
        assert_eq!(
            hex::encode(key),
            "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"
        );
        // An EC P-256 key is refused.
        let p256 = "-----BEGIN PUBLIC KEY-----\n\
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\n\
            q9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n\
            -----END PUBLIC KEY-----\n";
        assert!(ed25519_from_spki_pem(p256).is_err());
        assert!(ed25519_from_spki_pem("-----BEGIN PUBLIC KEY-----\nMCow").is_err());
        assert!(ed25519_from_spki_pem("garbage").is_err());
    }
}
