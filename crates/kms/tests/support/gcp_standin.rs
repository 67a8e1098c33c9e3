//! An in-repo stand-in for the Cloud KMS REST API (axum on 127.0.0.1), shared
//! by `crates/kms/tests/gcp.rs` and `crates/cli/tests/api_flow.rs` (which
//! include it with `#[path]`).
//!
//! The stand-in serves the calls the `gcp` provider makes, in the shapes
//! Google's client sends (`$alt=json;enum-encoding=int`, base64 bytes, int64
//! checksums as strings, enums as numbers) and with Cloud KMS's semantics: real
//! AES-256-GCM bound to the AAD, a ciphertext that names its key version,
//! versions that can be disabled by destruction, real Ed25519 signatures, real
//! CRC32C checks of requests and responses. Each test can inject faults
//! ([`Fake::fault`]).
//!
//! It starts empty: create the key ring and the EC_SIGN_ED25519 signing key
//! version with [`Fake::create_key_ring`] and [`Fake::create_signing_key`].
// Each including test crate uses a different part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;
const TIME: &str = "2026-11-28T12:00:00.000000Z";

// Enum numbers of google.cloud.kms.v1, as sent with enum-encoding=int.
pub const ENABLED: i64 = 1;
pub const DESTROYED: i64 = 3;
pub const DESTROY_SCHEDULED: i64 = 4;
pub const PENDING_GENERATION: i64 = 5;
pub const GOOGLE_SYMMETRIC_ENCRYPTION: i64 = 1;
pub const EC_SIGN_P256_SHA256: i64 = 12;
pub const EC_SIGN_ED25519: i64 = 40;
pub const ENCRYPT_DECRYPT: i64 = 1;

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this HTTP status and google.rpc status instead.
    Status(u16, &'static str),
    /// Do the work, then answer with this status (a lost response).
    ApplyThenStatus(u16, &'static str),
    /// Answer after this long.
    Delay(Duration),
    BadCiphertextCrc,
    BadPlaintextCrc,
    UnverifiedPlaintextCrc,
    UnverifiedAadCrc,
    /// encrypt names a version of another key.
    ForeignVersionName,
    BadSignatureCrc,
    /// A well-checksummed signature over other data.
    WrongSignature,
    WrongAlgorithm,
    BadPemCrc,
    /// cryptoKeyVersions.create answers PENDING_GENERATION; a get then ENABLED.
    PendingGeneration,
}

struct Version {
    key: [u8; 32],
    state: i64,
}

struct Key {
    protection: i64,
    labels: Value,
    versions: Vec<Version>,
    primary: u32,
}

#[derive(Default)]
pub struct FakeState {
    /// Key ring resource names.
    pub rings: HashSet<String>,
    /// The ENCRYPT_DECRYPT keys, by resource name.
    keys: BTreeMap<String, Key>,
    /// The EC_SIGN_ED25519 key versions, by CryptoKeyVersion resource name.
    signers: BTreeMap<String, Ed25519KeyPair>,
    /// (method, fault, how many more times).
    pub faults: Vec<(&'static str, Fault, u32)>,
    /// (method, query string, JSON body, had an Authorization header) of
    /// every request.
    pub calls: Vec<(&'static str, String, Value, bool)>,
    pub unknown_routes: Vec<String>,
}

/// The stand-in's state; its handle is shared with the test.
pub struct Fake {
    pub state: Mutex<FakeState>,
}

impl Fake {
    /// An empty Cloud KMS: no key ring, no key.
    fn new() -> Arc<Self> {
        Arc::new(Fake {
            state: Mutex::new(FakeState::default()),
        })
    }

    /// Creates `projects/{project}/locations/{location}/keyRings/{id}` (as
    /// `gcloud kms keyrings create` would) and answers its name.
    pub fn create_key_ring(&self, project: &str, location: &str, id: &str) -> String {
        let ring = format!("projects/{project}/locations/{location}/keyRings/{id}");
        self.state.lock().unwrap().rings.insert(ring.clone());
        ring
    }

    /// Creates an ASYMMETRIC_SIGN key `{ring}/cryptoKeys/{id}` with one
    /// EC_SIGN_ED25519 version, and answers that version's name (what
    /// `signing_key_version` is set to). The ring must exist.
    pub fn create_signing_key(&self, ring: &str, id: &str) -> String {
        let mut st = self.state.lock().unwrap();
        assert!(st.rings.contains(ring), "no key ring {ring}");
        let key = format!("{ring}/cryptoKeys/{id}");
        assert!(
            !st.keys.contains_key(&key) && !st.signers.keys().any(|v| v.starts_with(&key)),
            "{key} already exists"
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let version = format!("{key}/cryptoKeyVersions/1");
        st.signers.insert(
            version.clone(),
            Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
        );
        version
    }

    /// Injects `fault` into the next `times` calls of `method` (the REST
    /// method name: `encrypt`, `getPublicKey`, `createCryptoKey`, …).
    pub fn fault(&self, method: &'static str, fault: Fault, times: u32) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push((method, fault, times));
    }

    fn take_fault(&self, method: &str) -> Option<Fault> {
        let mut st = self.state.lock().unwrap();
        let i = st
            .faults
            .iter()
            .position(|(m, _, n)| *m == method && *n > 0)?;
        st.faults[i].2 -= 1;
        Some(st.faults[i].1.clone())
    }

    /// How many requests of `method` arrived.
    pub fn count(&self, method: &str) -> usize {
        let st = self.state.lock().unwrap();
        st.calls.iter().filter(|c| c.0 == method).count()
    }

    /// The JSON bodies of the requests of `method`, in order.
    pub fn bodies(&self, method: &str) -> Vec<Value> {
        let st = self.state.lock().unwrap();
        st.calls
            .iter()
            .filter(|c| c.0 == method)
            .map(|c| c.2.clone())
            .collect()
    }

    /// The raw Ed25519 public key of a signing key version.
    pub fn public_key(&self, version: &str) -> [u8; 32] {
        let st = self.state.lock().unwrap();
        st.signers[version]
            .public_key()
            .as_ref()
            .try_into()
            .unwrap()
    }

    /// The state (an enum number) of a version of an ENCRYPT_DECRYPT key.
    pub fn version_state(&self, key: &str, version: u32) -> i64 {
        let st = self.state.lock().unwrap();
        st.keys[key].versions[version as usize - 1].state
    }
}

pub fn crc(data: &[u8]) -> String {
    crc32c::crc32c(data).to_string()
}

fn int64(v: &Value, field: &str) -> Option<i64> {
    match v.get(field)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn bytes_field(v: &Value, field: &str) -> Result<Vec<u8>, ApiError> {
    match v.get(field) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => B64
            .decode(s)
            .map_err(|_| error(400, "INVALID_ARGUMENT", &format!("{field} is not base64"))),
        Some(_) => Err(error(
            400,
            "INVALID_ARGUMENT",
            &format!("{field} is not a string"),
        )),
    }
}

/// A request checksum that is present must match; Cloud KMS refuses otherwise.
fn check_crc(
    body: &Value,
    data_field: &str,
    crc_field: &str,
    data: &[u8],
) -> Result<bool, ApiError> {
    match int64(body, crc_field) {
        None => Ok(false),
        Some(c) if c == i64::from(crc32c::crc32c(data)) => Ok(true),
        Some(_) => Err(error(
            400,
            "INVALID_ARGUMENT",
            &format!(
                "The checksum in field {crc_field} did not match the data in field {data_field}."
            ),
        )),
    }
}

/// A google.rpc error as Cloud KMS renders it over REST.
struct ApiError {
    code: u16,
    status: String,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "status": self.status}});
        (StatusCode::from_u16(self.code).unwrap(), axum::Json(body)).into_response()
    }
}

