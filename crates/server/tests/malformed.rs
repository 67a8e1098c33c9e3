//! Malformed input of every kind against the real router, in process.
//!
//! Each case asserts the exact status and an RFC 7807 body (`type`, `title`,
//! `status`, `detail`, served as `application/problem+json`), that no response
//! echoes a distinctive value we sent, and at the end that the server still
//! serves and the stored secret still reads back.

mod support;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine as _;
use serde_json::{Value, json};
use strongroom_engine::Admin;
use strongroom_engine::tokens::Claims;
use tower::ServiceExt;

const B64URL: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// A value that must never come back in any response body.
const CANARY: &str = "CANARY-7f3a-hunter2";
const SECRET_VALUE: &str = "s3cret-value-for-a-b";
const PASSWORD: &str = "Correct-Horse-42!";
const UNKNOWN_VAULT: &str = "0190f5d2-7a1c-7cc4-9b2e-5a1d3c4e5f60";

struct Harness {
    app: Router,
    engine: Arc<Admin>,
    token: String,
    vault: String,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

fn request(
    method: Method,
    uri: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.body(body.into()).expect("request builds")
}

impl Harness {
    async fn new() -> Self {
        let (app, engine, dir) = support::app().await;
        let mut h = Harness {
            app,
            engine,
            token: String::new(),
            vault: String::new(),
            _dir: dir,
        };

        let r = h
            .send(request(
                Method::POST,
                "/v1/auth/signup",
                None,
                Some("application/json"),
                json!({"email": "owner@example.com", "password": PASSWORD}).to_string(),
            ))
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "signup: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        h.token = r.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();

        let r = h
            .send_json(
                Method::POST,
                "/v1/vaults",
                json!({"name": "malformed-tests"}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "create vault: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        h.vault = r.json()["id"].as_str().expect("vault id").to_owned();

        let r = h
            .send_json(
                Method::PUT,
                &h.secret_uri("a-b"),
                json!({"value": SECRET_VALUE}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "put secret: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        h
    }

    async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self
            .app
            .clone()
            .oneshot(req)
            .await
            .expect("infallible service");
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .expect("body reads");
        let body_text = String::from_utf8_lossy(&body);
        assert!(
            !body_text.contains(CANARY),
            "a response echoed the canary: {body_text}"
        );
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// An authenticated JSON request.
    async fn send_json(&self, method: Method, uri: &str, body: Value) -> Resp {
        self.send(request(
            method,
            uri,
            Some(&self.token),
            Some("application/json"),
            body.to_string(),
        ))
        .await
    }

    /// An authenticated request with a raw body.
    async fn send_raw(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Resp {
        self.send(request(method, uri, Some(&self.token), content_type, body))
            .await
    }

    async fn get(&self, uri: &str) -> Resp {
        self.send(request(
            Method::GET,
            uri,
            Some(&self.token),
            None,
            Body::empty(),
        ))
        .await
    }

    fn secret_uri(&self, raw_path: &str) -> String {
        format!("/v1/vaults/{}/secrets/{raw_path}", self.vault)
    }

    fn version_uri(&self, raw_path: &str, n: &str) -> String {
        format!("/v1/vaults/{}/secret-version/{raw_path}/{n}", self.vault)
    }
}

/// Asserts the status and the problem+json shape; returns the detail.
#[track_caller]
fn assert_problem(r: &Resp, status: StatusCode, what: &str) -> String {
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, status, "{what}: unexpected status; body: {text}");
    let ct = r
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    assert_eq!(
        ct,
        Some("application/problem+json"),
        "{what}: content-type; body: {text}"
    );
    let v: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {text}"));
    for field in ["type", "title", "detail"] {
        assert!(
            v[field].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: `{field}` missing or empty: {text}"
        );
    }
    assert_eq!(
        v["status"].as_u64(),
        Some(u64::from(status.as_u16())),
        "{what}: `status` field: {text}"
    );
    v["detail"].as_str().unwrap().to_owned()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims of a real token, for forging variants of it.
fn claims_of(token: &str) -> Claims {
    let payload = token.split('.').nth(1).expect("three segments");
    serde_json::from_slice(&B64URL.decode(payload).expect("base64url payload")).expect("claims")
}

/// A token over `claims`, signed by the server's own key inside the provider.
async fn sign_with_server_key(engine: &Admin, claims: &Claims) -> String {
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": engine.tokens().public_key().kid});
    let mut input = B64URL.encode(header.to_string());
    input.push('.');
    input.push_str(&B64URL.encode(serde_json::to_vec(claims).unwrap()));
    let sig = engine
        .kms()
        .sign(input.as_bytes())
        .await
        .expect("provider signs");
    input.push('.');
    input.push_str(&B64URL.encode(sig));
    input
}

#[tokio::test]
async fn malformed_input_gets_problem_json_and_the_server_survives() {
    let h = Harness::new().await;
    let put_a_b = h.secret_uri("a-b");

    // ---- Bodies: not JSON -------------------------------------------------
    let bad_json: [&[u8]; 4] = [
        b"{\"value\": \"x\"",
        b"not json at all",
        b"{\"value\": }",
        b"",
    ];
    for body in bad_json {
        for (method, uri) in [
            (Method::PUT, put_a_b.as_str()),
            (Method::POST, "/v1/vaults"),
            (Method::POST, "/v1/auth/token"),
        ] {
            let r = h
                .send_raw(method.clone(), uri, Some("application/json"), body.to_vec())
                .await;
            assert_problem(
                &r,
                StatusCode::BAD_REQUEST,
                &format!(
                    "bad JSON {:?} on {method} {uri}",
                    String::from_utf8_lossy(body)
                ),
            );
        }
    }
    // A canary inside a syntactically broken body is not echoed either.
    let r = h
        .send_raw(
            Method::PUT,
            &put_a_b,
            Some("application/json"),
            format!("{{\"value\": \"{CANARY}\" \"x\"}}"),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "broken JSON with a canary");

    // ---- Bodies: JSON of the wrong types (the canary must not be echoed) -----
    let wrong_types: Vec<(Method, &str, Value)> = vec![
        (Method::PUT, &put_a_b, json!({"value": 5})),
        (Method::PUT, &put_a_b, json!({"value": [CANARY]})),
        (Method::PUT, &put_a_b, json!({"value": {CANARY: CANARY}})),
        (
            Method::PUT,
            &put_a_b,
            json!({"value": "x", "max_access_count": CANARY}),
        ),
        (
            Method::PUT,
            &put_a_b,
            json!({"value": "x", "type": [CANARY]}),
        ),
        (
            Method::PUT,
            &put_a_b,
            json!({"value": "x", "expires_at": CANARY}),
        ),
        (Method::PUT, &put_a_b, json!(CANARY)),
        (Method::POST, "/v1/vaults", json!({"name": ["x"]})),
        (Method::POST, "/v1/vaults", json!({"name": [CANARY]})),
        (Method::POST, "/v1/vaults", json!({"name": 5})),
        (
            Method::POST,
            "/v1/vaults",
            json!({"name": "v", "description": 7}),
        ),
        (Method::POST, "/v1/vaults", json!(CANARY)),
        (
            Method::POST,
            "/v1/auth/token",
            json!({"email": [CANARY], "password": PASSWORD}),
        ),
        (
            Method::POST,
            "/v1/auth/token",
            json!({"email": "owner@example.com", "password": 12345}),
        ),
        (
            Method::POST,
            "/v1/auth/token",
            json!({"email": "owner@example.com", "password": {CANARY: true}}),
        ),
    ];
    for (method, uri, body) in wrong_types {
        let r = h.send_json(method.clone(), uri, body.clone()).await;
        assert_problem(
            &r,
            StatusCode::BAD_REQUEST,
            &format!("wrong types {body} on {method} {uri}"),
        );
    }
    // The wrongly-typed field is named (not its value).
    let r = h
        .send_json(
            Method::PUT,
            &put_a_b,
            json!({"value": "x", "max_access_count": CANARY}),
        )
        .await;
    let detail = assert_problem(&r, StatusCode::BAD_REQUEST, "mistyped max_access_count");
    assert!(
        detail.contains("max_access_count"),
        "detail should name the field: {detail}"
    );

    // ---- Bodies: missing required fields --------------------------------------
    let missing: Vec<(Method, &str, Value, &str)> = vec![
        (Method::PUT, &put_a_b, json!({}), "value"),
        (Method::PUT, &put_a_b, json!({"type": "generic"}), "value"),
        (
            Method::POST,
            "/v1/vaults",
            json!({"description": "d"}),
            "name",
        ),
        (
            Method::POST,
            "/v1/auth/token",
            json!({"email": "owner@example.com"}),
            "password",
        ),
        (
            Method::POST,
            "/v1/auth/token",
            json!({"password": PASSWORD}),
            "email",
        ),
    ];
    for (method, uri, body, field) in missing {
        let r = h.send_json(method.clone(), uri, body.clone()).await;
        let detail = assert_problem(
            &r,
            StatusCode::BAD_REQUEST,
            &format!("missing field in {body} on {method} {uri}"),
        );
        assert!(
            detail.contains(field),
            "detail should name `{field}`: {detail}"
        );
    }

    // ---- Bodies: size, media type, encoding --------------------------------
    let big = format!("{{\"value\": \"{}\"}}", "a".repeat(6 * 1024 * 1024));
    let big_len = big.len();
    let r = h
        .send(
            Request::builder()
                .method(Method::PUT)
                .uri(&put_a_b)
                .header(header::AUTHORIZATION, format!("Bearer {}", h.token))
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, big_len)
                .body(Body::from(big.clone()))
                .unwrap(),
        )
        .await;
    assert_problem(
        &r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "6 MB body with content-length",
    );
    // Without a content-length header: the limit still applies while reading.
    let r = h
        .send_raw(Method::PUT, &put_a_b, Some("application/json"), big)
        .await;
    assert_problem(
        &r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "6 MB body without content-length",
    );

    for ct in [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
    ] {
        let r = h
            .send_raw(
                Method::PUT,
                &put_a_b,
                Some(ct),
                json!({"value": "x"}).to_string(),
            )
            .await;
        assert_problem(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("content-type {ct} on PUT secret"),
        );
        let r = h
            .send_raw(
                Method::POST,
                "/v1/vaults",
                Some(ct),
                json!({"name": "x"}).to_string(),
            )
            .await;
        assert_problem(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("content-type {ct} on POST vaults"),
        );
    }

    let r = h
        .send_raw(
            Method::PUT,
            &put_a_b,
            Some("application/json"),
            b"{\"value\": \"ab\xff\xfecd\"}".to_vec(),
        )
        .await;
    assert_problem(
        &r,
        StatusCode::BAD_REQUEST,
        "invalid UTF-8 inside a JSON string",
    );
    let r = h
        .send_raw(
            Method::POST,
            "/v1/vaults",
            Some("application/json"),
            b"{\"name\": \"\xc3\x28\"}".to_vec(),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid UTF-8 in vault name");

    // ---- Paths ------------------------------------------------------------------
    let ten_thousand = vec!["a"; 10_000].join("/");
    let six_hundred = "a".repeat(600);
    let bad_paths: Vec<&str> = vec![
        "..",
        "a/../b",
        "%2e%2e",
        "a/%2e%2e/b",
        "%2E%2E/a",
        "a%2Fb",
        "a%2fb",
        "a//b",
        "a/",
        "a.b",
        "%ff",
        "a/%ff",
        "a%00b",
        "a/%",
        "-a",
        &ten_thousand,
        &six_hundred,
    ];
    for p in &bad_paths {
        let short = &p[..p.len().min(40)];
        let r = h.get(&h.secret_uri(p)).await;
        assert_problem(
            &r,
            StatusCode::BAD_REQUEST,
            &format!("GET secret path {short:?}"),
        );
        let r = h
            .send_json(Method::PUT, &h.secret_uri(p), json!({"value": "x"}))
            .await;
        assert_problem(
            &r,
            StatusCode::BAD_REQUEST,
            &format!("PUT secret path {short:?}"),
        );
        let r = h
            .get(&format!("/v1/vaults/{}/secret-versions/{p}", h.vault))
            .await;
        assert_problem(
            &r,
            StatusCode::BAD_REQUEST,
            &format!("GET versions path {short:?}"),
        );
        let r = h.get(&h.version_uri(p, "1")).await;
        assert_problem(
            &r,
            StatusCode::BAD_REQUEST,
            &format!("GET version 1 of path {short:?}"),
        );
    }
    // A valid percent-encoded segment names the same secret.
    for raw in ["a%2Db", "a%2db", "%61-b", "a-b"] {
        let r = h.get(&h.secret_uri(raw)).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "GET {raw}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        let v = r.json();
        assert_eq!(v["value"], SECRET_VALUE, "GET {raw}");
        assert_eq!(v["path"], "a-b", "GET {raw}");
    }

    // ---- Versions -----------------------------------------------------------------
    for n in [
        "-1",
        "0",
        "abc",
        "99999999999999999999",
        "4294967296",
        "1.0",
        "+1",
        "0x1",
        "%31",
        "",
    ] {
        let r = h.get(&h.version_uri("a-b", n)).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, &format!("version {n:?}"));
    }
    let r = h.get(&h.version_uri("a-b", "4294967295")).await;
    assert_problem(
        &r,
        StatusCode::NOT_FOUND,
        "version u32::MAX of an existing path",
    );
    let r = h.get(&h.version_uri("a-b", "1")).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "version 1: {:?}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["value"], SECRET_VALUE);

    // ---- Vault ids --------------------------------------------------------------------
    for bad in [
        "not-a-uuid",
        "0190f5d2-7a1c-7cc4-9b2e",
        "%ff",
        "..",
        "0190f5d2-7a1c-7cc4-9b2e-5a1d3c4e5f60x",
    ] {
        let r = h.get(&format!("/v1/vaults/{bad}")).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, &format!("GET vault {bad:?}"));
        let r = h.get(&format!("/v1/vaults/{bad}/secrets/a-b")).await;
        assert_problem(
            &r,
            StatusCode::BAD_REQUEST,
            &format!("GET secret in vault {bad:?}"),
        );
        let r = h
            .send_json(
                Method::PUT,
                &format!("/v1/vaults/{bad}/secrets/a-b"),
                json!({"value": "x"}),
            )
            .await;
        assert_problem(
            &r,
            StatusCode::BAD_REQUEST,
            &format!("PUT secret in vault {bad:?}"),
        );
    }
    let r = h.get(&format!("/v1/vaults/{UNKNOWN_VAULT}")).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "GET unknown vault");
    let r = h
        .get(&format!("/v1/vaults/{UNKNOWN_VAULT}/secrets/a-b"))
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "GET secret in unknown vault");
    let r = h
        .send_json(
            Method::PUT,
            &format!("/v1/vaults/{UNKNOWN_VAULT}/secrets/a-b"),
            json!({"value": "x"}),
        )
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "PUT secret in unknown vault");

