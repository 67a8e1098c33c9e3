//! Secret paths: the one canonicaliser for every way a path enters the system.
//!
//! A path is a `/`-separated list of segments. Each segment holds only ASCII
//! letters, digits, `_` and `-`; the path starts and ends with a letter or digit
//! (1claw's rule: `^[a-zA-Z0-9][a-zA-Z0-9_\-/]*[a-zA-Z0-9]$`), and additionally no
//! segment is empty. Because `.` and `%` are not allowed at all, `..`, `%2e%2e`
//! and `%2F` can never name another path, whatever the route.
//!
//! Paths arriving in a URL are percent-decoded one segment at a time: a segment
//! that decodes to something containing `/` is rejected rather than split.

use std::fmt;

use percent_encoding::percent_decode_str;
use serde::Serialize;

use crate::Error;

/// The longest path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 512;
/// The most segments a path may have.
pub const MAX_SEGMENTS: usize = 32;

/// A validated, canonical secret path.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SecretPath(String);

impl SecretPath {
    /// Validates an already-decoded path.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(Error::invalid("secret path must not be empty"));
        }
        if s.len() > MAX_PATH_LEN {
            return Err(Error::invalid(format!(
                "secret path is longer than {MAX_PATH_LEN} bytes"
            )));
        }
        // One pass over the bytes (a listing parses a thousand stored paths),
        // failing as checking segment by segment would: a segment's number
        // first, then the segment itself.
        let bytes = s.as_bytes();
        let mut segments = 1usize;
        let mut segment_len = 0usize;
        for &b in bytes {
            if b == b'/' {
                if segment_len == 0 {
                    return Err(empty_segment());
                }
                segments += 1;
                if segments > MAX_SEGMENTS {
                    return Err(Error::invalid(format!(
                        "secret path has more than {MAX_SEGMENTS} segments"
                    )));
                }
                segment_len = 0;
            } else if is_segment_byte(b) {
                segment_len += 1;
            } else {
                return Err(bad_character());
            }
        }
        if segment_len == 0 {
            return Err(empty_segment());
        }
        let edge_ok = |b: u8| b.is_ascii_alphanumeric();
        if !edge_ok(bytes[0]) || !edge_ok(bytes[bytes.len() - 1]) {
            return Err(Error::invalid(
                "secret path must start and end with a letter or digit",
            ));
        }
        Ok(SecretPath(s.to_owned()))
    }

    /// Decodes a path taken raw from a URL (each segment percent-decoded on its
    /// own), then validates it as [`SecretPath::parse`] does.
    pub fn from_url_encoded(raw: &str) -> Result<Self, Error> {
        if raw.len() > MAX_PATH_LEN * 3 {
            return Err(Error::invalid(format!(
                "secret path is longer than {MAX_PATH_LEN} bytes"
            )));
        }
        let mut decoded = String::with_capacity(raw.len());
        for (i, seg) in raw.split('/').enumerate() {
            if i > 0 {
                decoded.push('/');
            }
            let seg = percent_decode_str(seg)
                .decode_utf8()
                .map_err(|_| Error::invalid("secret path is not valid UTF-8"))?;
            if seg.contains('/') {
                return Err(Error::invalid(
                    "secret path segment contains an encoded '/'",
                ));
            }
            decoded.push_str(&seg);
        }
        Self::parse(&decoded)
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

pub(crate) fn validate_segment(seg: &str) -> Result<(), Error> {
    if seg.is_empty() {
        return Err(empty_segment());
    }
    if !seg.bytes().all(is_segment_byte) {
        return Err(bad_character());
    }
    Ok(())
}

/// What a path segment may hold: ASCII letters, digits, `_` and `-`.
fn is_segment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn empty_segment() -> Error {
    Error::invalid("secret path must not contain empty segments (leading, trailing or doubled '/')")
}

fn bad_character() -> Error {
    Error::invalid("secret path may contain only letters, digits, '_', '-' and '/'")
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretPath({:?})", self.0)
    }
}

impl AsRef<str> for SecretPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_1claw_paths() {
        for p in [
            "a",
            "prod/db/password",
            "api-keys/stripe_live",
            "A1/b-2/C_3",
            "x/y",
        ] {
            assert_eq!(SecretPath::parse(p).unwrap().as_str(), p);
        }
    }

    #[test]
    fn rejects_bad_paths() {
        for p in [
            "", "/a", "a/", "a//b", "..", "a/../b", "a/./b", ".hidden", "a b", "a.b", "-a", "a_",
            "a/%2e%2e", "é", "a\0b", "a\\b",
        ] {
            assert!(SecretPath::parse(p).is_err(), "{p:?} should be rejected");
        }
    }

    #[test]
    fn decodes_each_segment_and_refuses_encoded_separators() {
        assert_eq!(
            SecretPath::from_url_encoded("a/b%2Dc").unwrap().as_str(),
            "a/b-c"
        );
        for raw in [
            "a%2Fb", "a%2fb", "%2e%2e/a", "a/%2E%2E", "a/%2e", "a%00b", "a/%ff", "a/%",
        ] {
            assert!(
                SecretPath::from_url_encoded(raw).is_err(),
                "{raw:?} should be rejected"
            );
        }
    }

    /// The segment-by-segment rule the one-pass parser must agree with,
    /// error for error.
    fn parse_by_segments(s: &str) -> Result<SecretPath, Error> {
        if s.is_empty() {
            return Err(Error::invalid("secret path must not be empty"));
        }
        if s.len() > MAX_PATH_LEN {
            return Err(Error::invalid(format!(
                "secret path is longer than {MAX_PATH_LEN} bytes"
            )));
        }
        for (i, seg) in s.split('/').enumerate() {
            if i + 1 > MAX_SEGMENTS {
                return Err(Error::invalid(format!(
                    "secret path has more than {MAX_SEGMENTS} segments"
                )));
            }
            validate_segment(seg)?;
        }
        let bytes = s.as_bytes();
        if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
            return Err(Error::invalid(
                "secret path must start and end with a letter or digit",
            ));
        }
        Ok(SecretPath(s.to_owned()))
    }

    proptest::proptest! {
        #[test]
        fn one_pass_agrees_with_segment_by_segment(
            s in "([a-zA-Z0-9_./ é-]{0,3}/){0,36}[a-zA-Z0-9_./é-]{0,3}"
        ) {
            proptest::prop_assert_eq!(SecretPath::parse(&s), parse_by_segments(&s));
        }
    }

    #[test]
    fn bounds_length_and_depth() {
        let deep = vec!["a"; MAX_SEGMENTS + 1].join("/");
        assert!(SecretPath::parse(&deep).is_err());
        let ok = vec!["a"; MAX_SEGMENTS].join("/");
        assert!(SecretPath::parse(&ok).is_ok());
        let long = "a".repeat(MAX_PATH_LEN + 1);
        assert!(SecretPath::parse(&long).is_err());
        let huge = vec!["a"; 10_000].join("/");
        assert!(SecretPath::from_url_encoded(&huge).is_err());
    }
}
