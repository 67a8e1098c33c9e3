//! The error kinds every layer speaks.
//!
//! [`Error`] is the top level: one variant per class of answer, so the HTTP
//! adapter maps each to one status. Where the class alone says too little,
//! the variant wraps a narrower kind ([`Unavailable`] names the
//! [`Dependency`] that failed) — the shape of rustls's `Error`.
//!
//! Two kinds of text live here, and they never mix:
//!
//! - What a caller may see: the `Display` of an [`Error`]. For `Invalid`,
//!   `Forbidden` and the like it is the message the engine wrote; for
//!   [`Error::Unavailable`], [`Error::Internal`] and [`Error::Integrity`] it is
//!   a fixed string that says only what kind of thing went wrong. None ever
//!   holds a secret value, a key or a token.
//! - Why it went wrong underneath: a [`Cause`] (a store or key-provider error,
//!   a serde or join error, an internal message), reachable only through
//!   [`std::error::Error::source`]. Provider and database words (Cloud KMS key
//!   resource names, file paths, driver messages) stay here, on their way to
//!   the log; an adapter never renders them.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

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

/// What a request needed and could not get right now (a `503`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dependency {
    /// The database can't be reached, is locked, read-only or full.
    Database,
    /// The key provider (memory, file, PKCS#11, Cloud KMS) can't be reached.
    KeyProvider,
    /// Every password-hashing permit stayed taken: the server is busy, not
    /// down (an overload, answered before any work is queued).
    PasswordHashing,
}

impl Dependency {
    /// A short, stable name (a log field).
    pub fn as_str(&self) -> &'static str {
        match self {
            Dependency::Database => "database",
            Dependency::KeyProvider => "key_provider",
            Dependency::PasswordHashing => "password_hashing",
        }
    }
}

impl fmt::Display for Dependency {
    /// The fixed message a caller sees.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dependency::Database => "the database is unavailable",
            Dependency::KeyProvider => "the key provider is unavailable",
            Dependency::PasswordHashing => "the server is busy checking passwords; retry shortly",
        })
    }
}

/// Why something underneath failed: a boxed error kept for the log.
///
/// Shared (an `Arc`), so an [`Error`] stays `Clone`. Two causes are equal only
/// when they are the same one: a cause has no meaningful equality of its own
/// (rustls's `OtherError` makes the same choice, more strictly).
#[derive(Clone)]
pub struct Cause(Arc<dyn StdError + Send + Sync + 'static>);

impl Cause {
    /// Keeps an error (or a message: `&str` and `String` convert too).
    pub fn new(cause: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Cause(Arc::from(cause.into()))
    }

    /// The error itself.
    pub fn get(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Cause {}

/// What a store's or a key provider's error says: a message naming what was
/// being done (a context, never a secret value), and the error underneath when
/// there is one (a driver, device or I/O error), kept whole.
///
/// Its `Display` is the message alone; the error underneath is reached through
/// the owning error's [`std::error::Error::source`] (see [`Reason::cause`]), so
/// a [`Chain`] shows it once and a log line keeps the driver's own type.
#[derive(Clone, Debug)]
pub struct Reason {
    context: std::borrow::Cow<'static, str>,
    cause: Option<Cause>,
}

impl Reason {
    /// Only a message: nothing underneath.
    pub fn new(context: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Reason {
            context: context.into(),
            cause: None,
        }
    }

    /// A message and the error underneath it.
    pub fn because(
        context: impl Into<std::borrow::Cow<'static, str>>,
        cause: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Reason {
            context: context.into(),
            cause: Some(Cause::new(cause)),
        }
    }

    /// Only the error underneath: it says everything there is to say.
    pub fn of(cause: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Reason::because("", cause)
    }

    /// The message (empty for [`Reason::of`]).
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The error underneath, for the owning error's `source()`.
    pub fn cause(&self) -> Option<&(dyn StdError + 'static)> {
        self.cause
            .as_ref()
            .map(|c| c.get() as &(dyn StdError + 'static))
    }

    /// The message and the errors under it, joined by `": "` — for a log
    /// line, never for a client.
    pub fn chain(&self) -> impl fmt::Display + '_ {
        struct Full<'a>(&'a Reason);
        impl fmt::Display for Full<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0.context)?;
                if let Some(c) = self.0.cause() {
                    if !self.0.context.is_empty() {
                        f.write_str(": ")?;
                    }
                    fmt::Display::fmt(&Chain(c), f)?;
                }
                Ok(())
            }
        }
        Full(self)
    }

    /// Writes `prefix`, then `": "` and the message when there is one: the
    /// `Display` of an error that holds this reason.
    pub fn fmt_after(&self, prefix: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(prefix)?;
        if !self.context.is_empty() {
            write!(f, ": {}", self.context)?;
        }
        Ok(())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)
    }
}

