//! Invitations, vault deletion and secret deletion, end to end through the
//! real router, in process (issue 10: taking over an invitation across
//! organisations, probing for accounts by inviting, a vault with policies that
//! could not be deleted, deleted versions brought back by a later write).
//!
//! Each test shows both sides: what the rule allows still works, and what it
//! refuses is refused.

mod support;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use strongroom_core::audit::{Actor, AuditRecord};
use strongroom_core::{OrgId, PolicyId, Role, SecretPath, Subject, UserId, VaultId};
use strongroom_crypto::SecretContext;
use strongroom_crypto::password::PasswordParams;
use strongroom_engine::Admin;
use strongroom_kms::WrappedDek;
use strongroom_store::{OrgRow, SignupGate, UserRow};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tower::ServiceExt;

const PASSWORD: &str = "Correct-Horse-42!";

struct Resp {
    status: StatusCode,
    body: Bytes,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    fn expect(self, status: StatusCode, what: &str) -> Value {
        assert_eq!(self.status, status, "{what}: body {}", self.text());
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
}

struct H {
    app: Router,
    engine: Arc<Admin>,
    dir: tempfile::TempDir,
    /// The first sign-up: owner of organisation A.
    owner: String,
}

impl H {
    /// A server with closed sign-up (the default) and its first owner.
    async fn new() -> Self {
        let (app, engine, dir) = support::app().await;
        let mut h = H {
            app,
            engine,
            dir,
            owner: String::new(),
        };
        h.owner = h
            .signup("owner-a@example.com", None)
            .await
            .expect(StatusCode::CREATED, "first sign-up")["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        h
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                b = b.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let resp = self
            .app
            .clone()
            .oneshot(b.body(body).unwrap())
            .await
            .expect("infallible");
        let (parts, body) = resp.into_parts();
        Resp {
            status: parts.status,
            body: axum::body::to_bytes(body, usize::MAX).await.unwrap(),
        }
    }

    async fn get(&self, token: &str, uri: &str) -> Resp {
        self.send(Method::GET, uri, Some(token), None).await
    }

    async fn post(&self, token: &str, uri: &str, body: Value) -> Resp {
        self.send(Method::POST, uri, Some(token), Some(body)).await
    }

    async fn put(&self, token: &str, uri: &str, body: Value) -> Resp {
        self.send(Method::PUT, uri, Some(token), Some(body)).await
    }

    async fn delete(&self, token: &str, uri: &str) -> Resp {
        self.send(Method::DELETE, uri, Some(token), None).await
    }

    async fn signup(&self, email: &str, invite_token: Option<&str>) -> Resp {
        let mut body = json!({"email": email, "password": PASSWORD});
        if let Some(t) = invite_token {
            body["invite_token"] = json!(t);
        }
        self.send(Method::POST, "/v1/auth/signup", None, Some(body))
            .await
    }

    /// Another organisation with its owner (sign-up is closed, so it is made
    /// in the store); returns the owner's token.
    async fn other_org(&self, email: &str) -> String {
        let (org, user, now) = (OrgId::new(), UserId::new(), OffsetDateTime::now_utc());
        let password_hash = strongroom_crypto::password::hash(
            PASSWORD,
            PasswordParams {
                m_cost: 256,
                t_cost: 1,
            },
        );
        self.engine
            .store()
            .create_org_with_owner(
                &OrgRow {
                    id: org,
                    name: "b".into(),
                    created_at: now,
                },
                &UserRow {
                    id: user,
                    org_id: org,
                    email: email.into(),
                    display_name: None,
                    password_hash,
                    role: Role::Owner,
                    created_at: now,
                },
                SignupGate::Open,
                &AuditRecord::new(
                    org,
                    Actor::Subject(Subject::User(user)),
                    "auth.signup",
                    "user",
                    user.to_string(),
                    json!({}),
                    None,
                ),
            )
            .await
            .unwrap();
        self.send(
            Method::POST,
            "/v1/auth/token",
            None,
            Some(json!({"email": email, "password": PASSWORD})),
        )
        .await
        .expect(StatusCode::OK, "login")["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Invites `email` as `role`; returns the whole answer.
    async fn invite(&self, token: &str, email: &str, role: &str) -> Value {
        self.post(
            token,
            "/v1/org/invite",
            json!({"email": email, "role": role}),
        )
        .await
        .expect(StatusCode::CREATED, &format!("invite {email}"))
    }

    async fn members(&self, token: &str) -> Vec<(String, String)> {
        let mut m: Vec<_> = self
            .get(token, "/v1/org/members")
            .await
            .expect(StatusCode::OK, "members")["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["email"].as_str().unwrap().to_owned(),
                    m["role"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        m.sort();
        m
    }

    async fn me(&self, token: &str) -> Value {
        self.get(token, "/v1/auth/me")
            .await
            .expect(StatusCode::OK, "me")
    }

    async fn create_vault(&self, name: &str) -> String {
        self.post(&self.owner, "/v1/vaults", json!({"name": name}))
            .await
            .expect(StatusCode::CREATED, "create vault")["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn put_value(&self, token: &str, vault: &str, path: &str, value: &str) -> Value {
        self.put(
            token,
            &format!("/v1/vaults/{vault}/secrets/{path}"),
            json!({"value": value}),
        )
        .await
        .expect(StatusCode::CREATED, &format!("put {path}"))
    }

    /// A new agent's token.
    async fn agent(&self) -> (String, String) {
        let v = self
            .post(&self.owner, "/v1/agents", json!({"name": "bot"}))
            .await
            .expect(StatusCode::CREATED, "create agent");
        let id = v["agent"]["id"].as_str().unwrap().to_owned();
        let token = self
            .send(
                Method::POST,
                "/v1/auth/agent-token",
                None,
                Some(json!({"api_key": v["api_key"]})),
            )
            .await
            .expect(StatusCode::OK, "agent token")["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        (id, token)
    }

    /// Every byte the database keeps on disk.
    fn database_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for f in ["db.sqlite", "db.sqlite-wal"] {
            if let Ok(b) = std::fs::read(self.dir.path().join(f)) {
                all.extend(b);
            }
        }
        all
    }
}

fn token_of(invite: &Value) -> String {
    invite["invite_token"].as_str().unwrap().to_owned()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

// ---------------------------------------------------------------------------
// Invitations
// ---------------------------------------------------------------------------

/// Two organisations invite the same email: each keeps its own invitation, the
/// later one can't take over the earlier, and each token joins only its own
/// organisation. An invited email without its token is an uninvited sign-up.
#[tokio::test]
async fn an_invitation_joins_only_the_organisation_whose_token_is_presented() {
    let h = H::new().await;
    let b = h.other_org("owner-b@example.com").await;
    let closed = h
        .signup("stranger@example.com", None)
        .await
        .expect(StatusCode::FORBIDDEN, "uninvited sign-up");

    // A invites first; B invites the same email afterwards (the takeover).
    let from_a = h.invite(&h.owner, "victim@example.com", "admin").await;
    let from_b = h.invite(&b, "victim@example.com", "member").await;
    for inv in [&from_a, &from_b] {
        let t = token_of(inv);
        assert!(t.starts_with("inv_") && t.len() == 4 + 43, "{t}");
        assert_eq!(inv["email"], "victim@example.com");
        assert!(inv["message"].is_string());
        let expires = OffsetDateTime::parse(inv["expires_at"].as_str().unwrap(), &Rfc3339).unwrap();
        let left = expires - OffsetDateTime::now_utc();
        assert!(
            left > time::Duration::days(7) - time::Duration::minutes(5)
                && left <= time::Duration::days(7),
            "expires in {left}"
        );
    }
    assert_ne!(token_of(&from_a), token_of(&from_b));

    // Without its token, with a made-up one or with another email's token, an
    // invited email is an uninvited sign-up: the closed answer, nothing joined.
    let made_up = format!("inv_{}", "A".repeat(43));
    let other = h
        .invite(&h.owner, "someone-else@example.com", "member")
        .await;
    for t in [
        None,
        Some(made_up.as_str()),
        Some("inv_"),
        Some(token_of(&other).as_str()),
    ] {
        let r = h
            .signup("victim@example.com", t)
            .await
            .expect(StatusCode::FORBIDDEN, &format!("sign-up with {t:?}"));
        assert_eq!(
            r, closed,
            "sign-up with {t:?} differs from an uninvited one"
        );
    }

    // A's token joins A with A's role, whatever B did since.
    let victim = h
        .signup("victim@example.com", Some(&token_of(&from_a)))
        .await
        .expect(StatusCode::CREATED, "sign-up with A's token")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = h.me(&victim).await;
    assert_eq!(me["org_id"], h.me(&h.owner).await["org_id"]);
    assert_eq!(me["role"], "admin");
    assert!(
        h.members(&h.owner)
            .await
            .contains(&("victim@example.com".into(), "admin".into()))
    );
    assert_eq!(
        h.members(&b).await,
        vec![("owner-b@example.com".into(), "owner".into())]
    );
    // B's token can't join now that the email is taken.
    h.signup("victim@example.com", Some(&token_of(&from_b)))
        .await
        .expect(StatusCode::FORBIDDEN, "B's token after A's was used");

    // And the other way round: B's token joins B, not A.
    let a_inv = h.invite(&h.owner, "second@example.com", "member").await;
    let b_inv = h.invite(&b, "second@example.com", "admin").await;
    let second = h
        .signup("second@example.com", Some(&token_of(&b_inv)))
        .await
        .expect(StatusCode::CREATED, "sign-up with B's token")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(h.me(&second).await["org_id"], h.me(&b).await["org_id"]);
    assert_eq!(h.me(&second).await["role"], "admin");
    assert!(
        !h.members(&h.owner)
            .await
            .iter()
            .any(|(e, _)| e == "second@example.com")
    );
    drop(a_inv);
}

/// A token is single use and expires; it is stored only as an HMAC and never
/// appears in the audit log.
#[tokio::test]
async fn an_invitation_token_is_single_use_expires_and_is_never_stored() {
    let h = H::new().await;
    let inv = h.invite(&h.owner, "once@example.com", "member").await;
    let token = token_of(&inv);
    let joined = h
        .signup("once@example.com", Some(&token))
        .await
        .expect(StatusCode::CREATED, "first use")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Removed again, the member can't come back with the same token.
    let id = h.me(&joined).await["id"].as_str().unwrap().to_owned();
    h.delete(&h.owner, &format!("/v1/org/members/{id}"))
        .await
        .expect(StatusCode::NO_CONTENT, "remove member");
    h.signup("once@example.com", Some(&token))
        .await
        .expect(StatusCode::FORBIDDEN, "second use");

    // An expired invitation joins nothing; a fresh one does.
    let late = h.invite(&h.owner, "late@example.com", "member").await;
    let store = h.engine.store();
    let mut row = store
        .invitations("late@example.com")
        .await
        .unwrap()
        .remove(0);
    row.expires_at = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let audit = AuditRecord::new(
        row.org_id,
        Actor::Anonymous,
        "test.expire",
        "invitation",
        "late@example.com",
        json!({}),
        None,
    );
    store.put_invitation(&row, &audit).await.unwrap();
    h.signup("late@example.com", Some(&token_of(&late)))
        .await
        .expect(StatusCode::FORBIDDEN, "expired invitation");
    let fresh = h.invite(&h.owner, "late@example.com", "member").await;
    h.signup("late@example.com", Some(&token_of(&late)))
        .await
        .expect(StatusCode::FORBIDDEN, "the replaced token");
    h.signup("late@example.com", Some(&token_of(&fresh)))
        .await
        .expect(StatusCode::CREATED, "fresh invitation");

    // No token in the database (an HMAC only) nor in the audit log.
    let pending = h.invite(&h.owner, "pending@example.com", "member").await;
    let pending_token = token_of(&pending);
    let rows = store.invitations("pending@example.com").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].token_hash.len(), 32);
    let disk = h.database_bytes();
    for t in [&token, &token_of(&late), &token_of(&fresh), &pending_token] {
        assert!(
            !contains(&disk, t),
            "an invitation token is in the database"
        );
        assert!(
            !contains(&disk, &t[4..]),
            "an invitation token is in the database"
        );
    }
    let events = h
        .get(&h.owner, "/v1/audit/events?limit=1000")
        .await
        .expect(StatusCode::OK, "audit");
    let text = events.to_string();
    assert!(text.contains("member.invite"));
    assert!(
        !text.contains(&pending_token[4..]),
        "the token is in the audit log"
    );
    assert!(!text.contains(&token[4..]), "the token is in the audit log");
}

/// Inviting an email that has an account (anywhere on the server) answers
/// exactly like inviting one that has none, so invitations can't be used to
/// find out who has an account; the invitation can't be accepted.
#[tokio::test]
async fn inviting_does_not_tell_whether_an_account_exists() {
    let h = H::new().await;
    h.other_org("elsewhere@example.com").await;
    let shape = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        (keys, v["message"].clone(), v["role"].clone())
    };
    let r_taken = h
        .post(
            &h.owner,
            "/v1/org/invite",
            json!({"email": "elsewhere@example.com"}),
        )
        .await;
    let r_free = h
        .post(
            &h.owner,
            "/v1/org/invite",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(r_taken.status, r_free.status);
    let taken = r_taken.expect(StatusCode::CREATED, "invite an existing account");
    let free = r_free.expect(StatusCode::CREATED, "invite a new email");
    assert_eq!(shape(&taken), shape(&free));
    // Members of the inviting organisation too.
    let own = h.invite(&h.owner, "owner-a@example.com", "member").await;
    assert_eq!(shape(&own), shape(&free));

    // The invitation for the taken email joins nothing; the other one joins.
    h.signup("elsewhere@example.com", Some(&token_of(&taken)))
        .await
        .expect(StatusCode::FORBIDDEN, "accepting for a taken email");
    h.signup("nobody@example.com", Some(&token_of(&free)))
        .await
        .expect(StatusCode::CREATED, "accepting for a new email");
}

// ---------------------------------------------------------------------------
// Vault deletion
// ---------------------------------------------------------------------------

/// A vault with policies and secrets (live and deleted) is deleted with 204:
/// its policies go with it and its KEK is destroyed, so its wrapped DEKs no
/// longer unwrap.
#[tokio::test]
async fn deleting_a_vault_with_policies_removes_them_and_shreds_its_key() {
    let h = H::new().await;
    let vault = h.create_vault("doomed").await;
    let kept = h.create_vault("kept").await;
    h.put_value(&h.owner, &vault, "db/password", "DOOMED-VALUE")
        .await;
    h.put_value(&h.owner, &vault, "old", "OLD-VALUE").await;
    h.delete(&h.owner, &format!("/v1/vaults/{vault}/secrets/old"))
        .await
        .expect(StatusCode::NO_CONTENT, "delete a secret");
    h.put_value(&h.owner, &kept, "db/password", "KEPT-VALUE")
        .await;
    let (agent_id, agent) = h.agent().await;
    let policy = json!({"secret_path_pattern": "db/**", "principal_type": "agent",
                        "principal_id": agent_id, "permissions": ["read"]});
    let mut policies = Vec::new();
    for v in [&vault, &kept] {
        let p = h
            .post(
                &h.owner,
                &format!("/v1/vaults/{v}/policies"),
                policy.clone(),
            )
            .await
            .expect(StatusCode::CREATED, "policy");
        policies.push(p["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
    }
    let r = h
        .get(&agent, &format!("/v1/vaults/{vault}/secrets/db/password"))
        .await
        .expect(StatusCode::OK, "the agent reads before the deletion");
    assert_eq!(r["value"], "DOOMED-VALUE");

    // What a copy of the database would hold: the KEK reference and a wrapped DEK.
    let id: VaultId = vault.parse().unwrap();
    let store = h.engine.store();
    let kek = store.vault(id).await.unwrap().unwrap().kek_ref;
    let path = SecretPath::parse("db/password").unwrap();
    let row = store.version(id, &path, None).await.unwrap().unwrap();
    let wrapped = WrappedDek {
        kek_version: row.envelope.kek_version,
        blob: row.envelope.wrapped_dek.clone(),
    };
    let aad = SecretContext {
        vault: id,
        path: &path,
        version: row.meta.version,
    }
    .dek_wrap_aad();
    assert!(h.engine.kms().unwrap(&kek, &wrapped, &aad).await.is_ok());

    h.delete(&h.owner, &format!("/v1/vaults/{vault}"))
        .await
        .expect(StatusCode::NO_CONTENT, "delete a vault with policies");

    assert!(
        h.engine.kms().unwrap(&kek, &wrapped, &aad).await.is_err(),
        "the deleted vault's KEK still unwraps"
    );
    assert!(store.policy(PolicyId(policies[0])).await.unwrap().is_none());
    assert!(store.list_policies(id).await.unwrap().is_empty());
    assert!(store.vault(id).await.unwrap().is_none());
    h.get(&h.owner, &format!("/v1/vaults/{vault}"))
        .await
        .expect(StatusCode::NOT_FOUND, "the deleted vault");
    h.get(&agent, &format!("/v1/vaults/{vault}/secrets/db/password"))
        .await
        .expect(StatusCode::NOT_FOUND, "the agent after the deletion");
    // The other vault, its policy and its key are untouched.
    assert!(store.policy(PolicyId(policies[1])).await.unwrap().is_some());
    let r = h
        .get(&agent, &format!("/v1/vaults/{kept}/secrets/db/password"))
        .await
        .expect(StatusCode::OK, "the other vault");
    assert_eq!(r["value"], "KEPT-VALUE");
}

// ---------------------------------------------------------------------------
// Secret deletion
// ---------------------------------------------------------------------------

/// Deleting a secret deletes the versions it has; a later write (here by an
/// agent that may only write) starts a live version 3 without bringing 1 and
/// 2 back.
#[tokio::test]
async fn a_write_after_a_delete_does_not_bring_deleted_versions_back() {
    let h = H::new().await;
    let vault = h.create_vault("v").await;
    let uri = |p: &str| format!("/v1/vaults/{vault}/{p}");
    h.put_value(&h.owner, &vault, "app/key", "FIRST-VALUE")
        .await;
    h.put_value(&h.owner, &vault, "app/key", "SECOND-VALUE")
        .await;
    h.delete(&h.owner, &uri("secrets/app/key"))
        .await
        .expect(StatusCode::NO_CONTENT, "delete");
    h.get(&h.owner, &uri("secrets/app/key"))
        .await
        .expect(StatusCode::GONE, "latest after the deletion");

    let (agent_id, agent) = h.agent().await;
    h.post(
        &h.owner,
        &uri("policies"),
        json!({"secret_path_pattern": "app/**", "principal_type": "agent",
               "principal_id": agent_id, "permissions": ["write"]}),
    )
    .await
    .expect(StatusCode::CREATED, "write-only policy");
    h.get(&agent, &uri("secrets/app/key"))
        .await
        .expect(StatusCode::FORBIDDEN, "the agent can't read");
    let written = h.put_value(&agent, &vault, "app/key", "THIRD-VALUE").await;
    assert_eq!(written["version"], 3, "{written}");

    for n in [1, 2] {
        let r = h
            .get(&h.owner, &uri(&format!("secret-version/app/key/{n}")))
            .await;
        let text = r.text();
        assert_eq!(r.status, StatusCode::GONE, "version {n}: {text}");
        assert!(!text.contains("FIRST-VALUE") && !text.contains("SECOND-VALUE"));
    }
    let r = h
        .get(&h.owner, &uri("secrets/app/key"))
        .await
        .expect(StatusCode::OK, "the new version");
    assert_eq!(r["value"], "THIRD-VALUE");
    let r = h
        .get(&h.owner, &uri("secret-version/app/key/3"))
        .await
        .expect(StatusCode::OK, "version 3");
    assert_eq!(r["value"], "THIRD-VALUE");
    let versions: Vec<i64> = h
        .get(&h.owner, &uri("secret-versions/app/key"))
        .await
        .expect(StatusCode::OK, "list versions")["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [3]);
    let listed = h
        .get(&h.owner, &uri("secrets"))
        .await
        .expect(StatusCode::OK, "list secrets");
    assert_eq!(listed["secrets"][0]["version"], 3, "{listed}");

    // Deleting again takes version 3 too; the listing of versions is then 410.
    h.delete(&h.owner, &uri("secrets/app/key"))
        .await
        .expect(StatusCode::NO_CONTENT, "delete again");
    h.get(&h.owner, &uri("secret-version/app/key/3"))
        .await
        .expect(StatusCode::GONE, "version 3 after the second deletion");
    h.get(&h.owner, &uri("secret-versions/app/key"))
        .await
        .expect(StatusCode::GONE, "versions of a deleted secret");
}

/// The published API describes the invitation token on both routes and every
/// status they answer; inviting no longer answers 409.
#[tokio::test]
async fn the_api_document_describes_invitation_tokens() {
    let h = H::new().await;
    let doc = h
        .send(Method::GET, "/openapi.json", None, None)
        .await
        .expect(StatusCode::OK, "openapi");
    let statuses = |path: &str| -> Vec<String> {
        let mut s: Vec<String> = doc["paths"][path]["post"]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{path} has no responses"))
            .keys()
            .cloned()
            .collect();
        s.sort();
        s
    };
    assert_eq!(
        statuses("/v1/org/invite"),
        [
            "201", "400", "401", "403", "408", "413", "415", "429", "503"
        ]
    );
    assert_eq!(
        statuses("/v1/auth/signup"),
        ["201", "400", "403", "408", "413", "415", "429", "503"]
    );
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("InviteResponse", "invite_token"),
        ("InviteResponse", "expires_at"),
        ("InviteResponse", "message"),
        ("InviteResponse", "email"),
        ("SignupRequest", "invite_token"),
    ] {
        assert!(
            schemas[schema]["properties"].get(field).is_some(),
            "{schema} lacks {field}"
        );
    }
}
