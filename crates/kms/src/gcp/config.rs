//! `[kms.gcp]`: where the key ring is and how to reach Cloud KMS.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::KmsError;

/// Which Cloud KMS protection level new KEKs get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GcpProtectionLevel {
    /// Keys are generated and used in Google's software keystore (cheaper).
    #[default]
    Software,
    /// Keys are generated and used inside Cloud HSM (FIPS 140-2 Level 3).
    Hsm,
}

/// Configuration of the `gcp` key provider (`[kms.gcp]` in `strongroom.toml`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcpConfig {
    /// Google Cloud project id that holds the key ring.
    pub project: String,
    /// Cloud KMS location of the key ring (`global`, `europe-west1`, …).
    pub location: String,
    /// Key ring id (not the full resource name). Must exist already.
    pub key_ring: String,
    /// Protection level of each vault's KEK: `SOFTWARE` (default) or `HSM`.
    #[serde(default)]
    pub protection_level: GcpProtectionLevel,
    /// Full resource name of the `EC_SIGN_ED25519` CryptoKeyVersion that signs
    /// JWTs: `projects/…/locations/…/keyRings/…/cryptoKeys/…/cryptoKeyVersions/N`.
    pub signing_key_version: String,
    /// Service-account key file (JSON). Without it, Application Default
    /// Credentials are used: `GOOGLE_APPLICATION_CREDENTIALS`, then the
    /// metadata server (Cloud Run, GCE, GKE).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// API endpoint override; default `https://cloudkms.googleapis.com`.
    /// Plain `http://` is accepted only for a loopback host (tests).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Send no credentials at all (default false). For tests against a local
    /// Cloud KMS stand-in only: refused unless `endpoint` is a plain
    /// `http://` loopback address, and together with `credentials_file`.
    #[serde(default)]
    pub anonymous: bool,
    /// Timeout of each attempt of each call, in milliseconds (default 10000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries after a transient failure (429, 503, timeouts), with
    /// exponential backoff (default 4, at most 10).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_max_retries() -> u32 {
    4
}

impl GcpConfig {
    /// A configuration with the defaults for everything optional.
    pub fn new(
        project: impl Into<String>,
        location: impl Into<String>,
        key_ring: impl Into<String>,
        signing_key_version: impl Into<String>,
    ) -> Self {
        GcpConfig {
            project: project.into(),
            location: location.into(),
            key_ring: key_ring.into(),
            protection_level: GcpProtectionLevel::default(),
            signing_key_version: signing_key_version.into(),
            credentials_file: None,
            endpoint: None,
            anonymous: false,
            timeout_ms: default_timeout_ms(),
            max_retries: default_max_retries(),
        }
    }

