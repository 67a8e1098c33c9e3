//! The client's address, determined once per request.
//!
//! The TCP peer is the client unless it is a configured trusted proxy: then
//! the client is the rightmost address of `X-Forwarded-For` that is not itself
//! a trusted proxy (each proxy appends the address it received the request
//! from, so everything left of the first untrusted hop was written by the
//! client and proves nothing). With no trusted proxies (the default) the header
//! is ignored. Rate limits, policy `ip_allowlist` conditions, audit records and
//! the `/metrics` loopback check all use this one address ([`ClientAddr`]).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Response};
use axum::middleware::Next;

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`; a bare
/// address is a single host). The arithmetic is `ipnet`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet(ipnet::IpNet);

impl IpNet {
    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("{s:?} is not an IP network (expected e.g. 10.0.0.0/8 or 2001:db8::/32)");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr = addr.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let net = match prefix {
            Some(p) => {
                ipnet::IpNet::new(addr, p.parse::<u8>().map_err(|_| bad())?).map_err(|_| bad())?
            }
            None => ipnet::IpNet::from(addr),
        };
        Ok(IpNet(net))
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

impl TrustedProxies {
    /// Trusts the given networks (none: the header is ignored).
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies(Arc::new(nets))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client of a request from `peer` with these headers.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        // Right to left: the nearest hop first. A hop that does not parse ends
        // the walk at the last address a trusted proxy vouched for.
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// The request's client address, set by [`client_addr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Middleware: determines the client address once and stores it in the
/// request's extensions. Without a connection address (in-process tests that
/// insert none) it sets nothing.
pub async fn client_addr(
    State(proxies): State<TrustedProxies>,
    mut req: Request,
    next: Next,
) -> Response<Body> {
    if let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    {
        let client = proxies.client_of(peer, req.headers());
        req.extensions_mut().insert(ClientAddr(client));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal")
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).expect("ascii"));
        h
    }

    #[test]
    fn networks_parse_and_match() {
        let n: IpNet = "10.1.0.0/16".parse().expect("valid");
        assert!(n.contains(ip("10.1.200.3")));
        assert!(!n.contains(ip("10.2.0.1")));
        assert!(n.contains(ip("::ffff:10.1.0.9")));
        let n: IpNet = "2001:db8::/32".parse().expect("valid");
        assert!(n.contains(ip("2001:db8:ffff::1")));
        assert!(!n.contains(ip("2001:db9::1")));
        let host: IpNet = "192.0.2.1".parse().expect("valid");
        assert!(host.contains(ip("192.0.2.1")) && !host.contains(ip("192.0.2.2")));
        let all: IpNet = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_of(ip("10.0.0.5"), &xff("198.51.100.7")),
            ip("10.0.0.5")
        );
        let p = TrustedProxies::new(vec!["10.0.0.0/8".parse().expect("valid")]);
        // An untrusted peer's header is ignored.
        assert_eq!(
            p.client_of(ip("192.0.2.9"), &xff("198.51.100.7")),
            ip("192.0.2.9")
        );
        // From a trusted peer: the rightmost untrusted hop, whatever the client
        // wrote to its left.
        assert_eq!(
            p.client_of(ip("10.0.0.5"), &xff("1.2.3.4, 198.51.100.7, 10.0.0.9")),
            ip("198.51.100.7")
        );
        assert_eq!(
            p.client_of(ip("10.0.0.5"), &xff("garbage, 198.51.100.7:4711")),
            ip("198.51.100.7")
        );
        // Nothing but proxies, or nothing usable: the last trusted hop.
        assert_eq!(
            p.client_of(ip("10.0.0.5"), &xff("10.0.0.7")),
            ip("10.0.0.7")
        );
        assert_eq!(p.client_of(ip("10.0.0.5"), &xff("junk")), ip("10.0.0.5"));
        assert_eq!(
            p.client_of(ip("10.0.0.5"), &HeaderMap::new()),
            ip("10.0.0.5")
        );
        // Several header lines are one list.
        let mut h = xff("1.2.3.4");
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("[2001:db8::1]:80"),
        );
        assert_eq!(p.client_of(ip("10.0.0.5"), &h), ip("2001:db8::1"));
    }
}
