//! `agentd worker`: a worker on another machine. It pulls runs from a server over HTTP
//! with a worker token, runs them in its own sandbox, and holds no database credentials.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agentd_client::Client;
use agentd_worker::{RunSource, Worker, WorkerSettings};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::serve::{check_sandbox, init_tracing, wait_for_signal};
use crate::settings::{EgressArgs, Environment};

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

pub async fn run(args: WorkerArgs) -> ExitCode {
    init_tracing(args.env == Environment::Production);
    match work(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "agentd worker stopped");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn work(args: WorkerArgs) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::new(&args.server)?.with_token(args.token.clone());
    let settings = WorkerSettings {
        data_dir: args.data_dir.clone(),
        slots: args.slots,
        lease: Duration::from_secs(args.lease_s.max(1)),
        worker_id: format!("{}-{}", hostname(), uuid::Uuid::now_v7().simple()),
        api_url: args.public_url.clone().unwrap_or_else(|| args.server.clone()),
        sandbox_init: std::env::current_exe()?,
        shutdown_grace: Duration::from_secs(args.shutdown_grace_s),
        egress: args.egress.settings(),
    };
    std::fs::create_dir_all(&args.data_dir)?;
    let worker = Worker::new(RunSource::Remote { client }, settings)?;
    check_sandbox(&worker, args.env)?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: runs in flight go back to the queue");
        stop.cancel();
    });
    tracing::info!(server = %args.server, "agentd worker pulling work");
    worker.run(shutdown).await;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into())
}
