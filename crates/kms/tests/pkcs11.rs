//! The `pkcs11` provider against a real SoftHSM2 token, created by the tests.
//!
//! Needs `softhsm2` installed (Debian: `apt-get install -y softhsm2`). All
//! tests share one process, one PKCS#11 context and one token. Tests that go
//! only through providers hold the fixture's gate shared and run side by side
//! (the provider orders their calls itself); tests that take the token away,
//! or look at it through a raw session of their own, which the providers'
//! ordering doesn't cover (SoftHSM2 may fail an object's creation while
//! another thread reads the token), hold it exclusively.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use strongroom_core::VaultId;
use strongroom_crypto::Dek;
use strongroom_kms::pkcs11::{
    BLOB_LEN, DEFAULT_MODULE, Pkcs11Config, Pkcs11Provider, kek_label, kek_object_id,
};
use strongroom_kms::{KekRef, KeyProvider, KmsError, ProviderHealth, WrappedDek, kid_for};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

const LABEL: &str = "strongroom-test";
const PIN: &str = "1234";

struct Fixture {
    tokens: PathBuf,
    /// Shared by tests that use the token, exclusive for the outage test.
    gate: RwLock<()>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // Statics are never dropped, so a TempDir would leak: use a per-process
        // directory under cargo's scratch space and sweep those of dead runs.
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        sweep_stale_dirs(root);
        let dir = root.join(format!("{DIR_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        // SAFETY: set once, inside the OnceLock, before any PKCS#11 context
        // exists (every test reaches the module through this fixture), and
        // nothing else in this test binary reads or writes the environment
        // concurrently.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("SOFTHSM2_CONF", &conf)
        };
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", LABEL])
            .args(["--pin", PIN, "--so-pin", "5678"])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "softhsm2-util could not be run ({e}): install softhsm2 \
                     (Debian/Ubuntu: apt-get install -y softhsm2)"
                )
            });
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Fixture {
            tokens,
            gate: RwLock::new(()),
        }
    })
}

const DIR_PREFIX: &str = "softhsm-pkcs11-test-";

/// Removes the token directories of earlier test processes that have exited.
fn sweep_stale_dirs(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

async fn shared() -> RwLockReadGuard<'static, ()> {
    fixture().gate.read().await
}

async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    fixture().gate.write().await
}

fn config() -> Pkcs11Config {
    serde_json::from_value(serde_json::json!({
        "token_label": LABEL,
        "pin": PIN,
    }))
    .unwrap()
}

fn open() -> Pkcs11Provider {
    fixture();
    Pkcs11Provider::open(config()).expect("open the pkcs11 provider")
}

/// A session of our own on the token, through a separate cryptoki context
/// (the library is initialised once per process; "already initialised" and
/// "already logged in" are expected).
fn raw_session() -> Session {
    fixture();
    let ctx = Pkcs11::new(DEFAULT_MODULE).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).is_ok_and(|i| i.label() == LABEL))
        .expect("the test token");
    let s = ctx.open_ro_session(slot).unwrap();
    match s.login(UserType::User, Some(&AuthPin::new(PIN.into()))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("C_Login: {e}"),
    }
    s
}

fn find_by_label(s: &Session, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .unwrap()
}

fn aad(n: u8) -> Vec<u8> {
    format!("strongroom/dek-wrap/test/{n}").into_bytes()
}

