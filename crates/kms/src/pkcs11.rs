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
//! # Objects on the token
//!
//! A KEK is named by a provider-chosen id, `vault-<vault uuid>-<8 hex>` (the
//! [`KekRef`]). Version `n` of it is one secret-key object:
//!
//! | attribute | value |
//! |---|---|
//! | `CKA_CLASS` / `CKA_KEY_TYPE` / `CKA_VALUE_LEN` | `CKO_SECRET_KEY` / `CKK_AES` / 32 |
//! | `CKA_LABEL` | `strongroom-kek:<id>:v<n>` |
//! | `CKA_ID` | `strongroom-kek:<id>` (shared by all versions) |
//! | `CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE` | true |
//! | `CKA_EXTRACTABLE`, `CKA_MODIFIABLE`, `CKA_COPYABLE` | false |
//! | `CKA_ENCRYPT`, `CKA_DECRYPT` | true |
//! | `CKA_WRAP`, `CKA_UNWRAP`, `CKA_SIGN`, `CKA_VERIFY`, `CKA_DERIVE` | false |
//!
//! The token then reports `CKA_NEVER_EXTRACTABLE` and `CKA_ALWAYS_SENSITIVE`.
//!
//! The signing key (`CKM_EC_EDWARDS_KEY_PAIR_GEN`, `CKA_EC_PARAMS` = the OID
//! 1.3.101.112, `06 03 2B 65 70`) is created on the first open if no object
//! carries `signing_key_label`:
//!
//! - private: `CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE`, `CKA_SIGN` true;
//!   `CKA_EXTRACTABLE`, `CKA_DERIVE`, `CKA_MODIFIABLE` false;
//! - public: `CKA_TOKEN`, `CKA_VERIFY` true; `CKA_PRIVATE`, `CKA_MODIFIABLE` false;
//! - both: `CKA_LABEL` = `CKA_ID` = `signing_key_label`.
//!
//! At open the provider signs a fixed message and verifies it with the public
//! half, so a mismatched or foreign key pair is refused.
//!
//! # Wrapped-DEK format
//!
//! `WrappedDek.blob` is `iv (12 bytes) || ciphertext (32) || tag (16)`, 60
//! bytes, and `WrappedDek.kek_version` is the KEK version that wrapped it. The
//! IV is drawn from the OS RNG for every wrap and passed in the GCM
//! parameters; it is read back from the parameters after the call, since some
//! HSMs (FIPS mode) write their own. The caller's AAD is the GCM AAD, so a
//! blob moved to another context fails to unwrap.
//!
//! # Unavailability and recovery
//!
//! One PKCS#11 context per module is shared by the process (`C_Initialize`
//! with `CKF_OS_LOCKING_OK`; "already initialised" and "user already logged
//! in" count as success). The slot is found by token label — slot ids change.
//! Sessions are pooled (`sessions`, default 2), logged in as the user, and
//! every HSM call runs on tokio's blocking pool, never on an executor thread;
//! at most `sessions` calls run at once.
//!
//! Token, device and session loss (`CKR_DEVICE_REMOVED`, `CKR_DEVICE_ERROR`,
//! `CKR_TOKEN_NOT_PRESENT`, `CKR_SESSION_HANDLE_INVALID`, `CKR_SESSION_CLOSED`,
//! `CKR_SLOT_ID_INVALID`, `CKR_CRYPTOKI_NOT_INITIALIZED`, …, or the slot not
//! found) is [`KmsError::Unavailable`]. Whenever a key looks missing or a call
//! fails oddly, the provider first asks the token for its info
//! (`C_GetTokenInfo`): if that fails, or the slot now holds another token, the
//! answer is `Unavailable`, not `KeyNotFound`.
//!
//! After an `Unavailable` the provider drops its sessions and cached handles.
//! The next call (a `health()` check will do) looks for the token by label
//! again, opens a session and logs in. If the token is not found, the module
//! is re-initialised (`C_Finalize` + `C_Initialize`, at most every 200 ms) so
//! that it rescans its slots, and the lookup is tried once more. So service
//! resumes by itself once the token is back, without restarting or re-opening
//! the provider.
//!
//! This is what SoftHSM2 2.6.1 needs, measured: when its token directory
//! disappears, existing sessions stay "valid" but object handles give
//! `CKR_OBJECT_HANDLE_INVALID`, `C_FindObjects` finds nothing and
//! `C_GetTokenInfo` gives `CKR_GENERAL_ERROR`. When the directory comes back,
//! none of that heals — the token object stays broken until `C_Finalize` +
//! `C_Initialize`; and `C_Initialize` itself fails (`CKR_GENERAL_ERROR`, leaving
//! the library uninitialised) while the directory is missing.
//!
//! A re-initialisation ends every session of the module in this process;
//! other providers on the same module notice (a generation counter) and reopen
//! theirs, but code using the module directly through its own `cryptoki`
//! context loses its sessions.
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
mod module;

