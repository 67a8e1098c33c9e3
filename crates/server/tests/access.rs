//! Every access-control rule, end to end through the real router, in process.
//!
//! Each test shows both sides of its rule: what the rule allows is allowed and
//! what it refuses is refused, so dropping the rule (or its wiring) fails it.
//! Refusals are also checked not to carry the refused value.

mod support;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use serde_json::{Value, json};
use strongroom_core::audit::{Actor, AuditRecord};
use strongroom_core::{OrgId, Role, Subject, UserId};
use strongroom_engine::Admin;
use strongroom_engine::tokens::Claims;
use strongroom_store::{OrgRow, SignupGate, UserRow};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, Weekday};
use tower::ServiceExt;

const B64URL: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;
const PASSWORD: &str = "Correct-Horse-42!";
const OWNER_EMAIL: &str = "owner@example.com";

/// The client address every request carries unless a test says otherwise.
fn client() -> IpAddr {
    IpAddr::from([10, 1, 2, 3])
}

/// The value stored at `path`: never a substring of another path's value.
fn val(path: &str) -> String {
    format!("V[{path}]")
}

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
}

struct Agent {
    id: String,
    key: String,
    token: String,
}

struct H {
    app: Router,
    engine: Arc<Admin>,
    owner: String,
    owner_id: String,
    _dir: tempfile::TempDir,
}

impl H {
    async fn new() -> Self {
        let (app, engine, dir) = support::app().await;
        let mut h = H {
            app,
            engine,
            owner: String::new(),
            owner_id: String::new(),
            _dir: dir,
        };
        let r = h
            .send(
                Method::POST,
                "/v1/auth/signup",
                None,
                Some(json!({"email": OWNER_EMAIL, "password": PASSWORD})),
            )
            .await;
        expect(&r, StatusCode::CREATED, "owner signup");
        h.owner = r.json()["access_token"].as_str().unwrap().to_owned();
        h.owner_id = h.user_id(&h.owner.clone()).await;
        h
    }

