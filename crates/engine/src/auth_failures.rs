//! Aggregated records of authentication failures that name no organisation.
//!
//! A refused bearer token, an unknown login email, an unknown API or agent key
//! names no organisation we can trust, so its record goes on the system chain.
//! Written one row per attempt, a client sending junk tokens as fast as it could
//! grew the database by gigabytes an hour and slowed every caller on the one
//! writer. Such failures are counted here instead, per client network and kind,
//! and written as one `auth.failure` record per client per window carrying
//! `count` (plus `first_at`/`last_at`): the log still accounts for every failure,
//! but its growth is bounded by the number of clients, not of requests.
//!
//! The state is bounded: at most `max_clients` clients are tracked per window;
//! failures from further clients in the same window are counted in one
//! overflow record per kind (`"overflow": true`, no address). The window is
//! flushed by [`Engine::spawn_auth_failure_flusher`] and at shutdown by
//! [`Engine::flush_auth_failures`].
//!
//! Failures against a known principal (a wrong password for an existing user, a
//! wrong key for a known agent) stay one record per attempt in that
//! organisation's chain: the organisation should see each one, and they only
//! come through the rate-limited public authentication routes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use strongroom_core::audit::{AuditAction, AuditRecord, AuditResource, ResourceKind};
use time::OffsetDateTime;

use crate::Engine;

/// Aggregation settings.
#[derive(Debug, Clone, Copy)]
pub struct AuthFailureAggregation {
    /// How long failures are counted before their records are written.
    pub window: Duration,
    /// Clients tracked per window; beyond, failures go to the overflow record.
    pub max_clients: usize,
}

impl Default for AuthFailureAggregation {
    fn default() -> Self {
        AuthFailureAggregation {
            window: Duration::from_secs(60),
            max_clients: 10_000,
        }
    }
}

/// The network a client address is accounted to: the address itself for IPv4,
/// its /64 for IPv6 (one host usually holds a whole /64, so counting single
/// IPv6 addresses would let one host appear as billions of clients).
/// IPv4-mapped IPv6 addresses count as IPv4.
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

/// What is counted: where from, and which kind of failure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// The client's network; `None` for the overflow bucket (or no address).
    network: Option<IpAddr>,
    overflow: bool,
    resource_type: ResourceKind,
    method: String,
    reason: String,
}

#[derive(Debug, Clone, Copy)]
struct Tally {
    count: u64,
    first_at: OffsetDateTime,
    last_at: OffsetDateTime,
}

/// The failures of the current window.
pub(crate) struct AuthFailureLog {
    tallies: Mutex<HashMap<Key, Tally>>,
    settings: AuthFailureAggregation,
}

impl AuthFailureLog {
    pub(crate) fn new(settings: AuthFailureAggregation) -> Self {
        AuthFailureLog {
            tallies: Mutex::new(HashMap::new()),
            settings,
        }
    }

    /// Counts one failure.
    pub(crate) fn count(
        &self,
        ip: Option<IpAddr>,
        resource_type: ResourceKind,
        method: &str,
        reason: &str,
    ) {
        let now = strongroom_core::time_util::now();
        let mut key = Key {
            network: ip.map(client_network),
            overflow: false,
            resource_type,
            method: method.to_owned(),
            reason: reason.to_owned(),
        };
        let mut tallies = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        if !tallies.contains_key(&key) && tallies.len() >= self.settings.max_clients {
            key.network = None;
            key.overflow = true;
        }
        let t = tallies.entry(key).or_insert(Tally {
            count: 0,
            first_at: now,
            last_at: now,
        });
        t.count = t.count.saturating_add(1);
        t.last_at = now;
    }