pub use config::{
    DEFAULT_MODULE, DEFAULT_SIGNING_KEY_LABEL, MAX_SESSIONS, PIN_ENV, Pkcs11Config, Pkcs11Pin,
};

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use strongroom_core::VaultId;
use strongroom_crypto::Dek;
use zeroize::Zeroizing;

use crate::{KekRef, KeyProvider, KmsError, ProviderHealth, SigningPublicKey, WrappedDek, kid_for};
use module::{ModState, Module, Objects};

const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const DEK_LEN: usize = 32;
/// The length of every wrapped-DEK blob.
pub const BLOB_LEN: usize = IV_LEN + DEK_LEN + TAG_LEN;
/// DER of the Ed25519 OID 1.3.101.112, the `CKA_EC_PARAMS` of the signing key.
const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2B, 0x65, 0x70];
const KEK_LABEL_PREFIX: &str = "strongroom-kek:";
const SELF_TEST_MESSAGE: &[u8] = b"strongroom/pkcs11/signing-key-self-test";

/// The `CKA_LABEL` of version `version` of KEK `id`.
pub fn kek_label(id: &str, version: u32) -> String {
    format!("{KEK_LABEL_PREFIX}{id}:v{version}")
}

/// The `CKA_ID` shared by every version of KEK `id`.
pub fn kek_object_id(id: &str) -> Vec<u8> {
    format!("{KEK_LABEL_PREFIX}{id}").into_bytes()
}

fn parse_kek_label(id: &str, label: &[u8]) -> Option<u32> {
    let label = std::str::from_utf8(label).ok()?;
    let v = label
        .strip_prefix(KEK_LABEL_PREFIX)?
        .strip_prefix(id)?
        .strip_prefix(":v")?;
    if v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|n| *n > 0)
}

/// A KEK id this provider could have made; anything else is not looked up.
fn valid_kek_id(id: &str) -> bool {
    id.starts_with("vault-")
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The raw 32-byte key from `CKA_EC_POINT`: a DER OCTET STRING around it (as
/// PKCS#11 3.0 specifies) or, from some modules, the bare bytes.
fn parse_ec_point(v: &[u8]) -> Option<[u8; 32]> {
    let raw = match v {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        [0x04, 0x81, 0x20, rest @ ..] if rest.len() == 32 => rest,
        _ if v.len() == 32 => v,
        _ => return None,
    };
    raw.try_into().ok()
}

/// A short description of a cryptoki error, e.g. `C_Decrypt: GeneralError`.
fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, f) => format!("C_{f:?}: {rv:?}"),
        other => other.to_string(),
    }
}

/// Return values that mean the token, the device or the session is gone.
fn is_lost(rv: &RvError) -> bool {
    matches!(
        rv,
        RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::SlotIdInvalid
            | RvError::CryptokiNotInitialized
            | RvError::UserNotLoggedIn
    )
}

fn is_lost_err(e: &CkError) -> bool {
    matches!(e, CkError::Pkcs11(rv, _) if is_lost(rv))
}