    async fn send_from(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
        ip: Option<IpAddr>,
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
        let mut req = b.body(body).expect("request builds");
        if let Some(ip) = ip {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(ip, 5555)));
        }
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .expect("body reads");
        Resp {
            status: parts.status,
            body,
        }
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        self.send_from(method, uri, token, body, Some(client()))
            .await
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

    async fn user_id(&self, token: &str) -> String {
        let r = self.get(token, "/v1/auth/me").await;
        expect(&r, StatusCode::OK, "GET /v1/auth/me");
        r.json()["id"].as_str().unwrap().to_owned()
    }

    async fn create_vault(&self, token: &str, name: &str) -> String {
        let r = self.post(token, "/v1/vaults", json!({"name": name})).await;
        expect(&r, StatusCode::CREATED, "create vault");
        r.json()["id"].as_str().unwrap().to_owned()
    }

    /// Stores `val(path)` (or `value`) at `path`, as `token`.
    async fn put_secret(&self, token: &str, vault: &str, path: &str) {
        self.put_value(token, vault, path, &val(path)).await;
    }

    async fn put_value(&self, token: &str, vault: &str, path: &str, value: &str) {
        let r = self
            .put(token, &secret_uri(vault, path), json!({"value": value}))
            .await;
        expect(&r, StatusCode::CREATED, &format!("put secret {path}"));
    }

    async fn create_agent(&self, body: Value) -> Agent {
        let r = self.post(&self.owner, "/v1/agents", body).await;
        expect(&r, StatusCode::CREATED, "create agent");
        let v = r.json();
        let id = v["agent"]["id"].as_str().unwrap().to_owned();
        let key = v["api_key"].as_str().unwrap().to_owned();
        let token = self.agent_token(&key).await;
        Agent { id, key, token }
    }

    async fn agent_token(&self, key: &str) -> String {
        let r = self
            .send(
                Method::POST,
                "/v1/auth/agent-token",
                None,
                Some(json!({"api_key": key})),
            )
            .await;
        expect(&r, StatusCode::OK, "agent-token exchange");
        r.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a policy as `token`; returns its id.
    async fn grant(&self, token: &str, vault: &str, body: Value) -> String {
        let r = self
            .post(token, &format!("/v1/vaults/{vault}/policies"), body.clone())
            .await;
        expect(&r, StatusCode::CREATED, &format!("create policy {body}"));
        r.json()["id"].as_str().unwrap().to_owned()
    }

    async fn update_policy(&self, vault: &str, id: &str, body: Value) {
        let r = self
            .put(
                &self.owner,
                &format!("/v1/vaults/{vault}/policies/{id}"),
                body.clone(),
            )
            .await;
        expect(&r, StatusCode::OK, &format!("update policy with {body}"));
    }

    async fn revoke_policy(&self, vault: &str, id: &str) {
        let r = self
            .delete(&self.owner, &format!("/v1/vaults/{vault}/policies/{id}"))
            .await;
        expect(&r, StatusCode::NO_CONTENT, "delete policy");
    }

    /// Invites `email` with `role`, signs it up; returns (token, user id).
    async fn join(&self, email: &str, role: &str) -> (String, String) {
        let r = self
            .post(
                &self.owner,
                "/v1/org/invite",
                json!({"email": email, "role": role}),
            )
            .await;
        expect(&r, StatusCode::CREATED, "invite");
        let invite_token = r.json()["invite_token"].as_str().unwrap().to_owned();
        let r = self
            .send(
                Method::POST,
                "/v1/auth/signup",
                None,
                Some(json!({"email": email, "password": PASSWORD, "invite_token": invite_token})),
            )
            .await;
        expect(&r, StatusCode::CREATED, "invited signup");
        let token = r.json()["access_token"].as_str().unwrap().to_owned();
        let id = self.user_id(&token).await;
        (token, id)
    }

    async fn read(&self, token: &str, vault: &str, path: &str) -> Resp {
        self.get(token, &secret_uri(vault, path)).await
    }

    async fn read_from(&self, token: &str, vault: &str, path: &str, ip: Option<IpAddr>) -> Resp {
        self.send_from(Method::GET, &secret_uri(vault, path), Some(token), None, ip)
            .await
    }

    /// Asserts `token` reads `val(path)` at `path`.
    async fn can_read(&self, token: &str, vault: &str, path: &str, what: &str) {
        let r = self.read(token, vault, path).await;
        reads(&r, &val(path), &format!("{what}: GET {path}"));
    }

    /// Asserts `token` is refused `path` with 403 and without its value.
    async fn cannot_read(&self, token: &str, vault: &str, path: &str, what: &str) {
        let r = self.read(token, vault, path).await;
        refused(
            &r,
            StatusCode::FORBIDDEN,
            &val(path),
            &format!("{what}: GET {path}"),
        );
    }

    /// The paths `token` sees in a vault's listing (`None` when refused).
    async fn listed(&self, token: &str, vault: &str, query: &str) -> Option<Vec<String>> {
        let r = self
            .get(token, &format!("/v1/vaults/{vault}/secrets{query}"))
            .await;
        if r.status == StatusCode::FORBIDDEN {
            return None;
        }
        expect(&r, StatusCode::OK, "list secrets");
        let mut out: Vec<String> = r.json()["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["path"].as_str().unwrap().to_owned())
            .collect();
        out.sort();
        Some(out)
    }

    async fn vault_ids(&self, token: &str) -> BTreeSet<String> {
        let r = self.get(token, "/v1/vaults").await;
        expect(&r, StatusCode::OK, "list vaults");
        r.json()["vaults"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn audit(&self, query: &str) -> Vec<Value> {
        let r = self
            .get(&self.owner, &format!("/v1/audit/events?limit=1000&{query}"))
            .await;
        expect(&r, StatusCode::OK, "audit events");
        r.json()["events"].as_array().unwrap().clone()
    }
}

fn secret_uri(vault: &str, raw_path: &str) -> String {
    format!("/v1/vaults/{vault}/secrets/{raw_path}")
}

fn agent_policy(agent: &Agent, pattern: &str, perms: &[&str]) -> Value {
    json!({
        "secret_path_pattern": pattern,
        "principal_type": "agent",
        "principal_id": agent.id,
        "permissions": perms,
    })
}

/// `base` with more fields.
fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

#[track_caller]
fn expect(r: &Resp, status: StatusCode, what: &str) {
    assert_eq!(r.status, status, "{what}: body {}", r.text());
}

#[track_caller]
fn reads(r: &Resp, value: &str, what: &str) {
    assert_eq!(r.status, StatusCode::OK, "{what}: body {}", r.text());
    assert_eq!(r.json()["value"], value, "{what}");
}

#[track_caller]
fn refused(r: &Resp, status: StatusCode, value: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: body {}", r.text());
    assert!(
        !r.text().contains(value),
        "{what}: the refusal carries the value: {}",
        r.text()
    );
}

fn hhmm(t: OffsetDateTime) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

fn day(d: Weekday) -> &'static str {
    match d {
        Weekday::Monday => "mon",
        Weekday::Tuesday => "tue",
        Weekday::Wednesday => "wed",
        Weekday::Thursday => "thu",
        Weekday::Friday => "fri",
        Weekday::Saturday => "sat",
        Weekday::Sunday => "sun",
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

fn claims_of(token: &str) -> Claims {
    let payload = token.split('.').nth(1).expect("three segments");
    serde_json::from_slice(&B64URL.decode(payload).expect("base64url")).expect("claims")
}

fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A token over `claims` signed by the server's own key.
async fn sign_with_server_key(engine: &Admin, claims: &Claims) -> String {
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": engine.tokens().public_key().kid});
    let mut input = B64URL.encode(header.to_string());
    input.push('.');
    input.push_str(&B64URL.encode(serde_json::to_vec(claims).unwrap()));
    let sig = engine.kms().sign(input.as_bytes()).await.expect("signs");
    input.push('.');
    input.push_str(&B64URL.encode(sig));
    input
}

// ---------------------------------------------------------------------------
// 1. Path patterns
// ---------------------------------------------------------------------------

#[tokio::test]
async fn wildcards_and_literals_match_whole_segments() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "patterns").await;
    for p in [
        "prod",
        "prod/a",
        "prod/a/b",
        "prod/a/b/c",
        "prodx",
        "prodx/a",
        "other/a",
        "password",
        "x/y/password",
        "x/y/password2",
        "x/password/y",
        "lit",
        "lit/one",
        "lit/one/two",
        "lit/two",
    ] {
        h.put_secret(&h.owner, &v, p).await;
    }
    let a = h.create_agent(json!({"name": "patterns"})).await;
    let cases: [(&str, &[&str], &[&str]); 5] = [
        (
            "prod/*",
            &["prod/a"],
            &["prod/a/b", "prod", "prod/a/b/c", "prodx/a", "other/a"],
        ),
        (
            "prod/**",
            &["prod/a/b/c", "prod", "prod/a", "prod/a/b"],
            &["prodx", "prodx/a", "other/a"],
        ),
        (
            "**/password",
            &["x/y/password", "password"],
            &["x/y/password2", "x/password/y", "prod/a"],
        ),
        ("lit/one", &["lit/one"], &["lit/one/two", "lit/two", "lit"]),
        ("*", &["prod", "lit", "password"], &["prod/a", "lit/one"]),
    ];
    for (pattern, granted, refused_paths) in cases {
        let what = format!("pattern {pattern:?}");
        // No policy yet: nothing.
        for p in granted {
            h.cannot_read(&a.token, &v, p, &format!("{what} before the grant"))
                .await;
        }
        let id = h
            .grant(&h.owner, &v, agent_policy(&a, pattern, &["read"]))
            .await;
        for p in granted {
            h.can_read(&a.token, &v, p, &what).await;
        }
        for p in refused_paths {
            h.cannot_read(&a.token, &v, p, &what).await;
        }
        h.revoke_policy(&v, &id).await;
        for p in granted {
            h.cannot_read(&a.token, &v, p, &format!("{what} after DELETE"))
                .await;
        }
    }
}

// ---------------------------------------------------------------------------
// 2. Permissions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn each_permission_grants_exactly_its_actions() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "perms").await;
    h.put_value(&h.owner, &v, "app/r", "r-v1").await;
    h.put_secret(&h.owner, &v, "app/r").await; // version 2
    for p in ["app/w", "app/rot", "app/del"] {
        h.put_secret(&h.owner, &v, p).await;
    }
    let a = h.create_agent(json!({"name": "perms"})).await;
    let t = a.token.as_str();
    let uri = |family: &str, tail: &str| format!("/v1/vaults/{v}/{family}/{tail}");
    let pid = h
        .grant(&h.owner, &v, agent_policy(&a, "app/**", &["read"]))
        .await;

    // read: value, versions, one version, listing...
    h.can_read(t, &v, "app/r", "read").await;
    let r = h.get(t, &uri("secret-versions", "app/r")).await;
    expect(&r, StatusCode::OK, "read: list versions");
    assert_eq!(r.json()["versions"].as_array().unwrap().len(), 2);
    let r = h.get(t, &uri("secret-version", "app/r/1")).await;
    reads(&r, "r-v1", "read: GET version 1");
    let listed = h.listed(t, &v, "").await.expect("read may list");
    assert!(listed.contains(&"app/r".to_owned()), "{listed:?}");
    // ...and nothing else.
    let r = h
        .put(t, &secret_uri(&v, "app/r"), json!({"value": "x"}))
        .await;
    expect(&r, StatusCode::FORBIDDEN, "read: PUT");
    let r = h
        .send(
            Method::POST,
            &uri("secret-version-disable", "app/r/1"),
            Some(t),
            None,
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "read: disable version");
    let r = h
        .send(Method::POST, &uri("secret-rotate", "app/r"), Some(t), None)
        .await;
    expect(&r, StatusCode::FORBIDDEN, "read: rotate");
    let r = h.delete(t, &secret_uri(&v, "app/r")).await;
    expect(&r, StatusCode::FORBIDDEN, "read: DELETE");
    let r = h.read(&h.owner, &v, "app/r").await;
    reads(&r, &val("app/r"), "nothing was written under read");
    assert_eq!(r.json()["version"], 2);

    // write: put, disable, rotate, delete — but no reading.
    h.update_policy(&v, &pid, json!({"permissions": ["write"]}))
        .await;
    h.cannot_read(t, &v, "app/w", "write").await;
    let r = h.get(t, &uri("secret-versions", "app/w")).await;
    expect(&r, StatusCode::FORBIDDEN, "write: list versions");
    let r = h.get(t, &uri("secret-version", "app/w/1")).await;
    refused(
        &r,
        StatusCode::FORBIDDEN,
        &val("app/w"),
        "write: GET version 1",
    );
    assert!(
        h.listed(t, &v, "")
            .await
            .is_none_or(|l| !l.iter().any(|p| p.starts_with("app/"))),
        "write must not list paths"
    );
    let r = h
        .put(t, &secret_uri(&v, "app/w"), json!({"value": "w-v2"}))
        .await;
    expect(&r, StatusCode::CREATED, "write: PUT");
    let r = h
        .send(
            Method::POST,
            &uri("secret-version-disable", "app/w/1"),
            Some(t),
            None,
        )
        .await;
    expect(&r, StatusCode::NO_CONTENT, "write: disable version");
    let r = h
        .send(Method::POST, &uri("secret-rotate", "app/w"), Some(t), None)
        .await;
    expect(&r, StatusCode::CREATED, "write implies rotate");
    assert_eq!(r.json()["version"], 3, "rotate made version 3");
    let r = h.delete(t, &secret_uri(&v, "app/w")).await;
    expect(&r, StatusCode::NO_CONTENT, "write implies delete");
    let r = h.read(&h.owner, &v, "app/w").await;
    expect(&r, StatusCode::GONE, "the agent's delete took effect");

    // rotate: rotate only.
    h.update_policy(&v, &pid, json!({"permissions": ["rotate"]}))
        .await;
    let r = h
        .send(
            Method::POST,
            &uri("secret-rotate", "app/rot"),
            Some(t),
            None,
        )
        .await;
    expect(&r, StatusCode::CREATED, "rotate: rotate");
    let r = h
        .put(t, &secret_uri(&v, "app/rot"), json!({"value": "x"}))
        .await;
    expect(&r, StatusCode::FORBIDDEN, "rotate: PUT");
    let r = h
        .send(
            Method::POST,
            &uri("secret-version-disable", "app/rot/1"),
            Some(t),
            None,
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "rotate: disable version");
    let r = h.delete(t, &secret_uri(&v, "app/rot")).await;
    expect(&r, StatusCode::FORBIDDEN, "rotate: DELETE");
    h.cannot_read(t, &v, "app/rot", "rotate").await;

    // delete: delete only.
    h.update_policy(&v, &pid, json!({"permissions": ["delete"]}))
        .await;
    let r = h
        .put(t, &secret_uri(&v, "app/del"), json!({"value": "x"}))
        .await;
    expect(&r, StatusCode::FORBIDDEN, "delete: PUT");
    let r = h
        .send(
            Method::POST,
            &uri("secret-rotate", "app/del"),
            Some(t),
            None,
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "delete: rotate");
    h.cannot_read(t, &v, "app/del", "delete").await;
    let r = h.delete(t, &secret_uri(&v, "app/del")).await;
    expect(&r, StatusCode::NO_CONTENT, "delete: DELETE");
}

// ---------------------------------------------------------------------------
// 3. Conditions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn ip_allowlist_is_enforced_on_the_client_address() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "net").await;
    h.put_secret(&h.owner, &v, "net/db").await;
    let a = h.create_agent(json!({"name": "net"})).await;
    let value = val("net/db");
    let pid = h
        .grant(
            &h.owner,
            &v,
            with(
                agent_policy(&a, "net/**", &["read"]),
                json!({"conditions": {"ip_allowlist": ["10.0.0.0/8"]}}),
            ),
        )
        .await;
    let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());

    let r = h.read_from(&a.token, &v, "net/db", ip("10.1.2.3")).await;
    reads(&r, &value, "10.1.2.3 in 10.0.0.0/8");
    let r = h
        .read_from(&a.token, &v, "net/db", ip("::ffff:10.1.2.3"))
        .await;
    reads(&r, &value, "IPv4-mapped 10.1.2.3 in 10.0.0.0/8");
    let r = h.read_from(&a.token, &v, "net/db", ip("192.168.1.1")).await;
    refused(
        &r,
        StatusCode::FORBIDDEN,
        &value,
        "192.168.1.1 outside 10.0.0.0/8",
    );
    let r = h.read_from(&a.token, &v, "net/db", None).await;
    refused(
        &r,
        StatusCode::FORBIDDEN,
        &value,
        "no client address under an allowlist",
    );

    h.update_policy(
        &v,
        &pid,
        json!({"conditions": {"ip_allowlist": ["2001:db8::/32"]}}),
    )
    .await;
    let r = h.read_from(&a.token, &v, "net/db", ip("2001:db8::1")).await;
    reads(&r, &value, "2001:db8::1 in 2001:db8::/32");
    let r = h.read_from(&a.token, &v, "net/db", ip("2001:db9::1")).await;
    refused(
        &r,
        StatusCode::FORBIDDEN,
        &value,
        "2001:db9::1 outside 2001:db8::/32",
    );
    let r = h.read_from(&a.token, &v, "net/db", ip("10.1.2.3")).await;
    refused(
        &r,
        StatusCode::FORBIDDEN,
        &value,
        "IPv4 client outside 2001:db8::/32",
    );
    let r = h.read_from(&a.token, &v, "net/db", None).await;
    refused(
        &r,
        StatusCode::FORBIDDEN,
        &value,
        "no client address under an IPv6 allowlist",
    );

    // `"conditions": null` clears them: every address reads again. A missing
    // field leaves them alone.
    h.update_policy(&v, &pid, json!({"permissions": ["read"]}))
        .await;
    let r = h.read_from(&a.token, &v, "net/db", ip("192.168.1.1")).await;
    refused(
        &r,
        StatusCode::FORBIDDEN,
        &value,
        "conditions kept when the field is absent",
    );
    h.update_policy(&v, &pid, json!({"conditions": null})).await;
    let r = h.read_from(&a.token, &v, "net/db", ip("192.168.1.1")).await;
    reads(&r, &value, "no allowlist after conditions: null");
}

