//! The `gcp` provider against `drongo`, a third-party Cloud KMS REST stand-in
//! written in Python: a check of the real wire format against an
//! implementation we did not write.
//!
//! Setup (once per machine; the script is idempotent, so a test runner may
//! call it every time):
//!
//! ```sh
//! scripts/drongo-venv.sh
//! cargo test -p strongroom-kms --features gcp --test gcp_drongo
//! ```
//!
//! The venv lives in `$STRONGROOM_DRONGO_VENV`, default
//! `$HOME/.cache/strongroom-drongo`. Without it this test **fails** (it does
//! not skip) and says so.
//!
//! What drongo 0.8.0 serves: keyRings and cryptoKeys create/get/list, and
//! `:encrypt` / `:decrypt` with AAD (it refuses a wrong AAD with
//! INVALID_ARGUMENT) and CRC32C response fields. What it does not: any
//! cryptoKeyVersions route (so no rotation or destruction), `publicKey`,
//! `:asymmetricSign`; it also does not check request checksums, and its
//! "ciphertext" is base64 JSON holding the plaintext. So this test covers the
//! symmetric path only: a small proxy in front of drongo answers the two
//! signing-key calls that `connect` and `sign` make with a local Ed25519 key,
//! and forwards everything else to drongo. Rotation, destruction, signing and
//! fault injection are covered by `tests/gcp.rs`.
#![cfg(feature = "gcp")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use strongroom_core::VaultId;
use strongroom_crypto::Dek;
use strongroom_kms::gcp::{GcpConfig, GcpKmsProvider};
use strongroom_kms::{KekRef, KeyProvider, KmsError};

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;
const PROJECT: &str = "drongo-project";
const SIGNING: &str = "projects/drongo-project/locations/global/keyRings/strongroom/cryptoKeys/jwt/cryptoKeyVersions/1";

fn venv() -> PathBuf {
    std::env::var_os("STRONGROOM_DRONGO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/strongroom-drongo")
        })
}

/// The drongo server; killed when dropped.
struct Drongo {
    child: Child,
    base: String,
}

