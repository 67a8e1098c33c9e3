//! KEK objects on the token and the DEKs they wrap.
//!
//! A KEK is named by a provider-chosen id, `vault-<vault uuid>-<8 hex>` (the
//! [`KekRef`](crate::KekRef)). Version `n` of it is one secret-key object:
//!
//! | attribute | value |
//! |---|---|
//! | `CKA_CLASS` / `CKA_KEY_TYPE` / `CKA_VALUE_LEN` | `CKO_SECRET_KEY` / `CKK_AES` / 32 |
//! | `CKA_LABEL` | `strongroom-kek:<id>:v<n>` |
//! | `CKA_ID` | `strongroom-kek:<id>` (shared by all versions) |
//! | `CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE` | true |
//! | `CKA_EXTRACTABLE`, `CKA_MODIFIABLE`, `CKA_COPYABLE` | false |
//! | `CKA_ENCRYPT`, `CKA_DECRYPT` | true |
//! | `CKA_WRAP`, `CKA_UNWRAP`, `CKA_SIGN`, `CKA_VERIFY`, `CKA_DERIVE` | false |
//!
//! The token then reports `CKA_NEVER_EXTRACTABLE` and `CKA_ALWAYS_SENSITIVE`.
//!
//! # Wrapped-DEK format
//!
//! `WrappedDek.blob` is `iv (12 bytes) || ciphertext (32) || tag (16)`, 60
//! bytes, and `WrappedDek.kek_version` is the KEK version that wrapped it. The
//! IV is drawn from the OS RNG for every wrap and passed in the GCM
//! parameters; it is read back from the parameters after the call, since some
//! HSMs (FIPS mode) write their own. The caller's AAD is the GCM AAD, so a
//! blob moved to another context fails to unwrap.

use std::collections::BTreeMap;

use cryptoki::context::Function;
use cryptoki::error::Error as CkError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use strongroom_crypto::Dek;
use zeroize::Zeroizing;

use super::session::{Ctx, Inner, is_lost_err, is_stale};
use crate::{KmsError, WrappedDek};

const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const DEK_LEN: usize = 32;
/// The length of every wrapped-DEK blob.
pub const BLOB_LEN: usize = IV_LEN + DEK_LEN + TAG_LEN;
const KEK_LABEL_PREFIX: &str = "strongroom-kek:";

/// The `CKA_LABEL` of version `version` of KEK `id`.
pub fn kek_label(id: &str, version: u32) -> String {
    format!("{KEK_LABEL_PREFIX}{id}:v{version}")
}

/// The `CKA_ID` shared by every version of KEK `id`.
pub fn kek_object_id(id: &str) -> Vec<u8> {
    format!("{KEK_LABEL_PREFIX}{id}").into_bytes()
}

fn parse_kek_label(id: &str, label: &[u8]) -> Option<u32> {
    let label = std::str::from_utf8(label).ok()?;
    let v = label
        .strip_prefix(KEK_LABEL_PREFIX)?
        .strip_prefix(id)?
        .strip_prefix(":v")?;
    if v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|n| *n > 0)
}

/// A KEK id this provider could have made; anything else is not looked up.
fn valid_kek_id(id: &str) -> bool {
    id.starts_with("vault-")
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn kek_template(id: &str, version: u32) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen((DEK_LEN as u64).into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
        Attribute::Modifiable(false),
        Attribute::Copyable(false),
        Attribute::Label(kek_label(id, version).into_bytes()),
        Attribute::Id(kek_object_id(id)),
    ]
}

impl Inner {
    pub(super) fn create_kek(&self, id: &str) -> Result<(), KmsError> {
        self.changing_objects(|c| {
            let h = c
                .session
                .generate_key(&Mechanism::AesKeyGen, &kek_template(id, 1))
                .map_err(|e| c.fail("generating a KEK", e))?;
            c.conn()
                .keks
                .insert(id.to_string(), BTreeMap::from([(1, h)]));
            Ok(())
        })
    }

