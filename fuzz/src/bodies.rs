//! `bodies`: the request body of every route that reads one, against the
//! real router in process (SQLite in a scratch directory, the memory key
//! provider, the cheapest password hashing the engine accepts).
//!
//! At start: an owner signs up, creates a vault with a secret, an agent and a
//! policy, and invites a second member (whose role the `update_member` route
//! edits, so the owner keeps theirs). The first input byte picks the route
//! ([`ROUTES`]) and the content type (JSON, none, `text/plain`); the rest is
//! the body, sent with the owner's token where the route wants one.
//!
//! Properties: every answer is below 500, and every error answer is RFC 7807
//! `application/problem+json` whose `status` is the response's.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use strongroom_crypto::password::PasswordParams;
use strongroom_engine::{Admin, EngineConfig};
use strongroom_kms::soft::SoftProvider;
use strongroom_server::{AppState, router};
use strongroom_store::sqlite::SqliteStore;
use tower::ServiceExt;

const PASSWORD: &str = "Correct-Horse-42!";
/// The secret path every secret route is called on.
pub const SECRET: &str = "fuzz/secret";

/// A route that reads a JSON body: method, path template (`{vault}`,
/// `{agent}`, `{policy}`, `{member}`, `{secret}` are filled in), and whether
/// it is called with the owner's token.
pub const ROUTES: &[(&str, &str, bool)] = &[
    ("POST", "/v1/auth/signup", false),
    ("POST", "/v1/auth/token", false),
    ("POST", "/v1/auth/agent-token", false),
    ("POST", "/v1/auth/api-key-token", false),
    ("POST", "/v1/auth/api-keys", true),
    ("POST", "/v1/agents", true),
    ("PATCH", "/v1/agents/{agent}", true),
    ("PATCH", "/v1/org/members/{member}", true),
    ("POST", "/v1/org/invite", true),
    ("POST", "/v1/vaults/{vault}/policies", true),
    ("PUT", "/v1/vaults/{vault}/policies/{policy}", true),
    ("POST", "/v1/vaults", true),
    ("PUT", "/v1/vaults/{vault}/secrets/{secret}", true),
    ("POST", "/v1/vaults/{vault}/secret-rotate/{secret}", true),
    ("POST", "/v1/vaults/{vault}/kek/rewrap", true),
];

/// Routes with a body-taking method that read no body (the test that every
/// route is covered checks [`ROUTES`] and these against the route table).
pub const NO_BODY: &[(&str, &str)] = &[
    ("POST", "/v1/agents/{agent_id}/rotate-key"),
    ("POST", "/v1/vaults/{vault_id}/kek/rotate"),
    (
        "POST",
        "/v1/vaults/{vault_id}/secret-version-disable/{*path}",
    ),
];

/// The router and what the setup created.
pub struct Harness {
    app: Router,
    _admin: Arc<Admin>,
    token: String,
    vault: String,
    agent: String,
    policy: String,
    member: String,
    _dir: crate::Scratch,
}

/// An answer.
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its `Content-Type`.
    pub content_type: Option<String>,
    /// Its body.
    pub body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let r = app.clone().oneshot(req).await.expect("the router answers");
    let status = r.status();
    let content_type = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(r.into_body(), 16 << 20)
        .await
        .expect("reading the answer")
        .to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

fn request(
    method: &str,
    uri: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("a method"))
        .uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.body(Body::from(body)).expect("a request")
}

async fn call(app: &Router, method: &str, uri: &str, token: Option<&str>, body: Value) -> Value {
    let a = send(
        app,
        request(
            method,
            uri,
            token,
            Some("application/json"),
            body.to_string().into_bytes(),
        ),
    )
    .await;
    assert!(
        a.status.is_success(),
        "setup {method} {uri}: {} {}",
        a.status,
        String::from_utf8_lossy(&a.body)
    );
    a.json()
}

impl Harness {
    /// A fresh server and its setup.
    pub fn new() -> Self {
        crate::runtime().block_on(Self::build())
    }

