//! `agentd serve`: opens the store, starts the domain's reconcilers, the in-process
//! worker and the HTTP API, and stops them all cleanly on SIGINT/SIGTERM.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;

use agentd_control::{Control, ControlSettings, RetryPolicy, SignupPolicy};
use agentd_store::{Blobs, Store};
use agentd_worker::{RunSource, Worker};
use tokio_util::sync::CancellationToken;

use crate::remote::{api_address_of_listener, worker_config};
use crate::settings::{Environment, ServeArgs, Settings, SettingsError, SignupMode};
use crate::{logging, master_key};

pub async fn run(args: ServeArgs) -> ExitCode {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let settings = match args.settings(&vars) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let _log = logging::init(settings.log_format);
    match serve(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "agentd stopped");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

pub async fn serve(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let (Some(store_settings), Some(api)) = (&settings.store, &settings.server) else {
        return Err("agentd serve needs store and API settings".into());
    };
    create_private_dir(&settings.data_dir)?;
    // Held until `serve` returns: one server per SQLite database.
    let _replica_lock = crate::replica_lock::take(store_settings.database.expose())?;
    let master_keys =
        master_key::serve_keys(&settings.data_dir, api.master_key.as_ref(), api.previous_master_key.as_ref())?;
    let store = Store::open_with(store_settings.database.expose(), api.migrations).await?;
    let pending = store.migrations_pending().await?;
    if !pending.is_empty() {
        return Err(format!(
            "the database lacks migrations {pending:?} and --no-migrate is set; run `agentd migrate` first"
        )
        .into());
    }
    let blobs = Blobs::open(&store_settings.blobs, &store_settings.s3)?;
    let control = Control::new(
        store.clone(),
        blobs,
        ControlSettings {
            signup: match api.signup {
                SignupMode::Open => SignupPolicy::Open,
                SignupMode::Invite => SignupPolicy::Invite,
                SignupMode::Closed => SignupPolicy::Closed,
            },
            public_url: api.public_url.clone(),
            default_limits: api.default_limits.clone(),
            retry: RetryPolicy { max_recoveries: api.max_recoveries, ..RetryPolicy::default() },
            reap_every: api.lease / 2,
            memory_sweep_every: api.memory_sweep,
            blob_sweep_every: api.blob_sweep,
            schedule_tick: api.schedule_tick,
            blob_grace: api.blob_grace,
            package_indexes: api.package_indexes.clone(),
            runtime_versions: agentd_worker::Runtimes::detect().versions(),
            master_keys,
            signups_per_hour_per_ip: api.signups_per_hour_per_ip,
            logins_per_minute_per_ip: api.logins_per_minute_per_ip,
            webhooks: api.webhooks.clone(),
            ..ControlSettings::default()
        },
    );
    let listener = tokio::net::TcpListener::bind(api.listen).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let worker = match &settings.worker {
        None => None,
        Some(worker_settings) => {
            // Its runs reach the API where this process listens.
            let config = worker_config(&settings, worker_settings, api_address_of_listener(addr))?;
            let worker = Worker::new(RunSource::embedded(control.clone()), config)?;
            check_sandbox(&worker, settings.env)?;
            Some(tokio::spawn(worker.run(shutdown.clone())))
        }
    };
    // Every replica reconciles: a lease expired is a lease expired, whoever notices first.
    let reconcilers = control.start_reconcilers();
    let trusted = api.trusted_proxies.clone();
    let draining = agentd_api::Draining::default();
    let options = agentd_api::ApiOptions {
        trusted_proxies: agentd_api::TrustedProxies::new(move |ip| trusted.iter().any(|net| net.contains(ip))),
        metrics: Some(agentd_api::MetricsExporter::install(settings.metrics.token.as_ref())?),
        draining: draining.clone(),
        // Cookies are `Secure` unless the server listens on loopback only (development
        // over plain http): see docs/DASHBOARD.md.
        pages: Some(agentd_dashboard::router(
            control.clone(),
            agentd_dashboard::Options { secure_cookies: !addr.ip().is_loopback() },
        )),
    };
    let app = agentd_api::router(control, options);
    if let Some(path) = &api.address_file {
        write_address_file(path, addr)?;
    }
    tracing::info!(
        data_dir = %settings.data_dir.display(),
        blobs = %store_settings.blobs,
        "agentd listening on http://{addr}"
    );
    let stop = shutdown.clone();
    let drain = api.drain;
    tokio::spawn(async move {
        wait_for_signal().await;
        draining.start();
        if !drain.is_zero() {
            tracing::info!(drain_s = drain.as_secs(), "draining: /readyz answers 503 before the server stops");
            tokio::time::sleep(drain).await;
        }
        tracing::info!("shutting down");
        stop.cancel();
    });
    let graceful = shutdown.clone();
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async move { graceful.cancelled().await })
        .await?;
    if let Some(worker) = worker {
        worker.await?;
    }
    reconcilers.shutdown().await;
    store.close().await;
    Ok(())
}

/// Creates `dir` (and missing parents) readable by this user alone, and takes group and
/// world access away from one that exists: it holds every tenant's data.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// Written whole or not at all (a rename), so a reader never sees half an address.
fn write_address_file(path: &Path, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, addr.to_string())?;
    std::fs::rename(&partial, path)
}

/// Logs what the sandbox cannot apply on this host; in production, refuses to go on.
pub fn check_sandbox(worker: &Worker, env: Environment) -> Result<(), SettingsError> {
    let missing = worker.missing_mechanisms();
    if !missing.is_empty() && env == Environment::Production {
        // Apart from the settings' preflight: only the started sandbox knows what the host has.
        return Err(SettingsError::Insecure(format!(
            "the sandbox lacks: {}; run the worker as root on a host that has them (docs/SECURITY.md, \
             \"Operator guidance\"), or serve without one (AGENTD_WORKER_SLOTS=0) and run `agentd worker` there",
            missing.join("; ")
        )));
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
