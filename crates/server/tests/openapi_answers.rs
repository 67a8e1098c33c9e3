//! `/openapi.json` documents what the server actually answers — the
//! disagreements schemathesis found (crates/cli/tests/schema_conformance.rs),
//! each pinned here in-process:
//!
//! - every error answer is `application/problem+json` (the document said
//!   `application/json`, or gave no body);
//! - the answers of the layers around a handler are listed on every operation
//!   they reach: `401` (with `WWW-Authenticate`) on every secured operation,
//!   `400` wherever a parameter or a body is parsed, `413`/`415` wherever a
//!   body is read, `503` wherever the database is reached;
//! - ids in paths are UUIDs, and a real call with a malformed id, without a
//!   token, or with an id of nothing answers a documented status;
//! - integers take the range the server takes (a `u32` is not `int32`);
//! - a body the handler may go without is optional, and never `null`.

mod support;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_owned())
        }
        None => Body::empty(),
    };
    let resp = app
        .clone()
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("router answers");
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), 1 << 22).await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn document(app: &axum::Router) -> Value {
    let (status, doc) = call(app, Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    doc
}

/// `(METHOD, path, operation)` for every documented operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = vec![];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    out
}

fn documented(op: &Value, status: StatusCode) -> bool {
    op["responses"].get(status.as_str()).is_some()
}

#[tokio::test]
async fn every_error_answer_is_a_problem_document() {
    let (app, _admin, _dir) = support::app().await;
    let doc = document(&app).await;
    for (method, path, op) in operations(&doc) {
        for (status, resp) in op["responses"].as_object().expect("responses") {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            if method == "GET"
                && (path == "/v1/health/hsm" || path == "/v1/health")
                && status == "503"
            {
                // The health checks answer their own JSON document, as documented.
                assert!(resp["content"]["application/json"].is_object());
                continue;
            }
            let content = resp["content"].as_object().unwrap_or_else(|| {
                panic!("{method} {path} {status} documents no body; the server sends a problem")
            });
            assert_eq!(
                content.keys().collect::<Vec<_>>(),
                ["application/problem+json"],
                "{method} {path} {status}"
            );
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{method} {path} {status}"
            );
        }
    }
}

#[tokio::test]
async fn the_layers_answers_are_documented_wherever_they_reach() {
    let (app, _admin, _dir) = support::app().await;
    let doc = document(&app).await;
    for (method, path, op) in operations(&doc) {
        let name = format!("{method} {path}");
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        let params = op["parameters"].as_array().is_some_and(|p| !p.is_empty());
        let body = op.get("requestBody").is_some();
        assert!(documented(&op, StatusCode::TOO_MANY_REQUESTS), "{name}");
        if secured {
            assert!(documented(&op, StatusCode::UNAUTHORIZED), "{name}: 401");
            assert!(
                op["responses"]["401"]["headers"]["WWW-Authenticate"].is_object(),
                "{name}: a 401 carries WWW-Authenticate"
            );
            assert!(
                documented(&op, StatusCode::SERVICE_UNAVAILABLE),
                "{name}: 503"
            );
        }
        if params || body {
            assert!(documented(&op, StatusCode::BAD_REQUEST), "{name}: 400");
        }
        if body {
            for s in [
                StatusCode::REQUEST_TIMEOUT,
                StatusCode::PAYLOAD_TOO_LARGE,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ] {
                assert!(documented(&op, s), "{name}: {s}");
            }
        }
    }
}

