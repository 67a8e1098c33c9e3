//! `envelope`: opening a stored envelope (`EnvelopeCipher::open` over
//! `StoredEnvelope::sealed`, the provider's unwrap of the wrapped DEK, and
//! AES-256-GCM).
//!
//! One value is sealed at start for one place (vault, path, version), under
//! a memory key provider and under the same provider behind the DEK cache
//! (warmed by one read, so a hit is possible). The input is a list of edits
//! to the stored row and to the place it is read for: each edit is a field
//! byte (ciphertext, iv, auth tag, wrapped DEK, KEK reference, KEK version,
//! envelope version, vault, path, version) and an operation byte (flip a
//! bit, set a byte, truncate, append, replace the whole field) with its
//! argument bytes.
//!
//! Properties: the untouched row opens to the original value; a row or place
//! that differs in anything opens to nothing: the one opaque
//! `Error::Integrity`, through either provider — never a value, never a panic.

use std::sync::{Arc, OnceLock};

use strongroom_core::{Error, SecretPath, VaultId};
use strongroom_crypto::{KekRef, SecretBytes, SecretContext, StoredEnvelope};
use strongroom_engine::envelope::EnvelopeCipher;
use strongroom_kms::KeyProvider;
use strongroom_kms::cache::{DekCache, DekCacheConfig};
use strongroom_kms::soft::SoftProvider;

const VALUE: &[u8] = b"correct horse battery staple";

/// The place a row is read for.
#[derive(Clone, PartialEq, Eq)]
struct Place {
    vault: VaultId,
    path: String,
    version: u32,
}

/// The sealed row, its place, and the ciphers that open it.
pub struct Harness {
    plain: EnvelopeCipher,
    cached: EnvelopeCipher,
    stored: StoredEnvelope,
    place: Place,
}

impl Harness {
    /// Seals [`VALUE`] once.
    pub fn new() -> Self {
        crate::runtime().block_on(async {
            let soft = SoftProvider::memory().expect("a memory key provider");
            let kms: Arc<dyn KeyProvider> = Arc::new(soft);
            let cache: Arc<dyn KeyProvider> = Arc::new(
                DekCache::new(
                    Box::new(kms.clone()),
                    DekCacheConfig {
                        ttl: std::time::Duration::from_secs(3600),
                        max_entries: 1000,
                        max_uses: u32::MAX,
                    },
                )
                .expect("a DEK cache"),
            );
            let place = Place {
                vault: VaultId::new(),
                path: "prod/db/password".into(),
                version: 3,
            };
            let kek = kms.create_kek(&place.vault).await.expect("a KEK");
            let plain = EnvelopeCipher::new(kms);
            let cached = EnvelopeCipher::new(cache);
            let path = SecretPath::parse(&place.path).expect("a path");
            let ctx = SecretContext {
                vault: place.vault,
                path: &path,
                version: place.version,
            };
            let stored = plain
                .seal(&ctx, &kek, &SecretBytes::new(VALUE.to_vec()))
                .await
                .expect("sealing");
            let h = Harness {
                plain,
                cached,
                stored,
                place,
            };
            // Warm the cache with the right place.
            assert_eq!(
                h.open(&h.cached, &h.stored, &h.place).await,
                Some(Ok(VALUE.to_vec()))
            );
            h
        })
    }

    async fn open(
        &self,
        cipher: &EnvelopeCipher,
        stored: &StoredEnvelope,
        place: &Place,
    ) -> Option<Result<Vec<u8>, Error>> {
        let path = SecretPath::parse(&place.path).ok()?;
        let ctx = SecretContext {
            vault: place.vault,
            path: &path,
            version: place.version,
        };
        Some(cipher.open(&ctx, stored).await.map(|v| v.expose().to_vec()))
    }

    /// Checks one input.
    pub fn check(&self, data: &[u8]) {
        let mut stored = self.stored.clone();
        let mut place = self.place.clone();
        apply_edits(data, &mut stored, &mut place);
        let untouched = stored == self.stored && place == self.place;
        crate::runtime().block_on(async {
            for (name, cipher) in [("provider", &self.plain), ("cache", &self.cached)] {
                let Some(r) = self.open(cipher, &stored, &place).await else {
                    // The edited path is not a path: nothing can be read there.
                    return;
                };
                if untouched {
                    assert_eq!(r, Ok(VALUE.to_vec()), "{name}: the untouched row");
                } else {
                    match r {
                        Err(Error::Integrity) => {}
                        Ok(v) => panic!(
                            "{name}: an edited row opened ({} bytes, original: {})",
                            v.len(),
                            v == VALUE
                        ),
                        Err(e) => panic!("{name}: an edited row failed with {e:?}, not Integrity"),
                    }
                }
            }
        });
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

fn edit_bytes(field: &mut Vec<u8>, op: u8, args: &mut std::slice::Iter<'_, u8>) {
    let mut arg = || args.next().copied().unwrap_or(0);
    match op % 5 {
        0 if !field.is_empty() => {
            let at = usize::from(arg()) % field.len();
            field[at] ^= 1 << (arg() % 8);
        }
        1 if !field.is_empty() => {
            let at = usize::from(arg()) % field.len();
            field[at] = arg();
        }
        2 => {
            let n = usize::from(arg());
            field.truncate(n.min(field.len()));
        }
        3 => field.push(arg()),
        4 => {
            let n = usize::from(arg());
            *field = (0..n).map(|_| arg()).collect();
        }
        _ => {}
    }
}

fn edit_u32(v: &mut u32, op: u8, args: &mut std::slice::Iter<'_, u8>) {
    let mut b = v.to_le_bytes().to_vec();
    edit_bytes(&mut b, op, args);
    b.resize(4, 0);
    *v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
}

fn apply_edits(data: &[u8], stored: &mut StoredEnvelope, place: &mut Place) {
    let mut it = data.iter();
    while let (Some(&field), Some(&op)) = (it.next(), it.next()) {
        match field % 10 {
            0 => edit_bytes(&mut stored.ciphertext, op, &mut it),
            1 => edit_bytes(&mut stored.iv, op, &mut it),
            2 => edit_bytes(&mut stored.auth_tag, op, &mut it),
            3 => edit_bytes(&mut stored.wrapped_dek, op, &mut it),
            4 => {
                let mut b = stored.kek_ref.as_str().as_bytes().to_vec();
                edit_bytes(&mut b, op, &mut it);
                stored.kek_ref = KekRef::from(String::from_utf8_lossy(&b).into_owned());
            }
            5 => edit_u32(&mut stored.kek_version, op, &mut it),
            6 => edit_u32(&mut stored.envelope_version, op, &mut it),
            7 => {
                let mut b = place.vault.to_string().into_bytes();
                edit_bytes(&mut b, op, &mut it);
                if let Ok(v) = String::from_utf8_lossy(&b).parse() {
                    place.vault = v;
                }
            }
            8 => {
                let mut b = place.path.clone().into_bytes();
                edit_bytes(&mut b, op, &mut it);
                place.path = String::from_utf8_lossy(&b).into_owned();
            }
            _ => edit_u32(&mut place.version, op, &mut it),
        }
    }
}

/// The target.
pub fn run(data: &[u8]) {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(Harness::new).check(data);
}
