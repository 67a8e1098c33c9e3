//! Per-client rate limits on the public authentication routes (sign-up, login,
//! key exchange): 429 with `Retry-After` when a client exceeds them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::problem::Problem;

/// Rate-limit settings.
#[derive(Debug, Clone, Copy)]
pub struct AuthRateLimit {
    /// Sustained requests per second per client address.
    pub per_second: u32,
    /// Burst size.
    pub burst: u32,
}

impl Default for AuthRateLimit {
    fn default() -> Self {
        AuthRateLimit {
            per_second: 10,
            burst: 50,
        }
    }
}

/// The limiter shared by the public authentication routes.
#[derive(Clone)]
pub struct AuthLimiter(Arc<DefaultKeyedRateLimiter<IpAddr>>);

impl AuthLimiter {
    /// A limiter with the given settings (zero values are raised to 1).
    pub fn new(cfg: AuthRateLimit) -> Self {
        let per = NonZeroU32::new(cfg.per_second.max(1)).expect("nonzero");
        let burst = NonZeroU32::new(cfg.burst.max(1)).expect("nonzero");
        AuthLimiter(Arc::new(RateLimiter::keyed(
            Quota::per_second(per).allow_burst(burst),
        )))
    }
}

const LIMITED: &[&str] = &[
    "/v1/auth/token",
    "/v1/auth/signup",
    "/v1/auth/agent-token",
    "/v1/auth/api-key-token",
];

/// Middleware: applies the limiter to `POST` on the public auth routes.
pub async fn limit_auth(
    State(limiter): State<AuthLimiter>,
    req: Request,
    next: Next,
) -> Response<Body> {
    if req.method() == Method::POST && LIMITED.contains(&req.uri().path()) {
        let ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if let Err(not_until) = limiter.0.check_key(&ip) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            metrics::counter!("strongroom_rate_limited_total").increment(1);
            let mut resp = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many authentication attempts; slow down",
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            return resp;
        }
    }
    next.run(req).await
}