/// A handle that no longer names an object (destroyed, or the token went away).
fn is_stale(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _)
    )
}

fn kek_template(id: &str, version: u32) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen((DEK_LEN as u64).into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
        Attribute::Modifiable(false),
        Attribute::Copyable(false),
        Attribute::Label(kek_label(id, version).into_bytes()),
        Attribute::Id(kek_object_id(id)),
    ]
}

/// A `pkcs11` key provider. See the [module documentation](self).
pub struct Pkcs11Provider {
    inner: Arc<Inner>,
    public: SigningPublicKey,
}

struct Inner {
    module: Arc<Module>,
    token_label: String,
    signing_key_label: String,
    pin: AuthPin,
    max_idle: usize,
    /// One permit per session: bounds the HSM calls in flight.
    permits: Arc<tokio::sync::Semaphore>,
    conn: Mutex<Conn>,
    /// Whether the last call found the token unavailable (to log transitions once).
    down: AtomicBool,
}

/// The provider's connection: the slot, idle sessions and cached handles, all
/// valid for one module generation.
#[derive(Default)]
struct Conn {
    generation: u64,
    /// Bumped whenever this connection is dropped; a session checked out under
    /// an older epoch is closed instead of pooled.
    epoch: u64,
    slot: Option<Slot>,
    idle: Vec<Session>,
    keks: HashMap<String, BTreeMap<u32, ObjectHandle>>,
    signing: Option<ObjectHandle>,
}

impl Conn {
    /// Forgets the slot, the sessions and the handles. `close`: whether the
    /// sessions belong to the current module generation and may be closed
    /// (older ones are dead, and their numbers may have been reused).
    fn drop_connection(&mut self, close: bool) {
        let idle = std::mem::take(&mut self.idle);
        if close {
            for s in idle {
                let _ = s.close();
            }
        }
        self.slot = None;
        self.keks.clear();
        self.signing = None;
        self.epoch += 1;
    }
}

enum Checkout {
    /// The token can't be reached; a module rescan may help.
    Missing(String),
    /// Anything else: reported as is.
    Failed(KmsError),
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
        .map_err(|e| KmsError::Internal(format!("PKCS#11 call failed: {e}")))?
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

impl Inner {
    fn lock_conn(&self) -> MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `op`, which uses but neither creates nor destroys token objects,
    /// with a logged-in session of the current module generation,
    /// (re)connecting first if needed. An `Unavailable` result drops the
    /// connection, so the next call starts afresh.
    fn with_session<T>(
        &self,
        op: impl FnOnce(&Ctx<'_>) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        self.with_session_as(Objects::Use, op)
    }

    /// [`Self::with_session`] for an `op` that creates or destroys token
    /// objects: no other call of this process runs meanwhile.
    fn changing_objects<T>(
        &self,
        op: impl FnOnce(&Ctx<'_>) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        self.with_session_as(Objects::Change, op)
    }

    fn with_session_as<T>(
        &self,
        access: Objects,
        op: impl FnOnce(&Ctx<'_>) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        let r = self.with_session_inner(access, op);
        match &r {
            Err(KmsError::Unavailable(m)) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(token = %self.token_label, reason = %m, "PKCS#11 token unavailable");
                }
            }
            Ok(_) => {
                if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(token = %self.token_label, "PKCS#11 token available again");
                }
            }
            Err(_) => {}
        }
        r
    }

