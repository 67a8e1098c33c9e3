//! Runs the conformance suite against the SQLite store, plus what only
//! SQLite has (reopening a file, schema migrations).

use std::sync::Arc;

use strongroom_store::sqlite::SqliteStore;
use strongroom_store::{IdentityStore, SecretStore, Store, VaultKeyStore, conformance};

async fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    (dir, Arc::new(s))
}

strongroom_store::conformance_suite!(fresh());

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db.sqlite");
    let (org, owner) = {
        let s = SqliteStore::open(&p).await.unwrap();
        let r = conformance::org_and_owner(
            &s,
            "a@example.com",
            strongroom_store::SignupGate::FirstOnly,
        )
        .await
        .unwrap();
        s.close().await;
        r
    };
    let s = SqliteStore::open(&p).await.unwrap();
    assert_eq!(
        s.user_by_id(owner.id).await.unwrap().unwrap().org_id,
        org.id
    );
}

/// A database written by the first schema only (as a build before versioned
/// migrations left it), with data in it, is migrated at open and keeps its
/// data: users, vaults, secrets and their envelopes. A secret deleted under
/// the old schema has its versions deleted under the new one; its pending
/// invitation (no token: nobody could ever accept it) is dropped.
#[tokio::test]
async fn a_first_schema_database_migrates_and_keeps_its_data() {
    use strongroom_core::{OrgId, SecretId, SecretPath, UserId, VaultId};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db.sqlite");
    let (org, user, vault) = (OrgId::new(), UserId::new(), VaultId::new());
    let (live_id, gone_id) = (SecretId::new(), SecretId::new());
    // Earlier builds found the agent-keys vault by name: the oldest one.
    let (keys, impostor, agent) = (
        VaultId::new(),
        VaultId::new(),
        strongroom_core::AgentId::new(),
    );
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch(include_str!("../migrations/sqlite/0001_init.sql"))
            .unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute_batch(&format!(
            "INSERT INTO orgs VALUES ('{org}', 'acme', 1);
             INSERT INTO users VALUES ('{user}', '{org}', 'a@example.com', NULL, '$argon2id$fake', 'owner', 1);
             INSERT INTO vaults VALUES ('{vault}', '{org}', 'main', '', 'kek-1', 1, 'memory', NULL, 'user:{user}', 1);
             INSERT INTO secrets VALUES ('{live_id}', '{vault}', 'db/live', 1, NULL, 1, 1);
             INSERT INTO secrets VALUES ('{gone_id}', '{vault}', 'db/gone', 2, 5, 1, 5);
             INSERT INTO secret_versions VALUES ('{live_id}', 1, '{vault}', 'db/live', 'generic', '{{}}', NULL, NULL, 3, 0, 1,
                 x'0101', x'02', x'03', x'04', 'kek-1', 1, 'user:{user}', 1);
             INSERT INTO secret_versions VALUES ('{gone_id}', 1, '{vault}', 'db/gone', 'generic', '{{}}', NULL, NULL, 0, 0, 1,
                 x'11', x'12', x'13', x'14', 'kek-1', 1, 'user:{user}', 1);
             INSERT INTO secret_versions VALUES ('{gone_id}', 2, '{vault}', 'db/gone', 'generic', '{{}}', NULL, NULL, 0, 0, 1,
                 x'21', x'22', x'23', x'24', 'kek-1', 1, 'user:{user}', 2);
             INSERT INTO invitations VALUES ('b@example.com', '{org}', 'member', '{user}', 1);
             INSERT INTO vaults VALUES ('{keys}', '{org}', '__agent-keys', '', 'kek-2', 1, 'memory', NULL, 'user:{user}', 2);
             INSERT INTO vaults VALUES ('{impostor}', '{org}', '__agent-keys', '', 'kek-3', 1, 'memory', NULL, 'user:{user}', 3);
             INSERT INTO agents VALUES ('{agent}', '{org}', 'bot', '', 'api_key', '[]', '[]', NULL, NULL, NULL, 1,
                 'ocv_abcdefgh', x'00', NULL, NULL, '{{}}', 'user:{user}', 1, 1);"
        ))
        .unwrap();
    }
    let s = SqliteStore::open(&p).await.unwrap();
    let u = s.user_by_email("a@example.com").await.unwrap().unwrap();
    assert_eq!((u.id, u.org_id), (user, org));
    let v = s.vault(vault).await.unwrap().unwrap();
    assert_eq!((v.name.as_str(), v.kek_ref.as_str()), ("main", "kek-1"));
    let live = s
        .version(vault, &SecretPath::parse("db/live").unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    assert!(!live.deleted);
    assert_eq!(live.access_count, 3);
    assert_eq!(live.envelope.ciphertext, vec![1, 1]);
    assert_eq!(live.envelope.wrapped_dek, vec![4]);
    let gone = SecretPath::parse("db/gone").unwrap();
    for n in [1, 2] {
        assert!(
            s.version(vault, &gone, Some(n))
                .await
                .unwrap()
                .unwrap()
                .deleted
        );
    }
    assert!(s.secret_head(vault, &gone).await.unwrap().unwrap().deleted);
    let listed: Vec<String> = s
        .list_secrets(vault, "")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path.to_string())
        .collect();
    assert_eq!(listed, ["db/live"]);
    assert!(s.invitations("b@example.com").await.unwrap().is_empty());
    use strongroom_store::VaultKind;
    let system = s
        .system_vault(org, VaultKind::AgentKeys)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((system.id, system.created_by), (keys, None));
    let later = s.vault(impostor).await.unwrap().unwrap();
    assert_eq!(later.kind, VaultKind::Standard);
    assert_eq!(v.kind, VaultKind::Standard);
    assert_eq!(v.created_by, Some(strongroom_core::Subject::User(user)));
    assert_eq!(s.agent(agent).await.unwrap().unwrap().token_generation, 0);
    s.close().await;
    let c = rusqlite::Connection::open(&p).unwrap();
    let version: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert!(version >= 2, "user_version {version}");
    // Opening again is a no-op.
    drop(c);
    let s = SqliteStore::open(&p).await.unwrap();
    assert!(s.user_by_id(user).await.unwrap().is_some());
}