/// A concrete URI for `path`: ids replaced by `id`, a two-segment secret
/// path, version 1.
fn concrete(path: &str, id: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{path}" => "app/db",
            "{version}" => "1",
            s if s.starts_with('{') => id,
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The answers schemathesis first found undocumented, asked of every
/// operation: without a token, with a malformed id, with the id of nothing.
#[tokio::test]
async fn real_answers_to_bad_requests_are_documented() {
    let (app, _admin, _dir) = support::app().await;
    let (status, signed_up) = call(
        &app,
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(r#"{"email":"owner@example.com","password":"Correct-Horse-42!"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = signed_up["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let doc = document(&app).await;
    let nothing = "0190a5c4-7f3e-7a2b-9c1d-2e3f4a5b6c7d";
    for (method, path, op) in operations(&doc) {
        if path == "/v1/auth/token" && method == "DELETE" {
            continue; // would revoke the token the rest of the loop uses
        }
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let body = op.get("requestBody").map(|_| "{}");
        let mut tries = vec![
            ("no token", concrete(&path, nothing), None),
            (
                "the id of nothing",
                concrete(&path, nothing),
                Some(token.as_str()),
            ),
        ];
        if path.contains("_id}") {
            tries.push(("a malformed id", concrete(&path, "0"), Some(token.as_str())));
        }
        for (what, uri, token) in tries {
            let (status, _) = call(&app, m.clone(), &uri, token, body).await;
            assert!(
                documented(&op, status),
                "{method} {path} with {what} answered {status}, which /openapi.json does not list"
            );
        }
    }
}

#[tokio::test]
async fn ids_in_paths_are_documented_as_uuids() {
    let (app, _admin, _dir) = support::app().await;
    let doc = document(&app).await;
    let mut seen = 0;
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap_or("");
            if p["in"] == "path" && name.ends_with("_id") {
                assert_eq!(p["schema"]["format"], "uuid", "{method} {path} {name}");
                seen += 1;
            }
        }
    }
    assert!(seen > 20, "{seen}");
}

/// A `u32` the server takes whole was documented as `int32` (at most
/// 2^31 - 1), and a version as possibly 0.
#[tokio::test]
async fn integers_take_the_range_the_server_takes() {
    let (app, _admin, _dir) = support::app().await;
    let doc = document(&app).await;
    let param = |path: &str, method: &str, name: &str| -> Value {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no {name}"))["schema"]
            .clone()
    };
    for name in ["limit", "offset"] {
        let s = param("/v1/audit/events", "get", name);
        assert_eq!(s["minimum"], 0, "{name}");
        assert_eq!(s["maximum"], json!(u32::MAX), "{name}");
        assert_ne!(s["format"], "int32", "{name}");
    }
    for path in [
        "/v1/vaults/{vault_id}/secret-version/{path}/{version}",
        "/v1/vaults/{vault_id}/secret-version-disable/{path}/{version}",
    ] {
        let method = if path.contains("disable") {
            "post"
        } else {
            "get"
        };
        let s = param(path, method, "version");
        assert_eq!(s["minimum"], 1, "{path}");
        assert_eq!(s["maximum"], json!(u32::MAX), "{path}");
    }
    let rotate = &doc["components"]["schemas"]["RotateRequest"]["properties"]["length"];
    assert_eq!(
        (&rotate["minimum"], &rotate["maximum"]),
        (&json!(8), &json!(1024))
    );

    // And the server takes exactly that range.
    let (status, signed_up) = call(
        &app,
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(r#"{"email":"owner@example.com","password":"Correct-Horse-42!"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = signed_up["access_token"].as_str();
    let events = |q: &str| format!("/v1/audit/events?{q}");
    for (q, want) in [
        ("offset=2147483648", StatusCode::OK),
        ("offset=4294967295&limit=4294967295", StatusCode::OK),
        ("offset=4294967296", StatusCode::BAD_REQUEST),
        ("limit=-1", StatusCode::BAD_REQUEST),
    ] {
        let (status, _) = call(&app, Method::GET, &events(q), token, None).await;
        assert_eq!(status, want, "{q}");
    }
}

/// `secret-rotate` and `kek/rewrap` go without a body; the document said it
/// was required (so a call without one was "invalid"), and then, as
/// `Option<T>`, that `null` was a body.
#[tokio::test]
async fn a_body_the_handler_may_go_without_is_optional_and_never_null() {
    let (app, _admin, _dir) = support::app().await;
    let doc = document(&app).await;
    for (path, schema) in [
        (
            "/v1/vaults/{vault_id}/secret-rotate/{path}",
            "#/components/schemas/RotateRequest",
        ),
        (
            "/v1/vaults/{vault_id}/kek/rewrap",
            "#/components/schemas/RewrapRequest",
        ),
    ] {
        let body = &doc["paths"][path]["post"]["requestBody"];
        assert_ne!(body["required"], true, "{path}");
        assert_eq!(
            body["content"]["application/json"]["schema"],
            json!({"$ref": schema}),
            "{path}"
        );
    }

    let (_, signed_up) = call(
        &app,
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(r#"{"email":"owner@example.com","password":"Correct-Horse-42!"}"#),
    )
    .await;
    let token = signed_up["access_token"].as_str();
    let (status, vault) = call(
        &app,
        Method::POST,
        "/v1/vaults",
        token,
        Some(r#"{"name":"v"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = vault["id"].as_str().expect("id");
    let rotate = format!("/v1/vaults/{id}/secret-rotate/app/key");
    let rewrap = format!("/v1/vaults/{id}/kek/rewrap");
    for (uri, ok) in [(&rotate, StatusCode::CREATED), (&rewrap, StatusCode::OK)] {
        let (status, _) = call(&app, Method::POST, uri, token, None).await;
        assert_eq!(status, ok, "{uri} without a body");
        let (status, _) = call(&app, Method::POST, uri, token, Some("null")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} with a null body");
    }
}

/// `rotation_policy` is documented as an object (1claw's shape) but any JSON
/// value was taken; `metadata` and `rotation_policy` may be `null` (absent),
/// which the document did not say.
#[tokio::test]
async fn a_secrets_rotation_policy_is_an_object_or_nothing() {
    let (app, _admin, _dir) = support::app().await;
    let doc = document(&app).await;
    let props = &doc["components"]["schemas"]["PutSecretRequest"]["properties"];
    for field in ["metadata", "rotation_policy"] {
        assert_eq!(
            props[field]["type"],
            json!(["object", "null"]),
            "{field}: {}",
            props[field]
        );
    }
    let (_, signed_up) = call(
        &app,
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(r#"{"email":"owner@example.com","password":"Correct-Horse-42!"}"#),
    )
    .await;
    let token = signed_up["access_token"].as_str();
    let (_, vault) = call(
        &app,
        Method::POST,
        "/v1/vaults",
        token,
        Some(r#"{"name":"v"}"#),
    )
    .await;
    let uri = format!(
        "/v1/vaults/{}/secrets/app/key",
        vault["id"].as_str().expect("id")
    );
    for (body, want) in [
        (
            r#"{"value":"x","rotation_policy":"weekly"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"value":"x","rotation_policy":[1]}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"value":"x","rotation_policy":{"days":7}}"#,
            StatusCode::CREATED,
        ),
        (
            r#"{"value":"x","rotation_policy":null,"metadata":null}"#,
            StatusCode::CREATED,
        ),
    ] {
        let (status, problem) = call(&app, Method::PUT, &uri, token, Some(body)).await;
        assert_eq!(status, want, "{body}: {problem}");
    }
}

/// The links the stateful phase follows name documented operations and
/// parameters those operations take, so none is silently dropped.
#[tokio::test]
async fn every_link_names_a_documented_operation_and_its_parameters() {
    let (app, _admin, _dir) = support::app().await;
    let doc = document(&app).await;
    let ops: std::collections::BTreeMap<String, Value> = operations(&doc)
        .into_iter()
        .filter_map(|(_, _, op)| Some((op["operationId"].as_str()?.to_owned(), op)))
        .collect();
    let mut links = 0;
    for (method, path, op) in operations(&doc) {
        for (status, resp) in op["responses"].as_object().expect("responses") {
            for (name, link) in resp["links"].as_object().into_iter().flatten() {
                links += 1;
                let target = link["operationId"].as_str().unwrap_or("");
                let target_op = ops.get(target).unwrap_or_else(|| {
                    panic!("{method} {path} {status} link {name}: no operation {target}")
                });
                let takes: Vec<&str> = target_op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                for p in link["parameters"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    assert!(takes.contains(&p.as_str()), "{name}: {target} takes no {p}");
                }
                if link.get("requestBody").is_some() {
                    assert!(
                        target_op.get("requestBody").is_some(),
                        "{name}: {target} takes no body"
                    );
                }
            }
        }
    }
    assert!(links >= 20, "{links} links");
}