#[tokio::test]
async fn wrap_unwrap_round_trip_and_failing_closed() {
    let _g = shared().await;
    let p = open();
    assert_eq!(p.name(), "pkcs11");
    let vault = VaultId::new();
    let kek = p.create_kek(&vault).await.unwrap();
    let suffix = kek
        .0
        .strip_prefix(&format!("vault-{vault}-"))
        .expect("id names the vault");
    assert!(suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_hexdigit()));

    let dek = Dek::generate();
    let w = p.wrap(&kek, &dek, &aad(1)).await.unwrap();
    assert_eq!(w.kek_version, 1);
    assert_eq!(w.blob.len(), BLOB_LEN);
    assert!(!w.blob.windows(32).any(|win| win == dek.expose()));
    let back = p.unwrap(&kek, &w, &aad(1)).await.unwrap();
    assert_eq!(back.expose(), dek.expose());

    // Fresh IV every time.
    let w2 = p.wrap(&kek, &dek, &aad(1)).await.unwrap();
    assert_ne!(w.blob[..12], w2.blob[..12]);
    assert_ne!(w.blob, w2.blob);

    // Wrong AAD, and a flipped bit in the IV, the ciphertext and the tag.
    assert!(matches!(
        p.unwrap(&kek, &w, &aad(2)).await,
        Err(KmsError::Integrity)
    ));
    assert!(matches!(
        p.unwrap(&kek, &w, b"").await,
        Err(KmsError::Integrity)
    ));
    for i in [0, 11, 12, 43, 44, 59] {
        let mut bad = w.clone();
        bad.blob[i] ^= 0x01;
        assert!(
            matches!(
                p.unwrap(&kek, &bad, &aad(1)).await,
                Err(KmsError::Integrity)
            ),
            "flipped byte {i}"
        );
    }
    let mut short = w.clone();
    short.blob.pop();
    assert!(matches!(
        p.unwrap(&kek, &short, &aad(1)).await,
        Err(KmsError::Integrity)
    ));

    // A version that does not exist, another KEK, a made-up id.
    let mut v2 = w.clone();
    v2.kek_version = 2;
    assert!(matches!(
        p.unwrap(&kek, &v2, &aad(1)).await,
        Err(KmsError::KeyNotFound)
    ));
    let mut v0 = w.clone();
    v0.kek_version = 0;
    assert!(matches!(
        p.unwrap(&kek, &v0, &aad(1)).await,
        Err(KmsError::KeyNotFound)
    ));
    let other = p.create_kek(&vault).await.unwrap();
    assert_ne!(other, kek);
    assert!(matches!(
        p.unwrap(&other, &w, &aad(1)).await,
        Err(KmsError::Integrity)
    ));
    let nobody = KekRef(format!("vault-{}-00000000", VaultId::new()));
    assert!(matches!(
        p.wrap(&nobody, &dek, &aad(1)).await,
        Err(KmsError::KeyNotFound)
    ));
    assert!(matches!(
        p.unwrap(&KekRef("not:an-id".into()), &w, &aad(1)).await,
        Err(KmsError::KeyNotFound)
    ));

    // The session survives failures: still works afterwards.
    assert_eq!(
        p.unwrap(&kek, &w2, &aad(1)).await.unwrap().expose(),
        dek.expose()
    );
    assert_eq!(p.health().await, ProviderHealth::Healthy);
}

#[tokio::test]
async fn rotation_wraps_with_the_newest_version_and_keeps_the_old() {
    let _g = exclusive().await;
    let p = open();
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let dek = Dek::generate();
    let w1 = p.wrap(&kek, &dek, &aad(1)).await.unwrap();
    assert_eq!(p.rotate_kek(&kek).await.unwrap(), 2);
    let w2 = p.wrap(&kek, &dek, &aad(1)).await.unwrap();
    assert_eq!(w2.kek_version, 2);
    assert_eq!(
        p.unwrap(&kek, &w1, &aad(1)).await.unwrap().expose(),
        dek.expose()
    );
    assert_eq!(
        p.unwrap(&kek, &w2, &aad(1)).await.unwrap().expose(),
        dek.expose()
    );
    // A v1 blob presented as v2 (and the reverse) is opened with the wrong key.
    let mut lying = w1.clone();
    lying.kek_version = 2;
    assert!(matches!(
        p.unwrap(&kek, &lying, &aad(1)).await,
        Err(KmsError::Integrity)
    ));
    let mut lying = w2.clone();
    lying.kek_version = 1;
    assert!(matches!(
        p.unwrap(&kek, &lying, &aad(1)).await,
        Err(KmsError::Integrity)
    ));
    assert_eq!(p.rotate_kek(&kek).await.unwrap(), 3);
    assert_eq!(p.wrap(&kek, &dek, &aad(1)).await.unwrap().kek_version, 3);

    // Each version is its own token object.
    let s = raw_session();
    for v in 1..=3 {
        assert_eq!(find_by_label(&s, &kek_label(&kek.0, v)).len(), 1, "v{v}");
    }
    // A second provider (e.g. after a restart) sees all versions.
    let q = open();
    assert_eq!(q.wrap(&kek, &dek, &aad(1)).await.unwrap().kek_version, 3);
    assert_eq!(
        q.unwrap(&kek, &w1, &aad(1)).await.unwrap().expose(),
        dek.expose()
    );
}

