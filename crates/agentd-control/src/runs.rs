//! The worker's side of the queue, for every worker alike: the server's in-process one
//! and `agentd worker` on another machine (through `/v1/worker/...`). Claims are leases;
//! every write about a run carries its lease and is applied only while the lease is
//! current (fencing), and a worker can touch only leases it claimed itself.

use std::time::Duration;

use agentd_core::queue::{ClaimedRun, Completion, LeaseStatus, NewEvent, RunLease};
use agentd_core::{ArtifactName, InvocationStatus, ResourceKind, Timestamp};
use agentd_store::{Changes, NewArtifact, StoreError, Subscription};
use bytes::Bytes;
use tokio::time::Instant;

use crate::Control;
use crate::auth::WorkerCtx;
use crate::error::{ControlError, Invalid, Result};
use crate::wait::{self, Step};

/// The longest one claim request waits for work.
pub const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);
/// Without a signal, a claimer looks at the queue again this often.
const CLAIM_BACKSTOP: Duration = Duration::from_secs(2);

/// How long a lease lasts without renewal: 1 s to 1 h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseLength(Duration);

impl LeaseLength {
    const MAX_S: u32 = 3600;

    pub fn parse_secs(secs: u32) -> Result<LeaseLength, Invalid> {
        if (1..=Self::MAX_S).contains(&secs) {
            Ok(LeaseLength(Duration::from_secs(u64::from(secs))))
        } else {
            Err(Invalid::Lease { max: Self::MAX_S })
        }
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

/// A worker process's own name, part of its lease owner: 1 to 100 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerName(String);

impl WorkerName {
    const MAX: usize = 100;

    pub fn parse(raw: &str) -> Result<WorkerName, Invalid> {
        let valid = !raw.is_empty() && raw.len() <= Self::MAX && raw.bytes().all(|b| b.is_ascii_graphic());
        if valid { Ok(WorkerName(raw.to_owned())) } else { Err(Invalid::WorkerName { max: Self::MAX }) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The worker process asking for a run: its name and how many runs it executes at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimer {
    pub name: WorkerName,
    pub slots: Option<u32>,
}

impl Control {
    /// Claims a run for `claimer`, waiting up to `wait` (at most 30 s) for one: woken when a
    /// run is queued or a running one ends (freeing its tenant's slot), when the next
    /// retry comes due, or by a bounded timer that covers a missed signal. The run comes
    /// with its agent's secrets, opened; one whose secrets do not open is failed as the
    /// platform's fault (`secrets_unavailable`) and the next is claimed instead.
    pub async fn run_claim(
        &self,
        worker: &WorkerCtx,
        claimer: &Claimer,
        lease: LeaseLength,
        wait: Duration,
    ) -> Result<Option<ClaimedRun>> {
        let name = claimer.name.as_str();
        self.workers.seen(&self.store, worker, name, claimer.slots).await;
        let owner = worker.lease_owner(name);
        let deadline = Instant::now() + wait.min(MAX_CLAIM_WAIT);
        let mut changes = self.store.subscribe_queue();
        wait::until(&mut changes, Some(deadline), CLAIM_BACKSTOP, || async {
            // The claim statement hands out sealed secrets only; they are opened here, in a
            // read of their own. Should that read fail, the run's lease expires and the
            // reaper recovers it, as for any claim whose worker never started it. Each
            // claim mints the token of the attempt it starts.
            loop {
                let run_token = crate::auth::mint_run_token();
                let started = Instant::now();
                let claimed = self.store.queue_claim_unscoped(&owner, lease.get(), &run_token).await;
                crate::metrics::claim_took(started.elapsed());
                let Some(mut run) = claimed? else {
                    break;
                };
                match self.run_secrets(&run).await? {
                    Ok(secrets) => {
                        run.secrets = secrets;
                        return Ok(Step::Ready(run));
                    }
                    Err(unopenable) => self.fail_unopenable_secrets(&run, unopenable).await?,
                }
            }
            let now = Timestamp::now();
            let next_retry = self.store.queue_next_wakeup_unscoped(now).await?;
            let at_most =
                next_retry.map(|at| Duration::from_millis((at.unix_ms() - now.unix_ms()).max(1).unsigned_abs()));
            Ok(Step::Wait { at_most })
        })
        .await
    }

    /// Extends a lease this worker holds and says whether to go on.
    pub async fn run_heartbeat(&self, worker: &WorkerCtx, run: &RunLease, lease: LeaseLength) -> Result<LeaseStatus> {
        worker.check(run)?;
        if let Some(name) = worker.process_name(&run.lease_owner) {
            self.workers.seen(&self.store, worker, name, None).await;
        }
        Ok(self.store.queue_renew_lease(run, lease.get()).await?)
    }

    /// Appends events of a run; false when the lease is no longer current. A NUL in a
    /// line an agent printed is recorded as U+FFFD: no store may be made to refuse a
    /// run's log by what the agent wrote.
    pub async fn run_append_events(&self, worker: &WorkerCtx, run: &RunLease, events: &[NewEvent]) -> Result<bool> {
        worker.check(run)?;
        let has_nul =
            |e: &NewEvent| [&e.message, &e.level].iter().any(|t| t.as_ref().is_some_and(|t| t.contains('\0')));
        if !events.iter().any(has_nul) {
            return Ok(self.store.events_append(run, events).await?);
        }
        let clean = |t: &Option<String>| t.as_ref().map(|t| t.replace('\0', "\u{fffd}"));
        let cleaned: Vec<NewEvent> = events
            .iter()
            .map(|e| NewEvent { message: clean(&e.message), level: clean(&e.level), ..e.clone() })
            .collect();
        Ok(self.store.events_append(run, &cleaned).await?)
    }

    /// Records how an attempt ended, with what runs again decided by the retry policy;
    /// false when the lease is no longer current.
    pub async fn run_complete(&self, worker: &WorkerCtx, run: &RunLease, completion: Completion) -> Result<bool> {
        worker.check(run)?;
        if completion.status == InvocationStatus::Succeeded {
            self.warn_on_output_mismatch(run, completion.output.as_ref()).await?;
        }
        let plan = self.settings.retry.plan(run.attempt);
        let status = completion.status;
        let recorded = self.store.queue_complete(run, completion, &plan).await?;
        if recorded {
            crate::metrics::run_attempt_finished(status);
        }
        Ok(recorded)
    }

    /// Hands a run back untouched (the worker is shutting down).
    pub async fn run_release(&self, worker: &WorkerCtx, run: &RunLease) -> Result<bool> {
        worker.check(run)?;
        Ok(self.store.queue_release(run).await?)
    }

    /// A bundle by digest. Any worker may fetch any bundle: it is the code it will be
    /// asked to run, and knowing a digest requires having been handed a run that names it.
    pub async fn run_bundle(&self, _worker: &WorkerCtx, digest: &str) -> Result<Bytes> {
        match self.blobs.get(digest).await {
            Err(StoreError::NotFound(_)) => Err(ControlError::NotFound(ResourceKind::Bundle)),
            read => Ok(read?),
        }
    }

    /// Stores an artifact's bytes, then records it for the run, fenced by the lease. One
    /// that would take the tenant past `max_storage_bytes` is refused, and nothing is stored.
    pub async fn run_artifact(
        &self,
        worker: &WorkerCtx,
        run: &RunLease,
        name: ArtifactName,
        bytes: Bytes,
    ) -> Result<bool> {
        worker.check(run)?;
        let size = bytes.len() as u64;
        self.check_artifact_storage(run, &agentd_store::digest_of(&bytes), size).await?;
        let digest = self.blob_put(bytes).await?;
        Ok(self.store.artifact_record(run, &NewArtifact { name, size, digest }).await?)
    }

    /// Pushed changes of a run a worker of this process holds (cancel requests, above
    /// all); remote workers learn of a cancel from their heartbeat instead.
    pub fn run_changes(&self, worker: &WorkerCtx, run: &RunLease) -> Result<Subscription<Changes>> {
        worker.check(run)?;
        Ok(self.store.subscribe_invocation(&run.invocation_id))
    }
}
