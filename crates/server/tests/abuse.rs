//! Abuse paths, in process through the real router with its protections on:
//! junk-bearer floods, who the client is behind proxies, and who may read
//! `/metrics`. Each test shows the refused side and the allowed side.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use strongroom_core::audit::SYSTEM_ORG;
use strongroom_engine::Engine;
use strongroom_server::client::TrustedProxies;
use strongroom_server::ratelimit::{AuthRateLimit, FailedAuthLimit};
use strongroom_server::routes::MetricsAccess;
use strongroom_server::{AppState, ServerOptions, router_with};
use strongroom_store::AuditQuery;
use tower::ServiceExt;

const PASSWORD: &str = "Correct-Horse-42!";

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

struct App {
    router: Router,
    engine: Arc<Engine>,
    _dir: tempfile::TempDir,
}

async fn app(opts: ServerOptions, with_metrics: bool) -> App {
    let (_, engine, dir) = support::app().await;
    let router = router_with(
        AppState {
            engine: engine.clone(),
            metrics: with_metrics
                .then(strongroom_server::install_metrics)
                .flatten(),
        },
        opts,
    );
    App {
        router,
        engine,
        _dir: dir,
    }
}

impl App {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        peer: IpAddr,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = match body {
            Some(v) => {
                b = b.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let mut req = b.body(body).expect("request builds");
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(peer, 40_000)));
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .expect("body reads");
        Resp {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn signup(&self, peer: IpAddr) -> String {
        let r = self
            .call(
                Method::POST,
                "/v1/auth/signup",
                peer,
                &[],
                Some(json!({"email": "owner@example.com", "password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["access_token"].as_str().expect("token").to_owned()
    }

    /// The system chain's `auth.failure` records.
    async fn system_failures(&self) -> Vec<strongroom_core::audit::ChainedEvent> {
        let (events, _) = self
            .engine
            .store()
            .audit_query(&AuditQuery {
                org_id: SYSTEM_ORG.to_string(),
                action: Some("auth.failure".into()),
                limit: 10_000,
                ..Default::default()
            })
            .await
            .expect("audit query");
        events
    }

    async fn system_events(&self) -> u64 {
        let (_, total) = self
            .engine
            .store()
            .audit_query(&AuditQuery {
                org_id: SYSTEM_ORG.to_string(),
                limit: 1,
                ..Default::default()
            })
            .await
            .expect("audit query");
        total
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal")
}

fn assert_problem_429(r: &Resp) {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.body["status"], 429);
    assert!(r.body["title"].is_string() && r.body["detail"].is_string());
    let wait: u64 = r
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(wait >= 1);
}

#[tokio::test]
async fn a_junk_bearer_flood_is_limited_and_audited_in_bounded_rows_with_every_failure_counted() {
    let budget = FailedAuthLimit {
        per_second: 1,
        burst: 20,
        ..Default::default()
    };
    let app = app(
        ServerOptions {
            failed_auth_limit: Some(budget),
            ..ServerOptions::unlimited()
        },
        false,
    )
    .await;
    let friend = ip("192.0.2.20");
    let token = app.signup(friend).await;
    let before = app.system_events().await;

    let flooder = ip("192.0.2.66");
    let (mut refused_401, mut limited_429) = (0u64, 0u64);
    for i in 0..500 {
        let junk = format!("Bearer junk.{i}.token");
        let path = if i % 2 == 0 {
            "/v1/vaults"
        } else {
            "/v1/agents"
        };
        let r = app
            .call(
                Method::GET,
                path,
                flooder,
                &[("authorization", &junk)],
                None,
            )
            .await;
        match r.status {
            StatusCode::UNAUTHORIZED => refused_401 += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_problem_429(&r);
                limited_429 += 1;
            }
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    // The budget (plus the one a second that refilled while the loop ran)
    // answered 401; the rest never reached authentication.
    assert!(
        (20..250).contains(&refused_401),
        "{refused_401} answered 401"
    );
    assert_eq!(refused_401 + limited_429, 500);

    // Meanwhile another client is served normally.
    let bearer = format!("Bearer {token}");
    let r = app
        .call(
            Method::GET,
            "/v1/vaults",
            friend,
            &[("authorization", &bearer)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // And the flooder stays refused even with a valid token (its budget is spent).
    let r = app
        .call(
            Method::GET,
            "/v1/vaults",
            flooder,
            &[("authorization", &bearer)],
            None,
        )
        .await;
    assert_problem_429(&r);

    // Nothing was written per request; the flush writes one record for the
    // flooder that counts every failure.
    assert_eq!(app.system_events().await, before, "no row per failure");
    app.engine.flush_auth_failures().await;
    let rows = app.system_failures().await;
    let flood: Vec<_> = rows
        .iter()
        .filter(|e| e.ip_address.as_deref() == Some("192.0.2.66"))
        .collect();
    assert_eq!(flood.len(), 1, "{rows:?}");
    assert_eq!(flood[0].details["count"], json!(refused_401));
    assert_eq!(flood[0].details["reason"], "invalid_credential");
    assert_eq!(flood[0].details["aggregated"], true);
    assert!(app.system_events().await - before <= 2);
    // No token text in the log.
    for e in &rows {
        assert!(!e.details.to_string().contains("junk."), "{e:?}");
    }
}

#[tokio::test]
async fn without_the_budget_every_junk_request_reaches_authentication() {
    // The allowed side of the limit: with it off, nothing answers 429, and
    // the aggregated record still counts every failure in one row.
    let app = app(ServerOptions::unlimited(), false).await;
    let flooder = ip("192.0.2.67");
    for i in 0..200 {
        let junk = format!("Bearer junk.{i}");
        let r = app
            .call(
                Method::GET,
                "/v1/vaults",
                flooder,
                &[("authorization", &junk)],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    app.engine.flush_auth_failures().await;
    let rows = app.system_failures().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].details["count"], 200);
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_untrusted_peers_and_honoured_from_trusted_ones() {
    let limit = AuthRateLimit {
        per_second: 1,
        burst: 3,
    };
    let app = app(
        ServerOptions {
            auth_limit: Some(limit),
            trusted_proxies: TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("cidr")]),
            ..ServerOptions::unlimited()
        },
        false,
    )
    .await;
    let login =
        |n: u32| json!({"email": format!("nobody{n}@example.com"), "password": "Wrong-Horse-42!"});
    // An untrusted peer can't spread its attempts over invented addresses.
    let untrusted = ip("192.0.2.9");
    let mut statuses = vec![];
    for n in 0..6 {
        let xff = format!("198.51.100.{n}");
        let r = app
            .call(
                Method::POST,
                "/v1/auth/token",
                untrusted,
                &[("x-forwarded-for", &xff)],
                Some(login(n)),
            )
            .await;
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses, vec![401, 401, 401, 429, 429, 429]);

    // Behind a trusted proxy, each forwarded client has its own limit: the
    // rightmost untrusted hop, whatever the client prepended.
    let proxy = ip("10.0.0.5");
    for n in 0..6 {
        let xff = format!("203.0.113.77, 198.51.100.{n}, 10.0.0.6");
        let r = app
            .call(
                Method::POST,
                "/v1/auth/token",
                proxy,
                &[("x-forwarded-for", &xff)],
                Some(login(n)),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "client {n}: {}", r.body);
    }
    // One forwarded client is limited by itself.
    let mut statuses = vec![];
    for n in 0..5 {
        let r = app
            .call(
                Method::POST,
                "/v1/auth/token",
                proxy,
                &[("x-forwarded-for", "198.51.100.200")],
                Some(login(n)),
            )
            .await;
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses, vec![401, 401, 401, 429, 429]);

    // The audit records name the forwarded client, not the proxy, and the
    // untrusted peer's claim is nowhere.
    app.engine.flush_auth_failures().await;
    let ips: Vec<String> = app
        .system_failures()
        .await
        .into_iter()
        .filter_map(|e| e.ip_address)
        .collect();
    assert!(ips.contains(&"198.51.100.200".to_owned()), "{ips:?}");
    assert!(ips.contains(&"192.0.2.9".to_owned()), "{ips:?}");
    assert!(!ips.contains(&"10.0.0.5".to_owned()), "{ips:?}");
    assert!(!ips.contains(&"203.0.113.77".to_owned()), "{ips:?}");
}

#[tokio::test]
async fn two_ipv6_addresses_in_one_64_share_a_limit_and_another_64_does_not() {
    let app = app(
        ServerOptions {
            auth_limit: Some(AuthRateLimit {
                per_second: 1,
                burst: 2,
            }),
            ..ServerOptions::unlimited()
        },
        false,
    )
    .await;
    let body = json!({"email": "nobody@example.com", "password": "Wrong-Horse-42!"});
    let mut statuses = vec![];
    for peer in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"] {
        let r = app
            .call(
                Method::POST,
                "/v1/auth/token",
                ip(peer),
                &[],
                Some(body.clone()),
            )
            .await;
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses, vec![401, 401, 429]);
    let r = app
        .call(
            Method::POST,
            "/v1/auth/token",
            ip("2001:db8:1:3::1"),
            &[],
            Some(body),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "another /64 has its own limit"
    );
}

#[tokio::test]
async fn the_client_address_reaches_the_policy_ip_allowlist_through_trusted_proxies_only() {
    let app = app(
        ServerOptions {
            trusted_proxies: TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("cidr")]),
            ..ServerOptions::unlimited()
        },
        false,
    )
    .await;
    let proxy = ip("10.0.0.5");
    let token = app.signup(proxy).await;
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let r = app
        .call(
            Method::POST,
            "/v1/vaults",
            proxy,
            &auth,
            Some(json!({"name": "v"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let vault = r.body["id"].as_str().expect("id").to_owned();
    let r = app
        .call(
            Method::PUT,
            &format!("/v1/vaults/{vault}/secrets/db"),
            proxy,
            &auth,
            Some(json!({"value": "v1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The owner is denied from 203.0.113.0/24 (a deny policy with an
    // ip_allowlist condition applies to requests from those addresses).
    let me = app
        .call(Method::GET, "/v1/auth/me", proxy, &auth, None)
        .await;
    let uid = me.body["id"].as_str().expect("id").to_owned();
    let r = app
        .call(
            Method::POST,
            &format!("/v1/vaults/{vault}/policies"),
            proxy,
            &auth,
            Some(json!({
                "principal_type": "user", "principal_id": uid, "secret_path_pattern": "**",
                "permissions": ["read"], "effect": "deny",
                "conditions": {"ip_allowlist": ["203.0.113.0/24"]}
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let read = |xff: &'static str, peer: IpAddr| {
        let app = &app;
        let vault = vault.clone();
        let bearer = bearer.clone();
        async move {
            app.call(
                Method::GET,
                &format!("/v1/vaults/{vault}/secrets/db"),
                peer,
                &[("authorization", bearer.as_str()), ("x-forwarded-for", xff)],
                None,
            )
            .await
            .status
        }
    };
    assert_eq!(read("198.51.100.7", proxy).await, StatusCode::OK);
    assert_eq!(read("203.0.113.7", proxy).await, StatusCode::FORBIDDEN);
    // An untrusted peer claiming another address is judged by its own.
    assert_eq!(
        read("198.51.100.7", ip("203.0.113.9")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(read("203.0.113.7", ip("192.0.2.1")).await, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_for_loopback_clients_by_default() {
    let app = app(
        ServerOptions {
            trusted_proxies: TrustedProxies::new(vec!["127.0.0.1/32".parse().expect("cidr")]),
            ..ServerOptions::unlimited()
        },
        true,
    )
    .await;
    let r = app
        .call(Method::GET, "/metrics", ip("127.0.0.1"), &[], None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .call(Method::GET, "/metrics", ip("::1"), &[], None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for (peer, xff) in [("192.0.2.1", ""), ("127.0.0.1", "203.0.113.5")] {
        let headers: Vec<(&str, &str)> = if xff.is_empty() {
            vec![]
        } else {
            vec![("x-forwarded-for", xff)]
        };
        let r = app
            .call(Method::GET, "/metrics", ip(peer), &headers, None)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{peer} via {xff:?}");
        assert_eq!(r.body["status"], 403);
    }
}

#[tokio::test]
async fn with_a_token_metrics_need_it_from_everyone() {
    let app = app(
        ServerOptions {
            metrics_access: MetricsAccess::token("s3cret-metrics-token"),
            ..ServerOptions::unlimited()
        },
        true,
    )
    .await;
    for (peer, auth) in [
        ("127.0.0.1", None),
        ("192.0.2.1", None),
        ("192.0.2.1", Some("Bearer wrong")),
        ("192.0.2.1", Some("Basic s3cret-metrics-token")),
    ] {
        let headers: Vec<(&str, &str)> =
            auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
        let r = app
            .call(Method::GET, "/metrics", ip(peer), &headers, None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{peer} {auth:?}");
        assert!(!r.body.to_string().contains("s3cret"));
    }
    let r = app
        .call(
            Method::GET,
            "/metrics",
            ip("192.0.2.1"),
            &[("authorization", "Bearer s3cret-metrics-token")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn the_openapi_document_lists_the_answers_of_the_protections() {
    let app = app(ServerOptions::unlimited(), false).await;
    let doc = app
        .call(Method::GET, "/openapi.json", ip("127.0.0.1"), &[], None)
        .await
        .body;
    let responses = |path: &str, method: &str| doc["paths"][path][method]["responses"].clone();
    for (path, method) in [
        ("/v1/vaults", "get"),
        ("/v1/vaults", "post"),
        ("/v1/auth/token", "post"),
        ("/v1/health", "get"),
    ] {
        let r = responses(path, method);
        assert!(r["429"].is_object(), "{path} {method}: {r}");
        assert!(r["429"]["headers"]["Retry-After"].is_object(), "{r}");
    }
    assert!(responses("/v1/vaults", "post")["408"].is_object());
    assert!(responses("/v1/vaults", "get")["408"].is_null());
    // A route that already documented 503 keeps its text and gains the new cause.
    let signup_503 = responses("/v1/auth/signup", "post")["503"]["description"].clone();
    let text = signup_503.as_str().unwrap_or_default();
    assert!(
        text.contains("database") && text.contains("busy"),
        "{signup_503}"
    );
    for path in ["/v1/auth/token", "/v1/auth/signup"] {
        assert!(
            responses(path, "post")["503"]["headers"]["Retry-After"].is_object(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn guessing_the_metrics_token_spends_the_failure_budget() {
    let app = app(
        ServerOptions {
            metrics_access: MetricsAccess::token("s3cret-metrics-token"),
            failed_auth_limit: Some(FailedAuthLimit {
                per_second: 1,
                burst: 5,
                ..Default::default()
            }),
            ..ServerOptions::unlimited()
        },
        true,
    )
    .await;
    let mut statuses = vec![];
    for i in 0..8 {
        let guess = format!("Bearer guess-{i}");
        let r = app
            .call(
                Method::GET,
                "/metrics",
                ip("192.0.2.1"),
                &[("authorization", &guess)],
                None,
            )
            .await;
        statuses.push(r.status.as_u16());
    }
    assert_eq!(&statuses[..5], &[401; 5]);
    assert_eq!(statuses[7], 429, "{statuses:?}");
    // Another scraper with the token is unaffected.
    let r = app
        .call(
            Method::GET,
            "/metrics",
            ip("192.0.2.2"),
            &[("authorization", "Bearer s3cret-metrics-token")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}
