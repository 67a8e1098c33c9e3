//! What a node caches, and how every node forgets it when any node changes
//! it: vaults, the policies naming a principal in a vault, a principal's
//! state (a user's role, an agent's activity, expiry and token generation)
//! and whether a token id is revoked — the lookups every request makes.
//!
//! - A write that changes one of them sends `NOTIFY strongroom_cache` with
//!   what changed, in its transaction (delivered at commit, to every node,
//!   itself included), and forgets it locally after its commit.
//! - Each node LISTENs on a connection of its own. Nothing is cached unless
//!   that connection is up: when it drops, the node clears its caches and
//!   reads the database for every request until it has listened again.
//! - A dead connection can look alive for a while (a silent network). So
//!   every [`HEARTBEAT`] the listener notifies itself, and caching stays on
//!   only while each heartbeat comes back within [`HEARTBEAT_DEADLINE`].
//!   Notifications arrive in commit order, so when a heartbeat sent after a
//!   change comes back, the change's notification has arrived: a change
//!   committed at time t is forgotten by every node by t + `HEARTBEAT` +
//!   `HEARTBEAT_DEADLINE` (500 ms) at the latest, usually within
//!   milliseconds.
//! - A read that raced a change is not cached: every entry is filled only if
//!   no invalidation happened while it was read from the database (an epoch
//!   counter), so a stale row can't be put back after its notification.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use deadpool_postgres::GenericClient;
use futures_util::StreamExt;
use strongroom_core::policy::Policy;
use strongroom_core::{Subject, VaultId};
use strongroom_store::{StoreResult, VaultRow};
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::db::exec;

/// The notification channel.
pub(crate) const CHANNEL: &str = "strongroom_cache";
/// How often the listener sends itself a heartbeat.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(100);
/// How soon each heartbeat must come back for caching to stay on.
pub(crate) const HEARTBEAT_DEADLINE: Duration = Duration::from_millis(400);
/// Entries per cache at most (it is cleared when full).
const MAX_ENTRIES: usize = 50_000;

/// A principal's facts as stored, before the clock and the token decide.
#[derive(Clone, Debug)]
pub(crate) struct PrincipalFacts {
    pub(crate) role: Option<String>,
    /// Token generation, active flag, expiry (µs), intents flag — if an agent.
    pub(crate) agent: Option<(i64, bool, Option<i64>, bool)>,
}

/// What changed (the payload of a notification).
#[derive(Clone, Debug)]
pub(crate) enum Change {
    Vault(VaultId),
    Policies(VaultId),
    AllPolicies,
    Principal(Subject),
    Token(String),
}

impl Change {
    fn payload(&self) -> String {
        match self {
            Change::Vault(v) => format!("v:{v}"),
            Change::Policies(v) => format!("p:{v}"),
            Change::AllPolicies => "p:*".into(),
            Change::Principal(s) => format!("s:{s}"),
            Change::Token(j) => format!("j:{j}"),
        }
    }

    fn parse(p: &str) -> Option<Change> {
        let (kind, rest) = p.split_once(':')?;
        Some(match kind {
            "v" => Change::Vault(rest.parse().ok()?),
            "p" if rest == "*" => Change::AllPolicies,
            "p" => Change::Policies(rest.parse().ok()?),
            "s" => Change::Principal(rest.parse().ok()?),
            "j" => Change::Token(rest.to_owned()),
            _ => return None,
        })
    }
}

/// Announces changes to every node, in the writer's transaction.
pub(crate) async fn announce(tx: &impl GenericClient, changes: &[Change]) -> StoreResult<()> {
    for c in changes {
        exec(tx, "SELECT pg_notify($1, $2)", &[&CHANNEL, &c.payload()]).await?;
    }
    Ok(())
}

struct Map<K, V>(RwLock<HashMap<K, V>>);

impl<K: Eq + Hash, V: Clone> Map<K, V> {
    fn new() -> Self {
        Map(RwLock::new(HashMap::new()))
    }
    fn get(&self, k: &K) -> Option<V> {
        self.0.read().expect("cache").get(k).cloned()
    }
    fn put(&self, k: K, v: V) {
        let mut m = self.0.write().expect("cache");
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(k, v);
    }
    fn remove_if(&self, f: impl Fn(&K) -> bool) {
        self.0.write().expect("cache").retain(|k, _| !f(k));
    }
    fn clear(&self) {
        self.0.write().expect("cache").clear();
    }
}

/// A node's caches.
pub(crate) struct NodeCache {
    /// Whether the listener is up and its heartbeat on time.
    live: AtomicBool,
    /// Bumped by every invalidation: a fill that saw it move is dropped.
    epoch: AtomicU64,
    vaults: Map<VaultId, Option<VaultRow>>,
    policies: Map<(VaultId, Subject), Vec<Policy>>,
    principals: Map<(String, Subject), PrincipalFacts>,
    revoked: Map<String, bool>,
}

/// A read to fill a cache with: the epoch it started at.
pub(crate) struct Ticket(Option<u64>);

impl NodeCache {
    pub(crate) fn new() -> Self {
        NodeCache {
            live: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            vaults: Map::new(),
            policies: Map::new(),
            principals: Map::new(),
            revoked: Map::new(),
        }
    }

