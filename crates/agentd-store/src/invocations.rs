//! Accepting invocations and reading them back. An invocation row *is* its queue entry,
//! so an accepted invocation is durable and claimable in the same commit.

use std::collections::BTreeMap;

use agentd_core::{
    Agent, AgentVersion, AuditAction, Invocation, InvocationId, InvocationStatus, Page, PageRequest, ResourceKind,
    Slug, TenantScope, ThreadId, Timestamp,
};
use serde_json::Value;

use crate::audit::{Audit, resource};
use crate::error::{Conflict, is_unique_violation};
use crate::schedules::{self, ScheduledRun};
use crate::threads::{self, ThreadRun};
use crate::{Result, Signal, Store, StoreError, rows};

/// How long an idempotency key returns the invocation it first created.
const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

pub struct NewInvocation {
    pub input: Value,
    /// The thread it runs on, and what to do if the thread has a run going.
    pub thread: Option<ThreadRun>,
    pub priority: u8,
    pub max_attempts: u32,
    pub timeout_s: u32,
    pub idempotency_key: Option<String>,
    pub metadata: Value,
    /// The run's environment, already resolved and checked.
    pub env: BTreeMap<String, String>,
    /// How long a question the agent asks may wait for its answer; `None`: for good.
    pub input_timeout_s: Option<u32>,
    /// The run that asked for it (a sub-agent's parent), and how deep it is.
    pub parent: Option<ParentRun>,
    /// Where this invocation's own terminal and waiting_for_input events are POSTed
    /// (checked by the domain), beside the tenant's endpoints.
    pub webhook_url: Option<String>,
    /// The schedule's occurrence it is made for.
    pub schedule: Option<ScheduledRun>,
}

/// The running invocation that made a sub-invocation.
#[derive(Debug, Clone)]
pub struct ParentRun {
    pub id: InvocationId,
    /// The sub-invocation's own depth: the parent's + 1.
    pub depth: u32,
}

/// Which invocations a list shows; `None` does not filter.
#[derive(Debug, Default, Clone)]
pub struct InvocationFilter {
    pub agent: Option<Slug>,
    pub status: Option<InvocationStatus>,
    pub thread_id: Option<ThreadId>,
    /// Only the sub-invocations of this run.
    pub parent_id: Option<InvocationId>,
}

/// What accepting an invocation did.
#[derive(Debug, Clone)]
pub enum Enqueued {
    /// A new invocation, queued.
    Created(Invocation),
    /// The idempotency key was seen in the last 24 h: the invocation it created.
    Existing(Invocation),
}

impl Enqueued {
    pub fn invocation(&self) -> &Invocation {
        match self {
            Enqueued::Created(i) | Enqueued::Existing(i) => i,
        }
    }

    pub fn into_invocation(self) -> Invocation {
        match self {
            Enqueued::Created(i) | Enqueued::Existing(i) => i,
        }
    }
}

impl Store {
    /// Whether `key` names an invocation the tenant made in the last 24 h: an invoke with
    /// it is a retry that [`Store::invocation_enqueue`] answers with that invocation.
    pub async fn invocation_idempotency_seen(&self, ctx: &TenantScope, key: &str) -> Result<bool> {
        let since = Timestamp::now().unix_ms() - IDEMPOTENCY_WINDOW_MS;
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM invocations WHERE tenant_id = $1 AND idempotency_key = $2 AND created_at > $3",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(key)
        .bind(since)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(found.is_some())
    }

