//! The tamper-evident audit log, end to end: events for every action, no
//! secrets in them, tampering detected online and offline, and fail-closed
//! behaviour when the log can't be written.

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};

async fn events(api: &Api) -> Vec<Value> {
    let b = api.get("/v1/audit/events?limit=1000").await.expect(200);
    let mut v = b["events"].as_array().unwrap().clone();
    v.reverse(); // oldest first
    v
}

fn find<'a>(events: &'a [Value], action: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["action"] == action).collect()
}

#[tokio::test]
async fn every_action_is_recorded_with_its_actor_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let me = api.get("/v1/auth/me").await.expect(200);
    let uid = me["id"].as_str().unwrap().to_owned();
    Api::new(&server.base)
        .post(
            "/v1/auth/token",
            json!({"email": "owner@example.com", "password": "Wrong-Horse-42!"}),
        )
        .await
        .expect_problem(401);
    Api::new(&server.base)
        .post(
            "/v1/auth/token",
            json!({"email": "nobody@example.com", "password": "Wrong-Horse-42!"}),
        )
        .await
        .expect_problem(401);
    api.login("owner@example.com").await;
    let vault = api.create_vault("audited").await;
    api.put_secret(&vault, "db/password", "AUDIT-CANARY-VALUE-1")
        .await;
    api.put_secret(&vault, "db/password", "AUDIT-CANARY-VALUE-2")
        .await;
    api.get_secret(&vault, "db/password").await.expect(200);
    api.get(&format!("/v1/vaults/{vault}/secret-version/db/password/1"))
        .await
        .expect(200);
    api.post(
        &format!("/v1/vaults/{vault}/secret-version-disable/db/password/1"),
        json!({}),
    )
    .await;
    api.post(
        &format!("/v1/vaults/{vault}/secret-rotate/db/password"),
        json!({"length": 24}),
    )
    .await
    .expect(201);
    let rotated = api.get_secret(&vault, "db/password").await.expect(200)["value"]
        .as_str()
        .unwrap()
        .to_owned();
    api.delete(&format!("/v1/vaults/{vault}/secrets/db/password"))
        .await;
    let mut garbage = api.clone();
    garbage.token = Some("not-a-token".into());
    garbage.get("/v1/vaults").await.expect_problem(401);
    let v2 = api.create_vault("doomed").await;
    api.delete(&format!("/v1/vaults/{v2}")).await;

    let ev = events(&api).await;
    let one = |action: &str| -> Value {
        let f = find(&ev, action);
        assert!(!f.is_empty(), "no {action} event in {ev:#?}");
        f[0].clone()
    };
    for action in [
        "auth.signup",
        "auth.success",
        "auth.failure",
        "vault.create",
        "secret.write",
        "secret.read",
        "secret.version_disable",
        "secret.rotate",
        "secret.delete",
        "vault.delete",
    ] {
        let e = one(action);
        if action != "auth.failure" {
            assert_eq!(e["actor_type"], "user", "{action}");
            assert_eq!(e["actor_id"], uid.as_str(), "{action}");
        }
    }
    assert_eq!(find(&ev, "secret.write").len(), 2);
    assert_eq!(
        find(&ev, "secret.read").len(),
        3,
        "two reads and the read after rotation"
    );
    let read = one("secret.read");
    assert_eq!(read["details"]["vault_id"], vault.as_str());
    assert_eq!(read["details"]["path"], "db/password");
    assert_eq!(read["details"]["version"], 2);
    assert_eq!(read["details"]["decision"], "vault_creator");
    let failure = one("auth.failure");
    assert_eq!(failure["actor_type"], "anonymous");
    assert_eq!(failure["details"]["reason"], "bad_credentials");
    assert!(read["ip_address"].as_str().unwrap().starts_with("127."));
    // Chained: every event links to the one before it.
    for w in ev.windows(2) {
        assert_eq!(w[1]["prev_event_id"], w[0]["id"]);
        assert_eq!(
            w[1]["seq"].as_u64().unwrap(),
            w[0]["seq"].as_u64().unwrap() + 1
        );
    }
    // Filters.
    let reads = api
        .get("/v1/audit/events?action=secret.read")
        .await
        .expect(200);
    assert_eq!(reads["count"], 3);
    let bad = api.get("/v1/audit/events?from=yesterday").await;
    bad.expect_problem(400);

    let verify = api.get("/v1/audit/verify").await.expect(200);
    assert_eq!(verify["chain_valid"], true, "{verify}");
    assert_eq!(verify["scheme"]["hash_field"], "integrity_hash");

    // No value, password or token anywhere in the stored log or the server's logs.
    let token = api.token.clone().unwrap();
    let (status, logs) = server.stop();
    assert!(status.success());
    let conn = raw_db(dir.path());
    let rows = stored_events(&conn);
    // The system chain holds the unknown-user and bad-token failures.
    let system: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_events WHERE org_id = '00000000-0000-0000-0000-000000000000'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(system, 2);
    let all_text = rows.concat();
    for needle in [
        "AUDIT-CANARY-VALUE",
        rotated.as_str(),
        PASSWORD,
        "Wrong-Horse-42!",
        token.as_str(),
        "not-a-token",
    ] {
        assert!(
            !all_text.contains(needle),
            "{needle} leaked into the audit log"
        );
        assert!(
            !logs.contains(needle),
            "{needle} leaked into the server log"
        );
    }
}

