//! AES-256-GCM sealing of secret payloads under a DEK.
//!
//! The nonce is 96 random bits drawn for every seal; a DEK is used for exactly
//! one payload, so nonce reuse under a key cannot happen. The AAD is supplied by
//! the caller (see [`SecretContext`]) and binds the ciphertext to its place.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use strongroom_core::{SecretPath, VaultId};
use zeroize::Zeroizing;

use crate::aad::AadBuilder;
use crate::keys::{Dek, KekRef, SecretBytes};

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

/// Encrypts a secret payload under its `dek` with a fresh random nonce.
pub fn seal(dek: &Dek, plaintext: &[u8], aad: &[u8]) -> Sealed {
    seal_under_key(dek.expose(), plaintext, aad)
}

/// Decrypts and authenticates a payload sealed by [`seal`]. Any failure is
/// the opaque [`OpenError`].
pub fn open(dek: &Dek, sealed: &Sealed, aad: &[u8]) -> Result<SecretBytes, OpenError> {
    open_under_key(dek.expose(), sealed, aad)
}

/// [`seal`] under raw key material a key provider holds itself (a software
/// KEK version, the keyring's root key). Payloads go through [`seal`].
pub fn seal_under_key(raw_key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Sealed {
    let mut iv = [0u8; NONCE_LEN];
    crate::random::fill(&mut iv);
    seal_with_nonce(raw_key, iv, plaintext, aad)
}

fn seal_with_nonce(
    raw_key: &[u8; 32],
    iv: [u8; NONCE_LEN],
    plaintext: &[u8],
    aad: &[u8],
) -> Sealed {
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

/// Seals with a caller-chosen nonce. **Less safe**: a nonce used twice under
/// one key breaks GCM's confidentiality and authenticity. Compiled only for
/// the known-answer tests, which need a fixed nonce to pin the layout.
#[cfg(test)]
pub(crate) fn seal_with_fixed_nonce_less_safe(
    dek: &Dek,
    iv: [u8; NONCE_LEN],
    plaintext: &[u8],
    aad: &[u8],
) -> Sealed {
    seal_with_nonce(dek.expose(), iv, plaintext, aad)
}

/// [`open`] under raw key material a key provider holds itself.
pub fn open_under_key(
    raw_key: &[u8; 32],
    sealed: &Sealed,
    aad: &[u8],
) -> Result<SecretBytes, OpenError> {
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

/// Where a secret version lives: what its payload and its wrapped DEK are
/// bound to. Typed, so a caller can't pass a vault name for an id or swap
/// fields; the encoding below is the one place the AAD bytes are made.
#[derive(Debug, Clone, Copy)]
pub struct SecretContext<'a> {
    /// The vault.
    pub vault: VaultId,
    /// The canonical secret path.
    pub path: &'a SecretPath,
    /// The version number.
    pub version: u32,
}

impl SecretContext<'_> {
    /// AAD for the secret payload sealed under its DEK.
    pub fn secret_aad(&self) -> Vec<u8> {
        self.aad("strongroom/secret-payload")
    }

    /// AAD for wrapping the secret version's DEK under the vault KEK.
    pub fn dek_wrap_aad(&self) -> Vec<u8> {
        self.aad("strongroom/dek-wrap")
    }

    // The stored format: label, envelope version, vault id (canonical
    // hyphenated UUID), path, version. Pinned by the known-answer vectors in
    // `tests/vectors/`; changing anything here makes every stored row unreadable.
    fn aad(&self, label: &str) -> Vec<u8> {
        AadBuilder::new(label)
            .u64(ENVELOPE_VERSION as u64)
            .field(self.vault.to_string())
            .field(self.path.as_str())
            .u64(self.version as u64)
            .finish()
    }
}

/// A sealed secret version as stored in its row: the payload (nonce,
/// ciphertext, tag, format version) and its DEK wrapped under a KEK (which
/// KEK, which version). The one representation of an envelope outside the
/// key provider; the engine's envelope service makes, opens and rewraps it.
///
/// `iv` and `auth_tag` are kept as the stored bytes: a row whose lengths are
/// wrong is an integrity failure when opened, not a failure to load it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredEnvelope {
    /// The envelope format version ([`ENVELOPE_VERSION`]).
    pub envelope_version: u32,
    /// The payload ciphertext.
    pub ciphertext: Vec<u8>,
    /// The 96-bit nonce.
    pub iv: Vec<u8>,
    /// The GCM tag.
    pub auth_tag: Vec<u8>,
    /// The DEK, wrapped by the key provider.
    pub wrapped_dek: Vec<u8>,
    /// The KEK that wrapped it.
    pub kek_ref: KekRef,
    /// That KEK's version.
    pub kek_version: u32,
}

