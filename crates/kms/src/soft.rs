//! Software key providers: `memory` and `file`.
//!
//! Both keep KEKs as AES-256 keys and wrap DEKs with AES-256-GCM under a random
//! nonce and the caller's context AAD; the wrapped blob is `nonce || ct || tag`.
//! `file` additionally persists the keyring — every KEK version and the Ed25519
//! signing key — in one file sealed by the [`RootKey`], written atomically
//! (temporary file, fsync, rename, fsync of the directory) with mode 0600.
//!
//! For many nodes on one database, `file` keeps its keyring in a
//! [`SealedKeyStore`] instead ([`SoftProvider::open_shared`]): one entry per
//! key (the signing key, each KEK version), each sealed by the root key under
//! an AAD naming the entry, so a database copy alone decrypts nothing and an
//! entry moved to another name does not open. Entries are only ever added
//! (a KEK destroyed removes its own), so nodes never overwrite each other;
//! each node reloads the entries when it meets a key it lacks, and before a
//! wrap at most [`SHARED_REFRESH`] after its last look, so a KEK rotated on
//! one node wraps new DEKs on every node within that bound.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use strongroom_core::VaultId;
use strongroom_crypto::aad::AadBuilder;
use strongroom_crypto::{Dek, envelope};
use zeroize::Zeroizing;

use crate::root_key::RootKey;
use crate::{KekRef, KeyProvider, KmsError, ProviderHealth, SigningPublicKey, WrappedDek, kid_for};

const FILE_MAGIC: &[u8; 10] = b"SRKEYRING1";

/// How stale a node's copy of a shared keyring may be when it wraps.
pub const SHARED_REFRESH: std::time::Duration = std::time::Duration::from_millis(500);

/// Where a shared keyring's sealed entries live (for PostgreSQL, a table of
/// the database every node uses). Entries are named and only added or
/// removed, never changed.
#[async_trait]
pub trait SealedKeyStore: Send + Sync + 'static {
    /// Every entry: its name and sealed bytes.
    async fn entries(&self) -> Result<Vec<(String, Vec<u8>)>, KmsError>;
    /// Adds an entry. False, changing nothing, if one of that name exists
    /// (another node added it first).
    async fn insert(&self, name: &str, sealed: &[u8]) -> Result<bool, KmsError>;
    /// Removes every entry whose name starts with `prefix`.
    async fn remove_prefix(&self, prefix: &str) -> Result<(), KmsError>;
}

const SIGNING_ENTRY: &str = "signing";

fn entry_aad(name: &str) -> Vec<u8> {
    AadBuilder::new("strongroom/keyring-entry")
        .field(name)
        .finish()
}

fn kek_prefix(id: &str) -> String {
    format!("kek:{id}:")
}
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One KEK: its versions in order (version n at index n-1).
#[derive(Clone)]
struct Kek {
    versions: Vec<Zeroizing<[u8; 32]>>,
}

#[derive(Clone)]
struct Keyring {
    keks: BTreeMap<String, Kek>,
    signing_pkcs8: Zeroizing<Vec<u8>>,
}

/// The on-disk (inside the seal) form of the keyring.
#[derive(Serialize, Deserialize)]
struct KeyringFile {
    format: u32,
    signing_pkcs8: String,
    keks: BTreeMap<String, Vec<String>>,
}

