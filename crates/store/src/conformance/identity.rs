//! Cases of [`IdentityStore`]: signup, invitations, users and roles, principal status, revocation, agents, API keys.

use serde_json::json;
use strongroom_core::time_util::now;
use strongroom_core::{AgentId, ApiKeyId, OrgId, Role, Subject, UserId};
use time::Duration;

use super::fixtures::*;
use crate::*;

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
    assert!(s.policy(p_m.policy.id).await.unwrap().is_none());
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
        s.revoke_api_key(m.id, k1.id, &audit(org.id, "key.revoke"))
            .await
            .unwrap()
    ));
    assert!(
        !s.revoke_api_key(owner2.id, k1.id, &audit(org2.id, "key.revoke"))
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
        s.revoke_api_key(owner.id, k1.id, &audit(org.id, "key.revoke"))
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