    // ---- Authentication -------------------------------------------------------------
    let protected = h.secret_uri("a-b");
    let auth_req = |value: Option<String>| {
        let mut b = Request::builder().method(Method::GET).uri(&protected);
        if let Some(v) = value {
            b = b.header(header::AUTHORIZATION, v);
        }
        b.body(Body::empty()).unwrap()
    };

    let r = h.send(auth_req(None)).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "no Authorization header");
    assert!(
        r.headers.contains_key(header::WWW_AUTHENTICATE),
        "401 without www-authenticate"
    );

    for v in [
        "Basic xyz",
        "Basic b3duZXJAZXhhbXBsZS5jb206Q29ycmVjdC1Ib3JzZS00MiE=",
        "Bearer",
        "Bearer ",
        "bearer",
    ] {
        let r = h.send(auth_req(Some(v.to_owned()))).await;
        assert_problem(
            &r,
            StatusCode::UNAUTHORIZED,
            &format!("Authorization {v:?}"),
        );
        assert!(
            r.headers.contains_key(header::WWW_AUTHENTICATE),
            "401 without www-authenticate ({v:?})"
        );
    }

    // Tokens that reach verification: all must fail with one and the same detail.
    let real = h.token.clone();
    let segs: Vec<&str> = real.split('.').collect();
    assert_eq!(segs.len(), 3);

