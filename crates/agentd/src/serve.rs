//! `agentd serve`: opens the store, starts the in-process worker and the HTTP API, and
//! stops both cleanly on SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use agentd_api::{ApiSettings, AppState};
use agentd_store::{BlobLocation, Blobs, RetryPolicy, Store};
use agentd_worker::{RunSource, Worker, WorkerSettings, reap_expired_leases};
use tokio_util::sync::CancellationToken;

use crate::settings::{self, Environment, ServeArgs, SignupMode};

pub async fn run(args: ServeArgs) -> ExitCode {
    init_tracing(args.log_json || args.env == Environment::Production);
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "agentd stopped");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

pub fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("AGENTD_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Tracing may already be set (tests); keeping the first subscriber is fine.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
    };
}

async fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.env == Environment::Production {
        let problems = args.production_problems();
        if !problems.is_empty() {
            return Err(settings::SettingsError::Insecure(problems.join("; ")).into());
        }
    }
    let limits = settings::default_limits(std::env::vars())?;
    std::fs::create_dir_all(&args.data_dir)?;
    let store = Store::open(&args.database_url()).await?;
    let blob_location = BlobLocation::parse(args.blob_url.as_deref(), &args.data_dir)?;
    let blobs = Blobs::open(&blob_location)?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    if let Some(path) = &args.address_file {
        write_address_file(path, addr)?;
    }
    let shutdown = CancellationToken::new();
    let worker = match args.worker_slots {
        0 => None,
        slots => {
            let settings = WorkerSettings {
                data_dir: args.data_dir.clone(),
                slots,
                lease: Duration::from_secs(args.lease_s),
                worker_id: format!("embedded-{}", uuid::Uuid::now_v7().simple()),
                api_url: args.public_url.clone().unwrap_or_else(|| format!("http://{addr}")),
                sandbox_init: std::env::current_exe()?,
                shutdown_grace: Duration::from_secs(args.shutdown_grace_s),
                egress: args.egress.settings(),
            };
            let source =
                RunSource::Embedded { store: store.clone(), blobs: blobs.clone(), retry: RetryPolicy::default() };
            let worker = Worker::new(source, settings)?;
            check_sandbox(&worker, args.env)?;
            Some(tokio::spawn(worker.run(shutdown.clone())))
        }
    };
    // Every replica reaps: a lease expired is a lease expired, whoever notices first.
    tokio::spawn(reap_expired_leases(store.clone(), Duration::from_secs(args.lease_s) / 2, shutdown.clone()));
    let api = ApiSettings {
        signup_enabled: args.signup == SignupMode::Open,
        default_limits: limits,
        ..ApiSettings::default()
    };
    let app = agentd_api::router(AppState::new(store.clone(), blobs, api));
    tracing::info!(data_dir = %args.data_dir.display(), blobs = %blob_location, "agentd listening on http://{addr}");
    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    let graceful = shutdown.clone();
    axum::serve(listener, app).with_graceful_shutdown(async move { graceful.cancelled().await }).await?;
    if let Some(worker) = worker {
        worker.await?;
    }
    store.close().await;
    Ok(())
}

/// Written whole or not at all (a rename), so a reader never sees half an address.
fn write_address_file(path: &std::path::Path, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, addr.to_string())?;
    std::fs::rename(&partial, path)
}

/// Logs what the sandbox cannot apply on this host; in production, refuses to go on.
pub fn check_sandbox(worker: &Worker, env: Environment) -> Result<(), settings::SettingsError> {
    let missing = worker.missing_mechanisms();
    if !missing.is_empty() && env == Environment::Production {
        return Err(settings::SettingsError::Insecure(format!("the sandbox lacks: {}", missing.join("; "))));
    }
    for mechanism in &missing {
        tracing::warn!(mechanism, "sandbox mechanism missing on this host");
    }
    Ok(())
}

pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            tracing::warn!("cannot listen for signals; stop the server with SIGKILL");
            std::future::pending::<()>().await
        }
    }
}
