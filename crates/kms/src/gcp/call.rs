//! One Cloud KMS call: bounded retries with exponential backoff and jitter,
//! then one mapping from the client's error to [`KmsError`].
//!
//! The client's own retry loop is switched off (it only retries idempotent
//! HTTP verbs, and every Cloud KMS crypto call is a POST); this loop knows
//! which calls are safe to repeat. An error is retried when Cloud KMS can't
//! have acted on the request (connection refused, 429 `RESOURCE_EXHAUSTED`,
//! 503 `UNAVAILABLE`), or — for calls that are safe to repeat (encrypt,
//! decrypt, sign, reads) — also after a timeout, a broken connection, a 500 or
//! 504, or a response that failed its CRC32C check.

use std::time::Duration;

use google_cloud_gax::error::rpc::Code;
use google_cloud_kms_v1::Error as GaxError;

use crate::KmsError;

/// What a call is, for retries and for error messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Op {
    /// The Cloud KMS method, as named in its REST reference.
    pub name: &'static str,
    /// Safe to send twice (no side effect beyond the first).
    pub idempotent: bool,
    /// The IAM permission the method checks, for PERMISSION_DENIED messages.
    pub permission: &'static str,
    /// A predefined role that grants it.
    pub role: &'static str,
}

pub(crate) const ENCRYPT: Op = Op {
    name: "encrypt",
    idempotent: true,
    permission: "cloudkms.cryptoKeyVersions.useToEncrypt",
    role: "roles/cloudkms.cryptoKeyEncrypterDecrypter",
};
pub(crate) const DECRYPT: Op = Op {
    name: "decrypt",
    idempotent: true,
    permission: "cloudkms.cryptoKeyVersions.useToDecrypt",
    role: "roles/cloudkms.cryptoKeyEncrypterDecrypter",
};
pub(crate) const SIGN: Op = Op {
    name: "asymmetricSign",
    idempotent: true,
    permission: "cloudkms.cryptoKeyVersions.useToSign",
    role: "roles/cloudkms.signerVerifier",
};
pub(crate) const GET_PUBLIC_KEY: Op = Op {
    name: "getPublicKey",
    idempotent: true,
    permission: "cloudkms.cryptoKeyVersions.viewPublicKey",
    role: "roles/cloudkms.signerVerifier",
};
pub(crate) const CREATE_KEY: Op = Op {
    name: "cryptoKeys.create",
    idempotent: false,
    permission: "cloudkms.cryptoKeys.create",
    role: "roles/cloudkms.admin (or a custom role with it)",
};
pub(crate) const CREATE_VERSION: Op = Op {
    name: "cryptoKeyVersions.create",
    idempotent: false,
    permission: "cloudkms.cryptoKeyVersions.create",
    role: "roles/cloudkms.admin (or a custom role with it)",
};
pub(crate) const GET_VERSION: Op = Op {
    name: "cryptoKeyVersions.get",
    idempotent: true,
    permission: "cloudkms.cryptoKeyVersions.get",
    role: "roles/cloudkms.admin (or a custom role with it)",
};
pub(crate) const UPDATE_PRIMARY: Op = Op {
    name: "updatePrimaryVersion",
    idempotent: true,
    permission: "cloudkms.cryptoKeys.update",
    role: "roles/cloudkms.admin (or a custom role with it)",
};
pub(crate) const LIST_VERSIONS: Op = Op {
    name: "cryptoKeyVersions.list",
    idempotent: true,
    permission: "cloudkms.cryptoKeyVersions.list",
    role: "roles/cloudkms.admin (or a custom role with it)",
};
pub(crate) const DESTROY_VERSION: Op = Op {
    name: "cryptoKeyVersions.destroy",
    idempotent: false,
    permission: "cloudkms.cryptoKeyVersions.destroy",
    role: "roles/cloudkms.admin (or a custom role with it)",
};

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The client or the service reported an error.
    Rpc(GaxError),
    /// The response arrived but failed an integrity check (CRC32C, resource
    /// name, algorithm). The text says which; it never holds key material.
    Corrupt(String),
}

impl From<GaxError> for Failure {
    fn from(e: GaxError) -> Self {
        Failure::Rpc(e)
    }
}

/// How safe a retry is after a failure.
#[derive(Debug, PartialEq, Eq)]
enum Retry {
    /// Cloud KMS did not act on the request.
    Always,
    /// It may have; repeat only calls without side effects.
    IfIdempotent,
    /// Permanent.
    Never,
}

fn classify(f: &Failure) -> Retry {
    match f {
        Failure::Corrupt(_) => Retry::IfIdempotent,
        Failure::Rpc(e) => classify_rpc(e),
    }
}

fn classify_rpc(e: &GaxError) -> Retry {
    if e.is_connect() {
        return Retry::Always;
    }
    if e.is_authentication() {
        // The metadata server or the token endpoint had a hiccup.
        let transient = std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<google_cloud_gax::error::CredentialsError>())
            .is_some_and(|c| c.is_transient());
        return if transient {
            Retry::Always
        } else {
            Retry::Never
        };
    }
    if let Some(status) = e.status() {
        return match status.code {
            Code::Unavailable | Code::ResourceExhausted => Retry::Always,
            Code::DeadlineExceeded | Code::Internal | Code::Aborted => Retry::IfIdempotent,
            Code::Unknown => by_http_status(e.http_status_code()),
            _ => Retry::Never,
        };
    }
    if e.is_timeout() || e.is_io() {
        return Retry::IfIdempotent;
    }
    by_http_status(e.http_status_code())
}

