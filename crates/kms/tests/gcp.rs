//! The `gcp` provider, with Google's real client, against an in-repo stand-in
//! for the Cloud KMS REST API (axum on 127.0.0.1): `support/gcp_standin.rs`,
//! which also runs the end-to-end API flow of the `strongroom` binary
//! (`crates/cli/tests/api_flow.rs`). Each test can inject faults.
#![cfg(feature = "gcp")]

#[path = "support/gcp_standin.rs"]
mod gcp_standin;

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use gcp_standin::{
    DESTROY_SCHEDULED, ENCRYPT_DECRYPT, Fake, Fault, GOOGLE_SYMMETRIC_ENCRYPTION, crc,
};
use serde_json::json;
use strongroom_core::VaultId;
use strongroom_crypto::Dek;
use strongroom_kms::gcp::{GcpConfig, GcpKmsProvider, GcpProtectionLevel};
use strongroom_kms::{KekRef, KeyProvider, KmsError, ProviderHealth, kid_for};

const RING: &str = "projects/test-project/locations/global/keyRings/strongroom";
const SIGNING: &str =
    "projects/test-project/locations/global/keyRings/strongroom/cryptoKeys/jwt/cryptoKeyVersions/1";

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

/// The stand-in with the ring `RING` and the signing key version `SIGNING`.
async fn start() -> (Arc<Fake>, String) {
    let (fake, endpoint) = gcp_standin::start().await;
    let ring = fake.create_key_ring("test-project", "global", "strongroom");
    assert_eq!(ring, RING);
    assert_eq!(fake.create_signing_key(&ring, "jwt"), SIGNING);
    (fake, endpoint)
}

async fn setup() -> (Arc<Fake>, GcpKmsProvider) {
    let (fake, endpoint) = start().await;
    let p = connect(config(&endpoint)).await.unwrap();
    (fake, p)
}

fn internal_message(r: Result<impl std::fmt::Debug, KmsError>) -> String {
    match r {
        Err(KmsError::Internal(m)) => m.to_string(),
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
    assert_eq!(pk.ed25519, fake.public_key(SIGNING));
    assert_eq!(pk.kid, kid_for(&fake.public_key(SIGNING)));
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

/// Cloud KMS finds the key version from its own ciphertext and ignores the
/// version Strongroom records beside it, so a blob presented as another
/// version of its KEK still unwraps (to the right DEK, under the right AAD).
/// The recorded version only steers rewrapping; a row whose recorded version
/// was altered could escape a rewrap and break when the old version is
/// destroyed. A known deviation from the trait's "fails closed on any
/// mismatch of version", kept visible here.
const GCP_KNOWN_DEVIATIONS: &[&str] = &["wrong_version_fails_closed"];

#[test]
fn the_deviation_is_declared_where_kms_check_finds_it() {
    assert_eq!(
        strongroom_kms::contract::known_deviations("gcp"),
        GCP_KNOWN_DEVIATIONS
    );
}

#[tokio::test]
async fn keeps_the_key_provider_contract() {
    let (_fake, p) = setup().await;
    strongroom_kms::contract::assert_all_pass_except(&p, GCP_KNOWN_DEVIATIONS).await;
}

#[tokio::test]
async fn keeps_the_key_provider_contract_behind_the_decorators() {
    let (_fake, p) = setup().await;
    let cfg = strongroom_kms::cache::DekCacheConfig {
        ttl: Duration::from_secs(60),
        max_entries: 100,
        max_uses: 100,
    };
    let metered: Box<dyn KeyProvider> = Box::new(strongroom_kms::Metered(Box::new(p)));
    let cache = strongroom_kms::cache::DekCache::new(metered, cfg).unwrap();
    strongroom_kms::contract::assert_all_pass_except(&cache, GCP_KNOWN_DEVIATIONS).await;
}
