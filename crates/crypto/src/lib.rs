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

pub use envelope::{OpenError, Sealed};
pub use keys::{Dek, SecretBytes};

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
