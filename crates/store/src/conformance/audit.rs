//! Cases of [`AuditStore`]: chains, heads, queries, checkpoints, concurrent appends.

use serde_json::json;
use strongroom_core::audit::Checkpoint;

use super::fixtures::*;
use crate::*;

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
