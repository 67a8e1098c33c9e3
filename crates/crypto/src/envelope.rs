//! AES-256-GCM sealing of secret payloads under a DEK.
//!
//! The nonce is 96 random bits drawn for every seal; a DEK is used for exactly
//! one payload, so nonce reuse under a key cannot happen. The AAD is supplied by
//! the caller (see [`secret_aad`]) and binds the ciphertext to its place.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::aad::AadBuilder;
use zeroize::Zeroizing;

use crate::keys::SecretBytes;

/// The length of the GCM tag.
pub const TAG_LEN: usize = 16;
/// The version of the envelope format stored with every row.
pub const ENVELOPE_VERSION: u32 = 1;

/// Opening failed. Deliberately carries no detail: a wrong key, a wrong AAD
/// and a flipped bit look the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("decryption failed")]
pub struct OpenError;

/// A sealed payload as stored: nonce, ciphertext and tag kept apart, as the
/// seed's row layout has them.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The 96-bit nonce.
    pub iv: [u8; NONCE_LEN],
    /// The ciphertext, as long as the plaintext.
    pub ciphertext: Vec<u8>,
    /// The GCM tag.
    pub tag: [u8; TAG_LEN],
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({} bytes)", self.ciphertext.len())
    }
}

fn key(raw: &[u8; 32]) -> LessSafeKey {
    // A 32-byte slice is always a valid AES-256 key.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, raw).expect("32-byte AES key"))
}

/// Encrypts `plaintext` under `raw_key` with a fresh random nonce.
pub fn seal(raw_key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Sealed {
    let mut iv = [0u8; NONCE_LEN];
    crate::random::fill(&mut iv);
    let mut buf = plaintext.to_vec();
    let tag = key(raw_key)
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut buf)
        .expect("AES-GCM seal of an in-memory buffer");
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(tag.as_ref());
    Sealed {
        iv,
        ciphertext: buf,
        tag: t,
    }
}

/// Decrypts and authenticates. Any failure is the opaque [`OpenError`].
pub fn open(raw_key: &[u8; 32], sealed: &Sealed, aad: &[u8]) -> Result<SecretBytes, OpenError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(sealed.ciphertext.len() + TAG_LEN));
    buf.extend_from_slice(&sealed.ciphertext);
    buf.extend_from_slice(&sealed.tag);
    let len = key(raw_key)
        .open_in_place(
            Nonce::assume_unique_for_key(sealed.iv),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| OpenError)?
        .len();
    buf.truncate(len);
    Ok(SecretBytes::from_zeroizing(buf))
}

/// Splits a `nonce || ciphertext || tag` blob (the wrapped-DEK layout of the
/// software key providers).
pub fn split_blob(blob: &[u8]) -> Result<Sealed, OpenError> {
    if blob.len() < NONCE_LEN + TAG_LEN {
        return Err(OpenError);
    }
    let (iv, rest) = blob.split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    Ok(Sealed {
        iv: iv.try_into().map_err(|_| OpenError)?,
        ciphertext: ct.to_vec(),
        tag: tag.try_into().map_err(|_| OpenError)?,
    })
}

impl Sealed {
    /// Joins the parts as `nonce || ciphertext || tag`.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(NONCE_LEN + self.ciphertext.len() + TAG_LEN);
        v.extend_from_slice(&self.iv);
        v.extend_from_slice(&self.ciphertext);
        v.extend_from_slice(&self.tag);
        v
    }
}

/// Where a secret version lives: what its payload and its wrapped DEK are bound to.
#[derive(Debug, Clone, Copy)]
pub struct SecretContext<'a> {
    /// The vault's id (canonical hyphenated UUID).
    pub vault_id: &'a str,
    /// The canonical secret path.
    pub path: &'a str,
    /// The version number.
    pub version: u64,
}

/// AAD for a secret payload sealed under its DEK.
pub fn secret_aad(ctx: SecretContext<'_>) -> Vec<u8> {
    context_aad("strongroom/secret-payload", ctx)
}

/// AAD for wrapping a secret version's DEK under the vault KEK.
pub fn dek_wrap_aad(ctx: SecretContext<'_>) -> Vec<u8> {
    context_aad("strongroom/dek-wrap", ctx)
}

fn context_aad(label: &str, ctx: SecretContext<'_>) -> Vec<u8> {
    AadBuilder::new(label)
        .u64(ENVELOPE_VERSION as u64)
        .field(ctx.vault_id)
        .field(ctx.path)
        .u64(ctx.version)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dek;

    fn ctx(path: &str, version: u64) -> SecretContext<'_> {
        SecretContext {
            vault_id: "v1",
            path,
            version,
        }
    }

    #[test]
    fn round_trip() {
        let dek = Dek::generate();
        let aad = secret_aad(ctx("a/b", 1));
        let s = seal(dek.expose(), b"hello", &aad);
        assert_ne!(s.ciphertext, b"hello");
        assert_eq!(open(dek.expose(), &s, &aad).unwrap().expose(), b"hello");
    }

    #[test]
    fn any_change_fails_opaquely() {
        let dek = Dek::generate();
        let aad = secret_aad(ctx("a/b", 1));
        let s = seal(dek.expose(), b"hello", &aad);
        assert_eq!(
            open(dek.expose(), &s, &secret_aad(ctx("a/c", 1))).unwrap_err(),
            OpenError
        );
        assert_eq!(
            open(dek.expose(), &s, &secret_aad(ctx("a/b", 2))).unwrap_err(),
            OpenError
        );
        assert_eq!(
            open(dek.expose(), &s, &dek_wrap_aad(ctx("a/b", 1))).unwrap_err(),
            OpenError
        );
        assert_eq!(
            open(Dek::generate().expose(), &s, &aad).unwrap_err(),
            OpenError
        );
        let mut t = s.clone();
        t.ciphertext[0] ^= 1;
        assert_eq!(open(dek.expose(), &t, &aad).unwrap_err(), OpenError);
        let mut t = s.clone();
        t.tag[15] ^= 1;
        assert_eq!(open(dek.expose(), &t, &aad).unwrap_err(), OpenError);
        let mut t = s.clone();
        t.iv[0] ^= 1;
        assert_eq!(open(dek.expose(), &t, &aad).unwrap_err(), OpenError);
    }

    #[test]
    fn nonces_are_fresh_and_blobs_split() {
        let dek = Dek::generate();
        let a = seal(dek.expose(), b"x", b"");
        let b = seal(dek.expose(), b"x", b"");
        assert_ne!(a.iv, b.iv);
        assert_eq!(split_blob(&a.to_blob()).unwrap(), a);
        assert!(split_blob(&[0u8; 27]).is_err());
    }
}
