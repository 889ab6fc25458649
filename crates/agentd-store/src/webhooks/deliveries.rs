//! The outbox's side of webhooks: the delivery log a tenant reads and redelivers from,
//! and the claim and record of attempts the delivery reconciler makes.
//!
//! A claim sets `lease_owner` and `lease_expires_at` on due deliveries (on PostgreSQL
//! with `FOR UPDATE SKIP LOCKED`, so replicas claiming at once take different rows; on
//! SQLite the single writer connection serializes claims). Recording an attempt matches
//! on the lease owner and the attempt count, so a sender whose lease ran out cannot
//! overwrite what the one that took the delivery over wrote.

use agentd_core::{
    AuditAction, AuditActor, AuditOrigin, Invocation, InvocationId, RequestId, RequestOrigin, ResourceKind, TenantId,
    TenantScope, Timestamp, WebhookAttempt, WebhookDelivery, WebhookDeliveryId, WebhookDeliveryStatus, WebhookEvent,
    WebhookId,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{AttemptNext, AttemptRecord, AttemptRecorded, ClaimedDelivery, sealed};
use crate::audit::{Audit, resource};
use crate::{Backend, Result, Store, StoreError, rows};

macro_rules! delivery_columns {
    () => {
        "id, endpoint_id, invocation_id, event_type, status, next_attempt_at, created_at, finished_at"
    };
}

fn delivery(row: &AnyRow, attempts: Vec<WebhookAttempt>) -> Result<WebhookDelivery> {
    let event: String = row.try_get("event_type")?;
    let status: String = row.try_get("status")?;
    let status = WebhookDeliveryStatus::parse(&status).ok_or_else(|| StoreError::corrupt("status", &status))?;
    Ok(WebhookDelivery {
        id: WebhookDeliveryId::from_trusted(row.try_get("id")?),
        endpoint_id: row.try_get::<Option<String>, _>("endpoint_id")?.map(WebhookId::from_trusted),
        invocation_id: InvocationId::from_trusted(row.try_get("invocation_id")?),
        event: WebhookEvent::parse(&event).map_err(|e| StoreError::corrupt("event_type", e))?,
        next_attempt_at: match status {
            WebhookDeliveryStatus::Pending => Some(rows::ts(row, "next_attempt_at")?),
            _ => None,
        },
        status,
        attempts,
        created_at: rows::ts(row, "created_at")?,
        finished_at: rows::opt_ts(row, "finished_at")?,
    })
}

fn attempt(row: &AnyRow) -> Result<WebhookAttempt> {
    let code: Option<i64> = row.try_get("status_code")?;
    Ok(WebhookAttempt {
        n: rows::u32_col(row, "n")?,
        at: rows::ts(row, "at")?,
        status_code: code.and_then(|c| u16::try_from(c).ok()),
        latency_ms: rows::u64_col(row, "latency_ms")?,
        error: row.try_get("error")?,
    })
}

/// Due deliveries whose lease (if any) ran out, oldest first; a claim takes them.
macro_rules! claim {
    () => {
        "UPDATE webhook_deliveries SET lease_owner = $1, lease_expires_at = $2,
            window_started_at = COALESCE(window_started_at, $3)
         WHERE id IN (SELECT id FROM webhook_deliveries
                      WHERE status = 'pending' AND next_attempt_at <= $3
                        AND (lease_expires_at IS NULL OR lease_expires_at < $3)
                      ORDER BY next_attempt_at LIMIT $4"
    };
}

macro_rules! claim_returning {
    () => {
        ")
         RETURNING id, tenant_id, endpoint_id, url, invocation_id, event_type, occurred_at, payload, attempts,
            window_started_at"
    };
}

/// Deliveries with their attempts, from the rows of each.
fn with_attempts(deliveries: &[AnyRow], attempts: &[AnyRow]) -> Result<Vec<WebhookDelivery>> {
    let mut by_delivery: std::collections::HashMap<String, Vec<WebhookAttempt>> = Default::default();
    for row in attempts {
        by_delivery.entry(row.try_get("delivery_id")?).or_default().push(attempt(row)?);
    }
    deliveries
        .iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            delivery(row, by_delivery.remove(&id).unwrap_or_default())
        })
        .collect()
}