    pub(super) fn wrap(&self, id: &str, dek: &Dek, aad: &[u8]) -> Result<WrappedDek, KmsError> {
        self.with_session(|c| {
            let (version, iv, ct) = c
                .using_kek(id, None, |v, h| {
                    c.encrypt(h, dek.expose(), aad).map(|(iv, ct)| (v, iv, ct))
                })?
                .map_err(|e| c.fail("wrapping a DEK", e))?;
            if ct.len() != DEK_LEN + TAG_LEN {
                return Err(KmsError::Internal(
                    format!(
                        "the token returned {} bytes of AES-GCM output for a 32-byte DEK",
                        ct.len()
                    )
                    .into(),
                ));
            }
            let mut blob = Vec::with_capacity(BLOB_LEN);
            blob.extend_from_slice(&iv);
            blob.extend_from_slice(&ct);
            Ok(WrappedDek {
                kek_version: version,
                blob,
            })
        })
    }

    pub(super) fn unwrap(
        &self,
        id: &str,
        wrapped: &WrappedDek,
        aad: &[u8],
    ) -> Result<Dek, KmsError> {
        if wrapped.blob.len() != BLOB_LEN {
            return Err(KmsError::Integrity);
        }
        let (iv, data) = wrapped.blob.split_at(IV_LEN);
        let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| KmsError::Integrity)?;
        self.with_session(|c| {
            let plain = c
                .using_kek(id, Some(wrapped.kek_version), |_, h| {
                    c.decrypt(h, iv, data, aad)
                })?
                .map_err(|e| match &e {
                    _ if is_lost_err(&e) => {
                        KmsError::Unavailable(crate::Reason::because("unwrapping a DEK", e))
                    }
                    // A failed tag or AAD check (SoftHSM: CKR_GENERAL_ERROR), or any
                    // other complaint about the data: never retried.
                    CkError::Pkcs11(_, Function::Decrypt) => KmsError::Integrity,
                    _ => c.fail("unwrapping a DEK", e),
                })?;
            Dek::from_slice(&plain).map_err(|_| KmsError::Integrity)
        })
    }

    pub(super) fn rotate_kek(&self, id: &str) -> Result<u32, KmsError> {
        self.changing_objects(|c| {
            let versions = c.load_kek(id)?;
            let next = versions
                .last_key_value()
                .map(|(v, _)| *v)
                .unwrap_or(0)
                .checked_add(1)
                .ok_or_else(|| KmsError::Internal("KEK version overflow".into()))?;
            let h = c
                .session
                .generate_key(&Mechanism::AesKeyGen, &kek_template(id, next))
                .map_err(|e| c.fail("generating a KEK version", e))?;
            c.conn()
                .keks
                .entry(id.to_string())
                .or_default()
                .insert(next, h);
            Ok(next)
        })
    }

    pub(super) fn destroy_kek(&self, id: &str) -> Result<(), KmsError> {
        self.changing_objects(|c| {
            let versions = c.load_kek(id)?;
            c.conn().keks.remove(id);
            for h in versions.values() {
                match c.session.destroy_object(*h) {
                    Ok(()) => {}
                    Err(e) if is_stale(&e) => {}
                    Err(e) => return Err(c.fail("destroying a KEK version", e)),
                }
            }
            let left = c.find(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Id(kek_object_id(id)),
            ])?;
            if !left.is_empty() {
                return Err(KmsError::Internal(
                    format!(
                        "{} objects of the KEK are still on the token after destroying it",
                        left.len()
                    )
                    .into(),
                ));
            }
            Ok(())
        })
    }
}

