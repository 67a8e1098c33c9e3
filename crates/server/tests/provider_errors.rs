//! A key provider's own error text (for Cloud KMS, full key resource names)
//! reaches the log, never a client: problem bodies and the unauthenticated
//! `/v1/health/hsm` carry fixed words only.

#[path = "support/flaky.rs"]
mod flaky;
mod support;

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use flaky::{BROKEN, UNAVAILABLE};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn send(
    app: &axum::Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, String) {
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
    let resp = app.clone().oneshot(b.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn provider_error_text_never_reaches_a_client() {
    let (kms, mode) = flaky::flaky();
    let (app, _engine, _dir) = support::app_with_provider(kms).await;
    let (st, body) = send(
        &app,
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(json!({"email": "o@example.com", "password": "Correct-Horse-42!"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = Some(token.as_str());
    let (st, body) = send(
        &app,
        Method::POST,
        "/v1/vaults",
        t,
        Some(json!({"name": "v"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let vault = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = format!("/v1/vaults/{vault}/secrets/db/pw");
    let (st, _) = send(
        &app,
        Method::PUT,
        &secret,
        t,
        Some(json!({"value": "s3cret"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    // Healthy: reads work and the health check says ok.
    let (st, body) = send(&app, Method::GET, &secret, t, None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, body) = send(&app, Method::GET, "/v1/health/hsm", None, None).await;
    assert_eq!(
        (st, body.contains("\"ok\"")),
        (StatusCode::OK, true),
        "{body}"
    );

    for (m, status, health) in [
        (
            UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (BROKEN, StatusCode::INTERNAL_SERVER_ERROR, StatusCode::OK),
    ] {
        mode.store(m, Ordering::SeqCst);
        for (method, uri, body) in [
            (Method::GET, secret.clone(), None),
            (Method::PUT, secret.clone(), Some(json!({"value": "next"}))),
            (
                Method::POST,
                "/v1/vaults".to_owned(),
                Some(json!({"name": "w"})),
            ),
        ] {
            let (st, text) = send(&app, method.clone(), &uri, t, body).await;
            assert_eq!(st, status, "{method} {uri}: {text}");
            assert!(
                !text.contains("projects/") && !text.contains("acme"),
                "{method} {uri}: {text}"
            );
        }
        let (st, text) = send(&app, Method::GET, "/v1/health/hsm", None, None).await;
        assert_eq!(st, health, "{text}");
        assert!(
            !text.contains("projects/") && !text.contains("acme"),
            "{text}"
        );
        let (_, text) = send(&app, Method::GET, "/v1/health", None, None).await;
        assert!(!text.contains("acme"), "{text}");
    }
}
