//! Strongroom's cryptographic building blocks, with no I/O:
//!
//! - [`envelope`]: the payload format — a fresh [`Dek`] per secret version,
//!   AES-256-GCM with a random 96-bit nonce and context-binding AAD.
//! - [`aad`]: the one unambiguous encoding of AAD and other hashed structures.
//! - [`keys`]: key material types that zeroize on drop and print no bytes.
//! - [`password`]: Argon2id password hashing.
//! - [`random`]: OS randomness and server-generated secret values.
//!
//! Every decryption failure is the single opaque [`OpenError`]: it never says
//! which check failed.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aad;
pub mod envelope;
pub mod keys;
pub mod password;
pub mod random;

#[cfg(test)]
mod known_answers;

pub use envelope::{OpenError, Sealed, SecretContext, StoredEnvelope};
pub use keys::{Dek, KekRef, Pepper, SecretBytes};

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Verifies an Ed25519 signature with a raw 32-byte public key.
pub fn verify_ed25519(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

/// HMAC-SHA256 of `data` under `key`: how API keys are stored (with a server pepper).
pub fn keyed_hash(key: &[u8], data: &[u8]) -> [u8; 32] {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&k, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

#[cfg(test)]
mod lib_tests {
    #[test]
    fn keyed_hash_depends_on_key_and_data() {
        let a = super::keyed_hash(b"k1", b"data");
        assert_eq!(a, super::keyed_hash(b"k1", b"data"));
        assert_ne!(a, super::keyed_hash(b"k2", b"data"));
        assert_ne!(a, super::keyed_hash(b"k1", b"datb"));
    }

    #[test]
    fn ed25519_verification() {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        let kp = Ed25519KeyPair::generate().unwrap();
        let sig = kp.sign(b"m");
        assert!(super::verify_ed25519(
            kp.public_key().as_ref(),
            b"m",
            sig.as_ref()
        ));
        assert!(!super::verify_ed25519(
            kp.public_key().as_ref(),
            b"n",
            sig.as_ref()
        ));
        assert!(!super::verify_ed25519(&[0u8; 31], b"m", sig.as_ref()));
    }
}