impl Keyring {
    fn new() -> Result<Self, KmsError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| KmsError::Internal("generating the signing key".into()))?;
        Ok(Keyring {
            keks: BTreeMap::new(),
            signing_pkcs8: Zeroizing::new(doc.as_ref().to_vec()),
        })
    }

    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let file = KeyringFile {
            format: 1,
            signing_pkcs8: B64.encode(&self.signing_pkcs8[..]),
            keks: self
                .keks
                .iter()
                .map(|(id, k)| {
                    (
                        id.clone(),
                        k.versions.iter().map(|v| B64.encode(&v[..])).collect(),
                    )
                })
                .collect(),
        };
        let out = Zeroizing::new(serde_json::to_vec(&file).expect("keyring serializes"));
        // The base64 strings inside `file` held key material too.
        let KeyringFile {
            signing_pkcs8,
            keks,
            ..
        } = file;
        drop(Zeroizing::new(signing_pkcs8));
        for (_, vs) in keks {
            for v in vs {
                drop(Zeroizing::new(v));
            }
        }
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, KmsError> {
        let corrupt = || KmsError::Internal("the keyring file is corrupt".into());
        let file: KeyringFile = serde_json::from_slice(bytes).map_err(|_| corrupt())?;
        if file.format != 1 {
            return Err(KmsError::Internal(
                format!("unsupported keyring format {}", file.format).into(),
            ));
        }
        let signing_pkcs8 = Zeroizing::new(B64.decode(&file.signing_pkcs8).map_err(|_| corrupt())?);
        let mut keks = BTreeMap::new();
        for (id, versions) in &file.keks {
            let mut vs = Vec::with_capacity(versions.len());
            for v in versions {
                let raw = Zeroizing::new(B64.decode(v).map_err(|_| corrupt())?);
                let arr: [u8; 32] = raw.as_slice().try_into().map_err(|_| corrupt())?;
                vs.push(Zeroizing::new(arr));
            }
            keks.insert(id.clone(), Kek { versions: vs });
        }
        drop(Zeroizing::new(file.signing_pkcs8));
        Ok(Keyring {
            keks,
            signing_pkcs8,
        })
    }
}

impl Keyring {
    /// The keyring a shared store's entries describe. A KEK's versions must
    /// run from 1 without a gap.
    fn from_entries(
        entries: &[(String, Vec<u8>)],
        root: &RootKey,
    ) -> Result<Option<Self>, KmsError> {
        let corrupt = |what: &str| KmsError::Internal(format!("shared keyring: {what}").into());
        let mut signing = None;
        let mut versions: BTreeMap<String, BTreeMap<u32, Zeroizing<[u8; 32]>>> = BTreeMap::new();
        for (name, sealed) in entries {
            let blob = envelope::split_blob(sealed).map_err(|_| corrupt("a truncated entry"))?;
            let plain = envelope::open_under_key(root.bytes(), &blob, &entry_aad(name))
                .map_err(|_| {
                    KmsError::Internal(
                        "the shared keyring can't be opened with this root key (wrong key, or a damaged entry)"
                            .into(),
                    )
                })?;
            if name == SIGNING_ENTRY {
                signing = Some(Zeroizing::new(plain.expose().to_vec()));
                continue;
            }
            let (id, v) = name
                .strip_prefix("kek:")
                .and_then(|r| r.rsplit_once(':'))
                .ok_or_else(|| corrupt("an entry of no known kind"))?;
            let v: u32 = v.parse().map_err(|_| corrupt("a KEK version"))?;
            let key: [u8; 32] = plain
                .expose()
                .try_into()
                .map_err(|_| corrupt("a KEK of the wrong length"))?;
            versions
                .entry(id.to_owned())
                .or_default()
                .insert(v, Zeroizing::new(key));
        }
        let Some(signing_pkcs8) = signing else {
            return Ok(None);
        };
        let mut keks = BTreeMap::new();
        for (id, vs) in versions {
            if vs.keys().copied().ne(1..=vs.len() as u32) {
                return Err(corrupt("a KEK's versions have a gap"));
            }
            keks.insert(
                id,
                Kek {
                    versions: vs.into_values().collect(),
                },
            );
        }
        Ok(Some(Keyring {
            keks,
            signing_pkcs8,
        }))
    }
}

/// A keyring kept as sealed entries in a [`SealedKeyStore`].
struct Shared {
    store: Arc<dyn SealedKeyStore>,
    root: RootKey,
    /// When this node last read the entries.
    loaded: std::sync::Mutex<std::time::Instant>,
}

impl Shared {
    fn seal(&self, name: &str, plain: &[u8]) -> Vec<u8> {
        envelope::seal_under_key(self.root.bytes(), plain, &entry_aad(name)).to_blob()
    }

    async fn load(&self) -> Result<Option<Keyring>, KmsError> {
        let entries = self.store.entries().await?;
        let ring = Keyring::from_entries(&entries, &self.root)?;
        *self.loaded.lock().expect("keyring clock") = std::time::Instant::now();
        Ok(ring)
    }
}

