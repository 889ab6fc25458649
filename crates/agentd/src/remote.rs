//! `agentd worker`: a worker on another machine. It pulls runs from a server over HTTP
//! with a worker token, runs them in its own sandbox, and holds no database credentials.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agentd_client::Client;
use agentd_core::Secret;
use agentd_worker::{ApiAddress, RunSource, Worker};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::logging;
use crate::serve::{check_sandbox, create_private_dir, wait_for_signal};
use crate::settings::{
    EgressArgs, Environment, LogArgs, MetricsSettings, Settings, SettingsError, WorkerSettings, WorkerSource, absolute,
};

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
    #[command(flatten)]
    pub log: LogArgs,
    /// Serve this worker's Prometheus metrics at `http://ADDR/metrics`.
    #[arg(long, env = "AGENTD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// A bearer token the metrics need; without one they are open.
    #[arg(long, env = "AGENTD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

impl WorkerArgs {
    /// The settings of `agentd worker`.
    pub fn settings(self) -> Result<Settings, SettingsError> {
        let worker = WorkerSettings {
            source: WorkerSource::Remote { server: self.server, token: Secret::new(self.token) },
            slots: self.slots,
            lease: Duration::from_secs(self.lease_s.max(1)),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_s),
            egress: self.egress.settings(),
        };
        Ok(Settings {
            env: self.env,
            data_dir: absolute("the data dir", &self.data_dir)?,
            log_format: self.log.format(self.env),
            metrics: MetricsSettings {
                token: self.metrics_token.filter(|t| !t.is_empty()).map(Secret::new),
                listen: self.metrics_listen,
            },
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
    let _log = logging::init(settings.log_format);
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
    // Runs reach the API the way this worker does.
    let api = api_address_of_url(server)?;
    let worker = Worker::new(RunSource::Remote { client }, worker_config(&settings, worker_settings, api)?)?;
    check_sandbox(&worker, settings.env)?;
    let shutdown = CancellationToken::new();
    if let Some(listen) = settings.metrics.listen {
        serve_metrics(listen, &settings.metrics, shutdown.clone()).await?;
    }
    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: runs in flight go back to the queue");
        stop.cancel();
    });
    tracing::info!(server = %server, "agentd worker pulling work");
    match worker.run(shutdown).await {
        agentd_worker::Stopped::Shutdown => Ok(()),
        agentd_worker::Stopped::TokenRefused => Err(format!(
            "{server} refuses this worker's token (revoked or unknown); make a new one with \
             `agentd admin workers create-token`"
        )
        .into()),
    }
}

/// Serves this process's `/metrics` at `listen` until `shutdown`.
async fn serve_metrics(
    listen: SocketAddr,
    metrics: &MetricsSettings,
    shutdown: CancellationToken,
) -> Result<(), Box<dyn std::error::Error>> {
    let exporter = agentd_api::MetricsExporter::install(metrics.token.as_ref())?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!("worker metrics on http://{}/metrics", listener.local_addr()?);
    tokio::spawn(async move {
        let served = axum::serve(listener, exporter.router())
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "the metrics listener stopped");
        }
    });
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into())
}

/// The API at a server URL (`http(s)://host[:port][/prefix]`), as a run's host forward
/// reaches it.
pub fn api_address_of_url(server: &str) -> Result<ApiAddress, String> {
    let url = reqwest::Url::parse(server).map_err(|e| format!("--server {server}: {e}"))?;
    let tls = match url.scheme() {
        "http" => false,
        "https" => true,
        other => return Err(format!("--server {server}: the scheme must be http or https, not {other}")),
    };
    // An IPv6 literal comes in brackets, which a socket address does not take.
    let host = match url.host_str() {
        Some(host) => host.trim_start_matches('[').trim_end_matches(']').to_owned(),
        None => return Err(format!("--server {server}: the URL has no host")),
    };
    let port = url.port_or_known_default().ok_or_else(|| format!("--server {server}: the URL has no port"))?;
    let path_prefix = url.path().trim_end_matches('/').to_owned();
    Ok(ApiAddress { host, port, tls, path_prefix })
}

/// The API a server bound, as its own worker's runs reach it: an unspecified address
/// (`0.0.0.0`, `[::]`) is reached on loopback.
pub fn api_address_of_listener(addr: SocketAddr) -> ApiAddress {
    let host = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
        IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.to_string(),
        ip => ip.to_string(),
    };
    ApiAddress { host, port: addr.port(), tls: false, path_prefix: String::new() }
}

/// The worker crate's settings for a worker of this process; `api` is where its runs
/// reach the API.
pub fn worker_config(
    settings: &Settings,
    worker: &WorkerSettings,
    api: ApiAddress,
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
        api,
        sandbox_init: std::env::current_exe()?,
        shutdown_grace: worker.shutdown_grace,
        egress: worker.egress.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_gives_the_address_its_runs_reach() {
        let api = api_address_of_url("https://api.example.com/agentd/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (api.host.as_str(), api.port, api.tls, api.path_prefix.as_str()),
            ("api.example.com", 443, true, "/agentd")
        );
        let api = api_address_of_url("http://[::1]:8080").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((api.host.as_str(), api.port, api.tls, api.path_prefix.as_str()), ("::1", 8080, false, ""));
        assert!(api_address_of_url("ftp://example.com").is_err());
    }

    #[test]
    fn a_server_bound_everywhere_is_reached_on_loopback() {
        let of = |addr: &str| api_address_of_listener(addr.parse().unwrap_or_else(|e| panic!("{e}"))).host;
        assert_eq!(of("0.0.0.0:8080"), "127.0.0.1");
        assert_eq!(of("[::]:8080"), "::1");
        assert_eq!(of("10.1.2.3:8080"), "10.1.2.3");
    }
}