    /// Accepts an invocation of `version` of `agent`, unless `max_queued` of the tenant's
    /// are already waiting. With an idempotency key seen in the last 24 h, returns the
    /// invocation it created instead.
    pub async fn invocation_enqueue(
        &self,
        ctx: &TenantScope,
        agent: &Agent,
        version: &AgentVersion,
        new: NewInvocation,
        max_queued: u32,
    ) -> Result<Enqueued> {
        let key = new.idempotency_key.clone();
        match self.invocation_enqueue_once(ctx, agent, version, new, max_queued).await {
            // Two first tries with one key raced (PostgreSQL; SQLite has one writer): both
            // found no invocation, and the unique index let one insert. The other's
            // transaction rolled back; it answers with the winner's invocation.
            Err(StoreError::Database(err)) if key.is_some() && is_unique_violation(&err) => {
                let key = key.unwrap_or_default();
                let mut tx = self.begin_scoped_read(ctx).await?;
                let row = sqlx::query("SELECT * FROM invocations WHERE tenant_id = $1 AND idempotency_key = $2")
                    .bind(ctx.tenant_id().as_str())
                    .bind(&key)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                match row {
                    Some(row) => Ok(Enqueued::Existing(rows::invocation(&row)?)),
                    None => Err(StoreError::Database(err)),
                }
            }
            other => other,
        }
    }

    async fn invocation_enqueue_once(
        &self,
        ctx: &TenantScope,
        agent: &Agent,
        version: &AgentVersion,
        new: NewInvocation,
        max_queued: u32,
    ) -> Result<Enqueued> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(ctx).await?;
        if let Some(key) = &new.idempotency_key {
            let existing = sqlx::query("SELECT * FROM invocations WHERE tenant_id = $1 AND idempotency_key = $2")
                .bind(ctx.tenant_id().as_str())
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = existing {
                let invocation = rows::invocation(&row)?;
                if now.unix_ms() - invocation.created_at.unix_ms() < IDEMPOTENCY_WINDOW_MS {
                    return Ok(Enqueued::Existing(invocation));
                }
                // The key has expired: release it so the new invocation can take it.
                sqlx::query("UPDATE invocations SET idempotency_key = NULL WHERE id = $1")
                    .bind(invocation.id.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let queued: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM invocations WHERE tenant_id = $1 AND status IN ('queued', 'retrying')",
        )
        .bind(ctx.tenant_id().as_str())
        .fetch_one(&mut *tx)
        .await?;
        if queued >= i64::from(max_queued) {
            return Err(StoreError::QuotaReached { count: queued.unsigned_abs() });
        }
        let prepared = match &new.thread {
            Some(thread) => Some(threads::prepare_run(&mut tx, self.backend, ctx, agent, thread, now.unix_ms()).await?),
            None => None,
        };
        let id = InvocationId::generate();
        if let Some(run) = &new.schedule
            && !schedules::take_occurrence(&mut tx, ctx, run, &id).await?
        {
            return Err(Conflict::OccurrenceTaken.into());
        }
        let input = serde_json::to_string(&new.input).map_err(|e| StoreError::corrupt("input", e))?;
        let metadata = serde_json::to_string(&new.metadata).map_err(|e| StoreError::corrupt("metadata", e))?;
        let env = serde_json::to_string(&new.env).map_err(|e| StoreError::corrupt("env", e))?;
        let row = sqlx::query(
            "INSERT INTO invocations (id, tenant_id, agent_id, agent_slug, version_id, version, thread_id, status, input,
                priority, max_attempts, timeout_s, idempotency_key, metadata, created_at, run_after, env, input_timeout_s,
                parent_id, depth, webhook_url, schedule_id, scheduled_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, $11, $12, $13, $14, $14, $15, $16, $17, $18,
                $19, $20, $21)
             RETURNING *",
        )
        .bind(id.as_str())
        .bind(ctx.tenant_id().as_str())
        .bind(agent.id.as_str())
        .bind(agent.slug.as_str())
        .bind(version.id.as_str())
        .bind(i64::from(version.version))
        .bind(new.thread.as_ref().map(|t| t.id.as_str()))
        .bind(&input)
        .bind(i64::from(new.priority))
        .bind(i64::from(new.max_attempts))
        .bind(i64::from(new.timeout_s))
        .bind(&new.idempotency_key)
        .bind(&metadata)
        .bind(now.unix_ms())
        .bind(&env)
        .bind(new.input_timeout_s.map(i64::from))
        .bind(new.parent.as_ref().map(|p| p.id.as_str()))
        .bind(new.parent.as_ref().map_or(0, |p| i64::from(p.depth)))
        .bind(new.webhook_url.as_deref())
        .bind(new.schedule.as_ref().map(|s| s.schedule_id.as_str()))
        .bind(new.schedule.as_ref().map(|s| s.scheduled_at.unix_ms()))
        .fetch_one(&mut *tx)
        .await?;
        // The input is the caller's data, not a fact about the change: it stays out.
        Audit::new(AuditAction::InvocationCreate, resource::INVOCATION, id.as_str())
            .details(serde_json::json!({
                "agent": agent.slug,
                "version": version.version,
                "thread_id": new.thread.as_ref().map(|t| t.id.as_str()),
                "parent_id": new.parent.as_ref().map(|p| p.id.as_str()),
                "schedule_id": new.schedule.as_ref().map(|s| s.schedule_id.as_str()),
            }))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        if let Some(prepared) = prepared {
            prepared.signal(self).await;
        }
        self.emit(Signal::InvocationQueued).await;
        Ok(Enqueued::Created(rows::invocation(&row)?))
    }