    async fn build() -> Self {
        let dir = crate::Scratch::new("bodies");
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("db.sqlite"))
                .await
                .expect("the store opens"),
        );
        let kms = Arc::new(SoftProvider::memory().expect("a memory key provider"));
        let admin = Arc::new(
            Admin::new(
                store,
                kms,
                EngineConfig {
                    password_params: PasswordParams {
                        m_cost: 256,
                        t_cost: 1,
                    },
                    user_token_ttl: std::time::Duration::from_secs(24 * 3600),
                    ..Default::default()
                },
            )
            .await
            .expect("the engine starts"),
        );
        let app = router(AppState {
            engine: admin.engine().clone(),
            metrics: None,
        });
        let r = call(
            &app,
            "POST",
            "/v1/auth/signup",
            None,
            json!({"email": "owner@example.com", "password": PASSWORD}),
        )
        .await;
        let token = r["access_token"].as_str().expect("a token").to_owned();
        let t = Some(token.as_str());
        let r = call(&app, "POST", "/v1/vaults", t, json!({"name": "fuzz"})).await;
        let vault = r["id"].as_str().expect("a vault id").to_owned();
        call(
            &app,
            "PUT",
            &format!("/v1/vaults/{vault}/secrets/{SECRET}"),
            t,
            json!({"value": "s3cret", "secret_type": "password"}),
        )
        .await;
        let r = call(
            &app,
            "POST",
            "/v1/agents",
            t,
            json!({"name": "fuzz-agent", "vault_ids": [vault]}),
        )
        .await;
        let agent = r["agent"]["id"]
            .as_str()
            .or(r["id"].as_str())
            .expect("an agent id")
            .to_owned();
        let r = call(
            &app,
            "POST",
            &format!("/v1/vaults/{vault}/policies"),
            t,
            json!({
                "secret_path_pattern": "fuzz/**",
                "principal_type": "agent",
                "principal_id": agent,
                "permissions": ["read"],
            }),
        )
        .await;
        let policy = r["id"].as_str().expect("a policy id").to_owned();
        let r = call(
            &app,
            "POST",
            "/v1/org/invite",
            t,
            json!({"email": "member@example.com", "role": "member"}),
        )
        .await;
        let invite = r["invite_token"]
            .as_str()
            .expect("an invitation")
            .to_owned();
        let r = call(
            &app,
            "POST",
            "/v1/auth/signup",
            None,
            json!({"email": "member@example.com", "password": PASSWORD, "invite_token": invite}),
        )
        .await;
        let member_token = r["access_token"].as_str().expect("a token").to_owned();
        let me = send(
            &app,
            request("GET", "/v1/auth/me", Some(&member_token), None, vec![]),
        )
        .await
        .json();
        let member = me["id"]
            .as_str()
            .or(me["user"]["id"].as_str())
            .expect("the member's id")
            .to_owned();
        Harness {
            app,
            _admin: admin,
            token,
            vault,
            agent,
            policy,
            member,
            _dir: dir,
        }
    }

    /// Sends one input's request.
    pub fn send(&self, data: &[u8]) -> Option<(String, Answer)> {
        let (&pick, body) = data.split_first()?;
        let (method, template, authed) = ROUTES[usize::from(pick) % ROUTES.len()];
        let content_type = match usize::from(pick) / ROUTES.len() % 3 {
            0 => Some("application/json"),
            1 => None,
            _ => Some("text/plain"),
        };
        let uri = template
            .replace("{vault}", &self.vault)
            .replace("{agent}", &self.agent)
            .replace("{policy}", &self.policy)
            .replace("{member}", &self.member)
            .replace("{secret}", SECRET);
        let req = request(
            method,
            &uri,
            authed.then_some(self.token.as_str()),
            content_type,
            body.to_vec(),
        );
        let answer = crate::runtime().block_on(send(&self.app, req));
        Some((format!("{method} {template}"), answer))
    }

    /// Checks one input.
    pub fn check(&self, data: &[u8]) {
        let Some((route, a)) = self.send(data) else {
            return;
        };
        assert!(
            !a.status.is_server_error(),
            "{route}: {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
        if a.status.is_client_error() {
            assert_eq!(
                a.content_type.as_deref(),
                Some("application/problem+json"),
                "{route}: {} without a problem body",
                a.status
            );
            let p = a.json();
            assert_eq!(
                p["status"].as_u64(),
                Some(u64::from(a.status.as_u16())),
                "{route}: problem {p}"
            );
            assert!(
                p["title"].is_string() && p["type"].is_string(),
                "{route}: problem {p}"
            );
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// The target.
pub fn run(data: &[u8]) {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(Harness::new).check(data);
}
