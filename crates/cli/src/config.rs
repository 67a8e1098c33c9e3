//! Configuration: command-line flags, their `STRONGROOM_*` environment
//! equivalents, and an optional `strongroom.toml`, in that order of precedence.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

/// `strongroom serve` flags.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "STRONGROOM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the database, the keyring and the root key.
    #[arg(long, env = "STRONGROOM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Development mode: in-memory keys and a temporary database. Everything is
    /// lost when the server stops.
    #[arg(long, env = "STRONGROOM_DEV")]
    pub dev: bool,
    /// Configuration file (default: ./strongroom.toml if it exists).
    #[arg(long, env = "STRONGROOM_CONFIG")]
    pub config: Option<PathBuf>,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "STRONGROOM_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "STRONGROOM_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long, env = "STRONGROOM_ALLOW_PLAIN_HTTP")]
    pub allow_plain_http: bool,
    /// Key provider: `file` (default) or `memory`.
    #[arg(long, env = "STRONGROOM_KMS_PROVIDER")]
    pub kms_provider: Option<String>,
    /// Let anyone sign up and get their own organisation (default: only the first).
    #[arg(long, env = "STRONGROOM_OPEN_SIGNUP")]
    pub open_signup: bool,
    /// Log format: `text` or `json`.
    #[arg(long, env = "STRONGROOM_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// PostgreSQL URL: store everything there instead of the data directory's
    /// SQLite file (docs/operations/postgres.md).
    #[arg(long, env = "STRONGROOM_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// The file's shape. Every field is optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    allow_plain_http: Option<bool>,
    #[serde(default)]
    tls: FileTls,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    kms: FileKms,
    #[serde(default)]
    log: FileLog,
    #[serde(default)]
    audit: FileAudit,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    server: FileServer,
    #[serde(default)]
    metrics: FileMetrics,
    #[serde(default)]
    store: crate::store::FileStore,
}

/// `[server]`: how connections are bounded, and who is a proxy.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileServer {
    /// From accepting a connection to its first complete request head.
    header_timeout_secs: Option<u64>,
    /// For a request body to arrive, from the end of its head.
    body_timeout_secs: Option<u64>,
    /// Between requests on a kept-alive connection (including the next head).
    idle_timeout_secs: Option<u64>,
    /// Connections open at once; more are closed on accept.
    max_connections: Option<usize>,
    /// Networks (CIDR) of proxies whose `X-Forwarded-For` names the client.
    trusted_proxies: Option<Vec<String>>,
}

/// `[metrics]`: who may read `/metrics`.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileMetrics {
    /// Serve `/metrics` at all.
    enabled: Option<bool>,
    /// A file holding a bearer token `/metrics` requires (else loopback only).
    token_file: Option<PathBuf>,
    /// Serve `/metrics` on this address instead of the API's.
    listen: Option<SocketAddr>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    /// Requests per second per client on the public auth routes; 0 turns the limit off.
    auth_per_second: Option<u32>,
    auth_burst: Option<u32>,
    /// Failed authentications per second per client, on every route; 0 turns the limit off.
    failed_auth_per_second: Option<u32>,
    failed_auth_burst: Option<u32>,
    /// Password hashes computed at once (default: the number of cores).
    password_hashing_concurrency: Option<usize>,
    /// How long a login or sign-up waits for a hashing slot before a 503.
    password_hashing_wait_ms: Option<u64>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileAudit {
    checkpoint_every_events: Option<u64>,
    checkpoint_interval_secs: Option<u64>,
    /// Window of the aggregated records of failures naming no organisation.
    auth_failure_window_secs: Option<u64>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    open_signup: Option<bool>,
    user_token_ttl_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileKms {
    provider: Option<String>,
    root_key_file: Option<PathBuf>,
    keyring_file: Option<PathBuf>,
    pkcs11: Option<strongroom_kms::pkcs11::Pkcs11Config>,
    #[cfg(feature = "gcp")]
    gcp: Option<strongroom_kms::gcp::GcpConfig>,
    // Accepted (not an unknown key) so that `provider = "gcp"` is refused
    // with "this build has no gcp provider"; never read.
    #[cfg(not(feature = "gcp"))]
    #[allow(dead_code)]
    gcp: Option<toml::Value>,
    dek_cache: Option<strongroom_kms::cache::DekCacheConfig>,
}

impl std::fmt::Debug for FileKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKms")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileLog {
    format: Option<String>,
}