fn error(code: u16, status: &str, message: &str) -> ApiError {
    ApiError {
        code,
        status: status.to_owned(),
        message: message.to_owned(),
    }
}

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn version_json(key_name: &str, n: u32, v: &Version, protection: i64) -> Value {
    let mut j = json!({
        "name": format!("{key_name}/cryptoKeyVersions/{n}"),
        "state": v.state,
        "protectionLevel": protection,
        "algorithm": GOOGLE_SYMMETRIC_ENCRYPTION,
        "createTime": TIME,
    });
    if v.state == DESTROY_SCHEDULED {
        j["destroyTime"] = json!(TIME);
    }
    j
}

fn key_json(name: &str, k: &Key) -> Value {
    json!({
        "name": name,
        "purpose": ENCRYPT_DECRYPT,
        "primary": version_json(name, k.primary, &k.versions[k.primary as usize - 1], k.protection),
        "versionTemplate": {"protectionLevel": k.protection, "algorithm": GOOGLE_SYMMETRIC_ENCRYPTION},
        "labels": k.labels,
        "createTime": TIME,
        "destroyScheduledDuration": "2592000s",
    })
}

fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    aws_lc_rs::rand::fill(&mut k).unwrap();
    k
}

fn not_found(name: &str) -> ApiError {
    error(404, "NOT_FOUND", &format!("{name} not found."))
}

