//! The `pkcs11` key provider: KEKs and the JWT signing key live in a PKCS#11
//! token (an HSM, or SoftHSM2 for development and tests) and never leave it.
//!
//! # What it guarantees
//!
//! - Every vault KEK version is an AES-256 **token** object generated inside
//!   the token, sensitive and non-extractable: no PKCS#11 call returns its
//!   value, to Strongroom or to anyone else. Wrapping and unwrapping run inside
//!   the token (`C_Encrypt` / `C_Decrypt` with `CKM_AES_GCM`).
//! - The JWT key is a token Ed25519 key pair; signing runs inside the token
//!   (`CKM_EDDSA`, pure Ed25519). Its public half is read once, at open.
//! - Keys are found again by label after a restart; nothing but handles is
//!   cached in memory.
//! - Unwrapping fails closed: any decryption failure is [`KmsError::Integrity`]
//!   and is never retried; a missing KEK or KEK version is
//!   [`KmsError::KeyNotFound`]; a missing token, device or session is
//!   [`KmsError::Unavailable`] — never mistaken for a destroyed key.
//! - `destroy_kek` destroys every version object of the KEK (crypto-shredding).
//! - The PIN is never logged or `Debug`-printed.
//!
//!
//! # Layout
//!
//! - `session`: the session pool — finding the token, logging in, checking
//!   sessions out and in, and recovery when the token goes away;
//! - `kek`: KEK objects on the token, wrapping and unwrapping DEKs;
//! - `signing`: the Ed25519 signing key and its self-test;
//! - `module`: the process-wide PKCS#11 context; `config`: the configuration.
//!
//! # Caveats
//!
//! - **SoftHSM2 does not scale with threads**: its internal locks contend, so
//!   two threads with a session each do fewer wrap+unwrap pairs per second than
//!   one (≈35k vs ≈75k pairs/s measured); separate processes do scale. Keep
//!   `sessions` small with SoftHSM; a real HSM may want more. Through this
//!   provider (release build, 2-core VM) one caller gets ≈27k wraps/s and
//!   ≈28k unwraps/s; half of each call is the hop to the blocking pool
//!   (≈18 µs). Ed25519 signing runs at ≈6k/s.
//! - **SoftHSM2 2.6.1 can't create objects while other threads use the
//!   token**: its object files are guarded by `fcntl` locks, which don't
//!   exclude threads of one process, and a `C_GenerateKey` beside a
//!   `C_FindObjects` of another thread fails with `CKR_GENERAL_ERROR` or
//!   `CKR_TEMPLATE_INCONSISTENT` (softhsm/SoftHSMv2#573; seen in our CI, and
//!   in every run of `key_changes_beside_busy_providers_never_fail` without
//!   the ordering). Creating or destroying token objects therefore runs alone
//!   among this process's calls on the module; wraps, unwraps, look-ups and
//!   signatures run beside each other.
//! - Several processes may share one token. A KEK rotated elsewhere is seen
//!   when a version this process doesn't know is asked for (or after a
//!   restart); until then new wraps use the newest version known here, which
//!   still unwraps everywhere. `create_kek`/`rotate_kek`/`destroy_kek`, and
//!   creating the signing key on first open, are serialised within a process
//!   only: open a fresh token from one process first. Should two processes
//!   race and create two signing key pairs, `open` refuses the token until one
//!   pair is deleted.
//! - A PIN given by the protected authentication path is not supported.

mod config;
mod kek;
mod module;
mod session;
mod signing;

pub use config::{
    DEFAULT_MODULE, DEFAULT_SIGNING_KEY_LABEL, MAX_SESSIONS, PIN_ENV, Pkcs11Config, Pkcs11Pin,
};
pub use kek::{BLOB_LEN, kek_label, kek_object_id};

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use strongroom_core::VaultId;
use strongroom_crypto::Dek;

use crate::{
    KekRef, KeyProvider, KmsError, ProviderHealth, Reason, SigningPublicKey, WrappedDek, kid_for,
};
use session::{Conn, Inner};

/// A `pkcs11` key provider. See the [module documentation](self).
pub struct Pkcs11Provider {
    inner: Arc<Inner>,
    public: SigningPublicKey,
}

impl Pkcs11Provider {
    /// Opens the provider: loads the module (once per process), finds the token
    /// by label, logs in, and finds — or on first use creates — the Ed25519
    /// signing key.
    ///
    /// This is a **blocking** call (it talks to the HSM). Call it at start-up,
    /// or from async code through `tokio::task::spawn_blocking`. It fails with
    /// `Unavailable` when the token isn't there and `Internal` for a bad
    /// configuration, a missing PIN, a wrong PIN or a broken signing key.
    pub fn open(mut cfg: Pkcs11Config) -> Result<Self, KmsError> {
        cfg.validate()?;
        let pin = cfg.take_pin()?;
        let module = module::get(&cfg.module)?;
        let inner = Arc::new(Inner {
            module,
            token_label: cfg.token_label,
            signing_key_label: cfg.signing_key_label,
            pin,
            max_idle: cfg.sessions,
            permits: Arc::new(tokio::sync::Semaphore::new(cfg.sessions)),
            conn: Mutex::new(Conn::default()),
            down: AtomicBool::new(false),
        });
        let ed25519 = inner.changing_objects(|c| c.ensure_signing_key())?;
        tracing::info!(
            module = %inner.module.path.display(),
            token = %inner.token_label,
            "PKCS#11 key provider ready"
        );
        Ok(Pkcs11Provider {
            inner,
            public: SigningPublicKey {
                kid: kid_for(&ed25519),
                ed25519,
            },
        })
    }

