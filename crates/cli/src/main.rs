//! `strongroom`: the server and its administrative commands.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use strongroom::{audit, config, copy, kek, kms_check, serve, store};

/// Strongroom: a self-hostable secrets vault for humans and AI agents.
#[derive(Parser)]
#[command(name = "strongroom", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(config::ServeArgs),
    /// Export or verify the tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Rotate, rewrap or migrate key-encryption keys.
    #[command(subcommand)]
    Kek(kek::KekCommand),
    /// Check the configured key provider with a throwaway key.
    #[command(subcommand)]
    Kms(KmsCommand),
    /// Apply the database schema's migrations now (servers also apply them at start).
    Migrate(MigrateArgs),
    /// Move the data between stores.
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy a SQLite data directory into PostgreSQL (resumable; verified).
    Copy(copy::CopyArgs),
}

#[derive(clap::Args)]
struct MigrateArgs {
    /// The data directory (SQLite).
    #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "./strongroom-data")]
    data_dir: std::path::PathBuf,
    /// A PostgreSQL database instead.
    #[arg(long, env = "STRONGROOM_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Configuration file (its `[store]` section).
    #[arg(long, env = "STRONGROOM_CONFIG")]
    config: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum KmsCommand {
    /// Create, wrap, unwrap, destroy a throwaway KEK and sign with the JWT key.
    Check(kms_check::CheckArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let cfg = config::Config::resolve(args)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(serve::run(cfg))
        }
        Command::Kms(KmsCommand::Check(a)) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(kms_check::run(a))
        }
        Command::Kek(cmd) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(kek::run(cmd))
        }
        Command::Store(StoreCommand::Copy(a)) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(copy::run(a))
        }
        Command::Migrate(a) => {
            let cfg = config::resolve_store(a.database_url, a.config.as_deref(), &a.data_dir)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(store::migrate(&cfg))
        }
        Command::Audit(cmd) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let code = rt.block_on(audit::run(cmd))?;
            std::process::exit(code);
        }
    }
}
