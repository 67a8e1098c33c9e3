//! The envelope service: the one place a secret value is sealed, opened and
//! rewrapped, over the key provider.
//!
//! This is Tink's `KmsEnvelopeAead` composition — a remote AEAD (the key
//! provider) wraps a local DEK that seals the value — with three changes:
//! the envelope format is versioned ([`ENVELOPE_VERSION`] in every row), the
//! KEK version that wrapped the DEK is recorded (so rotation is a rewrap, not
//! a re-encryption), and the DEK wrap is bound to the same context as the
//! payload ([`SecretContext::dek_wrap_aad`]; Tink wraps with empty AAD), so a
//! wrapped DEK copied to another row does not unwrap.
//!
//! No use case handles DEK bytes or rebuilds key references: they pass a
//! [`SecretContext`] and get a [`StoredEnvelope`] or the plaintext back.
//!
//! Errors: a failure to authenticate anything (unwrap refused, KEK or version
//! gone, tag mismatch, malformed stored lengths, unknown format version) is
//! the one opaque [`Error::Integrity`]; a provider that can't be reached stays
//! [`Error::Unavailable`] (the row is fine, the provider is not).

use std::sync::Arc;

use strongroom_core::{Error, Result};
use strongroom_crypto::envelope::{self, ENVELOPE_VERSION};
use strongroom_crypto::{Dek, KekRef, SecretBytes, SecretContext, StoredEnvelope};
use strongroom_kms::{KeyProvider, KmsError, WrappedDek};
use strongroom_store::WrapRow;

/// A DEK as it is stored: wrapped under one version of one KEK. The part of a
/// [`StoredEnvelope`] that rotation and migration replace (their work lists
/// carry no ciphertext).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StoredWrap {
    /// The KEK that wrapped it.
    pub kek_ref: KekRef,
    /// The provider's wrap: KEK version and blob.
    pub wrapped: WrappedDek,
}

impl StoredWrap {
    /// The wrap of a row on a rotation or migration work list.
    pub fn of_row(w: &WrapRow) -> Self {
        StoredWrap {
            kek_ref: w.kek_ref.clone(),
            wrapped: WrappedDek {
                kek_version: w.kek_version,
                blob: w.wrapped_dek.clone(),
            },
        }
    }

    /// The wrap part of a stored envelope.
    pub fn of(e: &StoredEnvelope) -> Self {
        StoredWrap {
            kek_ref: e.kek_ref.clone(),
            wrapped: WrappedDek {
                kek_version: e.kek_version,
                blob: e.wrapped_dek.clone(),
            },
        }
    }
}

/// Seals, opens and rewraps secret values; see the module docs.
#[derive(Clone)]
pub struct EnvelopeCipher {
    kms: Arc<dyn KeyProvider>,
}

impl EnvelopeCipher {
    /// The service over a key provider.
    pub fn new(kms: Arc<dyn KeyProvider>) -> Self {
        EnvelopeCipher { kms }
    }

    /// Seals `value` for `ctx` under a fresh DEK, wrapped by the newest
    /// version of `kek`.
    pub async fn seal(
        &self,
        ctx: &SecretContext<'_>,
        kek: &KekRef,
        value: &SecretBytes,
    ) -> Result<StoredEnvelope> {
        let dek = Dek::generate();
        let sealed = envelope::seal(&dek, value.expose(), &ctx.secret_aad());
        let wrapped = self.kms.wrap(kek, &dek, &ctx.dek_wrap_aad()).await?;
        Ok(StoredEnvelope {
            envelope_version: ENVELOPE_VERSION,
            ciphertext: sealed.ciphertext,
            iv: sealed.iv.to_vec(),
            auth_tag: sealed.tag.to_vec(),
            wrapped_dek: wrapped.blob,
            kek_ref: kek.clone(),
            kek_version: wrapped.kek_version,
        })
    }

    /// Opens `stored` as the value of `ctx`: the place it is read from, so an
    /// envelope copied to any other place fails.
    pub async fn open(
        &self,
        ctx: &SecretContext<'_>,
        stored: &StoredEnvelope,
    ) -> Result<SecretBytes> {
        let sealed = stored.sealed().map_err(|_| Error::Integrity)?;
        let wrap = StoredWrap::of(stored);
        let dek = unwrap(&*self.kms, ctx, &wrap).await?;
        envelope::open(&dek, &sealed, &ctx.secret_aad()).map_err(|_| Error::Integrity)
    }

