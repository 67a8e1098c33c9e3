//! The JWT signing key: one `EC_SIGN_ED25519` CryptoKeyVersion, its public
//! half fetched and checked at start-up, signatures verified against it.

use bytes::Bytes;
use google_cloud_kms_v1::client::KeyManagementService;
use google_cloud_kms_v1::model::crypto_key_version::CryptoKeyVersionAlgorithm;

use super::call::{self, Failure, Mapping};
use super::integrity::{self, crc32c, matches};
use super::{GcpConfig, GcpKmsProvider};
use crate::KmsError;

/// Fetches and checks the signing key's public half.
pub(super) async fn fetch_public_key(
    client: &KeyManagementService,
    cfg: &GcpConfig,
    max_retries: u32,
) -> Result<[u8; 32], KmsError> {
    let name = cfg.signing_key_version.as_str();
    let key = call::run(call::GET_PUBLIC_KEY, name, max_retries, || async {
        let pk = client.get_public_key().set_name(name).send().await?;
        if !pk.name.is_empty() && pk.name != name {
            return Err(Failure::Corrupt(format!(
                "the public key is for {}, not {name}",
                pk.name
            )));
        }
        if !matches(pk.pem_crc32c, pk.pem.as_bytes()) {
            return Err(Failure::Corrupt("pemCrc32c does not match the PEM".into()));
        }
        Ok(pk)
    })
    .await
    .map_err(|f| {
        call::to_kms_error(
            call::GET_PUBLIC_KEY,
            name,
            f,
            Mapping {
                not_found: KmsError::Internal(
                    format!("[kms.gcp] signing_key_version {name} does not exist").into(),
                ),
                ..Mapping::default()
            },
        )
    })?;
    if key.algorithm != CryptoKeyVersionAlgorithm::EcSignEd25519 {
        return Err(KmsError::Internal(
            format!(
                "[kms.gcp] signing_key_version {name} is {:?}, not EC_SIGN_ED25519",
                key.algorithm
            )
            .into(),
        ));
    }
    integrity::ed25519_from_spki_pem(&key.pem).map_err(|m| {
        KmsError::Internal(format!("[kms.gcp] signing_key_version {name}: {m}").into())
    })
}

impl GcpKmsProvider {
    pub(super) async fn sign_with_key(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError> {
        use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
        let name = self.cfg.signing_key_version.as_str();
        let data = Bytes::copy_from_slice(msg);
        let data_crc = crc32c(msg);
        let public = UnparsedPublicKey::new(&ED25519, self.public.ed25519);
        self.run(
            call::SIGN,
            name,
            Mapping {
                not_found: KmsError::Internal(
                    format!("the signing key {name} no longer exists").into(),
                ),
                ..Mapping::default()
            },
            || async {
                let resp = self
                    .client
                    .asymmetric_sign()
                    .set_name(name)
                    .set_data(data.clone())
                    .set_data_crc32c(data_crc)
                    .send()
                    .await?;
                if !resp.verified_data_crc32c {
                    return Err(Failure::Corrupt(
                        "verifiedDataCrc32c is false: Cloud KMS did not confirm the data it signed"
                            .into(),
                    ));
                }
                if !resp.name.is_empty() && resp.name != name {
                    return Err(Failure::Corrupt(format!(
                        "the signature is from {}, not {name}",
                        resp.name
                    )));
                }
                if !matches(resp.signature_crc32c, &resp.signature) {
                    return Err(Failure::Corrupt(
                        "signatureCrc32c does not match the signature".into(),
                    ));
                }
                if public.verify(msg, &resp.signature).is_err() {
                    return Err(Failure::Corrupt(
                        "the signature does not verify with the signing key's public key".into(),
                    ));
                }
                Ok(resp.signature.to_vec())
            },
        )
        .await
    }
}
