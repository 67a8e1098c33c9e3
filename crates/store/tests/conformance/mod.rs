//! The store conformance suite: every `Store` back-end must pass it unchanged.
//! Each check takes a fresh, empty store.

use serde_json::json;
use strongroom_core::audit::{Actor, AuditRecord};
use strongroom_core::time_util::now;
use strongroom_core::{OrgId, Role, SecretId, SecretPath, Subject, UserId, VaultId};
use strongroom_store::*;

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

pub async fn vault(s: &dyn Store, org: &OrgRow, owner: &UserRow) -> VaultRow {
    let v = VaultRow {
        id: VaultId::new(),
        org_id: org.id,
        name: "main".into(),
        description: "".into(),
        kek_ref: "kek-1".into(),
        created_by: Subject::User(owner.id),
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
        kek_version: 1,
    }
}

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
        created_by: v.created_by,
        created_at: now(),
    }
}

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
    s.insert_version(
        &new_version(&v1, "a/b", SecretId::new(), 0, 1),
        &audit(org.id, "secret.write"),
    )
    .await
    .unwrap();
    assert!(
        s.delete_vault(v1.id, &audit(org.id, "vault.delete"))
            .await
            .unwrap()
    );
    assert!(s.vault(v1.id).await.unwrap().is_none());
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
    assert!(row.secret_deleted);
    // Writing again undeletes and continues the numbering.
    s.insert_version(
        &new_version(&v, "prod/a", head.id, 2, 3),
        &audit(org.id, "w"),
    )
    .await
    .unwrap();
    let head = s
        .secret_head(v.id, &SecretPath::parse("prod/a").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((head.latest_version, head.deleted), (3, false));
}

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
        .audit_chain(&org.id.to_string(), 1, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"r2".to_string()));
    assert!(!actions.contains(&"r3".to_string()));
}

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
    let all = s.audit_chain(&org_s, 1, 100).await.unwrap();
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
    assert_eq!(
        s.audit_chain(&org2.id.to_string(), 1, 100)
            .await
            .unwrap()
            .len(),
        1
    );
    // Resuming a stretch from the middle.
    let tail = s.audit_chain(&org_s, 4, 2).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);

    let heads = s.audit_heads().await.unwrap();
    let h = heads.iter().find(|h| h.org_id == org_s).unwrap();
    assert_eq!(
        (h.seq, h.hash.as_str()),
        (6, all[5].integrity_hash.as_str())
    );

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
    s.insert_checkpoint(&cp).await.unwrap();
    s.insert_checkpoint(&cp).await.unwrap();
    assert_eq!(s.checkpoints(&org_s).await.unwrap(), vec![cp]);
    assert!(
        s.checkpoints(&org2.id.to_string())
            .await
            .unwrap()
            .is_empty()
    );
}

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
    let all = s.audit_chain(&org.id.to_string(), 1, 1000).await.unwrap();
    assert_eq!(all.len(), 201);
    let r = verify_chain(&all, &[], 1, (GENESIS_HASH, None), &|_, _, _| false);
    assert!(r.chain_valid, "{r:?}");
}

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
