//! The `gcp` key provider: KEKs and the JWT signing key in Google Cloud KMS,
//! through Google's official `google-cloud-kms-v1` client (REST transport).
//!
//! # Layout
//!
//! - One key ring, made by the operator (`key_ring` in [`GcpConfig`]).
//! - One CryptoKey per vault, `sr-vault-<vault uuid>-<4 random hex>`, purpose
//!   `ENCRYPT_DECRYPT`, algorithm `GOOGLE_SYMMETRIC_ENCRYPTION`, protection
//!   level `SOFTWARE` or `HSM`. [`KekRef`] holds its resource name. Rotation
//!   adds a CryptoKeyVersion and makes it primary; `encrypt` always uses the
//!   primary, `decrypt` finds the version from the ciphertext, so old wraps
//!   keep opening. Destroying a KEK schedules every version for destruction
//!   (crypto-shredding; Cloud KMS destroys the material after the key's
//!   `destroy_scheduled_duration`, 30 days unless set otherwise, and until
//!   then nothing can use it unless an administrator restores it).
//! - One `EC_SIGN_ED25519` CryptoKeyVersion for JWTs, `signing_key_version`,
//!   used through `asymmetricSign`. Its public key is fetched once, at
//!   [`GcpKmsProvider::connect`].
//!
//! # Integrity
//!
//! Every call sends CRC32C checksums of its inputs and checks those of its
//! outputs, as Google recommends: `encrypt` must report
//! `verifiedPlaintextCrc32c` (and `verifiedAdditionalAuthenticatedDataCrc32c`
//! when there is AAD) and return a ciphertext matching `ciphertextCrc32c`;
//! `decrypt` must return a plaintext matching `plaintextCrc32c`;
//! `asymmetricSign` must report `verifiedDataCrc32c` and return a signature
//! matching `signatureCrc32c`, which is also verified against the public key.
//! A response that fails a check is retried like a transient error and, once
//! retries are spent, is an error: never a result.
//!
//! # What stays in memory
//!
//! The DEK travels to Cloud KMS inside the request (TLS) and back inside the
//! decrypt response. The buffers this module owns are zeroed after use; the
//! client library's own copies (the JSON body, base64 text) are not under our
//! control and are freed without zeroing.

mod call;
mod config;
mod integrity;

use async_trait::async_trait;
use bytes::Bytes;
use google_cloud_kms_v1::client::KeyManagementService;
use google_cloud_kms_v1::model::{
    CryptoKey, CryptoKeyVersion, CryptoKeyVersionTemplate, ProtectionLevel,
    crypto_key::CryptoKeyPurpose,
    crypto_key_version::{CryptoKeyVersionAlgorithm, CryptoKeyVersionState},
};
use strongroom_core::VaultId;
use strongroom_crypto::Dek;
use zeroize::Zeroize;

use crate::{KekRef, KeyProvider, KmsError, ProviderHealth, SigningPublicKey, WrappedDek, kid_for};
use call::{Failure, Mapping, Op};
pub use config::{GcpConfig, GcpProtectionLevel};
use integrity::{crc32c, matches};

/// Credentials for Cloud KMS, re-exported so callers need not depend on
/// `google-cloud-auth` to pass their own (tests use the anonymous ones).
pub use google_cloud_auth::credentials::Credentials;

/// Page size for listing a key's versions when destroying it.
const LIST_PAGE_SIZE: i32 = 100;
/// A KEK with more versions than this is refused by `destroy_kek` rather than
/// looped over forever.
const MAX_LIST_PAGES: usize = 100;
/// How long `rotate_kek` waits for a new version to leave PENDING_GENERATION.
const GENERATION_POLLS: u32 = 20;

/// Keys in Google Cloud KMS. See the module documentation.
pub struct GcpKmsProvider {
    client: KeyManagementService,
    cfg: GcpConfig,
    ring: String,
    public: SigningPublicKey,
}

impl std::fmt::Debug for GcpKmsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpKmsProvider")
            .field("key_ring", &self.ring)
            .field("signing_key_version", &self.cfg.signing_key_version)
            .field("kid", &self.public.kid)
            .finish()
    }
}

