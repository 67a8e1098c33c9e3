//! The error kinds every layer speaks. The HTTP adapter maps each kind to one
//! status code; the detail strings are safe to show to the caller and never hold
//! a secret value, a key or a token.

use std::fmt;

/// Why a secret (or one of its versions) can no longer be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneReason {
    /// The secret was deleted.
    Deleted,
    /// Its `expires_at` has passed.
    Expired,
    /// Its `max_access_count` has been reached.
    AccessLimitReached,
    /// This version was disabled.
    Disabled,
}

impl GoneReason {
    /// A short machine-readable name (audit records say it as the rule).
    pub fn as_str(&self) -> &'static str {
        match self {
            GoneReason::Deleted => "deleted",
            GoneReason::Expired => "expired",
            GoneReason::AccessLimitReached => "access_limit",
            GoneReason::Disabled => "disabled",
        }
    }
}

impl fmt::Display for GoneReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GoneReason::Deleted => "the secret has been deleted",
            GoneReason::Expired => "the secret has expired",
            GoneReason::AccessLimitReached => "the secret has reached its maximum access count",
            GoneReason::Disabled => "this secret version is disabled",
        })
    }
}

/// A Strongroom error. Each variant corresponds to one class of HTTP status.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input is malformed or fails validation (400).
    #[error("{0}")]
    Invalid(String),
    /// No valid credentials were presented (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// The object does not exist, or the caller may not know it exists (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The object existed but can no longer be served (410).
    #[error("{0}")]
    Gone(GoneReason),
    /// Stored ciphertext or a wrapped key failed authentication. Deliberately
    /// says nothing about which part failed.
    #[error("stored data failed its integrity check")]
    Integrity,
    /// A dependency (the key provider, the database) is unavailable (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure (500). The string goes to the log only.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    /// A 400 with the given message.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
    /// A 404 with the given message.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
    /// A 403 with the given message.
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Error::Forbidden(msg.into())
    }
    /// A 500 whose detail is logged but never shown.
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
    /// A short, stable name for the kind, used as a metrics label.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Gone(_) => "gone",
            Error::Integrity => "integrity",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }
}

/// Result with a Strongroom [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
