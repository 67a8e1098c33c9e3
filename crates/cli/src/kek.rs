//! `strongroom kek …`: KEK rotation and rewrap through the running server's
//! API, and offline migration of every KEK to another key provider.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use strongroom_engine::keys::Migration;

use crate::config::{resolve_provider, resolve_store};
use crate::serve::open_provider;
use crate::store::OpenStore;

#[derive(Subcommand)]
pub enum KekCommand {
    /// Add a KEK version for a vault; new writes use it at once.
    Rotate(RemoteArgs),
    /// Rewrap stored DEKs under the newest KEK version (resumable; never touches ciphertexts).
    Rewrap(RemoteArgs),
    /// Move every vault's KEK to another key provider (server stopped; resumable).
    Migrate(MigrateArgs),
}

#[derive(Args)]
pub struct RemoteArgs {
    /// The vault (for `rewrap`: default every vault you may manage).
    #[arg(long)]
    vault: Option<String>,
    /// The server.
    #[arg(long, env = "STRONGROOM_URL", default_value = "http://127.0.0.1:8443")]
    server: String,
    /// A bearer token or personal `1ck_` key of the vault's creator or an org owner.
    #[arg(long, env = "STRONGROOM_TOKEN", hide_env_values = true)]
    token: String,
    /// DEKs per request.
    #[arg(long, default_value_t = 200)]
    batch: u32,
}

#[derive(Args)]
pub struct MigrateArgs {
    /// The provider to move to: `file` or `pkcs11` (settings from the config file and environment).
    #[arg(long)]
    to: String,
    /// The provider the keys are in now (default: the configured one).
    #[arg(long)]
    from: Option<String>,
    /// The data directory.
    #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "./strongroom-data")]
    data_dir: PathBuf,
    /// A PostgreSQL database instead of the data directory's SQLite file.
    #[arg(long, env = "STRONGROOM_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Configuration file.
    #[arg(long, env = "STRONGROOM_CONFIG")]
    config: Option<PathBuf>,
}

fn progress(total: u64, what: &str) -> ProgressBar {
    if std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        pb.set_message(what.to_owned());
        pb
    } else {
        ProgressBar::hidden()
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn send(&self, req: reqwest::RequestBuilder, path: &str) -> anyhow::Result<Value> {
        let r = req.bearer_auth(&self.token).send().await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{path}: HTTP {status}: {}",
                v["detail"].as_str().unwrap_or("no detail")
            );
        }
        Ok(v)
    }
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.trim_end_matches('/'), path)
    }
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(self.http.post(self.url(path)).json(&body), path)
            .await
    }
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(self.url(path)), path).await
    }
}

pub async fn run(cmd: KekCommand) -> anyhow::Result<()> {
    match cmd {
        KekCommand::Rotate(a) => {
            let vault = a.vault.clone().context("--vault is required")?;
            let c = Client {
                http: reqwest::Client::new(),
                base: a.server,
                token: a.token,
            };
            let r = c
                .post(&format!("/v1/vaults/{vault}/kek/rotate"), json!({}))
                .await?;
            println!(
                "vault {vault}: KEK version {} is now current; {} DEKs are under older versions (run `strongroom kek rewrap --vault {vault}`)",
                r["kek_version"], r["remaining"]
            );
            Ok(())
        }
        KekCommand::Rewrap(a) => rewrap(a).await,
        KekCommand::Migrate(a) => migrate(a).await,
    }
}

async fn rewrap(a: RemoteArgs) -> anyhow::Result<()> {
    let c = Client {
        http: reqwest::Client::new(),
        base: a.server.clone(),
        token: a.token.clone(),
    };
    let vaults: Vec<String> = match &a.vault {
        Some(v) => vec![v.clone()],
        None => c.get("/v1/vaults").await?["vaults"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|v| v["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let (mut total, mut skipped) = (0u64, 0u64);
    for vault in vaults {
        let mut r = match c
            .post(
                &format!("/v1/vaults/{vault}/kek/rewrap"),
                json!({"batch_size": 1}),
            )
            .await
        {
            Ok(r) => r,
            Err(e) if a.vault.is_none() => {
                // Vaults the caller may see but not manage.
                eprintln!("skipping vault {vault}: {e}");
                skipped += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut done = r["rewrapped"].as_u64().unwrap_or(0);
        let pb = progress(
            done + r["remaining"].as_u64().unwrap_or(0),
            &format!("vault {vault}"),
        );
        pb.set_position(done);
        while r["remaining"].as_u64().unwrap_or(0) > 0 {
            r = c
                .post(
                    &format!("/v1/vaults/{vault}/kek/rewrap"),
                    json!({"batch_size": a.batch}),
                )
                .await?;
            let n = r["rewrapped"].as_u64().unwrap_or(0);
            done += n;
            pb.inc(n);
            if n == 0 && r["remaining"].as_u64().unwrap_or(0) > 0 {
                bail!(
                    "vault {vault}: no progress ({} DEKs remain); is another rewrap running?",
                    r["remaining"]
                );
            }
        }
        pb.finish_and_clear();
        println!(
            "vault {vault}: {done} DEKs rewrapped; all under KEK version {}",
            r["kek_version"]
        );
        total += done;
    }
    println!(
        "rewrap complete: {total} DEKs rewrapped{}",
        if skipped > 0 {
            format!(", {skipped} vaults skipped")
        } else {
            String::new()
        }
    );
    Ok(())
}

async fn migrate(a: MigrateArgs) -> anyhow::Result<()> {
    let cfg = resolve_store(a.database_url.clone(), a.config.as_deref(), &a.data_dir)?;
    let opened = OpenStore::open(&cfg, true).await?;
    let store = opened.store();
    let source = open_provider(
        resolve_provider(a.from.as_deref(), a.config.as_deref(), &a.data_dir)?,
        false,
        opened.shared_keyring(),
    )
    .await?;
    let target = open_provider(
        resolve_provider(Some(&a.to), a.config.as_deref(), &a.data_dir)?,
        false,
        opened.shared_keyring(),
    )
    .await?;
    if source.name() == "memory" || target.name() == "memory" {
        bail!("the memory provider holds no persistent keys to migrate from or to");
    }
    let m = Migration {
        store: &*store,
        source: &*source,
        target: &*target,
    };
    let pb = progress(
        m.pending().await?,
        &format!("{} → {}", source.name(), target.name()),
    );
    let summary = m.run(|n| pb.inc(n)).await?;
    pb.finish_and_clear();
    opened.close().await;
    println!(
        "migration to {} complete: {} vaults moved ({} DEKs rewrapped), {} already there. Now set [kms] provider = \"{}\".",
        target.name(),
        summary.vaults,
        summary.rewrapped,
        summary.already,
        target.name()
    );
    Ok(())
}