/// Which key provider to run.
pub enum Provider {
    /// Process memory.
    Memory,
    /// Sealed keyring file.
    File {
        /// The keyring.
        keyring: PathBuf,
        /// The root key file (unless `STRONGROOM_ROOT_KEY` is set).
        root_key_file: PathBuf,
    },
    /// A PKCS#11 token (an HSM; SoftHSM2 in tests).
    Pkcs11(Box<strongroom_kms::pkcs11::Pkcs11Config>),
    /// Google Cloud KMS.
    #[cfg(feature = "gcp")]
    Gcp(Box<strongroom_kms::gcp::GcpConfig>),
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Provider::Memory => f.write_str("memory"),
            Provider::File { keyring, .. } => write!(f, "file ({})", keyring.display()),
            Provider::Pkcs11(c) => write!(f, "pkcs11 (token {:?})", c.token_label),
            #[cfg(feature = "gcp")]
            Provider::Gcp(c) => write!(f, "gcp ({})", c.key_ring_name()),
        }
    }
}

/// The resolved configuration.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    /// `None` in dev mode: a temporary directory is used.
    pub data_dir: Option<PathBuf>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub allow_plain_http: bool,
    pub provider: Provider,
    pub open_signup: bool,
    pub user_token_ttl_secs: u64,
    pub json_logs: bool,
    pub dev: bool,
    pub checkpoints: strongroom_engine::CheckpointPolicy,
    pub auth_rate_limit: Option<strongroom_server::ratelimit::AuthRateLimit>,
    pub failed_auth_limit: Option<strongroom_server::ratelimit::FailedAuthLimit>,
    pub hashing: strongroom_engine::hashing::HashingLimits,
    pub auth_failure_window: Duration,
    pub transport: Transport,
    pub trusted_proxies: Vec<strongroom_server::client::IpNet>,
    /// `None`: `/metrics` is off.
    pub metrics: Option<Metrics>,
    pub dek_cache: Option<strongroom_kms::cache::DekCacheConfig>,
    pub store: crate::store::StoreConfig,
}

/// Where `/metrics` is served, and to whom (`[metrics]`).
#[derive(Debug, Clone)]
pub struct Metrics {
    /// The rule on the API listener.
    pub api: strongroom_server::routes::MetricsAccess,
    /// A listener of its own, and its rule.
    pub listener: Option<(SocketAddr, strongroom_server::routes::MetricsAccess)>,
}

/// Connection bounds (`[server]`).
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    /// From accepting a connection to its first complete request head.
    pub header_timeout: Duration,
    /// For a request body to arrive.
    pub body_timeout: Duration,
    /// Between requests on a kept-alive connection.
    pub idle_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