    /// The same envelope with its DEK wrapped anew under the newest version
    /// of `target`. The payload (nonce, ciphertext, tag) is carried over as is.
    pub async fn rewrap(
        &self,
        ctx: &SecretContext<'_>,
        stored: &StoredEnvelope,
        target: &KekRef,
    ) -> Result<StoredEnvelope> {
        let new = self
            .rewrap_dek(ctx, &StoredWrap::of(stored), target)
            .await?;
        Ok(StoredEnvelope {
            wrapped_dek: new.wrapped.blob,
            kek_ref: new.kek_ref,
            kek_version: new.wrapped.kek_version,
            ..stored.clone()
        })
    }

    /// [`EnvelopeCipher::rewrap`] of the wrap alone (what rotation works on).
    pub async fn rewrap_dek(
        &self,
        ctx: &SecretContext<'_>,
        wrap: &StoredWrap,
        target: &KekRef,
    ) -> Result<StoredWrap> {
        rewrap_between(&*self.kms, &*self.kms, ctx, wrap, target).await
    }
}

/// Unwraps a stored DEK for `ctx`. A provider's refusal or a missing KEK is
/// [`Error::Integrity`] (see `From<KmsError>`).
async fn unwrap(
    kms: &dyn KeyProvider,
    ctx: &SecretContext<'_>,
    wrap: &StoredWrap,
) -> Result<Arc<Dek>> {
    kms.unwrap(&wrap.kek_ref, &wrap.wrapped, &ctx.dek_wrap_aad())
        .await
        .map_err(|e: KmsError| e.into())
}

/// The DEK of `wrap`, unwrapped by `source` and wrapped anew by `target`
/// under `target_kek`, with the same context AAD. Rotation passes one
/// provider twice; a migration between providers passes both.
pub(crate) async fn rewrap_between(
    source: &dyn KeyProvider,
    target: &dyn KeyProvider,
    ctx: &SecretContext<'_>,
    wrap: &StoredWrap,
    target_kek: &KekRef,
) -> Result<StoredWrap> {
    let dek = unwrap(source, ctx, wrap).await?;
    let wrapped = target.wrap(target_kek, &dek, &ctx.dek_wrap_aad()).await?;
    Ok(StoredWrap {
        kek_ref: target_kek.clone(),
        wrapped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::{SecretPath, VaultId};
    use strongroom_kms::soft::SoftProvider;

    fn cipher() -> EnvelopeCipher {
        EnvelopeCipher::new(Arc::new(SoftProvider::memory().unwrap()))
    }

    #[tokio::test]
    async fn seal_open_rewrap() {
        let c = cipher();
        let kek = c.kms.create_kek(&VaultId::new()).await.unwrap();
        let path = SecretPath::parse("db/password").unwrap();
        let ctx = SecretContext {
            vault: VaultId::new(),
            path: &path,
            version: 3,
        };
        let value = SecretBytes::from("hunter2".to_string());
        let e = c.seal(&ctx, &kek, &value).await.unwrap();
        assert_eq!(e.envelope_version, ENVELOPE_VERSION);
        assert_eq!((&e.kek_ref, e.kek_version), (&kek, 1));
        assert_eq!(c.open(&ctx, &e).await.unwrap().expose(), b"hunter2");

        // Another place: the same opaque failure whichever field differs.
        let other = SecretPath::parse("db/other").unwrap();
        for wrong in [
            SecretContext {
                path: &other,
                ..ctx
            },
            SecretContext { version: 4, ..ctx },
            SecretContext {
                vault: VaultId::new(),
                ..ctx
            },
        ] {
            assert!(matches!(c.open(&wrong, &e).await, Err(Error::Integrity)));
        }
        let mut bad = e.clone();
        bad.auth_tag[0] ^= 1;
        assert!(matches!(c.open(&ctx, &bad).await, Err(Error::Integrity)));
        let mut bad = e.clone();
        bad.iv.truncate(5);
        assert!(matches!(c.open(&ctx, &bad).await, Err(Error::Integrity)));
        let mut bad = e.clone();
        bad.kek_version = 9;
        assert!(matches!(c.open(&ctx, &bad).await, Err(Error::Integrity)));

        // Rotation: a rewrap moves the DEK to the new version, payload untouched.
        assert_eq!(c.kms.rotate_kek(&kek).await.unwrap(), 2);
        let r = c.rewrap(&ctx, &e, &kek).await.unwrap();
        assert_eq!(r.kek_version, 2);
        assert_eq!(
            (&r.ciphertext, &r.iv, &r.auth_tag),
            (&e.ciphertext, &e.iv, &e.auth_tag)
        );
        assert_ne!(r.wrapped_dek, e.wrapped_dek);
        assert_eq!(c.open(&ctx, &r).await.unwrap().expose(), b"hunter2");
        let wrong = SecretContext { version: 4, ..ctx };
        assert!(matches!(
            c.rewrap(&wrong, &e, &kek).await,
            Err(Error::Integrity)
        ));
    }
}
