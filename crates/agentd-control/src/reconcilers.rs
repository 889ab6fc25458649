//! Background reconcilers: loops that bring the store back to a sound state after
//! whatever happened (a worker died, a lease ran out). Each is idempotent, takes no
//! input and runs on a timer; the next activation is its retry. Each runs in every
//! server process: whichever replica notices first does the work, and doing it twice
//! changes nothing. The handle stops them and waits for them.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Control;
use crate::error::Result;

/// The running reconcilers of one process.
pub struct Reconcilers {
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Reconcilers {
    /// Stops every reconciler after its current pass and waits for them.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Control {
    /// Starts the reconcilers: the lease reapers of runs and of builds, the input
    /// timeouts, the memory store's expiry, the sweep of full rate-limit buckets and the
    /// blob sweep, the webhook deliveries and the schedules' occurrences (metering later).
    pub fn start_reconcilers(&self) -> Reconcilers {
        let reconcilers = Reconcilers { shutdown: CancellationToken::new(), tasks: TaskTracker::new() };
        let control = self.clone();
        reconcilers.spawn("lease reaper", self.settings.reap_every, move || {
            let control = control.clone();
            async move { control.recover_expired_leases().await }
        });
        let control = self.clone();
        reconcilers.spawn("input timeouts", self.settings.reap_every, move || {
            let control = control.clone();
            async move { control.end_unanswered().await }
        });
        let control = self.clone();
        reconcilers.spawn("build reaper", self.settings.reap_every, move || {
            let control = control.clone();
            async move { control.recover_expired_builds().await }
        });
        let control = self.clone();
        reconcilers.spawn("memory expiry", self.settings.memory_sweep_every, move || {
            let control = control.clone();
            async move { control.expire_memory().await }
        });
        // Buckets whose tat has passed are full again, the same as none; on PostgreSQL
        // (an UNLOGGED table) this keeps the table as small as the keys in use.
        let control = self.clone();
        reconcilers.spawn("rate limit sweep", self.settings.memory_sweep_every, move || {
            let control = control.clone();
            async move { control.sweep_rate_limits().await }
        });
        // Every replica looks; the claim in the store lets one alone run an occurrence.
        let control = self.clone();
        reconcilers.spawn("schedules", self.settings.schedule_tick, move || {
            let control = control.clone();
            async move { control.run_due_schedules().await }
        });
        let control = self.clone();
        reconcilers.spawn("schedule occurrences prune", self.settings.memory_sweep_every, move || {
            let control = control.clone();
            async move { control.prune_schedule_occurrences().await }
        });
        let control = self.clone();
        reconcilers.spawn("blob sweep", self.settings.blob_sweep_every, move || {
            let control = control.clone();
            async move { control.collect_unreferenced_blobs().await }
        });
        let control = self.clone();
        reconcilers.spawn("webhook deliveries", self.settings.webhooks.deliver_every, move || {
            let control = control.clone();
            async move { control.deliver_webhooks().await }
        });
        reconcilers
    }

    /// Puts back every run whose lease expired: a new attempt while recoveries are left,
    /// else a failure with `worker_lost`. Returns how many it found.
    pub async fn recover_expired_leases(&self) -> Result<u64> {
        let reaped = self.store.queue_recover_expired_unscoped(self.settings.retry.max_recoveries).await?;
        crate::metrics::leases_reaped(reaped);
        Ok(reaped)
    }
}

impl Reconcilers {
    fn spawn<F, Fut>(&self, name: &'static str, every: Duration, pass: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<u64>> + Send,
    {
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            loop {
                if let Err(err) = pass().await {
                    tracing::error!(reconciler = name, error = ?err, "reconciler pass failed; the next one retries");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        });
    }
}
