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
//! # Where things are
//!
//! - `connect`: credentials, the client and the start-up check;
//! - `keys`: KEK naming and lifecycle (create, rotate, destroy);
//! - `dek`: wrapping and unwrapping DEKs (and what stays in memory);
//! - `signing`: the JWT signing key (its public half, signatures);
//! - `call`: one call with its retries and error mapping; `integrity`: the
//!   checksums; `config`: the configuration and resource names.

mod call;
mod config;
mod connect;
mod dek;
mod integrity;
mod keys;
mod signing;

use async_trait::async_trait;
use google_cloud_kms_v1::client::KeyManagementService;
use strongroom_core::VaultId;
use strongroom_crypto::Dek;

use crate::{KekRef, KeyProvider, KmsError, ProviderHealth, SigningPublicKey, WrappedDek};
use call::{Failure, Mapping, Op};
pub use config::{GcpConfig, GcpProtectionLevel};
use signing::fetch_public_key;

/// Credentials for Cloud KMS, re-exported so callers need not depend on
/// `google-cloud-auth` to pass their own (tests use the anonymous ones).
pub use google_cloud_auth::credentials::Credentials;

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
    /// The key ring that holds every vault's KEK.
    pub fn key_ring(&self) -> &str {
        &self.ring
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
}

#[async_trait]
impl KeyProvider for GcpKmsProvider {
    fn name(&self) -> &'static str {
        "gcp"
    }

    async fn create_kek(&self, vault_id: &VaultId) -> Result<KekRef, KmsError> {
        self.create_key(vault_id).await
    }

    async fn wrap(&self, kek: &KekRef, dek: &Dek, aad: &[u8]) -> Result<WrappedDek, KmsError> {
        self.encrypt_dek(kek, dek, aad).await
    }

    async fn unwrap(
        &self,
        kek: &KekRef,
        wrapped: &WrappedDek,
        aad: &[u8],
    ) -> Result<std::sync::Arc<Dek>, KmsError> {
        self.decrypt_dek(kek, wrapped, aad).await
    }

    async fn rotate_kek(&self, kek: &KekRef) -> Result<u32, KmsError> {
        self.rotate_key(kek).await
    }

    async fn destroy_kek(&self, kek: &KekRef) -> Result<(), KmsError> {
        self.destroy_key(kek).await
    }

    async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError> {
        self.sign_with_key(msg).await
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
            Err(e) => ProviderHealth::Unavailable(strongroom_core::Chain(&e).to_string()),
        }
    }
}