impl GcpKmsProvider {
    /// Connects with the configured credentials: `credentials_file` if set,
    /// none if `anonymous` (a loopback stand-in in tests), else Application
    /// Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, then the
    /// metadata server). Fetches the signing public key, so a wrong
    /// key name, a missing permission or an unreachable API fails here, at
    /// start-up.
    pub async fn connect(cfg: GcpConfig) -> Result<Self, KmsError> {
        cfg.validate()?;
        let credentials = match &cfg.credentials_file {
            Some(path) => Some(service_account_credentials(path)?),
            // `validate` allows this only with a plain-http loopback endpoint.
            None if cfg.anonymous => {
                tracing::warn!(
                    "[kms.gcp] anonymous = true: no credentials are sent (tests against a local stand-in only)"
                );
                Some(google_cloud_auth::credentials::anonymous::Builder::new().build())
            }
            None => None,
        };
        Self::build(cfg, credentials).await
    }

    /// Like [`connect`](Self::connect) with explicit credentials instead of
    /// `credentials_file` / ADC: for workload-identity setups built by the
    /// caller, and for tests against a local stand-in, which use
    /// `google_cloud_auth::credentials::anonymous::Builder::new().build()`.
    pub async fn connect_with_credentials(
        cfg: GcpConfig,
        credentials: Credentials,
    ) -> Result<Self, KmsError> {
        cfg.validate()?;
        Self::build(cfg, Some(credentials)).await
    }

    async fn build(cfg: GcpConfig, credentials: Option<Credentials>) -> Result<Self, KmsError> {
        let mut builder = KeyManagementService::builder()
            // Retries are ours (see `call`): the client's default only retries
            // GET/PUT/DELETE, and would stack a second loop on top of ours.
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
            .with_attempt_timeout(cfg.timeout());
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        if let Some(c) = credentials {
            builder = builder.with_credentials(c);
        }
        let client = builder
            .build()
            .await
            .map_err(|e| KmsError::Internal(format!("building the Cloud KMS client: {e}")))?;
        let ring = cfg.key_ring_name();
        let ed25519 = fetch_public_key(&client, &cfg, cfg.max_retries).await?;
        let public = SigningPublicKey {
            kid: kid_for(&ed25519),
            ed25519,
        };
        tracing::info!(
            key_ring = %ring,
            signing_key_version = %cfg.signing_key_version,
            kid = %public.kid,
            "Cloud KMS key provider ready"
        );
        Ok(GcpKmsProvider {
            client,
            cfg,
            ring,
            public,
        })
    }

    /// The key ring that holds every vault's KEK.
    pub fn key_ring(&self) -> &str {
        &self.ring
    }

    /// Only keys this provider creates are used: a `KekRef` read back from a
    /// tampered database row can't point a decrypt, a rotation or a
    /// destruction at another key (the JWT key, another ring).
    fn check_kek(&self, kek: &KekRef) -> Result<(), KmsError> {
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

    async fn run<T, Fut>(
        &self,
        op: Op,
        resource: &str,
        map: Mapping,
        attempt: impl FnMut() -> Fut,
    ) -> Result<T, KmsError>
    where
        Fut: Future<Output = Result<T, Failure>>,
    {
        call::run(op, resource, self.cfg.max_retries, attempt)
            .await
            .map_err(|f| call::to_kms_error(op, resource, f, map))
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
                return Err(KmsError::Unavailable(format!(
                    "Cloud KMS is still generating {}",
                    version.name
                )));
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
            return Err(KmsError::Internal(format!(
                "Cloud KMS created {} in state {:?}, not ENABLED",
                version.name, version.state
            )));
        }
        Ok(version)
    }
}

/// Reads a service-account key file. It holds a private key: warn when other
/// users can read it.
fn service_account_credentials(path: &std::path::Path) -> Result<Credentials, KmsError> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        KmsError::Internal(format!(
            "[kms.gcp] credentials_file {}: {e}",
            path.display()
        ))
    })?);
    crate::root_key::warn_if_loose(path);
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
        KmsError::Internal(format!(
            "[kms.gcp] credentials_file {} is not JSON",
            path.display()
        ))
    })?;
    if json.get("type").and_then(|t| t.as_str()) != Some("service_account") {
        return Err(KmsError::Internal(format!(
            "[kms.gcp] credentials_file {} is not a service-account key \
             (\"type\": \"service_account\"); for other credential types use \
             GOOGLE_APPLICATION_CREDENTIALS",
            path.display()
        )));
    }
    google_cloud_auth::credentials::service_account::Builder::new(json)
        .build()
        .map_err(|e| {
            KmsError::Internal(format!(
                "[kms.gcp] credentials_file {}: {e}",
                path.display()
            ))
        })
}

