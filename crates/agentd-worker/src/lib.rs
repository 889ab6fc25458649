//! The worker: claims runs from the queue, prepares the agent's bundle, runs it in the
//! sandbox, turns what it prints into events and records how it ended.
//!
//! It decides no policy: limits come with the claimed run, retries and fencing are the
//! store's. It keeps no state a restart would lose: a run it was executing when it died
//! is put back by the lease reaper.

mod execute;
mod prepare;
mod protocol;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentd_sandbox::{Sandbox, SandboxSettings};
use agentd_store::{LocalBlobs, RetryPolicy, Signal, Store};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use prepare::Runtimes;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Where unpacked bundles, the SDK and per-run scratch space live.
    pub data_dir: PathBuf,
    /// Runs executed at the same time.
    pub slots: usize,
    /// How long a claim lasts without renewal; renewed every third of it.
    pub lease: Duration,
    pub worker_id: String,
    pub retry: RetryPolicy,
    /// The API's address as agents should reach it (`AGENTD_API_URL`).
    pub api_url: String,
    /// The program re-executed as sandbox init (the agentd binary).
    pub sandbox_init: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot set up the sandbox")]
    Sandbox(#[from] agentd_sandbox::SandboxError),
    #[error("cannot prepare the data directory {path}")]
    DataDir { path: String, source: std::io::Error },
}

/// Everything a run task needs, shared by all of them.
pub(crate) struct Shared {
    pub store: Store,
    pub blobs: LocalBlobs,
    pub sandbox: Sandbox,
    pub runtimes: Runtimes,
    pub settings: WorkerSettings,
}

pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    pub fn new(store: Store, blobs: LocalBlobs, settings: WorkerSettings) -> Result<Worker, WorkerError> {
        let scratch = settings.data_dir.join("runs");
        for dir in [&scratch, &settings.data_dir.join("bundles")] {
            std::fs::create_dir_all(dir)
                .map_err(|source| WorkerError::DataDir { path: dir.display().to_string(), source })?;
        }
        prepare::install_sdk(&settings.data_dir)
            .map_err(|source| WorkerError::DataDir { path: settings.data_dir.display().to_string(), source })?;
        let sandbox =
            Sandbox::new(SandboxSettings { init_program: settings.sandbox_init.clone(), scratch_dir: scratch })?;
        let runtimes = Runtimes::detect();
        Ok(Worker { shared: Arc::new(Shared { store, blobs, sandbox, runtimes, settings }) })
    }

    /// Isolation mechanisms this host lacks (empty when the sandbox is complete).
    pub fn missing_mechanisms(&self) -> Vec<String> {
        self.shared.sandbox.missing_mechanisms()
    }

    /// Claims and runs invocations until `shutdown` fires; then stops claiming and waits
    /// for the runs in flight.
    pub async fn run(self, shutdown: CancellationToken) {
        let shared = self.shared;
        let slots = Arc::new(Semaphore::new(shared.settings.slots.max(1)));
        let mut signals = shared.store.subscribe();
        let runs = tokio_util::task::TaskTracker::new();
        runs.spawn(reap_expired_leases(shared.clone(), shutdown.clone()));
        tracing::info!(worker = %shared.settings.worker_id, slots = shared.settings.slots, "worker started");
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            match shared.store.queue_claim_unscoped(&shared.settings.worker_id, shared.settings.lease).await {
                Ok(Some(run)) => {
                    let shared = shared.clone();
                    let stop = shutdown.child_token();
                    runs.spawn(async move {
                        execute::run_claimed(&shared, run, stop).await;
                        drop(permit);
                    });
                }
                Ok(None) => {
                    drop(permit);
                    let sleep = idle_wait(&shared.store).await;
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = wait_for_work(&mut signals) => {}
                        _ = tokio::time::sleep(sleep) => {}
                    }
                }
                Err(err) => {
                    drop(permit);
                    tracing::error!(error = ?err, "claiming from the queue failed; retrying shortly");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        runs.close();
        runs.wait().await;
        tracing::info!("worker stopped");
    }
}

/// How long to sleep when the queue is empty: until the next retry is due, but never
/// more than a bounded fallback (wake-ups are pushed; the timer only covers a miss).
async fn idle_wait(store: &Store) -> Duration {
    const FALLBACK: Duration = Duration::from_secs(2);
    match store.queue_next_wakeup_unscoped().await {
        Ok(Some(at)) => {
            let ms = at.unix_ms() - agentd_core::Timestamp::now().unix_ms();
            Duration::from_millis(ms.clamp(1, FALLBACK.as_millis() as i64) as u64)
        }
        _ => FALLBACK,
    }
}

async fn wait_for_work(signals: &mut tokio::sync::broadcast::Receiver<Signal>) {
    loop {
        match signals.recv().await {
            // A new run, or a finished one that freed a tenant's concurrency slot.
            Ok(Signal::InvocationQueued | Signal::InvocationChanged(_)) => return,
            Ok(_) => continue,
            // Lagged: we may have missed a wake-up, so look at the queue again.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// Reconciler: puts back runs whose lease expired (their worker died).
async fn reap_expired_leases(shared: Arc<Shared>, shutdown: CancellationToken) {
    let every = shared.settings.lease / 2;
    loop {
        if let Err(err) = shared.store.queue_reap_expired_unscoped().await {
            tracing::error!(error = ?err, "reaping expired leases failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
