//! What is on disk: no plaintext and no DEK anywhere in the data directory or
//! the logs, and stored rows that are bound to their place.

mod common;

use std::path::Path;

use base64::Engine as _;
use common::*;
use strongroom_crypto::SecretContext;
use strongroom_kms::root_key::RootKey;
use strongroom_kms::soft::SoftProvider;
use strongroom_kms::{KekRef, KeyProvider, WrappedDek};

fn db(data_dir: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(data_dir.join("strongroom.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    // Enforced, as the previous driver (with its defaults) did.
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    conn
}

/// Unwraps every stored DEK with the file provider, as only the server should.
async fn all_deks(data_dir: &Path) -> Vec<Vec<u8>> {
    let (root, created) = RootKey::load_or_create(None, &data_dir.join("root.key")).unwrap();
    assert!(!created);
    let kms = SoftProvider::open_file(data_dir.join("keyring.sealed"), root).unwrap();
    let conn = db(data_dir);
    let rows: Vec<(String, String, i64, Vec<u8>, i64, String)> = conn
        .prepare(
            "SELECT v.vault_id, v.path, v.version, v.wrapped_dek, v.kek_version, k.kek_ref
             FROM secret_versions v JOIN vaults k ON k.id = v.vault_id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get("vault_id")?,
                r.get("path")?,
                r.get("version")?,
                r.get("wrapped_dek")?,
                r.get("kek_version")?,
                r.get("kek_ref")?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = vec![];
    for (vault_id, path, version, wrapped_dek, kek_version, kek_ref) in rows {
        let wrapped = WrappedDek {
            kek_version: kek_version as u32,
            blob: wrapped_dek,
        };
        let path = strongroom_core::SecretPath::parse(&path).unwrap();
        let aad = SecretContext {
            vault: vault_id.parse().unwrap(),
            path: &path,
            version: version as u32,
        }
        .dek_wrap_aad();
        let dek = kms.unwrap(&KekRef(kek_ref), &wrapped, &aad).await.unwrap();
        out.push(dek.expose().to_vec());
    }
    drop(conn);
    out
}

fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    vec![
        secret.to_vec(),
        hex::encode(secret).into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(secret)
            .into_bytes(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(secret)
            .into_bytes(),
    ]
}

fn assert_absent(what: &str, needle: &[u8], files: &[(std::path::PathBuf, Vec<u8>)], logs: &str) {
    for form in forms(needle) {
        for (p, bytes) in files {
            assert!(!contains(bytes, &form), "{what} found in {}", p.display());
        }
        assert!(
            !contains(logs.as_bytes(), &form),
            "{what} found in the logs"
        );
    }
}

#[tokio::test]
async fn no_plaintext_or_dek_at_rest_or_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("v").await;
    let plaintexts: Vec<String> = (0..20)
        .map(|i| format!("PLAINTEXT-CANARY-{i:02}-{}", uuid::Uuid::new_v4().simple()))
        .collect();
    for (i, p) in plaintexts.iter().enumerate() {
        api.put_secret(&vault, &format!("canary/{i}"), p).await;
        // A second version of each, and a read, so every code path has run.
        api.put_secret(&vault, &format!("canary/{i}"), &format!("{p}-v2"))
            .await;
        assert_eq!(
            api.get_secret(&vault, &format!("canary/{i}"))
                .await
                .expect(200)["value"],
            format!("{p}-v2")
        );
    }
    // Bad requests too: a value in a wrongly typed field must not be echoed or logged.
    api.put(
        &format!("/v1/vaults/{vault}/secrets/canary/x"),
        serde_json::json!({"value": "v", "max_access_count": plaintexts[0]}),
    )
    .await
    .expect_problem(400);

    // While running: the WAL holds the recent writes.
    let running_files = read_tree(dir.path());
    assert!(
        running_files
            .iter()
            .any(|(p, _)| p.to_string_lossy().ends_with("-wal")),
        "expected a WAL while running"
    );
    let (status, logs) = server.stop();
    assert!(status.success());
    let mut files = running_files;
    files.extend(read_tree(dir.path()));

    let deks = all_deks(dir.path()).await;
    assert_eq!(deks.len(), 40);
    for p in &plaintexts {
        assert_absent("a plaintext", p.as_bytes(), &files, &logs);
    }
    for d in &deks {
        assert_absent("a DEK", d, &files, &logs);
    }
    // The password and the token are not there either.
    assert_absent("the password", PASSWORD.as_bytes(), &files, &logs);
    assert_absent(
        "the access token",
        api.token.as_ref().unwrap().as_bytes(),
        &files,
        &logs,
    );

    // A copy of the database alone decrypts nothing: without the keyring and
    // root key there is no key material in it at all.
    let db_bytes = std::fs::read(dir.path().join("strongroom.db")).unwrap();
    let root = std::fs::read_to_string(dir.path().join("root.key")).unwrap();
    assert!(!contains(&db_bytes, root.trim().as_bytes()));
    assert!(!contains(&db_bytes, &hex::decode(root.trim()).unwrap()));
}

#[tokio::test]
async fn copied_rows_fail_with_an_opaque_integrity_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let v1 = api.create_vault("one").await;
    let v2 = api.create_vault("two").await;
    api.put_secret(&v1, "source", "SOURCE-VALUE-1").await;
    api.put_secret(&v1, "source", "SOURCE-VALUE-2").await;
    api.put_secret(&v1, "other/path", "victim-path").await;
    api.put_secret(&v2, "source", "victim-vault").await;

    let conn = db(dir.path());
    let copy = |target_vault: String,
                target_path: &'static str,
                target_version: i64,
                source_version: i64| {
        let n = conn
            .execute(
                "UPDATE secret_versions SET
                   ciphertext = (SELECT ciphertext FROM secret_versions WHERE vault_id = ?1 AND path = 'source' AND version = ?2),
                   iv = (SELECT iv FROM secret_versions WHERE vault_id = ?1 AND path = 'source' AND version = ?2),
                   auth_tag = (SELECT auth_tag FROM secret_versions WHERE vault_id = ?1 AND path = 'source' AND version = ?2),
                   wrapped_dek = (SELECT wrapped_dek FROM secret_versions WHERE vault_id = ?1 AND path = 'source' AND version = ?2),
                   kek_version = (SELECT kek_version FROM secret_versions WHERE vault_id = ?1 AND path = 'source' AND version = ?2)
                 WHERE vault_id = ?3 AND path = ?4 AND version = ?5",
                rusqlite::params![&v1, source_version, &target_vault, target_path, target_version],
            )
            .unwrap();
        assert_eq!(n, 1);
    };

    // Another path in the same vault.
    copy(v1.clone(), "other/path", 1, 2);
    // Another vault, same path.
    copy(v2.clone(), "source", 1, 2);
    // Another version of the same path: version 2's row put in version 1's place.
    copy(v1.clone(), "source", 1, 2);

    for (vault, path) in [(&v1, "other/path"), (&v2, "source")] {
        let r = api.get_secret(vault, path).await;
        assert!(
            !r.text.contains("SOURCE-VALUE"),
            "a copied row leaked its value: {}",
            r.text
        );
        let p = r.expect_problem(500);
        assert_eq!(p["type"], "urn:strongroom:problem:integrity");
        assert_eq!(p["detail"], "stored data failed its integrity check");
    }
    let r = api
        .get(&format!("/v1/vaults/{v1}/secret-version/source/1"))
        .await;
    assert!(!r.text.contains("SOURCE-VALUE"), "{}", r.text);
    r.expect_problem(500);
    // The untouched version still reads.
    assert_eq!(
        api.get_secret(&v1, "source").await.expect(200)["value"],
        "SOURCE-VALUE-2"
    );

    // Flipping one bit of a ciphertext, or of a wrapped DEK, fails the same way.
    api.put_secret(&v1, "flip/ct", "flip-me").await;
    api.put_secret(&v1, "flip/dek", "flip-me-too").await;
    for (path, col) in [("flip/ct", "ciphertext"), ("flip/dek", "wrapped_dek")] {
        let sql = format!(
            "UPDATE secret_versions SET {col} = CAST(substr({col}, 1, 3)
               || CASE WHEN substr({col}, 4, 1) = x'FF' THEN x'00' ELSE x'FF' END || substr({col}, 5) AS BLOB) WHERE path = ?"
        );
        conn.execute(&sql, [path]).unwrap();
        let r = api.get_secret(&v1, path).await;
        assert!(!r.text.contains("flip-me"), "{}", r.text);
        let p = r.expect_problem(500);
        assert_eq!(p["type"], "urn:strongroom:problem:integrity", "{col}");
    }
    // The server keeps serving, and the owner can see what happened where.
    api.get("/v1/health").await.expect(200);
    let failures = api
        .get("/v1/audit/events?action=secret.integrity_failure&limit=100")
        .await
        .expect(200);
    let paths: Vec<&str> = failures["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["details"]["path"].as_str().unwrap())
        .collect();
    for p in ["other/path", "source", "flip/ct", "flip/dek"] {
        assert!(
            paths.contains(&p),
            "no integrity failure recorded for {p}: {failures}"
        );
    }
    drop(conn);
    let (_, logs) = server.stop();
    assert!(
        logs.contains("integrity check"),
        "integrity failures are logged"
    );
}
