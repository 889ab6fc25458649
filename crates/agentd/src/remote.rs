//! `agentd worker`: a worker on another machine. It pulls runs from a server over HTTP
//! with a worker token, runs them in its own sandbox, and holds no database credentials.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agentd_client::Client;
use agentd_core::Secret;
use agentd_worker::{RunSource, Worker};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::logging;
use crate::serve::{check_sandbox, create_private_dir, wait_for_signal};
use crate::settings::{EgressArgs, Environment, Settings, SettingsError, WorkerSettings, WorkerSource, absolute};

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The server's base URL.
    #[arg(long, env = "AGENTD_SERVER")]
    pub server: String,
    /// A worker token from `agentd admin workers create-token`.
    #[arg(long, env = "AGENTD_WORKER_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Runs executed at once.
    #[arg(long, env = "AGENTD_WORKER_SLOTS", default_value_t = 4)]
    pub slots: usize,
    /// Where unpacked bundles and run scratch space live.
    #[arg(long, env = "AGENTD_DATA_DIR", default_value = "./agentd-worker-data")]
    pub data_dir: PathBuf,
    /// Seconds a claimed run stays leased without a heartbeat.
    #[arg(long, env = "AGENTD_LEASE_S", default_value_t = 30)]
    pub lease_s: u64,
    /// On SIGTERM, seconds runs in flight may go on before they are stopped and handed
    /// back to the queue.
    #[arg(long, env = "AGENTD_SHUTDOWN_GRACE_S", default_value_t = 30)]
    pub shutdown_grace_s: u64,
    /// `production` refuses to start without the full sandbox.
    #[arg(long, env = "AGENTD_ENV", value_enum, default_value = "development")]
    pub env: Environment,
    #[command(flatten)]
    pub egress: EgressArgs,
    /// The URL agents use to reach the API; default: --server.
    #[arg(long, env = "AGENTD_PUBLIC_URL")]
    pub public_url: Option<String>,
}

impl WorkerArgs {
    /// The settings of `agentd worker`.
    pub fn settings(self) -> Result<Settings, SettingsError> {
        let worker = WorkerSettings {
            public_url: self.public_url.clone().or_else(|| Some(self.server.clone())),
            source: WorkerSource::Remote { server: self.server, token: Secret::new(self.token) },
            slots: self.slots,
            lease: Duration::from_secs(self.lease_s.max(1)),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_s),
            egress: self.egress.settings(),
        };
        Ok(Settings {
            env: self.env,
            data_dir: absolute("the data dir", &self.data_dir)?,
            log_json: self.env == Environment::Production,
            store: None,
            server: None,
            worker: Some(worker),
        })
    }
}

pub async fn run(args: WorkerArgs) -> ExitCode {
    let settings = match args.settings() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    logging::init(settings.log_json);
    match work(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "agentd worker stopped");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn work(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let Some(worker_settings) = &settings.worker else { return Err("no worker settings".into()) };
    let WorkerSource::Remote { server, token } = &worker_settings.source else {
        return Err("agentd worker pulls from a server".into());
    };
    let client = Client::new(server)?.with_token(token.expose());
    create_private_dir(&settings.data_dir)?;
    let worker = Worker::new(RunSource::Remote { client }, worker_config(&settings, worker_settings, server.clone())?)?;
    check_sandbox(&worker, settings.env)?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: runs in flight go back to the queue");
        stop.cancel();
    });
    tracing::info!(server = %server, "agentd worker pulling work");
    worker.run(shutdown).await;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into())
}

/// The worker crate's settings for a worker of this process; `api_url` is what agents
/// reach the API at when no public URL is set.
pub fn worker_config(
    settings: &Settings,
    worker: &WorkerSettings,
    api_url: String,
) -> Result<agentd_worker::WorkerSettings, std::io::Error> {
    let name = match worker.source {
        WorkerSource::Embedded => "embedded".to_owned(),
        WorkerSource::Remote { .. } => hostname(),
    };
    Ok(agentd_worker::WorkerSettings {
        data_dir: settings.data_dir.clone(),
        slots: worker.slots,
        lease: worker.lease,
        worker_id: format!("{name}-{}", uuid::Uuid::now_v7().simple()),
        api_url: worker.public_url.clone().unwrap_or(api_url),
        sandbox_init: std::env::current_exe()?,
        shutdown_grace: worker.shutdown_grace,
        egress: worker.egress.clone(),
    })
}
