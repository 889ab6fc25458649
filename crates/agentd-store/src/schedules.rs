//! Schedules and the occurrences replicas claim. A schedule's `next_run_at` is its next
//! occurrence; [`Store::schedule_claim`] moves it forward only from the value the
//! claimer read (compare-and-set) and inserts the claimed occurrences in the same
//! transaction, so with any number of replicas one of them alone acts on an occurrence.
//! The invocation of an occurrence is made by [`Store::invocation_enqueue`], which sets
//! the occurrence's `invocation_id` in its own transaction only while it is unset.

use agentd_core::{
    AuditAction, InvocationId, Page, PageRequest, ResourceKind, Schedule, ScheduleCatchup, ScheduleId, ScheduleOverlap,
    Slug, TenantId, TenantScope, Timestamp,
};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{Audit, resource};
use crate::{Result, Store, StoreError, rows};

/// A schedule's settings, checked by the domain, as stored.
#[derive(Debug, Clone)]
pub struct ScheduleFields {
    pub agent: Slug,
    pub cron: String,
    pub timezone: String,
    pub input: Value,
    pub enabled: bool,
    pub overlap: ScheduleOverlap,
    pub catchup: ScheduleCatchup,
    pub metadata: Value,
    /// The next occurrence the domain computed; `None` while disabled.
    pub next_run_at: Option<Timestamp>,
}

/// A schedule whose next occurrence has come, with its tenant.
#[derive(Debug, Clone)]
pub struct DueSchedule {
    pub tenant_id: TenantId,
    pub schedule: Schedule,
}

/// The occurrence an invocation is made for, given to [`Store::invocation_enqueue`].
#[derive(Debug, Clone)]
pub struct ScheduledRun {
    pub schedule_id: ScheduleId,
    pub scheduled_at: Timestamp,
    /// A claimed occurrence (its row exists): the invocation is made only if the row has
    /// none yet. `false` for a run asked for by hand (`trigger`), which has no row.
    pub claimed: bool,
}

/// What became of an occurrence.
#[derive(Debug, Clone)]
pub enum OccurrenceOutcome {
    Invoked(InvocationId),
    /// Not run, by the schedule's own policy (`overlap`, `catchup`): why.
    Skipped(String),
    /// The invoke was refused (agent disabled, quota): why.
    Refused(String),
}

/// A claimed occurrence no invocation was made for yet (its claimer may have died).
#[derive(Debug, Clone)]
pub struct PendingOccurrence {
    pub tenant_id: TenantId,
    pub schedule_id: ScheduleId,
    pub scheduled_at: Timestamp,
    /// When it was claimed (or last retried): [`Store::schedule_occurrence_retake`]
    /// takes it over only from this value.
    pub claimed_at: Timestamp,
}

fn schedule_row(row: &AnyRow) -> Result<Schedule> {
    let word = |col: &'static str| -> Result<String> { Ok(row.try_get::<String, _>(col)?) };
    Ok(Schedule {
        id: ScheduleId::from_trusted(row.try_get("id")?),
        agent: Slug::from_trusted(row.try_get("agent_slug")?),
        cron: row.try_get("cron")?,
        timezone: row.try_get("timezone")?,
        input: rows::json(row, "input")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        overlap: ScheduleOverlap::parse(&word("overlap")?).map_err(|e| StoreError::corrupt("overlap", e))?,
        catchup: ScheduleCatchup::parse(&word("catchup")?).map_err(|e| StoreError::corrupt("catchup", e))?,
        metadata: rows::json(row, "metadata")?,
        next_run_at: rows::opt_ts(row, "next_run_at")?,
        last_run_at: rows::opt_ts(row, "last_run_at")?,
        last_invocation_id: row.try_get::<Option<String>, _>("last_invocation_id")?.map(InvocationId::from_trusted),
        last_error: row.try_get("last_error")?,
        created_at: rows::ts(row, "created_at")?,
        updated_at: rows::ts(row, "updated_at")?,
    })
}

fn to_json(value: &Value, column: &'static str) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::corrupt(column, e))
}

async fn read_schedule(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ctx: &TenantScope,
    id: &ScheduleId,
) -> Result<Schedule> {
    let row = sqlx::query("SELECT * FROM schedules WHERE tenant_id = $1 AND id = $2")
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound(ResourceKind::Schedule))?;
    schedule_row(&row)
}