    pub async fn invocation_get(&self, ctx: &TenantScope, id: &InvocationId) -> Result<Invocation> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let row = sqlx::query("SELECT * FROM invocations WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound(ResourceKind::Invocation))?;
        tx.commit().await?;
        rows::invocation(&row)
    }

    pub async fn invocations_list(
        &self,
        ctx: &TenantScope,
        filter: &InvocationFilter,
        page: &PageRequest<InvocationId>,
    ) -> Result<Page<Invocation>> {
        let limit = i64::from(page.limit());
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = sqlx::query(
            "SELECT * FROM invocations
             WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) AND ($3 IS NULL OR agent_slug = $3)
               AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR thread_id = $5)
               AND ($7 IS NULL OR parent_id = $7)
             ORDER BY id DESC LIMIT $6",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(page.after().map(InvocationId::as_str))
        .bind(filter.agent.as_ref().map(Slug::as_str))
        .bind(filter.status.map(InvocationStatus::as_str))
        .bind(filter.thread_id.as_ref().map(ThreadId::as_str))
        .bind(limit + 1)
        .bind(filter.parent_id.as_ref().map(InvocationId::as_str))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let list = found.iter().map(rows::invocation).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(list, limit, |i| i.id.to_string()))
    }

    /// Cancels an invocation: one that has not started never runs; a running one is
    /// flagged and its worker kills the process tree and records `cancelled`.
    /// Cancelling a finished invocation is a conflict.
    pub async fn invocation_cancel(&self, ctx: &TenantScope, id: &InvocationId) -> Result<Invocation> {
        let now = Timestamp::now().unix_ms();
        let mut tx = self.begin_scoped(ctx).await?;
        let stopped = sqlx::query(
            "UPDATE invocations SET status = 'cancelled', finished_at = $3,
                error_code = 'cancelled', error_message = 'cancelled before it ran to completion'
             WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'retrying', 'waiting_for_input')",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let flagged = sqlx::query(
            "UPDATE invocations SET cancel_requested = 1 WHERE tenant_id = $1 AND id = $2 AND status = 'running'",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT * FROM invocations WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound(ResourceKind::Invocation))?;
        if stopped.rows_affected() > 0 || flagged.rows_affected() > 0 {
            let how = if stopped.rows_affected() > 0 { "stopped" } else { "kill_requested" };
            Audit::new(AuditAction::InvocationCancel, resource::INVOCATION, id.as_str())
                .details(serde_json::json!({"outcome": how}))
                .record(&mut tx, ctx)
                .await?;
        }
        tx.commit().await?;
        let invocation = rows::invocation(&row)?;
        if stopped.rows_affected() > 0 {
            self.emit(Signal::InvocationChanged(invocation.id.clone())).await;
        } else if flagged.rows_affected() > 0 {
            self.emit(Signal::CancelRequested(invocation.id.clone())).await;
        } else if invocation.status.is_terminal() {
            return Err(Conflict::InvocationFinished { status: invocation.status }.into());
        }
        Ok(invocation)
    }
}