#[tokio::test]
async fn destroy_shreds_every_version() {
    let _g = exclusive().await;
    let p = open();
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let dek = Dek::generate();
    let w1 = p.wrap(&kek, &dek, &aad(1)).await.unwrap();
    p.rotate_kek(&kek).await.unwrap();
    let w2 = p.wrap(&kek, &dek, &aad(1)).await.unwrap();
    let s = raw_session();
    assert_eq!(
        s.find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Id(kek_object_id(&kek.0)),
        ])
        .unwrap()
        .len(),
        2
    );

    p.destroy_kek(&kek).await.unwrap();
    for w in [&w1, &w2] {
        assert!(matches!(
            p.unwrap(&kek, w, &aad(1)).await,
            Err(KmsError::KeyNotFound)
        ));
    }
    assert!(matches!(
        p.wrap(&kek, &dek, &aad(1)).await,
        Err(KmsError::KeyNotFound)
    ));
    assert!(matches!(
        p.rotate_kek(&kek).await,
        Err(KmsError::KeyNotFound)
    ));
    assert!(matches!(
        p.destroy_kek(&kek).await,
        Err(KmsError::KeyNotFound)
    ));
    // The token no longer holds them.
    for v in 1..=2 {
        assert!(find_by_label(&s, &kek_label(&kek.0, v)).is_empty());
    }
    assert!(
        s.find_objects(&[Attribute::Id(kek_object_id(&kek.0))])
            .unwrap()
            .is_empty()
    );
    // Nor does another provider find them.
    let q = open();
    assert!(matches!(
        q.unwrap(&kek, &w1, &aad(1)).await,
        Err(KmsError::KeyNotFound)
    ));
}

fn bool_attr(attrs: &[Attribute], want: AttributeType) -> Option<bool> {
    attrs.iter().find_map(|a| match (a, want) {
        (Attribute::Sensitive(b), AttributeType::Sensitive)
        | (Attribute::Extractable(b), AttributeType::Extractable)
        | (Attribute::NeverExtractable(b), AttributeType::NeverExtractable)
        | (Attribute::AlwaysSensitive(b), AttributeType::AlwaysSensitive)
        | (Attribute::Token(b), AttributeType::Token)
        | (Attribute::Private(b), AttributeType::Private)
        | (Attribute::Encrypt(b), AttributeType::Encrypt)
        | (Attribute::Decrypt(b), AttributeType::Decrypt)
        | (Attribute::Wrap(b), AttributeType::Wrap) => Some(*b),
        _ => None,
    })
}

fn assert_value_unreadable(s: &Session, h: ObjectHandle) {
    match s.get_attributes(h, &[AttributeType::Value]) {
        // cryptoki 0.12 answers a sensitive attribute with an empty list.
        Ok(attrs) => assert!(
            !attrs.iter().any(|a| matches!(a, Attribute::Value(_))),
            "CKA_VALUE was readable"
        ),
        Err(CkError::Pkcs11(RvError::AttributeSensitive, _)) => {}
        Err(e) => panic!("unexpected error reading CKA_VALUE: {e}"),
    }
}

