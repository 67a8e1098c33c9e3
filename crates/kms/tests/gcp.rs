//! The `gcp` provider, with Google's real client, against an in-repo stand-in
//! for the Cloud KMS REST API (axum on 127.0.0.1).
//!
//! The stand-in serves the calls the provider makes, in the shapes the client
//! sends (`$alt=json;enum-encoding=int`, base64 bytes, int64 checksums as
//! strings, enums as numbers) and with Cloud KMS's semantics: real
//! AES-256-GCM bound to the AAD, a ciphertext that names its key version,
//! versions that can be disabled by destruction, real Ed25519 signatures, real
//! CRC32C checks of requests and responses. Each test can inject faults.
#![cfg(feature = "gcp")]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use strongroom_core::VaultId;
use strongroom_crypto::Dek;
use strongroom_kms::gcp::{GcpConfig, GcpKmsProvider, GcpProtectionLevel};
use strongroom_kms::{KekRef, KeyProvider, KmsError, ProviderHealth, kid_for};

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;
const RING: &str = "projects/test-project/locations/global/keyRings/strongroom";
const SIGNING: &str =
    "projects/test-project/locations/global/keyRings/strongroom/cryptoKeys/jwt/cryptoKeyVersions/1";
const TIME: &str = "2026-11-28T12:00:00.000000Z";

// Enum numbers of google.cloud.kms.v1, as sent with enum-encoding=int.
const ENABLED: i64 = 1;
const DESTROYED: i64 = 3;
const DESTROY_SCHEDULED: i64 = 4;
const PENDING_GENERATION: i64 = 5;
const GOOGLE_SYMMETRIC_ENCRYPTION: i64 = 1;
const EC_SIGN_P256_SHA256: i64 = 12;
const EC_SIGN_ED25519: i64 = 40;
const ENCRYPT_DECRYPT: i64 = 1;

// ---------------------------------------------------------------------------
// The stand-in.

