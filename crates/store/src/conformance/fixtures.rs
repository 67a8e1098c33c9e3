//! Fixtures shared by the cases: rows, audit records, an organisation with its owner.

use serde_json::json;
use strongroom_core::audit::{Actor, AuditRecord};
use strongroom_core::policy::{Conditions, Effect, PathPattern, Permission, Policy};
use strongroom_core::time_util::now;
use strongroom_core::{
    AgentId, ApiKeyId, OrgId, PolicyId, Role, SecretId, SecretPath, Subject, UserId, VaultId,
};
use time::Duration;
use uuid::Uuid;

use crate::*;

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

pub(super) fn envelope(tag: u8) -> Envelope {
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

/// The length of an organisation's audit chain.
pub async fn chain_len(s: &dyn Store, org: OrgId) -> usize {
    s.audit_chain(org, 1, 100_000).await.unwrap().len()
}

pub(super) fn is_conflict<T: std::fmt::Debug>(r: StoreResult<T>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

pub(super) fn user_row(org: &OrgRow, email: &str, role: Role) -> UserRow {
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

pub(super) fn invitation_row(org: &OrgRow, by: &UserRow, email: &str, role: Role) -> InvitationRow {
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

pub(super) fn agent_row(org: &OrgRow, by: &UserRow, prefix: &str) -> AgentRow {
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

pub(super) fn api_key_row(user: &UserRow, prefix: &str) -> ApiKeyRow {
    ApiKeyRow {
        id: ApiKeyId::new(),
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

/// A policy granting `who` read on `pattern` in `v`.
pub fn policy_row(v: &VaultRow, who: Subject, pattern: &str) -> PolicyRow {
    PolicyRow {
        policy: Policy {
            id: PolicyId::new(),
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

pub(super) fn conditions() -> Conditions {
    Conditions::from_json(&json!({
        "ip_allowlist": ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"],
        "time_window": {"after": "22:00", "before": "06:00", "timezone": "Europe/Paris", "days": ["fri", "mon"]},
    }))
    .unwrap()
}