    /// Whether caching is on now (the listener is up and on time).
    pub(crate) fn live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Before reading the database for a fill.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.live().then(|| self.epoch.load(Ordering::Acquire)))
    }

    fn fill_ok(&self, t: &Ticket) -> bool {
        t.0.is_some_and(|e| self.live() && self.epoch.load(Ordering::Acquire) == e)
    }

    pub(crate) fn vault(&self, id: &VaultId) -> Option<Option<VaultRow>> {
        self.live().then(|| self.vaults.get(id)).flatten()
    }
    pub(crate) fn put_vault(&self, t: &Ticket, id: VaultId, v: Option<VaultRow>) {
        if self.fill_ok(t) {
            self.vaults.put(id, v);
        }
    }

    pub(crate) fn policies(&self, vault: &VaultId, who: &Subject) -> Option<Vec<Policy>> {
        self.live()
            .then(|| self.policies.get(&(*vault, *who)))
            .flatten()
    }
    pub(crate) fn put_policies(&self, t: &Ticket, vault: VaultId, who: Subject, p: Vec<Policy>) {
        if self.fill_ok(t) {
            self.policies.put((vault, who), p);
        }
    }

    pub(crate) fn principal(&self, org: &str, who: &Subject) -> Option<PrincipalFacts> {
        self.live()
            .then(|| self.principals.get(&(org.to_owned(), *who)))
            .flatten()
    }
    pub(crate) fn put_principal(&self, t: &Ticket, org: String, who: Subject, f: PrincipalFacts) {
        if self.fill_ok(t) {
            self.principals.put((org, who), f);
        }
    }

    pub(crate) fn revoked(&self, jti: &str) -> Option<bool> {
        self.live()
            .then(|| self.revoked.get(&jti.to_owned()))
            .flatten()
    }
    pub(crate) fn put_revoked(&self, t: &Ticket, jti: String, revoked: bool) {
        if self.fill_ok(t) {
            self.revoked.put(jti, revoked);
        }
    }

    /// Forgets what `c` changed.
    pub(crate) fn forget(&self, c: &Change) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match c {
            Change::Vault(v) => self.vaults.remove_if(|k| k == v),
            Change::Policies(v) => self.policies.remove_if(|(k, _)| k == v),
            Change::AllPolicies => self.policies.clear(),
            Change::Principal(s) => self.principals.remove_if(|(_, k)| k == s),
            Change::Token(j) => self.revoked.remove_if(|k| k == j),
        }
    }

    /// Stops caching and forgets everything.
    fn off(&self) {
        self.live.store(false, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.vaults.clear();
        self.policies.clear();
        self.principals.clear();
        self.revoked.clear();
    }
}

/// Keeps a LISTEN connection up and applies what it hears, until the cache
/// is dropped. Caching is on only while the connection is up and its own
/// heartbeats come back in time.
pub(crate) fn spawn_listener(
    cache: &Arc<NodeCache>,
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
) -> tokio::task::JoinHandle<()> {
    let weak: Weak<NodeCache> = Arc::downgrade(cache);
    tokio::spawn(async move {
        loop {
            if weak.strong_count() == 0 {
                return;
            }
            if let Err(e) = listen(&weak, &config, tls.clone()).await {
                tracing::warn!(error = %e, "cache invalidation channel down: not caching until it is back");
            }
            if let Some(c) = weak.upgrade() {
                c.off();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

async fn listen(
    weak: &Weak<NodeCache>,
    config: &tokio_postgres::Config,
    tls: MakeRustlsConnect,
) -> Result<(), tokio_postgres::Error> {
    let mut config = config.clone();
    config.application_name("strongroom-cache-listener");
    let (client, mut connection) = config.connect(tls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let result = serve(weak, &client, &mut rx).await;
    driver.abort();
    result
}

async fn serve(
    weak: &Weak<NodeCache>,
    client: &tokio_postgres::Client,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Whatever was cached before this connection listened may have missed
    // notifications: start from nothing (caching comes on with the first
    // heartbeat back).
    if let Some(c) = weak.upgrade() {
        c.off();
    }
    let me = format!("hb:{}:", random_hex());
    let mut beat = tokio::time::interval(HEARTBEAT);
    // Heartbeats sent and not yet back: (number, when sent).
    let mut outstanding: std::collections::VecDeque<(u64, Instant)> = Default::default();
    let mut next = 0u64;
    loop {
        tokio::select! {
            _ = beat.tick() => {
                let Some(cache) = weak.upgrade() else { return Ok(()) };
                if outstanding.front().is_some_and(|(_, at)| at.elapsed() >= HEARTBEAT_DEADLINE) {
                    // Notifications may be stuck behind it: stop trusting the cache.
                    cache.off();
                    return Ok(());
                }
                next += 1;
                client
                    .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &format!("{me}{next}")])
                    .await?;
                outstanding.push_back((next, Instant::now()));
            }
            msg = rx.recv() => {
                // `None`: the connection ended.
                let Some(payload) = msg else { return Ok(()) };
                let Some(cache) = weak.upgrade() else { return Ok(()) };
                if let Some(n) = payload.strip_prefix(&me).and_then(|n| n.parse::<u64>().ok()) {
                    // Everything committed before heartbeat n has arrived.
                    while outstanding.front().is_some_and(|(m, _)| *m <= n) {
                        outstanding.pop_front();
                    }
                    cache.live.store(true, Ordering::Release);
                } else if let Some(change) = Change::parse(&payload) {
                    cache.forget(&change);
                } else if !payload.starts_with("hb:") {
                    // A change this build doesn't know: forget everything.
                    cache.off();
                }
            }
        }
    }
}

fn random_hex() -> String {
    let mut b = [0u8; 16];
    strongroom_crypto::random::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
