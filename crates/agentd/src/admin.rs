//! `agentd admin`: operator commands that act on the database directly (the operator
//! holds its credentials; no API key can do these).

use std::path::PathBuf;
use std::process::ExitCode;

use agentd_store::{BlobLocation, S3Connection, Store};
use clap::{Args, Subcommand};

use crate::serve::create_private_dir;
use crate::settings::{DatabaseUrl, Environment, Settings, SettingsError, StoreSettings, absolute};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Database: `sqlite://PATH` or `postgres://…`; default SQLite under --data-dir.
    #[arg(long, env = "AGENTD_DATABASE_URL", global = true, hide_env_values = true)]
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

impl AdminArgs {
    /// The settings of `agentd admin`: the store alone.
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        let data_dir = absolute("the data dir", &self.data_dir)?;
        let database = match &self.database_url {
            Some(url) => DatabaseUrl::new(url.clone()),
            None => DatabaseUrl::sqlite_under(&data_dir),
        };
        let blobs = BlobLocation::Local(data_dir.join("blobs"));
        Ok(Settings {
            env: Environment::Development,
            data_dir,
            log_json: false,
            store: Some(StoreSettings { database, blobs, s3: S3Connection::default() }),
            server: None,
            worker: None,
        })
    }
}

pub async fn run(args: AdminArgs) -> ExitCode {
    let (settings, store_settings) = match args.settings() {
        Ok(Settings { store: Some(store), data_dir, .. }) => (data_dir, store),
        Ok(_) => return ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    if args.database_url.is_none()
        && let Err(err) = create_private_dir(&settings)
    {
        eprintln!("error: cannot create {}: {err}", settings.display());
        return ExitCode::FAILURE;
    }
    let store = match Store::open(store_settings.database.expose()).await {
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
    match agentd_control::worker_token_create(store, name).await {
        Ok(created) => {
            eprintln!("created worker token {} ({name}); it is shown only this once:", created.id);
            println!("{}", created.token.expose());
            ExitCode::SUCCESS
        }
        Err(err) => {
            let cause = std::error::Error::source(&err).map(|s| format!(": {s}")).unwrap_or_default();
            eprintln!("error: {err}{cause}");
            ExitCode::FAILURE
        }
    }
}