/// A data directory with some history and a final checkpoint (signed at shutdown).
async fn history(dir: &Path) -> (String, Vec<Value>) {
    let server = Server::start(dir);
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("v").await;
    for i in 0..6 {
        api.put_secret(&vault, &format!("k{i}"), "x").await;
        api.get_secret(&vault, &format!("k{i}")).await.expect(200);
    }
    let ev = events(&api).await;
    let (status, _) = server.stop();
    assert!(status.success());
    let jwks = dir.parent().unwrap().join(format!(
        "{}-jwks.json",
        dir.file_name().unwrap().to_string_lossy()
    ));
    (jwks.to_string_lossy().into_owned(), ev)
}

async fn save_jwks(dir: &Path, out: &str) {
    let server = Server::start(dir);
    let jwks = server
        .client()
        .get("/.well-known/jwks.json")
        .await
        .expect(200);
    std::fs::write(out, jwks.to_string()).unwrap();
    server.stop();
}

/// Applies one tampering to a copy of `pristine` and checks both verifiers name it.
async fn check_tamper(
    pristine: &Path,
    jwks: &str,
    name: &str,
    sql: &str,
    expect_seq: impl Fn(u64) -> bool,
) {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("data");
    copy_tree(pristine, &dir);
    let conn = raw_db(&dir);
    conn.execute_batch(sql).unwrap();
    drop(conn);

    // Offline, from the data directory and from an export.
    let (code, out, err) = run_cli(&[
        "audit",
        "verify",
        "--data-dir",
        dir.to_str().unwrap(),
        "--public-key",
        jwks,
    ]);
    assert_eq!(code, 1, "{name}: offline verify should fail\n{out}{err}");
    assert!(out.contains("BROKEN at event #"), "{name}: {out}");
    let seq: u64 = out
        .split("BROKEN at event #")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        expect_seq(seq),
        "{name}: offline verifier named #{seq}: {out}"
    );
    let export = work.path().join("audit.jsonl");
    let (code, _, err) = run_cli(&[
        "audit",
        "export",
        "--data-dir",
        dir.to_str().unwrap(),
        "--output",
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out2, _) = run_cli(&[
        "audit",
        "verify",
        "--file",
        export.to_str().unwrap(),
        "--public-key",
        jwks,
    ]);
    assert_eq!(code, 1, "{name}: export verify should fail\n{out2}");
    assert!(
        out2.contains(&format!("BROKEN at event #{seq} ")),
        "{name}: {out2} vs {out}"
    );

    // Online: the API verifier on a server running over the tampered data.
    let server = Server::start(&dir);
    let mut api = server.client();
    api.login("owner@example.com").await;
    let v = api.get("/v1/audit/verify").await.expect(200);
    assert_eq!(v["chain_valid"], false, "{name}: {v}");
    let api_seq = v["broken_at_seq"].as_u64().unwrap();
    assert!(expect_seq(api_seq), "{name}: API named #{api_seq}: {v}");
    assert!(
        v["broken_at_event_id"].is_string() || name == "truncate",
        "{name}: {v}"
    );
    server.stop();
}