fn not_enabled(name: &str, state: i64) -> ApiError {
    let s = match state {
        DESTROYED => "DESTROYED",
        DESTROY_SCHEDULED => "DESTROY_SCHEDULED",
        _ => "DISABLED",
    };
    error(
        400,
        "FAILED_PRECONDITION",
        &format!(
            "The request cannot be fulfilled. Resource {name} has value {s} in field crypto_key_version.state."
        ),
    )
}

/// Which method a request is, and on what resource.
fn route(method: &Method, path: &str) -> Option<(&'static str, String)> {
    let name = path.strip_prefix("/v1/")?;
    let post = *method == Method::POST;
    let get = *method == Method::GET;
    for (suffix, m) in [
        (":encrypt", "encrypt"),
        (":decrypt", "decrypt"),
        (":asymmetricSign", "asymmetricSign"),
        (":updatePrimaryVersion", "updatePrimaryVersion"),
        (":destroy", "destroy"),
    ] {
        if let Some(n) = name.strip_suffix(suffix) {
            return post.then(|| (m, n.to_owned()));
        }
    }
    let r = |m: &'static str, n: &str| Some((m, n.to_owned()));
    if let Some(n) = name.strip_suffix("/cryptoKeys") {
        return if post { r("createCryptoKey", n) } else { None };
    }
    if let Some(n) = name.strip_suffix("/keyRings") {
        return if post { r("createKeyRing", n) } else { None };
    }
    if let Some(n) = name.strip_suffix("/cryptoKeyVersions") {
        return match (post, get) {
            (true, _) => r("createCryptoKeyVersion", n),
            (_, true) => r("listCryptoKeyVersions", n),
            _ => None,
        };
    }
    if let Some(n) = name.strip_suffix("/publicKey") {
        return if get { r("getPublicKey", n) } else { None };
    }
    if get && name.contains("/cryptoKeyVersions/") {
        return r("getCryptoKeyVersion", name);
    }
    if get && name.contains("/cryptoKeys/") {
        return r("getCryptoKey", name);
    }
    None
}