impl Store {
    pub async fn schedule_create(&self, ctx: &TenantScope, fields: &ScheduleFields) -> Result<Schedule> {
        let now = Timestamp::now().unix_ms();
        let id = ScheduleId::generate();
        let mut tx = self.begin_scoped(ctx).await?;
        sqlx::query(
            "INSERT INTO schedules (id, tenant_id, agent_slug, cron, timezone, input, enabled, overlap, catchup,
                metadata, next_run_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
        )
        .bind(id.as_str())
        .bind(ctx.tenant_id().as_str())
        .bind(fields.agent.as_str())
        .bind(&fields.cron)
        .bind(&fields.timezone)
        .bind(to_json(&fields.input, "input")?)
        .bind(i64::from(fields.enabled))
        .bind(fields.overlap.as_str())
        .bind(fields.catchup.as_str())
        .bind(to_json(&fields.metadata, "metadata")?)
        .bind(fields.next_run_at.map(Timestamp::unix_ms))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let schedule = read_schedule(&mut tx, ctx, &id).await?;
        // The input is the caller's data, not a fact about the change: it stays out.
        Audit::new(AuditAction::ScheduleCreate, resource::SCHEDULE, id.as_str())
            .details(serde_json::json!({
                "agent": fields.agent,
                "cron": fields.cron,
                "timezone": fields.timezone,
                "enabled": fields.enabled,
            }))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        Ok(schedule)
    }