    /// Runs `f` on tokio's blocking pool once a session permit is free.
    async fn run<T, F>(&self, f: F) -> Result<T, KmsError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, KmsError> + Send + 'static,
    {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| KmsError::Internal("the PKCS#11 session pool is closed".into()))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&inner)
        })
        .await
        .map_err(|e| KmsError::Internal(Reason::because("PKCS#11 call failed", e)))?
    }
}

impl fmt::Debug for Pkcs11Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Provider")
            .field("module", &self.inner.module.path)
            .field("token_label", &self.inner.token_label)
            .field("signing_key_label", &self.inner.signing_key_label)
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeyProvider for Pkcs11Provider {
    fn name(&self) -> &'static str {
        "pkcs11"
    }

    async fn create_kek(&self, vault_id: &VaultId) -> Result<KekRef, KmsError> {
        // A random suffix keeps a re-created vault id from ever reusing a KEK.
        let id = format!(
            "vault-{vault_id}-{}",
            hex::encode(strongroom_crypto::random::bytes(4))
        );
        self.run(move |i| i.create_kek(&id).map(|()| KekRef(id)))
            .await
    }

    async fn wrap(&self, kek: &KekRef, dek: &Dek, aad: &[u8]) -> Result<WrappedDek, KmsError> {
        // The PKCS#11 session runs on a blocking thread, which needs its own
        // copy of the key; it zeroes itself when the call ends.
        let dek = Dek::from_slice(dek.expose()).map_err(|_| KmsError::Integrity)?;
        let (id, aad) = (kek.0.clone(), aad.to_vec());
        self.run(move |i| i.wrap(&id, &dek, &aad)).await
    }

    async fn unwrap(
        &self,
        kek: &KekRef,
        wrapped: &WrappedDek,
        aad: &[u8],
    ) -> Result<std::sync::Arc<Dek>, KmsError> {
        if wrapped.blob.len() != BLOB_LEN {
            return Err(KmsError::Integrity);
        }
        let (id, wrapped, aad) = (kek.0.clone(), wrapped.clone(), aad.to_vec());
        self.run(move |i| i.unwrap(&id, &wrapped, &aad))
            .await
            .map(std::sync::Arc::new)
    }

    async fn rotate_kek(&self, kek: &KekRef) -> Result<u32, KmsError> {
        let id = kek.0.clone();
        self.run(move |i| i.rotate_kek(&id)).await
    }

    async fn destroy_kek(&self, kek: &KekRef) -> Result<(), KmsError> {
        let id = kek.0.clone();
        self.run(move |i| i.destroy_kek(&id)).await
    }

    async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError> {
        let msg = msg.to_vec();
        self.run(move |i| i.with_session(|c| c.sign(&msg))).await
    }

    fn signing_public_key(&self) -> SigningPublicKey {
        self.public.clone()
    }

    async fn health(&self) -> ProviderHealth {
        let r = self
            .run(|i| {
                i.with_session(|c| {
                    c.session
                        .get_session_info()
                        .map_err(|e| c.fail("reading the session state", e))?;
                    c.token_check().map_err(KmsError::Unavailable)
                })
            })
            .await;
        match r {
            Ok(()) => ProviderHealth::Healthy,
            Err(KmsError::Unavailable(m)) => ProviderHealth::Unavailable(m.chain().to_string()),
            Err(e) => ProviderHealth::Unavailable(strongroom_core::Chain(&e).to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_unknown_fields_and_redaction() {
        let cfg: Pkcs11Config =
            serde_json::from_str(r#"{"token_label":"t","pin":"s3cret-pin"}"#).unwrap();
        assert_eq!(cfg.module, std::path::PathBuf::from(DEFAULT_MODULE));
        assert_eq!(cfg.signing_key_label, DEFAULT_SIGNING_KEY_LABEL);
        assert_eq!(cfg.sessions, 2);
        assert!(cfg.validate().is_ok());
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(serde_json::from_str::<Pkcs11Config>(r#"{"token_label":"t","pim":"x"}"#).is_err());
        assert!(serde_json::from_str::<Pkcs11Config>(r#"{"pin":"x"}"#).is_err());
        let mut both: Pkcs11Config =
            serde_json::from_str(r#"{"token_label":"t","pin":"x","pin_file":"/p"}"#).unwrap();
        assert!(both.validate().is_err());
        both.pin = None;
        both.sessions = 0;
        assert!(both.validate().is_err());
    }

    #[test]
    fn pin_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "12 34\n").unwrap();
        let mut cfg = Pkcs11Config::new("t");
        cfg.pin_file = Some(path.clone());
        use cryptoki::types::AuthPin;
        let pin: AuthPin = cfg.take_pin().unwrap();
        use secrecy::ExposeSecret as _;
        assert_eq!(pin.expose_secret(), "12 34");
        std::fs::write(&path, "\n").unwrap();
        assert!(cfg.take_pin().is_err());
    }
}