impl StoredEnvelope {
    /// The payload part as [`Sealed`], if the stored lengths are right.
    pub fn sealed(&self) -> Result<Sealed, OpenError> {
        if self.envelope_version != ENVELOPE_VERSION {
            return Err(OpenError);
        }
        Ok(Sealed {
            iv: self.iv.as_slice().try_into().map_err(|_| OpenError)?,
            ciphertext: self.ciphertext.clone(),
            tag: self.auth_tag.as_slice().try_into().map_err(|_| OpenError)?,
        })
    }
}

impl std::fmt::Debug for StoredEnvelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Envelope(v{}, kek v{}, {} bytes)",
            self.envelope_version,
            self.kek_version,
            self.ciphertext.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> SecretPath {
        SecretPath::parse(p).unwrap()
    }

    fn ctx(path: &SecretPath, version: u32) -> SecretContext<'_> {
        SecretContext {
            vault: "00000000-0000-0000-0000-000000000001".parse().unwrap(),
            path,
            version,
        }
    }

    #[test]
    fn round_trip() {
        let dek = Dek::generate();
        let p = path("a/b");
        let aad = ctx(&p, 1).secret_aad();
        let s = seal(&dek, b"hello", &aad);
        assert_ne!(s.ciphertext, b"hello");
        assert_eq!(open(&dek, &s, &aad).unwrap().expose(), b"hello");
    }

    #[test]
    fn any_change_fails_opaquely() {
        let dek = Dek::generate();
        let (ab, ac) = (path("a/b"), path("a/c"));
        let aad = ctx(&ab, 1).secret_aad();
        let s = seal(&dek, b"hello", &aad);
        assert_eq!(
            open(&dek, &s, &ctx(&ac, 1).secret_aad()).unwrap_err(),
            OpenError
        );
        assert_eq!(
            open(&dek, &s, &ctx(&ab, 2).secret_aad()).unwrap_err(),
            OpenError
        );
        assert_eq!(
            open(&dek, &s, &ctx(&ab, 1).dek_wrap_aad()).unwrap_err(),
            OpenError
        );
        assert_eq!(open(&Dek::generate(), &s, &aad).unwrap_err(), OpenError);
        let mut t = s.clone();
        t.ciphertext[0] ^= 1;
        assert_eq!(open(&dek, &t, &aad).unwrap_err(), OpenError);
        let mut t = s.clone();
        t.tag[15] ^= 1;
        assert_eq!(open(&dek, &t, &aad).unwrap_err(), OpenError);
        let mut t = s.clone();
        t.iv[0] ^= 1;
        assert_eq!(open(&dek, &t, &aad).unwrap_err(), OpenError);
    }

    #[test]
    fn nonces_are_fresh_and_blobs_split() {
        let dek = Dek::generate();
        let a = seal(&dek, b"x", b"");
        let b = seal(&dek, b"x", b"");
        assert_ne!(a.iv, b.iv);
        assert_eq!(split_blob(&a.to_blob()).unwrap(), a);
        assert!(split_blob(&[0u8; 27]).is_err());
    }

    #[test]
    fn stored_envelopes_with_wrong_lengths_or_version_do_not_open() {
        let s = seal(&Dek::generate(), b"x", b"");
        let good = StoredEnvelope {
            envelope_version: ENVELOPE_VERSION,
            ciphertext: s.ciphertext.clone(),
            iv: s.iv.to_vec(),
            auth_tag: s.tag.to_vec(),
            wrapped_dek: vec![1],
            kek_ref: KekRef::from("k"),
            kek_version: 1,
        };
        assert_eq!(good.sealed().unwrap(), s);
        let mut bad = good.clone();
        bad.iv.pop();
        assert_eq!(bad.sealed().unwrap_err(), OpenError);
        let mut bad = good.clone();
        bad.auth_tag.push(0);
        assert_eq!(bad.sealed().unwrap_err(), OpenError);
        let mut bad = good;
        bad.envelope_version = 2;
        assert_eq!(bad.sealed().unwrap_err(), OpenError);
    }
}