    fn with_session_inner<T>(
        &self,
        access: Objects,
        op: impl FnOnce(&Ctx<'_>) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        let mut op = Some(op);
        let mut rescanned = false;
        loop {
            let st = self.module.read();
            let missing = if !st.initialized {
                format!(
                    "the PKCS#11 module could not be initialised ({})",
                    st.init_error.as_deref().unwrap_or("unknown error")
                )
            } else {
                let _objects = self.module.objects(access);
                match self.checkout(&st) {
                    Ok((slot, session, epoch)) => {
                        let ctx = Ctx {
                            inner: self,
                            st: &st,
                            slot,
                            session: &session,
                        };
                        let op = op.take().expect("the operation runs once");
                        let r = op(&ctx);
                        self.checkin(session, epoch, matches!(r, Err(KmsError::Unavailable(_))));
                        return r;
                    }
                    Err(Checkout::Failed(e)) => return Err(e),
                    Err(Checkout::Missing(m)) => m,
                }
            };
            let seen = st.generation;
            drop(st);
            if !rescanned && self.module.reset(seen) {
                rescanned = true;
                continue;
            }
            return Err(KmsError::Unavailable(missing));
        }
    }

    /// A logged-in session from the pool (or a new one), with its slot and the
    /// connection epoch it belongs to.
    fn checkout(&self, st: &ModState) -> Result<(Slot, Session, u64), Checkout> {
        let mut conn = self.lock_conn();
        if conn.generation != st.generation {
            // The module was re-initialised: old sessions and handles are dead.
            conn.drop_connection(false);
            conn.generation = st.generation;
        }
        let slot = match conn.slot {
            Some(s) => s,
            None => {
                let s = find_slot(st, &self.token_label)?;
                conn.slot = Some(s);
                s
            }
        };
        if let Some(s) = conn.idle.pop() {
            return Ok((slot, s, conn.epoch));
        }
        let session = match st.ctx.open_rw_session_no_drop(slot) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!(
                    "opening a session on token '{}': {}",
                    self.token_label,
                    describe(&e)
                );
                if is_lost_err(&e) {
                    conn.drop_connection(true);
                    return Err(Checkout::Missing(msg));
                }
                return Err(Checkout::Failed(KmsError::Unavailable(msg)));
            }
        };
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => {
                let _ = session.close();
                let msg = format!(
                    "logging in to token '{}': {}",
                    self.token_label,
                    describe(&e)
                );
                if is_lost_err(&e) {
                    conn.drop_connection(true);
                    return Err(Checkout::Missing(msg));
                }
                return Err(Checkout::Failed(KmsError::Internal(msg)));
            }
        }
        Ok((slot, session, conn.epoch))
    }

    fn checkin(&self, session: Session, epoch: u64, lost: bool) {
        let mut conn = self.lock_conn();
        if lost {
            let _ = session.close();
            if conn.epoch == epoch {
                conn.drop_connection(true);
            }
        } else if conn.epoch == epoch && conn.idle.len() < self.max_idle {
            conn.idle.push(session);
        } else {
            let _ = session.close();
        }
    }

    fn create_kek(&self, id: &str) -> Result<(), KmsError> {
        self.changing_objects(|c| {
            let h = c
                .session
                .generate_key(&Mechanism::AesKeyGen, &kek_template(id, 1))
                .map_err(|e| c.fail("generating a KEK", e))?;
            c.conn()
                .keks
                .insert(id.to_string(), BTreeMap::from([(1, h)]));
            Ok(())
        })
    }

    fn wrap(&self, id: &str, dek: &Dek, aad: &[u8]) -> Result<WrappedDek, KmsError> {
        self.with_session(|c| {
            let (version, iv, ct) = c
                .using_kek(id, None, |v, h| {
                    c.encrypt(h, dek.expose(), aad).map(|(iv, ct)| (v, iv, ct))
                })?
                .map_err(|e| c.fail("wrapping a DEK", e))?;
            if ct.len() != DEK_LEN + TAG_LEN {
                return Err(KmsError::Internal(format!(
                    "the token returned {} bytes of AES-GCM output for a 32-byte DEK",
                    ct.len()
                )));
            }
            let mut blob = Vec::with_capacity(BLOB_LEN);
            blob.extend_from_slice(&iv);
            blob.extend_from_slice(&ct);
            Ok(WrappedDek {
                kek_version: version,
                blob,
            })
        })
    }

    fn unwrap(&self, id: &str, wrapped: &WrappedDek, aad: &[u8]) -> Result<Dek, KmsError> {
        if wrapped.blob.len() != BLOB_LEN {
            return Err(KmsError::Integrity);
        }
        let (iv, data) = wrapped.blob.split_at(IV_LEN);
        let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| KmsError::Integrity)?;
        self.with_session(|c| {
            let plain = c
                .using_kek(id, Some(wrapped.kek_version), |_, h| {
                    c.decrypt(h, iv, data, aad)
                })?
                .map_err(|e| match &e {
                    _ if is_lost_err(&e) => KmsError::Unavailable(describe(&e)),
                    // A failed tag or AAD check (SoftHSM: CKR_GENERAL_ERROR), or any
                    // other complaint about the data: never retried.
                    CkError::Pkcs11(_, Function::Decrypt) => KmsError::Integrity,
                    _ => c.fail("unwrapping a DEK", e),
                })?;
            Dek::from_slice(&plain).map_err(|_| KmsError::Integrity)
        })
    }

    fn rotate_kek(&self, id: &str) -> Result<u32, KmsError> {
        self.changing_objects(|c| {
            let versions = c.load_kek(id)?;
            let next = versions
                .last_key_value()
                .map(|(v, _)| *v)
                .unwrap_or(0)
                .checked_add(1)
                .ok_or_else(|| KmsError::Internal("KEK version overflow".into()))?;
            let h = c
                .session
                .generate_key(&Mechanism::AesKeyGen, &kek_template(id, next))
                .map_err(|e| c.fail("generating a KEK version", e))?;
            c.conn()
                .keks
                .entry(id.to_string())
                .or_default()
                .insert(next, h);
            Ok(next)
        })
    }

    fn destroy_kek(&self, id: &str) -> Result<(), KmsError> {
        self.changing_objects(|c| {
            let versions = c.load_kek(id)?;
            c.conn().keks.remove(id);
            for h in versions.values() {
                match c.session.destroy_object(*h) {
                    Ok(()) => {}
                    Err(e) if is_stale(&e) => {}
                    Err(e) => return Err(c.fail("destroying a KEK version", e)),
                }
            }
            let left = c.find(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Id(kek_object_id(id)),
            ])?;
            if !left.is_empty() {
                return Err(KmsError::Internal(format!(
                    "{} objects of the KEK are still on the token after destroying it",
                    left.len()
                )));
            }
            Ok(())
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let st = self.module.read();
        let mut conn = self.lock_conn();
        let current = st.initialized && conn.generation == st.generation;
        conn.drop_connection(current);
    }
}