impl From<String> for Reason {
    fn from(m: String) -> Self {
        Reason::new(m)
    }
}

impl From<&'static str> for Reason {
    fn from(m: &'static str) -> Self {
        Reason::new(m)
    }
}

/// A `503`: which [`Dependency`] failed, and (when something underneath
/// said why) the cause, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    dependency: Dependency,
    cause: Option<Cause>,
}

impl Unavailable {
    /// `dependency` is unavailable; nothing underneath said why.
    pub fn new(dependency: Dependency) -> Self {
        Unavailable {
            dependency,
            cause: None,
        }
    }

    /// `dependency` is unavailable because of `cause`.
    pub fn because(
        dependency: Dependency,
        cause: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Unavailable {
            dependency,
            cause: Some(Cause::new(cause)),
        }
    }

    /// What failed.
    pub fn dependency(&self) -> Dependency {
        self.dependency
    }

    /// Why, when known.
    pub fn cause(&self) -> Option<&Cause> {
        self.cause.as_ref()
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.dependency, f)
    }
}

/// A `409`: the message the caller sees and, when the refusal came from
/// underneath (a rule of the database's schema), the cause, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    message: String,
    cause: Option<Cause>,
}

impl Conflict {
    /// A conflict the engine found; nothing underneath.
    pub fn new(message: impl Into<String>) -> Self {
        Conflict {
            message: message.into(),
            cause: None,
        }
    }

    /// A conflict with `message` for the caller, because of `cause` (logged,
    /// never shown).
    pub fn because(
        message: impl Into<String>,
        cause: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Conflict {
            message: message.into(),
            cause: Some(Cause::new(cause)),
        }
    }