async fn handle(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some((m, name)) = route(&method, uri.path()) else {
        fake.state
            .lock()
            .unwrap()
            .unknown_routes
            .push(format!("{method} {uri}"));
        return error(404, "NOT_FOUND", "no such route in the stand-in").into_response();
    };
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return error(400, "INVALID_ARGUMENT", "invalid JSON").into_response(),
        }
    };
    fake.state.lock().unwrap().calls.push((
        m,
        uri.query().unwrap_or("").to_owned(),
        body.clone(),
        headers.contains_key("authorization"),
    ));
    let fault = fake.take_fault(m);
    match &fault {
        Some(Fault::Status(code, status)) => {
            return error(*code, status, "injected fault").into_response();
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    let resp = match serve(&fake, m, &name, &query, &body, fault.as_ref()) {
        Ok(v) => ok(v),
        Err(e) => e.into_response(),
    };
    match fault {
        Some(Fault::ApplyThenStatus(code, status)) => {
            error(code, status, "injected fault after the change").into_response()
        }
        _ => resp,
    }
}

fn serve(
    fake: &Fake,
    m: &str,
    name: &str,
    query: &HashMap<String, String>,
    body: &Value,
    fault: Option<&Fault>,
) -> Result<Value, ApiError> {
    let mut st = fake.state.lock().unwrap();
    match m {
        "createKeyRing" => {
            let id = query.get("keyRingId").cloned().unwrap_or_default();
            let ring = format!("{name}/keyRings/{id}");
            if !st.rings.insert(ring.clone()) {
                return Err(error(
                    409,
                    "ALREADY_EXISTS",
                    &format!("{ring} already exists."),
                ));
            }
            Ok(json!({"name": ring, "createTime": TIME}))
        }
        "createCryptoKey" => {
            if !st.rings.contains(name) {
                return Err(not_found(name));
            }
            let id = query.get("cryptoKeyId").cloned().unwrap_or_default();
            if id.is_empty()
                || id.len() > 63
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(error(400, "INVALID_ARGUMENT", "invalid crypto_key_id"));
            }
            let key_name = format!("{name}/cryptoKeys/{id}");
            let prefix = format!("{key_name}/");
            if st.keys.contains_key(&key_name) || st.signers.keys().any(|v| v.starts_with(&prefix))
            {
                return Err(error(
                    409,
                    "ALREADY_EXISTS",
                    &format!("{key_name} already exists."),
                ));
            }
            let template = body.get("versionTemplate").cloned().unwrap_or(json!({}));
            if int64(body, "purpose") != Some(ENCRYPT_DECRYPT)
                || int64(&template, "algorithm") != Some(GOOGLE_SYMMETRIC_ENCRYPTION)
            {
                return Err(error(
                    400,
                    "INVALID_ARGUMENT",
                    "unsupported purpose or algorithm",
                ));
            }
            let key = Key {
                protection: int64(&template, "protectionLevel").unwrap_or(1),
                labels: body.get("labels").cloned().unwrap_or(json!({})),
                versions: vec![Version {
                    key: random_key(),
                    state: ENABLED,
                }],
                primary: 1,
            };
            let j = key_json(&key_name, &key);
            st.keys.insert(key_name, key);
            Ok(j)
        }
        "getCryptoKey" => {
            let k = st.keys.get(name).ok_or_else(|| not_found(name))?;
            Ok(key_json(name, k))
        }
        "createCryptoKeyVersion" => {
            let k = st.keys.get_mut(name).ok_or_else(|| not_found(name))?;
            let pending = matches!(fault, Some(Fault::PendingGeneration));
            k.versions.push(Version {
                key: random_key(),
                state: if pending { PENDING_GENERATION } else { ENABLED },
            });
            let n = k.versions.len() as u32;
            Ok(version_json(
                name,
                n,
                &k.versions[n as usize - 1],
                k.protection,
            ))
        }
        "getCryptoKeyVersion" => {
            let (key_name, n) = split_version(name).ok_or_else(|| not_found(name))?;
            let k = st.keys.get_mut(key_name).ok_or_else(|| not_found(name))?;
            let protection = k.protection;
            let v = k
                .versions
                .get_mut(n as usize - 1)
                .ok_or_else(|| not_found(name))?;
            if v.state == PENDING_GENERATION {
                v.state = ENABLED;
            }
            Ok(version_json(key_name, n, v, protection))
        }
        "updatePrimaryVersion" => {
            let k = st.keys.get_mut(name).ok_or_else(|| not_found(name))?;
            let n: u32 = body
                .get("cryptoKeyVersionId")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| error(400, "INVALID_ARGUMENT", "cryptoKeyVersionId"))?;
            let v = k
                .versions
                .get(n.wrapping_sub(1) as usize)
                .ok_or_else(|| not_found(&format!("{name}/cryptoKeyVersions/{n}")))?;
            if v.state != ENABLED {
                return Err(not_enabled(
                    &format!("{name}/cryptoKeyVersions/{n}"),
                    v.state,
                ));
            }
            k.primary = n;
            Ok(key_json(name, k))
        }
        "listCryptoKeyVersions" => {
            let k = st.keys.get(name).ok_or_else(|| not_found(name))?;
            // Pages of at most two, whatever was asked: the client must follow
            // nextPageToken.
            let size = query
                .get("pageSize")
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(100)
                .clamp(1, 2);
            let start = query
                .get("pageToken")
                .filter(|t| !t.is_empty())
                .and_then(|t| t.parse::<usize>().ok())
                .unwrap_or(0);
            let page: Vec<Value> = k
                .versions
                .iter()
                .enumerate()
                .skip(start)
                .take(size)
                .map(|(i, v)| version_json(name, i as u32 + 1, v, k.protection))
                .collect();
            let mut j = json!({"cryptoKeyVersions": page, "totalSize": k.versions.len()});
            if start + size < k.versions.len() {
                j["nextPageToken"] = json!((start + size).to_string());
            }
            Ok(j)
        }
        "destroy" => {
            let (key_name, n) = split_version(name).ok_or_else(|| not_found(name))?;
            let k = st.keys.get_mut(key_name).ok_or_else(|| not_found(name))?;
            let protection = k.protection;
            let v = k
                .versions
                .get_mut(n as usize - 1)
                .ok_or_else(|| not_found(name))?;
            if v.state == DESTROY_SCHEDULED || v.state == DESTROYED {
                return Err(not_enabled(name, v.state));
            }
            v.state = DESTROY_SCHEDULED;
            v.key = [0; 32];
            Ok(version_json(key_name, n, v, protection))
        }
        "encrypt" => {
            let k = st.keys.get(name).ok_or_else(|| not_found(name))?;
            let plaintext = bytes_field(body, "plaintext")?;
            let aad = bytes_field(body, "additionalAuthenticatedData")?;
            let pt_ok = check_crc(body, "plaintext", "plaintextCrc32c", &plaintext)?;
            let aad_ok = check_crc(
                body,
                "additional_authenticated_data",
                "additionalAuthenticatedDataCrc32c",
                &aad,
            )?;
            let primary = &k.versions[k.primary as usize - 1];
            let version_name = format!("{name}/cryptoKeyVersions/{}", k.primary);
            if primary.state != ENABLED {
                return Err(not_enabled(&version_name, primary.state));
            }
            let mut nonce = [0u8; NONCE_LEN];
            aws_lc_rs::rand::fill(&mut nonce).unwrap();
            let sealing = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &primary.key).unwrap());
            let mut sealed = plaintext;
            sealing
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&aad),
                    &mut sealed,
                )
                .unwrap();
            let mut ciphertext = k.primary.to_be_bytes().to_vec();
            ciphertext.extend_from_slice(&nonce);
            ciphertext.extend_from_slice(&sealed);
            let mut j = json!({
                "name": version_name,
                "ciphertext": B64.encode(&ciphertext),
                "ciphertextCrc32c": crc(&ciphertext),
                "verifiedPlaintextCrc32c": pt_ok,
                "verifiedAdditionalAuthenticatedDataCrc32c": aad_ok,
                "protectionLevel": k.protection,
            });
            match fault {
                Some(Fault::BadCiphertextCrc) => {
                    j["ciphertextCrc32c"] = json!((crc32c::crc32c(&ciphertext) ^ 1).to_string())
                }
                Some(Fault::UnverifiedPlaintextCrc) => j["verifiedPlaintextCrc32c"] = json!(false),
                Some(Fault::UnverifiedAadCrc) => {
                    j["verifiedAdditionalAuthenticatedDataCrc32c"] = json!(false)
                }
                Some(Fault::ForeignVersionName) => {
                    let ring = name.split("/cryptoKeys/").next().unwrap_or(name);
                    j["name"] = json!(format!(
                        "{ring}/cryptoKeys/someone-else/cryptoKeyVersions/1"
                    ))
                }
                _ => {}
            }
            Ok(j)
        }
        "decrypt" => {
            let k = st.keys.get(name).ok_or_else(|| not_found(name))?;
            let ciphertext = bytes_field(body, "ciphertext")?;
            let aad = bytes_field(body, "additionalAuthenticatedData")?;
            check_crc(body, "ciphertext", "ciphertextCrc32c", &ciphertext)?;
            check_crc(
                body,
                "additional_authenticated_data",
                "additionalAuthenticatedDataCrc32c",
                &aad,
            )?;
            let invalid = || {
                error(
                    400,
                    "INVALID_ARGUMENT",
                    "Decryption failed: the ciphertext is invalid.",
                )
            };
            if ciphertext.len() < 4 + NONCE_LEN + 16 {
                return Err(invalid());
            }
            let n = u32::from_be_bytes(ciphertext[..4].try_into().unwrap());
            let v = n
                .checked_sub(1)
                .and_then(|i| k.versions.get(i as usize))
                .ok_or_else(invalid)?;
            if v.state != ENABLED {
                return Err(not_enabled(
                    &format!("{name}/cryptoKeyVersions/{n}"),
                    v.state,
                ));
            }
            let opening = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &v.key).unwrap());
            let nonce = Nonce::try_assume_unique_for_key(&ciphertext[4..4 + NONCE_LEN]).unwrap();
            let mut buf = ciphertext[4 + NONCE_LEN..].to_vec();
            let plaintext = opening
                .open_in_place(nonce, Aad::from(&aad), &mut buf)
                .map_err(|_| {
                    error(
                        400,
                        "INVALID_ARGUMENT",
                        "Decryption failed: verify that 'name' refers to the correct CryptoKey.",
                    )
                })?
                .to_vec();
            let mut j = json!({
                "plaintext": B64.encode(&plaintext),
                "plaintextCrc32c": crc(&plaintext),
                "usedPrimary": n == k.primary,
                "protectionLevel": k.protection,
            });
            if let Some(Fault::BadPlaintextCrc) = fault {
                j["plaintextCrc32c"] = json!((crc32c::crc32c(&plaintext) ^ 1).to_string());
            }
            Ok(j)
        }
        "getPublicKey" => {
            let signer = st.signers.get(name).ok_or_else(|| not_found(name))?;
            let mut der = vec![
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ];
            der.extend_from_slice(signer.public_key().as_ref());
            let pem = format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                B64.encode(&der)
            );
            let mut j = json!({
                "pem": pem,
                "algorithm": EC_SIGN_ED25519,
                "pemCrc32c": crc(pem.as_bytes()),
                "name": name,
                "protectionLevel": 2,
            });
            match fault {
                Some(Fault::WrongAlgorithm) => j["algorithm"] = json!(EC_SIGN_P256_SHA256),
                Some(Fault::BadPemCrc) => j["pemCrc32c"] = json!("1"),
                _ => {}
            }
            Ok(j)
        }
        "asymmetricSign" => {
            let signer = st.signers.get(name).ok_or_else(|| not_found(name))?;
            let data = bytes_field(body, "data")?;
            let verified = check_crc(body, "data", "dataCrc32c", &data)?;
            let signed = if let Some(Fault::WrongSignature) = fault {
                signer.sign(b"something else")
            } else {
                signer.sign(&data)
            };
            let signature = signed.as_ref().to_vec();
            let mut j = json!({
                "signature": B64.encode(&signature),
                "signatureCrc32c": crc(&signature),
                "verifiedDataCrc32c": verified,
                "name": name,
                "protectionLevel": 2,
            });
            if let Some(Fault::BadSignatureCrc) = fault {
                j["signatureCrc32c"] = json!((crc32c::crc32c(&signature) ^ 1).to_string());
            }
            Ok(j)
        }
        other => Err(error(501, "UNIMPLEMENTED", other)),
    }
}

fn split_version(name: &str) -> Option<(&str, u32)> {
    let (key, n) = name.rsplit_once("/cryptoKeyVersions/")?;
    Some((key, n.parse().ok().filter(|n| *n > 0)?))
}

/// Starts an empty stand-in on 127.0.0.1 (on the current tokio runtime) and
/// answers its handle and its endpoint, `http://127.0.0.1:PORT`. Create the
/// key ring and the signing key with [`Fake::create_key_ring`] and
/// [`Fake::create_signing_key`].
pub async fn start() -> (Arc<Fake>, String) {
    let fake = Fake::new();
    let app = Router::new().fallback(handle).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}"))
}