/// One HSM call's view: the module state (read-locked), the slot and a session.
struct Ctx<'a> {
    inner: &'a Inner,
    st: &'a ModState,
    slot: Slot,
    session: &'a Session,
}

impl Ctx<'_> {
    fn conn(&self) -> MutexGuard<'_, Conn> {
        self.inner.lock_conn()
    }

    /// Whether the slot still holds our token.
    fn token_check(&self) -> Result<(), String> {
        let label = &self.inner.token_label;
        match self.st.ctx.get_token_info(self.slot) {
            Ok(i) if i.label() == label.as_str() => Ok(()),
            Ok(i) => Err(format!(
                "the slot of token '{label}' now holds token '{}'",
                i.label()
            )),
            Err(e) => Err(format!("token '{label}' is not readable: {}", describe(&e))),
        }
    }

    /// `KeyNotFound` if the token is fine, else `Unavailable`.
    fn not_found(&self) -> KmsError {
        match self.token_check() {
            Ok(()) => KmsError::KeyNotFound,
            Err(m) => KmsError::Unavailable(m),
        }
    }

    /// Maps a failed call: loss of token, device or session is `Unavailable`,
    /// and so is anything at all while the token can't be read.
    fn fail(&self, what: &str, e: CkError) -> KmsError {
        if is_lost_err(&e) {
            return KmsError::Unavailable(format!("{what}: {}", describe(&e)));
        }
        match self.token_check() {
            Ok(()) => KmsError::Internal(format!("{what}: {}", describe(&e))),
            Err(m) => KmsError::Unavailable(m),
        }
    }

    fn find(&self, template: &[Attribute]) -> Result<Vec<ObjectHandle>, KmsError> {
        self.session
            .find_objects(template)
            .map_err(|e| self.fail("finding objects", e))
    }

    /// Every version of a KEK, read from the token (and cached).
    fn load_kek(&self, id: &str) -> Result<BTreeMap<u32, ObjectHandle>, KmsError> {
        if !valid_kek_id(id) {
            return Err(KmsError::KeyNotFound);
        }
        let handles = self.find(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Id(kek_object_id(id)),
        ])?;
        let mut versions = BTreeMap::new();
        for h in handles {
            let attrs = match self.session.get_attributes(h, &[AttributeType::Label]) {
                Ok(a) => a,
                Err(e) if is_stale(&e) => continue,
                Err(e) => return Err(self.fail("reading a KEK label", e)),
            };
            for a in attrs {
                if let Attribute::Label(l) = a
                    && let Some(v) = parse_kek_label(id, &l)
                {
                    versions.insert(v, h);
                }
            }
        }
        if versions.is_empty() {
            self.conn().keks.remove(id);
            return Err(self.not_found());
        }
        self.conn().keks.insert(id.to_string(), versions.clone());
        Ok(versions)
    }

    /// The handle of a KEK version (`None`: the newest), from the cache unless `fresh`.
    fn kek_handle(
        &self,
        id: &str,
        version: Option<u32>,
        fresh: bool,
    ) -> Result<(u32, ObjectHandle), KmsError> {
        let pick = |m: &BTreeMap<u32, ObjectHandle>| match version {
            None => m.last_key_value().map(|(v, h)| (*v, *h)),
            Some(v) => m.get(&v).map(|h| (v, *h)),
        };
        if !fresh && let Some(hit) = self.conn().keks.get(id).and_then(pick) {
            return Ok(hit);
        }
        let versions = self.load_kek(id)?;
        pick(&versions).ok_or_else(|| self.not_found())
    }

    /// Runs `f` with a KEK version's handle; a stale cached handle is looked up
    /// once more. The outer error is the lookup's, the inner one `f`'s.
    fn using_kek<T>(
        &self,
        id: &str,
        version: Option<u32>,
        f: impl Fn(u32, ObjectHandle) -> Result<T, CkError>,
    ) -> Result<Result<T, CkError>, KmsError> {
        let (v, h) = self.kek_handle(id, version, false)?;
        match f(v, h) {
            Err(e) if is_stale(&e) => {
                self.conn().keks.remove(id);
                let (v, h) = self.kek_handle(id, version, true)?;
                match f(v, h) {
                    Err(e) if is_stale(&e) => Err(self.not_found()),
                    r => Ok(r),
                }
            }
            r => Ok(r),
        }
    }

    /// AES-GCM encryption under `key` with a fresh random IV; returns the IV
    /// the token used (read back from the parameters) and `ciphertext || tag`.
    fn encrypt(
        &self,
        key: ObjectHandle,
        plain: &[u8],
        aad: &[u8],
    ) -> Result<([u8; IV_LEN], Vec<u8>), CkError> {
        let mut iv = [0u8; IV_LEN];
        strongroom_crypto::random::fill(&mut iv);
        let ct = {
            let params = GcmParams::new(&mut iv, aad, ((TAG_LEN * 8) as u64).into())?;
            self.session
                .encrypt(&Mechanism::AesGcm(params), key, plain)?
        };
        Ok((iv, ct))
    }

    fn decrypt(
        &self,
        key: ObjectHandle,
        iv: [u8; IV_LEN],
        data: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CkError> {
        let mut iv = iv;
        let params = GcmParams::new(&mut iv, aad, ((TAG_LEN * 8) as u64).into())?;
        self.session
            .decrypt(&Mechanism::AesGcm(params), key, data)
            .map(Zeroizing::new)
    }

    fn signing_handle(&self, fresh: bool) -> Result<ObjectHandle, KmsError> {
        if !fresh && let Some(h) = self.conn().signing {
            return Ok(h);
        }
        let label = &self.inner.signing_key_label;
        let found = self.find(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])?;
        match found.as_slice() {
            [h] => {
                self.conn().signing = Some(*h);
                Ok(*h)
            }
            [] => Err(match self.token_check() {
                Ok(()) => KmsError::Internal(format!(
                    "the signing key '{label}' is missing from the token"
                )),
                Err(m) => KmsError::Unavailable(m),
            }),
            many => Err(KmsError::Internal(format!(
                "{} private keys on the token are labelled '{label}'",
                many.len()
            ))),
        }
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KmsError> {
        let mech = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let h = self.signing_handle(false)?;
        let r = match self.session.sign(&mech, h, msg) {
            Err(e) if is_stale(&e) => {
                self.conn().signing = None;
                let h = self.signing_handle(true)?;
                self.session.sign(&mech, h, msg)
            }
            r => r,
        };
        let sig = r.map_err(|e| self.fail("signing", e))?;
        if sig.len() != 64 {
            return Err(KmsError::Internal(format!(
                "the token returned a {}-byte Ed25519 signature",
                sig.len()
            )));
        }
        Ok(sig)
    }

    /// Finds the signing key pair (creating it if the token has none) and
    /// returns its raw public key, after a sign/verify self-test.
    fn ensure_signing_key(&self) -> Result<[u8; 32], KmsError> {
        let label = self.inner.signing_key_label.as_bytes().to_vec();
        let with_label = |class| [Attribute::Class(class), Attribute::Label(label.clone())];
        let privs = self.find(&with_label(ObjectClass::PRIVATE_KEY))?;
        let pubs = self.find(&with_label(ObjectClass::PUBLIC_KEY))?;
        let public = match (privs.as_slice(), pubs.as_slice()) {
            ([], []) => {
                tracing::info!(
                    token = %self.inner.token_label,
                    label = %self.inner.signing_key_label,
                    "creating the Ed25519 signing key on the token"
                );
                let public_template = [
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Verify(true),
                    Attribute::Modifiable(false),
                    Attribute::EcParams(ED25519_OID.to_vec()),
                    Attribute::Label(label.clone()),
                    Attribute::Id(label.clone()),
                ];
                let private_template = [
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Sign(true),
                    Attribute::Derive(false),
                    Attribute::Modifiable(false),
                    Attribute::Label(label.clone()),
                    Attribute::Id(label.clone()),
                ];
                let (public, private) = self
                    .session
                    .generate_key_pair(
                        &Mechanism::EccEdwardsKeyPairGen,
                        &public_template,
                        &private_template,
                    )
                    .map_err(|e| self.fail("generating the signing key", e))?;
                self.conn().signing = Some(private);
                public
            }
            ([private], [public]) => {
                let kt = self
                    .session
                    .get_attributes(*private, &[AttributeType::KeyType])
                    .map_err(|e| self.fail("reading the signing key", e))?;
                if !kt.contains(&Attribute::KeyType(KeyType::EC_EDWARDS)) {
                    return Err(KmsError::Internal(format!(
                        "the key labelled '{}' on the token is not an Ed25519 key",
                        self.inner.signing_key_label
                    )));
                }
                self.conn().signing = Some(*private);
                *public
            }
            (p, q) => {
                return Err(KmsError::Internal(format!(
                    "the token holds {} private and {} public objects labelled '{}'; \
                     expected one Ed25519 key pair",
                    p.len(),
                    q.len(),
                    self.inner.signing_key_label
                )));
            }
        };
        let attrs = self
            .session
            .get_attributes(public, &[AttributeType::EcPoint])
            .map_err(|e| self.fail("reading the signing public key", e))?;
        let ed25519 = attrs
            .iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => parse_ec_point(p),
                _ => None,
            })
            .ok_or_else(|| {
                KmsError::Internal("the signing key's CKA_EC_POINT is not an Ed25519 key".into())
            })?;
        let sig = self.sign(SELF_TEST_MESSAGE)?;
        aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, ed25519)
            .verify(SELF_TEST_MESSAGE, &sig)
            .map_err(|_| {
                KmsError::Internal(
                    "the signing key's private half does not match its public half".into(),
                )
            })?;
        Ok(ed25519)
    }
}