impl Store {
    /// The newest `limit` deliveries of endpoint `id`, each with its attempts.
    pub async fn webhook_deliveries_list(
        &self,
        ctx: &TenantScope,
        id: &WebhookId,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
                .bind(ctx.tenant_id().as_str())
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(ResourceKind::Webhook));
        }
        let found = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let attempts = sqlx::query(
            "SELECT a.delivery_id, a.n, a.at, a.status_code, a.latency_ms, a.error FROM webhook_delivery_attempts a
             JOIN (SELECT id FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2
                   ORDER BY id DESC LIMIT $3) d ON d.id = a.delivery_id
             WHERE a.tenant_id = $1 ORDER BY a.delivery_id, a.n",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        with_attempts(&found, &attempts)
    }

    /// The deliveries of invocation `id`, to endpoints and to its own `webhook_url`,
    /// oldest first, each with its attempts.
    pub async fn webhook_deliveries_of_invocation(
        &self,
        ctx: &TenantScope,
        id: &InvocationId,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        rows::require_invocation(&mut tx, ctx, id).await?;
        let found = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE tenant_id = $1 AND invocation_id = $2 ORDER BY id LIMIT $3"
        ))
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let attempts = sqlx::query(
            "SELECT a.delivery_id, a.n, a.at, a.status_code, a.latency_ms, a.error FROM webhook_delivery_attempts a
             JOIN webhook_deliveries d ON d.id = a.delivery_id
             WHERE a.tenant_id = $1 AND d.tenant_id = $1 AND d.invocation_id = $2 ORDER BY a.delivery_id, a.n",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        with_attempts(&found, &attempts)
    }

    /// Queues delivery `delivery_id` of endpoint `id` again, now, with a new retry window
    /// and the same `webhook-id` (whatever its status was).
    pub async fn webhook_redeliver(
        &self,
        ctx: &TenantScope,
        id: &WebhookId,
        delivery_id: &WebhookDeliveryId,
    ) -> Result<WebhookDelivery> {
        let now = Timestamp::now().unix_ms();
        let mut tx = self.begin_scoped(ctx).await?;
        let row = sqlx::query(concat!(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $4, window_started_at = $4,
                lease_owner = NULL, lease_expires_at = NULL, finished_at = NULL
             WHERE tenant_id = $1 AND endpoint_id = $2 AND id = $3 RETURNING ",
            delivery_columns!(),
            ""
        ))
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(delivery_id.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound(ResourceKind::WebhookDelivery))?;
        let attempts = sqlx::query(
            "SELECT n, at, status_code, latency_ms, error FROM webhook_delivery_attempts
             WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY n",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(delivery_id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let attempts = attempts.iter().map(attempt).collect::<Result<Vec<_>>>()?;
        Audit::new(AuditAction::WebhookRedeliver, resource::WEBHOOK, id.as_str())
            .details(serde_json::json!({"delivery_id": delivery_id.as_str()}))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        delivery(&row, attempts)
    }

    /// Claims up to `limit` due deliveries for `owner` until `lease_until`, with where
    /// each goes and the secret that signs it.
    pub async fn webhook_deliveries_claim_unscoped(
        &self,
        owner: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        let now = Timestamp::now().unix_ms();
        let claim = match self.backend {
            Backend::Postgres => concat!(claim!(), " FOR UPDATE SKIP LOCKED", claim_returning!()),
            Backend::Sqlite => concat!(claim!(), claim_returning!()),
        };
        let claimed = sqlx::query(claim)
            .bind(owner)
            .bind(lease_until.unix_ms())
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await?;
        let mut out = Vec::with_capacity(claimed.len());
        for row in &claimed {
            let endpoint_id: Option<String> = row.try_get("endpoint_id")?;
            let tenant_id: String = row.try_get("tenant_id")?;
            let (url, secret) = match &endpoint_id {
                Some(endpoint) => {
                    let found = sqlx::query(
                        "SELECT url, enabled, ciphertext, nonce, key_id FROM webhook_endpoints WHERE id = $1",
                    )
                    .bind(endpoint)
                    .fetch_optional(&self.writer)
                    .await?;
                    match found {
                        // Paused or disabled since the event: not sent (a redelivery after
                        // enabling it sends it).
                        Some(e) if rows::u32_col(&e, "enabled")? != 0 => (e.try_get("url")?, Some(sealed(&e)?)),
                        _ => {
                            self.webhook_delivery_abandon_unscoped(row.try_get("id")?, owner).await?;
                            continue;
                        }
                    }
                }
                None => {
                    let found = sqlx::query(
                        "SELECT ciphertext, nonce, key_id FROM webhook_invocation_secrets WHERE tenant_id = $1",
                    )
                    .bind(&tenant_id)
                    .fetch_optional(&self.writer)
                    .await?;
                    let url: Option<String> = row.try_get("url")?;
                    (url.unwrap_or_default(), found.as_ref().map(sealed).transpose()?)
                }
            };
            out.push(ClaimedDelivery {
                id: WebhookDeliveryId::from_trusted(row.try_get("id")?),
                tenant_id: TenantId::from_trusted(tenant_id),
                endpoint_id: endpoint_id.map(WebhookId::from_trusted),
                url,
                invocation_id: InvocationId::from_trusted(row.try_get("invocation_id")?),
                event_type: row.try_get("event_type")?,
                occurred_at: rows::ts(row, "occurred_at")?,
                payload: row.try_get("payload")?,
                attempts: rows::u32_col(row, "attempts")?,
                window_started_at: rows::ts(row, "window_started_at")?,
                sealed: secret,
            });
        }
        Ok(out)
    }

    /// Ends a claimed delivery whose endpoint is gone or disabled, unsent.
    async fn webhook_delivery_abandon_unscoped(&self, id: String, owner: &str) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'failed', finished_at = $3, lease_owner = NULL,
                lease_expires_at = NULL
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(Timestamp::now().unix_ms())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The invocation a delivery reports on, as the payload shows it.
    pub async fn webhook_invocation_unscoped(
        &self,
        tenant_id: &TenantId,
        id: &InvocationId,
    ) -> Result<Option<Invocation>> {
        let row = sqlx::query("SELECT * FROM invocations WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id.as_str())
            .bind(id.as_str())
            .fetch_optional(&self.writer)
            .await?;
        row.as_ref().map(rows::invocation).transpose()
    }

    /// Records attempt `claimed.attempts + 1` of a delivery `owner` holds, and what
    /// follows, in one transaction: the attempt, the delivery's new status, and for a
    /// delivery that failed for good its endpoint's failure count (disabling it, with an
    /// audit event, at `disable_after`). A success sets the count back to 0.
    pub async fn webhook_delivery_record_unscoped(
        &self,
        claimed: &ClaimedDelivery,
        owner: &str,
        record: &AttemptRecord,
    ) -> Result<AttemptRecorded> {
        let (status, next_at, finished) = match record.next {
            AttemptNext::Succeeded => ("succeeded", record.at, Some(record.at.unix_ms())),
            AttemptNext::RetryAt(at) => ("pending", at, None),
            AttemptNext::Failed { .. } => ("failed", record.at, Some(record.at.unix_ms())),
        };
        let mut tx = self.writer.begin().await?;
        let updated: Option<i64> = sqlx::query_scalar(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, payload = COALESCE(payload, $4), status = $5,
                next_attempt_at = $6, finished_at = $7, lease_owner = NULL, lease_expires_at = NULL
             WHERE id = $1 AND lease_owner = $2 AND attempts = $3 RETURNING attempts",
        )
        .bind(claimed.id.as_str())
        .bind(owner)
        .bind(i64::from(claimed.attempts))
        .bind(&record.payload)
        .bind(status)
        .bind(next_at.unix_ms())
        .bind(finished)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(n) = updated else { return Ok(AttemptRecorded::LeaseLost) };
        sqlx::query(
            "INSERT INTO webhook_delivery_attempts (delivery_id, n, tenant_id, at, status_code, latency_ms, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(claimed.id.as_str())
        .bind(n)
        .bind(claimed.tenant_id.as_str())
        .bind(record.at.unix_ms())
        .bind(record.status_code.map(i64::from))
        .bind(i64::try_from(record.latency_ms).unwrap_or(i64::MAX))
        .bind(record.error.as_deref())
        .execute(&mut *tx)
        .await?;
        let mut recorded = AttemptRecorded::Recorded;
        if let Some(endpoint) = &claimed.endpoint_id {
            match record.next {
                AttemptNext::Succeeded => {
                    sqlx::query("UPDATE webhook_endpoints SET consecutive_failures = 0 WHERE id = $1")
                        .bind(endpoint.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                AttemptNext::RetryAt(_) => {}
                AttemptNext::Failed { disable_after } => {
                    if disable_endpoint(&mut tx, claimed, endpoint, disable_after).await? {
                        recorded = AttemptRecorded::EndpointDisabled;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(recorded)
    }
}

/// Counts a failed delivery against its endpoint and disables it at `disable_after` in
/// a row; true when this call disabled it.
async fn disable_endpoint(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    claimed: &ClaimedDelivery,
    endpoint: &WebhookId,
    disable_after: u32,
) -> Result<bool> {
    sqlx::query("UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1 WHERE id = $1")
        .bind(endpoint.as_str())
        .execute(&mut **tx)
        .await?;
    let reason = format!(
        "disabled by the platform after {disable_after} deliveries in a row failed; fix the receiver, then \
         PATCH enabled: true"
    );
    let disabled = sqlx::query(
        "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $3
         WHERE id = $1 AND enabled = 1 AND consecutive_failures >= $2",
    )
    .bind(endpoint.as_str())
    .bind(i64::from(disable_after))
    .bind(&reason)
    .execute(&mut **tx)
    .await?;
    if disabled.rows_affected() == 0 {
        return Ok(false);
    }
    let by = AuditOrigin::new(AuditActor::platform(), RequestOrigin::new(RequestId::generate(), None));
    Audit::new(AuditAction::WebhookDisable, resource::WEBHOOK, endpoint.as_str())
        .details(serde_json::json!({"consecutive_failures": disable_after, "last_delivery_id": claimed.id.as_str()}))
        .record_by(tx, &claimed.tenant_id, &by)
        .await?;
    Ok(true)
}