#[tokio::test]
async fn keys_are_sensitive_non_extractable_token_objects() {
    let _g = exclusive().await;
    let p = open();
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let s = raw_session();
    let found = find_by_label(&s, &kek_label(&kek.0, 1));
    assert_eq!(found.len(), 1);
    let h = found[0];
    assert_value_unreadable(&s, h);
    let attrs = s
        .get_attributes(
            h,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::AlwaysSensitive,
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
                AttributeType::Wrap,
                AttributeType::ValueLen,
            ],
        )
        .unwrap();
    assert_eq!(bool_attr(&attrs, AttributeType::Sensitive), Some(true));
    assert_eq!(bool_attr(&attrs, AttributeType::Extractable), Some(false));
    assert_eq!(
        bool_attr(&attrs, AttributeType::NeverExtractable),
        Some(true)
    );
    assert_eq!(
        bool_attr(&attrs, AttributeType::AlwaysSensitive),
        Some(true)
    );
    assert_eq!(bool_attr(&attrs, AttributeType::Token), Some(true));
    assert_eq!(bool_attr(&attrs, AttributeType::Private), Some(true));
    assert_eq!(bool_attr(&attrs, AttributeType::Encrypt), Some(true));
    assert_eq!(bool_attr(&attrs, AttributeType::Decrypt), Some(true));
    assert_eq!(bool_attr(&attrs, AttributeType::Wrap), Some(false));
    assert!(attrs.contains(&Attribute::ValueLen(32u64.into())));

    // The signing key's private half is just as closed.
    let privs = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(b"strongroom-jwt".to_vec()),
        ])
        .unwrap();
    assert_eq!(privs.len(), 1);
    assert_value_unreadable(&s, privs[0]);
    let attrs = s
        .get_attributes(
            privs[0],
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::Token,
            ],
        )
        .unwrap();
    assert_eq!(bool_attr(&attrs, AttributeType::Sensitive), Some(true));
    assert_eq!(bool_attr(&attrs, AttributeType::Extractable), Some(false));
    assert_eq!(
        bool_attr(&attrs, AttributeType::NeverExtractable),
        Some(true)
    );
    assert_eq!(bool_attr(&attrs, AttributeType::Token), Some(true));
}

#[tokio::test]
async fn keys_survive_reopening_the_provider() {
    let _g = shared().await;
    let dek = Dek::generate();
    let (kek, w, public) = {
        let p = open();
        let kek = p.create_kek(&VaultId::new()).await.unwrap();
        let w = p.wrap(&kek, &dek, &aad(7)).await.unwrap();
        (kek, w, p.signing_public_key())
    };
    // The provider (and its sessions) are gone; a new one finds everything by label.
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let mut cfg = Pkcs11Config::new(LABEL);
    cfg.pin_file = Some(pin_file);
    let q = Pkcs11Provider::open(cfg).unwrap();
    assert_eq!(q.signing_public_key(), public);
    assert_eq!(
        q.unwrap(&kek, &w, &aad(7)).await.unwrap().expose(),
        dek.expose()
    );
    let sig = q.sign(b"after restart").await.unwrap();
    UnparsedPublicKey::new(&ED25519, public.ed25519)
        .verify(b"after restart", &sig)
        .unwrap();
}