impl Ctx<'_> {
    /// Every version of a KEK, read from the token (and cached).
    fn load_kek(&self, id: &str) -> Result<BTreeMap<u32, ObjectHandle>, KmsError> {
        if !valid_kek_id(id) {
            return Err(KmsError::KeyNotFound);
        }
        let handles = self.find(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Id(kek_object_id(id)),
        ])?;
        let mut versions = BTreeMap::new();
        for h in handles {
            let attrs = match self.session.get_attributes(h, &[AttributeType::Label]) {
                Ok(a) => a,
                Err(e) if is_stale(&e) => continue,
                Err(e) => return Err(self.fail("reading a KEK label", e)),
            };
            for a in attrs {
                if let Attribute::Label(l) = a
                    && let Some(v) = parse_kek_label(id, &l)
                {
                    versions.insert(v, h);
                }
            }
        }
        if versions.is_empty() {
            self.conn().keks.remove(id);
            return Err(self.not_found());
        }
        self.conn().keks.insert(id.to_string(), versions.clone());
        Ok(versions)
    }

    /// The handle of a KEK version (`None`: the newest), from the cache unless `fresh`.
    fn kek_handle(
        &self,
        id: &str,
        version: Option<u32>,
        fresh: bool,
    ) -> Result<(u32, ObjectHandle), KmsError> {
        let pick = |m: &BTreeMap<u32, ObjectHandle>| match version {
            None => m.last_key_value().map(|(v, h)| (*v, *h)),
            Some(v) => m.get(&v).map(|h| (v, *h)),
        };
        if !fresh && let Some(hit) = self.conn().keks.get(id).and_then(pick) {
            return Ok(hit);
        }
        let versions = self.load_kek(id)?;
        pick(&versions).ok_or_else(|| self.not_found())
    }

    /// Runs `f` with a KEK version's handle; a stale cached handle is looked up
    /// once more. The outer error is the lookup's, the inner one `f`'s.
    fn using_kek<T>(
        &self,
        id: &str,
        version: Option<u32>,
        f: impl Fn(u32, ObjectHandle) -> Result<T, CkError>,
    ) -> Result<Result<T, CkError>, KmsError> {
        let (v, h) = self.kek_handle(id, version, false)?;
        match f(v, h) {
            Err(e) if is_stale(&e) => {
                self.conn().keks.remove(id);
                let (v, h) = self.kek_handle(id, version, true)?;
                match f(v, h) {
                    Err(e) if is_stale(&e) => Err(self.not_found()),
                    r => Ok(r),
                }
            }
            r => Ok(r),
        }
    }

    /// AES-GCM encryption under `key` with a fresh random IV; returns the IV
    /// the token used (read back from the parameters) and `ciphertext || tag`.
    fn encrypt(
        &self,
        key: ObjectHandle,
        plain: &[u8],
        aad: &[u8],
    ) -> Result<([u8; IV_LEN], Vec<u8>), CkError> {
        let mut iv = [0u8; IV_LEN];
        strongroom_crypto::random::fill(&mut iv);
        let ct = {
            let params = GcmParams::new(&mut iv, aad, ((TAG_LEN * 8) as u64).into())?;
            self.session
                .encrypt(&Mechanism::AesGcm(params), key, plain)?
        };
        Ok((iv, ct))
    }

    fn decrypt(
        &self,
        key: ObjectHandle,
        iv: [u8; IV_LEN],
        data: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CkError> {
        let mut iv = iv;
        let params = GcmParams::new(&mut iv, aad, ((TAG_LEN * 8) as u64).into())?;
        self.session
            .decrypt(&Mechanism::AesGcm(params), key, data)
            .map(Zeroizing::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kek_labels_round_trip_and_reject_lookalikes() {
        let id = "vault-0190a5c4-7f3e-7a2b-9c1d-2e3f4a5b6c7d-0a1b2c3d";
        assert!(valid_kek_id(id));
        assert_eq!(parse_kek_label(id, kek_label(id, 7).as_bytes()), Some(7));
        assert_eq!(parse_kek_label(id, b"strongroom-kek:other:v1"), None);
        assert_eq!(
            parse_kek_label(id, format!("{KEK_LABEL_PREFIX}{id}:v0").as_bytes()),
            None
        );
        assert_eq!(
            parse_kek_label(id, format!("{KEK_LABEL_PREFIX}{id}:v01").as_bytes()),
            None
        );
        assert_eq!(
            parse_kek_label(id, format!("{KEK_LABEL_PREFIX}{id}:v+1").as_bytes()),
            None
        );
        assert_eq!(
            parse_kek_label(id, format!("{KEK_LABEL_PREFIX}{id}x:v1").as_bytes()),
            None
        );
        assert!(!valid_kek_id("vault-a:b"));
        assert!(!valid_kek_id("other-1"));
        assert!(!valid_kek_id(&format!("vault-{}", "a".repeat(64))));
    }
}
