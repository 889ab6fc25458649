//! Accepting invocations and reading them back. An invocation row *is* its queue entry,
//! so an accepted invocation is durable and claimable in the same commit.

use agentd_core::{Agent, AgentVersion, Invocation, InvocationId, InvocationStatus, Page, TenantCtx, Timestamp};
use serde_json::Value;

use crate::{Result, Signal, Store, StoreError, rows};

/// How long an idempotency key returns the invocation it first created.
const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

pub struct NewInvocation {
    pub input: Value,
    pub thread_id: Option<String>,
    pub priority: u8,
    pub max_attempts: u32,
    pub timeout_s: u32,
    pub idempotency_key: Option<String>,
    pub metadata: Value,
}

#[derive(Debug, Default, Clone)]
pub struct InvocationFilter {
    pub agent: Option<String>,
    pub status: Option<InvocationStatus>,
    pub thread_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl Store {
    /// Accepts an invocation of `version` of `agent`. With an idempotency key seen in the
    /// last 24 h, returns the invocation it created instead (`created == false`).
    pub async fn invocation_enqueue(
        &self,
        ctx: &TenantCtx,
        agent: &Agent,
        version: &AgentVersion,
        new: NewInvocation,
        max_queued: u32,
    ) -> Result<(Invocation, bool)> {
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
                    return Ok((invocation, false));
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
            return Err(StoreError::LimitExceeded {
                code: "queue_full",
                message: format!("{queued} invocations are already queued (limit {max_queued}); retry later"),
            });
        }
        let id = InvocationId::generate();
        let input = serde_json::to_string(&new.input).map_err(|e| StoreError::corrupt("input", e))?;
        let metadata = serde_json::to_string(&new.metadata).map_err(|e| StoreError::corrupt("metadata", e))?;
        let row = sqlx::query(
            "INSERT INTO invocations (id, tenant_id, agent_id, agent_slug, version_id, version, thread_id, status, input,
                priority, max_attempts, timeout_s, idempotency_key, metadata, created_at, run_after)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, $11, $12, $13, $14, $14) RETURNING *",
        )
        .bind(id.as_str())
        .bind(ctx.tenant_id().as_str())
        .bind(agent.id.as_str())
        .bind(agent.slug.as_str())
        .bind(version.id.as_str())
        .bind(i64::from(version.version))
        .bind(&new.thread_id)
        .bind(&input)
        .bind(i64::from(new.priority))
        .bind(i64::from(new.max_attempts))
        .bind(i64::from(new.timeout_s))
        .bind(&new.idempotency_key)
        .bind(&metadata)
        .bind(now.unix_ms())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.emit(Signal::InvocationQueued).await;
        Ok((rows::invocation(&row)?, true))
    }

    pub async fn invocation_get(&self, ctx: &TenantCtx, id: &InvocationId) -> Result<Invocation> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let row = sqlx::query("SELECT * FROM invocations WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound { what: "invocation" })?;
        tx.commit().await?;
        rows::invocation(&row)
    }

    pub async fn invocations_list(&self, ctx: &TenantCtx, filter: &InvocationFilter) -> Result<Page<Invocation>> {
        let limit = rows::page_limit(filter.limit);
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = sqlx::query(
            "SELECT * FROM invocations
             WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) AND ($3 IS NULL OR agent_slug = $3)
               AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR thread_id = $5)
             ORDER BY id DESC LIMIT $6",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(&filter.cursor)
        .bind(&filter.agent)
        .bind(filter.status.map(InvocationStatus::as_str))
        .bind(&filter.thread_id)
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let list = found.iter().map(rows::invocation).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(list, limit, |i| i.id.to_string()))
    }

    /// Cancels an invocation: one that has not started never runs; a running one is
    /// flagged and its worker kills the process tree and records `cancelled`.
    /// Cancelling a finished invocation is a conflict.
    pub async fn invocation_cancel(&self, ctx: &TenantCtx, id: &InvocationId) -> Result<Invocation> {
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
            .ok_or(StoreError::NotFound { what: "invocation" })?;
        tx.commit().await?;
        let invocation = rows::invocation(&row)?;
        if stopped.rows_affected() > 0 {
            self.emit(Signal::InvocationChanged(invocation.id.clone())).await;
        } else if flagged.rows_affected() > 0 {
            self.emit(Signal::CancelRequested(invocation.id.clone())).await;
        } else if invocation.status.is_terminal() {
            return Err(StoreError::conflict(
                "invocation_finished",
                format!("invocation {} already finished with status {}", invocation.id, invocation.status),
            ));
        }
        Ok(invocation)
    }
}
