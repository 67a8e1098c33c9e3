//! Key and plaintext containers. They zero their memory on drop and their
//! `Debug` output names the type without any byte of the content.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The length of every symmetric key here: AES-256.
pub const KEY_LEN: usize = 32;

/// A data-encryption key: 32 random bytes, new for every secret version.
///
/// Deliberately not `Clone`: a DEK exists once. Whoever needs to share one
/// (the DEK cache, a provider handing it back) shares it behind an `Arc`, so
/// no copy of the bytes is ever left behind to be zeroed separately.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Dek([u8; KEY_LEN]);

impl Dek {
    /// A fresh key from the OS random number generator.
    pub fn generate() -> Self {
        let mut k = [0u8; KEY_LEN];
        crate::random::fill(&mut k);
        Dek(k)
    }

    /// Adopts key bytes that came back from a key provider's unwrap. Fails
    /// unless exactly 32 bytes were given; the input is not kept.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, crate::OpenError> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| crate::OpenError)?;
        Ok(Dek(arr))
    }

    /// The raw key. Only key providers (which wrap it) should call this; the
    /// envelope seals and opens with the `Dek` itself.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// The server's API-key pepper: the HMAC key API keys and invitation tokens
/// are stored under. Not a [`Dek`] — it never encrypts anything — and it
/// offers no access to its bytes, only [`Pepper::keyed_hash`].
///
/// It travels through a key provider as 32 bytes of key material (providers
/// wrap [`Dek`]s): [`Pepper::from_unwrapped`] adopts such bytes once, at
/// startup.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Pepper([u8; KEY_LEN]);

impl Pepper {
    /// Adopts key material that a key provider unwrapped (or that was just
    /// generated and wrapped) as the pepper.
    pub fn from_unwrapped(key: &Dek) -> Self {
        Pepper(key.0)
    }

    /// A fresh random pepper (tests; the server's pepper comes from its provider).
    pub fn generate() -> Self {
        Pepper::from_unwrapped(&Dek::generate())
    }

    /// HMAC-SHA256 of `data` under the pepper.
    pub fn keyed_hash(&self, data: &[u8]) -> [u8; 32] {
        crate::keyed_hash(&self.0, data)
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

/// A key provider's handle on one vault's KEK (all its versions), as stored
/// in vault and secret-version rows. Opaque to everyone but the provider that
/// issued it; it names a key, it is not one.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KekRef(pub String);

impl KekRef {
    /// The reference as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reads as the stored string (so an `Option<KekRef>` compares with
/// `as_deref()` like the `Option<String>` it replaced).
impl std::ops::Deref for KekRef {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KekRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KekRef({})", self.0)
    }
}

impl fmt::Display for KekRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for KekRef {
    fn from(s: String) -> Self {
        KekRef(s)
    }
}

impl From<&str> for KekRef {
    fn from(s: &str) -> Self {
        KekRef(s.to_owned())
    }
}
impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(<redacted>)")
    }
}

/// Secret bytes of any length (a decrypted value, a serialized keyring).
#[derive(Clone, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of the bytes.
    pub fn new(v: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(v))
    }
    /// Takes ownership of an already-zeroizing buffer.
    pub fn from_zeroizing(v: Zeroizing<Vec<u8>>) -> Self {
        SecretBytes(v)
    }
    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// The bytes as UTF-8, if they are.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretBytes {
    fn from(s: String) -> Self {
        SecretBytes::new(s.into_bytes())
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_bytes() {
        let d = Dek::generate();
        let hexed: String = d.expose().iter().map(|b| format!("{b:02x}")).collect();
        let shown = format!("{d:?}");
        assert!(!shown.contains(&hexed[..8]));
        let s = SecretBytes::from("hunter2-very-secret".to_string());
        assert!(!format!("{s:?}").contains("hunter2"));
        let p = Pepper::from_unwrapped(&d);
        assert_eq!(format!("{p:?}"), "Pepper(<redacted>)");
    }

    #[test]
    fn pepper_hashes_like_keyed_hash_of_its_key() {
        let d = Dek::generate();
        let p = Pepper::from_unwrapped(&d);
        assert_eq!(p.keyed_hash(b"k"), crate::keyed_hash(d.expose(), b"k"));
        assert_ne!(p.keyed_hash(b"k"), Pepper::generate().keyed_hash(b"k"));
    }

    #[test]
    fn deks_are_fresh() {
        assert_ne!(Dek::generate().expose(), Dek::generate().expose());
    }
}