impl Config {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file = load_file(args.config.as_deref())?;
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8443".parse().expect("literal"));
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./strongroom-data"));
        let tls = match (
            args.tls_cert.or(file.tls.cert),
            args.tls_key.or(file.tls.key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("TLS needs both a certificate and a key"),
        };
        let provider_name = if args.dev {
            "memory".to_owned()
        } else {
            args.kms_provider
                .or(file.kms.provider.clone())
                .unwrap_or_else(|| "file".into())
        };
        let dek_cache = file.kms.dek_cache.clone();
        let store = crate::store::StoreConfig::resolve(
            args.database_url.clone(),
            file.store.clone(),
            &data_dir,
        )?;
        let provider = provider_from(&provider_name, file.kms, &data_dir)?;
        let log_format = args
            .log_format
            .or(file.log.format)
            .unwrap_or_else(|| "text".into());
        let json_logs = match log_format.as_str() {
            "json" => true,
            "text" => false,
            other => bail!("unknown log format {other:?}: expected \"text\" or \"json\""),
        };
        let ttl = file.auth.user_token_ttl_secs.unwrap_or(900);
        if !(60..=86_400).contains(&ttl) {
            bail!("auth.user_token_ttl_secs must be between 60 and 86400");
        }
        let defaults = strongroom_engine::CheckpointPolicy::default();
        let checkpoints = strongroom_engine::CheckpointPolicy {
            every_events: file
                .audit
                .checkpoint_every_events
                .unwrap_or(defaults.every_events)
                .max(1),
            every: file
                .audit
                .checkpoint_interval_secs
                .map(std::time::Duration::from_secs)
                .unwrap_or(defaults.every),
        };
        let rl = strongroom_server::ratelimit::AuthRateLimit::default();
        let auth_rate_limit = match file.limits.auth_per_second.unwrap_or(rl.per_second) {
            0 => None,
            per_second => Some(strongroom_server::ratelimit::AuthRateLimit {
                per_second,
                burst: file.limits.auth_burst.unwrap_or(rl.burst),
            }),
        };
        let fl = strongroom_server::ratelimit::FailedAuthLimit::default();
        let failed_auth_limit = match file.limits.failed_auth_per_second.unwrap_or(fl.per_second) {
            0 => None,
            per_second => Some(strongroom_server::ratelimit::FailedAuthLimit {
                per_second,
                burst: file.limits.failed_auth_burst.unwrap_or(fl.burst),
                ..fl
            }),
        };
        let hd = strongroom_engine::hashing::HashingLimits::default();
        let hashing = strongroom_engine::hashing::HashingLimits {
            permits: file
                .limits
                .password_hashing_concurrency
                .unwrap_or(hd.permits)
                .max(1),
            wait: file
                .limits
                .password_hashing_wait_ms
                .map(Duration::from_millis)
                .unwrap_or(hd.wait),
        };
        let auth_failure_window = Duration::from_secs(
            file.audit
                .auth_failure_window_secs
                .unwrap_or(60)
                .clamp(1, 3600),
        );
        let td = Transport::default();
        let secs = |v: Option<u64>, d: Duration, name: &str| -> anyhow::Result<Duration> {
            match v {
                Some(0) => bail!("server.{name} must be at least 1 second"),
                Some(n) => Ok(Duration::from_secs(n)),
                None => Ok(d),
            }
        };
        let transport = Transport {
            header_timeout: secs(
                file.server.header_timeout_secs,
                td.header_timeout,
                "header_timeout_secs",
            )?,
            body_timeout: secs(
                file.server.body_timeout_secs,
                td.body_timeout,
                "body_timeout_secs",
            )?,
            idle_timeout: secs(
                file.server.idle_timeout_secs,
                td.idle_timeout,
                "idle_timeout_secs",
            )?,
            max_connections: match file.server.max_connections {
                Some(0) => bail!("server.max_connections must be at least 1"),
                Some(n) => n,
                None => td.max_connections,
            },
        };
        let trusted_proxies = file
            .server
            .trusted_proxies
            .unwrap_or_default()
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|e: String| anyhow::anyhow!("server.trusted_proxies: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let metrics = if file.metrics.enabled.unwrap_or(true) {
            let token =
                match (
                    std::env::var("STRONGROOM_METRICS_TOKEN").ok(),
                    &file.metrics.token_file,
                ) {
                    (Some(t), _) => Some(t),
                    (None, Some(f)) => Some(std::fs::read_to_string(f).with_context(|| {
                        format!("reading the metrics token file {}", f.display())
                    })?),
                    (None, None) => None,
                };
            use strongroom_server::routes::MetricsAccess;
            let token = match token.as_deref().map(str::trim) {
                Some("") => bail!("the metrics token is empty"),
                Some(t) => Some(MetricsAccess::token(t)),
                None => None,
            };
            Some(match file.metrics.listen {
                // A listener of its own: its address decides who reaches it
                // (plus the token, if one is set); the API port has none.
                Some(addr) => Metrics {
                    api: MetricsAccess::elsewhere(),
                    listener: Some((addr, token.unwrap_or_else(MetricsAccess::anyone))),
                },
                None => Metrics {
                    api: token.unwrap_or_else(MetricsAccess::loopback),
                    listener: None,
                },
            })
        } else {
            None
        };
        Ok(Config {
            store,
            failed_auth_limit,
            hashing,
            auth_failure_window,
            transport,
            trusted_proxies,
            metrics,
            dek_cache,
            auth_rate_limit,
            checkpoints,
            listen,
            data_dir: if args.dev { None } else { Some(data_dir) },
            tls,
            allow_plain_http: args.allow_plain_http || file.allow_plain_http.unwrap_or(false),
            provider,
            open_signup: args.open_signup || file.auth.open_signup.unwrap_or(false),
            user_token_ttl_secs: ttl,
            json_logs,
            dev: args.dev,
        })
    }
}

