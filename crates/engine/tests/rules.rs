//! Use-case rules, exercised through the engine's functions with no HTTP in
//! between: an engine over SQLite in a temporary directory, the memory key
//! provider and cheap password hashing. Each rule is checked from both sides —
//! what it refuses, and what it still allows.

use std::sync::Arc;

use strongroom_core::{Error, GoneReason, Principal, SecretPath};
use strongroom_crypto::password::PasswordParams;
use strongroom_engine::{
    Admin, Engine, EngineConfig, NewAgent, NewPolicy, PutSecret, SecretBytes, SignupInput,
};
use strongroom_kms::soft::SoftProvider;
use strongroom_store::sqlite::SqliteStore;

/// An engine with an organisation: its owner, an admin and a member.
struct Org {
    handle: Admin,
    _dir: tempfile::TempDir,
    owner: Principal,
    admin: Principal,
    member: Principal,
}

impl Org {
    fn engine(&self) -> &Arc<Engine> {
        self.handle.engine()
    }

    async fn new() -> Org {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("db.sqlite"))
                .await
                .expect("store opens"),
        );
        let kms = Arc::new(SoftProvider::memory().expect("memory provider"));
        let handle = Admin::new(
            store,
            kms,
            EngineConfig {
                password_params: PasswordParams {
                    m_cost: 256,
                    t_cost: 1,
                },
                ..Default::default()
            },
        )
        .await
        .expect("engine starts");
        let engine = handle.engine().clone();
        let owner = signup(&engine, "owner@example.com", None).await;
        let mut joined = Vec::new();
        for (email, role) in [
            ("admin@example.com", "admin"),
            ("member@example.com", "member"),
        ] {
            let inv = engine
                .invite(&owner, email, Some(role))
                .await
                .expect("owner invites");
            joined.push(signup(&engine, email, Some(inv.token.to_string())).await);
        }
        let member = joined.pop().expect("member");
        let admin = joined.pop().expect("admin");
        Org {
            handle,
            _dir: dir,
            owner,
            admin,
            member,
        }
    }
}

async fn signup(engine: &Engine, email: &str, invite_token: Option<String>) -> Principal {
    let out = engine
        .signup(
            SignupInput {
                email: email.into(),
                password: "Correct-horse-battery-staple-9".into(),
                display_name: None,
                invite_token,
            },
            None,
        )
        .await
        .expect("sign-up");
    engine
        .authenticate(&out.token.token, None)
        .await
        .expect("a fresh token authenticates")
}

/// The kind of a refusal; panics on success.
fn kind<T: std::fmt::Debug>(r: Result<T, Error>) -> &'static str {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => e.kind(),
    }
}

/// A read policy on every path naming `who`.
fn policy_for(who: &Principal) -> NewPolicy {
    let subject = who.subject.to_string();
    let (kind, id) = subject.split_once(':').expect("subject is kind:id");
    NewPolicy {
        secret_path_pattern: "**".into(),
        principal_type: kind.into(),
        principal_id: id.into(),
        permissions: vec!["read".into()],
        conditions: None,
        expires_at: None,
        effect: None,
        priority: None,
        extra: Default::default(),
    }
}

fn value(v: &str) -> PutSecret {
    PutSecret {
        value: SecretBytes::new(v.as_bytes().to_vec()),
        secret_type: None,
        metadata: None,
        expires_at: None,
        max_access_count: None,
    }
}

#[tokio::test]
async fn only_an_owner_may_grant_themselves_a_policy() {
    let org = Org::new().await;
    let e = org.engine();
    let vault = e
        .create_vault(&org.admin, "grants", None)
        .await
        .expect("admin creates a vault");
    // Refused: the admin naming themselves.
    assert_eq!(
        kind(
            e.create_policy(&org.admin, vault.id, policy_for(&org.admin))
                .await
        ),
        "forbidden"
    );
    // Allowed: the admin naming someone else, and the owner naming themselves.
    e.create_policy(&org.admin, vault.id, policy_for(&org.member))
        .await
        .expect("an admin grants a member");
    e.create_policy(&org.owner, vault.id, policy_for(&org.owner))
        .await
        .expect("an owner grants themselves");
}

#[tokio::test]
async fn the_agent_keys_vault_is_closed_to_members() {
    let org = Org::new().await;
    let e = org.engine();
    // The vault comes with the first agent.
    e.create_agent(
        &org.owner,
        NewAgent {
            name: "worker".into(),
            ..Default::default()
        },
    )
    .await
    .expect("agent registered");
    let vault = e
        .agent_keys_vault_id(&org.owner)
        .await
        .expect("the owner finds the agent-keys vault");
    let listed = e
        .list_secrets(&org.owner, vault, None)
        .await
        .expect("the owner lists it");
    let path = listed
        .first()
        .expect("the agent's keys are stored")
        .path
        .clone();
    e.read_secret(&org.owner, vault, &path, None)
        .await
        .expect("the owner reads an agent's key");

    let refused = kind(e.list_secrets(&org.member, vault, None).await);
    assert!(
        matches!(refused, "forbidden" | "not_found"),
        "a member listing the agent-keys vault: {refused}"
    );
    let refused = kind(
        e.read_secret(&org.member, vault, &path, None)
            .await
            .map(|v| v.meta),
    );
    assert!(
        matches!(refused, "forbidden" | "not_found"),
        "a member reading an agent's key: {refused}"
    );
}

