//! Configuration of the `pkcs11` provider and where its PIN comes from.

use std::fmt;
use std::path::PathBuf;

use cryptoki::types::AuthPin;
use serde::{Deserialize, Deserializer};
use zeroize::{Zeroize, Zeroizing};

use crate::KmsError;

/// The module loaded when `module` is not set: SoftHSM2 as Debian packages it.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The label of the Ed25519 JWT key pair when `signing_key_label` is not set.
pub const DEFAULT_SIGNING_KEY_LABEL: &str = "strongroom-jwt";
/// The environment variable the user PIN is read from when neither `pin` nor
/// `pin_file` is configured.
pub const PIN_ENV: &str = "STRONGROOM_PKCS11_PIN";
/// The upper bound on `sessions`.
pub const MAX_SESSIONS: usize = 64;

/// Settings of the `pkcs11` provider (the `[kms.pkcs11]` table of the server
/// configuration, or built in code with [`Pkcs11Config::new`]).
///
/// The user PIN comes from exactly one of: `pin_file` (a file holding the PIN;
/// a trailing newline is ignored), `pin` (inline; discouraged because config
/// files get copied around), or the `STRONGROOM_PKCS11_PIN` environment
/// variable when neither is set. It is never logged: `Debug` redacts it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (`.so`). Default [`DEFAULT_MODULE`].
    #[serde(default = "default_module")]
    pub module: PathBuf,
    /// Label of the token holding Strongroom's keys. The slot is found by this
    /// label on every (re)connection: slot ids are not stable.
    pub token_label: String,
    /// The user PIN, inline. Prefer `pin_file` or the environment.
    #[serde(default)]
    pub pin: Option<Pkcs11Pin>,
    /// A file holding the user PIN (should be mode 0600).
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
    /// Label of the Ed25519 JWT signing key pair; created on first open.
    #[serde(default = "default_signing_key_label")]
    pub signing_key_label: String,
    /// How many PKCS#11 sessions (and so concurrent HSM calls) to use. Default 2.
    #[serde(default = "default_sessions")]
    pub sessions: usize,
}

fn default_module() -> PathBuf {
    PathBuf::from(DEFAULT_MODULE)
}
fn default_signing_key_label() -> String {
    DEFAULT_SIGNING_KEY_LABEL.to_string()
}
fn default_sessions() -> usize {
    2
}

impl Pkcs11Config {
    /// Defaults for everything but the token label; the PIN will come from
    /// `STRONGROOM_PKCS11_PIN` unless `pin` or `pin_file` is set.
    pub fn new(token_label: impl Into<String>) -> Self {
        Pkcs11Config {
            module: default_module(),
            token_label: token_label.into(),
            pin: None,
            pin_file: None,
            signing_key_label: default_signing_key_label(),
            sessions: default_sessions(),
        }
    }

    pub(super) fn validate(&self) -> Result<(), KmsError> {
        let bad = |m: &str| {
            Err(KmsError::Internal(
                format!("pkcs11 configuration: {m}").into(),
            ))
        };
        if self.token_label.is_empty() || self.token_label.len() > 32 {
            return bad("token_label must be 1 to 32 bytes (the PKCS#11 label field)");
        }
        if self.signing_key_label.is_empty() {
            return bad("signing_key_label must not be empty");
        }
        if self.sessions == 0 || self.sessions > MAX_SESSIONS {
            return bad(&format!("sessions must be between 1 and {MAX_SESSIONS}"));
        }
        if self.pin.is_some() && self.pin_file.is_some() {
            return bad("set only one of pin and pin_file");
        }
        Ok(())
    }

    /// Takes the PIN out of the configuration (or reads it from its file or the
    /// environment).
    pub(super) fn take_pin(&mut self) -> Result<AuthPin, KmsError> {
        if let Some(pin) = self.pin.take() {
            tracing::warn!(
                "the PKCS#11 PIN is written in the configuration; prefer pin_file or {PIN_ENV}"
            );
            return Ok(pin.0);
        }
        if let Some(path) = &self.pin_file {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                KmsError::Internal(crate::Reason::because(
                    format!("reading the PKCS#11 pin_file {}", path.display()),
                    e,
                ))
            })?);
            crate::root_key::warn_if_loose(path);
            let pin = text.trim_end_matches(['\r', '\n']);
            if pin.is_empty() {
                return Err(KmsError::Internal(
                    format!("the PKCS#11 pin_file {} is empty", path.display()).into(),
                ));
            }
            return Ok(AuthPin::new(pin.into()));
        }
        match std::env::var(PIN_ENV) {
            Ok(v) if !v.is_empty() => {
                let v = Zeroizing::new(v);
                Ok(AuthPin::new(v.as_str().into()))
            }
            _ => Err(KmsError::Internal(
                format!("no PKCS#11 user PIN: set pin_file, or the {PIN_ENV} environment variable")
                    .into(),
            )),
        }
    }
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &self.pin.as_ref().map(|_| "<redacted>"))
            .field("pin_file", &self.pin_file)
            .field("signing_key_label", &self.signing_key_label)
            .field("sessions", &self.sessions)
            .finish()
    }
}

/// A user PIN. Zeroized on drop; `Debug` prints no character of it.
pub struct Pkcs11Pin(AuthPin);

impl Pkcs11Pin {
    /// Wraps a PIN given in code. The `String` is zeroized.
    pub fn new(mut pin: String) -> Self {
        let p = Pkcs11Pin(AuthPin::new(pin.as_str().into()));
        pin.zeroize();
        p
    }
}

impl fmt::Debug for Pkcs11Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pkcs11Pin(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Pkcs11Pin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Pkcs11Pin::new)
    }
}