#[tokio::test]
async fn time_window_and_days_are_enforced() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "clock").await;
    h.put_secret(&h.owner, &v, "t/db").await;
    let a = h.create_agent(json!({"name": "clock"})).await;
    let now = OffsetDateTime::now_utc();
    let inside = json!({"after": hhmm(now - Duration::hours(2)), "before": hhmm(now + Duration::hours(2)), "timezone": "UTC"});
    let outside = json!({"after": hhmm(now + Duration::hours(6)), "before": hhmm(now + Duration::hours(8)), "timezone": "UTC"});
    // Asia/Kolkata is UTC+05:30 all year.
    let kolkata = now + Duration::minutes(330);
    let inside_kolkata = json!({"after": hhmm(kolkata - Duration::hours(2)), "before": hhmm(kolkata + Duration::hours(2)), "timezone": "Asia/Kolkata"});
    let kolkata_read_as_utc = json!({"after": hhmm(kolkata - Duration::hours(2)), "before": hhmm(kolkata + Duration::hours(2)), "timezone": "UTC"});
    // The window's day is the local day on which it started.
    let start_day = (now - Duration::hours(2)).weekday();
    let other_days: Vec<&str> = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ]
    .into_iter()
    .filter(|d| *d != start_day)
    .map(day)
    .collect();
    let mut on_day = inside.clone();
    on_day["days"] = json!([day(start_day)]);
    let mut off_days = inside.clone();
    off_days["days"] = json!(other_days);

    let pid = h
        .grant(
            &h.owner,
            &v,
            with(
                agent_policy(&a, "t/*", &["read"]),
                json!({"conditions": {"time_window": inside}}),
            ),
        )
        .await;
    h.can_read(&a.token, &v, "t/db", "window around now").await;
    for (window, allowed, what) in [
        (&outside, false, "window 6-8h from now"),
        (&inside, true, "window around now (again)"),
        (&inside_kolkata, true, "window around now in Asia/Kolkata"),
        (
            &kolkata_read_as_utc,
            false,
            "the Kolkata window read as UTC",
        ),
        (&on_day, true, "window around now on its start day"),
        (&off_days, false, "window around now on every other day"),
    ] {
        h.update_policy(&v, &pid, json!({"conditions": {"time_window": window}}))
            .await;
        if allowed {
            h.can_read(&a.token, &v, "t/db", what).await;
        } else {
            h.cannot_read(&a.token, &v, "t/db", what).await;
        }
    }
}

// ---------------------------------------------------------------------------
// 4. Expiry
// ---------------------------------------------------------------------------

#[tokio::test]
async fn expired_policies_do_not_apply() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "expiry").await;
    h.put_secret(&h.owner, &v, "e/db").await;
    let a = h.create_agent(json!({"name": "expiry"})).await;
    let now = OffsetDateTime::now_utc();
    h.grant(
        &h.owner,
        &v,
        with(
            agent_policy(&a, "e/**", &["read"]),
            json!({"expires_at": rfc3339(now - Duration::hours(1))}),
        ),
    )
    .await;
    h.cannot_read(&a.token, &v, "e/db", "policy expired an hour ago")
        .await;
    let live = h
        .grant(
            &h.owner,
            &v,
            with(
                agent_policy(&a, "e/**", &["read"]),
                json!({"expires_at": rfc3339(now + Duration::hours(1))}),
            ),
        )
        .await;
    h.can_read(&a.token, &v, "e/db", "policy expiring in an hour")
        .await;
    h.update_policy(
        &v,
        &live,
        json!({"expires_at": rfc3339(now - Duration::minutes(1))}),
    )
    .await;
    h.cannot_read(&a.token, &v, "e/db", "policy updated to have expired")
        .await;
}

// ---------------------------------------------------------------------------
// 5. Deny and priority
// ---------------------------------------------------------------------------

#[tokio::test]
async fn deny_and_priority_decide_and_bind_the_creator() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "deny").await;
    for p in ["prod/db", "dev/db"] {
        h.put_secret(&h.owner, &v, p).await;
    }
    let a = h.create_agent(json!({"name": "deny"})).await;
    h.grant(&h.owner, &v, agent_policy(&a, "**", &["read"]))
        .await;
    h.can_read(&a.token, &v, "prod/db", "allow **").await;
    let deny = with(
        agent_policy(&a, "prod/**", &["read"]),
        json!({"effect": "deny"}),
    );
    h.grant(&h.owner, &v, deny.clone()).await;
    h.cannot_read(
        &a.token,
        &v,
        "prod/db",
        "deny beats allow at equal priority",
    )
    .await;
    h.can_read(&a.token, &v, "dev/db", "deny prod/** leaves dev alone")
        .await;
    h.grant(
        &h.owner,
        &v,
        with(
            agent_policy(&a, "prod/db", &["read"]),
            json!({"priority": 10}),
        ),
    )
    .await;
    h.can_read(
        &a.token,
        &v,
        "prod/db",
        "priority 10 allow beats priority 0 deny",
    )
    .await;
    h.grant(&h.owner, &v, with(deny, json!({"priority": 20})))
        .await;
    h.cannot_read(
        &a.token,
        &v,
        "prod/db",
        "priority 20 deny beats priority 10 allow",
    )
    .await;

    // The creator (here also the org owner) is bound by an explicit deny.
    h.can_read(&h.owner, &v, "prod/db", "creator before the deny")
        .await;
    let self_deny = h
        .grant(
            &h.owner,
            &v,
            json!({"secret_path_pattern": "prod/**", "principal_type": "user",
                   "principal_id": h.owner_id, "permissions": ["read"], "effect": "deny"}),
        )
        .await;
    h.cannot_read(&h.owner, &v, "prod/db", "creator under a deny")
        .await;
    h.can_read(&h.owner, &v, "dev/db", "creator outside the deny")
        .await;
    h.revoke_policy(&v, &self_deny).await;
    h.can_read(&h.owner, &v, "prod/db", "creator after the deny is deleted")
        .await;

    // A plain member who created a vault is bound too by an owner's deny.
    let (m, m_id) = h.join("member@example.com", "member").await;
    let mv = h.create_vault(&m, "members").await;
    h.put_secret(&m, &mv, "mine/db").await;
    h.can_read(&m, &mv, "mine/db", "member creator, no policy")
        .await;
    h.grant(
        &h.owner,
        &mv,
        json!({"secret_path_pattern": "**", "principal_type": "user",
               "principal_id": m_id, "permissions": ["read"], "effect": "deny"}),
    )
    .await;
    h.cannot_read(&m, &mv, "mine/db", "member creator under a deny")
        .await;
}

