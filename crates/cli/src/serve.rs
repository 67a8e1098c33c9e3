//! `strongroom serve`: wires the store, the key provider, the engine and the
//! HTTP server, and shuts down gracefully on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use strongroom_engine::auth_failures::AuthFailureAggregation;
use strongroom_engine::{Admin, EngineConfig};
use strongroom_kms::root_key::RootKey;
use strongroom_kms::soft::{SealedKeyStore, SoftProvider};
use strongroom_kms::{KeyProvider, Metered};
use strongroom_server::client::TrustedProxies;
use strongroom_server::{AppState, ServerOptions, install_metrics, router_with};
use strongroom_store::SignupGate;

use crate::config::{Config, Provider};
use crate::store::{OpenStore, StoreConfig};
use crate::transport::{
    ConnectionLimit, bound_connections, connection_cap, listener, raise_open_file_limit,
};

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("STRONGROOM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // The PostgreSQL driver logs every statement's parameters at debug level
    // (ciphertexts, key and password hashes, sealed keys): never, whatever
    // STRONGROOM_LOG asks.
    let filter = filter.add_directive(
        "tokio_postgres=info"
            .parse()
            .expect("a valid logging directive"),
    );
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        builder.init();
    }
}

pub async fn run(cfg: Config) -> anyhow::Result<()> {
    init_logging(cfg.json_logs);
    #[cfg(feature = "bench-unaudited")]
    if strongroom_store::bench_unaudited() {
        eprintln!(
            "\n  *** BENCHMARK BUILD: AUDIT RECORDS ARE NOT WRITTEN (STRONGROOM_BENCH_UNAUDITED=1) ***\n"
        );
        tracing::warn!("benchmark build running without an audit log");
    }
    if cfg.tls.is_none() && !cfg.listen.ip().is_loopback() && !cfg.allow_plain_http {
        bail!(
            "refusing to serve plain HTTP on {}: pass --tls-cert/--tls-key, or --allow-plain-http when a TLS proxy sits in front",
            cfg.listen
        );
    }
    if cfg.tls.is_none() && !cfg.listen.ip().is_loopback() {
        tracing::warn!(listen = %cfg.listen, "serving PLAIN HTTP on a non-loopback address: tokens and secrets cross the network unencrypted unless a TLS proxy sits in front");
    }

    // In dev mode the data lives in a temporary directory removed on exit.
    let _dev_dir;
    let data_dir = match &cfg.data_dir {
        Some(d) => d.clone(),
        None => {
            let t = tempfile::Builder::new()
                .prefix("strongroom-dev-")
                .tempdir()?;
            let p = t.path().to_path_buf();
            _dev_dir = t;
            p
        }
    };
    create_private_dir(&data_dir)?;
    if cfg.dev {
        eprintln!(
            "\n  *** DEVELOPMENT MODE ***\n  Keys are held in memory and the database is in {}.\n  EVERYTHING (vaults, secrets, accounts) VANISHES WHEN THE SERVER STOPS.\n",
            data_dir.display()
        );
    }

    // The SQLite file lives in the data directory actually used (dev mode's
    // is temporary); PostgreSQL is wherever its URL points.
    let store_cfg = match &cfg.store {
        StoreConfig::Sqlite(_) => StoreConfig::Sqlite(data_dir.join("strongroom.db")),
        pg => pg.clone(),
    };
    let store = OpenStore::open(&store_cfg, false).await?;
    let mut kms = open_provider(cfg.provider, cfg.dev, store.shared_keyring()).await?;
    if let Some(c) = cfg.dek_cache.clone() {
        tracing::warn!(
            ttl_secs = c.ttl.as_secs(),
            max_entries = c.max_entries,
            max_uses = c.max_uses,
            "the DEK cache is on: unwrapped DEKs stay in memory for up to its TTL (see docs/operations/gcp-kms.md)"
        );
        kms = Arc::new(strongroom_kms::cache::DekCache::new(Box::new(kms), c)?);
    }
    // The binary keeps the administrative handle; the HTTP adapter gets the
    // engine alone.
    let admin = Admin::new(
        store.store(),
        kms.clone(),
        EngineConfig {
            user_token_ttl: Duration::from_secs(cfg.user_token_ttl_secs),
            signup: if cfg.open_signup {
                SignupGate::Open
            } else {
                SignupGate::FirstOnly
            },
            hashing: cfg.hashing,
            auth_failures: AuthFailureAggregation {
                window: cfg.auth_failure_window,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .context("starting the engine")?;
    let engine = admin.engine().clone();
    let checkpointer = admin.spawn_checkpointer(cfg.checkpoints, store.audit_appends());
    let failure_flusher = admin.spawn_auth_failure_flusher();
    let app = router_with(
        AppState {
            engine: engine.clone(),
            metrics: cfg.metrics.as_ref().and_then(|_| install_metrics()),
        },
        ServerOptions {
            auth_limit: cfg.auth_rate_limit,
            failed_auth_limit: cfg.failed_auth_limit,
            trusted_proxies: TrustedProxies::new(cfg.trusted_proxies.clone()),
            metrics_access: cfg
                .metrics
                .as_ref()
                .map(|m| m.api.clone())
                .unwrap_or_default(),
            body_timeout: Some(cfg.transport.body_timeout),
        },
    )
    .into_make_service_with_connect_info::<SocketAddr>();
    let metrics_server = match cfg.metrics.as_ref().and_then(|m| m.listener.clone()) {
        Some((addr, access)) => Some(
            serve_metrics(
                addr,
                AppState {
                    engine: engine.clone(),
                    metrics: install_metrics(),
                },
                access,
            )
            .await?,
        ),
        None => None,
    };
    let limits = cfg.transport;
    raise_open_file_limit();
    let max_connections = connection_cap(limits.max_connections);
    let acceptor = ConnectionLimit::new(max_connections);

    let handle = axum_server::Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone()));
    let scheme = if cfg.tls.is_some() { "https" } else { "http" };
    {
        // Log the bound address (it differs from --listen when the port is 0).
        let handle = handle.clone();
        let provider = kms.name();
        let data_dir = data_dir.display().to_string();
        let store = store_cfg.describe();
        tokio::spawn(async move {
            if let Some(addr) = handle.listening().await {
                tracing::info!(
                    provider,
                    data_dir,
                    store,
                    "strongroom listening on {scheme}://{addr}"
                );
            }
        });
    }
    match &cfg.tls {
        Some((cert, key)) => {
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .context("loading the TLS certificate and key")?;
            let tls = axum_server::tls_rustls::RustlsAcceptor::new(tls)
                .handshake_timeout(limits.header_timeout)
                .acceptor(acceptor);
            let mut server = axum_server::from_tcp(
                listener(cfg.listen).with_context(|| format!("listening on {}", cfg.listen))?,
            )?
            .acceptor(tls)
            .first_request_timeout(limits.header_timeout);
            bound_connections(server.http_builder(), limits);
            server.handle(handle).serve(app).await?;
        }
        None => {
            let mut server = axum_server::from_tcp(
                listener(cfg.listen).with_context(|| format!("listening on {}", cfg.listen))?,
            )?
            .acceptor(acceptor)
            .first_request_timeout(limits.header_timeout);
            bound_connections(server.http_builder(), limits);
            server.handle(handle).serve(app).await?;
        }
    }
    if let Some(h) = metrics_server {
        h.graceful_shutdown(Some(Duration::from_secs(1)));
    }
    // Write the aggregated failure records and seal the log's current heads
    // before stopping.
    failure_flusher.abort();
    admin.flush_auth_failures().await;
    checkpointer.abort();
    if let Err(e) = admin.checkpoint_all().await {
        tracing::warn!(error = %e.chain(), "could not sign final audit checkpoints");
    }
    store.close().await;
    tracing::info!("strongroom stopped");
    Ok(())
}

/// Serves `/metrics` alone on `addr`; the handle stops it.
async fn serve_metrics(
    addr: SocketAddr,
    state: AppState,
    access: strongroom_server::routes::MetricsAccess,
) -> anyhow::Result<axum_server::Handle<SocketAddr>> {
    let app = strongroom_server::metrics_router(state, access)
        .into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let server = axum_server::bind(addr)
        .handle(handle.clone())
        .first_request_timeout(Duration::from_secs(10));
    tokio::spawn(async move {
        if let Err(e) = server.serve(app).await {
            tracing::error!(error = %e, %addr, "the metrics listener stopped");
        }
    });
    match handle.listening().await {
        // Not "listening on": that line announces the API's address.
        Some(bound) => tracing::info!("metrics served at http://{bound}/metrics"),
        None => bail!("could not listen on {addr} for metrics"),
    }
    Ok(handle)
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    } else if let Ok(m) = std::fs::metadata(dir)
        && m.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(dir = %dir.display(), "the data directory is accessible to group or others; chmod 700 it");
    }
    Ok(())
}

