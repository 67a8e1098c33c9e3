//! KEKs: one CryptoKey per vault, named by the provider, and their
//! lifecycle — create, rotate (a new primary version), destroy (every version
//! scheduled for destruction). Only keys in the configured ring with the
//! provider's naming are ever touched.

use google_cloud_kms_v1::model::{
    CryptoKey, CryptoKeyVersion, CryptoKeyVersionTemplate, ProtectionLevel,
    crypto_key::CryptoKeyPurpose,
    crypto_key_version::{CryptoKeyVersionAlgorithm, CryptoKeyVersionState},
};
use strongroom_core::VaultId;

use super::GcpKmsProvider;
use super::call::{self, Mapping};
use super::config::{self, GcpProtectionLevel};
use crate::{KekRef, KmsError};

/// Page size for listing a key's versions when destroying it.
const LIST_PAGE_SIZE: i32 = 100;
/// A KEK with more versions than this is refused by `destroy_kek` rather than
/// looped over forever.
const MAX_LIST_PAGES: usize = 100;
/// How long `rotate_kek` waits for a new version to leave PENDING_GENERATION.
const GENERATION_POLLS: u32 = 20;

/// `sr-vault-<uuid, 32 hex>-<4 random hex>`: at most 63 characters, unique
/// even when a vault id is reused.
fn kek_id(vault_id: &VaultId) -> String {
    format!(
        "sr-vault-{}-{}",
        vault_id.as_uuid().simple(),
        hex::encode(strongroom_crypto::random::bytes(2))
    )
}