struct FileStore {
    path: PathBuf,
    root: RootKey,
}

fn keyring_aad() -> Vec<u8> {
    AadBuilder::new("strongroom/keyring").u64(1).finish()
}

impl FileStore {
    fn load(&self) -> Result<Option<Keyring>, KmsError> {
        let data = match fs::read(&self.path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(KmsError::Unavailable(crate::Reason::because(
                    "reading keyring",
                    e,
                )));
            }
        };
        crate::root_key::warn_if_loose(&self.path);
        if data.len() < FILE_MAGIC.len() || &data[..FILE_MAGIC.len()] != FILE_MAGIC {
            return Err(KmsError::Internal(
                "the keyring file is not a Strongroom keyring".into(),
            ));
        }
        let sealed = envelope::split_blob(&data[FILE_MAGIC.len()..])
            .map_err(|_| KmsError::Internal("the keyring file is truncated".into()))?;
        let plain =
            envelope::open_under_key(self.root.bytes(), &sealed, &keyring_aad()).map_err(|_| {
                KmsError::Internal(
                    "the keyring can't be opened with this root key (wrong key, or a damaged file)"
                        .into(),
                )
            })?;
        Keyring::from_bytes(plain.expose()).map(Some)
    }

    fn save(&self, ring: &Keyring) -> Result<(), KmsError> {
        let plain = ring.to_bytes();
        let sealed = envelope::seal_under_key(self.root.bytes(), &plain, &keyring_aad());
        let mut out = FILE_MAGIC.to_vec();
        out.extend_from_slice(&sealed.to_blob());
        let tmp = self.path.with_extension("tmp");
        let io =
            |e: std::io::Error| KmsError::Unavailable(crate::Reason::because("writing keyring", e));
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(&out).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, &self.path).map_err(io)?;
        sync_parent(&self.path);
        Ok(())
    }
}

/// The entries of a shared keyring holding every key of the keyring file at
/// `path` (for moving a data directory's keys into a database that many
/// nodes share), each sealed again by `root`, the key that opens the file.
pub fn shared_entries_from_file(
    path: &Path,
    root: RootKey,
) -> Result<Vec<(String, Vec<u8>)>, KmsError> {
    let file = FileStore {
        path: path.to_owned(),
        root,
    };
    let ring = file
        .load()?
        .ok_or_else(|| KmsError::Internal(format!("no keyring at {}", path.display()).into()))?;
    let seal = |name: String, plain: &[u8]| {
        let sealed =
            envelope::seal_under_key(file.root.bytes(), plain, &entry_aad(&name)).to_blob();
        (name, sealed)
    };
    let mut out = vec![seal(SIGNING_ENTRY.to_owned(), &ring.signing_pkcs8)];
    for (id, k) in &ring.keks {
        for (i, v) in k.versions.iter().enumerate() {
            out.push(seal(format!("{}{}", kek_prefix(id), i + 1), &v[..]));
        }
    }
    Ok(out)
}

/// Fsyncs the directory holding `path`, so a rename or create is durable.
pub(crate) fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// The `memory` and `file` key providers.
pub struct SoftProvider {
    name: &'static str,
    ring: RwLock<Keyring>,
    signer: Ed25519KeyPair,
    public: SigningPublicKey,
    file: Option<Arc<FileStore>>,
    shared: Option<Shared>,
    /// Serializes keyring changes so two writers never persist stale copies.
    write_lock: tokio::sync::Mutex<()>,
}

impl SoftProvider {
    /// Keys in process memory only. Everything is lost when the process exits.
    pub fn memory() -> Result<Self, KmsError> {
        Self::build("memory", Keyring::new()?, None)
    }

    /// Opens (or creates) the keyring file at `path`, sealed by `root`.
    pub fn open_file(path: impl Into<PathBuf>, root: RootKey) -> Result<Self, KmsError> {
        let store = Arc::new(FileStore {
            path: path.into(),
            root,
        });
        let ring = match store.load()? {
            Some(r) => r,
            None => {
                let r = Keyring::new()?;
                store.save(&r)?;
                r
            }
        };
        Self::build("file", ring, Some(store))
    }

