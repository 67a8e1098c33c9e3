//! Cases of [`SecretStore`]: versions, listing, deletion, counted reads, concurrent writers.

use serde_json::json;
use strongroom_core::{SecretId, SecretPath, Subject};

use super::fixtures::*;
use crate::*;

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