/// A database whose schema is newer than this build knows (written by a later
/// version) is refused at open, with an error that says so, and left as it was.
#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db.sqlite");
    let (_, owner) = {
        let s = SqliteStore::open(&p).await.unwrap();
        let r = conformance::org_and_owner(
            &s,
            "a@example.com",
            strongroom_store::SignupGate::FirstOnly,
        )
        .await
        .unwrap();
        s.close().await;
        r
    };
    let future = {
        let c = rusqlite::Connection::open(&p).unwrap();
        let current: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        c.pragma_update(None, "user_version", current + 1).unwrap();
        current + 1
    };
    let e = match SqliteStore::open(&p).await {
        Ok(_) => panic!("a database from a newer build was opened"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("newer"), "{e}");
    assert!(e.contains(&format!("schema version {future}")), "{e}");
    let c = rusqlite::Connection::open(&p).unwrap();
    let version: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, future);
    let email: String = c
        .query_row(
            "SELECT email FROM users WHERE id = ?",
            [owner.id.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(email, "a@example.com");
}

/// The errors under `e`, outermost first.
fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut next = e.source();
    while let Some(c) = next {
        out.push(c);
        next = c.source();
    }
    out
}

/// A store failure keeps SQLite's own error as its `source()`, on its way to
/// the log: the engine error's chain reaches the `rusqlite::Error`, and the
/// caller's message stays fixed.
#[tokio::test]
async fn a_store_failure_keeps_the_driver_error_as_its_source() {
    use strongroom_store::StoreError;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db.sqlite");
    let s = SqliteStore::open(&p).await.unwrap();
    // The database refuses storage (how an operator's guard, or the
    // fail-closed tests, make it fail): a trigger's RAISE.
    rusqlite::Connection::open(&p)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_events \
             BEGIN SELECT RAISE(ABORT, 'storage refused'); END",
        )
        .unwrap();
    let e = conformance::org_and_owner(&s, "a@example.com", strongroom_store::SignupGate::Open)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    let driver = std::error::Error::source(&e)
        .and_then(|c| c.downcast_ref::<rusqlite::Error>())
        .expect("the rusqlite::Error itself");
    assert!(driver.to_string().contains("storage refused"), "{driver}");

    let e = strongroom_core::Error::from(e);
    assert_eq!(e.to_string(), "the database is unavailable");
    let chain = causes(&e);
    assert!(chain[0].downcast_ref::<StoreError>().is_some(), "{chain:?}");
    assert!(
        chain
            .iter()
            .any(|c| c.downcast_ref::<rusqlite::Error>().is_some()),
        "{chain:?}"
    );
    // The log line has the store's words and SQLite's; the message, neither.
    let line = e.chain().to_string();
    assert!(
        line.starts_with("the database is unavailable: database unavailable: "),
        "{line}"
    );
    assert!(line.contains("storage refused"), "{line}");
    s.close().await;
}

/// A change the schema refuses is a `409` with a fixed message; SQLite's
/// error stays the store error's `source()`.
#[tokio::test]
async fn a_constraint_refusal_keeps_the_driver_error_as_its_source() {
    use strongroom_store::StoreError;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db.sqlite");
    let s = SqliteStore::open(&p).await.unwrap();
    rusqlite::Connection::open(&p)
        .unwrap()
        .execute_batch(
            "CREATE TABLE guard (x INTEGER NOT NULL CHECK (x > 0)); \
             CREATE TRIGGER refuse BEFORE INSERT ON audit_events \
             BEGIN INSERT INTO guard VALUES (0); END",
        )
        .unwrap();
    let e = conformance::org_and_owner(&s, "a@example.com", strongroom_store::SignupGate::Open)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Constraint(_)), "{e:?}");
    let driver = std::error::Error::source(&e)
        .and_then(|c| c.downcast_ref::<rusqlite::Error>())
        .expect("the rusqlite::Error itself");
    assert!(driver.to_string().contains("CHECK"), "{driver}");
    let e = strongroom_core::Error::from(e);
    assert_eq!(
        e.to_string(),
        "the change conflicts with the current state of related data"
    );
    assert_eq!(e.kind(), "conflict");
    s.close().await;
}
