//! Connecting: credentials, the client, and the start-up check that the
//! signing key is there and is Ed25519.

use google_cloud_kms_v1::client::KeyManagementService;

use super::config::GcpConfig;
use super::signing::fetch_public_key;
use super::{Credentials, GcpKmsProvider};
use crate::{KmsError, SigningPublicKey, kid_for};

impl GcpKmsProvider {
    /// Connects with the configured credentials: `credentials_file` if set,
    /// none if `anonymous` (a loopback stand-in in tests), else Application
    /// Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, then the
    /// metadata server). Fetches the signing public key, so a wrong
    /// key name, a missing permission or an unreachable API fails here, at
    /// start-up.
    pub async fn connect(cfg: GcpConfig) -> Result<Self, KmsError> {
        cfg.validate()?;
        let credentials = match &cfg.credentials_file {
            Some(path) => Some(service_account_credentials(path)?),
            // `validate` allows this only with a plain-http loopback endpoint.
            None if cfg.anonymous => {
                tracing::warn!(
                    "[kms.gcp] anonymous = true: no credentials are sent (tests against a local stand-in only)"
                );
                Some(google_cloud_auth::credentials::anonymous::Builder::new().build())
            }
            None => None,
        };
        Self::build(cfg, credentials).await
    }

    /// Like [`connect`](Self::connect) with explicit credentials instead of
    /// `credentials_file` / ADC: for workload-identity setups built by the
    /// caller, and for tests against a local stand-in, which use
    /// `google_cloud_auth::credentials::anonymous::Builder::new().build()`.
    pub async fn connect_with_credentials(
        cfg: GcpConfig,
        credentials: Credentials,
    ) -> Result<Self, KmsError> {
        cfg.validate()?;
        Self::build(cfg, Some(credentials)).await
    }

    async fn build(cfg: GcpConfig, credentials: Option<Credentials>) -> Result<Self, KmsError> {
        let mut builder = KeyManagementService::builder()
            // Retries are ours (see `call`): the client's default only retries
            // GET/PUT/DELETE, and would stack a second loop on top of ours.
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
            .with_attempt_timeout(cfg.timeout());
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        if let Some(c) = credentials {
            builder = builder.with_credentials(c);
        }
        let client = builder.build().await.map_err(|e| {
            KmsError::Internal(format!("building the Cloud KMS client: {e}").into())
        })?;
        let ring = cfg.key_ring_name();
        let ed25519 = fetch_public_key(&client, &cfg, cfg.max_retries).await?;
        let public = SigningPublicKey {
            kid: kid_for(&ed25519),
            ed25519,
        };
        tracing::info!(
            key_ring = %ring,
            signing_key_version = %cfg.signing_key_version,
            kid = %public.kid,
            "Cloud KMS key provider ready"
        );
        Ok(GcpKmsProvider {
            client,
            cfg,
            ring,
            public,
        })
    }
}

/// Reads a service-account key file. It holds a private key: warn when other
/// users can read it.
fn service_account_credentials(path: &std::path::Path) -> Result<Credentials, KmsError> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        KmsError::Internal(crate::Reason::because(
            format!("[kms.gcp] credentials_file {}", path.display()),
            e,
        ))
    })?);
    crate::root_key::warn_if_loose(path);
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
        KmsError::Internal(
            format!("[kms.gcp] credentials_file {} is not JSON", path.display()).into(),
        )
    })?;
    if json.get("type").and_then(|t| t.as_str()) != Some("service_account") {
        return Err(KmsError::Internal(
            format!(
                "[kms.gcp] credentials_file {} is not a service-account key \
             (\"type\": \"service_account\"); for other credential types use \
             GOOGLE_APPLICATION_CREDENTIALS",
                path.display()
            )
            .into(),
        ));
    }
    google_cloud_auth::credentials::service_account::Builder::new(json)
        .build()
        .map_err(|e| {
            KmsError::Internal(format!("[kms.gcp] credentials_file {}: {e}", path.display()).into())
        })
}
