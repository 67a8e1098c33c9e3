//! Key and plaintext containers. They zero their memory on drop and their
//! `Debug` output names the type without any byte of the content.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The length of every symmetric key here: AES-256.
pub const KEY_LEN: usize = 32;

/// A data-encryption key: 32 random bytes, new for every secret version.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
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

    /// The raw key. Only key providers and the envelope should call this.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
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
    }

    #[test]
    fn deks_are_fresh() {
        assert_ne!(Dek::generate().expose(), Dek::generate().expose());
    }
}