#[tokio::test]
async fn tampering_is_detected_online_and_offline() {
    let root = tempfile::tempdir().unwrap();
    let pristine = root.path().join("pristine");
    let (jwks, ev) = history(&pristine).await;
    save_jwks(&pristine, &jwks).await;
    let org = ev[0]["org_id"].as_str().unwrap().to_owned();
    let last = ev.last().unwrap()["seq"].as_u64().unwrap();

    // The untouched log verifies, with its checkpoints.
    let (code, out, err) = run_cli(&[
        "audit",
        "verify",
        "--data-dir",
        pristine.to_str().unwrap(),
        "--public-key",
        &jwks,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("OK"), "{out}");
    assert!(
        !out.contains(" 0 signed checkpoints"),
        "expected checkpoints: {out}"
    );

    // An export emptied of every line (events and checkpoints) attests nothing.
    let empty = root.path().join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    let (code, out, err) = run_cli(&[
        "audit",
        "verify",
        "--file",
        empty.to_str().unwrap(),
        "--public-key",
        &jwks,
    ]);
    assert_eq!(code, 1, "an empty export must not verify\n{out}{err}");
    assert!(out.contains("nothing was verified"), "{out}");

    let o = &org;
    check_tamper(
        &pristine,
        &jwks,
        "delete-middle",
        &format!("DELETE FROM audit_events WHERE org_id = '{o}' AND seq = 6"),
        |s| s == 7,
    )
    .await;
    check_tamper(
        &pristine,
        &jwks,
        "swap",
        &format!(
            "UPDATE audit_events SET seq = -1 WHERE org_id = '{o}' AND seq = 8;
             UPDATE audit_events SET seq = 8 WHERE org_id = '{o}' AND seq = 9;
             UPDATE audit_events SET seq = 9 WHERE org_id = '{o}' AND seq = -1;"
        ),
        |s| s == 8,
    )
    .await;
    // Every field of an event, and its link and stored hash.
    for (column, set, seq) in [
        ("action", "'secret.list'", 5),
        ("details", "'{\"path\":\"k9\"}'", 7),
        ("actor_type", "'agent'", 5),
        ("actor_id", "'00000000-0000-0000-0000-000000000001'", 5),
        ("resource_type", "'vault'", 5),
        ("resource_id", "'k9'", 5),
        ("ip_address", "'10.9.8.7'", 5),
        ("created_at", "created_at + 1", 5),
        ("prev_event_id", "NULL", 5),
        (
            "integrity_hash",
            "CASE WHEN substr(integrity_hash, 1, 2) = '00' THEN 'ff' ELSE '00' END || substr(integrity_hash, 3)",
            5,
        ),
    ] {
        check_tamper(
            &pristine,
            &jwks,
            column,
            &format!(
                "UPDATE audit_events SET {column} = {set} WHERE org_id = '{o}' AND seq = {seq}"
            ),
            |s| s == seq,
        )
        .await;
    }
    // The whole chain of the organisation: its checkpoints still name it.
    check_tamper(
        &pristine,
        &jwks,
        "delete-all",
        &format!("DELETE FROM audit_events WHERE org_id = '{o}'"),
        |s| s >= 1,
    )
    .await;
    // Remove the newest events, past the checkpoint signed at shutdown.
    check_tamper(
        &pristine,
        &jwks,
        "truncate",
        &format!(
            "DELETE FROM audit_events WHERE org_id = '{o}' AND seq > {keep};",
            keep = last - 3
        ),
        |s| s > last - 3 && s <= last + 1,
    )
    .await;
}

#[tokio::test]
async fn reads_and_writes_fail_closed_when_the_log_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut api = server.client();
    api.signup("owner@example.com").await;
    let vault = api.create_vault("v").await;
    api.put_secret(&vault, "k", "FAIL-CLOSED-VALUE").await;
    // A KEK version the stored DEK is not yet under.
    api.post(&format!("/v1/vaults/{vault}/kek/rotate"), json!({}))
        .await
        .expect(200);

    // A real failure of the store: the database refuses audit inserts.
    let conn = raw_db(dir.path());
    conn.execute("CREATE TRIGGER audit_down BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit storage failure'); END", [])
        .unwrap();

    let r = api.get_secret(&vault, "k").await;
    assert!(!r.text.contains("FAIL-CLOSED-VALUE"), "{}", r.text);
    r.expect_problem(503);
    let r = api
        .put(
            &format!("/v1/vaults/{vault}/secrets/k"),
            json!({"value": "SHOULD-NOT-BE-STORED"}),
        )
        .await;
    r.expect_problem(503);
    api.put(
        &format!("/v1/vaults/{vault}/secrets/new"),
        json!({"value": "nope"}),
    )
    .await
    .expect_problem(503);
    api.delete(&format!("/v1/vaults/{vault}/secrets/k"))
        .await
        .expect_problem(503);
    api.post(&format!("/v1/vaults/{vault}/secret-rotate/k"), json!({}))
        .await
        .expect_problem(503);
    api.post("/v1/vaults", json!({"name": "x"}))
        .await
        .expect_problem(503);
    Api::new(&server.base)
        .post(
            "/v1/auth/token",
            json!({"email": "owner@example.com", "password": PASSWORD}),
        )
        .await
        .expect_problem(503);
    let r = api
        .get(&format!("/v1/vaults/{vault}/secret-version/k/1"))
        .await;
    assert!(!r.text.contains("FAIL-CLOSED-VALUE"), "{}", r.text);
    r.expect_problem(503);
    api.post(&format!("/v1/vaults/{vault}/kek/rewrap"), json!({}))
        .await
        .expect_problem(503);
    api.post(&format!("/v1/vaults/{vault}/kek/rotate"), json!({}))
        .await
        .expect_problem(503);
    let me = api.get("/v1/auth/me").await.expect(200);
    api.post(
        &format!("/v1/vaults/{vault}/policies"),
        json!({"principal_type": "user", "principal_id": me["id"], "secret_path_pattern": "*", "permissions": ["read"]}),
    )
    .await
    .expect_problem(503);
    api.post("/v1/agents", json!({"name": "never"}))
        .await
        .expect_problem(503);

    // Nothing changed: no new version, the read was not counted, no new vault,
    // the DEK not rewrapped, the KEK not moved on, no policy, no agent.
    let versions: i64 = conn
        .query_row("SELECT COUNT(*) FROM secret_versions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(versions, 1);
    let count: i64 = conn
        .query_row("SELECT access_count FROM secret_versions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0);
    let vaults: i64 = conn
        .query_row("SELECT COUNT(*) FROM vaults", [], |r| r.get(0))
        .unwrap();
    assert_eq!(vaults, 1);
    let deleted: Option<i64> = conn
        .query_row("SELECT deleted_at FROM secrets", [], |r| r.get(0))
        .unwrap();
    assert!(deleted.is_none());
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT kek_version FROM secret_versions"), 1);
    assert_eq!(count("SELECT kek_version FROM vaults"), 2);
    assert_eq!(count("SELECT COUNT(*) FROM policies"), 0);
    assert_eq!(count("SELECT COUNT(*) FROM agents"), 0);

    // Writable again: service resumes without a restart.
    conn.execute("DROP TRIGGER audit_down", []).unwrap();
    assert_eq!(
        api.get_secret(&vault, "k").await.expect(200)["value"],
        "FAIL-CLOSED-VALUE"
    );
    api.put_secret(&vault, "k", "after").await;
    let b = api
        .post(&format!("/v1/vaults/{vault}/kek/rewrap"), json!({}))
        .await
        .expect(200);
    // The rotation refused above happened in the key provider (it can't be
    // undone there) but was never recorded: the rewrap records it, and every
    // DEK ends up under the provider's newest version.
    assert_eq!(b["kek_version"], 3, "{b}");
    assert_eq!(b["remaining"], 0, "{b}");
    assert_eq!(
        count("SELECT COUNT(*) FROM secret_versions WHERE kek_version = 3"),
        2
    );
    let v = api.get("/v1/audit/verify").await.expect(200);
    assert_eq!(v["chain_valid"], true, "{v}");
    drop(conn);
}

#[tokio::test]
async fn identity_policy_and_key_changes_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut owner = server.client();
    owner.signup("owner@example.com").await;
    let owner_id = owner.get("/v1/auth/me").await.expect(200)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let vault = owner.create_vault("v").await;
    owner.put_secret(&vault, "app/db", "IDENTITY-CANARY").await;

    // Agents and policies.
    let created = owner
        .post("/v1/agents", json!({"name": "bot"}))
        .await
        .expect(201);
    let agent_id = created["agent"]["id"].as_str().unwrap().to_owned();
    let first_key = created["api_key"].as_str().unwrap().to_owned();
    let policy = owner
        .post(
            &format!("/v1/vaults/{vault}/policies"),
            json!({"principal_type": "agent", "principal_id": agent_id, "secret_path_pattern": "app/*", "permissions": ["read"]}),
        )
        .await
        .expect(201);
    let pid = policy["id"].as_str().unwrap().to_owned();
    owner
        .put(
            &format!("/v1/vaults/{vault}/policies/{pid}"),
            json!({"priority": 3}),
        )
        .await
        .expect(200);
    let rotated = owner
        .post(&format!("/v1/agents/{agent_id}/rotate-key"), json!({}))
        .await
        .expect(200);
    let agent_key = rotated["api_key"].as_str().unwrap().to_owned();
    let t = owner
        .post("/v1/auth/agent-token", json!({"api_key": agent_key}))
        .await
        .expect(200);
    let mut agent = server.client();
    agent.token = Some(t["access_token"].as_str().unwrap().to_owned());
    agent.get_secret(&vault, "app/db").await.expect(200);
    agent
        .put(
            &format!("/v1/vaults/{vault}/secrets/app/db"),
            json!({"value": "nope"}),
        )
        .await
        .expect_problem(403);
    owner
        .post("/v1/auth/agent-token", json!({"api_key": first_key}))
        .await
        .expect_problem(401);
    owner
        .delete(&format!("/v1/vaults/{vault}/policies/{pid}"))
        .await;
    owner.delete(&format!("/v1/agents/{agent_id}")).await;

    // Personal keys, members, token revocation, key rotation.
    let k = owner
        .post("/v1/auth/api-keys", json!({"name": "laptop"}))
        .await
        .expect(201);
    let personal = k["api_key"].as_str().unwrap().to_owned();
    let kid = k["key"]["id"].as_str().unwrap().to_owned();
    owner.delete(&format!("/v1/auth/api-keys/{kid}")).await;
    let invite = owner
        .post(
            "/v1/org/invite",
            json!({"email": "member@example.com", "role": "member"}),
        )
        .await
        .expect(201);
    let mut member = server.client();
    member.signup_invited("member@example.com", &invite).await;
    let member_id = member.get("/v1/auth/me").await.expect(200)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    owner
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/org/members/{member_id}"),
            Some(json!({"role": "admin"})),
        )
        .await
        .expect(200);
    owner.delete(&format!("/v1/org/members/{member_id}")).await;
    owner
        .post(&format!("/v1/vaults/{vault}/kek/rotate"), json!({}))
        .await
        .expect(200);
    let revoked = owner.token.clone().unwrap();
    owner.delete("/v1/auth/token").await;
    owner.login("owner@example.com").await;

    let ev = events(&owner).await;
    let by_owner = |action: &str| {
        let f = find(&ev, action);
        assert!(!f.is_empty(), "no {action} event");
        assert!(
            f.iter().any(|e| e["actor_id"] == owner_id.as_str()),
            "{action} not attributed to the owner"
        );
    };
    for action in [
        "agent.register",
        "policy.create",
        "policy.update",
        "agent.rotate_key",
        "policy.delete",
        "agent.deactivate",
        "api_key.create",
        "api_key.revoke",
        "member.invite",
        "member.role_change",
        "member.remove",
        "vault.kek_rotate",
        "auth.token_revoke",
    ] {
        by_owner(action);
    }
    // The agent's own actions carry the agent as actor, and the rule that decided.
    let agent_read = find(&ev, "secret.read")
        .into_iter()
        .find(|e| e["actor_type"] == "agent")
        .expect("agent read");
    assert_eq!(agent_read["actor_id"], agent_id.as_str());
    assert_eq!(agent_read["details"]["decision"], "policy");
    assert_eq!(agent_read["details"]["policy_id"], pid.as_str());
    let denied = find(&ev, "access.denied")
        .into_iter()
        .find(|e| e["actor_type"] == "agent")
        .expect("agent denial");
    assert_eq!(denied["details"]["rule"], "no_grant");
    assert_eq!(denied["details"]["attempted"], "write");
    assert!(
        find(&ev, "auth.success")
            .iter()
            .any(|e| e["actor_type"] == "agent")
    );
    assert!(
        find(&ev, "auth.signup")
            .iter()
            .any(|e| e["actor_id"] == member_id.as_str())
    );

    // No key, token or value in any stored event, of any organisation, or in the logs.
    let token = owner.token.clone().unwrap();
    let (_, logs) = server.stop();
    let conn = raw_db(dir.path());
    let rows = stored_events(&conn);
    let text = rows.concat();
    for needle in [
        "IDENTITY-CANARY",
        first_key.as_str(),
        agent_key.as_str(),
        personal.as_str(),
        revoked.as_str(),
        token.as_str(),
    ] {
        // Only the lookup prefix of a key may appear, never the key.
        assert!(
            !text.contains(needle),
            "a credential or value leaked into the audit log"
        );
        assert!(
            !logs.contains(needle),
            "a credential or value leaked into the server log"
        );
    }
}

