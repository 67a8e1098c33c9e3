//! The store conformance suite: every [`Store`] back-end must pass it
//! unchanged (like OpenBao's `crosstest`). Each case takes a fresh, empty
//! store and panics on the first difference.
//!
//! Built only with the `conformance` cargo feature. A back-end runs every case
//! with [`conformance_suite!`](crate::conformance_suite) in one of its test
//! files, given a factory of fresh stores:
//!
//! ```ignore
//! // Cargo.toml: [dev-dependencies]
//! // strongroom-store = { workspace = true, features = ["conformance"] }
//! // tokio = { workspace = true }
//! async fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) { /* a new, empty store */ }
//! strongroom_store::conformance_suite!(fresh());
//! ```
//!
//! The helpers (`org_and_owner`, `vault`, `audit`, …) are public so a
//! back-end's own tests can build the same fixtures.

use serde_json::json;
use strongroom_core::audit::{Actor, AuditRecord, Checkpoint};
use strongroom_core::policy::{Conditions, Effect, PathPattern, Permission, Policy};
use strongroom_core::time_util::now;
use strongroom_core::{
    AgentId, ApiKeyId, OrgId, PolicyId, Role, SecretId, SecretPath, Subject, UserId, VaultId,
};
use time::Duration;
use uuid::Uuid;

use crate::*;

/// Generates one `#[tokio::test]` per conformance case, each on a store of its
/// own. `$fresh` is an expression evaluated once per test, to a future of
/// `(guard, Arc<dyn Store>)`: the store must be new and empty, and `guard`
/// (a temporary directory, a database to drop) lives until the test ends.
/// The calling crate needs `tokio` (with `macros` and the multi-threaded
/// runtime) among its dev-dependencies.
///
/// Every case of the suite is listed here, so a back-end that invokes this
/// runs a case added later without changing its own tests.
#[macro_export]
macro_rules! conformance_suite {
    ($fresh:expr) => {
        $crate::conformance_suite!(@each $fresh;
            key_lifecycle,
            signup_gate,
            vaults,
            refused_changes_are_not_outages,
            versions,
            listing_and_delete,
            access_counting,
            audit_log,
            invitations,
            users_and_roles,
            delete_user_cascade,
            principal_status,
            token_revocation,
            agents,
            api_keys,
            policies,
            settings,
            system_vaults,
            token_generations
        );
        $crate::conformance_suite!(@concurrent $fresh;
            concurrent_audit_appends,
            failed_writes_amid_concurrent_ones,
            concurrent_writers
        );
    };
    (@each $fresh:expr; $($name:ident),* $(,)?) => {$(
        #[::tokio::test]
        async fn $name() {
            let (_guard, store) = $fresh.await;
            $crate::conformance::$name(&*store).await;
        }
    )*};
    (@concurrent $fresh:expr; $($name:ident),* $(,)?) => {$(
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_guard, store) = $fresh.await;
            $crate::conformance::$name(store).await;
        }
    )*};
}

/// Evaluates `$call` and asserts it appended exactly `$n` events to `$org`'s
/// audit chain (one per successful mutation, none for a refusal).
macro_rules! audited {
    ($s:expr, $org:expr, $n:expr, $call:expr) => {{
        let before = chain_len($s, $org).await;
        let r = $call;
        assert_eq!(
            chain_len($s, $org).await,
            before + $n,
            "audit events appended by `{}`",
            stringify!($call)
        );
        r
    }};
}

/// An audit record of `action` in `org` (anonymous actor, fixed details).
pub fn audit(org: OrgId, action: &str) -> AuditRecord {
    AuditRecord::new(
        org,
        Actor::Anonymous,
        action,
        "test",
        "r",
        json!({"k": "v"}),
        Some("127.0.0.1".into()),
    )
}

/// Creates an organisation with an owner signed up as `email`.
pub async fn org_and_owner(
    s: &dyn Store,
    email: &str,
    gate: SignupGate,
) -> StoreResult<(OrgRow, UserRow)> {
    let org = OrgRow {
        id: OrgId::new(),
        name: "acme".into(),
        created_at: now(),
    };
    let user = UserRow {
        id: UserId::new(),
        org_id: org.id,
        email: email.into(),
        display_name: Some("Ann".into()),
        password_hash: "$argon2id$fake".into(),
        role: Role::Owner,
        created_at: now(),
    };
    s.create_org_with_owner(&org, &user, gate, &audit(org.id, "auth.signup"))
        .await?;
    Ok((org, user))
}

/// Creates a standard vault in `org`, owned by `owner`, under `kek-1` version 1.
pub async fn vault(s: &dyn Store, org: &OrgRow, owner: &UserRow) -> VaultRow {
    let v = VaultRow {
        id: VaultId::new(),
        org_id: org.id,
        name: "main".into(),
        description: "".into(),
        kek_ref: "kek-1".into(),
        kek_version: 1,
        kek_provider: "memory".into(),
        pending_kek_ref: None,
        created_by: Some(Subject::User(owner.id)),
        kind: VaultKind::Standard,
        created_at: now(),
    };
    s.create_vault(&v, &audit(org.id, "vault.create"))
        .await
        .unwrap();
    v
}

fn envelope(tag: u8) -> Envelope {
    Envelope {
        envelope_version: 1,
        ciphertext: vec![tag; 5],
        iv: vec![tag; 12],
        auth_tag: vec![tag; 16],
        wrapped_dek: vec![tag; 60],
        kek_ref: "kek-1".into(),
        kek_version: 1,
    }
}

