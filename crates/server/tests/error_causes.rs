//! Where the cause behind an error goes: a store's or a key provider's own
//! words reach the log, once, with the request id — never a problem body. And
//! every refusal, JSON-body rejections included, is the API's one error type
//! with the one problem+json shape.

#[path = "support/flaky.rs"]
mod flaky;
mod support;

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use strongroom_core::Dependency;
use strongroom_kms::KmsError;
use strongroom_kms::soft::SoftProvider;
use strongroom_server::extract::{ApiJson, OptionalJson};
use strongroom_server::problem::{ApiError, ErrorReport};
use strongroom_store::StoreError;
use strongroom_store::sqlite::SqliteStore;
use tower::ServiceExt;

/// Everything logged while the guard lives, on this thread (a `tokio::test`
/// runs the router on the test's thread).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Resp {
    status: StatusCode,
    content_type: String,
    request_id: String,
    body: String,
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Resp {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match body {
        Some(v) => {
            b = b.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_owned())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(b.body(body).unwrap()).await.unwrap();
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, content_type, request_id) = (
        resp.status(),
        header("content-type"),
        header("x-request-id"),
    );
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Resp {
        status,
        content_type,
        request_id,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Signs up and creates a vault; the token and the vault's secrets URL.
async fn owner_with_vault(app: &Router) -> (String, String) {
    let r = send(
        app,
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(r#"{"email": "o@example.com", "password": "Correct-Horse-42!"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let token = serde_json::from_str::<Value>(&r.body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = send(
        app,
        Method::POST,
        "/v1/vaults",
        Some(&token),
        Some(r#"{"name": "v"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let vault = serde_json::from_str::<Value>(&r.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (token, format!("/v1/vaults/{vault}/secrets/db/pw"))
}

/// The problem document's shape, and its `detail`.
fn problem_detail(r: &Resp, status: StatusCode) -> String {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.content_type.starts_with("application/problem+json"),
        "{}",
        r.content_type
    );
    let v: Value = serde_json::from_str(&r.body).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "{}", r.body);
    for k in ["type", "title", "status", "detail"] {
        assert!(keys.contains(&k), "{}", r.body);
    }
    assert_eq!(v["status"], json!(status.as_u16()));
    v["detail"].as_str().unwrap().to_owned()
}

/// The log lines that carry `cause`; each must name the request.
fn lines_with(logs: &str, cause: &str, request_id: &str) -> Vec<String> {
    assert!(!request_id.is_empty());
    let lines: Vec<String> = logs
        .lines()
        .filter(|l| l.contains(cause))
        .map(str::to_owned)
        .collect();
    for l in &lines {
        assert!(l.contains(request_id) && l.contains("ERROR"), "{l}");
    }
    lines
}

#[tokio::test]
async fn a_provider_failure_is_logged_with_the_request_id_and_never_rendered() {
    let (kms, mode) = flaky::flaky();
    let (app, _engine, _dir) = support::app_with_provider(kms).await;
    let (token, secret) = owner_with_vault(&app).await;

    let logs = Logs::default();
    let _guard = logs.capture();
    mode.store(flaky::UNAVAILABLE, Ordering::SeqCst);
    let r = send(
        &app,
        Method::PUT,
        &secret,
        Some(&token),
        Some(r#"{"value": "s3cret"}"#),
    )
    .await;
    let detail = problem_detail(&r, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(detail, "the key provider is unavailable");
    assert!(
        !r.body.contains("acme") && !r.body.contains("deadline"),
        "{}",
        r.body
    );

    let logs = logs.text();
    let lines = lines_with(&logs, flaky::RESOURCE, &r.request_id);
    assert_eq!(lines.len(), 1, "logged once with the request id:\n{logs}");
    let line = &lines[0];
    assert!(line.contains(flaky::RESOURCE), "{line}");
    assert!(line.contains("deadline exceeded"), "{line}");
    assert!(line.contains("key_provider"), "{line}");
    assert!(line.contains("the key provider is unavailable"), "{line}");
}

#[tokio::test]
async fn a_database_failure_is_logged_with_the_request_id_and_never_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("db.sqlite"))
            .await
            .unwrap(),
    );
    let (app, _admin) =
        support::app_over(store.clone(), Arc::new(SoftProvider::memory().unwrap())).await;
    let (token, secret) = owner_with_vault(&app).await;

    let logs = Logs::default();
    let _guard = logs.capture();
    store.close().await;
    let r = send(
        &app,
        Method::PUT,
        &secret,
        Some(&token),
        Some(r#"{"value": "s3cret"}"#),
    )
    .await;
    let detail = problem_detail(&r, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(detail, "the database is unavailable");
    // The store's own words ("database unavailable: the store is closed").
    assert!(!r.body.contains("database unavailable:"), "{}", r.body);
    assert!(!r.body.contains("closed"), "{}", r.body);

    let logs = logs.text();
    let lines = lines_with(
        &logs,
        "database unavailable: the store is closed",
        &r.request_id,
    );
    assert_eq!(lines.len(), 1, "logged once with the request id:\n{logs}");
    assert!(
        lines[0].contains("dependency=\"database\"") || lines[0].contains("dependency=database"),
        "{}",
        lines[0]
    );
}

#[test]
fn a_store_error_stays_the_source_of_the_engine_error() {
    let e = strongroom_core::Error::from(StoreError::Unavailable(
        "disk I/O error at /var/lib/strongroom/db.sqlite".into(),
    ));
    assert_eq!(e.to_string(), "the database is unavailable");
    let source = std::error::Error::source(&e).expect("a cause");
    let store = source
        .downcast_ref::<StoreError>()
        .expect("the StoreError itself");
    assert!(store.to_string().contains("/var/lib/strongroom"));

    let e = strongroom_core::Error::from(KmsError::Internal(
        format!("{}: denied", flaky::RESOURCE).into(),
    ));
    assert_eq!(e.to_string(), "internal error");
    let source = std::error::Error::source(&e).expect("a cause");
    assert!(source.downcast_ref::<KmsError>().is_some());

    let e = strongroom_core::Error::from(KmsError::Unavailable(flaky::RESOURCE.into()));
    let strongroom_core::Error::Unavailable(u) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(u.dependency(), Dependency::KeyProvider);

    // The report the log middleware reads carries the chain; the body doesn't.
    let resp = ApiError::from(e).into_response();
    let report = resp.extensions().get::<ErrorReport>().expect("a report");
    assert!(report.causes().to_string().contains(flaky::RESOURCE));
}

/// The JSON extractors reject with the one error type, at compile time.
fn rejects_with_api_error<T: FromRequest<(), Rejection = ApiError>>() {}

#[tokio::test]
async fn json_rejections_are_the_one_problem_type_and_log_nothing() {
    rejects_with_api_error::<ApiJson<Value>>();
    rejects_with_api_error::<OptionalJson<Value>>();

    let (app, _engine, _dir) = support::app().await;
    let (token, secret) = owner_with_vault(&app).await;
    let logs = Logs::default();
    let _guard = logs.capture();
    // A malformed body that quotes a would-be secret.
    let r = send(
        &app,
        Method::PUT,
        &secret,
        Some(&token),
        Some(r#"{"value": ["hunter2-secret"]}"#),
    )
    .await;
    let detail = problem_detail(&r, StatusCode::BAD_REQUEST);
    assert!(!detail.contains("hunter2"), "{detail}");
    // A wrong media type, and an unknown route: the same shape.
    let resp = app
        .clone()
        .oneshot(
            Request::builder()
                .method(Method::PUT)
                .uri(&secret)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("hunter2-secret"))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let r415 = Resp {
        status,
        content_type: ct,
        request_id: String::new(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    problem_detail(&r415, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = send(&app, Method::GET, "/v1/no-such-thing", None, None).await;
    problem_detail(&r, StatusCode::NOT_FOUND);

    // A client's mistake has no cause to log, and the value never reaches the log.
    let text = logs.text();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("ERROR"), "{text}");
}

/// A change the database's schema refuses is a `409` with a fixed message;
/// SQLite's words ride in the report for the log, never in the body.
#[test]
fn a_constraint_refusal_is_a_conflict_with_its_cause_in_the_report() {
    let e = strongroom_core::Error::from(StoreError::Constraint(
        "FOREIGN KEY constraint failed at /var/lib/strongroom/db.sqlite".into(),
    ));
    assert_eq!(
        e.to_string(),
        "the change conflicts with the current state of related data"
    );
    let resp = ApiError::from(e).into_response();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let report = resp.extensions().get::<ErrorReport>().expect("a report");
    assert!(
        report.causes().to_string().contains("FOREIGN KEY"),
        "{}",
        report.causes()
    );
}

/// A change the database's schema refuses answers `409` with the fixed
/// message; SQLite's words are logged once, at `warn`, with the request id
/// (by the log middleware, not by the store).
#[tokio::test]
async fn a_constraint_refusal_is_logged_with_the_request_id_and_never_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let (app, _admin) =
        support::app_over(store.clone(), Arc::new(SoftProvider::memory().unwrap())).await;
    let (token, secret) = owner_with_vault(&app).await;
    // From now on every audit append breaks a CHECK rule of the schema.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE guard (x INTEGER NOT NULL CHECK (x > 0)); \
             CREATE TRIGGER refuse BEFORE INSERT ON audit_events \
             BEGIN INSERT INTO guard VALUES (0); END",
        )
        .unwrap();

    let logs = Logs::default();
    let _guard = logs.capture();
    let r = send(
        &app,
        Method::PUT,
        &secret,
        Some(&token),
        Some(r#"{"value": "s3cret"}"#),
    )
    .await;
    let detail = problem_detail(&r, StatusCode::CONFLICT);
    assert_eq!(
        detail,
        "the change conflicts with the current state of related data"
    );
    assert!(!r.body.contains("CHECK"), "{}", r.body);

    let logs = logs.text();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("CHECK constraint failed"))
        .collect();
    assert_eq!(lines.len(), 1, "logged once:\n{logs}");
    assert!(lines[0].contains(&r.request_id), "{}", lines[0]);
    assert!(lines[0].contains("WARN"), "{}", lines[0]);
    assert!(!logs.contains("s3cret"), "{logs}");
}