// ---------------------------------------------------------------------------
// 6. Token vault binding
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_token_bound_to_vaults_reaches_only_those() {
    let h = H::new().await;
    let va = h.create_vault(&h.owner, "bound-a").await;
    let vb = h.create_vault(&h.owner, "bound-b").await;
    for vault in [&va, &vb] {
        h.put_secret(&h.owner, vault, "s/x").await;
    }
    let bound = h
        .create_agent(json!({"name": "bound", "vault_ids": [va]}))
        .await;
    let free = h.create_agent(json!({"name": "free"})).await;
    for vault in [&va, &vb] {
        for agent in [&bound, &free] {
            h.grant(&h.owner, vault, agent_policy(agent, "**", &["read"]))
                .await;
        }
    }
    assert_eq!(claims_of(&bound.token).vault_ids.len(), 1);
    h.can_read(&bound.token, &va, "s/x", "bound agent, its vault")
        .await;
    h.cannot_read(
        &bound.token,
        &vb,
        "s/x",
        "bound agent, another vault with a policy",
    )
    .await;
    let r = h.get(&bound.token, &format!("/v1/vaults/{vb}")).await;
    expect(&r, StatusCode::FORBIDDEN, "bound agent, GET other vault");
    assert!(
        h.listed(&bound.token, &vb, "").await.is_none(),
        "bound agent lists another vault"
    );
    // The same policies without the binding: both readable.
    h.can_read(&free.token, &va, "s/x", "unbound agent").await;
    h.can_read(&free.token, &vb, "s/x", "unbound agent").await;
}

// ---------------------------------------------------------------------------
// 7. Scopes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn path_scopes_are_a_ceiling_and_capability_scopes_are_not() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "scopes").await;
    for p in ["prod/x", "dev/x"] {
        h.put_secret(&h.owner, &v, p).await;
    }
    let scoped = h
        .create_agent(json!({"name": "scoped", "scopes": ["prod/**"]}))
        .await;
    let capability = h
        .create_agent(json!({"name": "cap", "scopes": ["vaults:read"]}))
        .await;
    let no_policy = h
        .create_agent(json!({"name": "nopolicy", "scopes": ["prod/**"]}))
        .await;
    for agent in [&scoped, &capability] {
        h.grant(&h.owner, &v, agent_policy(agent, "**", &["read"]))
            .await;
    }
    h.can_read(&scoped.token, &v, "prod/x", "scope prod/**")
        .await;
    h.cannot_read(&scoped.token, &v, "dev/x", "scope prod/**")
        .await;
    assert_eq!(
        h.listed(&scoped.token, &v, "").await,
        Some(vec!["prod/x".to_owned()]),
        "listing under scope prod/**"
    );
    h.can_read(&capability.token, &v, "prod/x", "scope vaults:read")
        .await;
    h.can_read(&capability.token, &v, "dev/x", "scope vaults:read")
        .await;
    h.cannot_read(&no_policy.token, &v, "prod/x", "a scope is not a grant")
        .await;
}

// ---------------------------------------------------------------------------
// 8. Owner bypass and roles
// ---------------------------------------------------------------------------

#[tokio::test]
async fn owners_bypass_members_do_not_and_admins_manage_policies_only() {
    let h = H::new().await;
    // Sign-up is closed except by invitation.
    let r = h
        .send(
            Method::POST,
            "/v1/auth/signup",
            None,
            Some(json!({"email": "stranger@example.com", "password": PASSWORD})),
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "uninvited signup");

    let (m, m_id) = h.join("member@example.com", "member").await;
    let (adm, adm_id) = h.join("admin@example.com", "admin").await;
    let mv = h.create_vault(&m, "member-vault").await;
    h.put_secret(&m, &mv, "m/s").await;
    let ov = h.create_vault(&h.owner, "owner-vault").await;
    h.put_secret(&h.owner, &ov, "o/s").await;

    // The owner reads the member's vault with no policy.
    h.can_read(&h.owner, &mv, "m/s", "owner on a member's vault")
        .await;
    assert!(h.vault_ids(&h.owner).await.contains(&mv));

    // The member can't read the owner's vault, see it, or manage its policies.
    h.cannot_read(&m, &ov, "o/s", "member without a policy")
        .await;
    assert!(
        !h.vault_ids(&m).await.contains(&ov),
        "member lists the owner's vault"
    );
    let member_policy = json!({"secret_path_pattern": "o/**", "principal_type": "user",
                               "principal_id": m_id, "permissions": ["read"]});
    let r = h
        .post(
            &m,
            &format!("/v1/vaults/{ov}/policies"),
            member_policy.clone(),
        )
        .await;
    expect(
        &r,
        StatusCode::FORBIDDEN,
        "member creating a policy on the owner's vault",
    );
    h.cannot_read(&m, &ov, "o/s", "member after the refused policy")
        .await;

    // The admin manages the owner's vault's policies...
    h.grant(&adm, &ov, member_policy).await;
    h.can_read(&m, &ov, "o/s", "member granted by the admin")
        .await;
    let r = h.get(&adm, &format!("/v1/vaults/{ov}/policies")).await;
    expect(&r, StatusCode::OK, "admin lists policies");
    // ...but reads nothing without a policy, and can't delete the vault.
    h.cannot_read(&adm, &ov, "o/s", "admin without a policy")
        .await;
    h.cannot_read(&adm, &mv, "m/s", "admin on a member's vault")
        .await;
    let r = h.delete(&adm, &format!("/v1/vaults/{ov}")).await;
    expect(&r, StatusCode::FORBIDDEN, "admin deleting a vault");
    // An admin can't grant themselves (see the self-grant rule below); an
    // owner can grant the admin.
    let admin_policy = json!({"secret_path_pattern": "o/**", "principal_type": "user",
                              "principal_id": adm_id, "permissions": ["read"]});
    let r = h
        .post(
            &adm,
            &format!("/v1/vaults/{ov}/policies"),
            admin_policy.clone(),
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "admin granting themselves");
    h.cannot_read(&adm, &ov, "o/s", "admin after the refused self-grant")
        .await;
    h.grant(&h.owner, &ov, admin_policy).await;
    h.can_read(&adm, &ov, "o/s", "admin with a policy").await;
}

// ---------------------------------------------------------------------------
// 9. Listing filters
// ---------------------------------------------------------------------------

#[tokio::test]
async fn listings_show_exactly_what_may_be_read() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "listed").await;
    let all = ["prod/a", "prod/b", "prod/c/d", "dev/a", "staging/x"];
    for p in all {
        h.put_secret(&h.owner, &v, p).await;
    }
    let a = h.create_agent(json!({"name": "lister"})).await;
    h.grant(&h.owner, &v, agent_policy(&a, "prod/*", &["read"]))
        .await;
    h.grant(
        &h.owner,
        &v,
        with(
            agent_policy(&a, "prod/b", &["read"]),
            json!({"effect": "deny", "priority": 1}),
        ),
    )
    .await;
    h.grant(&h.owner, &v, agent_policy(&a, "dev/a", &["read"]))
        .await;
    h.grant(&h.owner, &v, agent_policy(&a, "staging/**", &["write"]))
        .await;

    let mut owner_view: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    owner_view.sort();
    assert_eq!(h.listed(&h.owner, &v, "").await, Some(owner_view));
    assert_eq!(
        h.listed(&a.token, &v, "").await,
        Some(vec!["dev/a".to_owned(), "prod/a".to_owned()]),
        "agent listing"
    );
    assert_eq!(
        h.listed(&a.token, &v, "?prefix=prod").await,
        Some(vec!["prod/a".to_owned()]),
        "agent listing with a prefix"
    );

    // Vaults: one readable, one without policy, one write-only, one under a
    // higher vault-wide deny.
    let none = h.create_vault(&h.owner, "no-policy").await;
    let write_only = h.create_vault(&h.owner, "write-only").await;
    h.grant(&h.owner, &write_only, agent_policy(&a, "**", &["write"]))
        .await;
    let denied = h.create_vault(&h.owner, "denied").await;
    h.grant(&h.owner, &denied, agent_policy(&a, "dev/**", &["read"]))
        .await;
    h.grant(
        &h.owner,
        &denied,
        with(
            agent_policy(&a, "**", &["read"]),
            json!({"effect": "deny", "priority": 5}),
        ),
    )
    .await;
    let seen = h.vault_ids(&a.token).await;
    assert_eq!(seen, BTreeSet::from([v.clone()]), "agent's vault list");
    let owner_seen = h.vault_ids(&h.owner).await;
    for id in [&v, &none, &write_only, &denied] {
        assert!(owner_seen.contains(id), "owner sees every vault");
    }
    for id in [&none, &write_only, &denied] {
        let r = h.get(&a.token, &format!("/v1/vaults/{id}")).await;
        expect(&r, StatusCode::FORBIDDEN, "GET a hidden vault");
        assert!(h.listed(&a.token, id, "").await.is_none());
    }
}

