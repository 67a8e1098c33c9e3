//! The session pool of the `pkcs11` provider: finding the token by label,
//! logging in, checking sessions out and in, and what happens when the token
//! goes away.
//!
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

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::module::{ModState, Module, Objects};
use crate::{KmsError, Reason};

/// A short description of a cryptoki error, e.g. `C_Decrypt: GeneralError`.
pub(super) fn describe(e: &CkError) -> String {
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

pub(super) fn is_lost_err(e: &CkError) -> bool {
    matches!(e, CkError::Pkcs11(rv, _) if is_lost(rv))
}

/// A handle that no longer names an object (destroyed, or the token went away).
pub(super) fn is_stale(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _)
    )
}

pub(super) struct Inner {
    pub(super) module: Arc<Module>,
    pub(super) token_label: String,
    pub(super) signing_key_label: String,
    pub(super) pin: AuthPin,
    pub(super) max_idle: usize,
    /// One permit per session: bounds the HSM calls in flight.
    pub(super) permits: Arc<tokio::sync::Semaphore>,
    pub(super) conn: Mutex<Conn>,
    /// Whether the last call found the token unavailable (to log transitions once).
    pub(super) down: AtomicBool,
}

/// The provider's connection: the slot, idle sessions and cached handles, all
/// valid for one module generation.
#[derive(Default)]
pub(super) struct Conn {
    pub(super) generation: u64,
    /// Bumped whenever this connection is dropped; a session checked out under
    /// an older epoch is closed instead of pooled.
    pub(super) epoch: u64,
    pub(super) slot: Option<Slot>,
    pub(super) idle: Vec<Session>,
    pub(super) keks: HashMap<String, BTreeMap<u32, ObjectHandle>>,
    pub(super) signing: Option<ObjectHandle>,
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

impl Inner {
    fn lock_conn(&self) -> MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `op`, which uses but neither creates nor destroys token objects,
    /// with a logged-in session of the current module generation,
    /// (re)connecting first if needed. An `Unavailable` result drops the
    /// connection, so the next call starts afresh.
    pub(super) fn with_session<T>(
        &self,
        op: impl FnOnce(&Ctx<'_>) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        self.with_session_as(Objects::Use, op)
    }

    /// [`Self::with_session`] for an `op` that creates or destroys token
    /// objects: no other call of this process runs meanwhile.
    pub(super) fn changing_objects<T>(
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
            Err(e @ KmsError::Unavailable(_)) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        token = %self.token_label,
                        reason = %strongroom_core::Chain(e),
                        "PKCS#11 token unavailable"
                    );
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
            return Err(KmsError::Unavailable(missing.into()));
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
                return Err(Checkout::Failed(KmsError::Unavailable(msg.into())));
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
                return Err(Checkout::Failed(KmsError::Internal(msg.into())));
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
pub(super) struct Ctx<'a> {
    pub(super) inner: &'a Inner,
    pub(super) st: &'a ModState,
    pub(super) slot: Slot,
    pub(super) session: &'a Session,
}

impl Ctx<'_> {
    pub(super) fn conn(&self) -> MutexGuard<'_, Conn> {
        self.inner.lock_conn()
    }

    /// Whether the slot still holds our token.
    pub(super) fn token_check(&self) -> Result<(), Reason> {
        let label = &self.inner.token_label;
        match self.st.ctx.get_token_info(self.slot) {
            Ok(i) if i.label() == label.as_str() => Ok(()),
            Ok(i) => Err(format!(
                "the slot of token '{label}' now holds token '{}'",
                i.label()
            )
            .into()),
            Err(e) => Err(Reason::because(
                format!("token '{label}' is not readable"),
                e,
            )),
        }
    }

    /// `KeyNotFound` if the token is fine, else `Unavailable`.
    pub(super) fn not_found(&self) -> KmsError {
        match self.token_check() {
            Ok(()) => KmsError::KeyNotFound,
            Err(m) => KmsError::Unavailable(m),
        }
    }

    /// Maps a failed call: loss of token, device or session is `Unavailable`,
    /// and so is anything at all while the token can't be read.
    pub(super) fn fail(&self, what: &str, e: CkError) -> KmsError {
        if is_lost_err(&e) {
            return KmsError::Unavailable(Reason::because(what.to_owned(), e));
        }
        match self.token_check() {
            Ok(()) => KmsError::Internal(Reason::because(what.to_owned(), e)),
            Err(m) => KmsError::Unavailable(m),
        }
    }

    pub(super) fn find(&self, template: &[Attribute]) -> Result<Vec<ObjectHandle>, KmsError> {
        self.session
            .find_objects(template)
            .map_err(|e| self.fail("finding objects", e))
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
        many => Err(Checkout::Failed(KmsError::Internal(
            format!(
                "{} tokens are labelled '{label}'; token labels must be unique",
                many.len()
            )
            .into(),
        ))),
    }
}