    /// Opens (or creates) a keyring shared by many nodes in `store`, every
    /// entry sealed by `root`. Nodes starting at once agree on one signing
    /// key: the first to add it wins and the others load it.
    pub async fn open_shared(
        store: Arc<dyn SealedKeyStore>,
        root: RootKey,
    ) -> Result<Self, KmsError> {
        let shared = Shared {
            store,
            root,
            loaded: std::sync::Mutex::new(std::time::Instant::now()),
        };
        let ring = match shared.load().await? {
            Some(r) => r,
            None => {
                let fresh = Keyring::new()?;
                let sealed = shared.seal(SIGNING_ENTRY, &fresh.signing_pkcs8);
                shared.store.insert(SIGNING_ENTRY, &sealed).await?;
                shared.load().await?.ok_or_else(|| {
                    KmsError::Internal(
                        "the shared keyring has no signing key after adding one".into(),
                    )
                })?
            }
        };
        let mut p = Self::build("file", ring, None)?;
        p.shared = Some(shared);
        Ok(p)
    }

    /// Reads a shared keyring's entries again (a no-op for other keyrings).
    async fn reload(&self) -> Result<(), KmsError> {
        if let Some(shared) = &self.shared
            && let Some(ring) = shared.load().await?
        {
            *self.ring.write().expect("keyring lock") = ring;
        }
        Ok(())
    }

    /// Reloads a shared keyring last read more than [`SHARED_REFRESH`] ago.
    /// One caller reloads; the others, meanwhile, use the copy they have.
    async fn reload_if_stale(&self) -> Result<(), KmsError> {
        let due = self.shared.as_ref().is_some_and(|s| {
            let mut at = s.loaded.lock().expect("keyring clock");
            let due = at.elapsed() >= SHARED_REFRESH;
            if due {
                *at = std::time::Instant::now();
            }
            due
        });
        if due { self.reload().await } else { Ok(()) }
    }

    /// Adds a KEK version to a shared keyring: the next after the newest any
    /// node has added (a node that loses the race takes the one after).
    async fn add_shared_version(&self, shared: &Shared, id: &str) -> Result<u32, KmsError> {
        for _ in 0..16 {
            self.reload().await?;
            let next = {
                let ring = self.ring.read().expect("keyring lock");
                ring.keks.get(id).map_or(0, |k| k.versions.len() as u32) + 1
            };
            let name = format!("{}{next}", kek_prefix(id));
            let key = new_key();
            if shared
                .store
                .insert(&name, &shared.seal(&name, &key[..]))
                .await?
            {
                self.reload().await?;
                return Ok(next);
            }
        }
        Err(KmsError::Unavailable(
            "too many nodes changing one KEK at once; try again".into(),
        ))
    }

