//! Events of an invocation (log lines and lifecycle), appended by the worker and read
//! back by the API in `seq` order.

use agentd_core::{Event, EventKind, EventStream, InvocationId, Page, TenantCtx, Timestamp};
use serde_json::Value;

use crate::queue::ClaimedRun;
use crate::{Result, Signal, Store, StoreError, rows};

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub seq: u64,
    pub ts: Timestamp,
    pub kind: EventKind,
    pub stream: EventStream,
    pub level: Option<String>,
    pub message: Option<String>,
    pub data: Option<Value>,
}

impl Store {
    /// Appends events of a claimed run in one transaction.
    pub async fn events_append(&self, run: &ClaimedRun, events: &[NewEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        for e in events {
            let data = match &e.data {
                Some(v) => Some(serde_json::to_string(v).map_err(|err| StoreError::corrupt("data", err))?),
                None => None,
            };
            sqlx::query(
                "INSERT INTO invocation_events (invocation_id, seq, tenant_id, ts, kind, stream, level, message, data)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(run.invocation_id.as_str())
            .bind(i64::try_from(e.seq).unwrap_or(i64::MAX))
            .bind(run.tenant_id.as_str())
            .bind(e.ts.unix_ms())
            .bind(e.kind.as_str())
            .bind(e.stream.as_str())
            .bind(&e.level)
            .bind(&e.message)
            .bind(data)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.emit(Signal::EventsAppended(run.invocation_id.clone())).await;
        Ok(())
    }

    /// Events with `seq > after`, ascending. The invocation must belong to the caller.
    pub async fn events_list(
        &self,
        ctx: &TenantCtx,
        id: &InvocationId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<Page<Event>> {
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM invocations WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound { what: "invocation" });
        }
        let limit = i64::from(limit.unwrap_or(1000).clamp(1, 1000));
        let found = sqlx::query(
            "SELECT * FROM invocation_events WHERE tenant_id = $1 AND invocation_id = $2 AND seq > $3
             ORDER BY seq LIMIT $4",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(limit + 1)
        .fetch_all(&self.reader)
        .await?;
        let events = found.iter().map(rows::event).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(events, limit, |e| e.seq.to_string()))
    }
}