/// A listing decides once per caller what doesn't depend on the path; with
/// hundreds of entries, a sub-path grant, a deny inside it, a path that only
/// shares the grant's text prefix (`team/ab` beside `team/a/**`) and a scope
/// ceiling, each caller must still see exactly the paths it may read.
#[tokio::test]
async fn a_large_listing_shows_each_caller_exactly_its_paths() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "large").await;
    let mut all: Vec<String> = vec!["team/a".to_owned()];
    for dir in ["team/a", "team/a/secret", "team/ab", "team/b", "other"] {
        for i in 0..40 {
            all.push(format!("{dir}/k{i:03}"));
        }
    }
    for p in &all {
        h.put_secret(&h.owner, &v, p).await;
    }
    all.sort();

    let sub = h.create_agent(json!({"name": "sub-path"})).await;
    h.grant(&h.owner, &v, agent_policy(&sub, "team/a/**", &["read"]))
        .await;
    h.grant(
        &h.owner,
        &v,
        with(
            agent_policy(&sub, "team/a/secret/**", &["read"]),
            json!({"effect": "deny", "priority": 1}),
        ),
    )
    .await;
    let scoped = h
        .create_agent(json!({"name": "scoped", "scopes": ["team/**"]}))
        .await;
    h.grant(&h.owner, &v, agent_policy(&scoped, "**", &["read"]))
        .await;
    let writer = h.create_agent(json!({"name": "writer"})).await;
    h.grant(&h.owner, &v, agent_policy(&writer, "**", &["write"]))
        .await;

    let only = |keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        all.iter().filter(|p| keep(p)).cloned().collect()
    };
    let sub_view =
        only(&|p| (p == "team/a" || p.starts_with("team/a/")) && !p.starts_with("team/a/secret/"));
    assert_eq!(sub_view.len(), 41);
    assert_eq!(h.listed(&h.owner, &v, "").await, Some(all.clone()), "owner");
    assert_eq!(
        h.listed(&sub.token, &v, "").await,
        Some(sub_view.clone()),
        "sub-path grant with a deny inside it"
    );
    assert_eq!(
        h.listed(&sub.token, &v, "?prefix=team/a").await,
        Some(sub_view),
        "the prefix team/a also selects team/ab, which the grant does not cover"
    );
    assert_eq!(
        h.listed(&scoped.token, &v, "").await,
        Some(only(&|p| p.starts_with("team/"))),
        "scope ceiling team/**"
    );
    assert_eq!(
        h.listed(&writer.token, &v, "").await,
        None,
        "write grants no listing"
    );
}

// ---------------------------------------------------------------------------
// 10. Forged tokens
// ---------------------------------------------------------------------------

#[tokio::test]
async fn forged_expired_revoked_and_foreign_tokens_are_refused() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "forgery").await;
    h.put_secret(&h.owner, &v, "f/s").await;
    let value = val("f/s");
    let a = h.create_agent(json!({"name": "forger"})).await;
    h.grant(&h.owner, &v, agent_policy(&a, "**", &["read"]))
        .await;
    h.can_read(&a.token, &v, "f/s", "the genuine token").await;

    let kid = h.engine.tokens().public_key().kid.clone();
    let segs: Vec<&str> = a.token.split('.').collect();
    let mut fresh = claims_of(&a.token);
    fresh.iat = unix_now() - 60;
    fresh.exp = unix_now() + 600;
    fresh.jti = uuid::Uuid::new_v4().to_string();
    // Control: a token re-signed by the server's key over fresh claims works.
    let resigned = sign_with_server_key(&h.engine, &fresh).await;
    h.can_read(&resigned, &v, "f/s", "re-signed by the real key")
        .await;

    let alg_none = format!(
        "{}.{}.",
        B64URL.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string()),
        segs[1]
    );
    let hs256 = {
        let input = format!(
            "{}.{}",
            B64URL.encode(json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string()),
            segs[1]
        );
        let key = aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            &h.engine.tokens().public_key().ed25519,
        );
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", B64URL.encode(tag.as_ref()))
    };
    let other_key = {
        let kp = aws_lc_rs::signature::Ed25519KeyPair::generate().expect("keygen");
        let input = format!(
            "{}.{}",
            B64URL.encode(json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}).to_string()),
            B64URL.encode(serde_json::to_vec(&fresh).unwrap())
        );
        let sig = kp.sign(input.as_bytes());
        format!("{input}.{}", B64URL.encode(sig.as_ref()))
    };
    let tampered = {
        let mut c = claims_of(&a.token);
        c.sub = format!("user:{}", h.owner_id);
        c.role = Some(Role::Owner);
        format!(
            "{}.{}.{}",
            segs[0],
            B64URL.encode(serde_json::to_vec(&c).unwrap()),
            segs[2]
        )
    };
    let expired = {
        let mut c = fresh.clone();
        c.iat = unix_now() - 1500;
        c.exp = unix_now() - 600;
        sign_with_server_key(&h.engine, &c).await
    };
    for (name, tok) in [
        ("alg=none", alg_none),
        ("HS256 keyed with the public key", hs256),
        ("signed by another Ed25519 key with our kid", other_key),
        ("payload changed to the owner", tampered),
        ("expired", expired),
    ] {
        let r = h.read(&tok, &v, "f/s").await;
        refused(&r, StatusCode::UNAUTHORIZED, &value, name);
        let r = h.get(&tok, "/v1/vaults").await;
        expect(
            &r,
            StatusCode::UNAUTHORIZED,
            &format!("{name}: list vaults"),
        );
    }

    // Revocation: the revoked jti stops working, another token doesn't.
    let second = h.agent_token(&a.key).await;
    h.can_read(&second, &v, "f/s", "second token before revocation")
        .await;
    let r = h.delete(&second, "/v1/auth/token").await;
    expect(&r, StatusCode::NO_CONTENT, "revoke");
    let r = h.read(&second, &v, "f/s").await;
    refused(&r, StatusCode::UNAUTHORIZED, &value, "revoked token");
    h.can_read(&a.token, &v, "f/s", "the other token after revocation")
        .await;

    // Another organisation: a real user there, a token signed by the real key.
    let other_org = OrgId::new();
    let other_user = UserId::new();
    let now = OffsetDateTime::now_utc();
    h.engine
        .store()
        .create_org_with_owner(
            &OrgRow {
                id: other_org,
                name: "elsewhere".into(),
                created_at: now,
            },
            &UserRow {
                id: other_user,
                org_id: other_org,
                email: "else@example.org".into(),
                display_name: None,
                password_hash: "unused".into(),
                role: Role::Owner,
                created_at: now,
            },
            SignupGate::Open,
            &AuditRecord::new(
                other_org,
                Actor::Subject(Subject::User(other_user)),
                "auth.signup",
                "user",
                other_user.to_string(),
                json!({}),
                None,
            ),
        )
        .await
        .expect("second org");
    let mut foreign = fresh.clone();
    foreign.sub = Subject::User(other_user).to_string();
    foreign.org = other_org.to_string();
    foreign.role = Some(Role::Owner);
    foreign.scopes = vec![];
    foreign.vault_ids = vec![];
    let foreign = sign_with_server_key(&h.engine, &foreign).await;
    // Control: the token is valid in its own organisation.
    let r = h
        .post(&foreign, "/v1/vaults", json!({"name": "theirs"}))
        .await;
    expect(&r, StatusCode::CREATED, "foreign token in its own org");
    assert!(
        !h.vault_ids(&foreign).await.contains(&v),
        "foreign org lists our vault"
    );
    for (method, uri, body) in [
        (Method::GET, secret_uri(&v, "f/s"), None),
        (Method::GET, format!("/v1/vaults/{v}"), None),
        (Method::GET, format!("/v1/vaults/{v}/secrets"), None),
        (
            Method::GET,
            format!("/v1/vaults/{v}/secret-version/f/s/1"),
            None,
        ),
        (
            Method::PUT,
            secret_uri(&v, "f/s"),
            Some(json!({"value": "overwritten"})),
        ),
        (
            Method::POST,
            format!("/v1/vaults/{v}/policies"),
            Some(
                json!({"secret_path_pattern": "**", "principal_type": "user",
                        "principal_id": other_user.to_string(), "permissions": ["read"]}),
            ),
        ),
    ] {
        let what = format!("foreign org: {method} {uri}");
        let r = h.send(method, &uri, Some(&foreign), body).await;
        refused(&r, StatusCode::NOT_FOUND, &value, &what);
    }
    // A foreign org claim over one of our users is no principal at all.
    let mut mixed = fresh.clone();
    mixed.sub = format!("user:{}", h.owner_id);
    mixed.org = other_org.to_string();
    mixed.role = Some(Role::Owner);
    let mixed = sign_with_server_key(&h.engine, &mixed).await;
    let r = h.read(&mixed, &v, "f/s").await;
    assert!(
        matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND),
        "our owner under a foreign org claim: {} {}",
        r.status,
        r.text()
    );
    assert!(!r.text().contains(&value));
    h.can_read(&h.owner, &v, "f/s", "nothing was overwritten")
        .await;
}

