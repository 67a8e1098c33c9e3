//! Wrapping and unwrapping DEKs with a vault's KEK (`encrypt` / `decrypt`
//! with the caller's AAD).
//!
//! # What stays in memory
//!
//! The DEK travels to Cloud KMS inside the request (TLS) and back inside the
//! decrypt response. The buffers this module owns are zeroed after use; the
//! client library's own copies (the JSON body, base64 text) are not under our
//! control and are freed without zeroing.

use bytes::Bytes;
use strongroom_crypto::Dek;
use zeroize::Zeroize;

use super::GcpKmsProvider;
use super::call::{self, Failure, Mapping};
use super::config;
use super::integrity::{crc32c, matches};
use crate::{KekRef, KmsError, WrappedDek};

/// Zeroes a buffer once every other handle on it is gone.
fn wipe(b: Bytes) {
    if let Ok(mut m) = b.try_into_mut() {
        m.as_mut().zeroize();
    }
}

impl GcpKmsProvider {
    pub(super) async fn encrypt_dek(
        &self,
        kek: &KekRef,
        dek: &Dek,
        aad: &[u8],
    ) -> Result<WrappedDek, KmsError> {
        self.check_kek(kek)?;
        let plaintext = Bytes::copy_from_slice(dek.expose());
        let plaintext_crc = crc32c(dek.expose());
        let aad_bytes = Bytes::copy_from_slice(aad);
        let aad_crc = (!aad.is_empty()).then(|| crc32c(aad));
        let result = self
            .run(
                call::ENCRYPT,
                &kek.0,
                Mapping {
                    failed_precondition: Some(KmsError::KeyNotFound),
                    ..Mapping::default()
                },
                || async {
                    let resp = self
                        .client
                        .encrypt()
                        .set_name(kek.0.clone())
                        .set_plaintext(plaintext.clone())
                        .set_additional_authenticated_data(aad_bytes.clone())
                        .set_plaintext_crc32c(plaintext_crc)
                        .set_or_clear_additional_authenticated_data_crc32c(aad_crc)
                        .send()
                        .await?;
                    if !resp.verified_plaintext_crc32c {
                        return Err(Failure::Corrupt(
                            "verifiedPlaintextCrc32c is false: Cloud KMS did not confirm \
                             the plaintext it received"
                                .into(),
                        ));
                    }
                    if aad_crc.is_some() && !resp.verified_additional_authenticated_data_crc32c {
                        return Err(Failure::Corrupt(
                            "verifiedAdditionalAuthenticatedDataCrc32c is false: Cloud KMS \
                             did not confirm the AAD it received"
                                .into(),
                        ));
                    }
                    if resp.ciphertext.is_empty()
                        || !matches(resp.ciphertext_crc32c, &resp.ciphertext)
                    {
                        return Err(Failure::Corrupt(
                            "ciphertextCrc32c does not match the ciphertext".into(),
                        ));
                    }
                    let version = config::parse_version_name(&resp.name)
                        .filter(|(key, _)| *key == kek.0)
                        .map(|(_, v)| v)
                        .ok_or_else(|| {
                            Failure::Corrupt(format!(
                                "the response names version {:?}, not a version of {}",
                                resp.name, kek.0
                            ))
                        })?;
                    Ok(WrappedDek {
                        kek_version: version,
                        blob: resp.ciphertext.to_vec(),
                    })
                },
            )
            .await;
        wipe(plaintext);
        result
    }

    pub(super) async fn decrypt_dek(
        &self,
        kek: &KekRef,
        wrapped: &WrappedDek,
        aad: &[u8],
    ) -> Result<std::sync::Arc<Dek>, KmsError> {
        self.check_kek(kek)?;
        let ciphertext = Bytes::copy_from_slice(&wrapped.blob);
        let ciphertext_crc = crc32c(&wrapped.blob);
        let aad_bytes = Bytes::copy_from_slice(aad);
        let aad_crc = (!aad.is_empty()).then(|| crc32c(aad));
        self.run(
            call::DECRYPT,
            &kek.0,
            Mapping {
                invalid_argument: Some(KmsError::Integrity),
                failed_precondition: Some(KmsError::KeyNotFound),
                not_found: KmsError::KeyNotFound,
                corrupt: |m| {
                    tracing::error!(error = %m, "Cloud KMS decrypt response failed its integrity check");
                    KmsError::Integrity
                },
            },
            || async {
                let resp = self
                    .client
                    .decrypt()
                    .set_name(kek.0.clone())
                    .set_ciphertext(ciphertext.clone())
                    .set_ciphertext_crc32c(ciphertext_crc)
                    .set_additional_authenticated_data(aad_bytes.clone())
                    .set_or_clear_additional_authenticated_data_crc32c(aad_crc)
                    .send()
                    .await?;
                let plaintext = resp.plaintext;
                let checked = matches(resp.plaintext_crc32c, &plaintext);
                let dek = if checked {
                    Dek::from_slice(&plaintext).ok()
                } else {
                    None
                };
                let length = plaintext.len();
                wipe(plaintext);
                match dek {
                    Some(d) => Ok(d),
                    None if !checked => Err(Failure::Corrupt(
                        "plaintextCrc32c does not match the plaintext".into(),
                    )),
                    None => Err(Failure::Corrupt(format!(
                        "the plaintext is {length} bytes, not a 32-byte DEK"
                    ))),
                }
            },
        )
        .await
        .map(std::sync::Arc::new)
    }
}