    /// Takes the window's tallies as audit records, starting a new window.
    fn take(&self) -> Vec<AuditRecord> {
        let tallies = std::mem::take(&mut *self.tallies.lock().unwrap_or_else(|p| p.into_inner()));
        let fmt = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        tallies
            .into_iter()
            .map(|(k, t)| {
                let mut details = json!({
                    "method": k.method,
                    "reason": k.reason,
                    "count": t.count,
                    "aggregated": true,
                    "first_at": fmt(t.first_at),
                    "last_at": fmt(t.last_at),
                });
                if k.overflow {
                    details["overflow"] = json!(true);
                }
                let ip = k.network.map(|n| match n {
                    IpAddr::V4(v4) => v4.to_string(),
                    IpAddr::V6(v6) => format!("{v6}/64"),
                });
                AuditRecord::system(
                    AuditAction::AuthFailure,
                    AuditResource::Unnamed(k.resource_type),
                    ip,
                )
                .with_details(details)
            })
            .collect()
    }
}

impl Engine {
    /// Writes the aggregated failure records of the current window (one per
    /// client and kind) and starts a new window. Call it at shutdown.
    pub(crate) async fn flush_auth_failures(&self) {
        for rec in self.auth_failures.take() {
            self.audit_best_effort(rec).await;
        }
    }

    /// Flushes the aggregated failure records every window until the engine
    /// is dropped.
    pub(crate) fn spawn_auth_failure_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let every = self
            .auth_failures
            .settings
            .window
            .max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                let Some(engine) = weak.upgrade() else { return };
                engine.flush_auth_failures().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_core::audit::SYSTEM_ORG;

    fn log(max_clients: usize) -> AuthFailureLog {
        AuthFailureLog::new(AuthFailureAggregation {
            window: Duration::from_secs(60),
            max_clients,
        })
    }

    #[test]
    fn one_record_per_client_and_kind_with_the_count() {
        let l = log(100);
        let a: IpAddr = "192.0.2.7".parse().expect("literal");
        let b: IpAddr = "192.0.2.8".parse().expect("literal");
        for _ in 0..1000 {
            l.count(Some(a), ResourceKind::Token, "bearer", "invalid_credential");
        }
        l.count(Some(b), ResourceKind::Token, "bearer", "invalid_credential");
        l.count(Some(a), ResourceKind::User, "password", "unknown_user");
        let recs = l.take();
        assert_eq!(recs.len(), 3);
        let total: u64 = recs
            .iter()
            .map(|r| r.details["count"].as_u64().expect("count"))
            .sum();
        assert_eq!(total, 1002);
        let big = recs
            .iter()
            .find(|r| r.details["count"] == 1000)
            .expect("the flood");
        assert_eq!(big.ip_address.as_deref(), Some("192.0.2.7"));
        assert_eq!(big.action, "auth.failure");
        assert_eq!(big.org_id, SYSTEM_ORG);
        assert!(l.take().is_empty(), "a new window starts empty");
    }

    #[test]
    fn tracked_clients_are_capped_and_the_rest_overflow() {
        let l = log(10);
        for i in 0..1000u32 {
            let ip = IpAddr::V4((0xC000_0200 + i).into());
            l.count(
                Some(ip),
                ResourceKind::Token,
                "bearer",
                "invalid_credential",
            );
        }
        assert!(l.tallies.lock().expect("lock").len() <= 11);
        let recs = l.take();
        let overflow = recs
            .iter()
            .find(|r| r.details["overflow"] == true)
            .expect("an overflow record");
        assert_eq!(overflow.details["count"], 990);
        assert_eq!(overflow.ip_address, None);
        let total: u64 = recs
            .iter()
            .map(|r| r.details["count"].as_u64().expect("count"))
            .sum();
        assert_eq!(total, 1000);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let l = log(100);
        for ip in [
            "2001:db8:1:2::1",
            "2001:db8:1:2:ffff::9",
            "::ffff:192.0.2.1",
        ] {
            l.count(
                Some(ip.parse().expect("literal")),
                ResourceKind::Token,
                "bearer",
                "x",
            );
        }
        let mut ips: Vec<_> = l.take().into_iter().filter_map(|r| r.ip_address).collect();
        ips.sort();
        assert_eq!(
            ips,
            vec!["192.0.2.1".to_owned(), "2001:db8:1:2::/64".to_owned()]
        );
    }
}
