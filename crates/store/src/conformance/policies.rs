//! Cases of [`PolicyStore`].

use serde_json::json;
use strongroom_core::policy::{Conditions, Effect, PathPattern, Permission};
use strongroom_core::time_util::now;
use strongroom_core::{AgentId, PolicyId, Role, Subject, VaultId};
use time::Duration;

use super::fixtures::*;
use crate::*;

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
    assert_eq!(s.policy(p1.policy.id).await.unwrap(), Some(p1.clone()));
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
    assert_eq!(s.policy(p2.policy.id).await.unwrap(), Some(p2.clone()));
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
    assert_eq!(s.policy(p1.policy.id).await.unwrap(), Some(u.clone()));
    assert_eq!(
        s.policy(p1.policy.id)
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
    assert_eq!(s.policy(p1.policy.id).await.unwrap(), Some(back.clone()));
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
    assert_eq!(s.policy(p1.policy.id).await.unwrap(), Some(back.clone()));

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
    assert_eq!(s.policy(p4.policy.id).await.unwrap(), Some(p4.clone()));

    // Delete: true once, then false.
    assert!(audited!(
        s,
        org.id,
        1,
        s.delete_policy(p1.policy.id, &audit(org.id, "policy.delete"))
            .await
            .unwrap()
    ));
    assert!(s.policy(p1.policy.id).await.unwrap().is_none());
    assert!(s.policies_for(v.id, &mu).await.unwrap().is_empty());
    assert!(!audited!(
        s,
        org.id,
        0,
        s.delete_policy(p1.policy.id, &audit(org.id, "policy.delete"))
            .await
            .unwrap()
    ));
    assert_eq!(s.list_policies(v.id).await.unwrap(), vec![p2, p3, p5]);
    assert_eq!(s.list_policies(v2.id).await.unwrap(), vec![p4]);
}
