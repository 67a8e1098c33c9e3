//! Cases of [`VaultKeyStore`]: vaults, system vaults, KEK references and rewraps.

use strongroom_core::{SecretId, SecretPath, Subject, VaultId};

use super::fixtures::*;
use crate::*;

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
    assert!(s.policy(p1.policy.id).await.unwrap().is_none());
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
