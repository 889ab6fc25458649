//! `agentd admin`: operator commands that act on the database directly (the operator
//! holds its credentials; no API key can do these): worker tokens, and re-sealing every
//! agent's secrets under a new master key.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentd_control::MasterKeys;
use agentd_store::{BlobLocation, S3Connection, Store};
use clap::{Args, Subcommand};

mod limits;

use crate::serve::create_private_dir;
use crate::settings::{DatabaseUrl, Environment, Settings, SettingsError, StoreSettings, absolute};
use crate::{admin_operators, master_key};

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
    /// Agents' secrets at rest.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// A tenant's limits and its own values for them.
    #[command(subcommand)]
    Limits(limits::LimitsCommand),
    /// Operator tokens, for `/v1/admin/*`.
    #[command(subcommand)]
    Operator(admin_operators::OperatorCommand),
    /// Tenants: list, show, suspend, resume.
    #[command(subcommand)]
    Tenants(admin_operators::TenantsCommand),
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-encrypt every secret sealed under the previous master key with the current one,
    /// then list how many secrets each key seals. The current key is AGENTD_MASTER_KEY
    /// (else <data-dir>/master.key); the previous one is AGENTD_PREVIOUS_MASTER_KEY or
    /// --previous-key-file. Without a previous key it only lists. Safe to run again.
    Rotate {
        /// A file holding the previous key (hex or base64), instead of the variable
        #[arg(long)]
        previous_key_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkersCommand {
    /// Create a token for `agentd worker --token`; printed once.
    CreateToken {
        #[arg(long, default_value = "worker")]
        name: String,
    },
    /// Revoke a worker token (`wkt_…`, as `create-token` and `list` show it): a worker
    /// using it is refused from its next request on, and stops.
    Revoke { id: String },
    /// Worker processes seen in the last day: heartbeat, slots, runs in flight.
    List {
        #[arg(long)]
        json: bool,
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
            log_format: crate::settings::LogFormat::Pretty,
            metrics: Default::default(),
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
        AdminCommand::Workers(WorkersCommand::CreateToken { name }) => {
            create_worker_token(&store, &name, &store_settings.database).await
        }
        AdminCommand::Workers(WorkersCommand::Revoke { id }) => revoke_worker_token(&store, &id).await,
        AdminCommand::Secrets(SecretsCommand::Rotate { previous_key_file }) => {
            rotate_secrets(&store, &settings, previous_key_file.as_deref()).await
        }
        AdminCommand::Tenants(admin_operators::TenantsCommand::Create(create)) => tenant_create(&store, &create).await,
        AdminCommand::Limits(command) => limits::run(&store, command).await,
        AdminCommand::Workers(WorkersCommand::List { json }) => {
            let (ops, op) = agentd_control::operators_on_store(store.clone());
            admin_operators::workers_list(&ops, &op, json).await
        }
        AdminCommand::Operator(command) => {
            let (ops, op) = agentd_control::operators_on_store(store.clone());
            admin_operators::operator(&ops, &op, command).await
        }
        AdminCommand::Tenants(command) => {
            let (ops, op) = agentd_control::operators_on_store(store.clone());
            admin_operators::tenants(&ops, &op, command).await
        }
    };
    store.close().await;
    outcome
}

async fn create_worker_token(store: &Store, name: &str, database: &DatabaseUrl) -> ExitCode {
    match agentd_control::worker_token_create(store, name).await {
        Ok(created) => {
            // Which database matters: a token made in another one is refused by the server.
            eprintln!(
                "created worker token {} ({name}) in the database {database:?}; it is shown only this once:",
                created.id
            );
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

async fn revoke_worker_token(store: &Store, id: &str) -> ExitCode {
    match agentd_control::worker_token_revoke(store, id).await {
        Ok(true) => {
            eprintln!("revoked worker token {id}; a worker using it stops at its next request");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("error: no live worker token {id} in this database");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The keys a rotation goes from and to: the current one as `serve` would find it (never
/// made here: a rotation to a key nobody has would lose every secret), the previous one
/// from its variable or a file.
fn rotation_keys(data_dir: &Path, previous_key_file: Option<&Path>) -> Result<MasterKeys, SettingsError> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let current = match master_key::from_vars(&vars, master_key::MASTER_KEY_VAR)? {
        Some(key) => key,
        None => master_key::read_key_file(&master_key::key_file(data_dir))?,
    };
    let previous = match previous_key_file {
        Some(path) => Some(master_key::read_key_file(path)?),
        None => master_key::from_vars(&vars, master_key::PREVIOUS_MASTER_KEY_VAR)?,
    };
    Ok(MasterKeys::new(current, previous))
}

async fn rotate_secrets(store: &Store, data_dir: &Path, previous_key_file: Option<&Path>) -> ExitCode {
    let keys = match rotation_keys(data_dir, previous_key_file) {
        Ok(keys) => keys,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let rotation = match agentd_control::secrets_rotate(store, &keys).await {
        Ok(rotation) => rotation,
        Err(err) => {
            let cause = std::error::Error::source(&err).map(|s| format!(": {s}")).unwrap_or_default();
            eprintln!("error: {err}{cause}");
            return ExitCode::FAILURE;
        }
    };
    let current = keys.current().id();
    match keys.previous() {
        Some(previous) => println!(
            "re-encrypted {} secrets from master key {} to {current} ({} were written anew meanwhile)",
            rotation.resealed,
            previous.id(),
            rotation.changed_meanwhile
        ),
        None => {
            println!("no previous key given (AGENTD_PREVIOUS_MASTER_KEY or --previous-key-file): nothing re-encrypted")
        }
    }
    println!("secrets by master key:");
    for (key_id, count) in &rotation.by_key {
        let note = if key_id == current { " (current)" } else { "" };
        println!("  {key_id}: {count}{note}");
    }
    for secret in &rotation.unopenable {
        eprintln!("error: {secret} is not sealed the way its key id says (altered, or copied from another row)");
    }
    let stranded = rotation.by_key.iter().any(|(key_id, _)| key_id != current);
    if stranded {
        eprintln!("some secrets are still sealed under another key; runs of their agents fail until it is given");
    }
    if stranded || !rotation.unopenable.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

#[derive(Debug, Args)]
pub struct TenantCreateArgs {
    #[arg(long)]
    pub slug: String,
    /// Default: the slug.
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub owner_email: String,
    /// The URL clients reach the API at, for the accept URL.
    #[arg(long, env = "AGENTD_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// Onboarding when signup is closed: a workspace and its owner's invite.
async fn tenant_create(store: &Store, args: &TenantCreateArgs) -> ExitCode {
    use agentd_control::input;
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let parsed = (|| -> Result<_, String> {
        let slug = input::workspace_slug(&args.slug).map_err(|e| e.to_string())?;
        let name =
            input::WorkspaceName::parse(args.name.as_deref().unwrap_or(&args.slug)).map_err(|e| e.to_string())?;
        let email = input::Email::parse(&args.owner_email).map_err(|e| format!("--owner-email: {e}"))?;
        let limits = crate::settings::default_limits(&vars).map_err(|e| e.to_string())?;
        Ok((slug, name, email, limits))
    })();
    let (slug, name, email, limits) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let public_url = args.public_url.as_deref();
    match agentd_control::tenant_create_with_owner_invite(store, name, slug, email, limits, public_url).await {
        Ok(made) => {
            let invite = &made.invite;
            eprintln!(
                "created workspace {} ({}); owner invite {} for {} until {}; the token is shown only this once:",
                made.tenant.slug, made.tenant.id, invite.invite.id, invite.invite.email, invite.invite.expires_at
            );
            println!("{}", invite.token.expose());
            match &invite.accept_url {
                Some(url) => println!("{url}"),
                None => eprintln!("accept it with POST /v1/invites/<token>/accept (set AGENTD_PUBLIC_URL for a URL)"),
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            let cause = std::error::Error::source(&err).map(|s| format!(": {s}")).unwrap_or_default();
            eprintln!("error: {err}{cause}");
            ExitCode::FAILURE
        }
    }
}
