//! Human in the loop: an invocation's questions and their answers. A completion that
//! waits for input records its question (`queue.rs`); answering queues the invocation
//! again in the same transaction that records the answer, so of two answers to one
//! question exactly one wins; a question nobody answers in time ends the invocation.

use agentd_core::{
    AuditAction, Interrupt, Invocation, InvocationId, InvocationStatus, ResourceKind, TenantScope, Timestamp,
};
use serde_json::Value;
use sqlx::Row;

use crate::audit::{Audit, resource};
use crate::error::Conflict;
use crate::events::append_status_event;
use crate::{Result, Signal, Store, StoreError, rows};

impl Store {
    /// The answers given so far, in order: what a resumed attempt gets as `resume`.
    pub(crate) async fn interrupt_answers_unscoped(&self, id: &str) -> Result<Vec<Value>> {
        let found = sqlx::query(
            "SELECT answer FROM invocation_interrupts WHERE invocation_id = $1 AND answer IS NOT NULL ORDER BY round",
        )
        .bind(id)
        .fetch_all(&self.writer)
        .await?;
        found.iter().map(|row| rows::json(row, "answer")).collect()
    }

    /// The questions of an invocation of the caller's tenant, oldest first.
    pub async fn interrupts_list(&self, ctx: &TenantScope, id: &InvocationId) -> Result<Vec<Interrupt>> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM invocations WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(ResourceKind::Invocation));
        }
        let found = sqlx::query(
            "SELECT * FROM invocation_interrupts WHERE tenant_id = $1 AND invocation_id = $2 ORDER BY round",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        found
            .iter()
            .map(|row| {
                Ok(Interrupt {
                    round: rows::u32_col(row, "round")?,
                    value: rows::json(row, "value")?,
                    answer: rows::opt_json(row, "answer")?,
                    answered_by: row.try_get("answered_by")?,
                    answered_at: rows::opt_ts(row, "answered_at")?,
                    created_at: rows::ts(row, "created_at")?,
                })
            })
            .collect()
    }

    /// Answers the open question of a waiting invocation and queues it again at once:
    /// the next attempt gets every answer so far. Only a waiting invocation can be
    /// answered, so a second answer to the same question is [`Conflict::NotWaiting`].
    pub async fn invocation_respond(&self, ctx: &TenantScope, id: &InvocationId, answer: &Value) -> Result<Invocation> {
        let answer = serde_json::to_string(answer).map_err(|e| StoreError::corrupt("answer", e))?;
        let now = Timestamp::now().unix_ms();
        let mut tx = self.begin_scoped(ctx).await?;
        // The status check and the change are one statement: concurrent answers serialize
        // on the row, and only the first still finds it waiting.
        let resumed = sqlx::query(
            "UPDATE invocations SET status = 'queued', resumes = resumes + 1, run_after = $3, input_deadline_at = NULL
             WHERE tenant_id = $1 AND id = $2 AND status = 'waiting_for_input' RETURNING resumes",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(resumed) = resumed else {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM invocations WHERE tenant_id = $1 AND id = $2")
                    .bind(ctx.tenant_id().as_str())
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            let status = status.ok_or(StoreError::NotFound(ResourceKind::Invocation))?;
            let status = InvocationStatus::parse(&status).map_err(|e| StoreError::corrupt("status", e))?;
            return Err(Conflict::NotWaiting { status }.into());
        };
        let round: i64 = resumed.try_get("resumes")?;
        sqlx::query(
            "UPDATE invocation_interrupts SET answer = $3, answered_by = $4, answered_at = $5
             WHERE invocation_id = $1 AND round = $2 AND answer IS NULL",
        )
        .bind(id.as_str())
        .bind(round)
        .bind(&answer)
        .bind(ctx.actor().id_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let message = format!("queued: answered by {}; resuming", ctx.actor().id_str());
        let data = serde_json::json!({"status": "queued", "reason": "answered", "round": round});
        append_status_event(&mut tx, id.as_str(), ctx.tenant_id().as_str(), now, "info", &message, &data).await?;
        let row = sqlx::query("SELECT * FROM invocations WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        // The answer is the caller's data; the round says which question it closed.
        Audit::new(AuditAction::InvocationRespond, resource::INVOCATION, id.as_str())
            .details(serde_json::json!({"round": round}))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        self.emit(Signal::InvocationChanged(id.clone())).await;
        self.emit(Signal::InvocationQueued).await;
        rows::invocation(&row)
    }

    /// Ends every invocation whose question waited past its `input_timeout_s`:
    /// `timed_out` with `input_timeout`. Returns how many.
    pub async fn input_timeouts_unscoped(&self) -> Result<u64> {
        let now = Timestamp::now().unix_ms();
        let mut tx = self.writer.begin().await?;
        let ended = sqlx::query(
            "UPDATE invocations SET status = 'timed_out', finished_at = $1, input_deadline_at = NULL,
                 error_code = 'input_timeout',
                 error_message = 'nobody answered within input_timeout_s = ' || input_timeout_s || ' s'
             WHERE status = 'waiting_for_input' AND input_deadline_at < $1 RETURNING id, tenant_id, error_message",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut ids = Vec::with_capacity(ended.len());
        for row in &ended {
            let id: String = row.try_get("id")?;
            let tenant_id: String = row.try_get("tenant_id")?;
            let message = format!("timed_out: {}", row.try_get::<String, _>("error_message")?);
            let data = serde_json::json!({"status": "timed_out"});
            append_status_event(&mut tx, &id, &tenant_id, now, "warn", &message, &data).await?;
            ids.push(InvocationId::from_trusted(id));
        }
        tx.commit().await?;
        for id in &ids {
            self.emit(Signal::InvocationChanged(id.clone())).await;
        }
        Ok(ids.len() as u64)
    }
}
