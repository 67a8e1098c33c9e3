//! Per-client rate limits, keyed by the client's network (the address for
//! IPv4, the /64 for IPv6: [`strongroom_engine::auth_failures::client_network`])
//! as determined by [`crate::client`]:
//!
//! - the public authentication routes (sign-up, login, key exchange) allow
//!   `auth_per_second` requests per client (burst `auth_burst`);
//! - failed authentications (any `401`, on every route) are budgeted per client
//!   too ([`FailedAuthLimiter`]): a client past its budget gets `429` with
//!   `Retry-After` on every route, before any credential is checked or audited,
//!   until its budget refills. This is what keeps a junk-token flood from
//!   costing a database lookup and an audit count per request.
//!
//! Both answer `429` problem+json with `Retry-After`; the failure limiter's
//! answer also closes the connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use strongroom_engine::auth_failures::client_network;

use crate::client::ClientAddr;
use crate::problem::ApiError;

/// Rate-limit settings.
#[derive(Debug, Clone, Copy)]
pub struct AuthRateLimit {
    /// Sustained requests per second per client network.
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

/// Failed-authentication budget per client network.
#[derive(Debug, Clone, Copy)]
pub struct FailedAuthLimit {
    /// Failures per second a client may sustain.
    pub per_second: u32,
    /// Failures a client may make in a burst.
    pub burst: u32,
    /// Clients tracked at once; beyond, new clients share one overflow budget.
    pub max_clients: usize,
}

impl Default for FailedAuthLimit {
    fn default() -> Self {
        FailedAuthLimit {
            per_second: 5,
            burst: 30,
            max_clients: 100_000,
        }
    }
}

/// The client network a request is accounted to, if the server knows the client.
pub fn client_key(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ClientAddr>()
        .map(|c| c.0)
        .or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
        .map(client_network)
}

/// A `429` problem with `Retry-After` (whole seconds, at least 1).
fn too_many(detail: &'static str, wait: Duration) -> Response<Body> {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut resp = ApiError::http(StatusCode::TOO_MANY_REQUESTS, detail).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    resp
}

/// The limiter shared by the public authentication routes.
#[derive(Clone)]
pub struct AuthLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    checks: Arc<AtomicU64>,
}

impl AuthLimiter {
    /// A limiter with the given settings (zero values are raised to 1).
    pub fn new(cfg: AuthRateLimit) -> Self {
        let per = NonZeroU32::new(cfg.per_second.max(1)).expect("nonzero");
        let burst = NonZeroU32::new(cfg.burst.max(1)).expect("nonzero");
        AuthLimiter {
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(per).allow_burst(burst),
            )),
            checks: Arc::new(AtomicU64::new(0)),
        }
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
        let key = client_key(&req).unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        // Forget clients whose budget is full again, so the table stays the
        // size of the recently active clients.
        if limiter.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            limiter.limiter.retain_recent();
            limiter.limiter.shrink_to_fit();
        }
        if let Err(not_until) = limiter.limiter.check_key(&key) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("strongroom_rate_limited_total", "limit" => "auth").increment(1);
            return too_many("too many authentication attempts; slow down", wait);
        }
    }
    next.run(req).await
}

/// A token bucket of failures.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Failed-authentication budgets per client network, in a bounded table.
#[derive(Clone)]
pub struct FailedAuthLimiter {
    buckets: Arc<Mutex<HashMap<IpAddr, Bucket>>>,
    /// When the full table was last swept (a sweep walks every entry, so it
    /// runs at most once a second however many newcomers arrive).
    swept: Arc<Mutex<Option<Instant>>>,
    cfg: FailedAuthLimit,
}

/// The key of the shared budget of clients beyond `max_clients`.
const OVERFLOW: IpAddr = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);

impl FailedAuthLimiter {
    /// A limiter with the given settings (zero values are raised to 1).
    pub fn new(cfg: FailedAuthLimit) -> Self {
        FailedAuthLimiter {
            buckets: Arc::new(Mutex::new(HashMap::new())),
            swept: Arc::new(Mutex::new(None)),
            cfg: FailedAuthLimit {
                per_second: cfg.per_second.max(1),
                burst: cfg.burst.max(1),
                max_clients: cfg.max_clients.max(1),
            },
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let gained = now.duration_since(b.at).as_secs_f64() * f64::from(self.cfg.per_second);
        b.tokens = (b.tokens + gained).min(f64::from(self.cfg.burst));
        b.at = now;
    }

    /// How long the client must wait, if its budget is spent.
    fn blocked(&self, key: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let key = if buckets.contains_key(&key) {
            key
        } else if buckets.len() >= self.cfg.max_clients {
            OVERFLOW
        } else {
            return None;
        };
        let b = buckets.get_mut(&key)?;
        self.refill(b, now);
        (b.tokens < 1.0)
            .then(|| Duration::from_secs_f64((1.0 - b.tokens) / f64::from(self.cfg.per_second)))
    }

    /// Spends one unit of the client's budget.
    fn failed(&self, key: IpAddr) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = key;
        if !buckets.contains_key(&key) && buckets.len() >= self.cfg.max_clients {
            // Forget the clients whose budget has refilled (at most once a
            // second); if the table is still full, the newcomer shares the
            // overflow budget.
            let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
            if swept.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
                *swept = Some(now);
                let full = f64::from(self.cfg.burst);
                let rate = f64::from(self.cfg.per_second);
                buckets
                    .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < full);
            }
            if buckets.len() >= self.cfg.max_clients {
                key = OVERFLOW;
            }
        }
        let fresh = Bucket {
            tokens: f64::from(self.cfg.burst),
            at: now,
        };
        let b = buckets.entry(key).or_insert(fresh);
        self.refill(b, now);
        b.tokens = (b.tokens - 1.0).max(0.0);
    }

    /// Clients tracked now (for tests).
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Middleware: refuses every request of a client whose failed-authentication
/// budget is spent, and spends it on every `401`.
pub async fn limit_failed_auth(
    State(limiter): State<FailedAuthLimiter>,
    req: Request,
    next: Next,
) -> Response<Body> {
    let Some(key) = client_key(&req) else {
        return next.run(req).await;
    };
    if let Some(wait) = limiter.blocked(key) {
        metrics::counter!("strongroom_rate_limited_total", "limit" => "failed_auth").increment(1);
        let mut resp = too_many(
            "too many failed authentications from this address; wait before retrying",
            wait,
        );
        // Don't read (or drain) an abuser's body: close after answering.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED {
        limiter.failed(key);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_spent_by_failures_and_the_table_is_bounded() {
        let l = FailedAuthLimiter::new(FailedAuthLimit {
            per_second: 1,
            burst: 3,
            max_clients: 4,
        });
        let a: IpAddr = "192.0.2.1".parse().expect("literal");
        assert!(l.blocked(a).is_none());
        for _ in 0..3 {
            l.failed(a);
        }
        let wait = l.blocked(a).expect("spent");
        assert!(wait <= Duration::from_secs(1));
        // Other clients are unaffected; past the cap they share one budget.
        let b: IpAddr = "192.0.2.2".parse().expect("literal");
        assert!(l.blocked(b).is_none());
        for i in 2..20u8 {
            l.failed(IpAddr::from([192, 0, 2, i]));
        }
        assert!(l.tracked() <= 5, "{}", l.tracked());
        assert!(l.blocked(a).is_some(), "a tracked client keeps its state");
    }
}
