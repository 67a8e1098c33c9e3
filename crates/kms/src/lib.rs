//! Key providers: where KEKs and the JWT signing key live.
//!
//! The [`KeyProvider`] trait is the whole boundary between Strongroom and its
//! keys. Callers hand it a DEK and a context AAD and get back an opaque wrapped
//! blob (and the reverse); they never see a KEK. Back-ends:
//!
//! - [`soft::SoftProvider::memory`]: keys in process memory; a restart loses them.
//! - [`soft::SoftProvider::open_file`]: the embedded default, a keyring file sealed
//!   by a root key kept apart from the database.
//!
//! HSM and cloud back-ends implement the same trait.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
pub mod contract;
#[cfg(feature = "gcp")]
pub mod gcp;
mod metered;
pub mod pkcs11;
pub mod root_key;
pub mod soft;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use strongroom_core::VaultId;
use strongroom_crypto::Dek;

pub use metered::Metered;

pub use strongroom_core::Reason;
/// A provider's handle on one vault's KEK (all its versions). Defined beside
/// the stored envelope that records it; re-exported here, where it is issued.
pub use strongroom_crypto::KekRef;

/// A DEK wrapped under one version of a KEK.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedDek {
    /// Which KEK version wrapped it.
    pub kek_version: u32,
    /// The provider's ciphertext of the DEK.
    pub blob: Vec<u8>,
}

impl fmt::Debug for WrappedDek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WrappedDek(v{}, {} bytes)",
            self.kek_version,
            self.blob.len()
        )
    }
}

/// The public half of the JWT signing key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SigningPublicKey {
    /// Key id: published in the JWKS and set in every JWT header.
    pub kid: String,
    /// The raw 32-byte Ed25519 public key.
    pub ed25519: [u8; 32],
}

/// How a provider is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderHealth {
    /// Serving.
    Healthy,
    /// Serving, with a problem worth attention.
    Degraded(String),
    /// Not serving.
    Unavailable(String),
}

/// Errors from a key provider.
///
/// An `Unavailable` or `Internal` holds a [`Reason`]: what the provider was
/// doing, and the error underneath (an I/O error, the PKCS#11 library's
/// `cryptoki::error::Error`), which is this error's `source()`, kept whole on
/// its way to the log. Nothing underneath ever carries key material or a PIN;
/// where an error could quote what was sent or received (a Cloud KMS
/// request or response that failed to (de)serialize), only a message is kept.
#[derive(Debug)]
#[non_exhaustive]
pub enum KmsError {
    /// The KEK (or version) does not exist, or was destroyed.
    KeyNotFound,
    /// Unwrapping failed authentication: wrong key, wrong context or tampering.
    Integrity,
    /// The provider can't be reached right now.
    Unavailable(Reason),
    /// Anything else.
    Internal(Reason),
}

impl std::fmt::Display for KmsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KmsError::KeyNotFound => f.write_str("key not found"),
            KmsError::Integrity => f.write_str("unwrap failed"),
            KmsError::Unavailable(r) => r.fmt_after("key provider unavailable", f),
            KmsError::Internal(r) => r.fmt_after("key provider error", f),
        }
    }
}

impl std::error::Error for KmsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KmsError::Unavailable(r) | KmsError::Internal(r) => r.cause(),
            KmsError::KeyNotFound | KmsError::Integrity => None,
        }
    }
}

impl From<KmsError> for strongroom_core::Error {
    fn from(e: KmsError) -> Self {
        use strongroom_core::{Dependency, Error};
        match e {
            // A missing key means the stored row can't be opened: to the caller
            // that is the same opaque failure as tampering.
            KmsError::KeyNotFound | KmsError::Integrity => Error::Integrity,
            // The provider's own words (for Cloud KMS, full key resource
            // names) stay in `source()`, on their way to the log; the caller
            // hears a fixed message.
            e @ KmsError::Unavailable(_) => Error::unavailable(Dependency::KeyProvider, e),
            e @ KmsError::Internal(_) => Error::internal(e),
        }
    }
}

/// The key-provider boundary. Object safe; every back-end implements it.
#[async_trait]
pub trait KeyProvider: Send + Sync + 'static {
    /// A short name: `memory`, `file`, `pkcs11`, `gcp`.
    fn name(&self) -> &'static str;

    /// Creates a new non-exportable KEK for a vault.
    async fn create_kek(&self, vault_id: &VaultId) -> Result<KekRef, KmsError>;

    /// Wraps a DEK under the KEK's newest version, bound to `aad`.
    async fn wrap(&self, kek: &KekRef, dek: &Dek, aad: &[u8]) -> Result<WrappedDek, KmsError>;

    /// Unwraps a DEK; fails closed on any mismatch of key, version, blob or AAD.
    ///
    /// The DEK comes back shared: a cache in front of the provider hands out
    /// the one copy it holds rather than duplicating key bytes ([`Dek`] is
    /// not `Clone`).
    async fn unwrap(
        &self,
        kek: &KekRef,
        wrapped: &WrappedDek,
        aad: &[u8],
    ) -> Result<Arc<Dek>, KmsError>;

    /// Adds a KEK version; new wraps use it, old versions still unwrap.
    /// Returns the new version number.
    async fn rotate_kek(&self, kek: &KekRef) -> Result<u32, KmsError>;

    /// Destroys every version of the KEK (crypto-shredding).
    async fn destroy_kek(&self, kek: &KekRef) -> Result<(), KmsError>;

    /// Signs a message with the Ed25519 JWT key, inside the provider.
    async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError>;

    /// The public half of the signing key.
    fn signing_public_key(&self) -> SigningPublicKey;

    /// Whether the provider can serve.
    async fn health(&self) -> ProviderHealth;
}

/// A shared provider is a provider (so wrappers such as the DEK cache can sit
/// on top of an `Arc<dyn KeyProvider>`).
#[async_trait]
impl<P: KeyProvider + ?Sized> KeyProvider for Arc<P> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    async fn create_kek(&self, vault_id: &VaultId) -> Result<KekRef, KmsError> {
        (**self).create_kek(vault_id).await
    }
    async fn wrap(&self, kek: &KekRef, dek: &Dek, aad: &[u8]) -> Result<WrappedDek, KmsError> {
        (**self).wrap(kek, dek, aad).await
    }
    async fn unwrap(
        &self,
        kek: &KekRef,
        wrapped: &WrappedDek,
        aad: &[u8],
    ) -> Result<Arc<Dek>, KmsError> {
        (**self).unwrap(kek, wrapped, aad).await
    }
    async fn rotate_kek(&self, kek: &KekRef) -> Result<u32, KmsError> {
        (**self).rotate_kek(kek).await
    }
    async fn destroy_kek(&self, kek: &KekRef) -> Result<(), KmsError> {
        (**self).destroy_kek(kek).await
    }
    async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError> {
        (**self).sign(msg).await
    }
    fn signing_public_key(&self) -> SigningPublicKey {
        (**self).signing_public_key()
    }
    async fn health(&self) -> ProviderHealth {
        (**self).health().await
    }
}

/// The key id for an Ed25519 public key: the first 16 hex digits of its SHA-256.
pub fn kid_for(public: &[u8; 32]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public);
    hex::encode(&d.as_ref()[..8])
}