impl Drop for Drongo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_drongo() -> Drongo {
    let bin = venv().join("bin/drongo");
    assert!(
        bin.is_file(),
        "drongo is not installed at {}.\n\
         Run `scripts/drongo-venv.sh` (needs python3 with venv and PyPI access), \
         or set STRONGROOM_DRONGO_VENV to a venv with `drongo` and `google-crc32c`.",
        bin.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&bin)
        .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let drongo = Drongo {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let probe = format!(
        "{}/v1/projects/{PROJECT}/locations/global/keyRings",
        drongo.base
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if reqwest::get(&probe).await.is_ok() {
            return drongo;
        }
        assert!(
            Instant::now() < deadline,
            "drongo did not answer on {} within 30 s",
            drongo.base
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Proxy {
    drongo: String,
    http: reqwest::Client,
    signer: Ed25519KeyPair,
    /// Methods forwarded to drongo, e.g. "POST …:encrypt".
    forwarded: Mutex<Vec<String>>,
}

fn crc(data: &[u8]) -> String {
    crc32c::crc32c(data).to_string()
}

/// Answers the signing-key calls drongo lacks; forwards the rest.
async fn proxy(
    State(p): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if method == Method::GET && path == format!("/v1/{SIGNING}/publicKey") {
        let mut der = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        der.extend_from_slice(p.signer.public_key().as_ref());
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            B64.encode(&der)
        );
        return axum::Json(json!({
            "pem": pem, "pemCrc32c": crc(pem.as_bytes()), "algorithm": 40, "name": SIGNING,
        }))
        .into_response();
    }
    if method == Method::POST && path == format!("/v1/{SIGNING}:asymmetricSign") {
        let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let data = B64.decode(req["data"].as_str().unwrap_or("")).unwrap();
        let sig = p.signer.sign(&data);
        return axum::Json(json!({
            "signature": B64.encode(sig.as_ref()), "signatureCrc32c": crc(sig.as_ref()),
            "verifiedDataCrc32c": req["dataCrc32c"] == json!(crc(&data)), "name": SIGNING,
        }))
        .into_response();
    }
    p.forwarded.lock().unwrap().push(format!("{method} {path}"));
    let url = format!(
        "{}{}",
        p.drongo,
        uri.path_and_query().map(|x| x.as_str()).unwrap_or(path)
    );
    let mut req = p.http.request(method, url).body(body.to_vec());
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    match req.send().await {
        Ok(resp) => {
            let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let ct = resp.headers().get(header::CONTENT_TYPE).cloned();
            let bytes = resp.bytes().await.unwrap_or_default();
            let mut out = (status, bytes.to_vec()).into_response();
            if let Some(ct) = ct {
                out.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            out
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn start_proxy(drongo: &Drongo) -> (Arc<Proxy>, String) {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let state = Arc::new(Proxy {
        drongo: drongo.base.clone(),
        http: reqwest::Client::new(),
        signer: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
        forwarded: Mutex::new(Vec::new()),
    });
    let app = Router::new().fallback(proxy).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, format!("http://{addr}"))
}

fn anonymous() -> strongroom_kms::gcp::Credentials {
    google_cloud_auth::credentials::anonymous::Builder::new().build()
}

#[tokio::test]
async fn encrypt_decrypt_against_drongo() {
    let drongo = start_drongo().await;

    // The operator's step: create the key ring (here with Google's client,
    // straight at drongo).
    let admin = google_cloud_kms_v1::client::KeyManagementService::builder()
        .with_endpoint(drongo.base.clone())
        .with_credentials(anonymous())
        .build()
        .await
        .unwrap();
    admin
        .create_key_ring()
        .set_parent(format!("projects/{PROJECT}/locations/global"))
        .set_key_ring_id("strongroom")
        .send()
        .await
        .unwrap();

    let (proxy, endpoint) = start_proxy(&drongo).await;
    let mut cfg = GcpConfig::new(PROJECT, "global", "strongroom", SIGNING);
    cfg.endpoint = Some(endpoint);
    cfg.max_retries = 1;
    let p = GcpKmsProvider::connect_with_credentials(cfg, anonymous())
        .await
        .unwrap();

    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let other = p.create_kek(&VaultId::new()).await.unwrap();
    let dek = Dek::generate();
    let aad = b"strongroom/secret\x00vault\x00path\x001";
    let w = p.wrap(&kek, &dek, aad).await.unwrap();
    assert_eq!(w.kek_version, 1);
    assert_eq!(
        p.unwrap(&kek, &w, aad).await.unwrap().expose(),
        dek.expose()
    );

    // A wrong AAD, a damaged blob, another KEK: all refused by drongo.
    assert!(matches!(
        p.unwrap(&kek, &w, b"another context").await,
        Err(KmsError::Integrity)
    ));
    assert!(matches!(
        p.unwrap(&kek, &w, b"").await,
        Err(KmsError::Integrity)
    ));
    let mut damaged = w.clone();
    damaged.blob[0] ^= 0x55;
    assert!(matches!(
        p.unwrap(&kek, &damaged, aad).await,
        Err(KmsError::Integrity)
    ));
    assert!(matches!(
        p.unwrap(&other, &w, aad).await,
        Err(KmsError::Integrity)
    ));
    let missing = KekRef(format!("{}/cryptoKeys/sr-vault-missing", p.key_ring()));
    assert!(matches!(
        p.unwrap(&missing, &w, aad).await,
        Err(KmsError::KeyNotFound)
    ));

    // No AAD at all also round-trips (drongo then omits the AAD flag).
    let w0 = p.wrap(&kek, &dek, b"").await.unwrap();
    assert_eq!(
        p.unwrap(&kek, &w0, b"").await.unwrap().expose(),
        dek.expose()
    );

    // The signing calls answered by the proxy still verify end to end.
    let sig = p.sign(b"jwt").await.unwrap();
    UnparsedPublicKey::new(&ED25519, p.signing_public_key().ed25519)
        .verify(b"jwt", &sig)
        .unwrap();

    // The symmetric calls really went to drongo.
    let forwarded = proxy.forwarded.lock().unwrap().clone();
    for m in [":encrypt", ":decrypt", "/cryptoKeys"] {
        assert!(
            forwarded.iter().any(|f| f.ends_with(m)),
            "{m} not in {forwarded:?}"
        );
    }
}
