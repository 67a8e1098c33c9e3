//! Unambiguous encoding for additional authenticated data.
//!
//! Layout: the label's length (u16, big endian) and bytes, then each field as a
//! u32 big-endian length followed by its bytes. Because every part carries its
//! length, `("ab","c")` and `("a","bc")` encode differently, and a value for one
//! label can never be read as a value for another.

/// Builds an AAD byte string.
#[derive(Clone, PartialEq, Eq)]
pub struct AadBuilder(Vec<u8>);

impl AadBuilder {
    /// Starts an AAD with a fixed label, such as `strongroom/secret/v1`.
    pub fn new(label: &str) -> Self {
        let mut v = Vec::with_capacity(128);
        let len = u16::try_from(label.len()).expect("AAD labels are short constants");
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(label.as_bytes());
        AadBuilder(v)
    }

    /// Appends one length-prefixed field.
    pub fn field(mut self, bytes: impl AsRef<[u8]>) -> Self {
        let bytes = bytes.as_ref();
        let len = u32::try_from(bytes.len()).expect("AAD fields are under 4 GiB");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_run_together() {
        let a = AadBuilder::new("l").field("ab").field("c").finish();
        let b = AadBuilder::new("l").field("a").field("bc").finish();
        assert_ne!(a, b);
        let c = AadBuilder::new("l1").field("x").finish();
        let d = AadBuilder::new("l").field("1x").finish();
        assert_ne!(c, d);
    }
}
