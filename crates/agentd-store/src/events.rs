//! Events of an invocation (log lines and lifecycle), appended by the worker and read
//! back by the API in `seq` order.

use agentd_core::{Event, InvocationId, Page, PageRequest, TenantScope};

use crate::queue::RunLease;
use crate::{Result, Signal, Store, StoreError, rows};

pub use agentd_core::queue::NewEvent;

/// Appends one `status` event (stream `system`) to an invocation inside `tx`, numbered
/// after its last event: how the store records a change of status it made itself.
pub(crate) async fn append_status_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    tenant_id: &str,
    ts_ms: i64,
    level: &str,
    message: &str,
    data: &serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO invocation_events (invocation_id, seq, tenant_id, ts, kind, stream, level, message, data)
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, 'status', 'system', $4, $5, $6
         FROM invocation_events WHERE invocation_id = $1",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(ts_ms)
    .bind(level)
    .bind(message)
    .bind(data.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Appends events of a run in one transaction, only while `run`'s lease is current
    /// (a worker that lost the run cannot write into it). Returns false if it was not.
    /// Appending a batch again (a retry after a reply that was lost) changes nothing: an
    /// event's `seq` is written once.
    pub async fn events_append(&self, run: &RunLease, events: &[NewEvent]) -> Result<bool> {
        if events.is_empty() {
            return Ok(true);
        }
        let mut tx = self.writer.begin().await?;
        let tenant: Option<String> = sqlx::query_scalar(
            "SELECT tenant_id FROM invocations WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'running'",
        )
        .bind(run.invocation_id.as_str())
        .bind(&run.lease_owner)
        .bind(i64::from(run.attempt))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(tenant) = tenant else { return Ok(false) };
        for e in events {
            let data = match &e.data {
                Some(v) => Some(serde_json::to_string(v).map_err(|err| StoreError::corrupt("data", err))?),
                None => None,
            };
            sqlx::query(
                "INSERT INTO invocation_events (invocation_id, seq, tenant_id, ts, kind, stream, level, message, data)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (invocation_id, seq) DO NOTHING",
            )
            .bind(run.invocation_id.as_str())
            .bind(i64::try_from(e.seq).unwrap_or(i64::MAX))
            .bind(&tenant)
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
        Ok(true)
    }

    /// Events after the page's `seq` (from the first when it has none), ascending. The invocation must belong to the caller.
    pub async fn events_list(
        &self,
        ctx: &TenantScope,
        id: &InvocationId,
        page: &PageRequest<u64>,
    ) -> Result<Page<Event>> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        rows::require_invocation(&mut tx, ctx, id).await?;
        let limit = i64::from(page.limit());
        let after = page.after().copied().unwrap_or(0);
        let found = sqlx::query(
            "SELECT * FROM invocation_events WHERE tenant_id = $1 AND invocation_id = $2 AND seq > $3
             ORDER BY seq LIMIT $4",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let events = found.iter().map(rows::event).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(events, limit, |e| e.seq.to_string()))
    }
}