// ---------------------------------------------------------------------------
// 11. Path canonicalisation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn non_canonical_paths_cannot_bypass_a_pattern() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "canon").await;
    h.put_secret(&h.owner, &v, "prod/db").await;
    h.put_secret(&h.owner, &v, "staging/db").await;
    h.put_value(&h.owner, &v, "PROD/db", "upper-case-value")
        .await;
    let a = h.create_agent(json!({"name": "canon"})).await;
    h.grant(&h.owner, &v, agent_policy(&a, "prod/*", &["read"]))
        .await;
    let prod = val("prod/db");
    let staging = val("staging/db");
    h.can_read(&a.token, &v, "prod/db", "canonical prod/db")
        .await;
    let r = h.read(&a.token, &v, "prod/%64b").await;
    reads(&r, &prod, "percent-encoded letter in prod/db");
    h.cannot_read(&a.token, &v, "staging/db", "canonical staging/db")
        .await;

    let families = |raw: &str| {
        [
            format!("/v1/vaults/{v}/secrets/{raw}"),
            format!("/v1/vaults/{v}/secret-versions/{raw}"),
            format!("/v1/vaults/{v}/secret-version/{raw}/1"),
        ]
    };
    for raw in [
        "prod/../staging/db",
        "prod/%2e%2e/staging/db",
        "prod/%2E%2E/staging/db",
        "prod%2F..%2Fstaging%2Fdb",
        "prod%2Fdb",
        "prod%2fdb",
        "prod//db",
        "prod/db/",
        "prod/./db",
        "prod/%2e/db",
        "./prod/db",
    ] {
        for uri in families(raw) {
            let r = h.get(&a.token, &uri).await;
            assert!(
                matches!(r.status, StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN),
                "GET {uri}: expected 400 or 403, got {} {}",
                r.status,
                r.text()
            );
            for leaked in [&staging, &prod] {
                assert!(
                    !r.text().contains(leaked.as_str()),
                    "GET {uri} leaked {leaked}"
                );
            }
        }
    }
    for raw in ["PROD/db", "Prod/db", "prod/DB"] {
        for uri in families(raw) {
            let r = h.get(&a.token, &uri).await;
            assert!(
                matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
                "GET {uri}: expected 403 or 404, got {} {}",
                r.status,
                r.text()
            );
            for leaked in [&staging, &prod, &"upper-case-value".to_owned()] {
                assert!(
                    !r.text().contains(leaked.as_str()),
                    "GET {uri} leaked {leaked}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 12. Unknown principal vs wrong secret
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unknown_principals_and_wrong_secrets_look_the_same() {
    let h = H::new().await;
    let login = |email: &str, password: &str| {
        h.send(
            Method::POST,
            "/v1/auth/token",
            None,
            Some(json!({"email": email, "password": password})),
        )
    };
    let r = login(OWNER_EMAIL, PASSWORD).await;
    expect(&r, StatusCode::OK, "right password");
    let unknown = login("nobody@example.com", PASSWORD).await;
    let wrong = login(OWNER_EMAIL, "Wrong-Horse-42!").await;
    expect(&unknown, StatusCode::UNAUTHORIZED, "unknown email");
    assert_eq!(unknown.status, wrong.status, "login statuses");
    assert_eq!(unknown.json(), wrong.json(), "login bodies");

    let a = h.create_agent(json!({"name": "probe"})).await;
    let exchange = |body: Value| h.send(Method::POST, "/v1/auth/agent-token", None, Some(body));
    let r = exchange(json!({"api_key": a.key, "agent_id": a.id})).await;
    expect(&r, StatusCode::OK, "right key with agent_id");
    let made_up = format!("ocv_{}", B64URL.encode([7u8; 32]));
    let unknown_key = exchange(json!({"api_key": made_up})).await;
    let wrong_key = exchange(json!({"api_key": made_up, "agent_id": a.id})).await;
    let r = h.delete(&h.owner, &format!("/v1/agents/{}", a.id)).await;
    expect(&r, StatusCode::NO_CONTENT, "deactivate agent");
    let deactivated = exchange(json!({"api_key": a.key})).await;
    let deactivated_with_id = exchange(json!({"api_key": a.key, "agent_id": a.id})).await;
    expect(&unknown_key, StatusCode::UNAUTHORIZED, "unknown ocv_ key");
    let reference = unknown_key.json();
    for (name, r) in [
        ("known agent id, wrong key", &wrong_key),
        ("deactivated agent, right key", &deactivated),
        ("deactivated agent, right key and id", &deactivated_with_id),
    ] {
        assert_eq!(r.status, unknown_key.status, "{name}: status");
        assert_eq!(r.json(), reference, "{name}: body");
    }
    // Its existing token stopped working too.
    let r = h.get(&a.token, "/v1/vaults").await;
    expect(&r, StatusCode::UNAUTHORIZED, "deactivated agent's token");
}

// ---------------------------------------------------------------------------
// 13. Audit
// ---------------------------------------------------------------------------

#[tokio::test]
async fn decisions_are_audited_with_their_rule_and_policy() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "audited").await;
    for p in ["au/ok", "au/deny"] {
        h.put_secret(&h.owner, &v, p).await;
    }
    let w = h.create_vault(&h.owner, "unGranted").await;
    h.put_secret(&h.owner, &w, "x").await;
    let a = h.create_agent(json!({"name": "audited"})).await;
    let allow = h
        .grant(&h.owner, &v, agent_policy(&a, "au/**", &["read"]))
        .await;
    let deny = h
        .grant(
            &h.owner,
            &v,
            with(
                agent_policy(&a, "au/deny", &["read"]),
                json!({"effect": "deny"}),
            ),
        )
        .await;
    h.can_read(&a.token, &v, "au/ok", "allowed by policy").await;
    h.cannot_read(&a.token, &v, "au/deny", "deny policy").await;
    h.cannot_read(&a.token, &w, "x", "no policy").await;

    let denied = h
        .audit(&format!("action=access.denied&actor_id={}", a.id))
        .await;
    let find = |events: &[Value], vault: &str, path: &str| -> Value {
        events
            .iter()
            .find(|e| e["details"]["vault_id"] == vault && e["details"]["path"] == path)
            .unwrap_or_else(|| panic!("no event for {vault}/{path} in {events:#?}"))
            .clone()
    };
    let e = find(&denied, &v, "au/deny");
    assert_eq!(e["actor_id"], a.id.as_str());
    assert_eq!(e["details"]["rule"], "deny_policy", "{e:#}");
    assert_eq!(e["details"]["policy_id"], deny.as_str(), "{e:#}");
    assert_eq!(e["details"]["attempted"], "read", "{e:#}");
    assert_eq!(e["ip_address"], "10.1.2.3", "{e:#}");
    let e = find(&denied, &w, "x");
    assert_eq!(e["details"]["rule"], "no_grant", "{e:#}");
    assert!(e["details"]["policy_id"].is_null(), "{e:#}");
    assert!(
        !denied.iter().any(|e| e["details"]["path"] == "au/ok"),
        "an allowed read was audited as denied"
    );

    let reads_ = h
        .audit(&format!("action=secret.read&actor_id={}", a.id))
        .await;
    let e = find(&reads_, &v, "au/ok");
    assert_eq!(e["details"]["decision"], "policy", "{e:#}");
    assert_eq!(e["details"]["policy_id"], allow.as_str(), "{e:#}");
    assert!(
        !reads_.iter().any(|e| e["details"]["path"] == "au/deny"),
        "a refused read was audited as a read"
    );
    // The owner's own reads are recorded with the bypass that allowed them.
    h.can_read(&h.owner, &v, "au/ok", "owner").await;
    let owner_reads = h
        .audit(&format!("action=secret.read&actor_id={}", h.owner_id))
        .await;
    let e = find(&owner_reads, &v, "au/ok");
    assert_eq!(e["details"]["decision"], "vault_creator", "{e:#}");
    assert!(e["details"]["policy_id"].is_null(), "{e:#}");
}

// ---------------------------------------------------------------------------
// Issue 10: defects found by adversarial testing, each with both sides shown
// ---------------------------------------------------------------------------

impl H {
    async fn patch(&self, token: &str, uri: &str, body: Value) -> Resp {
        self.send(Method::PATCH, uri, Some(token), Some(body)).await
    }

    /// Registers an agent as `token`; returns it with a fresh token.
    async fn create_agent_as(&self, token: &str, body: Value) -> Agent {
        let r = self.post(token, "/v1/agents", body).await;
        expect(&r, StatusCode::CREATED, "create agent");
        let v = r.json();
        let key = v["api_key"].as_str().unwrap().to_owned();
        Agent {
            id: v["agent"]["id"].as_str().unwrap().to_owned(),
            token: self.agent_token(&key).await,
            key,
        }
    }

    /// A personal key of `token`'s user with `scopes`.
    async fn api_key(&self, token: &str, scopes: Value) -> String {
        let r = self
            .post(
                token,
                "/v1/auth/api-keys",
                json!({"name": "k", "scopes": scopes}),
            )
            .await;
        expect(&r, StatusCode::CREATED, "create API key");
        r.json()["api_key"].as_str().unwrap().to_owned()
    }

    async fn agent_keys_vault(&self) -> String {
        let r = self.get(&self.owner, "/v1/org/agent-keys-vault").await;
        expect(&r, StatusCode::OK, "agent-keys vault");
        r.json()["vault_id"].as_str().unwrap().to_owned()
    }

    async fn status_of(
        &self,
        token: &str,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> StatusCode {
        self.send(method, uri, Some(token), body).await.status
    }
}

fn own_key_path(agent: &Agent) -> String {
    format!("agents/{}/ssh/private_key", agent.id)
}

#[tokio::test]
async fn the_agent_keys_vault_is_the_servers_and_only_owners_admins_and_the_agent_read_it() {
    let h = H::new().await;
    let (m, _) = h.join("member@example.com", "member").await;
    let (adm, _) = h.join("admin@example.com", "admin").await;
    // The name is reserved: a member can't claim the vault before any agent exists.
    let r = h
        .post(&m, "/v1/vaults", json!({"name": "__agent-keys"}))
        .await;
    expect(&r, StatusCode::BAD_REQUEST, "a vault named __agent-keys");
    let r = h
        .post(&m, "/v1/vaults", json!({"name": "__anything"}))
        .await;
    expect(&r, StatusCode::BAD_REQUEST, "a vault named __anything");
    let r = h.get(&h.owner, "/v1/org/agent-keys-vault").await;
    expect(
        &r,
        StatusCode::NOT_FOUND,
        "no agent-keys vault before any agent",
    );

    // The member registers the organisation's first agent: the vault appears,
    // but the member is not its creator and reads nothing in it.
    let first = h.create_agent_as(&m, json!({"name": "first"})).await;
    let keys = h.agent_keys_vault().await;
    let r = h.get(&h.owner, &format!("/v1/vaults/{keys}")).await;
    expect(&r, StatusCode::OK, "owner sees the agent-keys vault");
    assert_eq!(r.json()["created_by_type"], "system", "{}", r.text());
    assert!(
        !h.vault_ids(&m).await.contains(&keys),
        "member lists the agent-keys vault"
    );
    let later = h.create_agent(json!({"name": "later"})).await;
    for a in [&first, &later] {
        for path in [own_key_path(a), format!("agents/{}/ecdh/private_key", a.id)] {
            let r = h.read(&m, &keys, &path).await;
            expect(&r, StatusCode::FORBIDDEN, "member reading an agent's key");
            for reader in [&h.owner, &adm] {
                let r = h.read(reader, &keys, &path).await;
                expect(&r, StatusCode::OK, "owner or admin reading an agent's key");
            }
        }
    }
    // Even a policy can't make the member a reader.
    let r = h
        .post(
            &h.owner,
            &format!("/v1/vaults/{keys}/policies"),
            json!({"secret_path_pattern": "**", "principal_type": "user",
                   "principal_id": h.user_id(&m).await, "permissions": ["read"]}),
        )
        .await;
    expect(
        &r,
        StatusCode::BAD_REQUEST,
        "granting a member the agent-keys vault",
    );
    let r = h.read(&m, &keys, &own_key_path(&first)).await;
    expect(&r, StatusCode::FORBIDDEN, "member after the refused grant");

    // An agent reads its own keys once granted (1claw's rule), never another's.
    let r = h.read(&first.token, &keys, &own_key_path(&first)).await;
    expect(&r, StatusCode::FORBIDDEN, "agent without a grant");
    h.grant(
        &h.owner,
        &keys,
        agent_policy(&first, &format!("agents/{}/**", first.id), &["read"]),
    )
    .await;
    let r = h.read(&first.token, &keys, &own_key_path(&first)).await;
    expect(&r, StatusCode::OK, "agent reading its own key");
    let r = h.read(&first.token, &keys, &own_key_path(&later)).await;
    expect(
        &r,
        StatusCode::FORBIDDEN,
        "agent reading another agent's key",
    );
    let r = h
        .post(
            &h.owner,
            &format!("/v1/vaults/{keys}/policies"),
            agent_policy(&first, &format!("agents/{}/**", later.id), &["read"]),
        )
        .await;
    expect(
        &r,
        StatusCode::BAD_REQUEST,
        "granting an agent another's keys",
    );

    // Nobody writes, deletes, rotates or deletes the vault through the API.
    let key_uri = secret_uri(&keys, &own_key_path(&later));
    for who in [&h.owner, &adm, &m] {
        let r = h.put(who, &key_uri, json!({"value": "forged"})).await;
        expect(&r, StatusCode::FORBIDDEN, "overwriting an agent's key");
        let r = h.delete(who, &key_uri).await;
        expect(&r, StatusCode::FORBIDDEN, "deleting an agent's key");
        let r = h.delete(who, &format!("/v1/vaults/{keys}")).await;
        expect(&r, StatusCode::FORBIDDEN, "deleting the agent-keys vault");
    }
    let r = h.read(&h.owner, &keys, &own_key_path(&later)).await;
    expect(&r, StatusCode::OK, "the key is still there");
    assert_ne!(r.json()["value"], "forged");
}

#[tokio::test]
async fn a_scoped_credential_stays_inside_its_ceiling() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "scoped").await;
    for p in ["db/key", "prod/key"] {
        h.put_secret(&h.owner, &v, p).await;
    }
    let scoped = h.api_key(&h.owner, json!(["db/*"])).await;
    // Allowed: what lies inside the ceiling, and keys no broader than it.
    h.can_read(&scoped, &v, "db/key", "scoped key inside its ceiling")
        .await;
    h.cannot_read(&scoped, &v, "prod/key", "scoped key outside its ceiling")
        .await;
    h.api_key(&scoped, json!(["db/*"])).await;
    // Refused: everything that reaches beyond the ceiling.
    let a = h.create_agent(json!({"name": "target"})).await;
    let refusals = [
        (
            Method::POST,
            "/v1/agents".to_owned(),
            Some(json!({"name": "escape"})),
        ),
        (
            Method::POST,
            format!("/v1/vaults/{v}/policies"),
            Some(agent_policy(&a, "**", &["read"])),
        ),
        (
            Method::POST,
            "/v1/org/invite".to_owned(),
            Some(json!({"email": "x@example.com", "role": "owner"})),
        ),
        (Method::DELETE, format!("/v1/vaults/{v}"), None),
        (Method::POST, format!("/v1/vaults/{v}/kek/rotate"), None),
        (Method::GET, format!("/v1/vaults/{v}/policies"), None),
        (
            Method::POST,
            format!("/v1/agents/{}/rotate-key", a.id),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/agents/{}", a.id),
            Some(json!({"scopes": []})),
        ),
        (
            Method::POST,
            "/v1/auth/api-keys".to_owned(),
            Some(json!({"name": "wide", "scopes": ["**"]})),
        ),
        (Method::GET, "/v1/audit/events".to_owned(), None),
    ];
    for (method, uri, body) in refusals {
        let st = h.status_of(&scoped, method.clone(), &uri, body).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{method} {uri} with a db/* key");
    }
    // The same key exchanged for a token is just as bound.
    let r = h
        .send(
            Method::POST,
            "/v1/auth/api-key-token",
            None,
            Some(json!({"api_key": scoped})),
        )
        .await;
    expect(&r, StatusCode::OK, "api-key-token");
    let jwt = r.json()["access_token"].as_str().unwrap().to_owned();
    let st = h
        .status_of(
            &jwt,
            Method::POST,
            "/v1/agents",
            Some(json!({"name": "escape"})),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "agent creation with the key's token"
    );
    let scope_refusals = h
        .audit("action=access.denied")
        .await
        .iter()
        .filter(|e| e["details"]["rule"] == "scope")
        .count();
    assert!(
        scope_refusals >= 11,
        "{scope_refusals} refusals recorded with rule scope"
    );
    // An unrestricted key does all of it.
    let full = h.api_key(&h.owner, json!([])).await;
    let st = h
        .status_of(
            &full,
            Method::POST,
            "/v1/agents",
            Some(json!({"name": "ok"})),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::CREATED,
        "agent creation with an unscoped key"
    );
    let st = h
        .status_of(&full, Method::DELETE, &format!("/v1/vaults/{v}"), None)
        .await;
    assert_eq!(
        st,
        StatusCode::NO_CONTENT,
        "vault deletion with an unscoped key"
    );
}

#[tokio::test]
async fn an_explicit_deny_binds_the_principal_it_names() {
    let h = H::new().await;
    let (adm, adm_id) = h.join("admin@example.com", "admin").await;
    let (adm2, adm2_id) = h.join("admin2@example.com", "admin").await;
    let (m, m_id) = h.join("member@example.com", "member").await;
    let ov = h.create_vault(&h.owner, "owner").await;
    h.put_secret(&h.owner, &ov, "s/x").await;
    let mv = h.create_vault(&m, "member").await;
    h.put_secret(&m, &mv, "s/x").await;
    let user_policy = |id: &str, effect: &str, priority: i32| {
        json!({"secret_path_pattern": "**", "principal_type": "user", "principal_id": id,
               "permissions": ["read"], "effect": effect, "priority": priority})
    };
    h.grant(&h.owner, &ov, user_policy(&adm_id, "allow", 0))
        .await;
    h.can_read(&adm, &ov, "s/x", "admin granted by the owner")
        .await;
    let deny = h
        .grant(&h.owner, &ov, user_policy(&adm_id, "deny", 5))
        .await;
    h.cannot_read(&adm, &ov, "s/x", "admin denied by the owner")
        .await;
    // The denied admin can neither delete the deny nor outrank it.
    let r = h
        .delete(&adm, &format!("/v1/vaults/{ov}/policies/{deny}"))
        .await;
    expect(
        &r,
        StatusCode::FORBIDDEN,
        "admin deleting the deny on themselves",
    );
    let r = h
        .put(
            &adm,
            &format!("/v1/vaults/{ov}/policies/{deny}"),
            json!({"effect": "allow"}),
        )
        .await;
    expect(
        &r,
        StatusCode::FORBIDDEN,
        "admin turning their deny into an allow",
    );
    let r = h
        .post(
            &adm,
            &format!("/v1/vaults/{ov}/policies"),
            user_policy(&adm_id, "allow", 100),
        )
        .await;
    expect(&r, StatusCode::FORBIDDEN, "admin outranking the deny");
    // Another admin can't lift an owner's deny either.
    let r = h
        .delete(&adm2, &format!("/v1/vaults/{ov}/policies/{deny}"))
        .await;
    expect(
        &r,
        StatusCode::FORBIDDEN,
        "a second admin deleting an owner's deny",
    );
    h.cannot_read(&adm, &ov, "s/x", "admin still denied").await;
    // A vault's creator denied by an owner stays denied on their own vault.
    let mdeny = h.grant(&h.owner, &mv, user_policy(&m_id, "deny", 0)).await;
    h.cannot_read(&m, &mv, "s/x", "creator denied by the owner")
        .await;
    let r = h
        .delete(&m, &format!("/v1/vaults/{mv}/policies/{mdeny}"))
        .await;
    expect(
        &r,
        StatusCode::FORBIDDEN,
        "creator deleting the owner's deny",
    );
    let r = h
        .post(
            &m,
            &format!("/v1/vaults/{mv}/policies"),
            user_policy(&m_id, "allow", 9),
        )
        .await;
    expect(
        &r,
        StatusCode::FORBIDDEN,
        "creator outranking the owner's deny",
    );
    h.cannot_read(&m, &mv, "s/x", "creator still denied").await;
    // Allowed: admins manage denies they set on others, owners lift any.
    let adeny = h.grant(&adm, &ov, user_policy(&adm2_id, "deny", 0)).await;
    h.cannot_read(&adm2, &ov, "s/x", "admin2 denied by admin")
        .await;
    h.update_policy(&ov, &adeny, json!({"priority": 3})).await;
    let r = h
        .delete(&adm, &format!("/v1/vaults/{ov}/policies/{adeny}"))
        .await;
    expect(
        &r,
        StatusCode::NO_CONTENT,
        "admin deleting a deny they set on another admin",
    );
    h.revoke_policy(&ov, &deny).await;
    h.can_read(&adm, &ov, "s/x", "admin after the owner lifted the deny")
        .await;
    let rules: Vec<_> = h
        .audit("action=access.denied")
        .await
        .into_iter()
        .map(|e| e["details"]["rule"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(rules.iter().any(|r| r == "self_grant"), "{rules:?}");
    assert!(rules.iter().any(|r| r == "owner_deny"), "{rules:?}");
}

#[tokio::test]
async fn rotation_and_deactivation_end_an_agents_tokens() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "tokens").await;
    h.put_secret(&h.owner, &v, "db/x").await;
    let a = h.create_agent(json!({"name": "rotating"})).await;
    h.grant(&h.owner, &v, agent_policy(&a, "**", &["read"]))
        .await;
    h.can_read(&a.token, &v, "db/x", "before rotation").await;
    let r = h
        .post(
            &h.owner,
            &format!("/v1/agents/{}/rotate-key", a.id),
            json!({}),
        )
        .await;
    expect(&r, StatusCode::OK, "rotate-key");
    let new_key = r.json()["api_key"].as_str().unwrap().to_owned();
    let r = h.read(&a.token, &v, "db/x").await;
    expect(
        &r,
        StatusCode::UNAUTHORIZED,
        "a token from before the rotation",
    );
    let fresh = h.agent_token(&new_key).await;
    h.can_read(&fresh, &v, "db/x", "a token of the new key")
        .await;
    // Deactivation ends it, and reactivation does not revive it.
    let r = h
        .patch(
            &h.owner,
            &format!("/v1/agents/{}", a.id),
            json!({"is_active": false}),
        )
        .await;
    expect(&r, StatusCode::OK, "deactivate");
    let r = h.read(&fresh, &v, "db/x").await;
    expect(
        &r,
        StatusCode::UNAUTHORIZED,
        "a token of a deactivated agent",
    );
    let r = h
        .patch(
            &h.owner,
            &format!("/v1/agents/{}", a.id),
            json!({"is_active": true}),
        )
        .await;
    expect(&r, StatusCode::OK, "reactivate");
    let r = h.read(&fresh, &v, "db/x").await;
    expect(
        &r,
        StatusCode::UNAUTHORIZED,
        "a token from before the deactivation, after reactivation",
    );
    let after = h.agent_token(&new_key).await;
    h.can_read(&after, &v, "db/x", "a token issued after reactivation")
        .await;
    // A plain update (no rotation, no deactivation) keeps tokens working.
    let r = h
        .patch(
            &h.owner,
            &format!("/v1/agents/{}", a.id),
            json!({"description": "x"}),
        )
        .await;
    expect(&r, StatusCode::OK, "update");
    h.can_read(&after, &v, "db/x", "after an unrelated update")
        .await;
}

#[tokio::test]
async fn an_agent_sees_only_its_own_record() {
    let h = H::new().await;
    let a = h.create_agent(json!({"name": "a"})).await;
    let b = h.create_agent(json!({"name": "b"})).await;
    let r = h.get(&a.token, &format!("/v1/agents/{}", a.id)).await;
    expect(&r, StatusCode::OK, "an agent reading itself");
    let r = h.get(&a.token, &format!("/v1/agents/{}", b.id)).await;
    expect(&r, StatusCode::FORBIDDEN, "an agent reading another agent");
    assert!(!r.text().contains("ssh_public_key"), "{}", r.text());
    let r = h.get(&h.owner, &format!("/v1/agents/{}", b.id)).await;
    expect(&r, StatusCode::OK, "a user reading an agent");
}

#[tokio::test]
async fn rotate_without_read_does_not_reveal_the_previous_metadata() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "rotate").await;
    let r = h
        .put(
            &h.owner,
            &secret_uri(&v, "db/pw"),
            json!({"value": "x", "metadata": {"owner": "team-secret-meta"}}),
        )
        .await;
    expect(&r, StatusCode::CREATED, "put");
    let a = h.create_agent(json!({"name": "rotator"})).await;
    h.grant(&h.owner, &v, agent_policy(&a, "**", &["rotate"]))
        .await;
    let r = h
        .post(
            &a.token,
            &format!("/v1/vaults/{v}/secret-rotate/db/pw"),
            json!({}),
        )
        .await;
    expect(&r, StatusCode::CREATED, "rotate without read");
    assert!(!r.text().contains("team-secret-meta"), "{}", r.text());
    h.grant(&h.owner, &v, agent_policy(&a, "**", &["read"]))
        .await;
    let r = h
        .post(
            &a.token,
            &format!("/v1/vaults/{v}/secret-rotate/db/pw"),
            json!({}),
        )
        .await;
    expect(&r, StatusCode::CREATED, "rotate with read");
    assert!(r.text().contains("team-secret-meta"), "{}", r.text());
}

#[tokio::test]
async fn intents_agents_may_not_read_key_material() {
    let h = H::new().await;
    let v = h.create_vault(&h.owner, "keys").await;
    for (path, ty) in [
        ("k/priv", "private_key"),
        ("k/ssh", "ssh_key"),
        ("k/pw", "password"),
    ] {
        let r = h
            .put(
                &h.owner,
                &secret_uri(&v, path),
                json!({"value": val(path), "type": ty}),
            )
            .await;
        expect(&r, StatusCode::CREATED, "put");
    }
    let a = h
        .create_agent(json!({"name": "signer", "intents_api_enabled": true}))
        .await;
    h.grant(&h.owner, &v, agent_policy(&a, "**", &["read"]))
        .await;
    h.cannot_read(&a.token, &v, "k/priv", "intents agent, private_key")
        .await;
    h.cannot_read(&a.token, &v, "k/ssh", "intents agent, ssh_key")
        .await;
    let r = h
        .get(&a.token, &format!("/v1/vaults/{v}/secret-version/k/priv/1"))
        .await;
    refused(
        &r,
        StatusCode::FORBIDDEN,
        &val("k/priv"),
        "intents agent, one version",
    );
    h.can_read(&a.token, &v, "k/pw", "intents agent, password")
        .await;
    // Turning the Intents API off applies to the same token at once.
    let r = h
        .patch(
            &h.owner,
            &format!("/v1/agents/{}", a.id),
            json!({"intents_api_enabled": false}),
        )
        .await;
    expect(&r, StatusCode::OK, "disable intents");
    h.can_read(&a.token, &v, "k/priv", "agent without the Intents API")
        .await;
}
