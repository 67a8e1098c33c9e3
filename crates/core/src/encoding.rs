//! The one unambiguous encoding for everything Strongroom hashes, signs or
//! binds as AAD (envelope AAD, audit-chain hashes, audit checkpoints).
//!
//! Layout: the label's length (u16, big endian) and bytes, then each field as a
//! u32 big-endian length followed by its bytes. Because every part carries its
//! length, `("ab","c")` and `("a","bc")` encode differently, and a value for one
//! label can never be read as a value for another.

/// Builds an encoded byte string.
#[derive(Clone, PartialEq, Eq)]
pub struct LengthPrefixed(Vec<u8>);

impl LengthPrefixed {
    /// Starts an encoding with a fixed label, such as `strongroom/secret/v1`.
    pub fn new(label: &str) -> Self {
        let mut v = Vec::with_capacity(128);
        let len = u16::try_from(label.len()).expect("labels are short constants");
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(label.as_bytes());
        LengthPrefixed(v)
    }

    /// Appends one length-prefixed field.
    pub fn field(mut self, bytes: impl AsRef<[u8]>) -> Self {
        let bytes = bytes.as_ref();
        let len = u32::try_from(bytes.len()).expect("fields are under 4 GiB");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// Appends a number as a fixed-width field.
    pub fn u64(self, n: u64) -> Self {
        self.field(n.to_be_bytes())
    }

    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

impl LengthPrefixed {
    /// Appends a signed number as a fixed-width big-endian field.
    pub fn i64(self, n: i64) -> Self {
        self.field(n.to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_run_together() {
        let a = LengthPrefixed::new("l").field("ab").field("c").finish();
        let b = LengthPrefixed::new("l").field("a").field("bc").finish();
        assert_ne!(a, b);
        let c = LengthPrefixed::new("l1").field("x").finish();
        let d = LengthPrefixed::new("l").field("1x").finish();
        assert_ne!(c, d);
    }
}