/// The slot holding the token labelled `label`.
fn find_slot(st: &ModState, label: &str) -> Result<Slot, Checkout> {
    let slots = st
        .ctx
        .get_slots_with_token()
        .map_err(|e| Checkout::Missing(format!("listing PKCS#11 slots: {}", describe(&e))))?;
    let found: Vec<Slot> = slots
        .into_iter()
        .filter(|s| {
            // A slot whose token can't be read is not ours (SoftHSM2 answers
            // CKR_GENERAL_ERROR for a token whose directory went away).
            st.ctx
                .get_token_info(*s)
                .is_ok_and(|i| i.token_initialized() && i.label() == label)
        })
        .collect();
    match found.as_slice() {
        [s] => Ok(*s),
        [] => Err(Checkout::Missing(format!(
            "no token labelled '{label}' is present"
        ))),
        many => Err(Checkout::Failed(KmsError::Internal(format!(
            "{} tokens are labelled '{label}'; token labels must be unique",
            many.len()
        )))),
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
            Err(KmsError::Unavailable(m)) => ProviderHealth::Unavailable(m),
            Err(e) => ProviderHealth::Unavailable(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_points_parse_wrapped_and_raw() {
        let key: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
        let mut der = vec![0x04, 0x20];
        der.extend_from_slice(&key);
        assert_eq!(parse_ec_point(&der), Some(key));
        assert_eq!(parse_ec_point(&key), Some(key));
        let mut long = vec![0x04, 0x81, 0x20];
        long.extend_from_slice(&key);
        assert_eq!(parse_ec_point(&long), Some(key));
        // A raw key that happens to start like DER is still 32 bytes: raw.
        let mut tricky = key;
        tricky[0] = 0x04;
        tricky[1] = 0x20;
        assert_eq!(parse_ec_point(&tricky), Some(tricky));
        assert_eq!(parse_ec_point(&der[..33]), None);
        assert_eq!(parse_ec_point(&[0x04, 0x41, 1, 2]), None);
        assert_eq!(parse_ec_point(&[]), None);
    }

    #[test]
    fn kek_labels_round_trip_and_reject_lookalikes() {
        let id = "vault-0190a5c4-7f3e-7a2b-9c1d-2e3f4a5b6c7d-0a1b2c3d";
        assert!(valid_kek_id(id));
        assert_eq!(parse_kek_label(id, kek_label(id, 7).as_bytes()), Some(7));
        assert_eq!(parse_kek_label(id, b"strongroom-kek:other:v1"), None);
        assert_eq!(
            parse_kek_label(id, format!("{KEK_LABEL_PREFIX}{id}:v0").as_bytes()),
            None
        );
        assert_eq!(
            parse_kek_label(id, format!("{KEK_LABEL_PREFIX}{id}:v01").as_bytes()),
            None
        );
        assert_eq!(
            parse_kek_label(id, format!("{KEK_LABEL_PREFIX}{id}:v+1").as_bytes()),
            None
        );
        assert_eq!(
            parse_kek_label(id, format!("{KEK_LABEL_PREFIX}{id}x:v1").as_bytes()),
            None
        );
        assert!(!valid_kek_id("vault-a:b"));
        assert!(!valid_kek_id("other-1"));
        assert!(!valid_kek_id(&format!("vault-{}", "a".repeat(64))));
    }

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