    /// What the caller is told.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Why, when something underneath said.
    pub fn cause(&self) -> Option<&Cause> {
        self.cause.as_ref()
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for Conflict {
    fn from(m: String) -> Self {
        Conflict::new(m)
    }
}

impl From<&str> for Conflict {
    fn from(m: &str) -> Self {
        Conflict::new(m)
    }
}

/// A Strongroom error. Each variant corresponds to one class of HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input is malformed or fails validation (400).
    Invalid(String),
    /// No valid credentials were presented (401).
    Unauthenticated(String),
    /// The caller is known but not allowed (403).
    Forbidden(String),
    /// The object does not exist, or the caller may not know it exists (404).
    NotFound(String),
    /// The request conflicts with the current state (409). A refusal by the
    /// database's schema keeps the store's error as the cause, for the log.
    Conflict(Conflict),
    /// The object existed but can no longer be served (410).
    Gone(GoneReason),
    /// Stored ciphertext or a wrapped key failed authentication (500).
    /// Deliberately says nothing about which part failed, not even to the log
    /// through a cause: the engine logs and audits the place.
    Integrity,
    /// A dependency is unavailable, or the server is at capacity (503).
    Unavailable(Unavailable),
    /// A bug or an unexpected failure (500). The cause goes to the log only.
    Internal(Cause),
}

impl fmt::Display for Error {
    /// What a caller may see; never a cause.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(m)
            | Error::Unauthenticated(m)
            | Error::Forbidden(m)
            | Error::NotFound(m) => f.write_str(m),
            Error::Conflict(c) => fmt::Display::fmt(c, f),
            Error::Gone(reason) => fmt::Display::fmt(reason, f),
            Error::Integrity => f.write_str("stored data failed its integrity check"),
            Error::Unavailable(u) => fmt::Display::fmt(u, f),
            Error::Internal(_) => f.write_str("internal error"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Unavailable(u) => u.cause().map(|c| c.get() as &(dyn StdError + 'static)),
            Error::Internal(c) => Some(c.get()),
            Error::Conflict(c) => c.cause().map(|c| c.get() as &(dyn StdError + 'static)),
            _ => None,
        }
    }
}

impl From<Unavailable> for Error {
    fn from(u: Unavailable) -> Self {
        Error::Unavailable(u)
    }
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
    /// A 500 whose cause — an error (a serde or join error, say) or a message
    /// saying what broke — is logged but never shown.
    pub fn internal(cause: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Error::Internal(Cause::new(cause))
    }
    /// A 503: `dependency` failed because of `cause` (logged, never shown).
    pub fn unavailable(
        dependency: Dependency,
        cause: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Error::Unavailable(Unavailable::because(dependency, cause))
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

/// An error followed by its causes, joined by `": "` — for a log line, never
/// for a client: the causes hold the store's and the provider's own words.
pub struct Chain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

impl Error {
    /// This error and its causes, for a log line ([`Chain`]).
    pub fn chain(&self) -> Chain<'_> {
        Chain(self)
    }
}

/// Result with a Strongroom [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A cause with a cause of its own, like a store error over a driver error.
    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner;
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("database unavailable: /var/lib/strongroom/db is read-only")
        }
    }
    impl fmt::Display for Inner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("attempt to write a readonly database")
        }
    }
    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }
    impl StdError for Inner {}

    fn chain(e: &dyn StdError) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = e.source();
        while let Some(c) = next {
            out.push(c.to_string());
            next = c.source();
        }
        out
    }

    #[test]
    fn causes_stay_behind_source_and_out_of_display() {
        let e = Error::unavailable(Dependency::Database, Outer(Inner));
        assert_eq!(e.to_string(), "the database is unavailable");
        assert_eq!(
            chain(&e),
            [
                "database unavailable: /var/lib/strongroom/db is read-only",
                "attempt to write a readonly database"
            ]
        );
        let Error::Unavailable(u) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(u.dependency(), Dependency::Database);
        assert!(u.cause().is_some());

        let e = Error::internal(Outer(Inner));
        assert_eq!(e.to_string(), "internal error");
        assert_eq!(chain(&e).len(), 2);
        assert!(
            e.source()
                .is_some_and(|s| s.downcast_ref::<Outer>().is_some())
        );

        assert_eq!(
            e.chain().to_string(),
            "internal error: database unavailable: /var/lib/strongroom/db is read-only: \
             attempt to write a readonly database"
        );

        // A message is a cause too: logged, not shown.
        let e = Error::internal("malformed audit head hash");
        assert_eq!(e.to_string(), "internal error");
        assert_eq!(chain(&e), ["malformed audit head hash"]);
    }

    #[test]
    fn fixed_messages_for_server_side_kinds() {
        let key = Error::unavailable(Dependency::KeyProvider, "projects/p/locations/l: 14");
        assert_eq!(key.to_string(), "the key provider is unavailable");
        let busy = Error::from(Unavailable::new(Dependency::PasswordHashing));
        assert_eq!(
            busy.to_string(),
            "the server is busy checking passwords; retry shortly"
        );
        assert!(busy.source().is_none());
        assert_eq!(busy.kind(), "unavailable");
        assert_eq!(
            Error::Integrity.to_string(),
            "stored data failed its integrity check"
        );
        assert_eq!(Error::invalid("bad path").to_string(), "bad path");
    }

    #[test]
    fn a_conflict_keeps_its_cause_out_of_its_message() {
        let e = Error::Conflict(Conflict::because(
            "the change conflicts with the current state of related data",
            Outer(Inner),
        ));
        assert_eq!(
            e.to_string(),
            "the change conflicts with the current state of related data"
        );
        assert_eq!(e.kind(), "conflict");
        assert_eq!(chain(&e).len(), 2);
        assert!(
            e.source()
                .is_some_and(|s| s.downcast_ref::<Outer>().is_some())
        );
        let plain = Error::Conflict("signup is closed".into());
        assert_eq!(plain.to_string(), "signup is closed");
        assert!(plain.source().is_none());
        assert_eq!(plain, Error::Conflict(Conflict::new("signup is closed")));
    }

    #[test]
    fn a_reason_shows_its_message_and_leaves_its_cause_to_source() {
        let r = Reason::because("migrating the database", Outer(Inner));
        assert_eq!(r.to_string(), "migrating the database");
        assert!(
            r.cause()
                .is_some_and(|c| c.downcast_ref::<Outer>().is_some())
        );
        assert_eq!(
            r.chain().to_string(),
            "migrating the database: database unavailable: /var/lib/strongroom/db is read-only: \
             attempt to write a readonly database"
        );
        let r = Reason::of(Inner);
        assert_eq!(r.context(), "");
        assert_eq!(
            r.chain().to_string(),
            "attempt to write a readonly database"
        );
        let r = Reason::from("the store is closed");
        assert!(r.cause().is_none());
        assert_eq!(r.chain().to_string(), "the store is closed");
    }

    #[test]
    fn clones_keep_their_cause_and_compare_equal() {
        let e = Error::internal("x");
        assert_eq!(e.clone(), e);
        // Two separately made causes are not the same cause.
        assert_ne!(Error::internal("x"), Error::internal("x"));
        assert_eq!(Error::invalid("x"), Error::invalid("x"));
    }
}
