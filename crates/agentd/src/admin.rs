//! `agentd admin`: operator commands that act on the database directly (the operator
//! holds its credentials; no API key can do these).

use std::path::PathBuf;
use std::process::ExitCode;

use agentd_store::{Store, hash_secret};
use clap::{Args, Subcommand};
use rand::Rng;
use rand::distr::Alphanumeric;

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Database: `sqlite://PATH` or `postgres://…`; default SQLite under --data-dir.
    #[arg(long, env = "AGENTD_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    #[arg(long, env = "AGENTD_DATA_DIR", default_value = "./agentd-data", global = true)]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Remote workers.
    #[command(subcommand)]
    Workers(WorkersCommand),
}

#[derive(Debug, Subcommand)]
pub enum WorkersCommand {
    /// Create a token for `agentd worker --token`; printed once.
    CreateToken {
        #[arg(long, default_value = "worker")]
        name: String,
    },
}

pub async fn run(args: AdminArgs) -> ExitCode {
    let url =
        args.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", args.data_dir.join("agentd.db").display()));
    if args.database_url.is_none()
        && let Err(err) = std::fs::create_dir_all(&args.data_dir)
    {
        eprintln!("error: cannot create {}: {err}", args.data_dir.display());
        return ExitCode::FAILURE;
    }
    let store = match Store::open(&url).await {
        Ok(store) => store,
        Err(err) => {
            eprintln!("error: cannot open the database: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match args.command {
        AdminCommand::Workers(WorkersCommand::CreateToken { name }) => create_worker_token(&store, &name).await,
    };
    store.close().await;
    outcome
}

async fn create_worker_token(store: &Store, name: &str) -> ExitCode {
    let secret: String = rand::rng().sample_iter(&Alphanumeric).take(40).map(char::from).collect();
    let token = format!("agw_{secret}");
    match store.worker_token_create_unscoped(name, &hash_secret(&token)).await {
        Ok(id) => {
            eprintln!("created worker token {id} ({name}); it is shown only this once:");
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