#[derive(Clone, Debug)]
enum Fault {
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
struct FakeState {
    rings: HashSet<String>,
    keys: BTreeMap<String, Key>,
    faults: Vec<(&'static str, Fault, u32)>,
    /// (method, query string, JSON body) of every request, by method.
    calls: Vec<(&'static str, String, Value, bool)>,
    unknown_routes: Vec<String>,
}

struct Fake {
    state: Mutex<FakeState>,
    signer: Ed25519KeyPair,
}

impl Fake {
    fn new() -> Arc<Self> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let fake = Fake {
            state: Mutex::new(FakeState::default()),
            signer: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
        };
        fake.state.lock().unwrap().rings.insert(RING.into());
        Arc::new(fake)
    }

    fn fault(&self, method: &'static str, fault: Fault, times: u32) {
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

    fn count(&self, method: &str) -> usize {
        let st = self.state.lock().unwrap();
        st.calls.iter().filter(|c| c.0 == method).count()
    }

    fn bodies(&self, method: &str) -> Vec<Value> {
        let st = self.state.lock().unwrap();
        st.calls
            .iter()
            .filter(|c| c.0 == method)
            .map(|c| c.2.clone())
            .collect()
    }

    fn public_key(&self) -> [u8; 32] {
        self.signer.public_key().as_ref().try_into().unwrap()
    }

    fn version_state(&self, key: &str, version: u32) -> i64 {
        let st = self.state.lock().unwrap();
        st.keys[key].versions[version as usize - 1].state
    }
}

fn crc(data: &[u8]) -> String {
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
            if st.keys.contains_key(&key_name) {
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
                    j["name"] = json!(format!(
                        "{RING}/cryptoKeys/someone-else/cryptoKeyVersions/1"
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
            if name != SIGNING {
                return Err(not_found(name));
            }
            let mut der = vec![
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ];
            der.extend_from_slice(fake.signer.public_key().as_ref());
            let pem = format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                B64.encode(&der)
            );
            let mut j = json!({
                "pem": pem,
                "algorithm": EC_SIGN_ED25519,
                "pemCrc32c": crc(pem.as_bytes()),
                "name": SIGNING,
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
            if name != SIGNING {
                return Err(not_found(name));
            }
            let data = bytes_field(body, "data")?;
            let verified = check_crc(body, "data", "dataCrc32c", &data)?;
            let signed = if let Some(Fault::WrongSignature) = fault {
                fake.signer.sign(b"something else")
            } else {
                fake.signer.sign(&data)
            };
            let signature = signed.as_ref().to_vec();
            let mut j = json!({
                "signature": B64.encode(&signature),
                "signatureCrc32c": crc(&signature),
                "verifiedDataCrc32c": verified,
                "name": SIGNING,
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

async fn start() -> (Arc<Fake>, String) {
    let fake = Fake::new();
    let app = Router::new().fallback(handle).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}"))
}

// ---------------------------------------------------------------------------
// Helpers.

fn config(endpoint: &str) -> GcpConfig {
    let mut cfg = GcpConfig::new("test-project", "global", "strongroom", SIGNING);
    cfg.endpoint = Some(endpoint.to_owned());
    cfg.timeout_ms = 2_000;
    cfg.max_retries = 3;
    cfg
}

fn anonymous() -> strongroom_kms::gcp::Credentials {
    google_cloud_auth::credentials::anonymous::Builder::new().build()
}

async fn connect(cfg: GcpConfig) -> Result<GcpKmsProvider, KmsError> {
    GcpKmsProvider::connect_with_credentials(cfg, anonymous()).await
}

async fn setup() -> (Arc<Fake>, GcpKmsProvider) {
    let (fake, endpoint) = start().await;
    let p = connect(config(&endpoint)).await.unwrap();
    (fake, p)
}

fn internal_message(r: Result<impl std::fmt::Debug, KmsError>) -> String {
    match r {
        Err(KmsError::Internal(m)) => m,
        other => panic!("expected Internal, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Behaviour.

#[tokio::test]
async fn create_wrap_unwrap_round_trip_on_the_wire() {
    let (fake, p) = setup().await;
    assert_eq!(p.name(), "gcp");
    let vault = VaultId::new();
    let kek = p.create_kek(&vault).await.unwrap();
    let id = kek.0.strip_prefix(&format!("{RING}/cryptoKeys/")).unwrap();
    let suffix = id.strip_prefix("sr-vault-").unwrap();
    let (uuid, rand) = suffix.split_at(32);
    assert_eq!(uuid, vault.as_uuid().simple().to_string());
    assert!(rand.len() == 5 && rand.starts_with('-') && hex::decode(&rand[1..]).is_ok());

    let dek = Dek::generate();
    let w = p.wrap(&kek, &dek, b"vault/path/v1").await.unwrap();
    assert_eq!(w.kek_version, 1);
    assert!(!w.blob.windows(32).any(|win| win == dek.expose()));
    let back = p.unwrap(&kek, &w, b"vault/path/v1").await.unwrap();
    assert_eq!(back.expose(), dek.expose());

    // What went over the wire.
    let create = &fake.bodies("createCryptoKey")[0];
    assert_eq!(create["purpose"], json!(ENCRYPT_DECRYPT));
    assert_eq!(
        create["versionTemplate"]["algorithm"],
        json!(GOOGLE_SYMMETRIC_ENCRYPTION)
    );
    assert_eq!(create["versionTemplate"]["protectionLevel"], json!(1));
    assert_eq!(create["labels"]["managed-by"], json!("strongroom"));
    let enc = &fake.bodies("encrypt")[0];
    assert_eq!(enc["plaintextCrc32c"], json!(crc(dek.expose())));
    assert_eq!(
        enc["additionalAuthenticatedDataCrc32c"],
        json!(crc(b"vault/path/v1"))
    );
    let dec = &fake.bodies("decrypt")[0];
    assert_eq!(dec["ciphertextCrc32c"], json!(crc(&w.blob)));
    assert_eq!(
        dec["additionalAuthenticatedDataCrc32c"],
        json!(crc(b"vault/path/v1"))
    );
    let st = fake.state.lock().unwrap();
    assert!(st.unknown_routes.is_empty(), "{:?}", st.unknown_routes);
    for (m, query, _, authorization) in &st.calls {
        assert!(
            query.contains("%24alt=json%3Benum-encoding%3Dint"),
            "{m}: {query}"
        );
        assert!(!authorization, "anonymous credentials send no token");
    }
}

#[tokio::test]
async fn hsm_protection_level_is_requested() {
    let (fake, endpoint) = start().await;
    let mut cfg = config(&endpoint);
    cfg.protection_level = GcpProtectionLevel::Hsm;
    let p = connect(cfg).await.unwrap();
    p.create_kek(&VaultId::new()).await.unwrap();
    assert_eq!(
        fake.bodies("createCryptoKey")[0]["versionTemplate"]["protectionLevel"],
        json!(2)
    );
}

#[tokio::test]
async fn a_wrong_aad_a_tampered_blob_or_another_kek_is_an_integrity_error() {
    let (_, p) = setup().await;
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let other = p.create_kek(&VaultId::new()).await.unwrap();
    let dek = Dek::generate();
    let w = p.wrap(&kek, &dek, b"ctx-a").await.unwrap();
    assert!(matches!(
        p.unwrap(&kek, &w, b"ctx-b").await,
        Err(KmsError::Integrity)
    ));
    assert!(matches!(
        p.unwrap(&kek, &w, b"").await,
        Err(KmsError::Integrity)
    ));
    let mut tampered = w.clone();
    let last = tampered.blob.len() - 1;
    tampered.blob[last] ^= 0x80;
    assert!(matches!(
        p.unwrap(&kek, &tampered, b"ctx-a").await,
        Err(KmsError::Integrity)
    ));
    assert!(matches!(
        p.unwrap(&other, &w, b"ctx-a").await,
        Err(KmsError::Integrity)
    ));
    // An empty AAD works too (no AAD checksum is sent or required then).
    let w0 = p.wrap(&kek, &dek, b"").await.unwrap();
    assert_eq!(
        p.unwrap(&kek, &w0, b"").await.unwrap().expose(),
        dek.expose()
    );
}

#[tokio::test]
async fn rotation_adds_a_primary_version_and_old_wraps_still_open() {
    let (fake, p) = setup().await;
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let dek1 = Dek::generate();
    let w1 = p.wrap(&kek, &dek1, b"ctx").await.unwrap();
    assert_eq!(p.rotate_kek(&kek).await.unwrap(), 2);
    let dek2 = Dek::generate();
    let w2 = p.wrap(&kek, &dek2, b"ctx").await.unwrap();
    assert_eq!(w2.kek_version, 2);
    assert_eq!(
        p.unwrap(&kek, &w1, b"ctx").await.unwrap().expose(),
        dek1.expose()
    );
    assert_eq!(
        p.unwrap(&kek, &w2, b"ctx").await.unwrap().expose(),
        dek2.expose()
    );
    assert_eq!(
        fake.bodies("updatePrimaryVersion")[0]["cryptoKeyVersionId"],
        json!("2")
    );

    // A version Cloud KMS is still generating is waited for.
    fake.fault("createCryptoKeyVersion", Fault::PendingGeneration, 1);
    assert_eq!(p.rotate_kek(&kek).await.unwrap(), 3);
    assert_eq!(fake.count("getCryptoKeyVersion"), 1);
    assert_eq!(p.wrap(&kek, &dek1, b"ctx").await.unwrap().kek_version, 3);
}

#[tokio::test]
async fn destroy_schedules_every_version_and_nothing_opens_after() {
    let (fake, p) = setup().await;
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let dek = Dek::generate();
    let w1 = p.wrap(&kek, &dek, b"ctx").await.unwrap();
    p.rotate_kek(&kek).await.unwrap();
    p.rotate_kek(&kek).await.unwrap();
    let w3 = p.wrap(&kek, &dek, b"ctx").await.unwrap();
    p.destroy_kek(&kek).await.unwrap();
    // Three versions, listed in pages of two.
    assert_eq!(fake.count("listCryptoKeyVersions"), 2);
    assert_eq!(fake.count("destroy"), 3);
    for v in 1..=3 {
        assert_eq!(fake.version_state(&kek.0, v), DESTROY_SCHEDULED);
    }
    for w in [&w1, &w3] {
        assert!(matches!(
            p.unwrap(&kek, w, b"ctx").await,
            Err(KmsError::KeyNotFound)
        ));
    }
    assert!(matches!(
        p.wrap(&kek, &dek, b"ctx").await,
        Err(KmsError::KeyNotFound)
    ));
    // Destroying again is a no-op; an unknown KEK is KeyNotFound.
    p.destroy_kek(&kek).await.unwrap();
    assert_eq!(fake.count("destroy"), 3);
    let missing = KekRef(format!("{RING}/cryptoKeys/sr-vault-missing"));
    assert!(matches!(
        p.destroy_kek(&missing).await,
        Err(KmsError::KeyNotFound)
    ));
    assert!(matches!(
        p.unwrap(&missing, &w1, b"ctx").await,
        Err(KmsError::KeyNotFound)
    ));
}

#[tokio::test]
async fn keys_outside_the_ring_or_not_ours_are_never_touched() {
    let (fake, p) = setup().await;
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let w = p.wrap(&kek, &Dek::generate(), b"ctx").await.unwrap();
    let before = fake.state.lock().unwrap().calls.len();
    let jwt_key = KekRef(
        SIGNING
            .rsplit_once("/cryptoKeyVersions/")
            .unwrap()
            .0
            .to_owned(),
    );
    let other_ring = KekRef(kek.0.replace("/keyRings/strongroom/", "/keyRings/other/"));
    let sneaky = KekRef(format!("{}/../jwt", kek.0));
    for bad in [&jwt_key, &other_ring, &sneaky] {
        assert!(
            matches!(p.destroy_kek(bad).await, Err(KmsError::KeyNotFound)),
            "{bad:?}"
        );
        assert!(
            matches!(p.rotate_kek(bad).await, Err(KmsError::KeyNotFound)),
            "{bad:?}"
        );
        assert!(
            matches!(p.unwrap(bad, &w, b"ctx").await, Err(KmsError::KeyNotFound)),
            "{bad:?}"
        );
        assert!(
            matches!(
                p.wrap(bad, &Dek::generate(), b"ctx").await,
                Err(KmsError::KeyNotFound)
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        fake.state.lock().unwrap().calls.len(),
        before,
        "no request was sent"
    );
}

#[tokio::test]
async fn signatures_verify_with_the_published_key() {
    let (fake, p) = setup().await;
    let pk = p.signing_public_key();
    assert_eq!(pk.ed25519, fake.public_key());
    assert_eq!(pk.kid, kid_for(&fake.public_key()));
    let sig = p.sign(b"header.payload").await.unwrap();
    let verifier = UnparsedPublicKey::new(&ED25519, pk.ed25519);
    verifier.verify(b"header.payload", &sig).unwrap();
    assert!(verifier.verify(b"header.payloae", &sig).is_err());
    assert_eq!(
        fake.bodies("asymmetricSign")[0]["dataCrc32c"],
        json!(crc(b"header.payload"))
    );
}

#[tokio::test]
async fn health_is_one_cheap_call() {
    let (fake, p) = setup().await;
    assert_eq!(p.health().await, ProviderHealth::Healthy);
    fake.fault("getPublicKey", Fault::Status(503, "UNAVAILABLE"), 100);
    let before = fake.count("getPublicKey");
    assert!(matches!(p.health().await, ProviderHealth::Unavailable(_)));
    assert_eq!(
        fake.count("getPublicKey"),
        before + 1,
        "a probe does not retry"
    );
}

// ---------------------------------------------------------------------------
// Faults.

#[tokio::test]
async fn a_corrupt_ciphertext_checksum_fails_closed() {
    let (fake, p) = setup().await;
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let dek = Dek::generate();
    // Once: retried, then fine.
    fake.fault("encrypt", Fault::BadCiphertextCrc, 1);
    let w = p.wrap(&kek, &dek, b"ctx").await.unwrap();
    assert_eq!(fake.count("encrypt"), 2);
    assert_eq!(
        p.unwrap(&kek, &w, b"ctx").await.unwrap().expose(),
        dek.expose()
    );
    // Always: an error, never a result.
    fake.fault("encrypt", Fault::BadCiphertextCrc, 100);
    let m = internal_message(p.wrap(&kek, &dek, b"ctx").await);
    assert!(m.contains("ciphertextCrc32c"), "{m}");
    assert_eq!(fake.count("encrypt"), 2 + 4, "one try and three retries");
}

#[tokio::test]
async fn unverified_request_checksums_fail_closed() {
    let (fake, p) = setup().await;
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let dek = Dek::generate();
    fake.fault("encrypt", Fault::UnverifiedPlaintextCrc, 100);
    let m = internal_message(p.wrap(&kek, &dek, b"ctx").await);
    assert!(m.contains("verifiedPlaintextCrc32c"), "{m}");
    fake.state.lock().unwrap().faults.clear();
    fake.fault("encrypt", Fault::UnverifiedAadCrc, 100);
    let m = internal_message(p.wrap(&kek, &dek, b"ctx").await);
    assert!(
        m.contains("verifiedAdditionalAuthenticatedDataCrc32c"),
        "{m}"
    );
    fake.state.lock().unwrap().faults.clear();
    fake.fault("encrypt", Fault::ForeignVersionName, 100);
    let m = internal_message(p.wrap(&kek, &dek, b"ctx").await);
    assert!(m.contains("not a version of"), "{m}");
}

#[tokio::test]
async fn a_corrupt_plaintext_checksum_fails_closed() {
    let (fake, p) = setup().await;
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let dek = Dek::generate();
    let w = p.wrap(&kek, &dek, b"ctx").await.unwrap();
    fake.fault("decrypt", Fault::BadPlaintextCrc, 100);
    assert!(matches!(
        p.unwrap(&kek, &w, b"ctx").await,
        Err(KmsError::Integrity)
    ));
    assert_eq!(fake.count("decrypt"), 4);
    fake.state.lock().unwrap().faults.clear();
    fake.fault("decrypt", Fault::BadPlaintextCrc, 1);
    assert_eq!(
        p.unwrap(&kek, &w, b"ctx").await.unwrap().expose(),
        dek.expose()
    );
}

#[tokio::test]
async fn a_corrupt_or_wrong_signature_fails_closed() {
    let (fake, p) = setup().await;
    fake.fault("asymmetricSign", Fault::BadSignatureCrc, 100);
    let m = internal_message(p.sign(b"m").await);
    assert!(m.contains("signatureCrc32c"), "{m}");
    fake.state.lock().unwrap().faults.clear();
    fake.fault("asymmetricSign", Fault::WrongSignature, 100);
    let m = internal_message(p.sign(b"m").await);
    assert!(m.contains("does not verify"), "{m}");
}

#[tokio::test]
async fn one_429_is_retried_and_succeeds() {
    let (fake, p) = setup().await;
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let dek = Dek::generate();
    fake.fault("encrypt", Fault::Status(429, "RESOURCE_EXHAUSTED"), 1);
    let w = p.wrap(&kek, &dek, b"ctx").await.unwrap();
    assert_eq!(fake.count("encrypt"), 2);
    fake.fault("decrypt", Fault::Status(503, "UNAVAILABLE"), 2);
    assert_eq!(
        p.unwrap(&kek, &w, b"ctx").await.unwrap().expose(),
        dek.expose()
    );
    assert_eq!(fake.count("decrypt"), 3);
}

#[tokio::test]
async fn persistent_unavailability_gives_up_after_max_retries() {
    let (fake, endpoint) = start().await;
    let mut cfg = config(&endpoint);
    cfg.max_retries = 2;
    let p = connect(cfg).await.unwrap();
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let w = p.wrap(&kek, &Dek::generate(), b"ctx").await.unwrap();
    fake.fault("decrypt", Fault::Status(503, "UNAVAILABLE"), 100);
    assert!(matches!(
        p.unwrap(&kek, &w, b"ctx").await,
        Err(KmsError::Unavailable(_))
    ));
    assert_eq!(fake.count("decrypt"), 3);
    fake.fault("encrypt", Fault::Status(429, "RESOURCE_EXHAUSTED"), 100);
    assert!(matches!(
        p.wrap(&kek, &Dek::generate(), b"ctx").await,
        Err(KmsError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let (fake, endpoint) = start().await;
    let mut cfg = config(&endpoint);
    cfg.timeout_ms = 300;
    cfg.max_retries = 1;
    let p = connect(cfg).await.unwrap();
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let dek = Dek::generate();
    let w = p.wrap(&kek, &dek, b"ctx").await.unwrap();
    fake.fault("decrypt", Fault::Delay(Duration::from_millis(1_500)), 1);
    assert_eq!(
        p.unwrap(&kek, &w, b"ctx").await.unwrap().expose(),
        dek.expose()
    );
    assert_eq!(fake.count("decrypt"), 2);
    fake.fault("decrypt", Fault::Delay(Duration::from_millis(1_500)), 2);
    let started = std::time::Instant::now();
    assert!(matches!(
        p.unwrap(&kek, &w, b"ctx").await,
        Err(KmsError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_millis(1_400),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_create_is_not_repeated_after_an_ambiguous_failure() {
    let (fake, p) = setup().await;
    fake.fault("createCryptoKey", Fault::Status(500, "INTERNAL"), 1);
    assert!(matches!(
        p.create_kek(&VaultId::new()).await,
        Err(KmsError::Unavailable(_))
    ));
    assert_eq!(fake.count("createCryptoKey"), 1);
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_recovered() {
    let (fake, p) = setup().await;
    // Cloud KMS creates the key, then the 503 hides it; the retry sees
    // ALREADY_EXISTS and fetches the key, which is ours (the id is random).
    fake.fault(
        "createCryptoKey",
        Fault::ApplyThenStatus(503, "UNAVAILABLE"),
        1,
    );
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    assert_eq!(fake.count("createCryptoKey"), 2);
    assert_eq!(fake.count("getCryptoKey"), 1);
    let dek = Dek::generate();
    let w = p.wrap(&kek, &dek, b"ctx").await.unwrap();
    assert_eq!(
        p.unwrap(&kek, &w, b"ctx").await.unwrap().expose(),
        dek.expose()
    );
}

#[tokio::test]
async fn permission_denied_names_the_permission_and_role() {
    let (fake, p) = setup().await;
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    fake.fault("encrypt", Fault::Status(403, "PERMISSION_DENIED"), 1);
    let m = internal_message(p.wrap(&kek, &Dek::generate(), b"ctx").await);
    assert!(m.contains("cloudkms.cryptoKeyVersions.useToEncrypt"), "{m}");
    assert!(
        m.contains("roles/cloudkms.cryptoKeyEncrypterDecrypter"),
        "{m}"
    );
    assert_eq!(fake.count("encrypt"), 1, "not retried");
    fake.fault("asymmetricSign", Fault::Status(403, "PERMISSION_DENIED"), 1);
    let m = internal_message(p.sign(b"m").await);
    assert!(m.contains("roles/cloudkms.signerVerifier"), "{m}");
    fake.fault(
        "createCryptoKey",
        Fault::Status(403, "PERMISSION_DENIED"),
        1,
    );
    let m = internal_message(p.create_kek(&VaultId::new()).await);
    assert!(m.contains("cloudkms.cryptoKeys.create"), "{m}");
}

#[tokio::test]
async fn connect_checks_the_signing_key() {
    let (fake, endpoint) = start().await;
    fake.fault("getPublicKey", Fault::WrongAlgorithm, 1);
    let m = internal_message(connect(config(&endpoint)).await);
    assert!(m.contains("EC_SIGN_ED25519"), "{m}");
    fake.fault("getPublicKey", Fault::BadPemCrc, 100);
    let m = internal_message(connect(config(&endpoint)).await);
    assert!(m.contains("pemCrc32c"), "{m}");
    fake.state.lock().unwrap().faults.clear();
    fake.fault("getPublicKey", Fault::Status(403, "PERMISSION_DENIED"), 1);
    let m = internal_message(connect(config(&endpoint)).await);
    assert!(m.contains("roles/cloudkms.signerVerifier"), "{m}");
    let mut cfg = config(&endpoint);
    cfg.signing_key_version = SIGNING.replace("/1", "/9");
    let m = internal_message(connect(cfg).await);
    assert!(m.contains("does not exist"), "{m}");
    // Validation happens before any request.
    let mut cfg = config(&endpoint);
    cfg.key_ring = "a/b".into();
    assert!(connect(cfg).await.is_err());
}

#[tokio::test]
async fn a_missing_key_ring_is_explained() {
    let (_, endpoint) = start().await;
    let mut cfg = config(&endpoint);
    cfg.key_ring = "nope".into();
    let p = connect(cfg).await.unwrap();
    let m = internal_message(p.create_kek(&VaultId::new()).await);
    assert!(m.contains("does not exist"), "{m}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    // Bind and drop: nothing listens on this port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = config(&format!("http://127.0.0.1:{port}"));
    cfg.max_retries = 1;
    assert!(matches!(connect(cfg).await, Err(KmsError::Unavailable(_))));
}