#[tokio::test]
async fn signatures_verify_with_the_published_key() {
    let _g = exclusive().await;
    let p = open();
    let pk = p.signing_public_key();
    assert_eq!(pk.kid, kid_for(&pk.ed25519));
    let msg = b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZ2VudDp4In0";
    let sig = p.sign(msg).await.unwrap();
    assert_eq!(sig.len(), 64);
    let key = UnparsedPublicKey::new(&ED25519, pk.ed25519);
    key.verify(msg, &sig).unwrap();
    let mut flipped = msg.to_vec();
    flipped[3] ^= 1;
    assert!(key.verify(&flipped, &sig).is_err());
    let mut bad_sig = sig.clone();
    bad_sig[10] ^= 1;
    assert!(key.verify(msg, &bad_sig).is_err());
    // Exactly one signing key pair on the token, however many providers opened it.
    let s = raw_session();
    assert_eq!(find_by_label(&s, "strongroom-jwt").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_share_the_session_pool() {
    let _g = shared().await;
    let p = std::sync::Arc::new(open());
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..32u8 {
        let (p, kek) = (p.clone(), kek.clone());
        tasks.push(tokio::spawn(async move {
            let dek = Dek::generate();
            for _ in 0..10 {
                let w = p.wrap(&kek, &dek, &aad(i)).await.unwrap();
                let back = p.unwrap(&kek, &w, &aad(i)).await.unwrap();
                assert_eq!(back.expose(), dek.expose());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// A vault created, rotated or deleted while another provider of the process
/// looks keys up, wraps, unwraps and signs: every call succeeds. (SoftHSM2
/// fails an object's creation beside a `C_FindObjects` of its process, most
/// runs of this test, unless the provider orders them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_changes_beside_busy_providers_never_fail() {
    let _g = shared().await;
    let busy = std::sync::Arc::new(open());
    let kek = busy.create_kek(&VaultId::new()).await.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut users = Vec::new();
    for i in 0..4u8 {
        let (p, kek, stop) = (busy.clone(), kek.clone(), stop.clone());
        users.push(tokio::spawn(async move {
            let dek = Dek::generate();
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let w = p.wrap(&kek, &dek, &aad(i)).await.unwrap();
                assert_eq!(
                    p.unwrap(&kek, &w, &aad(i)).await.unwrap().expose(),
                    dek.expose()
                );
                p.sign(b"busy").await.unwrap();
                // A KEK this provider hasn't cached: looked up on the token.
                let unknown = KekRef(format!("vault-{}-00000000", VaultId::new()));
                assert!(matches!(
                    p.unwrap(&unknown, &w, &aad(i)).await,
                    Err(KmsError::KeyNotFound)
                ));
                n += 1;
            }
            n
        }));
    }
    let admin = open();
    for _ in 0..40 {
        let k = admin.create_kek(&VaultId::new()).await.unwrap();
        admin.rotate_kek(&k).await.unwrap();
        admin.destroy_kek(&k).await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for u in users {
        assert!(u.await.unwrap() > 0, "every user got calls through");
    }
}

/// Moves the token directory away; puts it back when dropped (even on panic).
struct TokenAway<'a> {
    tokens: &'a Path,
    away: PathBuf,
    moved: bool,
}

impl<'a> TokenAway<'a> {
    fn new(tokens: &'a Path) -> Self {
        let away = tokens.with_extension("away");
        std::fs::rename(tokens, &away).unwrap();
        TokenAway {
            tokens,
            away,
            moved: true,
        }
    }
    fn put_back(&mut self) {
        if self.moved {
            std::fs::rename(&self.away, self.tokens).unwrap();
            self.moved = false;
        }
    }
}

impl Drop for TokenAway<'_> {
    fn drop(&mut self) {
        self.put_back();
    }
}

fn unavailable<T>(r: &Result<T, KmsError>) -> bool {
    matches!(r, Err(KmsError::Unavailable(_)))
}

#[tokio::test]
async fn token_loss_is_unavailable_and_service_resumes_without_reopening() {
    let _g = exclusive().await;
    let fx = fixture();
    let p = open();
    // Another provider, idle during the outage: it must recover too.
    let bystander = open();
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let dek = Dek::generate();
    let w = p.wrap(&kek, &dek, &aad(1)).await.unwrap();
    let public = p.signing_public_key();
    assert_eq!(p.health().await, ProviderHealth::Healthy);

    let mut away = TokenAway::new(&fx.tokens);
    // Cached handles, a pooled session: still every call must say Unavailable,
    // never KeyNotFound (which would read as "destroyed") nor Integrity.
    let r = p.wrap(&kek, &dek, &aad(1)).await;
    assert!(unavailable(&r), "wrap: {r:?}");
    let r = p.unwrap(&kek, &w, &aad(1)).await;
    assert!(unavailable(&r), "unwrap: {r:?}");
    let r = p.sign(b"x").await;
    assert!(unavailable(&r), "sign: {r:?}");
    let r = p.create_kek(&VaultId::new()).await;
    assert!(unavailable(&r), "create_kek: {r:?}");
    let r = p.rotate_kek(&kek).await;
    assert!(unavailable(&r), "rotate_kek: {r:?}");
    let r = p.destroy_kek(&kek).await;
    assert!(unavailable(&r), "destroy_kek: {r:?}");
    let r = bystander.unwrap(&kek, &w, &aad(1)).await;
    assert!(unavailable(&r), "bystander: {r:?}");
    assert!(matches!(p.health().await, ProviderHealth::Unavailable(_)));
    // It stays unavailable across the rescan interval.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(matches!(p.health().await, ProviderHealth::Unavailable(_)));
    let r = p.unwrap(&kek, &w, &aad(1)).await;
    assert!(unavailable(&r), "unwrap later: {r:?}");

    away.put_back();
    let start = Instant::now();
    loop {
        match p.health().await {
            ProviderHealth::Healthy => break,
            h if start.elapsed() > Duration::from_secs(5) => {
                panic!("no recovery 5 s after the token came back: {h:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    // Same provider, no re-open: old blobs unwrap, new wraps work, the key is the same.
    assert_eq!(
        p.unwrap(&kek, &w, &aad(1)).await.unwrap().expose(),
        dek.expose()
    );
    let w2 = p.wrap(&kek, &dek, &aad(1)).await.unwrap();
    assert_eq!(
        p.unwrap(&kek, &w2, &aad(1)).await.unwrap().expose(),
        dek.expose()
    );
    assert_eq!(p.rotate_kek(&kek).await.unwrap(), 2);
    let sig = p.sign(b"back").await.unwrap();
    assert_eq!(p.signing_public_key(), public);
    UnparsedPublicKey::new(&ED25519, public.ed25519)
        .verify(b"back", &sig)
        .unwrap();
    // The idle provider resumes too.
    assert_eq!(
        bystander.unwrap(&kek, &w, &aad(1)).await.unwrap().expose(),
        dek.expose()
    );
    assert_eq!(bystander.health().await, ProviderHealth::Healthy);
}

#[tokio::test]
async fn opening_an_absent_token_is_unavailable_and_the_pin_is_never_shown() {
    // Exclusive: looking for a missing token rescans (re-initialises) the
    // module, which would cut the raw sessions other tests hold.
    let _g = exclusive().await;
    let mut cfg = config();
    cfg.token_label = "no-such-token".into();
    let err = Pkcs11Provider::open(cfg).unwrap_err();
    assert!(matches!(err, KmsError::Unavailable(_)), "{err:?}");
    let shown = format!("{:?} {err}", config());
    assert!(!shown.contains(PIN), "{shown}");
    let p = open();
    assert!(!format!("{p:?}").contains(PIN));
}

/// A rough throughput figure (run with
/// `cargo test --release -p strongroom-kms --test pkcs11 -- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    let _g = shared().await;
    let p = open();
    let kek = p.create_kek(&VaultId::new()).await.unwrap();
    let dek = std::sync::Arc::new(Dek::generate());
    let n = 5000;
    let start = Instant::now();
    let mut ws: Vec<WrappedDek> = Vec::with_capacity(n);
    for _ in 0..n {
        ws.push(p.wrap(&kek, &dek, &aad(1)).await.unwrap());
    }
    let wrap = start.elapsed();
    let start = Instant::now();
    for w in &ws {
        p.unwrap(&kek, w, &aad(1)).await.unwrap();
    }
    let unwrap = start.elapsed();
    let start = Instant::now();
    for _ in 0..1000 {
        p.sign(b"header.payload").await.unwrap();
    }
    let sign = start.elapsed();
    let start = Instant::now();
    for _ in 0..n {
        tokio::task::spawn_blocking(|| ()).await.unwrap();
    }
    let hop = start.elapsed();
    println!(
        "pkcs11/SoftHSM2, one caller: wrap {:.0}/s, unwrap {:.0}/s, sign {:.0}/s \
         (a bare spawn_blocking round trip: {:.1} µs)",
        n as f64 / wrap.as_secs_f64(),
        n as f64 / unwrap.as_secs_f64(),
        1000.0 / sign.as_secs_f64(),
        hop.as_secs_f64() * 1e6 / n as f64
    );
    // Many callers: the pool keeps `sessions` (2) calls in flight.
    let p = std::sync::Arc::new(p);
    let start = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (p, kek, dek) = (p.clone(), kek.clone(), dek.clone());
            tokio::spawn(async move {
                for _ in 0..500 {
                    let w = p.wrap(&kek, &dek, &aad(1)).await.unwrap();
                    p.unwrap(&kek, &w, &aad(1)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "pkcs11/SoftHSM2, 16 callers: {:.0} wrap+unwrap pairs/s",
        8000.0 / start.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn keeps_the_key_provider_contract() {
    let _g = shared().await;
    strongroom_kms::contract::assert_all_pass(&open()).await;
}

#[tokio::test]
async fn keeps_the_key_provider_contract_behind_the_decorators() {
    let _g = shared().await;
    let cfg = strongroom_kms::cache::DekCacheConfig {
        ttl: std::time::Duration::from_secs(60),
        max_entries: 100,
        max_uses: 100,
    };
    let metered: Box<dyn KeyProvider> = Box::new(strongroom_kms::Metered(Box::new(open())));
    let cache = strongroom_kms::cache::DekCache::new(metered, cfg).unwrap();
    strongroom_kms::contract::assert_all_pass(&cache).await;
}
