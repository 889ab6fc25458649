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
use agentd_core::{Fault, InvocationId, InvocationStatus, Secret, TenantId, Timestamp};
use serde_json::Value;
use sqlx::Row;

use crate::credentials::hash_secret;
use crate::events::append_status_event;
use crate::{Backend, Result, Signal, Store, StoreError, rows, signals, threads};

mod sql;

/// What the domain decided for a run that fails: when a retry of an agent failure may
/// start, and how many platform recoveries an invocation may have. Whether a run gets
/// either is read from its row, in the completing statement, never from the worker.
#[derive(Debug, Clone, Copy)]
pub struct RetryPlan {
    pub retry_at: Timestamp,
    pub max_recoveries: u32,
}

impl Store {
    /// Claims the next ready run for `worker`. Tenants are served round-robin (the one
    /// served longest ago goes first) among those below their concurrency limit; within
    /// a tenant, highest priority first, then oldest. `run_token` becomes the attempt's
    /// credential: its hash is written by the claim itself, and it rides in the claim.
    pub async fn queue_claim_unscoped(
        &self,
        worker: &str,
        lease: Duration,
        run_token: &Secret,
    ) -> Result<Option<ClaimedRun>> {
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
            .bind(hash_secret(run_token.expose()))
            .bind(i64::from(self.default_limits.max_concurrent_invocations))
            .fetch_optional(&self.writer)
            .await?;
        let Some(row) = claimed else { return Ok(None) };
        // Only a resumed run needs its answers: one more read, off the common path.
        let resume = match rows::u32_col(&row, "resumes")? {
            0 => None,
            _ => Some(self.interrupt_answers_unscoped(&row.try_get::<String, _>("id")?).await?),
        };
        let id: String = row.try_get("id")?;
        let thread_id: Option<String> = row.try_get("thread_id")?;
        let thread_state = match &thread_id {
            Some(thread) => self.thread_state_for_run_unscoped(thread, &id).await?,
            None => Value::Null,
        };
        let limits = rows::limits(&row, &self.default_limits)?;
        let run = ClaimedRun {
            invocation_id: InvocationId::from_trusted(id),
            tenant_id: TenantId::from_trusted(row.try_get("tenant_id")?),
            agent_slug: row.try_get("agent_slug")?,
            attempt: rows::u32_col(&row, "attempt")?,
            max_attempts: rows::u32_col(&row, "max_attempts")?,
            lease_owner: worker.to_owned(),
            run_token: run_token.clone(),
            digest: row.try_get("digest")?,
            manifest: rows::json(&row, "manifest")?,
            dependencies: row.try_get("dependencies")?,
            input: rows::json(&row, "input")?,
            resume,
            env: rows::env(&row)?,
            // Sealed in the store; the domain opens them after the claim.
            secrets: Default::default(),
            thread_id,
            thread_state,
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

    /// Records how a run ended. An agent failure with attempts left becomes `retrying`
    /// until `plan.retry_at`; a platform failure with recoveries left goes back to the
    /// queue at once as a new attempt. Returns false when the lease was no longer held
    /// (nothing written).
    pub async fn queue_complete(&self, run: &RunLease, done: Completion, plan: &RetryPlan) -> Result<bool> {
        let now = Timestamp::now();
        let output = match &done.output {
            Some(v) => Some(serde_json::to_string(v).map_err(|e| StoreError::corrupt("output", e))?),
            None => None,
        };
        let platform_fault = done.fault == Fault::Platform && done.status == InvocationStatus::Failed;
        let sql = match self.backend {
            Backend::Postgres => sql::POSTGRES_COMPLETE,
            Backend::Sqlite => sql::SQLITE_COMPLETE,
        };
        let query = sqlx::query(sql)
            .bind(done.status.as_str())
            .bind(done.status == InvocationStatus::Failed && !platform_fault)
            .bind(output)
            .bind(done.error.as_ref().map(|e| e.code.as_str()))
            .bind(done.error.as_ref().map(|e| e.message.as_str()))
            .bind(now.unix_ms())
            .bind(plan.retry_at.unix_ms())
            .bind(clamp_i64(done.usage.wall_ms))
            .bind(clamp_i64(done.usage.cpu_ms))
            .bind(clamp_i64(done.usage.peak_memory_bytes))
            .bind(clamp_i64(done.usage.log_bytes))
            .bind(run.invocation_id.as_str())
            .bind(&run.lease_owner)
            .bind(i64::from(run.attempt))
            .bind(platform_fault)
            .bind(i64::from(plan.max_recoveries));
        // A question is recorded with the status that waits for its answer, in one commit.
        let question = match (&done.interrupt, done.status) {
            (Some(value), InvocationStatus::WaitingForInput) => {
                Some(serde_json::to_string(value).map_err(|e| StoreError::corrupt("interrupt", e))?)
            }
            _ => None,
        };
        // A run on a thread reports the thread's state, written as a checkpoint in the same
        // commit as the status that keeps it.
        let state = match &done.state {
            Some(v) => Some(serde_json::to_string(v).map_err(|e| StoreError::corrupt("state", e))?),
            None => None,
        };
        match self.backend {
            // One statement that also sends the notifications: nothing left to do after it.
            Backend::Postgres if question.is_none() && state.is_none() => {
                let changed = Signal::InvocationChanged(run.invocation_id.clone());
                let applied = query
                    .bind(signals::CHANNEL)
                    .bind(changed.encode())
                    .bind(Signal::InvocationQueued.encode())
                    .fetch_optional(&self.writer)
                    .await?;
                Ok(applied.is_some())
            }
            Backend::Postgres => {
                let changed = Signal::InvocationChanged(run.invocation_id.clone());
                let mut tx = self.writer.begin().await?;
                let applied = query
                    .bind(signals::CHANNEL)
                    .bind(changed.encode())
                    .bind(Signal::InvocationQueued.encode())
                    .fetch_optional(&mut *tx)
                    .await?;
                if applied.is_none() {
                    return Ok(false);
                }
                record_question(&mut tx, &run.invocation_id, question.as_deref(), now).await?;
                if let Some(state) = &state {
                    threads::record_checkpoint(&mut tx, &run.invocation_id, state, now.unix_ms()).await?;
                }
                tx.commit().await?;
                Ok(true)
            }
            Backend::Sqlite => {
                let mut tx = self.writer.begin().await?;
                // `fetch_all`: through the `Any` driver, `fetch_optional` stops at the first
                // statement's result and would never read the update's row.
                let updated = query.fetch_all(&mut *tx).await?;
                let Some(row) = updated.first() else { return Ok(false) };
                let status: String = row.try_get("status")?;
                record_question(&mut tx, &run.invocation_id, question.as_deref(), now).await?;
                if let Some(state) = &state {
                    threads::record_checkpoint(&mut tx, &run.invocation_id, state, now.unix_ms()).await?;
                }
                tx.commit().await?;
                self.emit(Signal::InvocationChanged(run.invocation_id.clone())).await;
                if status == InvocationStatus::Retrying.as_str() || status == InvocationStatus::Queued.as_str() {
                    self.emit(Signal::InvocationQueued).await;
                }
                Ok(true)
            }
        }
    }

    /// Puts back every run whose lease has expired (its worker died or lost contact) as
    /// a new attempt: the agent did nothing wrong, so it does not count against
    /// `max_attempts`, only against `max_recoveries`; past that, the run fails with
    /// `worker_lost`. Each recovery is recorded as a status event saying why.
    pub async fn queue_recover_expired_unscoped(&self, max_recoveries: u32) -> Result<u64> {
        let now = Timestamp::now();
        let mut tx = self.writer.begin().await?;
        // In SET every expression reads the row as it was, so `recoveries < $2` is the same
        // test in each.
        let reaped = sqlx::query(
            "UPDATE invocations SET
                status = CASE WHEN recoveries < $2 THEN 'queued' ELSE 'failed' END,
                recoveries = CASE WHEN recoveries < $2 THEN recoveries + 1 ELSE recoveries END,
                error_code = 'worker_lost',
                error_message = 'the worker running attempt ' || attempt || ' stopped responding',
                finished_at = CASE WHEN recoveries < $2 THEN NULL ELSE $1 END,
                run_after = $1, lease_owner = NULL, lease_expires_at = NULL
             WHERE status = 'running' AND lease_expires_at < $1
             RETURNING id, tenant_id, status, attempt, recoveries",
        )
        .bind(now.unix_ms())
        .bind(i64::from(max_recoveries))
        .fetch_all(&mut *tx)
        .await?;
        let mut changed = Vec::with_capacity(reaped.len());
        for row in &reaped {
            let id = InvocationId::from_trusted(row.try_get("id")?);
            let status: String = row.try_get("status")?;
            let attempt = rows::u32_col(row, "attempt")?;
            let recoveries = rows::u32_col(row, "recoveries")?;
            let (level, message, data) = if status == InvocationStatus::Queued.as_str() {
                let message = format!(
                    "queued: the worker running attempt {attempt} stopped responding; running it again as a new \
                     attempt (recovery {recoveries} of {max_recoveries})"
                );
                let data = serde_json::json!({"status": "queued", "reason": "worker_lost", "recovery": recoveries});
                ("warn", message, data)
            } else {
                let message = format!(
                    "failed: the worker running attempt {attempt} stopped responding, and the run was already \
                     recovered {recoveries} times"
                );
                ("error", message, serde_json::json!({"status": "failed", "reason": "worker_lost"}))
            };
            let tenant_id: String = row.try_get("tenant_id")?;
            append_status_event(&mut tx, id.as_str(), &tenant_id, now.unix_ms(), level, &message, &data).await?;
            changed.push(id);
        }
        tx.commit().await?;
        if !changed.is_empty() {
            tracing::warn!(reaped = changed.len(), "recovered runs whose lease expired");
            for id in changed.iter() {
                self.emit(Signal::InvocationChanged(id.clone())).await;
            }
            self.emit(Signal::InvocationQueued).await;
        }
        Ok(changed.len() as u64)
    }

    /// The earliest `run_after` still in the future among waiting runs (a retry's
    /// backoff), so a claimer can sleep exactly until then instead of polling. Runs due
    /// already but not claimable wait for a slot, and a run that ends signals that.
    pub async fn queue_next_wakeup_unscoped(&self, now: Timestamp) -> Result<Option<Timestamp>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(run_after) FROM invocations WHERE status IN ('queued', 'retrying') AND run_after > $1",
        )
        .bind(now.unix_ms())
        .fetch_one(&self.reader)
        .await?;
        Ok(next.map(Timestamp::from_unix_ms))
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What the output of a run is checked against when it succeeds.
#[derive(Debug, Clone)]
pub struct RunOutputSchemas {
    /// The agent's `output_schema` (it wins over the manifest's); `None` when unset or
    /// when the agent was deleted since the run was accepted.
    pub agent_schema: Option<Value>,
    /// The manifest of the version the run runs.
    pub manifest: Value,
    /// The `seq` the run's next event gets.
    pub next_seq: u64,
}

impl Store {
    /// The schemas a run's output is checked against, while `run`'s lease is current
    /// (`None` when it is not: the completion will not apply either).
    pub async fn queue_output_schemas(&self, run: &RunLease) -> Result<Option<RunOutputSchemas>> {
        let found = sqlx::query(
            "SELECT a.output_schema, v.manifest,
                (SELECT COALESCE(MAX(e.seq), 0) + 1 FROM invocation_events e WHERE e.invocation_id = i.id) AS next_seq
             FROM invocations i JOIN agent_versions v ON v.id = i.version_id LEFT JOIN agents a ON a.id = i.agent_id
             WHERE i.id = $1 AND i.lease_owner = $2 AND i.attempt = $3 AND i.status = 'running'",
        )
        .bind(run.invocation_id.as_str())
        .bind(&run.lease_owner)
        .bind(i64::from(run.attempt))
        .fetch_optional(&self.writer)
        .await?;
        let Some(row) = found else { return Ok(None) };
        Ok(Some(RunOutputSchemas {
            agent_schema: rows::opt_json(&row, "output_schema")?,
            manifest: rows::json(&row, "manifest")?,
            next_seq: rows::u64_col(&row, "next_seq")?,
        }))
    }
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

/// Records the question of an invocation that now waits for its answer (round
/// `resumes + 1`) and starts its input timeout, if it has one.
async fn record_question(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &InvocationId,
    question: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    let Some(question) = question else { return Ok(()) };
    sqlx::query(
        "INSERT INTO invocation_interrupts (invocation_id, round, tenant_id, value, created_at)
         SELECT id, resumes + 1, tenant_id, $2, $3 FROM invocations WHERE id = $1 AND status = 'waiting_for_input'",
    )
    .bind(id.as_str())
    .bind(question)
    .bind(now.unix_ms())
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE invocations SET input_deadline_at = $2 + input_timeout_s * 1000
         WHERE id = $1 AND status = 'waiting_for_input' AND input_timeout_s IS NOT NULL",
    )
    .bind(id.as_str())
    .bind(now.unix_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
