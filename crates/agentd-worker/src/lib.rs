//! The worker: claims runs from the queue, prepares the agent's bundle, runs it in the
//! sandbox, turns what it prints into events and records how it ended.
//!
//! It decides no policy: limits and the agent's secrets come with the claimed run (the
//! secrets become environment variables and are redacted from everything the run
//! records, see `redact.rs`), and what runs again is the server's decision (`agentd_control::RetryPolicy`); every write is fenced by the
//! run's lease. It keeps no state a restart would lose: a run it was executing when it
//! died is recovered by the server's lease reaper as a new attempt.

mod agent_messages;
mod api_forward;
mod backoff;
mod build;
mod event_log;
mod execute;
mod outcome;
mod prepare;
mod redact;
mod source;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentd_sandbox::{Sandbox, SandboxSettings};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use agentd_sandbox::{EgressSettings, IpNetwork};
pub use api_forward::{API_PORT, ApiAddress, ApiForwardError};
pub use prepare::Runtimes;
pub use source::{RunSource, SourceError};

/// How often the worker removes what dead workers on its scratch dir left behind.
const LEFTOVERS_EVERY: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Where unpacked bundles, the SDK and per-run scratch space live.
    pub data_dir: PathBuf,
    /// Runs executed at the same time.
    pub slots: usize,
    /// How long a claim lasts without renewal; renewed every third of it.
    pub lease: Duration,
    pub worker_id: String,
    /// The platform's API as this worker reaches it; runs reach it through their host
    /// forward, at `AGENTD_API_URL` on their own loopback.
    pub api: ApiAddress,
    /// The program re-executed as sandbox init (the agentd binary).
    pub sandbox_init: PathBuf,
    /// On shutdown, how long runs in flight may go on before they are stopped and
    /// handed back to the queue.
    pub shutdown_grace: Duration,
    /// Exemptions from the egress proxy's deny list (e.g. an internal API's network).
    pub egress: EgressSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot set up the sandbox")]
    Sandbox(#[from] agentd_sandbox::SandboxError),
    #[error("cannot prepare the data directory {path}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    ApiForward(#[from] ApiForwardError),
}

/// Everything a run task needs, shared by all of them.
pub(crate) struct Shared {
    pub source: RunSource,
    pub sandbox: Sandbox,
    pub runtimes: Runtimes,
    pub settings: WorkerSettings,
    /// Every run's way back to the API.
    pub api_forward: agentd_sandbox::HostForward,
}

pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    pub fn new(source: RunSource, mut settings: WorkerSettings) -> Result<Worker, WorkerError> {
        // The sandbox mounts paths under the data dir, and mount sources must be absolute.
        settings.data_dir = std::path::absolute(&settings.data_dir)
            .map_err(|source| WorkerError::DataDir { path: settings.data_dir.display().to_string(), source })?;
        let scratch = settings.data_dir.join("runs");
        for dir in [&scratch, &settings.data_dir.join("bundles")] {
            std::fs::create_dir_all(dir)
                .map_err(|source| WorkerError::DataDir { path: dir.display().to_string(), source })?;
        }
        prepare::install_sdk(&settings.data_dir)
            .map_err(|source| WorkerError::DataDir { path: settings.data_dir.display().to_string(), source })?;
        let sandbox = Sandbox::new(SandboxSettings {
            init_program: settings.sandbox_init.clone(),
            scratch_dir: scratch,
            egress: settings.egress.clone(),
        })?;
        let runtimes = Runtimes::detect();
        let api_forward = api_forward::host_forward(&settings.api)?;
        Ok(Worker { shared: Arc::new(Shared { source, sandbox, runtimes, settings, api_forward }) })
    }

    /// Isolation mechanisms this host lacks (empty when the sandbox is complete).
    pub fn missing_mechanisms(&self) -> Vec<String> {
        self.shared.sandbox.missing_mechanisms()
    }

    /// Claims and runs invocations until `shutdown` fires (or the server refuses this
    /// worker's token); then stops claiming, lets the runs in flight finish for up to the
    /// grace period, and hands back the rest.
    pub async fn run(self, shutdown: CancellationToken) -> Stopped {
        /// How long one claim waits for work before asking again.
        const CLAIM_WAIT: Duration = Duration::from_secs(20);
        let shared = self.shared;
        let slots = Arc::new(Semaphore::new(shared.settings.slots.max(1)));
        let runs = tokio_util::task::TaskTracker::new();
        // Not a child of `shutdown`: runs outlive it by the grace period.
        let stop_runs = CancellationToken::new();
        let leftovers = tokio::spawn(remove_leftovers(shared.clone(), shutdown.clone()));
        let builds = tokio::spawn(run_builds(shared.clone(), shutdown.clone()));
        tracing::info!(worker = %shared.settings.worker_id, slots = shared.settings.slots, "worker started");
        let mut backoff = backoff::Backoff::new("claiming work");
        let mut stopped = Stopped::Shutdown;
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let claim = shared.source.claim(
                &shared.settings.worker_id,
                shared.settings.slots,
                shared.settings.lease,
                CLAIM_WAIT,
            );
            let claimed = tokio::select! {
                _ = shutdown.cancelled() => break,
                claimed = claim => claimed,
            };
            if claimed.is_ok() {
                backoff.succeeded();
            }
            match claimed {
                Ok(Some(run)) => {
                    let shared = shared.clone();
                    let stop = stop_runs.child_token();
                    let in_flight = agentd_control::metrics::RunInFlight::start(&shared.settings.worker_id);
                    runs.spawn(async move {
                        execute::run_claimed(&shared, run, stop).await;
                        drop(in_flight);
                        drop(permit);
                    });
                }
                Ok(None) => drop(permit),
                Err(err) if err.is_token_refused() => {
                    drop(permit);
                    tracing::error!(error = %err, "the server refuses this worker's token (revoked?); stopping");
                    stopped = Stopped::TokenRefused;
                    shutdown.cancel();
                    break;
                }
                Err(err) => {
                    drop(permit);
                    let wait = backoff.failed(&err);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        runs.close();
        if let Err(err) = leftovers.await {
            tracing::warn!(error = %err, "the leftover reconciler ended abnormally");
        }
        if let Err(err) = builds.await {
            tracing::warn!(error = %err, "the build loop ended abnormally");
        }
        let grace = shared.settings.shutdown_grace;
        if tokio::time::timeout(grace, runs.wait()).await.is_err() {
            tracing::info!(grace_s = grace.as_secs(), "grace period over; handing the remaining runs back");
            stop_runs.cancel();
            runs.wait().await;
        }
        tracing::info!("worker stopped");
        stopped
    }
}

/// Why [`Worker::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Asked to: the shutdown token fired.
    Shutdown,
    /// The server refused the worker's token; running again with it cannot help.
    TokenRefused,
}

/// Claims dependency builds and runs them one at a time (an install is heavy), until
/// `shutdown`; a build in flight then is stopped and left to its lease, after which the
/// server hands it to another worker.
async fn run_builds(shared: Arc<Shared>, shutdown: CancellationToken) {
    const CLAIM_WAIT: Duration = Duration::from_secs(20);
    let mut backoff = backoff::Backoff::new("claiming a build");
    loop {
        let claim = shared.source.build_claim(&shared.settings.worker_id, shared.settings.lease, CLAIM_WAIT);
        let claimed = tokio::select! {
            _ = shutdown.cancelled() => return,
            claimed = claim => claimed,
        };
        if claimed.is_ok() {
            backoff.succeeded();
        }
        match claimed {
            Ok(Some(build)) => build::run_claimed(&shared, build, shutdown.clone()).await,
            Ok(None) => {}
            Err(err) => {
                let wait = backoff.failed(&err).max(Duration::from_secs(5));
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// Reconciler: at start and then every [`LEFTOVERS_EVERY`], removes the run directories,
/// per-run files and cgroups of workers on this scratch dir whose process died (a kill -9
/// leaves them behind). A live worker's runs are never touched.
async fn remove_leftovers(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let pass = shared.clone();
        match tokio::task::spawn_blocking(move || pass.sandbox.remove_leftovers()).await {
            Ok(Ok(report)) if report.instances > 0 || !report.kept.is_empty() => tracing::warn!(
                instances = report.instances,
                run_dirs = report.run_dirs,
                cgroups = report.cgroups,
                killed_processes = report.killed_processes,
                kept = ?report.kept,
                "removed what dead workers left behind"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "removing leftovers failed; the next pass retries"),
            Err(err) => tracing::error!(error = %err, "removing leftovers panicked"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(LEFTOVERS_EVERY) => {}
        }
    }
}
