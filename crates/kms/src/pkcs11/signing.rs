//! The JWT signing key: an Ed25519 key pair on the token.
//!
//! The signing key (`CKM_EC_EDWARDS_KEY_PAIR_GEN`, `CKA_EC_PARAMS` = the OID
//! 1.3.101.112, `06 03 2B 65 70`) is created on the first open if no object
//! carries `signing_key_label`:
//!
//! - private: `CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE`, `CKA_SIGN` true;
//!   `CKA_EXTRACTABLE`, `CKA_DERIVE`, `CKA_MODIFIABLE` false;
//! - public: `CKA_TOKEN`, `CKA_VERIFY` true; `CKA_PRIVATE`, `CKA_MODIFIABLE` false;
//! - both: `CKA_LABEL` = `CKA_ID` = `signing_key_label`.
//!
//! At open the provider signs a fixed message and verifies it with the public
//! half, so a mismatched or foreign key pair is refused.

use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};

use super::session::{Ctx, is_stale};
use crate::KmsError;

/// DER of the Ed25519 OID 1.3.101.112, the `CKA_EC_PARAMS` of the signing key.
const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2B, 0x65, 0x70];
const SELF_TEST_MESSAGE: &[u8] = b"strongroom/pkcs11/signing-key-self-test";

/// The raw 32-byte key from `CKA_EC_POINT`: a DER OCTET STRING around it (as
/// PKCS#11 3.0 specifies) or, from some modules, the bare bytes.
fn parse_ec_point(v: &[u8]) -> Option<[u8; 32]> {
    let raw = match v {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        [0x04, 0x81, 0x20, rest @ ..] if rest.len() == 32 => rest,
        _ if v.len() == 32 => v,
        _ => return None,
    };
    raw.try_into().ok()
}

impl Ctx<'_> {
    fn signing_handle(&self, fresh: bool) -> Result<ObjectHandle, KmsError> {
        if !fresh && let Some(h) = self.conn().signing {
            return Ok(h);
        }
        let label = &self.inner.signing_key_label;
        let found = self.find(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])?;
        match found.as_slice() {
            [h] => {
                self.conn().signing = Some(*h);
                Ok(*h)
            }
            [] => Err(match self.token_check() {
                Ok(()) => KmsError::Internal(
                    format!("the signing key '{label}' is missing from the token").into(),
                ),
                Err(m) => KmsError::Unavailable(m),
            }),
            many => Err(KmsError::Internal(
                format!(
                    "{} private keys on the token are labelled '{label}'",
                    many.len()
                )
                .into(),
            )),
        }
    }

    pub(super) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError> {
        let mech = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let h = self.signing_handle(false)?;
        let r = match self.session.sign(&mech, h, msg) {
            Err(e) if is_stale(&e) => {
                self.conn().signing = None;
                let h = self.signing_handle(true)?;
                self.session.sign(&mech, h, msg)
            }
            r => r,
        };
        let sig = r.map_err(|e| self.fail("signing", e))?;
        if sig.len() != 64 {
            return Err(KmsError::Internal(
                format!("the token returned a {}-byte Ed25519 signature", sig.len()).into(),
            ));
        }
        Ok(sig)
    }

    /// Finds the signing key pair (creating it if the token has none) and
    /// returns its raw public key, after a sign/verify self-test.
    pub(super) fn ensure_signing_key(&self) -> Result<[u8; 32], KmsError> {
        let label = self.inner.signing_key_label.as_bytes().to_vec();
        let with_label = |class| [Attribute::Class(class), Attribute::Label(label.clone())];
        let privs = self.find(&with_label(ObjectClass::PRIVATE_KEY))?;
        let pubs = self.find(&with_label(ObjectClass::PUBLIC_KEY))?;
        let public = match (privs.as_slice(), pubs.as_slice()) {
            ([], []) => {
                tracing::info!(
                    token = %self.inner.token_label,
                    label = %self.inner.signing_key_label,
                    "creating the Ed25519 signing key on the token"
                );
                let public_template = [
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Verify(true),
                    Attribute::Modifiable(false),
                    Attribute::EcParams(ED25519_OID.to_vec()),
                    Attribute::Label(label.clone()),
                    Attribute::Id(label.clone()),
                ];
                let private_template = [
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Sign(true),
                    Attribute::Derive(false),
                    Attribute::Modifiable(false),
                    Attribute::Label(label.clone()),
                    Attribute::Id(label.clone()),
                ];
                let (public, private) = self
                    .session
                    .generate_key_pair(
                        &Mechanism::EccEdwardsKeyPairGen,
                        &public_template,
                        &private_template,
                    )
                    .map_err(|e| self.fail("generating the signing key", e))?;
                self.conn().signing = Some(private);
                public
            }
            ([private], [public]) => {
                let kt = self
                    .session
                    .get_attributes(*private, &[AttributeType::KeyType])
                    .map_err(|e| self.fail("reading the signing key", e))?;
                if !kt.contains(&Attribute::KeyType(KeyType::EC_EDWARDS)) {
                    return Err(KmsError::Internal(
                        format!(
                            "the key labelled '{}' on the token is not an Ed25519 key",
                            self.inner.signing_key_label
                        )
                        .into(),
                    ));
                }
                self.conn().signing = Some(*private);
                *public
            }
            (p, q) => {
                return Err(KmsError::Internal(
                    format!(
                        "the token holds {} private and {} public objects labelled '{}'; \
                     expected one Ed25519 key pair",
                        p.len(),
                        q.len(),
                        self.inner.signing_key_label
                    )
                    .into(),
                ));
            }
        };
        let attrs = self
            .session
            .get_attributes(public, &[AttributeType::EcPoint])
            .map_err(|e| self.fail("reading the signing public key", e))?;
        let ed25519 = attrs
            .iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => parse_ec_point(p),
                _ => None,
            })
            .ok_or_else(|| {
                KmsError::Internal("the signing key's CKA_EC_POINT is not an Ed25519 key".into())
            })?;
        let sig = self.sign(SELF_TEST_MESSAGE)?;
        aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, ed25519)
            .verify(SELF_TEST_MESSAGE, &sig)
            .map_err(|_| {
                KmsError::Internal(
                    "the signing key's private half does not match its public half".into(),
                )
            })?;
        Ok(ed25519)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_points_parse_wrapped_and_raw() {
        let key: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
        let mut der = vec![0x04, 0x20];
        der.extend_from_slice(&key);
        assert_eq!(parse_ec_point(&der), Some(key));
        assert_eq!(parse_ec_point(&key), Some(key));
        let mut long = vec![0x04, 0x81, 0x20];
        long.extend_from_slice(&key);
        assert_eq!(parse_ec_point(&long), Some(key));
        // A raw key that happens to start like DER is still 32 bytes: raw.
        let mut tricky = key;
        tricky[0] = 0x04;
        tricky[1] = 0x20;
        assert_eq!(parse_ec_point(&tricky), Some(tricky));
        assert_eq!(parse_ec_point(&der[..33]), None);
        assert_eq!(parse_ec_point(&[0x04, 0x41, 1, 2]), None);
        assert_eq!(parse_ec_point(&[]), None);
    }
}
