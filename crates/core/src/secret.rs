//! Secret-level vocabulary: types and the charsets of server-side rotation.

use std::str::FromStr;

use crate::Error;

/// The secret types accepted: the union of 1claw's documentation, spec and SDKs.
pub const SECRET_TYPES: &[&str] = &[
    "generic",
    "password",
    "api_key",
    "private_key",
    "certificate",
    "file",
    "note",
    "ssh_key",
    "env_bundle",
    "env",
];

/// Validates a secret type, defaulting to `generic`.
pub fn parse_secret_type(t: Option<&str>) -> Result<String, Error> {
    match t {
        None => Ok("generic".to_owned()),
        Some(t) if SECRET_TYPES.contains(&t) => Ok(t.to_owned()),
        Some(_) => Err(Error::invalid(format!(
            "type must be one of: {}",
            SECRET_TYPES.join(", ")
        ))),
    }
}

/// The alphabet of a server-generated secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// `0-9a-f`.
    Hex,
    /// Standard base64 alphabet (`A-Za-z0-9+/`), no padding.
    Base64,
    /// `A-Za-z0-9`.
    Alphanumeric,
    /// Printable ASCII without space (`!`..`~`).
    Ascii,
}

impl Charset {
    /// The characters to draw from.
    pub fn alphabet(&self) -> &'static [u8] {
        match self {
            Charset::Hex => b"0123456789abcdef",
            Charset::Base64 => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            Charset::Alphanumeric => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            Charset::Ascii => b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~",
        }
    }
}

impl FromStr for Charset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "hex" => Ok(Charset::Hex),
            "base64" => Ok(Charset::Base64),
            "alphanumeric" => Ok(Charset::Alphanumeric),
            "ascii" => Ok(Charset::Ascii),
            _ => Err(Error::invalid(
                "charset must be one of: hex, base64, alphanumeric, ascii",
            )),
        }
    }
}

/// Bounds of a server-generated secret's length.
pub const ROTATE_LENGTH: std::ops::RangeInclusive<u32> = 8..=1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabets_have_the_documented_sizes() {
        assert_eq!(Charset::Hex.alphabet().len(), 16);
        assert_eq!(Charset::Base64.alphabet().len(), 64);
        assert_eq!(Charset::Alphanumeric.alphabet().len(), 62);
        assert_eq!(Charset::Ascii.alphabet().len(), 94);
    }

    #[test]
    fn secret_types() {
        assert_eq!(parse_secret_type(None).unwrap(), "generic");
        assert_eq!(parse_secret_type(Some("ssh_key")).unwrap(), "ssh_key");
        assert!(parse_secret_type(Some("bogus")).is_err());
    }
}