impl GcpKmsProvider {
    /// Only keys this provider creates are used: a `KekRef` read back from a
    /// tampered database row can't point a decrypt, a rotation or a
    /// destruction at another key (the JWT key, another ring).
    pub(super) fn check_kek(&self, kek: &KekRef) -> Result<(), KmsError> {
        let ours = kek
            .0
            .strip_prefix(&self.ring)
            .and_then(|r| r.strip_prefix("/cryptoKeys/sr-vault-"))
            .is_some_and(|id| {
                !id.is_empty()
                    && id.len() <= 63 - "sr-vault-".len()
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if ours {
            Ok(())
        } else {
            tracing::warn!(kek = %kek.0, ring = %self.ring, "refusing a KEK outside the configured key ring");
            Err(KmsError::KeyNotFound)
        }
    }

    /// Creates a version and waits until Cloud KMS has generated it.
    async fn create_version(&self, kek: &KekRef) -> Result<CryptoKeyVersion, KmsError> {
        let mut version = self
            .run(call::CREATE_VERSION, &kek.0, Mapping::default(), || async {
                Ok(self
                    .client
                    .create_crypto_key_version()
                    .set_parent(kek.0.clone())
                    .set_crypto_key_version(CryptoKeyVersion::new())
                    .send()
                    .await?)
            })
            .await?;
        let mut polls = 0;
        while version.state == CryptoKeyVersionState::PendingGeneration {
            polls += 1;
            if polls > GENERATION_POLLS {
                return Err(KmsError::Unavailable(
                    format!("Cloud KMS is still generating {}", version.name).into(),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            let name = version.name.clone();
            version = self
                .run(call::GET_VERSION, &name, Mapping::default(), || async {
                    Ok(self
                        .client
                        .get_crypto_key_version()
                        .set_name(name.clone())
                        .send()
                        .await?)
                })
                .await?;
        }
        if version.state != CryptoKeyVersionState::Enabled {
            return Err(KmsError::Internal(
                format!(
                    "Cloud KMS created {} in state {:?}, not ENABLED",
                    version.name, version.state
                )
                .into(),
            ));
        }
        Ok(version)
    }

    pub(super) async fn create_key(&self, vault_id: &VaultId) -> Result<KekRef, KmsError> {
        let id = kek_id(vault_id);
        let name = format!("{}/cryptoKeys/{id}", self.ring);
        let protection = match self.cfg.protection_level {
            GcpProtectionLevel::Software => ProtectionLevel::Software,
            GcpProtectionLevel::Hsm => ProtectionLevel::Hsm,
        };
        let key = CryptoKey::new()
            .set_purpose(CryptoKeyPurpose::EncryptDecrypt)
            .set_version_template(
                CryptoKeyVersionTemplate::new()
                    .set_protection_level(protection)
                    .set_algorithm(CryptoKeyVersionAlgorithm::GoogleSymmetricEncryption),
            )
            .set_labels([
                ("managed-by", "strongroom".to_owned()),
                ("strongroom-vault", vault_id.as_uuid().simple().to_string()),
            ]);
        let mut attempts = 0u32;
        let name_ref = name.as_str();
        let created = self
            .run(
                call::CREATE_KEY,
                &name,
                Mapping {
                    not_found: KmsError::Internal(
                        format!(
                            "the key ring {} does not exist (or the service account can't see it); \
                         create it first, see docs/operations/gcp-kms.md",
                            self.ring
                        )
                        .into(),
                    ),
                    ..Mapping::default()
                },
                || {
                    attempts += 1;
                    let retried = attempts > 1;
                    let key = key.clone();
                    let id = id.clone();
                    async move {
                        match self
                            .client
                            .create_crypto_key()
                            .set_parent(self.ring.clone())
                            .set_crypto_key_id(id)
                            .set_crypto_key(key)
                            .send()
                            .await
                        {
                            Ok(k) => Ok(k),
                            // A retry after an attempt that did land: the id
                            // is random and ours alone, so the key is ours.
                            Err(e)
                                if retried
                                    && e.status().is_some_and(|s| {
                                        s.code == google_cloud_gax::error::rpc::Code::AlreadyExists
                                    }) =>
                            {
                                Ok(self
                                    .client
                                    .get_crypto_key()
                                    .set_name(name_ref)
                                    .send()
                                    .await?)
                            }
                            Err(e) => Err(e.into()),
                        }
                    }
                },
            )
            .await?;
        if created.name != name || created.purpose != CryptoKeyPurpose::EncryptDecrypt {
            return Err(KmsError::Internal(
                format!(
                    "Cloud KMS created {:?} with purpose {:?}, expected {name} for ENCRYPT_DECRYPT",
                    created.name, created.purpose
                )
                .into(),
            ));
        }
        tracing::info!(kek = %name, vault = %vault_id, "created a KEK in Cloud KMS");
        Ok(KekRef(name))
    }

    pub(super) async fn rotate_key(&self, kek: &KekRef) -> Result<u32, KmsError> {
        self.check_kek(kek)?;
        let version = self.create_version(kek).await?;
        let number = match config::parse_version_name(&version.name) {
            Some((key, n)) if key == kek.0 => n,
            _ => {
                return Err(KmsError::Internal(
                    format!(
                        "Cloud KMS created {:?}, not a version of {}",
                        version.name, kek.0
                    )
                    .into(),
                ));
            }
        };
        let updated = self
            .run(call::UPDATE_PRIMARY, &kek.0, Mapping::default(), || async {
                Ok(self
                    .client
                    .update_crypto_key_primary_version()
                    .set_name(kek.0.clone())
                    .set_crypto_key_version_id(number.to_string())
                    .send()
                    .await?)
            })
            .await?;
        if updated.primary.as_ref().map(|p| p.name.as_str()) != Some(version.name.as_str()) {
            return Err(KmsError::Internal(
                format!(
                    "Cloud KMS did not make {} the primary version of {}",
                    version.name, kek.0
                )
                .into(),
            ));
        }
        tracing::info!(kek = %kek.0, version = number, "rotated a KEK in Cloud KMS");
        Ok(number)
    }

    pub(super) async fn destroy_key(&self, kek: &KekRef) -> Result<(), KmsError> {
        self.check_kek(kek)?;
        let mut versions = Vec::new();
        let mut page_token = String::new();
        for page in 0.. {
            if page == MAX_LIST_PAGES {
                return Err(KmsError::Internal(
                    format!(
                        "{} has more than {} versions; destroy them with gcloud",
                        kek.0,
                        MAX_LIST_PAGES * LIST_PAGE_SIZE as usize
                    )
                    .into(),
                ));
            }
            let token = page_token.clone();
            let resp = self
                .run(call::LIST_VERSIONS, &kek.0, Mapping::default(), || async {
                    Ok(self
                        .client
                        .list_crypto_key_versions()
                        .set_parent(kek.0.clone())
                        .set_page_size(LIST_PAGE_SIZE)
                        .set_page_token(token.clone())
                        .send()
                        .await?)
                })
                .await?;
            versions.extend(resp.crypto_key_versions);
            if resp.next_page_token.is_empty() {
                break;
            }
            page_token = resp.next_page_token;
        }
        let mut destroyed = 0;
        for v in versions {
            if matches!(
                v.state,
                CryptoKeyVersionState::Destroyed | CryptoKeyVersionState::DestroyScheduled
            ) {
                continue;
            }
            let name = v.name;
            self.run(call::DESTROY_VERSION, &name, Mapping::default(), || async {
                match self
                    .client
                    .destroy_crypto_key_version()
                    .set_name(name.clone())
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    // FAILED_PRECONDITION: already scheduled, perhaps by
                    // an earlier attempt or a concurrent destroy.
                    Err(e)
                        if e.status().is_some_and(|s| {
                            s.code == google_cloud_gax::error::rpc::Code::FailedPrecondition
                        }) =>
                    {
                        let now = self
                            .client
                            .get_crypto_key_version()
                            .set_name(name.clone())
                            .send()
                            .await?;
                        if matches!(
                            now.state,
                            CryptoKeyVersionState::Destroyed
                                | CryptoKeyVersionState::DestroyScheduled
                        ) {
                            Ok(())
                        } else {
                            Err(e.into())
                        }
                    }
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
            destroyed += 1;
        }
        tracing::info!(kek = %kek.0, versions = destroyed, "scheduled a KEK's destruction in Cloud KMS");
        Ok(())
    }
}