/// Every stored audit event and checkpoint, each as the text of all its columns.
fn stored_events(conn: &rusqlite::Connection) -> Vec<String> {
    let mut rows = Vec::new();
    for table in ["audit_events", "audit_checkpoints"] {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let n = stmt.column_count();
        let mut q = stmt.query([]).unwrap();
        while let Some(r) = q.next().unwrap() {
            let cols: Vec<String> = (0..n)
                .map(|i| match r.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Null => String::new(),
                    rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                    rusqlite::types::ValueRef::Real(v) => v.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    rusqlite::types::ValueRef::Blob(b) => String::from_utf8_lossy(b).into_owned(),
                })
                .collect();
            rows.push(cols.join("\u{1f}"));
        }
    }
    assert!(!rows.is_empty());
    rows
}

#[tokio::test]
async fn refusals_are_recorded_with_the_rule_that_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path()).arg("--open-signup").start();
    let mut owner = server.client();
    owner.signup("owner@example.com").await;
    let vault = owner.create_vault("v").await;
    owner.put_secret(&vault, "db", "REFUSAL-CANARY").await;
    let invite = owner
        .post("/v1/org/invite", json!({"email": "member@example.com"}))
        .await
        .expect(201);
    let mut member = server.client();
    member.signup_invited("member@example.com", &invite).await;
    let member_id = member.get("/v1/auth/me").await.expect(200)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A member manages no members and reads no audit log.
    member
        .post("/v1/org/invite", json!({"email": "x@example.com"}))
        .await
        .expect_problem(403);
    member.get("/v1/audit/events").await.expect_problem(403);
    // An agent registers no agents and verifies no audit log.
    let created = owner
        .post("/v1/agents", json!({"name": "bot"}))
        .await
        .expect(201);
    let agent_id = created["agent"]["id"].as_str().unwrap().to_owned();
    let t = owner
        .post(
            "/v1/auth/agent-token",
            json!({"api_key": created["api_key"]}),
        )
        .await
        .expect(200);
    // A wrong key that names a known agent (its lookup prefix).
    let key = created["api_key"].as_str().unwrap();
    let last = if key.ends_with('A') { "B" } else { "A" };
    let wrong = format!("{}{last}", &key[..key.len() - 1]);
    Api::new(&server.base)
        .post("/v1/auth/agent-token", json!({"api_key": wrong}))
        .await
        .expect_problem(401);
    let mut agent = server.client();
    agent.token = Some(t["access_token"].as_str().unwrap().to_owned());
    agent
        .post("/v1/agents", json!({"name": "child"}))
        .await
        .expect_problem(403);
    agent.get("/v1/audit/verify").await.expect_problem(403);
    // Someone of another organisation is told the vault doesn't exist; its
    // organisation is told someone tried.
    let mut outsider = server.client();
    outsider.signup("outsider@example.com").await;
    let outsider_id = outsider.get("/v1/auth/me").await.expect(200)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = outsider.get_secret(&vault, "db").await;
    assert!(!r.text.contains("REFUSAL-CANARY"));
    assert!(r.status == 404 || r.status == 403, "{}", r.text);
    // A read the policy allows but the secret's state refuses.
    owner
        .delete(&format!("/v1/vaults/{vault}/secrets/db"))
        .await
        .expect(204);
    owner.get_secret(&vault, "db").await.expect_problem(410);

    let ev = events(&owner).await;
    let denied = find(&ev, "access.denied");
    let one = |attempted: &str, actor: &str| -> Value {
        let e = denied
            .iter()
            .find(|e| e["details"]["attempted"] == attempted)
            .unwrap_or_else(|| panic!("no refusal of {attempted} in {denied:#?}"));
        assert_eq!(e["actor_id"], actor, "{e}");
        assert_eq!(e["details"]["outcome"], "denied", "{e}");
        (*e).clone()
    };
    assert_eq!(one("member.invite", &member_id)["details"]["rule"], "role");
    assert_eq!(one("audit.read", &member_id)["actor_type"], "user");
    assert_eq!(one("agent.register", &agent_id)["actor_type"], "agent");
    assert_eq!(one("audit.verify", &agent_id)["actor_type"], "agent");
    let gone = denied
        .iter()
        .find(|e| e["details"]["rule"] == "deleted")
        .expect("the refused read of a deleted secret");
    assert_eq!(gone["details"]["attempted"], "read");
    assert_eq!(gone["details"]["path"], "db");
    assert_eq!(gone["details"]["decision"], "vault_creator");
    let cross = one("read", &outsider_id);
    assert_eq!(cross["details"]["rule"], "org");
    assert_eq!(cross["details"]["vault_id"], vault.as_str());
    assert_eq!(cross["details"]["path"], "db");
    // The outsider's own organisation holds no trace of the vault.
    let mine = outsider
        .get("/v1/audit/events?limit=1000")
        .await
        .expect(200);
    assert!(!mine.to_string().contains(&vault), "{mine}");
    // The failed exchange is in the agent's organisation, naming the agent.
    let failed = find(&ev, "auth.failure")
        .into_iter()
        .find(|e| e["resource_id"] == agent_id.as_str())
        .expect("the failed agent-token exchange");
    assert_eq!(failed["details"]["method"], "agent_key");
    assert_eq!(failed["details"]["reason"], "bad_credentials");
    assert_eq!(failed["actor_type"], "anonymous");
    let v = owner.get("/v1/audit/verify").await.expect(200);
    assert_eq!(v["chain_valid"], true, "{v}");
    let (_, logs) = server.stop();
    assert!(!logs.contains(&wrong) && !logs.contains(key));
    let conn = raw_db(dir.path());
    let text = stored_events(&conn).concat();
    assert!(!text.contains(&wrong) && !text.contains(key) && !text.contains("REFUSAL-CANARY"));
}

