//! The queue: claiming runs under a lease, renewing it, completing with fencing, and
//! putting back runs whose worker vanished.
//!
//! A claim is a short transaction that sets `lease_owner`, `lease_expires_at` and
//! `attempt = attempt + 1`; no row lock is held while the agent runs. Completion and
//! renewal match on `(id, lease_owner, attempt)`, so a worker that wakes up late cannot
//! overwrite a run that has since been handed to another.
//!
//! Both engines claim in one statement and complete with the closing status event in the
//! same transaction (`queue/sql.rs` holds the statements and why they are exact). A tenant's
//! concurrency limit is exact across workers: on PostgreSQL a tenant's claims serialize
//! on its row; on SQLite the single writer connection serializes every write.

use std::time::Duration;

pub use agentd_core::queue::{ClaimedRun, Completion, LeaseStatus, RunLease};
use agentd_core::{InvocationId, InvocationStatus, TenantId, Timestamp};
use sqlx::Row;

use crate::{Backend, Result, Signal, Store, StoreError, rows, signals};

mod sql;

/// Exponential backoff with jitter between attempts of a failed run.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base: Duration::from_secs(1), max: Duration::from_secs(300) }
    }
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1`: base·2^(attempt-1), capped, with up to 50 %
    /// random jitter added so that retries of many runs do not arrive together.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.max);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let jitter = capped.mul_f64(f64::from(nanos % 1000) / 2000.0);
        capped + jitter
    }
}

impl Store {
    /// Claims the next ready run for `worker`. Tenants are served round-robin (the one
    /// served longest ago goes first) among those below their concurrency limit; within
    /// a tenant, highest priority first, then oldest.
    pub async fn queue_claim_unscoped(&self, worker: &str, lease: Duration) -> Result<Option<ClaimedRun>> {
        let now = Timestamp::now();
        let expires = now.plus_ms(lease.as_millis() as i64);
        let sql = match self.backend {
            Backend::Postgres => sql::POSTGRES_CLAIM,
            Backend::Sqlite => sql::SQLITE_CLAIM,
        };
        // One statement, so no transaction of our own: one round trip and one commit.
        let claimed = sqlx::query(sql)
            .bind(worker)
            .bind(expires.unix_ms())
            .bind(now.unix_ms())
            .fetch_optional(&self.writer)
            .await?;
        let Some(row) = claimed else { return Ok(None) };
        let id: String = row.try_get("id")?;
        let limits =
            serde_json::from_value(rows::json(&row, "limits")?).map_err(|e| StoreError::corrupt("limits", e))?;
        let run = ClaimedRun {
            invocation_id: InvocationId::from_trusted(id),
            tenant_id: TenantId::from_trusted(row.try_get("tenant_id")?),
            agent_slug: row.try_get("agent_slug")?,
            attempt: rows::u32_col(&row, "attempt")?,
            max_attempts: rows::u32_col(&row, "max_attempts")?,
            lease_owner: worker.to_owned(),
            digest: row.try_get("digest")?,
            manifest: rows::json(&row, "manifest")?,
            input: rows::json(&row, "input")?,
            thread_id: row.try_get("thread_id")?,
            timeout_s: rows::u32_col(&row, "timeout_s")?,
            limits,
            next_seq: rows::u64_col(&row, "next_seq")?,
        };
        if self.backend == Backend::Sqlite {
            // Free in-process; on PostgreSQL a NOTIFY per claim is a round trip that no
            // waiter needs (waits are for settled runs, wake-ups for freed slots).
            self.emit(Signal::InvocationChanged(run.invocation_id.clone())).await;
        }
        Ok(Some(run))
    }

    /// Extends the lease of a run this worker holds and reports whether to go on.
    pub async fn queue_renew_lease(&self, run: &RunLease, lease: Duration) -> Result<LeaseStatus> {
        let expires = Timestamp::now().plus_ms(lease.as_millis() as i64);
        let renewed: Option<i64> = sqlx::query_scalar(
            "UPDATE invocations SET lease_expires_at = $1
             WHERE id = $2 AND lease_owner = $3 AND attempt = $4 AND status = 'running' RETURNING cancel_requested",
        )
        .bind(expires.unix_ms())
        .bind(run.invocation_id.as_str())
        .bind(&run.lease_owner)
        .bind(i64::from(run.attempt))
        .fetch_optional(&self.writer)
        .await?;
        Ok(match renewed {
            None => LeaseStatus::Lost,
            Some(0) => LeaseStatus::Held,
            Some(_) => LeaseStatus::CancelRequested,
        })
    }

    /// Records how a run ended. A failure with attempts left becomes `retrying` with a
    /// backoff instead. Returns false when the lease was no longer held (nothing written).
    pub async fn queue_complete(&self, run: &RunLease, done: Completion, retry: &RetryPolicy) -> Result<bool> {
        let now = Timestamp::now();
        let output = match &done.output {
            Some(v) => Some(serde_json::to_string(v).map_err(|e| StoreError::corrupt("output", e))?),
            None => None,
        };
        let retry_at = now.plus_ms(retry.delay_after(run.attempt).as_millis() as i64).unix_ms();
        let sql = match self.backend {
            Backend::Postgres => sql::POSTGRES_COMPLETE,
            Backend::Sqlite => sql::SQLITE_COMPLETE,
        };
        let query = sqlx::query(sql)
            .bind(done.status.as_str())
            .bind(done.status == InvocationStatus::Failed)
            .bind(output)
            .bind(done.error.as_ref().map(|e| e.code.as_str()))
            .bind(done.error.as_ref().map(|e| e.message.as_str()))
            .bind(now.unix_ms())
            .bind(retry_at)
            .bind(clamp_i64(done.usage.wall_ms))
            .bind(clamp_i64(done.usage.cpu_ms))
            .bind(clamp_i64(done.usage.peak_memory_bytes))
            .bind(clamp_i64(done.usage.log_bytes))
            .bind(run.invocation_id.as_str())
            .bind(&run.lease_owner)
            .bind(i64::from(run.attempt));
        match self.backend {
            // One statement that also sends the notifications: nothing left to do after it.
            Backend::Postgres => {
                let changed = Signal::InvocationChanged(run.invocation_id.clone());
                let applied = query
                    .bind(signals::CHANNEL)
                    .bind(changed.encode())
                    .bind(Signal::InvocationQueued.encode())
                    .fetch_optional(&self.writer)
                    .await?;
                Ok(applied.is_some())
            }
            Backend::Sqlite => {
                let mut tx = self.writer.begin().await?;
                // `fetch_all`: through the `Any` driver, `fetch_optional` stops at the first
                // statement's result and would never read the update's row.
                let updated = query.fetch_all(&mut *tx).await?;
                let Some(row) = updated.first() else { return Ok(false) };
                let status: String = row.try_get("status")?;
                tx.commit().await?;
                self.emit(Signal::InvocationChanged(run.invocation_id.clone())).await;
                if status == InvocationStatus::Retrying.as_str() {
                    self.emit(Signal::InvocationQueued).await;
                }
                Ok(true)
            }
        }
    }

    /// Puts back every run whose lease has expired (its worker died or lost contact).
    /// The attempt it used is counted; with no attempts left the run fails.
    pub async fn queue_reap_expired_unscoped(&self) -> Result<u64> {
        let now = Timestamp::now().unix_ms();
        let reaped = sqlx::query(
            "UPDATE invocations SET
                status = CASE WHEN attempt >= max_attempts THEN 'failed' ELSE 'queued' END,
                error_code = CASE WHEN attempt >= max_attempts THEN 'worker_lost' ELSE error_code END,
                error_message = CASE WHEN attempt >= max_attempts
                    THEN 'the worker running this invocation stopped responding' ELSE error_message END,
                finished_at = CASE WHEN attempt >= max_attempts THEN $1 ELSE NULL END,
                run_after = $1, lease_owner = NULL, lease_expires_at = NULL
             WHERE status = 'running' AND lease_expires_at < $1",
        )
        .bind(now)
        .execute(&self.writer)
        .await?
        .rows_affected();
        if reaped > 0 {
            tracing::warn!(reaped, "requeued runs whose lease expired");
            self.emit(Signal::InvocationQueued).await;
        }
        Ok(reaped)
    }

    /// Earliest `run_after` among runs waiting for a retry, so the worker can sleep
    /// exactly until then instead of polling.
    pub async fn queue_next_wakeup_unscoped(&self) -> Result<Option<Timestamp>> {
        let next: Option<i64> =
            sqlx::query_scalar("SELECT MIN(run_after) FROM invocations WHERE status IN ('queued', 'retrying')")
                .fetch_one(&self.reader)
                .await?;
        Ok(next.map(Timestamp::from_unix_ms))
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Hands a run back to the queue untouched (the worker is shutting down): the
    /// attempt it used is returned too, since the agent did nothing wrong.
    pub async fn queue_release(&self, run: &RunLease) -> Result<bool> {
        let released = sqlx::query(
            "UPDATE invocations SET status = 'queued', attempt = attempt - 1, run_after = $1,
                lease_owner = NULL, lease_expires_at = NULL
             WHERE id = $2 AND lease_owner = $3 AND attempt = $4 AND status = 'running'",
        )
        .bind(Timestamp::now().unix_ms())
        .bind(run.invocation_id.as_str())
        .bind(&run.lease_owner)
        .bind(i64::from(run.attempt))
        .execute(&self.writer)
        .await?;
        let applied = released.rows_affected() == 1;
        if applied {
            self.emit(Signal::InvocationChanged(run.invocation_id.clone())).await;
            self.emit(Signal::InvocationQueued).await;
        }
        Ok(applied)
    }
}

impl Store {
    /// Claims a run, waiting up to `wait` for one: woken by store signals (a new run, or a
    /// finished one freeing a tenant's slot), by the next retry coming due, or by a bounded
    /// fallback timer that covers a missed signal.
    pub async fn queue_claim_waiting_unscoped(
        &self,
        worker: &str,
        lease: Duration,
        wait: Duration,
    ) -> Result<Option<ClaimedRun>> {
        const FALLBACK: Duration = Duration::from_secs(2);
        let deadline = tokio::time::Instant::now() + wait;
        let mut signals = self.subscribe();
        loop {
            if let Some(run) = self.queue_claim_unscoped(worker, lease).await? {
                return Ok(Some(run));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let until_retry = match self.queue_next_wakeup_unscoped().await? {
                Some(at) => {
                    Duration::from_millis((at.unix_ms() - agentd_core::Timestamp::now().unix_ms()).max(1) as u64)
                }
                None => FALLBACK,
            };
            let sleep = until_retry.min(FALLBACK).min(deadline - now);
            tokio::select! {
                _ = wait_for_work(&mut signals) => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }
}

async fn wait_for_work(signals: &mut tokio::sync::broadcast::Receiver<Signal>) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match signals.recv().await {
            // A new run, or a finished one that freed a tenant's concurrency slot.
            Ok(Signal::InvocationQueued | Signal::InvocationChanged(_)) => return,
            Ok(_) => continue,
            // Lagged: we may have missed a wake-up, so look at the queue again.
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }
}
