//! The root key that seals the `file` provider's keyring.
//!
//! It comes from `STRONGROOM_ROOT_KEY` (64 hex digits, or base64 of 32 bytes)
//! or from a root-key file, which is created with mode 0600 on first start.
//! Keep it apart from the data: whoever has the keyring and the root key can
//! open every KEK.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::KmsError;

/// A 32-byte root key. Zeroized on drop; never printed.
pub struct RootKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

impl RootKey {
    /// A fresh random root key.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        strongroom_crypto::random::fill(&mut k[..]);
        RootKey(k)
    }

    /// Parses 64 hex digits or base64 (standard or URL-safe, padded or not) of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, KmsError> {
        let t = text.trim();
        let bytes = Zeroizing::new(
            if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
                hex::decode(t).map_err(|_| bad())?
            } else {
                let t = t.trim_end_matches('=');
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(t)
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
                    .map_err(|_| bad())?
            },
        );
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| bad())?;
        Ok(RootKey(Zeroizing::new(arr)))
    }

    /// Uses `env_value` if given, else reads `path`, else creates `path` (0600)
    /// with a fresh key. Returns the key and whether it was just created.
    pub fn load_or_create(env_value: Option<&str>, path: &Path) -> Result<(Self, bool), KmsError> {
        if let Some(v) = env_value {
            return Ok((Self::parse(v)?, false));
        }
        match fs::read_to_string(path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                warn_if_loose(path);
                Ok((Self::parse(&text)?, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let text = Zeroizing::new(hex::encode(&key.0[..]));
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| {
                        KmsError::Internal(crate::Reason::because(
                            format!("creating root key file {}", path.display()),
                            e,
                        ))
                    })?;
                f.write_all(text.as_bytes())
                    .and_then(|_| f.write_all(b"\n"))
                    .and_then(|_| f.sync_all())
                    .map_err(|e| {
                        KmsError::Internal(crate::Reason::because("writing root key file", e))
                    })?;
                crate::soft::sync_parent(path);
                Ok((key, true))
            }
            Err(e) => Err(KmsError::Internal(crate::Reason::because(
                format!("reading root key file {}", path.display()),
                e,
            ))),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn bad() -> KmsError {
    KmsError::Internal("the root key must be 32 bytes, as 64 hex digits or base64".into())
}

/// Warns when a key file is readable by group or others.
pub(crate) fn warn_if_loose(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), "key file is readable by group or others; chmod 600 it");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_and_base64_and_rejects_others() {
        let hexed = "00".repeat(32);
        assert!(RootKey::parse(&hexed).is_ok());
        assert!(
            RootKey::parse(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).is_ok()
        );
        assert!(RootKey::parse("short").is_err());
        assert!(RootKey::parse(&"00".repeat(31)).is_err());
    }

    #[test]
    fn creates_a_private_file_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.key");
        let (a, created) = RootKey::load_or_create(None, &p).unwrap();
        assert!(created);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (b, created) = RootKey::load_or_create(None, &p).unwrap();
        assert!(!created);
        assert_eq!(a.bytes(), b.bytes());
    }
}