/// The newest checkpointed and the newest event sequence number of `org`.
fn checkpointed(dir: &Path, org: &str) -> (i64, i64) {
    let conn = raw_db(dir);
    let q = |sql: &str| -> i64 { conn.query_row(sql, [org], |r| r.get(0)).unwrap() };
    (
        q("SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints WHERE org_id = ?"),
        q("SELECT COALESCE(MAX(seq), 0) FROM audit_events WHERE org_id = ?"),
    )
}

/// Waits (up to `within`) until a checkpoint covers event `seq` of `org`.
async fn await_checkpoint(dir: &Path, org: &str, seq: i64, within: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < within {
        if checkpointed(dir, org).0 >= seq {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn checkpoints_are_signed_every_n_events_and_every_t_seconds() {
    for (events, secs) in [(5, 3600), (1_000_000, 1)] {
        let root = tempfile::tempdir().unwrap();
        let cfg = root.path().join("strongroom.toml");
        std::fs::write(
            &cfg,
            format!(
                "[audit]\ncheckpoint_every_events = {events}\ncheckpoint_interval_secs = {secs}\n"
            ),
        )
        .unwrap();
        let dir = root.path().join("data");
        let server = Launch::new(&dir)
            .arg("--config")
            .arg(cfg.to_str().unwrap())
            .start();
        let mut api = server.client();
        api.signup("owner@example.com").await;
        let org = api.get("/v1/auth/me").await.expect(200)["org_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let vault = api.create_vault("v").await;
        for round in 0..3 {
            for i in 0..6 {
                api.put_secret(&vault, &format!("r{round}/k{i}"), "x").await;
            }
            let (_, head) = checkpointed(&dir, &org);
            // Every N events: at most N - 1 events unsigned, within the
            // checkpointer's next polls, well before its periodic sweep (5 s).
            // Every T seconds: all of them, within T and a sweep.
            let (want, within) = if secs == 1 {
                (head, 8)
            } else {
                (head - (events - 1), 4)
            };
            assert!(
                await_checkpoint(&dir, &org, want, std::time::Duration::from_secs(within)).await,
                "N={events}, T={secs}s: no checkpoint of event #{want} while the server runs ({:?})",
                checkpointed(&dir, &org)
            );
        }
        server.stop();
    }
}