/// Rotation and migration: stale wraps found per vault, replaced all or nothing by compare-and-set, with their audit record.
pub async fn key_lifecycle(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let mut v = vault(s, &org, &owner).await;
    let other = vault(s, &org, &owner).await;
    for (i, p) in ["a", "b", "c"].iter().enumerate() {
        s.insert_version(
            &new_version(&v, p, SecretId::new(), 0, i as u8),
            &audit(org.id, "w"),
        )
        .await
        .unwrap();
    }
    s.insert_version(
        &new_version(&other, "z", SecretId::new(), 0, 9),
        &audit(org.id, "w"),
    )
    .await
    .unwrap();
    assert_eq!(s.all_vaults().await.unwrap().len(), 2);
    // Nothing is stale under the current KEK.
    assert_eq!(s.count_stale_wraps(v.id, "kek-1", 1).await.unwrap(), 0);
    // After a rotation every row of that vault (only) is stale.
    v.kek_version = 2;
    s.set_vault_kek(&v, Some(&audit(org.id, "vault.kek_rotate")))
        .await
        .unwrap();
    assert_eq!(s.vault(v.id).await.unwrap().unwrap().kek_version, 2);
    assert_eq!(s.count_stale_wraps(v.id, "kek-1", 2).await.unwrap(), 3);
    assert_eq!(s.count_stale_wraps(other.id, "kek-1", 1).await.unwrap(), 0);
    let page = s.stale_wraps(v.id, "kek-1", 2, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    // Replacing is a compare-and-set on what was read, all or nothing, with
    // its audit record in the same transaction.
    let change = |w: &WrapRow, kek: &str, v: u32, b: u8| WrapChange {
        old: w.clone(),
        kek_ref: kek.into(),
        kek_version: v,
        wrapped_dek: vec![b; 60],
    };
    let before = s.audit_chain(org.id, 1, 1000).await.unwrap().len();
    s.replace_wraps(
        &[change(&page[0], "kek-1", 2, 7)],
        Some(&audit(org.id, "vault.kek_rewrap")),
    )
    .await
    .unwrap();
    assert_eq!(
        s.audit_chain(org.id, 1, 1000).await.unwrap().len(),
        before + 1
    );
    let stale_and_fresh = [
        change(&page[1], "kek-1", 2, 9),
        change(&page[0], "kek-1", 2, 8),
    ];
    assert!(
        matches!(
            s.replace_wraps(&stale_and_fresh, Some(&audit(org.id, "vault.kek_rewrap")))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "a stale read must not overwrite"
    );
    assert_eq!(
        s.audit_chain(org.id, 1, 1000).await.unwrap().len(),
        before + 1,
        "nothing recorded for a refused batch"
    );
    assert_eq!(
        s.count_stale_wraps(v.id, "kek-1", 2).await.unwrap(),
        2,
        "nothing of a refused batch is replaced"
    );
    let rest: Vec<_> = s
        .stale_wraps(v.id, "kek-1", 2, 100)
        .await
        .unwrap()
        .iter()
        .map(|w| change(w, "kek-2", 1, w.version as u8))
        .collect();
    s.replace_wraps(&rest, None).await.unwrap();
    // Moved to another KEK: stale against kek-1 v2, current against kek-2 v1 for those two.
    assert_eq!(s.count_stale_wraps(v.id, "kek-2", 1).await.unwrap(), 1);
    let row = s.version(v.id, &page[1].path, None).await.unwrap().unwrap();
    assert_eq!(
        (row.envelope.kek_ref.as_str(), row.envelope.kek_version),
        ("kek-2", 1)
    );
    // The ciphertext never changes.
    assert_eq!(row.envelope.ciphertext, envelope(1).ciphertext);
    // A migration's pending KEK is recorded.
    v.pending_kek_ref = Some("kek-2".into());
    v.kek_provider = "pkcs11".into();
    s.set_vault_kek(&v, None).await.unwrap();
    let back = s.vault(v.id).await.unwrap().unwrap();
    assert_eq!(
        (back.pending_kek_ref.as_deref(), back.kek_provider.as_str()),
        (Some("kek-2"), "pkcs11")
    );
}

/// A version of `path` in `v` following `expected_latest`, with an envelope filled with `tag`.
pub fn new_version(
    v: &VaultRow,
    path: &str,
    id: SecretId,
    expected: u32,
    tag: u8,
) -> NewSecretVersion {
    NewSecretVersion {
        secret_id: id,
        vault_id: v.id,
        path: SecretPath::parse(path).unwrap(),
        version: expected + 1,
        expected_latest: expected,
        secret_type: "generic".into(),
        metadata: json!({"env": "prod"}),
        expires_at: None,
        max_access_count: None,
        envelope: envelope(tag),
        created_by: v.created_by.expect("a user's vault"),
        created_at: now(),
    }
}

/// The first signup bootstraps; later ones follow the gate; a taken email is a conflict.
pub async fn signup_gate(s: &dyn Store) {
    let (_, owner) = org_and_owner(s, "a@example.com", SignupGate::FirstOnly)
        .await
        .unwrap();
    assert!(matches!(
        org_and_owner(s, "b@example.com", SignupGate::FirstOnly).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        org_and_owner(s, "b@example.com", SignupGate::Open)
            .await
            .is_ok()
    );
    assert!(matches!(
        org_and_owner(s, "a@example.com", SignupGate::Open).await,
        Err(StoreError::Conflict(_))
    ));
    let found = s.user_by_email("a@example.com").await.unwrap().unwrap();
    assert_eq!(found, owner);
    assert_eq!(s.user_by_id(owner.id).await.unwrap().unwrap(), owner);
    assert!(
        s.user_by_email("nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

/// Vaults: create, read, list per organisation, delete with everything that names them.
pub async fn vaults(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let (org2, owner2) = org_and_owner(s, "b@example.com", SignupGate::Open)
        .await
        .unwrap();
    let v1 = vault(s, &org, &owner).await;
    let v2 = vault(s, &org, &owner).await;
    let other = vault(s, &org2, &owner2).await;
    assert_eq!(s.vault(v1.id).await.unwrap().unwrap(), v1);
    let listed = s.list_vaults(org.id).await.unwrap();
    assert_eq!(listed, vec![v1.clone(), v2.clone()]);
    assert_eq!(s.list_vaults(org2.id).await.unwrap(), vec![other]);
    let ab = new_version(&v1, "a/b", SecretId::new(), 0, 1);
    s.insert_version(&ab, &audit(org.id, "secret.write"))
        .await
        .unwrap();
    s.delete_secret(ab.secret_id, &audit(org.id, "secret.delete"))
        .await
        .unwrap();
    s.insert_version(
        &new_version(&v1, "c", SecretId::new(), 0, 2),
        &audit(org.id, "secret.write"),
    )
    .await
    .unwrap();
    // Policies name the vault: deleting it takes them along, in one
    // transaction; another vault's policies stay.
    let p1 = policy_row(&v1, Subject::User(owner.id), "**");
    s.create_policy(&p1, &audit(org.id, "policy.create"))
        .await
        .unwrap();
    let p2 = policy_row(&v2, Subject::User(owner.id), "**");
    s.create_policy(&p2, &audit(org.id, "policy.create"))
        .await
        .unwrap();
    assert!(
        audited!(
            s,
            org.id,
            1,
            s.delete_vault(v1.id, &audit(org.id, "vault.delete")).await
        )
        .unwrap()
    );
    assert!(s.vault(v1.id).await.unwrap().is_none());
    assert!(s.policy(PolicyId(p1.policy.id)).await.unwrap().is_none());
    assert!(s.list_policies(v1.id).await.unwrap().is_empty());
    assert!(
        s.policies_for(v1.id, &Subject::User(owner.id))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.list_policies(v2.id).await.unwrap(), vec![p2]);
    assert!(s.list_secrets(v1.id, "").await.unwrap().is_empty());
    assert_eq!(s.count_stale_wraps(v1.id, "none", 0).await.unwrap(), 0);
    assert!(
        s.secret_head(v1.id, &SecretPath::parse("a/b").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !s.delete_vault(v1.id, &audit(org.id, "vault.delete"))
            .await
            .unwrap()
    );
}

/// A change the schema refuses (here: rows naming a vault that does not
/// exist) fails without changing anything, and is never reported as an
/// outage.
pub async fn refused_changes_are_not_outages(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let v = vault(s, &org, &owner).await;
    let gone = vault(s, &org, &owner).await;
    s.delete_vault(gone.id, &audit(org.id, "vault.delete"))
        .await
        .unwrap();
    let refused = |r: StoreResult<()>| match r {
        Ok(()) => panic!("a row naming a deleted vault was stored"),
        Err(StoreError::Unavailable(m)) => panic!("reported as an outage: {m}"),
        Err(_) => {}
    };
    refused(audited!(
        s,
        org.id,
        0,
        s.insert_version(
            &new_version(&gone, "x", SecretId::new(), 0, 1),
            &audit(org.id, "secret.write")
        )
        .await
    ));
    refused(audited!(
        s,
        org.id,
        0,
        s.create_policy(
            &policy_row(&gone, Subject::User(owner.id), "**"),
            &audit(org.id, "policy.create")
        )
        .await
    ));
    assert!(s.list_policies(gone.id).await.unwrap().is_empty());
    // The store still works.
    s.insert_version(
        &new_version(&v, "x", SecretId::new(), 0, 1),
        &audit(org.id, "secret.write"),
    )
    .await
    .unwrap();
}

/// Versions: allocated by compare-and-set on the head, read exact or latest, never lost or reused.
pub async fn versions(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let v = vault(s, &org, &owner).await;
    let path = SecretPath::parse("db/password").unwrap();
    assert!(s.secret_head(v.id, &path).await.unwrap().is_none());
    let id = SecretId::new();
    s.insert_version(
        &new_version(&v, "db/password", id, 0, 1),
        &audit(org.id, "w"),
    )
    .await
    .unwrap();
    // A second "first" writer loses.
    assert!(matches!(
        s.insert_version(
            &new_version(&v, "db/password", SecretId::new(), 0, 9),
            &audit(org.id, "w")
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    s.insert_version(
        &new_version(&v, "db/password", id, 1, 2),
        &audit(org.id, "w"),
    )
    .await
    .unwrap();
    // A stale writer loses too.
    assert!(matches!(
        s.insert_version(
            &new_version(&v, "db/password", id, 1, 9),
            &audit(org.id, "w")
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    let head = s.secret_head(v.id, &path).await.unwrap().unwrap();
    assert_eq!(
        head,
        SecretHead {
            id,
            latest_version: 2,
            deleted: false
        }
    );

    let latest = s.version(v.id, &path, None).await.unwrap().unwrap();
    assert_eq!(latest.meta.version, 2);
    assert_eq!(latest.envelope, envelope(2));
    assert_eq!(latest.meta.metadata, json!({"env": "prod"}));
    let first = s.version(v.id, &path, Some(1)).await.unwrap().unwrap();
    assert_eq!(first.envelope, envelope(1));
    assert!(s.version(v.id, &path, Some(3)).await.unwrap().is_none());

    let all = s.list_versions(id).await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.version).collect::<Vec<_>>(),
        vec![1, 2]
    );

    assert!(s.disable_version(id, 1, &audit(org.id, "d")).await.unwrap());
    assert!(!s.disable_version(id, 7, &audit(org.id, "d")).await.unwrap());
    assert!(
        s.version(v.id, &path, Some(1))
            .await
            .unwrap()
            .unwrap()
            .meta
            .disabled
    );
    assert!(
        !s.version(v.id, &path, Some(2))
            .await
            .unwrap()
            .unwrap()
            .meta
            .disabled
    );
}

/// Listing by prefix, version lists, disable, soft delete and writing after a delete.
pub async fn listing_and_delete(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let v = vault(s, &org, &owner).await;
    let other = vault(s, &org, &owner).await;
    for p in ["prod/a", "prod/b", "prodx", "staging/a"] {
        s.insert_version(
            &new_version(&v, p, SecretId::new(), 0, 1),
            &audit(org.id, "w"),
        )
        .await
        .unwrap();
    }
    s.insert_version(
        &new_version(&other, "prod/z", SecretId::new(), 0, 1),
        &audit(org.id, "w"),
    )
    .await
    .unwrap();
    let head = s
        .secret_head(v.id, &SecretPath::parse("prod/a").unwrap())
        .await
        .unwrap()
        .unwrap();
    s.insert_version(
        &new_version(&v, "prod/a", head.id, 1, 2),
        &audit(org.id, "w"),
    )
    .await
    .unwrap();

    let paths = |l: Vec<SecretMeta>| {
        l.into_iter()
            .map(|m| (m.path.to_string(), m.version))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        paths(s.list_secrets(v.id, "prod/").await.unwrap()),
        vec![("prod/a".into(), 2), ("prod/b".into(), 1)]
    );
    assert_eq!(s.list_secrets(v.id, "").await.unwrap().len(), 4);
    // Prefixes are literal: SQL wildcards match nothing special.
    assert!(s.list_secrets(v.id, "%").await.unwrap().is_empty());
    assert!(s.list_secrets(v.id, "prod_").await.unwrap().is_empty());

    s.delete_secret(head.id, &audit(org.id, "del"))
        .await
        .unwrap();
    assert_eq!(
        paths(s.list_secrets(v.id, "prod/").await.unwrap()),
        vec![("prod/b".into(), 1)]
    );
    let row = s
        .version(v.id, &SecretPath::parse("prod/a").unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    assert!(row.deleted);
    let a = SecretPath::parse("prod/a").unwrap();
    assert!(s.secret_head(v.id, &a).await.unwrap().unwrap().deleted);
    // Writing again continues the numbering with a live version; the deleted
    // versions stay deleted (a write can't bring them back).
    s.insert_version(
        &new_version(&v, "prod/a", head.id, 2, 3),
        &audit(org.id, "w"),
    )
    .await
    .unwrap();
    let head = s.secret_head(v.id, &a).await.unwrap().unwrap();
    assert_eq!((head.latest_version, head.deleted), (3, false));
    let (vid, a) = (v.id, &a);
    let deleted =
        |n: Option<u32>| async move { s.version(vid, a, n).await.unwrap().unwrap().deleted };
    assert!(deleted(Some(1)).await);
    assert!(deleted(Some(2)).await);
    assert!(!deleted(Some(3)).await);
    assert!(!deleted(None).await);
    let versions = |l: Vec<SecretMeta>| l.into_iter().map(|m| m.version).collect::<Vec<_>>();
    assert_eq!(versions(s.list_versions(head.id).await.unwrap()), vec![3]);
    assert_eq!(
        paths(s.list_secrets(v.id, "prod/").await.unwrap()),
        vec![("prod/a".into(), 3), ("prod/b".into(), 1)]
    );
    // Deleting again deletes the new version too; numbering still continues.
    s.delete_secret(head.id, &audit(org.id, "del"))
        .await
        .unwrap();
    assert!(deleted(Some(3)).await);
    assert!(s.list_versions(head.id).await.unwrap().is_empty());
    s.insert_version(
        &new_version(&v, "prod/a", head.id, 3, 4),
        &audit(org.id, "w"),
    )
    .await
    .unwrap();
    assert_eq!(versions(s.list_versions(head.id).await.unwrap()), vec![4]);
    assert!(deleted(Some(3)).await);
}

/// Reads are counted with their audit record; a read past the limit changes nothing.
pub async fn access_counting(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let v = vault(s, &org, &owner).await;
    let id = SecretId::new();
    let mut nv = new_version(&v, "once", id, 0, 1);
    nv.max_access_count = Some(2);
    s.insert_version(&nv, &audit(org.id, "w")).await.unwrap();
    assert!(s.record_read(id, 1, &audit(org.id, "r1")).await.unwrap());
    assert!(s.record_read(id, 1, &audit(org.id, "r2")).await.unwrap());
    assert!(!s.record_read(id, 1, &audit(org.id, "r3")).await.unwrap());
    let row = s
        .version(v.id, &SecretPath::parse("once").unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.access_count, 2);
    // A refused read writes no audit record of its own: the caller records the denial.
    let actions: Vec<String> = s
        .audit_chain(org.id, 1, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"r2".to_string()));
    assert!(!actions.contains(&"r3".to_string()));
}

/// The audit log: chains per organisation, heads, organisations to verify, queries, checkpoints.
pub async fn audit_log(s: &dyn Store) {
    use strongroom_core::audit::{GENESIS_HASH, verify_chain};
    let (org, _) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let (org2, _) = org_and_owner(s, "b@example.com", SignupGate::Open)
        .await
        .unwrap();
    for i in 0..5 {
        s.append_audit(&audit(org.id, &format!("e{i}")))
            .await
            .unwrap();
    }
    let org_s = org.id.to_string();
    let all = s.audit_chain(org.id, 1, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["auth.signup", "e0", "e1", "e2", "e3", "e4"]
    );
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(all[0].prev_event_id, None);
    assert_eq!(all[1].prev_event_id.as_deref(), Some(all[0].id.as_str()));
    assert_eq!(all[1].details, json!({"k": "v"}));
    assert_eq!(all[1].ip_address.as_deref(), Some("127.0.0.1"));
    // The stored chain verifies, and each organisation has its own.
    let r = verify_chain(&all, &[], 1, (GENESIS_HASH, None), &|_, _, _| false);
    assert!(r.chain_valid, "{r:?}");
    assert_eq!(r.events_verified, 6);
    assert_eq!(s.audit_chain(org2.id, 1, 100).await.unwrap().len(), 1);
    // Resuming a stretch from the middle.
    let tail = s.audit_chain(org.id, 4, 2).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);

    let heads = s.audit_heads().await.unwrap();
    let h = heads.iter().find(|h| h.org_id == org_s).unwrap();
    assert_eq!(
        (h.seq, h.hash.as_str(), h.event_id.as_str()),
        (6, all[5].integrity_hash.as_str(), all[5].id.as_str())
    );
    // One head per organisation with events, each its own chain's newest.
    let org2_chain = s.audit_chain(org2.id, 1, 100).await.unwrap();
    let h2 = heads
        .iter()
        .find(|h| h.org_id == org2.id.to_string())
        .unwrap();
    assert_eq!(h2.seq, org2_chain.last().unwrap().seq);
    let mut orgs: Vec<_> = heads.iter().map(|h| h.org_id.clone()).collect();
    orgs.dedup();
    assert_eq!(orgs.len(), heads.len());
    // Organisations to verify: those with events, and those with only a
    // checkpoint left (their events deleted), each once, sorted.
    let ghost = "00000000-0000-0000-0000-00000000dead";
    s.insert_checkpoint(&Checkpoint {
        org_id: ghost.into(),
        seq: 3,
        event_id: "gone".into(),
        head_hash: "00".repeat(32),
        created_at_us: 1,
        kid: "k".into(),
        signature: "s".into(),
    })
    .await
    .unwrap();
    let listed = s.audit_orgs().await.unwrap();
    let mut want = orgs.clone();
    want.push(ghost.to_owned());
    want.sort();
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "{listed:?}");
    for o in &want {
        assert!(listed.contains(o), "{o} missing from {listed:?}");
    }

    // Queries: newest first, filtered, with the total.
    let q = AuditQuery {
        org_id: org_s.clone(),
        limit: 2,
        offset: 1,
        ..Default::default()
    };
    let (page, total) = s.audit_query(&q).await.unwrap();
    assert_eq!(total, 6);
    assert_eq!(
        page.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["e3", "e2"]
    );
    let q = AuditQuery {
        org_id: org_s.clone(),
        action: Some("e1".into()),
        limit: 10,
        ..Default::default()
    };
    let (page, total) = s.audit_query(&q).await.unwrap();
    assert_eq!((page.len(), total), (1, 1));
    let q = AuditQuery {
        org_id: org_s.clone(),
        from_us: Some(i64::MAX - 1),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(s.audit_query(&q).await.unwrap().1, 0);

    // Checkpoints round-trip and are idempotent per (org, seq).
    let cp = strongroom_core::audit::Checkpoint {
        org_id: org_s.clone(),
        seq: 6,
        event_id: all[5].id.clone(),
        head_hash: all[5].integrity_hash.clone(),
        created_at_us: 42,
        kid: "k".into(),
        signature: "c2ln".into(),
    };
    assert_eq!(s.latest_checkpoint(org.id).await.unwrap(), None);
    s.insert_checkpoint(&cp).await.unwrap();
    s.insert_checkpoint(&cp).await.unwrap();
    assert_eq!(s.checkpoints(org.id).await.unwrap(), vec![cp.clone()]);
    let older = strongroom_core::audit::Checkpoint {
        seq: 3,
        event_id: all[2].id.clone(),
        head_hash: all[2].integrity_hash.clone(),
        ..cp.clone()
    };
    s.insert_checkpoint(&older).await.unwrap();
    assert_eq!(
        s.checkpoints(org.id).await.unwrap(),
        vec![older.clone(), cp.clone()]
    );
    assert_eq!(s.latest_checkpoint(org.id).await.unwrap(), Some(cp));
    assert!(s.checkpoints(org2.id).await.unwrap().is_empty());
}

/// Concurrent appends to one organisation build one whole chain (needs a multi-threaded runtime).
pub async fn concurrent_audit_appends(s: std::sync::Arc<dyn Store>) {
    use strongroom_core::audit::{GENESIS_HASH, verify_chain};
    let (org, _) = org_and_owner(&*s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let mut tasks = vec![];
    for t in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                s.append_audit(&audit(org.id, &format!("t{t}-{i}")))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = s.audit_chain(org.id, 1, 1000).await.unwrap();
    assert_eq!(all.len(), 201);
    let r = verify_chain(&all, &[], 1, (GENESIS_HASH, None), &|_, _, _| false);
    assert!(r.chain_valid, "{r:?}");
}

/// Writes that fail (a conflict) while others succeed around them leave no
/// trace, and the chain the successful ones built stays whole.
pub async fn failed_writes_amid_concurrent_ones(s: std::sync::Arc<dyn Store>) {
    use strongroom_core::audit::{GENESIS_HASH, verify_chain};
    let (org, owner) = org_and_owner(&*s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let taken = vault(&*s, &org, &owner).await;
    let mut tasks = vec![];
    for t in 0..8 {
        let (s, taken) = (s.clone(), taken.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for i in 0..20 {
                if (t + i) % 2 == 0 {
                    s.append_audit(&audit(org.id, &format!("t{t}-{i}")))
                        .await
                        .unwrap();
                    ok += 1;
                } else {
                    // Same id as an existing vault: refused, with its audit record.
                    let r = s.create_vault(&taken, &audit(org.id, "vault.dup")).await;
                    assert!(is_conflict(r));
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    assert_eq!(ok, 80);
    let all = s.audit_chain(org.id, 1, 1000).await.unwrap();
    // signup + vault.create + the successful appends; no "vault.dup".
    assert_eq!(all.len(), 2 + ok);
    assert!(all.iter().all(|e| e.action != "vault.dup"));
    let r = verify_chain(&all, &[], 1, (GENESIS_HASH, None), &|_, _, _| false);
    assert!(r.chain_valid, "{r:?}");
    assert_eq!(s.list_vaults(org.id).await.unwrap().len(), 1);
}

/// Concurrent writers of one path get consecutive versions, none lost or duplicated (needs a multi-threaded runtime).
pub async fn concurrent_writers(s: std::sync::Arc<dyn Store>) {
    let (org, owner) = org_and_owner(&*s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let v = vault(&*s, &org, &owner).await;
    let path = SecretPath::parse("contended").unwrap();
    let mut tasks = Vec::new();
    for w in 0..8u8 {
        let s = s.clone();
        let v = v.clone();
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = 0u32;
            for _ in 0..10 {
                loop {
                    let head = s.secret_head(v.id, &path).await.unwrap();
                    let (id, latest) = head
                        .map(|h| (h.id, h.latest_version))
                        .unwrap_or((SecretId::new(), 0));
                    match s
                        .insert_version(
                            &new_version(&v, "contended", id, latest, w),
                            &audit(org.id, "w"),
                        )
                        .await
                    {
                        Ok(()) => {
                            won += 1;
                            break;
                        }
                        Err(StoreError::Conflict(_)) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            won
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 80);
    let head = s.secret_head(v.id, &path).await.unwrap().unwrap();
    assert_eq!(head.latest_version, 80);
    let versions: Vec<u32> = s
        .list_versions(head.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(versions, (1..=80).collect::<Vec<_>>());
}

// --- identities ---------------------------------------------------------------

/// The length of an organisation's audit chain.
pub async fn chain_len(s: &dyn Store, org: OrgId) -> usize {
    s.audit_chain(org, 1, 100_000).await.unwrap().len()
}

fn is_conflict<T: std::fmt::Debug>(r: StoreResult<T>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

fn user_row(org: &OrgRow, email: &str, role: Role) -> UserRow {
    UserRow {
        id: UserId::new(),
        org_id: org.id,
        email: email.into(),
        display_name: None,
        password_hash: "$argon2id$other".into(),
        role,
        created_at: now(),
    }
}

fn invitation_row(org: &OrgRow, by: &UserRow, email: &str, role: Role) -> InvitationRow {
    InvitationRow {
        org_id: org.id,
        email: email.into(),
        role,
        invited_by: by.id,
        // Distinct per invitation, like the HMAC of a fresh token.
        token_hash: Uuid::new_v4().as_bytes().repeat(2),
        created_at: now(),
        expires_at: now() + Duration::days(7),
    }
}

/// Invites `email` into `org` with `role` and accepts the invitation.
pub async fn join(s: &dyn Store, org: &OrgRow, by: &UserRow, email: &str, role: Role) -> UserRow {
    let inv = invitation_row(org, by, email, role);
    s.put_invitation(&inv, &audit(org.id, "user.invite"))
        .await
        .unwrap();
    let u = user_row(org, email, role);
    s.accept_invitation(&u, &inv.token_hash, &audit(org.id, "auth.signup"))
        .await
        .unwrap();
    u
}

fn agent_row(org: &OrgRow, by: &UserRow, prefix: &str) -> AgentRow {
    AgentRow {
        id: AgentId::new(),
        org_id: org.id,
        name: format!("agent-{prefix}"),
        description: "".into(),
        auth_method: "api_key".into(),
        scopes: vec!["prod/**".into(), "vaults:read".into()],
        vault_ids: vec![],
        token_ttl_seconds: None,
        expires_at: None,
        api_key_expires_at: None,
        is_active: true,
        key_prefix: prefix.into(),
        key_hash: vec![1; 32],
        ssh_public_key: None,
        ecdh_public_key: None,
        token_generation: 0,
        extra: json!({}),
        created_by: Subject::User(by.id),
        created_at: now(),
        updated_at: now(),
    }
}

fn api_key_row(user: &UserRow, prefix: &str) -> ApiKeyRow {
    ApiKeyRow {
        id: Uuid::now_v7(),
        user_id: user.id,
        org_id: user.org_id,
        name: format!("key-{prefix}"),
        key_prefix: prefix.into(),
        key_hash: vec![7; 32],
        scopes: vec!["*".into()],
        is_active: true,
        created_at: now(),
        expires_at: None,
    }
}

fn policy_row(v: &VaultRow, who: Subject, pattern: &str) -> PolicyRow {
    PolicyRow {
        policy: Policy {
            id: Uuid::now_v7(),
            vault_id: v.id,
            pattern: PathPattern::parse(pattern).unwrap(),
            principal: who,
            permissions: vec![Permission::Read],
            conditions: Conditions::default(),
            expires_at: None,
            effect: Effect::Allow,
            priority: 0,
        },
        extra: json!({}),
        created_by: v.created_by.expect("a user's vault"),
        created_at: now(),
        updated_at: now(),
    }
}

fn conditions() -> Conditions {
    Conditions::from_json(&json!({
        "ip_allowlist": ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"],
        "time_window": {"after": "22:00", "before": "06:00", "timezone": "Europe/Paris", "days": ["fri", "mon"]},
    }))
    .unwrap()
}

/// Invitations: one per organisation and email, accepted only with their token, before expiry.
pub async fn invitations(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let (org2, owner2) = org_and_owner(s, "b@example.com", SignupGate::Open)
        .await
        .unwrap();
    assert!(s.invitations("c@example.com").await.unwrap().is_empty());

    // An existing user's email is recorded like any other (inviting must not
    // tell whether an account exists), but can't be accepted.
    let taken = invitation_row(&org, &owner, "b@example.com", Role::Member);
    audited!(
        s,
        org.id,
        1,
        s.put_invitation(&taken, &audit(org.id, "user.invite"))
            .await
    )
    .unwrap();
    assert_eq!(
        s.invitations("b@example.com").await.unwrap(),
        vec![taken.clone()]
    );
    let b_again = user_row(&org, "b@example.com", Role::Member);
    assert!(is_conflict(audited!(
        s,
        org.id,
        0,
        s.accept_invitation(&b_again, &taken.token_hash, &audit(org.id, "auth.signup"))
            .await
    )));
    assert!(s.user_by_id(b_again.id).await.unwrap().is_none());

    // Two organisations invite the same email: two invitations, neither
    // replaces the other.
    let first = invitation_row(&org2, &owner2, "c@example.com", Role::Admin);
    audited!(
        s,
        org2.id,
        1,
        s.put_invitation(&first, &audit(org2.id, "user.invite"))
            .await
    )
    .unwrap();
    let replaced = invitation_row(&org, &owner, "c@example.com", Role::Admin);
    s.put_invitation(&replaced, &audit(org.id, "user.invite"))
        .await
        .unwrap();
    // The same organisation again: replaces its own (new token, new role).
    let inv = invitation_row(&org, &owner, "c@example.com", Role::Member);
    audited!(
        s,
        org.id,
        1,
        s.put_invitation(&inv, &audit(org.id, "user.invite")).await
    )
    .unwrap();
    let mut pending = s.invitations("c@example.com").await.unwrap();
    pending.sort_by_key(|i| i.org_id.to_string());
    let mut expected = vec![first.clone(), inv.clone()];
    expected.sort_by_key(|i| i.org_id.to_string());
    assert_eq!(pending, expected);

    // No invitation: refused, no user created.
    let stray = user_row(&org, "d@example.com", Role::Member);
    assert!(is_conflict(audited!(
        s,
        org.id,
        0,
        s.accept_invitation(&stray, &inv.token_hash, &audit(org.id, "auth.signup"))
            .await
    )));
    assert!(s.user_by_email("d@example.com").await.unwrap().is_none());

    // Each invitation's token joins only its own organisation, with its own
    // role; the replaced token joins nothing; a caller can't pick a higher role.
    for (u, hash) in [
        (
            user_row(&org, "c@example.com", Role::Member),
            &first.token_hash,
        ),
        (
            user_row(&org2, "c@example.com", Role::Admin),
            &inv.token_hash,
        ),
        (
            user_row(&org, "c@example.com", Role::Member),
            &replaced.token_hash,
        ),
        (
            user_row(&org, "c@example.com", Role::Owner),
            &inv.token_hash,
        ),
        (user_row(&org, "c@example.com", Role::Member), &vec![0; 32]),
    ] {
        assert!(is_conflict(
            s.accept_invitation(&u, hash, &audit(org.id, "auth.signup"))
                .await
        ));
    }
    assert!(s.user_by_email("c@example.com").await.unwrap().is_none());
    assert_eq!(s.invitations("c@example.com").await.unwrap().len(), 2);

    // Accepting joins the org with the invited role and consumes that
    // invitation only.
    let c = user_row(&org, "c@example.com", Role::Member);
    audited!(
        s,
        org.id,
        1,
        s.accept_invitation(&c, &inv.token_hash, &audit(org.id, "auth.signup"))
            .await
    )
    .unwrap();
    assert_eq!(
        s.user_by_email("c@example.com").await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        s.invitations("c@example.com").await.unwrap(),
        vec![first.clone()]
    );
    assert_eq!(
        s.list_users(org.id).await.unwrap(),
        vec![owner.clone(), c.clone()]
    );
    // Single use: the same token again is refused.
    let again = UserRow {
        id: UserId::new(),
        ..c.clone()
    };
    assert!(is_conflict(
        s.accept_invitation(&again, &inv.token_hash, &audit(org.id, "auth.signup"))
            .await
    ));
    // The other organisation's invitation can't be accepted now the email is taken.
    let c2 = user_row(&org2, "c@example.com", Role::Admin);
    assert!(is_conflict(
        s.accept_invitation(&c2, &first.token_hash, &audit(org2.id, "auth.signup"))
            .await
    ));
    assert!(s.user_by_id(c2.id).await.unwrap().is_none());

    // An expired invitation is refused and stays refused.
    let mut old = invitation_row(&org, &owner, "f@example.com", Role::Member);
    old.expires_at = now() - Duration::seconds(1);
    s.put_invitation(&old, &audit(org.id, "user.invite"))
        .await
        .unwrap();
    let f = user_row(&org, "f@example.com", Role::Member);
    assert!(is_conflict(audited!(
        s,
        org.id,
        0,
        s.accept_invitation(&f, &old.token_hash, &audit(org.id, "auth.signup"))
            .await
    )));
    assert!(s.user_by_email("f@example.com").await.unwrap().is_none());

    // The email was taken (by a signup) while the invitation was pending:
    // refused, and the failed accept leaves the invitation in place.
    let e_inv = invitation_row(&org, &owner, "e@example.com", Role::Admin);
    s.put_invitation(&e_inv, &audit(org.id, "user.invite"))
        .await
        .unwrap();
    let (org3, e_owner) = org_and_owner(s, "e@example.com", SignupGate::Open)
        .await
        .unwrap();
    let e = user_row(&org, "e@example.com", Role::Admin);
    assert!(is_conflict(audited!(
        s,
        org.id,
        0,
        s.accept_invitation(&e, &e_inv.token_hash, &audit(org.id, "auth.signup"))
            .await
    )));
    assert_eq!(s.invitations("e@example.com").await.unwrap(), vec![e_inv]);
    assert_eq!(
        s.user_by_email("e@example.com").await.unwrap(),
        Some(e_owner)
    );
    assert!(s.user_by_id(e.id).await.unwrap().is_none());
    assert_eq!(s.list_users(org.id).await.unwrap(), vec![owner, c]);
    assert_eq!(s.list_users(org3.id).await.unwrap().len(), 1);
}

/// Users and roles: an organisation always keeps an owner.
pub async fn users_and_roles(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let (org2, owner2) = org_and_owner(s, "b@example.com", SignupGate::Open)
        .await
        .unwrap();
    let m = join(s, &org, &owner, "m@example.com", Role::Member).await;
    let n = join(s, &org, &owner, "n@example.com", Role::Admin).await;

    // Oldest first, one org only.
    assert_eq!(
        s.list_users(org.id).await.unwrap(),
        vec![owner.clone(), m.clone(), n.clone()]
    );
    assert_eq!(s.list_users(org2.id).await.unwrap(), vec![owner2.clone()]);
    assert!(s.list_users(OrgId::new()).await.unwrap().is_empty());

    // The last owner stays, even though another org has an owner.
    for role in [Role::Admin, Role::Member] {
        assert!(is_conflict(audited!(
            s,
            org.id,
            0,
            s.set_user_role(owner.id, role, &audit(org.id, "user.role"))
                .await
        )));
    }
    assert!(is_conflict(audited!(
        s,
        org.id,
        0,
        s.delete_user(owner.id, &audit(org.id, "user.delete")).await
    )));
    assert_eq!(s.user_by_id(owner.id).await.unwrap(), Some(owner.clone()));
    // Re-asserting the last owner's role is no demotion.
    assert!(
        s.set_user_role(owner.id, Role::Owner, &audit(org.id, "user.role"))
            .await
            .unwrap()
    );

    // Unknown users: false, nothing audited.
    assert!(!audited!(
        s,
        org.id,
        0,
        s.set_user_role(UserId::new(), Role::Owner, &audit(org.id, "user.role"))
            .await
            .unwrap()
    ));
    assert!(!audited!(
        s,
        org.id,
        0,
        s.delete_user(UserId::new(), &audit(org.id, "user.delete"))
            .await
            .unwrap()
    ));

    // Ordinary role changes.
    assert!(audited!(
        s,
        org.id,
        1,
        s.set_user_role(m.id, Role::Admin, &audit(org.id, "user.role"))
            .await
            .unwrap()
    ));
    assert_eq!(s.user_by_id(m.id).await.unwrap().unwrap().role, Role::Admin);
    // With a second owner, the first may step down.
    assert!(
        s.set_user_role(m.id, Role::Owner, &audit(org.id, "user.role"))
            .await
            .unwrap()
    );
    assert!(
        s.set_user_role(owner.id, Role::Member, &audit(org.id, "user.role"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.user_by_id(owner.id).await.unwrap().unwrap().role,
        Role::Member
    );
    // m is now the last owner.
    assert!(is_conflict(
        s.set_user_role(m.id, Role::Member, &audit(org.id, "user.role"))
            .await
    ));
    assert!(is_conflict(
        s.delete_user(m.id, &audit(org.id, "user.delete")).await
    ));
    // The other org is untouched.
    assert_eq!(s.user_by_id(owner2.id).await.unwrap(), Some(owner2));

    // Deleting a non-owner.
    assert!(audited!(
        s,
        org.id,
        1,
        s.delete_user(n.id, &audit(org.id, "user.delete"))
            .await
            .unwrap()
    ));
    assert!(s.user_by_id(n.id).await.unwrap().is_none());
    assert!(s.user_by_email("n@example.com").await.unwrap().is_none());
    assert!(
        !s.delete_user(n.id, &audit(org.id, "user.delete"))
            .await
            .unwrap()
    );
    // Deleting an owner while another owner exists.
    assert!(
        s.set_user_role(owner.id, Role::Owner, &audit(org.id, "user.role"))
            .await
            .unwrap()
    );
    assert!(
        s.delete_user(m.id, &audit(org.id, "user.delete"))
            .await
            .unwrap()
    );
    let left = s.list_users(org.id).await.unwrap();
    assert_eq!(
        left.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![owner.id]
    );
    assert_eq!(left[0].role, Role::Owner);
}

/// Deleting a user removes their API keys and policies.
pub async fn delete_user_cascade(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let v = vault(s, &org, &owner).await;
    let m = join(s, &org, &owner, "m@example.com", Role::Member).await;
    let k = join(s, &org, &owner, "k@example.com", Role::Member).await;
    let m_keys = [api_key_row(&m, "1ck_m1"), api_key_row(&m, "1ck_m2")];
    let k_key = api_key_row(&k, "1ck_k1");
    for key in m_keys.iter().chain([&k_key]) {
        s.create_api_key(key, &audit(org.id, "key.create"))
            .await
            .unwrap();
    }
    let p_m = policy_row(&v, Subject::User(m.id), "**");
    let p_k = policy_row(&v, Subject::User(k.id), "**");
    // An agent principal that happens to share m's uuid is not m.
    let p_agent = policy_row(&v, Subject::Agent(AgentId(m.id.0)), "**");
    for p in [&p_m, &p_k, &p_agent] {
        s.create_policy(p, &audit(org.id, "policy.create"))
            .await
            .unwrap();
    }
    assert!(audited!(
        s,
        org.id,
        1,
        s.delete_user(m.id, &audit(org.id, "user.delete"))
            .await
            .unwrap()
    ));
    assert!(s.list_api_keys(m.id).await.unwrap().is_empty());
    for key in &m_keys {
        assert!(
            s.api_key_by_prefix(&key.key_prefix)
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(s.policy(PolicyId(p_m.policy.id)).await.unwrap().is_none());
    assert!(
        s.policies_for(v.id, &Subject::User(m.id))
            .await
            .unwrap()
            .is_empty()
    );
    // Everyone else's keys and policies stay.
    assert_eq!(s.list_api_keys(k.id).await.unwrap(), vec![k_key]);
    assert_eq!(s.list_policies(v.id).await.unwrap(), vec![p_k, p_agent]);
}

/// A token's principal as it is now: active, role, revoked, generation.
pub async fn principal_status(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let (org2, owner2) = org_and_owner(s, "b@example.com", SignupGate::Open)
        .await
        .unwrap();
    let status = |active, role| PrincipalStatus {
        active,
        role,
        ..Default::default()
    };
    let user = |u: UserId| Subject::User(u);
    assert_eq!(
        s.principal_status(org.id, &user(owner.id), None)
            .await
            .unwrap(),
        status(true, Some(Role::Owner))
    );
    // The current role, not the one at sign-in.
    let m = join(s, &org, &owner, "m@example.com", Role::Member).await;
    assert_eq!(
        s.principal_status(org.id, &user(m.id), None).await.unwrap(),
        status(true, Some(Role::Member))
    );
    s.set_user_role(m.id, Role::Admin, &audit(org.id, "user.role"))
        .await
        .unwrap();
    assert_eq!(
        s.principal_status(org.id, &user(m.id), None).await.unwrap(),
        status(true, Some(Role::Admin))
    );
    // Another org's user, an unknown user, a deleted user: inactive.
    assert_eq!(
        s.principal_status(org.id, &user(owner2.id), None)
            .await
            .unwrap(),
        status(false, None)
    );
    assert_eq!(
        s.principal_status(org2.id, &user(owner.id), None)
            .await
            .unwrap(),
        status(false, None)
    );
    assert_eq!(
        s.principal_status(org.id, &user(UserId::new()), None)
            .await
            .unwrap(),
        status(false, None)
    );
    s.delete_user(m.id, &audit(org.id, "user.delete"))
        .await
        .unwrap();
    assert_eq!(
        s.principal_status(org.id, &user(m.id), None).await.unwrap(),
        status(false, None)
    );
    // A user id presented as an agent is not an agent.
    assert_eq!(
        s.principal_status(org.id, &Subject::Agent(AgentId(owner.id.0)), None)
            .await
            .unwrap(),
        status(false, None)
    );

    // Agents: active, deactivated, expired, not yet expired, other org, unknown.
    let a = agent_row(&org, &owner, "ocv_a");
    let mut off = agent_row(&org, &owner, "ocv_off");
    off.is_active = false;
    let mut expired = agent_row(&org, &owner, "ocv_exp");
    expired.expires_at = Some(now() - Duration::minutes(1));
    let mut later = agent_row(&org, &owner, "ocv_later");
    later.expires_at = Some(now() + Duration::hours(1));
    for ag in [&a, &off, &expired, &later] {
        s.create_agent(ag, &audit(org.id, "agent.create"))
            .await
            .unwrap();
    }
    let agent_status = |id: AgentId, o: OrgId| async move {
        s.principal_status(o, &Subject::Agent(id), None)
            .await
            .unwrap()
    };
    assert_eq!(agent_status(a.id, org.id).await, status(true, None));
    assert_eq!(agent_status(later.id, org.id).await, status(true, None));
    assert_eq!(agent_status(off.id, org.id).await, status(false, None));
    assert_eq!(agent_status(expired.id, org.id).await, status(false, None));
    assert_eq!(agent_status(a.id, org2.id).await, status(false, None));
    assert_eq!(
        agent_status(AgentId::new(), org.id).await,
        status(false, None)
    );
    // An agent id presented as a user is not a user.
    assert_eq!(
        s.principal_status(org.id, &user(UserId(a.id.0)), None)
            .await
            .unwrap(),
        status(false, None)
    );
    // Deactivating through update_agent takes effect at once.
    let a_off = AgentRow {
        is_active: false,
        ..a.clone()
    };
    s.update_agent(&a_off, &audit(org.id, "agent.update"))
        .await
        .unwrap();
    assert_eq!(agent_status(a.id, org.id).await, status(false, None));

    // Revoked token ids, for any principal.
    audited!(
        s,
        org.id,
        1,
        s.revoke_token(
            "jti-1",
            now() + Duration::hours(1),
            &audit(org.id, "auth.revoke")
        )
        .await
    )
    .unwrap();
    let st = s
        .principal_status(org.id, &user(owner.id), Some("jti-1"))
        .await
        .unwrap();
    assert_eq!(
        st,
        PrincipalStatus {
            active: true,
            role: Some(Role::Owner),
            revoked: true,
            ..Default::default()
        }
    );
    assert!(
        s.principal_status(org.id, &Subject::Agent(later.id), Some("jti-1"))
            .await
            .unwrap()
            .revoked
    );
    assert!(
        !s.principal_status(org.id, &user(owner.id), Some("jti-2"))
            .await
            .unwrap()
            .revoked
    );
    assert!(
        !s.principal_status(org.id, &user(owner.id), None)
            .await
            .unwrap()
            .revoked
    );
}

/// Revoked token ids stay denied until they expire.
pub async fn token_revocation(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let revoked = |jti: &'static str| async move {
        s.principal_status(org.id, &Subject::User(owner.id), Some(jti))
            .await
            .unwrap()
            .revoked
    };
    // Revoking twice is fine (and audited each time).
    for _ in 0..2 {
        audited!(
            s,
            org.id,
            1,
            s.revoke_token(
                "live",
                now() + Duration::hours(1),
                &audit(org.id, "auth.revoke")
            )
            .await
        )
        .unwrap();
    }
    // An entry whose token has already expired…
    s.revoke_token(
        "stale",
        now() - Duration::minutes(1),
        &audit(org.id, "auth.revoke"),
    )
    .await
    .unwrap();
    // …is pruned by the next revocation. Pruned means "not revoked" any more,
    // which is harmless: the token itself has expired and fails validation.
    s.revoke_token(
        "other",
        now() + Duration::hours(1),
        &audit(org.id, "auth.revoke"),
    )
    .await
    .unwrap();
    assert!(!revoked("stale").await);
    // Entries that are still live are kept.
    assert!(revoked("live").await);
    assert!(revoked("other").await);
    assert!(!revoked("never").await);
}

/// Agents: create, read by id and key prefix, list, update.
pub async fn agents(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let (org2, owner2) = org_and_owner(s, "b@example.com", SignupGate::Open)
        .await
        .unwrap();
    let v = vault(s, &org, &owner).await;
    let v2 = vault(s, &org, &owner).await;

    let a = agent_row(&org, &owner, "ocv_aaaa");
    audited!(
        s,
        org.id,
        1,
        s.create_agent(&a, &audit(org.id, "agent.create")).await
    )
    .unwrap();
    assert_eq!(s.agent(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        s.agent_by_key_prefix("ocv_aaaa").await.unwrap(),
        Some(a.clone())
    );
    assert!(s.agent_by_key_prefix("ocv_nope").await.unwrap().is_none());
    assert!(s.agent(AgentId::new()).await.unwrap().is_none());

    // Every optional field set.
    let b = AgentRow {
        description: "deploy bot".into(),
        scopes: vec![],
        vault_ids: vec![v.id, v2.id],
        token_ttl_seconds: Some(600),
        expires_at: Some(now() + Duration::days(30)),
        api_key_expires_at: Some(now() + Duration::days(7)),
        is_active: false,
        key_hash: (0..32).collect(),
        ssh_public_key: Some("c3No".into()),
        ecdh_public_key: Some("ZWNkaA==".into()),
        extra: json!({"intents_api_enabled": true, "shroud": {"mode": "x", "n": [1, 2]}}),
        ..agent_row(&org, &owner, "ocv_bbbb")
    };
    s.create_agent(&b, &audit(org.id, "agent.create"))
        .await
        .unwrap();
    assert_eq!(s.agent(b.id).await.unwrap(), Some(b.clone()));
    let c = agent_row(&org2, &owner2, "ocv_cccc");
    s.create_agent(&c, &audit(org2.id, "agent.create"))
        .await
        .unwrap();

    // Key prefixes are unique across all agents.
    for dup in [
        agent_row(&org, &owner, "ocv_aaaa"),
        agent_row(&org2, &owner2, "ocv_aaaa"),
    ] {
        assert!(is_conflict(audited!(
            s,
            dup.org_id,
            0,
            s.create_agent(&dup, &audit(dup.org_id, "agent.create"))
                .await
        )));
        assert!(s.agent(dup.id).await.unwrap().is_none());
    }

    // Oldest first, one org only.
    assert_eq!(
        s.list_agents(org.id).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(s.list_agents(org2.id).await.unwrap(), vec![c.clone()]);
    assert!(s.list_agents(OrgId::new()).await.unwrap().is_empty());

    // Every mutable field round-trips, including a key rotation.
    let a2 = AgentRow {
        name: "renamed".into(),
        description: "now described".into(),
        scopes: vec!["staging/*".into()],
        vault_ids: vec![v2.id],
        token_ttl_seconds: Some(120),
        expires_at: Some(now() + Duration::days(1)),
        api_key_expires_at: Some(now() + Duration::hours(5)),
        is_active: false,
        key_prefix: "ocv_zzzz".into(),
        key_hash: vec![9; 32],
        ssh_public_key: Some("bmV3c3No".into()),
        ecdh_public_key: Some("bmV3ZWNkaA==".into()),
        extra: json!({"crypto_proxy_enabled": true}),
        updated_at: now() + Duration::seconds(1),
        ..a.clone()
    };
    assert!(audited!(
        s,
        org.id,
        1,
        s.update_agent(&a2, &audit(org.id, "agent.update"))
            .await
            .unwrap()
    ));
    assert_eq!(s.agent(a.id).await.unwrap(), Some(a2.clone()));
    assert!(s.agent_by_key_prefix("ocv_aaaa").await.unwrap().is_none());
    assert_eq!(
        s.agent_by_key_prefix("ocv_zzzz").await.unwrap(),
        Some(a2.clone())
    );
    // …and back to empty values.
    let a3 = AgentRow {
        scopes: vec![],
        vault_ids: vec![],
        token_ttl_seconds: None,
        expires_at: None,
        api_key_expires_at: None,
        is_active: true,
        ssh_public_key: None,
        ecdh_public_key: None,
        extra: json!({}),
        ..a2.clone()
    };
    assert!(
        s.update_agent(&a3, &audit(org.id, "agent.update"))
            .await
            .unwrap()
    );
    assert_eq!(s.agent(a.id).await.unwrap(), Some(a3.clone()));
    // The creator and the creation time are not mutable.
    let a4 = AgentRow {
        created_by: Subject::User(owner2.id),
        created_at: now() + Duration::hours(1),
        ..a3.clone()
    };
    assert!(
        s.update_agent(&a4, &audit(org.id, "agent.update"))
            .await
            .unwrap()
    );
    assert_eq!(s.agent(a.id).await.unwrap(), Some(a3.clone()));

    // Rotating onto another agent's prefix: Conflict, nothing changed.
    let clash = AgentRow {
        key_prefix: "ocv_bbbb".into(),
        ..a3.clone()
    };
    assert!(is_conflict(audited!(
        s,
        org.id,
        0,
        s.update_agent(&clash, &audit(org.id, "agent.update")).await
    )));
    assert_eq!(s.agent(a.id).await.unwrap(), Some(a3));
    assert_eq!(s.agent_by_key_prefix("ocv_bbbb").await.unwrap(), Some(b));

    // Unknown agent, or an agent of another org: false, nothing changed.
    assert!(!audited!(
        s,
        org.id,
        0,
        s.update_agent(
            &agent_row(&org, &owner, "ocv_new"),
            &audit(org.id, "agent.update")
        )
        .await
        .unwrap()
    ));
    assert!(s.agent_by_key_prefix("ocv_new").await.unwrap().is_none());
    let hijack = AgentRow {
        org_id: org.id,
        name: "hijacked".into(),
        ..c.clone()
    };
    assert!(
        !s.update_agent(&hijack, &audit(org.id, "agent.update"))
            .await
            .unwrap()
    );
    assert_eq!(s.agent(c.id).await.unwrap(), Some(c));
}

/// Personal API keys: create, look up by prefix, list, revoke only one's own.
pub async fn api_keys(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let (org2, owner2) = org_and_owner(s, "b@example.com", SignupGate::Open)
        .await
        .unwrap();
    let m = join(s, &org, &owner, "m@example.com", Role::Member).await;

    let k1 = ApiKeyRow {
        scopes: vec!["vaults:read".into(), "prod/**".into()],
        expires_at: Some(now() + Duration::days(30)),
        ..api_key_row(&owner, "1ck_aaaa")
    };
    audited!(
        s,
        org.id,
        1,
        s.create_api_key(&k1, &audit(org.id, "key.create")).await
    )
    .unwrap();
    let k2 = api_key_row(&owner, "1ck_bbbb");
    let km = api_key_row(&m, "1ck_mmmm");
    let ko = api_key_row(&owner2, "1ck_oooo");
    s.create_api_key(&k2, &audit(org.id, "key.create"))
        .await
        .unwrap();
    s.create_api_key(&km, &audit(org.id, "key.create"))
        .await
        .unwrap();
    s.create_api_key(&ko, &audit(org2.id, "key.create"))
        .await
        .unwrap();

    assert_eq!(
        s.api_key_by_prefix("1ck_aaaa").await.unwrap(),
        Some(k1.clone())
    );
    assert!(s.api_key_by_prefix("1ck_nope").await.unwrap().is_none());
    // Per user, oldest first.
    assert_eq!(
        s.list_api_keys(owner.id).await.unwrap(),
        vec![k1.clone(), k2.clone()]
    );
    assert_eq!(s.list_api_keys(m.id).await.unwrap(), vec![km.clone()]);
    assert_eq!(s.list_api_keys(owner2.id).await.unwrap(), vec![ko]);
    assert!(s.list_api_keys(UserId::new()).await.unwrap().is_empty());

    // Prefixes are unique across all keys.
    let dup = api_key_row(&m, "1ck_aaaa");
    assert!(is_conflict(audited!(
        s,
        org.id,
        0,
        s.create_api_key(&dup, &audit(org.id, "key.create")).await
    )));
    assert_eq!(s.list_api_keys(m.id).await.unwrap(), vec![km.clone()]);

    // Only the owner can revoke a key.
    assert!(!audited!(
        s,
        org.id,
        0,
        s.revoke_api_key(m.id, ApiKeyId(k1.id), &audit(org.id, "key.revoke"))
            .await
            .unwrap()
    ));
    assert!(
        !s.revoke_api_key(owner2.id, ApiKeyId(k1.id), &audit(org2.id, "key.revoke"))
            .await
            .unwrap()
    );
    assert!(
        !s.revoke_api_key(owner.id, ApiKeyId::new(), &audit(org.id, "key.revoke"))
            .await
            .unwrap()
    );
    assert!(
        s.api_key_by_prefix("1ck_aaaa")
            .await
            .unwrap()
            .unwrap()
            .is_active
    );
    assert!(audited!(
        s,
        org.id,
        1,
        s.revoke_api_key(owner.id, ApiKeyId(k1.id), &audit(org.id, "key.revoke"))
            .await
            .unwrap()
    ));
    let revoked = ApiKeyRow {
        is_active: false,
        ..k1.clone()
    };
    assert_eq!(
        s.api_key_by_prefix("1ck_aaaa").await.unwrap(),
        Some(revoked.clone())
    );
    assert_eq!(s.list_api_keys(owner.id).await.unwrap(), vec![revoked, k2]);
    assert_eq!(s.list_api_keys(m.id).await.unwrap(), vec![km]);
}

/// Policies: create, read, list, per-principal lookup, update, delete.
pub async fn policies(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let v = vault(s, &org, &owner).await;
    let v2 = vault(s, &org, &owner).await;
    let m = join(s, &org, &owner, "m@example.com", Role::Member).await;
    let mu = Subject::User(m.id);
    let ag = Subject::Agent(AgentId::new());

    let p1 = policy_row(&v, mu, "prod/**");
    audited!(
        s,
        org.id,
        1,
        s.create_policy(&p1, &audit(org.id, "policy.create")).await
    )
    .unwrap();
    assert_eq!(
        s.policy(PolicyId(p1.policy.id)).await.unwrap(),
        Some(p1.clone())
    );
    // Every field set.
    let mut p2 = policy_row(&v, ag, "**/password");
    p2.policy.permissions = vec![Permission::Read, Permission::Write, Permission::Delete];
    p2.policy.conditions = conditions();
    p2.policy.expires_at = Some(now() + Duration::days(3));
    p2.policy.effect = Effect::Deny;
    p2.policy.priority = 5;
    p2.extra = json!({"attribute_conditions": {"env": "prod"}, "tx_conditions": [1]});
    let p3 = policy_row(&v, Subject::User(owner.id), "dev/*");
    let p4 = policy_row(&v2, mu, "**");
    // Same uuid as m, but an agent: a different principal.
    let p5 = policy_row(&v, Subject::Agent(AgentId(m.id.0)), "x");
    for p in [&p2, &p3, &p4, &p5] {
        s.create_policy(p, &audit(org.id, "policy.create"))
            .await
            .unwrap();
    }
    assert_eq!(
        s.policy(PolicyId(p2.policy.id)).await.unwrap(),
        Some(p2.clone())
    );
    assert!(s.policy(PolicyId::new()).await.unwrap().is_none());
    assert!(is_conflict(
        s.create_policy(&p1, &audit(org.id, "policy.create")).await
    ));

    // Per vault, oldest first.
    assert_eq!(
        s.list_policies(v.id).await.unwrap(),
        vec![p1.clone(), p2.clone(), p3.clone(), p5.clone()]
    );
    assert_eq!(s.list_policies(v2.id).await.unwrap(), vec![p4.clone()]);
    assert!(s.list_policies(VaultId::new()).await.unwrap().is_empty());
    // Only that principal, only that vault.
    assert_eq!(
        s.policies_for(v.id, &mu).await.unwrap(),
        vec![p1.policy.clone()]
    );
    assert_eq!(
        s.policies_for(v.id, &ag).await.unwrap(),
        vec![p2.policy.clone()]
    );
    assert_eq!(
        s.policies_for(v2.id, &mu).await.unwrap(),
        vec![p4.policy.clone()]
    );
    assert!(s.policies_for(v2.id, &ag).await.unwrap().is_empty());
    let mut for_owner = s
        .policies_for(v.id, &Subject::User(owner.id))
        .await
        .unwrap();
    for_owner.sort_by_key(|p| p.id);
    assert_eq!(for_owner, vec![p3.policy.clone()]);

    // Every mutable field round-trips.
    let mut u = p1.clone();
    u.policy.permissions = vec![Permission::Write, Permission::Rotate];
    u.policy.conditions = conditions();
    u.policy.expires_at = Some(now() + Duration::hours(2));
    u.policy.effect = Effect::Deny;
    u.policy.priority = 7;
    u.extra = json!({"note": "tightened"});
    u.updated_at = now() + Duration::seconds(1);
    assert!(audited!(
        s,
        org.id,
        1,
        s.update_policy(&u, &audit(org.id, "policy.update"))
            .await
            .unwrap()
    ));
    assert_eq!(
        s.policy(PolicyId(p1.policy.id)).await.unwrap(),
        Some(u.clone())
    );
    assert_eq!(
        s.policy(PolicyId(p1.policy.id))
            .await
            .unwrap()
            .unwrap()
            .policy
            .conditions,
        conditions()
    );
    assert_eq!(
        s.policies_for(v.id, &mu).await.unwrap(),
        vec![u.policy.clone()]
    );
    // …and back.
    let mut back = u.clone();
    back.policy.permissions = vec![Permission::Read];
    back.policy.conditions = Conditions::default();
    back.policy.expires_at = None;
    back.policy.effect = Effect::Allow;
    back.policy.priority = 0;
    back.extra = json!({});
    assert!(
        s.update_policy(&back, &audit(org.id, "policy.update"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.policy(PolicyId(p1.policy.id)).await.unwrap(),
        Some(back.clone())
    );
    // Pattern, principal, creator and creation time are not mutable.
    let mut fixed = back.clone();
    fixed.policy.pattern = PathPattern::parse("**").unwrap();
    fixed.policy.principal = Subject::User(owner.id);
    fixed.created_by = Subject::User(m.id);
    fixed.created_at = now() + Duration::hours(1);
    assert!(
        s.update_policy(&fixed, &audit(org.id, "policy.update"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.policy(PolicyId(p1.policy.id)).await.unwrap(),
        Some(back.clone())
    );

    // Unknown policy, or a policy named under the wrong vault: false.
    assert!(!audited!(
        s,
        org.id,
        0,
        s.update_policy(&policy_row(&v, mu, "**"), &audit(org.id, "policy.update"))
            .await
            .unwrap()
    ));
    let mut moved = p4.clone();
    moved.policy.vault_id = v.id;
    moved.policy.priority = 9;
    assert!(
        !s.update_policy(&moved, &audit(org.id, "policy.update"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.policy(PolicyId(p4.policy.id)).await.unwrap(),
        Some(p4.clone())
    );

    // Delete: true once, then false.
    assert!(audited!(
        s,
        org.id,
        1,
        s.delete_policy(PolicyId(p1.policy.id), &audit(org.id, "policy.delete"))
            .await
            .unwrap()
    ));
    assert!(s.policy(PolicyId(p1.policy.id)).await.unwrap().is_none());
    assert!(s.policies_for(v.id, &mu).await.unwrap().is_empty());
    assert!(!audited!(
        s,
        org.id,
        0,
        s.delete_policy(PolicyId(p1.policy.id), &audit(org.id, "policy.delete"))
            .await
            .unwrap()
    ));
    assert_eq!(s.list_policies(v.id).await.unwrap(), vec![p2, p3, p5]);
    assert_eq!(s.list_policies(v2.id).await.unwrap(), vec![p4]);
}

/// Settings: set, replace, init once.
pub async fn settings(s: &dyn Store) {
    assert!(s.setting("pepper").await.unwrap().is_none());
    assert_eq!(s.init_setting("pepper", "first").await.unwrap(), "first");
    assert_eq!(s.setting("pepper").await.unwrap().as_deref(), Some("first"));
    // The first value stays in force.
    assert_eq!(s.init_setting("pepper", "second").await.unwrap(), "first");
    assert_eq!(s.setting("pepper").await.unwrap().as_deref(), Some("first"));
    // Settings are independent.
    assert_eq!(s.init_setting("other", "x").await.unwrap(), "x");
    assert_eq!(s.setting("pepper").await.unwrap().as_deref(), Some("first"));
    assert!(s.setting("missing").await.unwrap().is_none());
}

/// The server's own vaults: found by kind, one of each kind per organisation,
/// no creator.
pub async fn system_vaults(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let (org2, owner2) = org_and_owner(s, "b@example.com", SignupGate::Open)
        .await
        .unwrap();
    // A standard vault named like the system one is not it.
    let impostor = VaultRow {
        id: VaultId::new(),
        name: "__agent-keys".into(),
        ..vault(s, &org, &owner).await
    };
    s.create_vault(&impostor, &audit(org.id, "vault.create"))
        .await
        .unwrap();
    assert!(
        s.system_vault(org.id, VaultKind::AgentKeys)
            .await
            .unwrap()
            .is_none()
    );
    let keys = VaultRow {
        id: VaultId::new(),
        name: "__agent-keys".into(),
        created_by: None,
        kind: VaultKind::AgentKeys,
        ..vault(s, &org2, &owner2).await
    };
    let other_org_keys = VaultRow {
        id: VaultId::new(),
        org_id: org.id,
        ..keys.clone()
    };
    s.create_vault(&keys, &audit(org2.id, "vault.create"))
        .await
        .unwrap();
    s.create_vault(&other_org_keys, &audit(org.id, "vault.create"))
        .await
        .unwrap();
    assert_eq!(
        s.system_vault(org2.id, VaultKind::AgentKeys).await.unwrap(),
        Some(keys.clone())
    );
    assert_eq!(s.vault(keys.id).await.unwrap(), Some(keys.clone()));
    // A second one in the same organisation is a conflict, and not audited.
    let before = chain_len(s, org2.id).await;
    let second = VaultRow {
        id: VaultId::new(),
        ..keys.clone()
    };
    assert!(matches!(
        s.create_vault(&second, &audit(org2.id, "vault.create"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(chain_len(s, org2.id).await, before);
    assert!(s.vault(second.id).await.unwrap().is_none());
}

/// An agent's token generation only moves forward, and the status of a
/// request reports it with the agent's Intents API flag.
pub async fn token_generations(s: &dyn Store) {
    let (org, owner) = org_and_owner(s, "a@example.com", SignupGate::Open)
        .await
        .unwrap();
    let a = AgentRow {
        extra: json!({"intents_api_enabled": true}),
        ..agent_row(&org, &owner, "ocv_gen1")
    };
    s.create_agent(&a, &audit(org.id, "agent.create"))
        .await
        .unwrap();
    let status = |st: PrincipalStatus| (st.active, st.token_generation, st.intents_api);
    let subject = Subject::Agent(a.id);
    assert_eq!(
        status(s.principal_status(org.id, &subject, None).await.unwrap()),
        (true, 0, true)
    );
    let bumped = AgentRow {
        token_generation: 2,
        extra: json!({"intents_api_enabled": false}),
        ..a.clone()
    };
    assert!(
        s.update_agent(&bumped, &audit(org.id, "agent.update"))
            .await
            .unwrap()
    );
    assert_eq!(
        status(s.principal_status(org.id, &subject, None).await.unwrap()),
        (true, 2, false)
    );
    // A stale copy written later can't move it back.
    let stale = AgentRow {
        token_generation: 1,
        ..bumped.clone()
    };
    assert!(
        s.update_agent(&stale, &audit(org.id, "agent.update"))
            .await
            .unwrap()
    );
    assert_eq!(s.agent(a.id).await.unwrap().unwrap().token_generation, 2);
    // A user's status carries no generation; an inactive agent none either.
    let inactive = AgentRow {
        is_active: false,
        ..bumped
    };
    s.update_agent(&inactive, &audit(org.id, "agent.update"))
        .await
        .unwrap();
    assert_eq!(
        status(s.principal_status(org.id, &subject, None).await.unwrap()),
        (false, 0, false)
    );
    let me = s
        .principal_status(org.id, &Subject::User(owner.id), None)
        .await
        .unwrap();
    assert_eq!((me.token_generation, me.intents_api), (0, false));
}
