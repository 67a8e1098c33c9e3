//! Which database: the embedded SQLite file in the data directory (the
//! default), or PostgreSQL for many nodes (`[store] backend = "postgres"`,
//! `url` or `STRONGROOM_DATABASE_URL`; docs/operations/postgres.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use async_trait::async_trait;
use serde::Deserialize;
use strongroom_kms::KmsError;
use strongroom_kms::soft::SealedKeyStore;
use strongroom_store::sqlite::SqliteStore;
use strongroom_store::{AuditAppendSignal, Store};
use strongroom_store_postgres::{PgOptions, PgStore};

/// `[store]` in the configuration file.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileStore {
    /// `sqlite` (default) or `postgres`.
    pub backend: Option<String>,
    /// The PostgreSQL URL (`STRONGROOM_DATABASE_URL` or `--database-url` win).
    pub url: Option<String>,
    /// Connections per node (default 16).
    pub pool_size: Option<usize>,
    /// PEM file of the CAs that may sign the database's TLS certificate
    /// (default: the system's roots).
    pub ca_file: Option<PathBuf>,
    /// Seconds to wait for a database connection (default 5).
    pub connect_timeout_secs: Option<u64>,
}

/// The resolved choice.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// The SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PgOptions),
}

impl StoreConfig {
    /// From the flag or environment URL, the file's `[store]` and the data
    /// directory. A URL with no backend named means PostgreSQL.
    pub fn resolve(
        url: Option<String>,
        file: FileStore,
        data_dir: &Path,
    ) -> anyhow::Result<StoreConfig> {
        let url = url.or(file.url);
        let backend = file
            .backend
            .unwrap_or_else(|| if url.is_some() { "postgres" } else { "sqlite" }.into());
        match backend.as_str() {
            "sqlite" => {
                if url.is_some() {
                    bail!(
                        "a database URL is set but [store] backend = \"sqlite\": remove one of them"
                    );
                }
                Ok(StoreConfig::Sqlite(data_dir.join("strongroom.db")))
            }
            "postgres" => {
                let Some(url) = url else {
                    bail!(
                        "[store] backend = \"postgres\" needs a URL: [store] url, STRONGROOM_DATABASE_URL or --database-url"
                    );
                };
                let mut o = PgOptions::new(url);
                if let Some(n) = file.pool_size {
                    if !(2..=1000).contains(&n) {
                        bail!("store.pool_size must be between 2 and 1000");
                    }
                    o.pool_size = n;
                }
                if let Some(s) = file.connect_timeout_secs {
                    if !(1..=300).contains(&s) {
                        bail!("store.connect_timeout_secs must be between 1 and 300");
                    }
                    o.connect_timeout = Duration::from_secs(s);
                }
                o.ca_file = file.ca_file;
                Ok(StoreConfig::Postgres(o))
            }
            other => bail!("unknown store backend {other:?}: expected \"sqlite\" or \"postgres\""),
        }
    }

    /// Where the data is, for the log (never a password).
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::Sqlite(p) => format!("sqlite {}", p.display()),
            StoreConfig::Postgres(o) => format!("{o:?}"),
        }
    }
}

/// An open store, whichever back-end.
pub enum OpenStore {
    /// SQLite.
    Sqlite(Arc<SqliteStore>),
    /// PostgreSQL.
    Postgres(Arc<PgStore>),
}

impl OpenStore {
    /// Opens (and migrates) the configured store. `must_exist`: refuse to
    /// create a SQLite file (administrative commands on a data directory).
    pub async fn open(cfg: &StoreConfig, must_exist: bool) -> anyhow::Result<OpenStore> {
        Ok(match cfg {
            StoreConfig::Sqlite(path) => {
                if must_exist && !path.exists() {
                    bail!("no database at {}", path.display());
                }
                OpenStore::Sqlite(Arc::new(
                    SqliteStore::open(path)
                        .await
                        .context("opening the database")?,
                ))
            }
            StoreConfig::Postgres(o) => OpenStore::Postgres(Arc::new(
                PgStore::connect(o)
                    .await
                    .context("connecting to PostgreSQL")?,
            )),
        })
    }

    /// The store, for the engine.
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            OpenStore::Sqlite(s) => s.clone(),
            OpenStore::Postgres(s) => s.clone(),
        }
    }

    /// The count of audit events this handle commits.
    pub fn audit_appends(&self) -> AuditAppendSignal {
        match self {
            OpenStore::Sqlite(s) => s.audit_appends(),
            OpenStore::Postgres(s) => s.audit_appends(),
        }
    }

    /// Where the `file` provider keeps its keyring when nodes share this
    /// store: in the database (PostgreSQL), never in one node's directory.
    pub fn shared_keyring(&self) -> Option<Arc<dyn SealedKeyStore>> {
        match self {
            OpenStore::Sqlite(_) => None,
            OpenStore::Postgres(s) => Some(Arc::new(DbKeyring(s.keyring()))),
        }
    }

    /// Finishes pending work and closes.
    pub async fn close(&self) {
        match self {
            OpenStore::Sqlite(s) => s.close().await,
            OpenStore::Postgres(s) => s.close().await,
        }
    }
}

/// `strongroom migrate`: applies the schema's migrations and says what it did.
pub async fn migrate(cfg: &StoreConfig) -> anyhow::Result<()> {
    match cfg {
        StoreConfig::Sqlite(path) => {
            // Opening a SQLite store migrates it (one process owns the file).
            let s = SqliteStore::open(path)
                .await
                .context("opening the database")?;
            s.close().await;
            println!("{}: schema up to date", path.display());
        }
        StoreConfig::Postgres(o) => {
            let r = strongroom_store_postgres::migrate_database(o)
                .await
                .context("migrating the PostgreSQL database")?;
            if r.from == r.to {
                println!("schema up to date (version {})", r.to);
            } else {
                println!("schema migrated from version {} to {}", r.from, r.to);
            }
        }
    }
    Ok(())
}

/// The database's `keyring` table as the soft provider's [`SealedKeyStore`].
struct DbKeyring(strongroom_store_postgres::PgKeyring);

fn keyring_err(e: strongroom_store::StoreError) -> KmsError {
    KmsError::Unavailable(strongroom_kms::Reason::because(
        "the keyring in the database",
        e,
    ))
}

#[async_trait]
impl SealedKeyStore for DbKeyring {
    async fn entries(&self) -> Result<Vec<(String, Vec<u8>)>, KmsError> {
        self.0.entries().await.map_err(keyring_err)
    }
    async fn insert(&self, name: &str, sealed: &[u8]) -> Result<bool, KmsError> {
        self.0.insert(name, sealed).await.map_err(keyring_err)
    }
    async fn remove_prefix(&self, prefix: &str) -> Result<(), KmsError> {
        self.0.remove_prefix(prefix).await.map_err(keyring_err)
    }
}
