//! The queue: claiming runs under a lease, renewing it, completing with fencing, and
//! putting back runs whose worker vanished.
//!
//! A claim is a short transaction that sets `lease_owner`, `lease_expires_at` and
//! `attempt = attempt + 1`; no row lock is held while the agent runs. Completion and
//! renewal match on `(id, lease_owner, attempt)`, so a worker that wakes up late cannot
//! overwrite a run that has since been handed to another.

use std::time::Duration;

pub use agentd_core::queue::{ClaimedRun, Completion, LeaseStatus, RunLease};
use agentd_core::{InvocationId, InvocationStatus, TenantId, Timestamp};
use sqlx::Row;

use crate::{Backend, Result, Signal, Store, StoreError, rows};

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

/// The tenant to serve next: has a ready run, is below its concurrency limit, and was
/// served longest ago.
const PICK_TENANT_SQLITE: &str = "SELECT t.id FROM tenants t
    WHERE t.status = 'active'
      AND EXISTS (SELECT 1 FROM invocations i
                  WHERE i.tenant_id = t.id AND i.status IN ('queued', 'retrying') AND i.run_after <= $1)
      AND (SELECT COUNT(*) FROM invocations r WHERE r.tenant_id = t.id AND r.status = 'running') < t.max_concurrent
    ORDER BY t.last_claimed_at, t.id LIMIT 1";

const CLAIM_IN_TENANT_SQLITE: &str = "UPDATE invocations SET status = 'running', attempt = attempt + 1,
        lease_owner = $1, lease_expires_at = $2, started_at = COALESCE(started_at, $3), cancel_requested = 0
    WHERE id = (SELECT id FROM invocations
                WHERE tenant_id = $4 AND status IN ('queued', 'retrying') AND run_after <= $3
                ORDER BY priority DESC, id LIMIT 1)
    RETURNING id, tenant_id, agent_slug, version_id, attempt, max_attempts, input, thread_id, timeout_s";

/// The same in one statement. Locking the tenant row (skipping tenants another claim
/// holds) makes the running count exact, so the concurrency limit holds across workers.
const CLAIM_POSTGRES: &str = "WITH tenant AS (
        SELECT t.id FROM tenants t
        WHERE t.status = 'active'
          AND EXISTS (SELECT 1 FROM invocations i
                      WHERE i.tenant_id = t.id AND i.status IN ('queued', 'retrying') AND i.run_after <= $3)
          AND (SELECT COUNT(*) FROM invocations r WHERE r.tenant_id = t.id AND r.status = 'running') < t.max_concurrent
        ORDER BY t.last_claimed_at, t.id LIMIT 1
        FOR UPDATE OF t SKIP LOCKED
    ), pick AS (
        SELECT i.id FROM invocations i JOIN tenant ON i.tenant_id = tenant.id
        WHERE i.status IN ('queued', 'retrying') AND i.run_after <= $3
        ORDER BY i.priority DESC, i.id LIMIT 1
        FOR UPDATE OF i SKIP LOCKED
    ), served AS (
        UPDATE tenants SET last_claimed_at = $3 FROM tenant WHERE tenants.id = tenant.id RETURNING tenants.id
    )
    UPDATE invocations SET status = 'running', attempt = attempt + 1,
        lease_owner = $1, lease_expires_at = $2, started_at = COALESCE(started_at, $3), cancel_requested = 0
    FROM pick, served WHERE invocations.id = pick.id
    RETURNING invocations.id, invocations.tenant_id, invocations.agent_slug, invocations.version_id,
        invocations.attempt, invocations.max_attempts, invocations.input, invocations.thread_id, invocations.timeout_s,
        (SELECT v.digest FROM agent_versions v WHERE v.id = invocations.version_id) AS digest,
        (SELECT v.manifest FROM agent_versions v WHERE v.id = invocations.version_id) AS manifest,
        (SELECT t.limits FROM tenants t WHERE t.id = invocations.tenant_id) AS limits,
        (SELECT COALESCE(MAX(e.seq), 0) + 1 FROM invocation_events e WHERE e.invocation_id = invocations.id) AS next_seq";

