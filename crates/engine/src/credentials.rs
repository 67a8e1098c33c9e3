//! API keys (`ocv_…` for agents, `1ck_…` for people), invitation tokens
//! (`inv_…`) and the server pepper.
//!
//! A key is a prefix and 32 random bytes in base64url. It is shown once; the
//! store keeps only its first [`LOOKUP_PREFIX_LEN`] characters (to find the row)
//! and HMAC-SHA256(pepper, key), compared in constant time. A slow password hash
//! buys nothing for 256-bit random keys.
//!
//! The pepper is 32 random bytes wrapped by a KEK of the key provider and stored
//! wrapped in the database's settings: a copy of the database alone can't test
//! key guesses offline, and every node of a cluster unwraps the same pepper.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use strongroom_core::encoding::LengthPrefixed;
use strongroom_core::{Error, Result, VaultId};
use strongroom_crypto::{Dek, Pepper};
use strongroom_kms::{KekRef, KeyProvider, WrappedDek};
use strongroom_store::Store;
use zeroize::Zeroizing;

/// The prefix of agent keys.
pub const AGENT_KEY_PREFIX: &str = "ocv_";
/// The prefix of personal keys.
pub const PERSONAL_KEY_PREFIX: &str = "1ck_";
/// The prefix of invitation tokens (stored only as an HMAC, never looked up
/// by prefix: an invitation is found by its email).
pub const INVITE_TOKEN_PREFIX: &str = "inv_";
/// How many leading characters of a key are stored for lookup.
pub const LOOKUP_PREFIX_LEN: usize = 12;

const PEPPER_SETTING: &str = "api_key_pepper";
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Serialize, Deserialize)]
struct StoredPepper {
    kek_ref: String,
    kek_version: u32,
    wrapped: String,
}

fn pepper_aad() -> Vec<u8> {
    LengthPrefixed::new("strongroom/api-key-pepper")
        .u64(1)
        .finish()
}

impl StoredPepper {
    fn parse(stored: &str) -> Result<(KekRef, WrappedDek)> {
        let malformed = || Error::internal("the stored API-key pepper is malformed");
        let s: StoredPepper = serde_json::from_str(stored).map_err(|_| malformed())?;
        let blob = B64URL.decode(&s.wrapped).map_err(|_| malformed())?;
        Ok((
            KekRef(s.kek_ref),
            WrappedDek {
                kek_version: s.kek_version,
                blob,
            },
        ))
    }

    fn encode(kek: &KekRef, w: &WrappedDek) -> Result<String> {
        serde_json::to_string(&StoredPepper {
            kek_ref: kek.as_str().to_owned(),
            kek_version: w.kek_version,
            wrapped: B64URL.encode(&w.blob),
        })
        .map_err(Error::internal)
    }
}

/// Loads the pepper, creating it (and its KEK) on first start. The provider
/// wraps 32-byte keys as [`Dek`]s; the pepper becomes a [`Pepper`] as soon as
/// it is unwrapped.
pub(crate) async fn load_or_create_pepper(
    store: &dyn Store,
    kms: &dyn KeyProvider,
) -> Result<Pepper> {
    let stored = match store.setting(PEPPER_SETTING).await? {
        Some(v) => v,
        None => {
            let kek = kms.create_kek(&VaultId(uuid::Uuid::nil())).await?;
            let w = kms.wrap(&kek, &Dek::generate(), &pepper_aad()).await?;
            let mine = StoredPepper::encode(&kek, &w)?;
            let in_force = store.init_setting(PEPPER_SETTING, &mine).await?;
            if in_force != mine {
                // Another node won the race: use its pepper, drop our key.
                let _ = kms.destroy_kek(&kek).await;
            }
            in_force
        }
    };
    let (kek, wrapped) = StoredPepper::parse(&stored)?;
    let key = kms.unwrap(&kek, &wrapped, &pepper_aad()).await?;
    Ok(Pepper::from_unwrapped(&key))
}

/// Moves the pepper under a KEK of `target` (a no-op if it is already there).
pub(crate) async fn migrate_pepper(
    store: &dyn Store,
    source: &dyn KeyProvider,
    target: &dyn KeyProvider,
) -> Result<()> {
    let Some(stored) = store.setting(PEPPER_SETTING).await? else {
        return Ok(());
    };
    let (old_kek, wrapped) = StoredPepper::parse(&stored)?;
    if target
        .unwrap(&old_kek, &wrapped, &pepper_aad())
        .await
        .is_ok()
    {
        return Ok(());
    }
    let key = source.unwrap(&old_kek, &wrapped, &pepper_aad()).await?;
    let kek = target.create_kek(&VaultId(uuid::Uuid::nil())).await?;
    let w = target.wrap(&kek, &key, &pepper_aad()).await?;
    let value = StoredPepper::encode(&kek, &w)?;
    store.set_setting(PEPPER_SETTING, &value).await?;
    let _ = source.destroy_kek(&old_kek).await;
    Ok(())
}

/// A freshly generated key: shown once, never stored.
pub struct IssuedKey {
    /// The whole key.
    pub key: Zeroizing<String>,
    /// Its lookup prefix.
    pub prefix: String,
    /// HMAC-SHA256(pepper, key).
    pub hash: Vec<u8>,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuedKey({}…)", self.prefix)
    }
}

/// Generates a key with the given kind prefix.
pub(crate) fn issue(kind: &str, pepper: &Pepper) -> IssuedKey {
    let raw = Zeroizing::new(strongroom_crypto::random::bytes(32));
    let key = Zeroizing::new(format!("{kind}{}", B64URL.encode(&raw[..])));
    let prefix = key[..LOOKUP_PREFIX_LEN].to_owned();
    let hash = pepper.keyed_hash(key.as_bytes()).to_vec();
    IssuedKey { key, prefix, hash }
}

/// The lookup prefix of a presented key of `kind`, if it has the right shape.
pub(crate) fn lookup_prefix<'a>(presented: &'a str, kind: &str) -> Option<&'a str> {
    (presented.starts_with(kind)
        && presented.len() >= LOOKUP_PREFIX_LEN
        && presented.len() <= 256
        && presented.is_ascii())
    .then(|| &presented[..LOOKUP_PREFIX_LEN])
}

/// Whether a presented key matches a stored hash (constant time). With no
/// stored hash, the work is done anyway so timing does not tell.
pub(crate) fn matches(pepper: &Pepper, presented: &str, stored: Option<&[u8]>) -> bool {
    let h = pepper.keyed_hash(presented.as_bytes());
    match stored {
        Some(s) => strongroom_crypto::ct_eq(&h, s),
        None => {
            let _ = strongroom_crypto::ct_eq(&h, &[0u8; 32]);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_shape_and_verify() {
        let pepper = Pepper::generate();
        let k = issue(AGENT_KEY_PREFIX, &pepper);
        assert!(k.key.starts_with("ocv_"));
        assert_eq!(k.key.len(), 4 + 43);
        assert_eq!(
            lookup_prefix(&k.key, AGENT_KEY_PREFIX),
            Some(k.prefix.as_str())
        );
        assert_eq!(lookup_prefix(&k.key, PERSONAL_KEY_PREFIX), None);
        assert!(matches(&pepper, &k.key, Some(&k.hash)));
        assert!(!matches(
            &pepper,
            &format!("{}x", &k.key[..k.key.len() - 1]),
            Some(&k.hash)
        ));
        assert!(!matches(&Pepper::generate(), &k.key, Some(&k.hash)));
        assert!(!matches(&pepper, &k.key, None));
        assert!(!format!("{k:?}").contains(&k.key[LOOKUP_PREFIX_LEN..]));
    }
}