    fn build(
        name: &'static str,
        ring: Keyring,
        file: Option<Arc<FileStore>>,
    ) -> Result<Self, KmsError> {
        let signer = Ed25519KeyPair::from_pkcs8(&ring.signing_pkcs8)
            .map_err(|_| KmsError::Internal("the signing key in the keyring is invalid".into()))?;
        let mut ed25519 = [0u8; 32];
        ed25519.copy_from_slice(signer.public_key().as_ref());
        let public = SigningPublicKey {
            kid: kid_for(&ed25519),
            ed25519,
        };
        Ok(SoftProvider {
            name,
            ring: RwLock::new(ring),
            signer,
            public,
            file,
            shared: None,
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Applies `change` to a copy of the keyring, persists it (for `file`), and
    /// only then makes it current: a failed write changes nothing.
    async fn mutate<T>(
        &self,
        change: impl FnOnce(&mut Keyring) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        let _guard = self.write_lock.lock().await;
        let mut next = self.ring.read().expect("keyring lock").clone();
        let out = change(&mut next)?;
        if let Some(file) = &self.file {
            let file = file.clone();
            let snapshot = next.clone();
            tokio::task::spawn_blocking(move || file.save(&snapshot))
                .await
                .map_err(|e| KmsError::Internal(crate::Reason::because("keyring writer", e)))??;
        }
        *self.ring.write().expect("keyring lock") = next;
        Ok(out)
    }

    fn with_version<T>(
        &self,
        kek: &KekRef,
        version: Option<u32>,
        f: impl FnOnce(u32, &[u8; 32]) -> T,
    ) -> Result<T, KmsError> {
        let ring = self.ring.read().expect("keyring lock");
        let k = ring.keks.get(&kek.0).ok_or(KmsError::KeyNotFound)?;
        let v = version.unwrap_or(k.versions.len() as u32);
        let key = v
            .checked_sub(1)
            .and_then(|i| k.versions.get(i as usize))
            .ok_or(KmsError::KeyNotFound)?;
        Ok(f(v, key))
    }
}

fn new_key() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    strongroom_crypto::random::fill(&mut k[..]);
    k
}

#[async_trait]
impl KeyProvider for SoftProvider {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn create_kek(&self, vault_id: &VaultId) -> Result<KekRef, KmsError> {
        // A random suffix keeps a re-created vault id from ever reusing a KEK.
        let id = format!(
            "vault-{vault_id}-{}",
            hex::encode(strongroom_crypto::random::bytes(4))
        );
        if let Some(shared) = &self.shared {
            self.add_shared_version(shared, &id).await?;
            return Ok(KekRef(id));
        }
        self.mutate(|ring| {
            ring.keks.insert(
                id.clone(),
                Kek {
                    versions: vec![new_key()],
                },
            );
            Ok(())
        })
        .await?;
        Ok(KekRef(id))
    }

    async fn wrap(&self, kek: &KekRef, dek: &Dek, aad: &[u8]) -> Result<WrappedDek, KmsError> {
        // The newest version another node may have added.
        self.reload_if_stale().await?;
        if self.shared.is_some() && self.with_version(kek, None, |_, _| ()).is_err() {
            self.reload().await?;
        }
        self.with_version(kek, None, |v, key| WrappedDek {
            kek_version: v,
            blob: envelope::seal_under_key(key, dek.expose(), aad).to_blob(),
        })
    }

    async fn unwrap(
        &self,
        kek: &KekRef,
        wrapped: &WrappedDek,
        aad: &[u8],
    ) -> Result<Arc<Dek>, KmsError> {
        let sealed = envelope::split_blob(&wrapped.blob).map_err(|_| KmsError::Integrity)?;
        // A KEK destroyed by another node is forgotten here within the bound.
        self.reload_if_stale().await?;
        if self.shared.is_some()
            && self
                .with_version(kek, Some(wrapped.kek_version), |_, _| ())
                .is_err()
        {
            // A KEK (or version) another node added since this one last looked.
            self.reload().await?;
        }
        let plain = self
            .with_version(kek, Some(wrapped.kek_version), |_, key| {
                envelope::open_under_key(key, &sealed, aad)
            })?
            .map_err(|_| KmsError::Integrity)?;
        Dek::from_slice(plain.expose())
            .map(Arc::new)
            .map_err(|_| KmsError::Integrity)
    }

    async fn rotate_kek(&self, kek: &KekRef) -> Result<u32, KmsError> {
        if let Some(shared) = &self.shared {
            self.reload().await?;
            if self.with_version(kek, None, |_, _| ()).is_err() {
                return Err(KmsError::KeyNotFound);
            }
            return self.add_shared_version(shared, &kek.0).await;
        }
        self.mutate(|ring| {
            let k = ring.keks.get_mut(&kek.0).ok_or(KmsError::KeyNotFound)?;
            k.versions.push(new_key());
            Ok(k.versions.len() as u32)
        })
        .await
    }

    async fn destroy_kek(&self, kek: &KekRef) -> Result<(), KmsError> {
        if let Some(shared) = &self.shared {
            self.reload().await?;
            if self.with_version(kek, None, |_, _| ()).is_err() {
                return Err(KmsError::KeyNotFound);
            }
            shared.store.remove_prefix(&kek_prefix(&kek.0)).await?;
            return self.reload().await;
        }
        self.mutate(|ring| {
            // Dropping the entry zeroizes every version.
            ring.keks
                .remove(&kek.0)
                .map(|_| ())
                .ok_or(KmsError::KeyNotFound)
        })
        .await
    }

    async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError> {
        Ok(self.signer.sign(msg).as_ref().to_vec())
    }

    fn signing_public_key(&self) -> SigningPublicKey {
        self.public.clone()
    }

    async fn health(&self) -> ProviderHealth {
        ProviderHealth::Healthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exercise(p: &SoftProvider) -> (KekRef, WrappedDek, Dek) {
        let kek = p.create_kek(&VaultId::new()).await.unwrap();
        let dek = Dek::generate();
        let w = p.wrap(&kek, &dek, b"ctx").await.unwrap();
        assert_eq!(w.kek_version, 1);
        assert!(!w.blob.windows(32).any(|win| win == dek.expose()));
        assert_eq!(
            p.unwrap(&kek, &w, b"ctx").await.unwrap().expose(),
            dek.expose()
        );
        assert!(matches!(
            p.unwrap(&kek, &w, b"other").await,
            Err(KmsError::Integrity)
        ));
        (kek, w, dek)
    }

    #[tokio::test]
    async fn memory_wraps_rotates_and_destroys() {
        let p = SoftProvider::memory().unwrap();
        let (kek, w1, dek) = exercise(&p).await;
        assert_eq!(p.rotate_kek(&kek).await.unwrap(), 2);
        let w2 = p.wrap(&kek, &dek, b"ctx").await.unwrap();
        assert_eq!(w2.kek_version, 2);
        assert_eq!(
            p.unwrap(&kek, &w1, b"ctx").await.unwrap().expose(),
            dek.expose()
        );
        let mut wrong_version = w1.clone();
        wrong_version.kek_version = 2;
        assert!(p.unwrap(&kek, &wrong_version, b"ctx").await.is_err());
        p.destroy_kek(&kek).await.unwrap();
        assert!(matches!(
            p.unwrap(&kek, &w1, b"ctx").await,
            Err(KmsError::KeyNotFound)
        ));
    }

    #[tokio::test]
    async fn file_keyring_survives_reopen_and_needs_the_root_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        let root_hex = "11".repeat(32);
        let (kek, w, dek, public) = {
            let p = SoftProvider::open_file(&path, RootKey::parse(&root_hex).unwrap()).unwrap();
            let (kek, w, dek) = exercise(&p).await;
            (kek, w, dek, p.signing_public_key())
        };
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let raw = fs::read(&path).unwrap();
        assert!(!raw.windows(32).any(|win| win == dek.expose()));
        let p = SoftProvider::open_file(&path, RootKey::parse(&root_hex).unwrap()).unwrap();
        assert_eq!(p.signing_public_key(), public);
        assert_eq!(
            p.unwrap(&kek, &w, b"ctx").await.unwrap().expose(),
            dek.expose()
        );
        let wrong = SoftProvider::open_file(&path, RootKey::parse(&"22".repeat(32)).unwrap());
        assert!(wrong.is_err());
    }

    /// A shared keyring's store, in memory (PostgreSQL's is tested with the
    /// CLI's many-node tests).
    #[derive(Default)]
    struct Entries(std::sync::Mutex<BTreeMap<String, Vec<u8>>>);

    #[async_trait]
    impl SealedKeyStore for Entries {
        async fn entries(&self) -> Result<Vec<(String, Vec<u8>)>, KmsError> {
            Ok(self.0.lock().unwrap().clone().into_iter().collect())
        }
        async fn insert(&self, name: &str, sealed: &[u8]) -> Result<bool, KmsError> {
            let mut m = self.0.lock().unwrap();
            if m.contains_key(name) {
                return Ok(false);
            }
            m.insert(name.to_owned(), sealed.to_vec());
            Ok(true)
        }
        async fn remove_prefix(&self, prefix: &str) -> Result<(), KmsError> {
            self.0.lock().unwrap().retain(|k, _| !k.starts_with(prefix));
            Ok(())
        }
    }

    fn root(byte: &str) -> RootKey {
        RootKey::parse(&byte.repeat(32)).unwrap()
    }

    #[tokio::test]
    async fn a_shared_keyring_serves_every_node_and_opens_only_with_the_root_key() {
        let store = Arc::new(Entries::default());
        let a = SoftProvider::open_shared(store.clone(), root("11"))
            .await
            .unwrap();
        let b = SoftProvider::open_shared(store.clone(), root("11"))
            .await
            .unwrap();
        assert_eq!(
            a.signing_public_key(),
            b.signing_public_key(),
            "one signing key"
        );

        // A KEK made on one node unwraps on the other at once.
        let (kek, w1, dek) = exercise(&a).await;
        assert_eq!(
            b.unwrap(&kek, &w1, b"ctx").await.unwrap().expose(),
            dek.expose()
        );

        // Rotated on A: B wraps under the new version within the bound.
        assert_eq!(a.rotate_kek(&kek).await.unwrap(), 2);
        tokio::time::sleep(SHARED_REFRESH).await;
        let w2 = b.wrap(&kek, &dek, b"ctx").await.unwrap();
        assert_eq!(w2.kek_version, 2);
        assert_eq!(
            a.unwrap(&kek, &w2, b"ctx").await.unwrap().expose(),
            dek.expose()
        );
        // Rotations racing on two nodes each get a version of their own.
        let (x, y) = tokio::join!(a.rotate_kek(&kek), b.rotate_kek(&kek));
        let mut got = [x.unwrap(), y.unwrap()];
        got.sort_unstable();
        assert_eq!(got, [3, 4]);

        // The entries hold no key in the clear; another root key opens
        // nothing; an entry under another name does not open.
        let raw = store.entries().await.unwrap();
        assert!(
            raw.iter()
                .all(|(_, v)| !v.windows(32).any(|w| w == dek.expose()))
        );
        assert!(
            SoftProvider::open_shared(store.clone(), root("22"))
                .await
                .is_err()
        );
        let moved = Arc::new(Entries::default());
        for (name, sealed) in &raw {
            let name = if name.ends_with(":1") {
                name.replace(":1", ":9")
            } else {
                name.clone()
            };
            moved.insert(&name, sealed).await.unwrap();
        }
        assert!(SoftProvider::open_shared(moved, root("11")).await.is_err());

        // A data directory's keyring file moves into a shared keyring whole.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring");
        let (fkek, fw, fdek, public) = {
            let p = SoftProvider::open_file(&path, root("33")).unwrap();
            let (k, w, d) = exercise(&p).await;
            p.rotate_kek(&k).await.unwrap();
            (k, w, d, p.signing_public_key())
        };
        let moved = Arc::new(Entries::default());
        for (name, sealed) in shared_entries_from_file(&path, root("33")).unwrap() {
            moved.insert(&name, &sealed).await.unwrap();
        }
        let p = SoftProvider::open_shared(moved, root("33")).await.unwrap();
        assert_eq!(p.signing_public_key(), public);
        assert_eq!(
            p.unwrap(&fkek, &fw, b"ctx").await.unwrap().expose(),
            fdek.expose()
        );
        assert_eq!(p.wrap(&fkek, &fdek, b"ctx").await.unwrap().kek_version, 2);
        assert!(shared_entries_from_file(&path, root("44")).is_err());

        // Destroyed on B: A forgets it within the bound.
        b.destroy_kek(&kek).await.unwrap();
        tokio::time::sleep(SHARED_REFRESH).await;
        assert!(matches!(
            a.unwrap(&kek, &w1, b"ctx").await,
            Err(KmsError::KeyNotFound)
        ));
    }

    #[tokio::test]
    async fn signatures_verify_with_the_published_key() {
        use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
        let p = SoftProvider::memory().unwrap();
        let sig = p.sign(b"message").await.unwrap();
        let pk = p.signing_public_key();
        UnparsedPublicKey::new(&ED25519, pk.ed25519)
            .verify(b"message", &sig)
            .unwrap();
        assert!(
            UnparsedPublicKey::new(&ED25519, pk.ed25519)
                .verify(b"messagf", &sig)
                .is_err()
        );
    }
}