    let tampered = {
        let mut mid: Vec<u8> = segs[1].as_bytes().to_vec();
        let i = mid.len() / 2;
        mid[i] = if mid[i] == b'A' { b'B' } else { b'A' };
        format!(
            "{}.{}.{}",
            segs[0],
            String::from_utf8(mid).unwrap(),
            segs[2]
        )
    };
    let mut claims = claims_of(&real);
    // The forging helper itself is sound: a fresh forged token is accepted...
    claims.iat = now() - 60;
    claims.exp = now() + 600;
    let forged_valid = sign_with_server_key(&h.engine, &claims).await;
    let r = h
        .send(auth_req(Some(format!("Bearer {forged_valid}"))))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a correctly forged, unexpired token must work: {:?}",
        String::from_utf8_lossy(&r.body)
    );
    // ...so the expired one fails only because of its expiry.
    claims.iat = now() - 1500;
    claims.exp = now() - 600;
    let expired = sign_with_server_key(&h.engine, &claims).await;

    let alg_none = {
        let header = B64URL.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
        format!("{header}.{}.", segs[1])
    };
    let alg_none_kid = {
        let header = B64URL.encode(
            json!({"alg": "none", "typ": "JWT", "kid": h.engine.tokens().public_key().kid})
                .to_string(),
        );
        format!("{header}.{}.", segs[1])
    };
    let hs256 = {
        let header = B64URL.encode(
            json!({"alg": "HS256", "typ": "JWT", "kid": h.engine.tokens().public_key().kid})
                .to_string(),
        );
        let input = format!("{header}.{}", segs[1]);
        let key = aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            &h.engine.tokens().public_key().ed25519,
        );
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", B64URL.encode(tag.as_ref()))
    };
    let hs256_b64_key = {
        // Same attack with the key as the JWKS publishes it (base64url text).
        let header = B64URL.encode(
            json!({"alg": "HS256", "typ": "JWT", "kid": h.engine.tokens().public_key().kid})
                .to_string(),
        );
        let input = format!("{header}.{}", segs[1]);
        let x = B64URL.encode(h.engine.tokens().public_key().ed25519);
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, x.as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", B64URL.encode(tag.as_ref()))
    };
    let wrong_kid = {
        let header = B64URL
            .encode(json!({"alg": "EdDSA", "typ": "JWT", "kid": "0000000000000000"}).to_string());
        format!("{header}.{}.{}", segs[1], segs[2])
    };
    let no_sig = format!("{}.{}", segs[0], segs[1]);
    let huge = format!("{}.{}.{}", segs[0], "A".repeat(9000), segs[2]);

    let mut details = Vec::new();
    for (name, tok) in [
        ("garbage", "garbage".to_owned()),
        ("tampered payload", tampered),
        ("expired", expired),
        ("alg none", alg_none),
        ("alg none with kid", alg_none_kid),
        ("HS256 keyed with the public key", hs256),
        ("HS256 keyed with the JWKS x", hs256_b64_key),
        ("unknown kid", wrong_kid),
        ("no signature segment", no_sig),
        ("oversized", huge),
    ] {
        let r = h.send(auth_req(Some(format!("Bearer {tok}")))).await;
        let detail = assert_problem(&r, StatusCode::UNAUTHORIZED, &format!("{name} token"));
        assert!(
            r.headers.contains_key(header::WWW_AUTHENTICATE),
            "{name}: 401 without www-authenticate"
        );
        details.push((name, detail));
    }
    let first = details[0].1.clone();
    for (name, d) in &details {
        assert_eq!(
            d, &first,
            "the 401 detail for `{name}` differs from `garbage` (an oracle)"
        );
    }

    // ---- Routing --------------------------------------------------------------------
    for uri in ["/v1/nope", "/nope", "/v1/vaults/x/y/z", "/v2/vaults"] {
        let r = h.get(uri).await;
        assert_problem(&r, StatusCode::NOT_FOUND, &format!("unknown route {uri}"));
    }
    let r = h
        .send_json(Method::PATCH, "/v1/vaults", json!({"name": "x"}))
        .await;
    assert_problem(&r, StatusCode::METHOD_NOT_ALLOWED, "PATCH /v1/vaults");
    assert!(r.headers.contains_key(header::ALLOW), "405 without Allow");
    let r = h
        .send(request(
            Method::DELETE,
            "/v1/health",
            None,
            None,
            Body::empty(),
        ))
        .await;
    assert_problem(&r, StatusCode::METHOD_NOT_ALLOWED, "DELETE /v1/health");

    // ---- Still serving --------------------------------------------------------------
    let r = h
        .send(request(
            Method::GET,
            "/v1/health",
            None,
            None,
            Body::empty(),
        ))
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "health: {:?}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["status"], "healthy");
    let r = h.get(&h.secret_uri("a-b")).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["value"], SECRET_VALUE);
    assert_eq!(
        v["version"], 1,
        "no malformed request may have written a version"
    );
    let r = h.get(&format!("/v1/vaults/{}/secrets", h.vault)).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json();
    let paths: Vec<&str> = list["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["a-b"],
        "no malformed request may have created a secret"
    );
}