    /// The key ring's resource name.
    pub fn key_ring_name(&self) -> String {
        format!(
            "projects/{}/locations/{}/keyRings/{}",
            self.project, self.location, self.key_ring
        )
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Checks every field before anything is sent anywhere.
    pub fn validate(&self) -> Result<(), KmsError> {
        let bad = |m: String| Err(KmsError::Internal(format!("[kms.gcp] {m}").into()));
        for (field, value) in [
            ("project", &self.project),
            ("location", &self.location),
            ("key_ring", &self.key_ring),
        ] {
            if !is_resource_id(value) {
                return bad(format!(
                    "{field} {value:?} must be 1-63 letters, digits, '-' or '_'"
                ));
            }
        }
        if parse_version_name(&self.signing_key_version).is_none() {
            return bad(format!(
                "signing_key_version {:?} must be a full CryptoKeyVersion resource name: \
                 projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N",
                self.signing_key_version
            ));
        }
        if !(100..=120_000).contains(&self.timeout_ms) {
            return bad("timeout_ms must be between 100 and 120000".into());
        }
        if self.max_retries > 10 {
            return bad("max_retries must be at most 10".into());
        }
        if let Some(e) = &self.endpoint {
            check_endpoint(e).or_else(bad)?;
        }
        if self.anonymous {
            if self.credentials_file.is_some() {
                return bad("anonymous = true and credentials_file exclude each other".into());
            }
            if !self.endpoint.as_deref().is_some_and(is_loopback_http) {
                return bad(
                    "anonymous = true is for tests against a local stand-in only: \
                     it needs endpoint = \"http://127.0.0.1:PORT\" (a plain http:// loopback address)"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

/// A Cloud KMS resource id: key ring, crypto key, project or location.
fn is_resource_id(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Splits `…/cryptoKeys/K/cryptoKeyVersions/N` into (`…/cryptoKeys/K`, N),
/// checking every segment.
pub(crate) fn parse_version_name(name: &str) -> Option<(&str, u32)> {
    let parts: Vec<&str> = name.split('/').collect();
    let [
        "projects",
        p,
        "locations",
        l,
        "keyRings",
        r,
        "cryptoKeys",
        k,
        "cryptoKeyVersions",
        n,
    ] = parts.as_slice()
    else {
        return None;
    };
    if ![p, l, r, k].iter().all(|s| is_resource_id(s)) {
        return None;
    }
    let version = parse_version_number(n)?;
    let key_len = name.len() - "/cryptoKeyVersions/".len() - n.len();
    Some((&name[..key_len], version))
}

/// A version number: decimal, no sign or leading zero, at least 1.
fn parse_version_number(n: &str) -> Option<u32> {
    if n.is_empty() || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|v| *v > 0)
}

/// HTTPS anywhere; plain HTTP only to this machine, so a bearer token never
/// crosses a network in the clear.
fn check_endpoint(e: &str) -> Result<(), String> {
    if e.starts_with("https://") || is_loopback_http(e) {
        return Ok(());
    }
    if e.starts_with("http://") {
        return Err(format!(
            "endpoint {e:?}: plain http:// is only allowed to a loopback address"
        ));
    }
    Err(format!("endpoint {e:?} must start with https://"))
}

/// A plain `http://` URL to this machine (`localhost`, 127.0.0.0/8, `[::1]`).
fn is_loopback_http(e: &str) -> bool {
    let Some(rest) = e.strip_prefix("http://") else {
        return false;
    };
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "projects/p/locations/global/keyRings/r/cryptoKeys/jwt/cryptoKeyVersions/3";

    #[test]
    fn version_names_parse_strictly() {
        assert_eq!(
            parse_version_name(V),
            Some(("projects/p/locations/global/keyRings/r/cryptoKeys/jwt", 3))
        );
        for bad in [
            "projects/p/locations/global/keyRings/r/cryptoKeys/jwt/cryptoKeyVersions/0",
            "projects/p/locations/global/keyRings/r/cryptoKeys/jwt/cryptoKeyVersions/01",
            "projects/p/locations/global/keyRings/r/cryptoKeys/jwt/cryptoKeyVersions/-1",
            "projects/p/locations/global/keyRings/r/cryptoKeys/jwt/cryptoKeyVersions/",
            "projects/p/locations/global/keyRings/r/cryptoKeys/jwt",
            "projects/p/locations/global/keyRings/r/cryptoKeys/j.t/cryptoKeyVersions/1",
            "projects/p/locations/global/keyRings/r/cryptoKeys/jwt/cryptoKeyVersions/1/x",
            "projects/p/locations/global/keyRings/r/cryptoKeys/jwt/cryptoKeyVersions/99999999999",
        ] {
            assert_eq!(parse_version_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn config_defaults_and_unknown_fields() {
        let cfg: GcpConfig = serde_json::from_value(serde_json::json!({
            "project": "p", "location": "global", "key_ring": "r",
            "signing_key_version": V,
        }))
        .unwrap();
        assert_eq!(cfg, GcpConfig::new("p", "global", "r", V));
        assert_eq!(cfg.protection_level, GcpProtectionLevel::Software);
        assert_eq!((cfg.timeout_ms, cfg.max_retries), (10_000, 4));
        cfg.validate().unwrap();
        let hsm: GcpConfig = serde_json::from_value(serde_json::json!({
            "project": "p", "location": "global", "key_ring": "r",
            "signing_key_version": V, "protection_level": "HSM",
        }))
        .unwrap();
        assert_eq!(hsm.protection_level, GcpProtectionLevel::Hsm);
        let unknown = serde_json::from_value::<GcpConfig>(serde_json::json!({
            "project": "p", "location": "global", "key_ring": "r",
            "signing_key_version": V, "keyring": "typo",
        }));
        assert!(unknown.is_err());
    }

    #[test]
    fn validation_rejects_bad_values() {
        let ok = GcpConfig::new("p", "global", "r", V);
        let mut c = ok.clone();
        c.key_ring = "projects/p/locations/global/keyRings/r".into();
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.signing_key_version = "jwt".into();
        assert!(c.validate().is_err());
        let mut c = ok.clone();
        c.timeout_ms = 0;
        assert!(c.validate().is_err());
        for (endpoint, good) in [
            ("https://cloudkms.googleapis.com", true),
            ("http://127.0.0.1:5999", true),
            ("http://localhost:5999/", true),
            ("http://[::1]:5999", true),
            ("http://10.0.0.8:5999", false),
            ("http://kms.example.com", false),
            ("ftp://x", false),
        ] {
            let mut c = ok.clone();
            c.endpoint = Some(endpoint.into());
            assert_eq!(c.validate().is_ok(), good, "{endpoint}");
        }
    }

    #[test]
    fn anonymous_is_only_for_a_loopback_stand_in() {
        let ok = GcpConfig::new("p", "global", "r", V);
        assert!(!ok.anonymous, "off by default");
        let mut c = ok.clone();
        c.anonymous = true;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("anonymous"), "no endpoint: {err}");
        for (endpoint, good) in [
            ("http://127.0.0.1:5999", true),
            ("http://localhost:5999/", true),
            ("http://[::1]:5999", true),
            ("https://cloudkms.googleapis.com", false),
            ("https://127.0.0.1:5999", false),
            ("http://10.0.0.8:5999", false),
            ("http://kms.example.com", false),
            ("http://127.0.0.1.example.com", false),
        ] {
            let mut c = ok.clone();
            c.anonymous = true;
            c.endpoint = Some(endpoint.into());
            assert_eq!(c.validate().is_ok(), good, "{endpoint}");
        }
        let mut c = ok.clone();
        c.anonymous = true;
        c.endpoint = Some("http://127.0.0.1:5999".into());
        c.credentials_file = Some("/etc/strongroom/sa.json".into());
        assert!(c.validate().is_err(), "anonymous and a key file");
        // From a config file.
        let c: GcpConfig = serde_json::from_value(serde_json::json!({
            "project": "p", "location": "global", "key_ring": "r",
            "signing_key_version": V, "anonymous": true,
            "endpoint": "http://127.0.0.1:5999",
        }))
        .unwrap();
        assert!(c.anonymous);
        c.validate().unwrap();
    }
}