async fn shutdown_on_signal(handle: axum_server::Handle<SocketAddr>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
    handle.graceful_shutdown(Some(Duration::from_secs(30)));
}

/// Opens a key provider, wrapped for metrics.
/// With `shared_keyring` (nodes sharing a PostgreSQL database), the `file`
/// provider keeps its keyring there, sealed by the root key, instead of in
/// the data directory: every node then has the same keys and no node needs a
/// shared file system.
pub async fn open_provider(
    provider: Provider,
    dev: bool,
    shared_keyring: Option<Arc<dyn SealedKeyStore>>,
) -> anyhow::Result<Arc<dyn KeyProvider>> {
    Ok(match provider {
        Provider::Memory => {
            if !dev {
                tracing::warn!(
                    "the memory key provider loses every key on restart: stored secrets become unreadable"
                );
            }
            Arc::new(Metered(Box::new(SoftProvider::memory()?)))
        }
        Provider::File {
            keyring,
            root_key_file,
        } => {
            let env = std::env::var("STRONGROOM_ROOT_KEY").ok();
            let (root, created) = RootKey::load_or_create(env.as_deref(), &root_key_file)?;
            if created {
                tracing::warn!(file = %root_key_file.display(), "generated a new root key; back it up and keep it apart from the data directory");
            }
            match shared_keyring {
                Some(store) => Arc::new(Metered(Box::new(
                    SoftProvider::open_shared(store, root)
                        .await
                        .context("opening the keyring in the database")?,
                ))),
                None => Arc::new(Metered(Box::new(SoftProvider::open_file(keyring, root)?))),
            }
        }
        Provider::Pkcs11(c) => {
            let p = tokio::task::spawn_blocking(move || {
                strongroom_kms::pkcs11::Pkcs11Provider::open(*c)
            })
            .await?
            .context("opening the PKCS#11 token")?;
            Arc::new(Metered(Box::new(p)))
        }
        #[cfg(feature = "gcp")]
        Provider::Gcp(c) => {
            let p = strongroom_kms::gcp::GcpKmsProvider::connect(*c)
                .await
                .context("connecting to Cloud KMS")?;
            Arc::new(Metered(Box::new(p)))
        }
    })
}