/// A JSON array where an object is expected is the wrong type, even though
/// serde's derive would map it onto the struct's fields by position.
#[tokio::test]
async fn json_arrays_in_place_of_objects_are_rejected() {
    let h = Harness::new().await;
    let cases: Vec<(Method, String, Value)> = vec![
        (Method::PUT, h.secret_uri("a-b"), json!([CANARY])),
        (Method::PUT, h.secret_uri("from-array"), json!(["x"])),
        (Method::POST, "/v1/vaults".to_owned(), json!(["from-array"])),
        (
            Method::POST,
            "/v1/auth/token".to_owned(),
            json!(["owner@example.com", PASSWORD]),
        ),
    ];
    // Every case is tried before failing, so one run shows them all.
    let mut accepted = Vec::new();
    for (method, uri, body) in cases {
        let r = h.send_json(method.clone(), &uri, body.clone()).await;
        if r.status != StatusCode::BAD_REQUEST {
            accepted.push(format!(
                "{method} {uri} {body} -> {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
            continue;
        }
        assert_problem(
            &r,
            StatusCode::BAD_REQUEST,
            &format!("array body {body} on {method} {uri}"),
        );
    }
    assert!(
        accepted.is_empty(),
        "array bodies were not rejected with 400:\n{}",
        accepted.join("\n")
    );
}
