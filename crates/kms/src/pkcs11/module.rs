//! The process-wide PKCS#11 context: one per module path, shared by every
//! provider in the process, and re-initialised (C_Finalize + C_Initialize)
//! when a token has to be rescanned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};

use crate::KmsError;

/// The shortest time between two re-initialisations of one module. A token
/// that stays away is not rescanned on every call.
pub(super) const MIN_RESET_INTERVAL: Duration = Duration::from_millis(200);

/// What a call does with the token's objects.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Objects {
    /// Uses them (wrap, unwrap, sign, look-ups): runs beside other uses.
    Use,
    /// Creates or destroys some: runs alone.
    Change,
}

/// Held for the length of a call; see [`Module::objects`].
pub(super) enum ObjectsGuard<'a> {
    Shared(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'a, ()>),
}

/// One loaded PKCS#11 module.
pub(super) struct Module {
    pub(super) path: PathBuf,
    state: RwLock<ModState>,
    /// Taken exclusively to create or destroy token objects (KEKs, KEK
    /// versions, the signing key) and shared by every other call, so no call
    /// of this process runs while objects change. SoftHSM2 2.6.1 guards its
    /// object files with `fcntl` locks, which don't exclude threads of one
    /// process: an object generated while another thread looks objects up
    /// fails with `CKR_GENERAL_ERROR` (softhsm/SoftHSMv2#573). It also
    /// keeps two providers opening at once from both creating a signing key,
    /// and two rotations of one KEK from picking the same version. Taken while
    /// holding the state's read guard, never the other way round.
    objects: RwLock<()>,
}

/// The module's state. HSM calls run while holding a read guard, so a
/// re-initialisation (which takes the write lock) never pulls a session out
/// from under a running call.
pub(super) struct ModState {
    pub(super) ctx: Pkcs11,
    /// Whether C_Initialize succeeded (SoftHSM2 fails it while its token
    /// directory is missing).
    pub(super) initialized: bool,
    /// Why the last C_Initialize failed.
    pub(super) init_error: Option<String>,
    /// Bumped on every re-initialisation: sessions and object handles of an
    /// older generation are dead, and their numbers may be reused.
    pub(super) generation: u64,
    last_reset: Option<Instant>,
}

static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();

/// The shared module for `path` (loaded and initialised on first use).
pub(super) fn get(path: &Path) -> Result<Arc<Module>, KmsError> {
    let canon = std::fs::canonicalize(path).map_err(|e| {
        KmsError::Internal(crate::Reason::because(
            format!("PKCS#11 module {}", path.display()),
            e,
        ))
    })?;
    let mut map = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(m) = map.get(&canon) {
        return Ok(m.clone());
    }
    let ctx = Pkcs11::new(&canon).map_err(|e| {
        KmsError::Internal(crate::Reason::because(
            format!("loading PKCS#11 module {}", canon.display()),
            e,
        ))
    })?;
    let init = initialize(&ctx);
    let module = Arc::new(Module {
        path: canon.clone(),
        state: RwLock::new(ModState {
            ctx,
            initialized: init.is_ok(),
            init_error: init.err(),
            generation: 0,
            last_reset: None,
        }),
        objects: RwLock::new(()),
    });
    map.insert(canon, module.clone());
    Ok(module)
}

/// C_Initialize with OS locking; "already initialised" (by another user of
/// the same module in this process) counts as success.
fn initialize(ctx: &Pkcs11) -> Result<(), String> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(super::session::describe(&e)),
    }
}

impl Module {
    pub(super) fn read(&self) -> RwLockReadGuard<'_, ModState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Held around a call on the token (see `objects`).
    pub(super) fn objects(&self, access: Objects) -> ObjectsGuard<'_> {
        match access {
            Objects::Use => {
                ObjectsGuard::Shared(self.objects.read().unwrap_or_else(|e| e.into_inner()))
            }
            Objects::Change => {
                ObjectsGuard::Exclusive(self.objects.write().unwrap_or_else(|e| e.into_inner()))
            }
        }
    }

    /// Re-initialises the module so that it rescans its slots and tokens.
    ///
    /// `seen` is the generation the caller found wanting. Returns true when the
    /// module is now of a newer generation (re-initialised here or by someone
    /// else meanwhile), false when the last re-initialisation was too recent.
    pub(super) fn reset(&self, seen: u64) -> bool {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        if st.generation != seen {
            return true;
        }
        if st
            .last_reset
            .is_some_and(|t| t.elapsed() < MIN_RESET_INTERVAL)
        {
            return false;
        }
        if st.initialized {
            // Every session of the old generation dies here; providers notice
            // the generation change and never touch their old handles again.
            let _ = st.ctx.clone().finalize();
        }
        let init = initialize(&st.ctx);
        if let Err(e) = &init {
            tracing::debug!(module = %self.path.display(), error = %e, "PKCS#11 C_Initialize failed");
        }
        st.initialized = init.is_ok();
        st.init_error = init.err();
        st.generation += 1;
        st.last_reset = Some(Instant::now());
        true
    }
}
