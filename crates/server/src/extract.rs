//! Extractors: JSON bodies whose rejections are the API's one error type
//! ([`ApiError`], problem+json), and the authenticated caller.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use strongroom_core::{Error, Principal};

use crate::AppState;
use crate::problem::ApiError;

/// A JSON body. Wrong media type: 415; too large: 413; malformed or mistyped:
/// 400 naming the field, never echoing a value (it might be a secret).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(ct) = &ct {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(ApiError::http(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "the request body must be application/json",
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            let status = r.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::http(
                    status,
                    format!(
                        "the request body is larger than {} bytes",
                        crate::MAX_BODY_BYTES
                    ),
                )
            } else {
                ApiError::http(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                )
            }
        })?;
        if ct.is_none() && !bytes.is_empty() {
            return Err(ApiError::http(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the request body must be application/json",
            ));
        }
        parse_json(&bytes).map(ApiJson)
    }
}

/// Like [`ApiJson`], but an empty body means `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0");
        if empty {
            return Ok(OptionalJson(T::default()));
        }
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|r| ApiError::http(r.status(), "the request body could not be read"))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        ApiJson::<T>::from_request(req, state)
            .await
            .map(|ApiJson(v)| OptionalJson(v))
    }
}

/// Parses JSON into `T` with safe error messages.
///
/// Every request body of the API is a JSON object; anything else is refused
/// before serde sees it (derived deserializers would otherwise fill a struct
/// from an array, by position).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(b'[') | Some(b'"') | Some(b'-') | Some(b'0'..=b'9') | Some(b't') | Some(b'f')
        | Some(b'n') => {
            return Err(ApiError::http(
                StatusCode::BAD_REQUEST,
                "the request body must be a JSON object",
            ));
        }
        _ => {
            return Err(ApiError::http(
                StatusCode::BAD_REQUEST,
                "the request body is not valid JSON",
            ));
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let out: Result<T, _> = serde_path_to_error::deserialize(de);
    out.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // The serde error is dropped, not kept as a cause: its text quotes the
        // value sent ("invalid type: string \"…\""), which may be a secret,
        // and a log is no place for one either.
        ApiError::http(StatusCode::BAD_REQUEST, describe_json_error(&path, &inner))
    })
}

fn describe_json_error(path: &str, e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            format!(
                "the request body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            )
        }
        Category::Data => {
            let msg = e.to_string();
            if msg.starts_with("missing field")
                || msg.starts_with("unknown field")
                || msg.starts_with("duplicate field")
            {
                // These name fields, not values.
                msg.split(" at line").next().unwrap_or(&msg).to_owned()
            } else {
                // "invalid type: string \"...\"" would echo the value: keep only what was expected.
                let expected = msg
                    .split(", expected ")
                    .nth(1)
                    .map(|x| x.split(" at line").next().unwrap_or(x));
                let field = if path.is_empty() || path == "." {
                    "the body".to_owned()
                } else {
                    format!("field `{path}`")
                };
                match expected {
                    Some(exp) => format!("{field} has the wrong type or value: expected {exp}"),
                    None => format!("{field} has the wrong type or value"),
                }
            }
        }
    }
}

/// The authenticated caller. Missing or bad credentials: 401.
pub struct Auth(pub Principal);

/// The client's address, when the server knows it: the one
/// [`crate::client::client_addr`] determined (trusted proxies considered), else
/// the TCP peer.
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<crate::client::ClientAddr>()
        .map(|c| c.0)
        .or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_canonical())
        })
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let missing = || ApiError::from(Error::Unauthenticated("missing bearer token".into()));
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(missing)?;
        let value = value.to_str().map_err(|_| missing())?;
        let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(missing());
        }
        let p = state
            .engine
            .authenticate(token.trim(), client_ip(parts))
            .await?;
        Ok(Auth(p))
    }
}

/// The client's address, for unauthenticated routes.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        value: String,
        n: Option<u32>,
    }

    #[test]
    fn errors_never_echo_values() {
        for raw in [
            r#"{"value": "x", "n": "hunter2-secret"}"#,
            r#"{"value": ["hunter2-secret"]}"#,
            r#"{"value": "x", "n": -7}"#,
            r#"{"value": "hunter2-secret""#,
            r#"hunter2-secret"#,
        ] {
            let p = parse_json::<Body>(raw.as_bytes()).unwrap_err().problem();
            assert_eq!(p.status, 400);
            assert!(!p.detail.contains("hunter2"), "{}", p.detail);
        }
        let p = parse_json::<Body>(br#"{"value": "x", "n": "abc"}"#)
            .unwrap_err()
            .problem();
        assert!(p.detail.contains("`n`"), "{}", p.detail);
        let p = parse_json::<Body>(br#"{"n": 1}"#).unwrap_err().problem();
        assert!(p.detail.contains("missing field `value`"), "{}", p.detail);
    }
}