#[tokio::test]
async fn a_scoped_credential_cannot_register_an_agent() {
    let org = Org::new().await;
    let e = org.engine();
    let owner = &org.owner;
    let as_key = |scopes: Option<Vec<String>>| async move {
        let key = e
            .create_api_key(owner, "k", scopes, None)
            .await
            .expect("the owner makes a key");
        let token = e
            .api_key_token(&key.key, None)
            .await
            .expect("the key buys a token");
        e.authenticate(&token.token, None)
            .await
            .expect("the token authenticates")
    };
    let agent = |name: &str| NewAgent {
        name: name.into(),
        ..Default::default()
    };
    let scoped = as_key(Some(vec!["db/*".into()])).await;
    assert_eq!(
        kind(e.create_agent(&scoped, agent("escape")).await),
        "forbidden"
    );
    let unscoped = as_key(None).await;
    e.create_agent(&unscoped, agent("allowed"))
        .await
        .expect("an unscoped key of the owner registers an agent");
}

#[tokio::test]
async fn rotating_an_agent_key_ends_its_earlier_tokens() {
    let org = Org::new().await;
    let e = org.engine();
    let created = e
        .create_agent(
            &org.owner,
            NewAgent {
                name: "worker".into(),
                ..Default::default()
            },
        )
        .await
        .expect("agent registered");
    let id = created.agent.id.to_string();
    let old = e
        .agent_token(&created.api_key, Some(&id), None)
        .await
        .expect("the key buys a token");
    e.authenticate(&old.token.token, None)
        .await
        .expect("the token works before the rotation");

    let rotated = e
        .rotate_agent_key(&org.owner, created.agent.id)
        .await
        .expect("key rotated");
    assert_eq!(
        kind(e.authenticate(&old.token.token, None).await),
        "unauthenticated"
    );
    assert_eq!(
        kind(e.agent_token(&created.api_key, Some(&id), None).await),
        "unauthenticated"
    );
    let new = e
        .agent_token(&rotated.api_key, Some(&id), None)
        .await
        .expect("the new key buys a token");
    e.authenticate(&new.token.token, None)
        .await
        .expect("a token after the rotation works");
}

#[tokio::test]
async fn a_deleted_version_stays_gone_after_a_new_write() {
    let org = Org::new().await;
    let e = org.engine();
    let vault = e
        .create_vault(&org.owner, "versions", None)
        .await
        .expect("vault");
    let path = SecretPath::parse("app/db-password").expect("path");
    e.put_secret(&org.owner, vault.id, &path, value("one"))
        .await
        .expect("v1");
    e.delete_secret(&org.owner, vault.id, &path)
        .await
        .expect("delete");
    let v2 = e
        .put_secret(&org.owner, vault.id, &path, value("two"))
        .await
        .expect("writing after a delete");
    assert_eq!(v2.version, 2, "numbering continues after a delete");

    match e.read_secret(&org.owner, vault.id, &path, Some(1)).await {
        Err(Error::Gone(GoneReason::Deleted)) => {}
        Err(other) => panic!("version 1 after the delete and a new write: {other:?}"),
        Ok(v) => panic!("version 1 after the delete and a new write: {:?}", v.meta),
    }
    let latest = e
        .read_secret(&org.owner, vault.id, &path, None)
        .await
        .expect("the new version reads");
    assert_eq!(latest.meta.version, 2);
    assert_eq!(latest.value.expose(), b"two");
}

#[tokio::test]
async fn keys_shown_once_never_print_through_debug() {
    let org = Org::new().await;
    let e = org.engine();
    let agent = e
        .create_agent(
            &org.owner,
            NewAgent {
                name: "printed".into(),
                ..Default::default()
            },
        )
        .await
        .expect("agent registered");
    let key = e
        .create_api_key(&org.owner, "k", None, None)
        .await
        .expect("key made");
    let inv = e
        .invite(&org.owner, "later@example.com", None)
        .await
        .expect("invited");
    for (shown, secret) in [
        (format!("{agent:?}"), agent.api_key.to_string()),
        (format!("{key:?}"), key.key.to_string()),
        (format!("{inv:?}"), inv.token.to_string()),
    ] {
        assert!(!shown.contains(&secret), "{shown}");
        // The random part alone, too (the prefix is public).
        assert!(!shown.contains(&secret[secret.len() - 16..]), "{shown}");
    }
    // What the caller is shown stays usable.
    e.agent_token(&agent.api_key, None, None)
        .await
        .expect("the key still exchanges");
}