    pub async fn schedule_get(&self, ctx: &TenantScope, id: &ScheduleId) -> Result<Schedule> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let schedule = read_schedule(&mut tx, ctx, id).await?;
        tx.commit().await?;
        Ok(schedule)
    }

    /// Schedules newest first.
    pub async fn schedules_list(&self, ctx: &TenantScope, page: &PageRequest<ScheduleId>) -> Result<Page<Schedule>> {
        let limit = i64::from(page.limit());
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = sqlx::query(
            "SELECT * FROM schedules WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(page.after().map(ScheduleId::as_str))
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let list = found.iter().map(schedule_row).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(list, limit, |s| s.id.to_string()))
    }

    /// Replaces a schedule's settings with `fields` (the domain merged the change into
    /// what it read); `changed` names the fields the caller gave, for the audit log.
    pub async fn schedule_update(
        &self,
        ctx: &TenantScope,
        id: &ScheduleId,
        fields: &ScheduleFields,
        changed: &[&str],
    ) -> Result<Schedule> {
        let mut tx = self.begin_scoped(ctx).await?;
        let updated = sqlx::query(
            "UPDATE schedules SET agent_slug = $3, cron = $4, timezone = $5, input = $6, enabled = $7, overlap = $8,
                catchup = $9, metadata = $10, next_run_at = $11, updated_at = $12
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(fields.agent.as_str())
        .bind(&fields.cron)
        .bind(&fields.timezone)
        .bind(to_json(&fields.input, "input")?)
        .bind(i64::from(fields.enabled))
        .bind(fields.overlap.as_str())
        .bind(fields.catchup.as_str())
        .bind(to_json(&fields.metadata, "metadata")?)
        .bind(fields.next_run_at.map(Timestamp::unix_ms))
        .bind(Timestamp::now().unix_ms())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(ResourceKind::Schedule));
        }
        let schedule = read_schedule(&mut tx, ctx, id).await?;
        Audit::new(AuditAction::ScheduleUpdate, resource::SCHEDULE, id.as_str())
            .details(serde_json::json!({"fields": changed, "enabled": fields.enabled}))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        Ok(schedule)
    }

    /// Deletes a schedule and its occurrences; the invocations it made stay.
    pub async fn schedule_delete(&self, ctx: &TenantScope, id: &ScheduleId) -> Result<()> {
        let mut tx = self.begin_scoped(ctx).await?;
        sqlx::query("DELETE FROM schedule_occurrences WHERE tenant_id = $1 AND schedule_id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM schedules WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(ResourceKind::Schedule));
        }
        Audit::new(AuditAction::ScheduleDelete, resource::SCHEDULE, id.as_str()).record(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a run asked for by hand in the audit log (the invocation was made by
    /// [`Store::invocation_enqueue`], which logs `invocation.create`).
    pub async fn schedule_triggered(
        &self,
        ctx: &TenantScope,
        id: &ScheduleId,
        invocation: &InvocationId,
    ) -> Result<()> {
        let mut tx = self.begin_scoped(ctx).await?;
        sqlx::query(
            "UPDATE schedules SET last_run_at = $3, last_invocation_id = $4, last_error = NULL
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(Timestamp::now().unix_ms())
        .bind(invocation.as_str())
        .execute(&mut *tx)
        .await?;
        Audit::new(AuditAction::ScheduleTrigger, resource::SCHEDULE, id.as_str())
            .details(serde_json::json!({"invocation_id": invocation}))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Enabled schedules of every tenant whose next occurrence is at or before `now`,
    /// soonest first.
    pub async fn schedules_due_unscoped(&self, now: Timestamp, limit: u32) -> Result<Vec<DueSchedule>> {
        let found = sqlx::query(
            "SELECT * FROM schedules WHERE next_run_at IS NOT NULL AND next_run_at <= $1 AND enabled = 1
             ORDER BY next_run_at LIMIT $2",
        )
        .bind(now.unix_ms())
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(DueSchedule {
                    tenant_id: TenantId::from_trusted(row.try_get("tenant_id")?),
                    schedule: schedule_row(row)?,
                })
            })
            .collect()
    }

    /// Claims the occurrences `run` and `skip` of a schedule whose `next_run_at` still is
    /// `seen`, and moves it to `next`, in one transaction. `None`: another replica (or a
    /// change of the schedule) got there first, and nothing was written; else the
    /// occurrences of `run` claimed now (one claimed before is not run twice). A skipped
    /// one is recorded as such, with `why`.
    pub async fn schedule_claim(
        &self,
        ctx: &TenantScope,
        id: &ScheduleId,
        seen: Timestamp,
        next: Option<Timestamp>,
        run: &[Timestamp],
        skip: Option<(Timestamp, &str)>,
    ) -> Result<Option<Vec<Timestamp>>> {
        let now = Timestamp::now().unix_ms();
        let mut tx = self.begin_scoped(ctx).await?;
        let moved = sqlx::query(
            "UPDATE schedules SET next_run_at = $4 WHERE tenant_id = $1 AND id = $2 AND next_run_at = $3 AND enabled = 1",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(seen.unix_ms())
        .bind(next.map(Timestamp::unix_ms))
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(None);
        }
        let mut claimed = Vec::new();
        for at in run {
            let inserted = sqlx::query(
                "INSERT INTO schedule_occurrences (schedule_id, scheduled_at, tenant_id, outcome, claimed_at)
                 VALUES ($1, $2, $3, 'claimed', $4) ON CONFLICT DO NOTHING",
            )
            .bind(id.as_str())
            .bind(at.unix_ms())
            .bind(ctx.tenant_id().as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 1 {
                claimed.push(*at);
            }
        }
        if let Some((at, why)) = skip {
            sqlx::query(
                "INSERT INTO schedule_occurrences (schedule_id, scheduled_at, tenant_id, outcome, error, claimed_at)
                 VALUES ($1, $2, $3, 'skipped', $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(id.as_str())
            .bind(at.unix_ms())
            .bind(ctx.tenant_id().as_str())
            .bind(why)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE schedules SET last_run_at = $3, last_error = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(ctx.tenant_id().as_str())
                .bind(id.as_str())
                .bind(at.unix_ms())
                .bind(why)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(claimed))
    }

    /// Records what became of a claimed occurrence, on it and on its schedule.
    pub async fn schedule_occurrence_done(
        &self,
        ctx: &TenantScope,
        id: &ScheduleId,
        scheduled_at: Timestamp,
        outcome: &OccurrenceOutcome,
    ) -> Result<()> {
        let (word, invocation, error) = match outcome {
            OccurrenceOutcome::Invoked(invocation) => ("invoked", Some(invocation.as_str()), None),
            OccurrenceOutcome::Skipped(why) => ("skipped", None, Some(why.as_str())),
            OccurrenceOutcome::Refused(why) => ("refused", None, Some(why.as_str())),
        };
        let mut tx = self.begin_scoped(ctx).await?;
        sqlx::query(
            "UPDATE schedule_occurrences SET outcome = $4, invocation_id = COALESCE(invocation_id, $5), error = $6
             WHERE tenant_id = $1 AND schedule_id = $2 AND scheduled_at = $3",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(scheduled_at.unix_ms())
        .bind(word)
        .bind(invocation)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        // Only a later occurrence than the one last recorded moves `last_run_at`.
        sqlx::query(
            "UPDATE schedules SET last_run_at = $3, last_error = $5,
                last_invocation_id = COALESCE($4, last_invocation_id)
             WHERE tenant_id = $1 AND id = $2 AND (last_run_at IS NULL OR last_run_at <= $3)",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(scheduled_at.unix_ms())
        .bind(invocation)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether a run the schedule made is still unfinished (queued, running, retrying or
    /// waiting for input).
    pub async fn schedule_run_going(&self, ctx: &TenantScope, id: &ScheduleId) -> Result<Option<InvocationId>> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found: Option<String> = sqlx::query_scalar(
            "SELECT id FROM invocations WHERE tenant_id = $1 AND schedule_id = $2
               AND status IN ('queued', 'running', 'retrying', 'waiting_for_input')
             ORDER BY id DESC LIMIT 1",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(found.map(InvocationId::from_trusted))
    }

    /// Occurrences claimed before `before` that still have no invocation and no outcome:
    /// their claimer died between the claim and the invoke.
    pub async fn schedule_occurrences_pending_unscoped(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<PendingOccurrence>> {
        let found = sqlx::query(
            "SELECT tenant_id, schedule_id, scheduled_at, claimed_at FROM schedule_occurrences
             WHERE outcome = 'claimed' AND invocation_id IS NULL AND claimed_at < $1
             ORDER BY claimed_at LIMIT $2",
        )
        .bind(before.unix_ms())
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(PendingOccurrence {
                    tenant_id: TenantId::from_trusted(row.try_get("tenant_id")?),
                    schedule_id: ScheduleId::from_trusted(row.try_get("schedule_id")?),
                    scheduled_at: rows::ts(row, "scheduled_at")?,
                    claimed_at: rows::ts(row, "claimed_at")?,
                })
            })
            .collect()
    }
}

impl Store {
    /// Takes over an orphaned claim (see [`Store::schedule_occurrences_pending_unscoped`])
    /// if it still is as `pending` saw it, stamping it now: of several replicas one alone
    /// retries it, and a retry that fails again waits as long as the first claim did.
    pub async fn schedule_occurrence_retake(&self, ctx: &TenantScope, pending: &PendingOccurrence) -> Result<bool> {
        let mut tx = self.begin_scoped(ctx).await?;
        let taken = sqlx::query(
            "UPDATE schedule_occurrences SET claimed_at = $5
             WHERE tenant_id = $1 AND schedule_id = $2 AND scheduled_at = $3 AND claimed_at = $4
               AND outcome = 'claimed' AND invocation_id IS NULL",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(pending.schedule_id.as_str())
        .bind(pending.scheduled_at.unix_ms())
        .bind(pending.claimed_at.unix_ms())
        // Always a new value, so a second retaker's compare fails even within one ms.
        .bind(Timestamp::now().unix_ms().max(pending.claimed_at.unix_ms() + 1))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Deletes the settled occurrences claimed before `before` (the invocations they made
    /// stay); returns how many. A claim's row only guards against a second run while the
    /// occurrence could still be retried, so a day's worth is plenty.
    pub async fn schedule_occurrences_prune_unscoped(&self, before: Timestamp) -> Result<u64> {
        let deleted = sqlx::query("DELETE FROM schedule_occurrences WHERE claimed_at < $1 AND outcome <> 'claimed'")
            .bind(before.unix_ms())
            .execute(&self.writer)
            .await?;
        Ok(deleted.rows_affected())
    }
}

/// In the transaction that inserts invocation `id` for `run`: takes the claimed
/// occurrence for it. `false`: the occurrence has its invocation already (or is gone),
/// and the caller must make none.
pub(crate) async fn take_occurrence(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ctx: &TenantScope,
    run: &ScheduledRun,
    id: &InvocationId,
) -> Result<bool> {
    if !run.claimed {
        return Ok(true);
    }
    let taken = sqlx::query(
        "UPDATE schedule_occurrences SET invocation_id = $4, outcome = 'invoked'
         WHERE tenant_id = $1 AND schedule_id = $2 AND scheduled_at = $3 AND invocation_id IS NULL
           AND outcome = 'claimed'",
    )
    .bind(ctx.tenant_id().as_str())
    .bind(run.schedule_id.as_str())
    .bind(run.scheduled_at.unix_ms())
    .bind(id.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(taken.rows_affected() == 1)
}