/// Fetches and checks the signing key's public half.
async fn fetch_public_key(
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
                not_found: KmsError::Internal(format!(
                    "[kms.gcp] signing_key_version {name} does not exist"
                )),
                ..Mapping::default()
            },
        )
    })?;
    if key.algorithm != CryptoKeyVersionAlgorithm::EcSignEd25519 {
        return Err(KmsError::Internal(format!(
            "[kms.gcp] signing_key_version {name} is {:?}, not EC_SIGN_ED25519",
            key.algorithm
        )));
    }
    integrity::ed25519_from_spki_pem(&key.pem)
        .map_err(|m| KmsError::Internal(format!("[kms.gcp] signing_key_version {name}: {m}")))
}

/// Zeroes a buffer once every other handle on it is gone.
fn wipe(b: Bytes) {
    if let Ok(mut m) = b.try_into_mut() {
        m.as_mut().zeroize();
    }
}

/// `sr-vault-<uuid, 32 hex>-<4 random hex>`: at most 63 characters, unique
/// even when a vault id is reused.
fn kek_id(vault_id: &VaultId) -> String {
    format!(
        "sr-vault-{}-{}",
        vault_id.as_uuid().simple(),
        hex::encode(strongroom_crypto::random::bytes(2))
    )
}

#[async_trait]
impl KeyProvider for GcpKmsProvider {
    fn name(&self) -> &'static str {
        "gcp"
    }

    async fn create_kek(&self, vault_id: &VaultId) -> Result<KekRef, KmsError> {
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
                    not_found: KmsError::Internal(format!(
                        "the key ring {} does not exist (or the service account can't see it); \
                         create it first, see docs/operations/gcp-kms.md",
                        self.ring
                    )),
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
            return Err(KmsError::Internal(format!(
                "Cloud KMS created {:?} with purpose {:?}, expected {name} for ENCRYPT_DECRYPT",
                created.name, created.purpose
            )));
        }
        tracing::info!(kek = %name, vault = %vault_id, "created a KEK in Cloud KMS");
        Ok(KekRef(name))
    }

    async fn wrap(&self, kek: &KekRef, dek: &Dek, aad: &[u8]) -> Result<WrappedDek, KmsError> {
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

    async fn unwrap(
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

    async fn rotate_kek(&self, kek: &KekRef) -> Result<u32, KmsError> {
        self.check_kek(kek)?;
        let version = self.create_version(kek).await?;
        let number = match config::parse_version_name(&version.name) {
            Some((key, n)) if key == kek.0 => n,
            _ => {
                return Err(KmsError::Internal(format!(
                    "Cloud KMS created {:?}, not a version of {}",
                    version.name, kek.0
                )));
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
            return Err(KmsError::Internal(format!(
                "Cloud KMS did not make {} the primary version of {}",
                version.name, kek.0
            )));
        }
        tracing::info!(kek = %kek.0, version = number, "rotated a KEK in Cloud KMS");
        Ok(number)
    }

    async fn destroy_kek(&self, kek: &KekRef) -> Result<(), KmsError> {
        self.check_kek(kek)?;
        let mut versions = Vec::new();
        let mut page_token = String::new();
        for page in 0.. {
            if page == MAX_LIST_PAGES {
                return Err(KmsError::Internal(format!(
                    "{} has more than {} versions; destroy them with gcloud",
                    kek.0,
                    MAX_LIST_PAGES * LIST_PAGE_SIZE as usize
                )));
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

    async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError> {
        use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
        let name = self.cfg.signing_key_version.as_str();
        let data = Bytes::copy_from_slice(msg);
        let data_crc = crc32c(msg);
        let public = UnparsedPublicKey::new(&ED25519, self.public.ed25519);
        self.run(
            call::SIGN,
            name,
            Mapping {
                not_found: KmsError::Internal(format!("the signing key {name} no longer exists")),
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

    fn signing_public_key(&self) -> SigningPublicKey {
        self.public.clone()
    }

    /// One `getPublicKey` on the signing key: it proves the API is reachable,
    /// the credentials work and the key is still the one we publish, with the
    /// permission the provider needs anyway (`getCryptoKeyVersion` would need
    /// `cloudkms.cryptoKeyVersions.get`, which `signerVerifier` lacks). One
    /// attempt, no retries: a probe should answer within `timeout_ms`.
    async fn health(&self) -> ProviderHealth {
        match fetch_public_key(&self.client, &self.cfg, 0).await {
            Ok(k) if k == self.public.ed25519 => ProviderHealth::Healthy,
            Ok(_) => ProviderHealth::Unavailable(format!(
                "the public key of {} changed since start-up",
                self.cfg.signing_key_version
            )),
            Err(e) => ProviderHealth::Unavailable(e.to_string()),
        }
    }
}