fn load_file(explicit: Option<&std::path::Path>) -> anyhow::Result<FileConfig> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let p = PathBuf::from("strongroom.toml");
            if !p.exists() {
                return Ok(FileConfig::default());
            }
            p
        }
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Builds a provider setting from its name, the `[kms]` section and the environment.
fn provider_from(name: &str, kms: FileKms, data_dir: &std::path::Path) -> anyhow::Result<Provider> {
    Ok(match name {
        "memory" => Provider::Memory,
        "file" => Provider::File {
            keyring: kms
                .keyring_file
                .unwrap_or_else(|| data_dir.join("keyring.sealed")),
            root_key_file: kms
                .root_key_file
                .unwrap_or_else(|| data_dir.join("root.key")),
        },
        "pkcs11" => {
            let mut c = match kms.pkcs11 {
                Some(c) => c,
                None => {
                    let label = std::env::var("STRONGROOM_PKCS11_TOKEN_LABEL").map_err(|_| {
                        anyhow::anyhow!("the pkcs11 provider needs [kms.pkcs11] token_label or STRONGROOM_PKCS11_TOKEN_LABEL")
                    })?;
                    strongroom_kms::pkcs11::Pkcs11Config::new(label)
                }
            };
            if let Ok(m) = std::env::var("STRONGROOM_PKCS11_MODULE") {
                c.module = m.into();
            }
            if let Ok(l) = std::env::var("STRONGROOM_PKCS11_TOKEN_LABEL") {
                c.token_label = l;
            }
            if let Ok(p) = std::env::var("STRONGROOM_PKCS11_PIN_FILE") {
                c.pin_file = Some(p.into());
            }
            Provider::Pkcs11(Box::new(c))
        }
        #[cfg(feature = "gcp")]
        "gcp" => Provider::Gcp(Box::new(kms.gcp.ok_or_else(|| {
            anyhow::anyhow!(
                "the gcp provider needs a [kms.gcp] section (see docs/operations/gcp-kms.md)"
            )
        })?)),
        #[cfg(not(feature = "gcp"))]
        "gcp" => {
            bail!("this build of strongroom has no gcp provider: rebuild with the `gcp` feature")
        }
        other => bail!(
            "unknown key provider {other:?}: expected \"file\", \"memory\", \"pkcs11\" or \"gcp\""
        ),
    })
}

/// The provider named `name` (or the configured one) for a data directory,
/// reading the configuration file afresh: for administrative commands.
pub fn resolve_provider(
    name: Option<&str>,
    config: Option<&std::path::Path>,
    data_dir: &std::path::Path,
) -> anyhow::Result<Provider> {
    let file = load_file(config)?;
    let name = name
        .map(str::to_owned)
        .or_else(|| std::env::var("STRONGROOM_KMS_PROVIDER").ok())
        .or(file.kms.provider.clone());
    provider_from(name.as_deref().unwrap_or("file"), file.kms, data_dir)
}

/// The store for an administrative command: a database URL (flag or
/// environment) or the configuration file's `[store]`, else the data
/// directory's SQLite file.
pub fn resolve_store(
    database_url: Option<String>,
    config: Option<&std::path::Path>,
    data_dir: &std::path::Path,
) -> anyhow::Result<crate::store::StoreConfig> {
    let file = load_file(config)?;
    crate::store::StoreConfig::resolve(database_url, file.store, data_dir)
}
