//! Where a worker gets its runs and reports back: the domain layer in this process
//! (embedded mode) or the API of a server over HTTP (`agentd worker`). Both speak the
//! same fenced protocol of `agentd_core::queue`, and the server decides every policy
//! (what runs again, quotas) either way; the remote side never touches the database.

use std::time::Duration;

use agentd_api_types::worker::ClaimRequest;
use agentd_client::Client;
use agentd_control::{Changes, Claimer, Control, LeaseLength, Subscription, WorkerCtx, WorkerName};
use agentd_core::ArtifactName;
use agentd_core::queue::{BuildLease, ClaimedBuild, ClaimedRun, Completion, LeaseStatus, NewEvent, RunLease};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Control(#[from] agentd_control::ControlError),
    #[error(transparent)]
    Remote(#[from] agentd_client::ClientError),
}

impl SourceError {
    /// The server does not accept this worker's token (revoked, or never made): no retry
    /// can help, the worker stops.
    pub fn is_token_refused(&self) -> bool {
        matches!(self, SourceError::Remote(agentd_client::ClientError::Api { status: 401, .. }))
    }

    /// The tenant's storage is full (`max_storage_bytes`): the write is refused for good,
    /// trying again does not help.
    pub fn is_storage_full(&self) -> bool {
        match self {
            SourceError::Control(err) => matches!(err, agentd_control::ControlError::StorageFull { .. }),
            SourceError::Remote(err) => err.code() == Some("max_storage_bytes"),
        }
    }
}

/// The run source of a worker.
#[derive(Clone)]
pub enum RunSource {
    Embedded { control: Control, worker: WorkerCtx },
    Remote { client: Client },
}

impl RunSource {
    /// The server's own in-process worker.
    pub fn embedded(control: Control) -> RunSource {
        let worker = control.embedded_worker();
        RunSource::Embedded { control, worker }
    }

    /// Waits up to `wait` for a run and claims it for `worker`, which runs `slots` at once.
    pub async fn claim(
        &self,
        worker: &str,
        slots: usize,
        lease: Duration,
        wait: Duration,
    ) -> Result<Option<ClaimedRun>, SourceError> {
        let slots = u32::try_from(slots).ok();
        match self {
            RunSource::Embedded { control, worker: ctx } => {
                let name = WorkerName::parse(worker).map_err(agentd_control::ControlError::from)?;
                let lease = LeaseLength::parse_secs(secs(lease)).map_err(agentd_control::ControlError::from)?;
                Ok(control.run_claim(ctx, &Claimer { name, slots }, lease, wait).await?)
            }
            RunSource::Remote { client } => {
                let request =
                    ClaimRequest { worker: worker.to_owned(), lease_s: secs(lease), wait_s: secs(wait), slots };
                Ok(client.worker_claim(&request).await?)
            }
        }
    }

    pub async fn renew(&self, run: &RunLease, lease: Duration) -> Result<LeaseStatus, SourceError> {
        match self {
            RunSource::Embedded { control, worker } => {
                let lease = LeaseLength::parse_secs(secs(lease)).map_err(agentd_control::ControlError::from)?;
                Ok(control.run_heartbeat(worker, run, lease).await?)
            }
            RunSource::Remote { client } => Ok(client.worker_heartbeat(run, secs(lease)).await?),
        }
    }

    pub async fn append_events(&self, run: &RunLease, events: &[NewEvent]) -> Result<bool, SourceError> {
        match self {
            RunSource::Embedded { control, worker } => Ok(control.run_append_events(worker, run, events).await?),
            RunSource::Remote { client } => Ok(client.worker_events(run, events).await?),
        }
    }

    pub async fn complete(&self, run: &RunLease, done: Completion) -> Result<bool, SourceError> {
        match self {
            RunSource::Embedded { control, worker } => Ok(control.run_complete(worker, run, done).await?),
            RunSource::Remote { client } => Ok(client.worker_complete(run, done).await?),
        }
    }

    pub async fn release(&self, run: &RunLease) -> Result<bool, SourceError> {
        match self {
            RunSource::Embedded { control, worker } => Ok(control.run_release(worker, run).await?),
            RunSource::Remote { client } => Ok(client.worker_release(run).await?),
        }
    }

    /// The bundle bytes for `digest`.
    pub async fn bundle(&self, digest: &str) -> Result<Vec<u8>, SourceError> {
        match self {
            RunSource::Embedded { control, worker } => Ok(control.run_bundle(worker, digest).await?.to_vec()),
            RunSource::Remote { client } => Ok(client.worker_bundle(digest).await?),
        }
    }

    /// Stores one artifact of a run: the bytes in the blob store, the record fenced by
    /// the lease. False when the lease is no longer ours.
    pub async fn artifact(&self, run: &RunLease, name: &ArtifactName, bytes: Vec<u8>) -> Result<bool, SourceError> {
        match self {
            RunSource::Embedded { control, worker } => {
                Ok(control.run_artifact(worker, run, name.clone(), bytes.into()).await?)
            }
            RunSource::Remote { client } => Ok(client.worker_artifact(run, name.as_str(), bytes).await?),
        }
    }

    /// Pushed changes of a run (cancel requests), where the source has them; a remote
    /// worker learns of a cancel from its next heartbeat instead.
    pub fn run_changes(&self, run: &RunLease) -> Option<Subscription<Changes>> {
        match self {
            RunSource::Embedded { control, worker } => control.run_changes(worker, run).ok(),
            RunSource::Remote { .. } => None,
        }
    }
}

/// Dependency builds: the same protocol as runs, with the log as the heartbeat.
impl RunSource {
    pub async fn build_claim(
        &self,
        worker: &str,
        lease: Duration,
        wait: Duration,
    ) -> Result<Option<ClaimedBuild>, SourceError> {
        match self {
            RunSource::Embedded { control, worker: ctx } => {
                let name = WorkerName::parse(worker).map_err(agentd_control::ControlError::from)?;
                let lease = LeaseLength::parse_secs(secs(lease)).map_err(agentd_control::ControlError::from)?;
                Ok(control.build_claim(ctx, &name, lease, wait).await?)
            }
            RunSource::Remote { client } => {
                let request =
                    ClaimRequest { worker: worker.to_owned(), lease_s: secs(lease), wait_s: secs(wait), slots: None };
                Ok(client.worker_build_claim(&request).await?)
            }
        }
    }

    /// Appends log lines and renews the build's lease; false when it is no longer ours.
    pub async fn build_log(
        &self,
        build: &BuildLease,
        lines: &[(String, String)],
        lease: Duration,
    ) -> Result<bool, SourceError> {
        match self {
            RunSource::Embedded { control, worker } => {
                let lease = LeaseLength::parse_secs(secs(lease)).map_err(agentd_control::ControlError::from)?;
                Ok(control.build_log(worker, build, lines, lease).await?)
            }
            RunSource::Remote { client } => Ok(client.worker_build_log(build, lines, secs(lease)).await?),
        }
    }

    pub async fn build_ready(
        &self,
        build: &BuildLease,
        archive: Vec<u8>,
        installed_bytes: u64,
    ) -> Result<bool, SourceError> {
        match self {
            RunSource::Embedded { control, worker } => {
                let result = agentd_control::BuildResult::Ready { archive: archive.into(), installed_bytes };
                Ok(control.build_finish(worker, build, result).await?)
            }
            RunSource::Remote { client } => Ok(client.worker_build_ready(build, archive, installed_bytes).await?),
        }
    }

    pub async fn build_release(&self, build: &BuildLease) -> Result<bool, SourceError> {
        match self {
            RunSource::Embedded { control, worker } => Ok(control.build_release(worker, build).await?),
            RunSource::Remote { client } => Ok(client.worker_build_release(build).await?),
        }
    }

    pub async fn build_fail(&self, build: &BuildLease, error: &str) -> Result<bool, SourceError> {
        match self {
            RunSource::Embedded { control, worker } => {
                let result = agentd_control::BuildResult::Failed { error: error.to_owned() };
                Ok(control.build_finish(worker, build, result).await?)
            }
            RunSource::Remote { client } => Ok(client.worker_build_fail(build, error).await?),
        }
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs().max(1)).unwrap_or(u32::MAX)
}
