//! `strongroom`: the server and its administrative commands.
#![forbid(unsafe_code)]

mod config;
mod serve;

use clap::{Parser, Subcommand};

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
    }
}