fn by_http_status(code: Option<u16>) -> Retry {
    match code {
        Some(429 | 503) => Retry::Always,
        Some(500 | 502 | 504) => Retry::IfIdempotent,
        _ => Retry::Never,
    }
}

/// Backoff before retry `n` (1-based): 100 ms · 2ⁿ⁻¹, capped at 5 s, with
/// full jitter so that many nodes throttled together don't retry together.
fn backoff(n: u32) -> Duration {
    let cap_ms = 100u64.saturating_mul(1 << (n - 1).min(6)).min(5_000);
    let mut r = [0u8; 8];
    strongroom_crypto::random::fill(&mut r);
    // Between half and all of the cap: never a zero wait.
    Duration::from_millis(cap_ms / 2 + u64::from_le_bytes(r) % (cap_ms / 2 + 1))
}

/// Runs `attempt` until it succeeds, fails permanently, or `max_retries`
/// retries are spent. `check` validates a response; a failed check counts as
/// a failed attempt.
pub(crate) async fn run<T, Fut>(
    op: Op,
    resource: &str,
    max_retries: u32,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, (Failure, u32)>
where
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut retries = 0;
    loop {
        let failure = match attempt().await {
            Ok(v) => return Ok(v),
            Err(f) => f,
        };
        let retry = match classify(&failure) {
            Retry::Always => true,
            Retry::IfIdempotent => op.idempotent,
            Retry::Never => false,
        };
        if !retry || retries >= max_retries {
            return Err((failure, retries));
        }
        retries += 1;
        let wait = backoff(retries);
        tracing::warn!(
            op = op.name,
            resource,
            retry = retries,
            wait_ms = wait.as_millis() as u64,
            error = %describe(&failure),
            "Cloud KMS call failed; retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

fn describe(f: &Failure) -> String {
    match f {
        Failure::Rpc(e) => rpc_text(e),
        Failure::Corrupt(m) => m.clone(),
    }
}

/// What a client error says, for a log line. A request or response that
/// failed to (de)serialize is named but not quoted: serde's text can quote
/// what was sent or received (a DEK on its way to be wrapped, or back from an
/// unwrap). Every other error stays a message here rather than a `source()`
/// for the same caution: the client's error types hold payloads.
fn rpc_text(e: &GaxError) -> String {
    if e.is_serialization() {
        "the request could not be serialized".to_owned()
    } else if e.is_deserialization() {
        "the response could not be deserialized".to_owned()
    } else {
        e.to_string()
    }
}

/// What a permanent failure means to Strongroom, per call: a decrypt's
/// INVALID_ARGUMENT is a wrong AAD or a tampered ciphertext (`Integrity`); an
/// encrypt's or decrypt's FAILED_PRECONDITION is a version that is disabled or
/// scheduled for destruction (`KeyNotFound`). Unset entries fall back to
/// `Internal` with Cloud KMS's message.
pub(crate) struct Mapping {
    pub invalid_argument: Option<KmsError>,
    pub failed_precondition: Option<KmsError>,
    pub not_found: KmsError,
    pub corrupt: fn(String) -> KmsError,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            invalid_argument: None,
            failed_precondition: None,
            not_found: KmsError::KeyNotFound,
            corrupt: |m| KmsError::Internal(m.into()),
        }
    }
}

pub(crate) fn to_kms_error(
    op: Op,
    resource: &str,
    (failure, retries): (Failure, u32),
    map: Mapping,
) -> KmsError {
    let after = if retries > 0 {
        format!(" (after {retries} retries)")
    } else {
        String::new()
    };
    let e = match failure {
        Failure::Corrupt(m) => {
            return (map.corrupt)(format!(
                "Cloud KMS {} on {resource}: the response failed its integrity check{after}: {m}",
                op.name
            ));
        }
        Failure::Rpc(e) => e,
    };
    let text = rpc_text(&e);
    if classify_rpc(&e) != Retry::Never {
        return KmsError::Unavailable(
            format!("Cloud KMS {} on {resource}{after}: {text}", op.name).into(),
        );
    }
    if e.is_authentication() {
        return KmsError::Internal(
            format!(
                "Cloud KMS {}: could not obtain credentials (credentials_file, \
             GOOGLE_APPLICATION_CREDENTIALS or the metadata server): {text}",
                op.name
            )
            .into(),
        );
    }
    let generic =
        || KmsError::Internal(format!("Cloud KMS {} on {resource}: {text}", op.name).into());
    let Some(status) = e.status() else {
        return generic();
    };
    match status.code {
        Code::PermissionDenied => KmsError::Internal(
            format!(
                "Cloud KMS denied {} on {resource}: the service account needs {} \
             (for example through {}); Cloud KMS said: {}",
                op.name, op.permission, op.role, status.message
            )
            .into(),
        ),
        Code::Unauthenticated => KmsError::Internal(
            format!(
                "Cloud KMS rejected the credentials for {} on {resource}: {}",
                op.name, status.message
            )
            .into(),
        ),
        Code::NotFound => map.not_found,
        Code::InvalidArgument => map.invalid_argument.unwrap_or_else(generic),
        Code::FailedPrecondition => map.failed_precondition.unwrap_or_else(generic),
        _ => generic(),
    }
}
