//! Where a worker gets its runs and reports back: the store in this process (embedded
//! mode) or the API of a server over HTTP (`agentd worker`). Both speak the same fenced
//! protocol of `agentd_core::queue`; the remote side never touches the database.

use std::time::Duration;

use agentd_client::Client;
use agentd_core::queue::{ClaimRequest, ClaimedRun, Completion, LeaseStatus, NewEvent, RunLease};
use agentd_store::{Blobs, RetryPolicy, Signal, Store};
use tokio::sync::broadcast;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Store(#[from] agentd_store::StoreError),
    #[error(transparent)]
    Remote(#[from] agentd_client::ClientError),
}

/// The run source of a worker.
#[derive(Clone)]
pub enum RunSource {
    Embedded { store: Store, blobs: Blobs, retry: RetryPolicy },
    Remote { client: Client },
}

impl RunSource {
    /// Waits up to `wait` for a run and claims it for `worker`.
    pub async fn claim(
        &self,
        worker: &str,
        lease: Duration,
        wait: Duration,
    ) -> Result<Option<ClaimedRun>, SourceError> {
        match self {
            RunSource::Embedded { store, .. } => Ok(store.queue_claim_waiting_unscoped(worker, lease, wait).await?),
            RunSource::Remote { client } => {
                let request = ClaimRequest { worker: worker.to_owned(), lease_s: secs(lease), wait_s: secs(wait) };
                Ok(client.worker_claim(&request).await?)
            }
        }
    }

    pub async fn renew(&self, run: &RunLease, lease: Duration) -> Result<LeaseStatus, SourceError> {
        match self {
            RunSource::Embedded { store, .. } => Ok(store.queue_renew_lease(run, lease).await?),
            RunSource::Remote { client } => Ok(client.worker_heartbeat(run, secs(lease)).await?),
        }
    }

    pub async fn append_events(&self, run: &RunLease, events: &[NewEvent]) -> Result<bool, SourceError> {
        match self {
            RunSource::Embedded { store, .. } => Ok(store.events_append(run, events).await?),
            RunSource::Remote { client } => Ok(client.worker_events(run, events).await?),
        }
    }

    pub async fn complete(&self, run: &RunLease, done: Completion) -> Result<bool, SourceError> {
        match self {
            RunSource::Embedded { store, retry, .. } => Ok(store.queue_complete(run, done, retry).await?),
            RunSource::Remote { client } => Ok(client.worker_complete(run, done).await?),
        }
    }

    pub async fn release(&self, run: &RunLease) -> Result<bool, SourceError> {
        match self {
            RunSource::Embedded { store, .. } => Ok(store.queue_release(run).await?),
            RunSource::Remote { client } => Ok(client.worker_release(run).await?),
        }
    }

    /// The bundle bytes for `digest`.
    pub async fn bundle(&self, digest: &str) -> Result<Vec<u8>, SourceError> {
        match self {
            RunSource::Embedded { blobs, .. } => Ok(blobs.get(digest).await?.to_vec()),
            RunSource::Remote { client } => Ok(client.worker_bundle(digest).await?),
        }
    }

    /// Stores one artifact of a run: the bytes in the blob store, the record fenced by
    /// the lease. False when the lease is no longer ours.
    pub async fn artifact(&self, run: &RunLease, name: &str, bytes: Vec<u8>) -> Result<bool, SourceError> {
        match self {
            RunSource::Embedded { store, blobs, .. } => {
                let size = bytes.len() as u64;
                let digest = blobs.put(bytes.into()).await?;
                let artifact = agentd_store::NewArtifact { name: name.to_owned(), size, digest };
                Ok(store.artifact_record(run, &artifact).await?)
            }
            RunSource::Remote { client } => Ok(client.worker_artifact(run, name, bytes).await?),
        }
    }

    /// Pushed cancel requests, where the source has them; a remote worker learns of a
    /// cancel from its next heartbeat instead.
    pub fn signals(&self) -> Option<broadcast::Receiver<Signal>> {
        match self {
            RunSource::Embedded { store, .. } => Some(store.subscribe()),
            RunSource::Remote { .. } => None,
        }
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs().max(1)).unwrap_or(u32::MAX)
}

/// Reconciler: puts back runs whose lease expired (their worker died). Runs in every
/// server process, whether or not it executes runs itself.
pub async fn reap_expired_leases(store: Store, every: Duration, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        if let Err(err) = store.queue_reap_expired_unscoped().await {
            tracing::error!(error = ?err, "reaping expired leases failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