impl Store {
    /// Claims the next ready run for `worker`. Tenants are served round-robin (the one
    /// served longest ago goes first) among those below their concurrency limit; within
    /// a tenant, highest priority first, then oldest.
    pub async fn queue_claim_unscoped(&self, worker: &str, lease: Duration) -> Result<Option<ClaimedRun>> {
        let now = Timestamp::now();
        let expires = now.plus_ms(lease.as_millis() as i64);
        let mut tx = self.writer.begin().await?;
        let claimed = match self.backend {
            Backend::Postgres => {
                sqlx::query(CLAIM_POSTGRES)
                    .bind(worker)
                    .bind(expires.unix_ms())
                    .bind(now.unix_ms())
                    .fetch_optional(&mut *tx)
                    .await?
            }
            Backend::Sqlite => {
                // One writer connection: this transaction is the only one claiming.
                let tenant: Option<String> =
                    sqlx::query_scalar(PICK_TENANT_SQLITE).bind(now.unix_ms()).fetch_optional(&mut *tx).await?;
                let Some(tenant) = tenant else { return Ok(None) };
                sqlx::query("UPDATE tenants SET last_claimed_at = $1 WHERE id = $2")
                    .bind(now.unix_ms())
                    .bind(&tenant)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(CLAIM_IN_TENANT_SQLITE)
                    .bind(worker)
                    .bind(expires.unix_ms())
                    .bind(now.unix_ms())
                    .bind(&tenant)
                    .fetch_optional(&mut *tx)
                    .await?
            }
        };
        let Some(row) = claimed else { return Ok(None) };
        let id: String = row.try_get("id")?;
        // PostgreSQL returns these with the claim (one round trip); SQLite reads them here.
        let version = match self.backend {
            Backend::Postgres => None,
            Backend::Sqlite => Some(
                sqlx::query(
                    "SELECT v.digest, v.manifest, t.limits,
                    (SELECT COALESCE(MAX(seq), 0) + 1 FROM invocation_events e WHERE e.invocation_id = $2) AS next_seq
             FROM agent_versions v JOIN tenants t ON t.id = v.tenant_id WHERE v.id = $1",
                )
                .bind(row.try_get::<String, _>("version_id")?)
                .bind(&id)
                .fetch_one(&mut *tx)
                .await?,
            ),
        };
        tx.commit().await?;
        let version = version.as_ref().unwrap_or(&row);
        let limits =
            serde_json::from_value(rows::json(version, "limits")?).map_err(|e| StoreError::corrupt("limits", e))?;
        let run = ClaimedRun {
            invocation_id: InvocationId::from_trusted(id),
            tenant_id: TenantId::from_trusted(row.try_get("tenant_id")?),
            agent_slug: row.try_get("agent_slug")?,
            attempt: rows::u32_col(&row, "attempt")?,
            max_attempts: rows::u32_col(&row, "max_attempts")?,
            lease_owner: worker.to_owned(),
            digest: version.try_get("digest")?,
            manifest: rows::json(version, "manifest")?,
            input: rows::json(&row, "input")?,
            thread_id: row.try_get("thread_id")?,
            timeout_s: rows::u32_col(&row, "timeout_s")?,
            limits,
            next_seq: rows::u64_col(version, "next_seq")?,
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
        let mut tx = self.writer.begin().await?;
        // Attempts left are read from the row, never taken from the (possibly remote) worker.
        let max_attempts: Option<i64> = sqlx::query_scalar(
            "SELECT max_attempts FROM invocations
             WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'running'",
        )
        .bind(run.invocation_id.as_str())
        .bind(&run.lease_owner)
        .bind(i64::from(run.attempt))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(max_attempts) = max_attempts else { return Ok(false) };
        let retrying = done.status == InvocationStatus::Failed && i64::from(run.attempt) < max_attempts;
        let (status, finished_at, run_after) = if retrying {
            let delay = retry.delay_after(run.attempt);
            (InvocationStatus::Retrying, None, now.plus_ms(delay.as_millis() as i64).unix_ms())
        } else {
            (done.status, Some(now.unix_ms()), now.unix_ms())
        };
        sqlx::query(
            "UPDATE invocations SET status = $1, output = $2, error_code = $3, error_message = $4, finished_at = $5,
                run_after = $6, lease_owner = NULL, lease_expires_at = NULL,
                wall_ms = wall_ms + $7, cpu_ms = cpu_ms + $8,
                peak_memory_bytes = CASE WHEN peak_memory_bytes > $9 THEN peak_memory_bytes ELSE $9 END,
                log_bytes = log_bytes + $10
             WHERE id = $11",
        )
        .bind(status.as_str())
        .bind(output)
        .bind(done.error.as_ref().map(|e| e.code.as_str()))
        .bind(done.error.as_ref().map(|e| e.message.as_str()))
        .bind(finished_at)
        .bind(run_after)
        .bind(clamp_i64(done.usage.wall_ms))
        .bind(clamp_i64(done.usage.cpu_ms))
        .bind(clamp_i64(done.usage.peak_memory_bytes))
        .bind(clamp_i64(done.usage.log_bytes))
        .bind(run.invocation_id.as_str())
        .execute(&mut *tx)
        .await?;
        // The closing status event commits with the status itself: a worker dying between
        // the two can never leave a "succeeded" event on a run that will run again.
        let message = match &done.error {
            Some(err) => format!("{status}: {}", err.message),
            None => status.to_string(),
        };
        sqlx::query(
            "INSERT INTO invocation_events (invocation_id, seq, tenant_id, ts, kind, stream, level, message, data)
             SELECT id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM invocation_events WHERE invocation_id = $1),
                    tenant_id, $2, 'status', 'system', 'info', $3, $4
             FROM invocations WHERE id = $1",
        )
        .bind(run.invocation_id.as_str())
        .bind(now.unix_ms())
        .bind(message)
        .bind(serde_json::json!({ "status": status.as_str() }).to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.emit(Signal::InvocationChanged(run.invocation_id.clone())).await;
        if retrying {
            self.emit(Signal::InvocationQueued).await;
        }
        Ok(true)
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
