//! Outbound webhooks as the store keeps them: a tenant's endpoints (their signing secret
//! sealed by the domain), the tenant's secret for per-invocation `webhook_url`s, and the
//! outbox of deliveries with their attempts.
//!
//! Deliveries are written by a trigger on `invocations` (migration 0024) in the
//! transaction of the status change they report, whichever statement makes it; this
//! module claims them under a lease for the delivery reconciler and records how each
//! attempt went, fenced on that lease.

use agentd_core::{
    AuditAction, InvocationId, ResourceKind, TenantId, TenantScope, Timestamp, WebhookDeliveryId, WebhookEndpoint,
    WebhookEvent, WebhookId,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{Audit, resource};
use crate::{Backend, Result, SealedSecret, Store, StoreError, rows};

/// A new endpoint, checked by the domain.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Made by the domain, which seals the secret for it.
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub description: Option<String>,
    pub enabled: bool,
    pub sealed: SealedSecret,
}

/// Changes to an endpoint; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<WebhookEvent>>,
    /// `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// Enabling again also forgets the failures that disabled it.
    pub enabled: Option<bool>,
}

/// A delivery claimed for one attempt: where it goes and what signs it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: WebhookDeliveryId,
    pub tenant_id: TenantId,
    pub endpoint_id: Option<WebhookId>,
    pub url: String,
    pub invocation_id: InvocationId,
    pub event_type: String,
    pub occurred_at: Timestamp,
    /// The body sent before, if any attempt was made: retries send the same.
    pub payload: Option<String>,
    /// Attempts made before this one.
    pub attempts: u32,
    pub window_started_at: Timestamp,
    /// The endpoint's secret, or the tenant's invocation webhook secret; `None` when
    /// the tenant has none (cannot happen for a `webhook_url` accepted by the domain).
    pub sealed: Option<SealedSecret>,
}

/// How one attempt went and what follows.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub payload: String,
    pub at: Timestamp,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    pub next: AttemptNext,
}

#[derive(Debug, Clone, Copy)]
pub enum AttemptNext {
    Succeeded,
    RetryAt(Timestamp),
    /// The retry window is over: the delivery failed, and counts against its endpoint,
    /// which is disabled at `disable_after` failed deliveries in a row.
    Failed {
        disable_after: u32,
    },
}

/// What recording an attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptRecorded {
    /// The lease was no longer held: nothing written.
    LeaseLost,
    Recorded,
    /// Recorded, and the endpoint was disabled by it.
    EndpointDisabled,
}

macro_rules! endpoint_columns {
    () => {
        "id, url, events, description, enabled, disabled_reason, consecutive_failures, created_at, updated_at"
    };
}

fn events_text(events: &[WebhookEvent]) -> String {
    events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",")
}

fn endpoint(row: &AnyRow) -> Result<WebhookEndpoint> {
    let events: String = row.try_get("events")?;
    let events = events
        .split(',')
        .filter(|e| !e.is_empty())
        .map(|e| WebhookEvent::parse(e).map_err(|err| StoreError::corrupt("events", err)))
        .collect::<Result<Vec<_>>>()?;
    Ok(WebhookEndpoint {
        id: WebhookId::from_trusted(row.try_get("id")?),
        url: row.try_get("url")?,
        events,
        description: row.try_get("description")?,
        enabled: rows::u32_col(row, "enabled")? != 0,
        disabled_reason: row.try_get("disabled_reason")?,
        consecutive_failures: rows::u32_col(row, "consecutive_failures")?,
        created_at: rows::ts(row, "created_at")?,
        updated_at: rows::ts(row, "updated_at")?,
    })
}

fn sealed(row: &AnyRow) -> Result<SealedSecret> {
    Ok(SealedSecret {
        ciphertext: row.try_get("ciphertext")?,
        nonce: row.try_get("nonce")?,
        key_id: row.try_get("key_id")?,
    })
}

fn audit_endpoint(action: AuditAction, id: &WebhookId, details: serde_json::Value) -> Audit {
    Audit::new(action, resource::WEBHOOK, id.as_str()).details(details)
}

impl Store {
    /// Creates an endpoint, unless the tenant has `max_endpoints` already.
    pub async fn webhook_create(
        &self,
        ctx: &TenantScope,
        new: &NewWebhook,
        max_endpoints: u32,
    ) -> Result<WebhookEndpoint> {
        let now = Timestamp::now().unix_ms();
        let id = &new.id;
        let mut tx = self.begin_scoped(ctx).await?;
        if self.backend == Backend::Postgres {
            // Creations of one tenant serialize here (until commit), so the count below is
            // exact; the tenant role may not lock the tenant's row itself.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('webhook_endpoints:' || $1))")
                .bind(ctx.tenant_id().as_str())
                .execute(&mut *tx)
                .await?;
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE tenant_id = $1")
            .bind(ctx.tenant_id().as_str())
            .fetch_one(&mut *tx)
            .await?;
        if count >= i64::from(max_endpoints) {
            return Err(StoreError::QuotaReached { count: count.unsigned_abs() });
        }
        let row = sqlx::query(concat!(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, events, description, enabled, ciphertext, nonce,
                 key_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING ",
            endpoint_columns!(),
            ""
        ))
        .bind(id.as_str())
        .bind(ctx.tenant_id().as_str())
        .bind(&new.url)
        .bind(events_text(&new.events))
        .bind(new.description.as_deref())
        .bind(i64::from(new.enabled))
        .bind(&new.sealed.ciphertext)
        .bind(&new.sealed.nonce)
        .bind(&new.sealed.key_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let created = endpoint(&row)?;
        let details = serde_json::json!({"url": created.url, "events": events_text(&created.events)});
        audit_endpoint(AuditAction::WebhookCreate, id, details).record(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The tenant's endpoints, oldest first.
    pub async fn webhooks_list(&self, ctx: &TenantScope) -> Result<Vec<WebhookEndpoint>> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = sqlx::query(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY id"
        ))
        .bind(ctx.tenant_id().as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        found.iter().map(endpoint).collect()
    }

    pub async fn webhook_get(&self, ctx: &TenantScope, id: &WebhookId) -> Result<WebhookEndpoint> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound(ResourceKind::Webhook))?;
        tx.commit().await?;
        endpoint(&row)
    }

    pub async fn webhook_update(
        &self,
        ctx: &TenantScope,
        id: &WebhookId,
        patch: &WebhookPatch,
    ) -> Result<WebhookEndpoint> {
        let mut tx = self.begin_scoped(ctx).await?;
        let row = sqlx::query(concat!(
            "UPDATE webhook_endpoints SET
                url = COALESCE($3, url),
                events = COALESCE($4, events),
                description = CASE WHEN $5 = 1 THEN $6 ELSE description END,
                enabled = COALESCE($7, enabled),
                disabled_reason = CASE WHEN $7 = 1 THEN NULL ELSE disabled_reason END,
                consecutive_failures = CASE WHEN $7 = 1 THEN 0 ELSE consecutive_failures END,
                updated_at = CASE WHEN updated_at < $8 THEN $8 ELSE updated_at + 1 END
             WHERE tenant_id = $1 AND id = $2 RETURNING ",
            endpoint_columns!(),
            ""
        ))
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(patch.url.as_deref())
        .bind(patch.events.as_deref().map(events_text))
        .bind(i64::from(patch.description.is_some()))
        .bind(patch.description.clone().flatten())
        .bind(patch.enabled.map(i64::from))
        .bind(Timestamp::now().unix_ms())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound(ResourceKind::Webhook))?;
        let updated = endpoint(&row)?;
        let details = serde_json::json!({
            "url": patch.url.as_ref().map(|_| &updated.url),
            "events": patch.events.as_deref().map(events_text),
            "enabled": patch.enabled,
        });
        audit_endpoint(AuditAction::WebhookUpdate, id, details).record(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Deletes an endpoint and its delivery log (pending deliveries are not sent).
    pub async fn webhook_delete(&self, ctx: &TenantScope, id: &WebhookId) -> Result<()> {
        let mut tx = self.begin_scoped(ctx).await?;
        // SQLite does not enforce the foreign key's cascade without `foreign_keys`; delete
        // the log explicitly on both engines.
        sqlx::query(
            "DELETE FROM webhook_delivery_attempts WHERE tenant_id = $1 AND delivery_id IN
                (SELECT id FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2)",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint_id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(ResourceKind::Webhook));
        }
        audit_endpoint(AuditAction::WebhookDelete, id, serde_json::json!({})).record(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces an endpoint's signing secret. Deliveries still pending are signed with
    /// the new one.
    pub async fn webhook_rotate_secret(
        &self,
        ctx: &TenantScope,
        id: &WebhookId,
        sealed: &SealedSecret,
    ) -> Result<WebhookEndpoint> {
        let mut tx = self.begin_scoped(ctx).await?;
        let row = sqlx::query(concat!(
            "UPDATE webhook_endpoints SET ciphertext = $3, nonce = $4, key_id = $5,
                updated_at = CASE WHEN updated_at < $6 THEN $6 ELSE updated_at + 1 END
             WHERE tenant_id = $1 AND id = $2 RETURNING ",
            endpoint_columns!(),
            ""
        ))
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .bind(&sealed.ciphertext)
        .bind(&sealed.nonce)
        .bind(&sealed.key_id)
        .bind(Timestamp::now().unix_ms())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound(ResourceKind::Webhook))?;
        audit_endpoint(AuditAction::WebhookRotateSecret, id, serde_json::json!({})).record(&mut tx, ctx).await?;
        tx.commit().await?;
        endpoint(&row)
    }

    /// The tenant's secret for per-invocation `webhook_url` deliveries, if it has one.
    pub async fn webhook_invocation_secret(&self, ctx: &TenantScope) -> Result<Option<SealedSecret>> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let row = sqlx::query("SELECT ciphertext, nonce, key_id FROM webhook_invocation_secrets WHERE tenant_id = $1")
            .bind(ctx.tenant_id().as_str())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(sealed).transpose()
    }

    /// Sets the tenant's invocation webhook secret to `sealed` if it has none (`rotate`
    /// false), or in any case (`rotate` true, audited); returns the secret in force.
    pub async fn webhook_invocation_secret_put(
        &self,
        ctx: &TenantScope,
        sealed_new: &SealedSecret,
        rotate: bool,
    ) -> Result<SealedSecret> {
        let mut tx = self.begin_scoped(ctx).await?;
        let upsert = match rotate {
            true => {
                "INSERT INTO webhook_invocation_secrets (tenant_id, ciphertext, nonce, key_id, created_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE SET ciphertext = excluded.ciphertext,
                    nonce = excluded.nonce, key_id = excluded.key_id"
            }
            false => {
                "INSERT INTO webhook_invocation_secrets (tenant_id, ciphertext, nonce, key_id, created_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO NOTHING"
            }
        };
        sqlx::query(upsert)
            .bind(ctx.tenant_id().as_str())
            .bind(&sealed_new.ciphertext)
            .bind(&sealed_new.nonce)
            .bind(&sealed_new.key_id)
            .bind(Timestamp::now().unix_ms())
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("SELECT ciphertext, nonce, key_id FROM webhook_invocation_secrets WHERE tenant_id = $1")
            .bind(ctx.tenant_id().as_str())
            .fetch_one(&mut *tx)
            .await?;
        if rotate {
            Audit::new(AuditAction::WebhookRotateSecret, resource::WEBHOOK, "invocation-secret")
                .record(&mut tx, ctx)
                .await?;
        }
        tx.commit().await?;
        sealed(&row)
    }
}

mod deliveries;

/// Where a webhook signing secret is kept: an endpoint's row, or a tenant's invocation
/// webhook secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookSecretRow {
    Endpoint(WebhookId),
    Invocation,
}

/// A webhook signing secret as a master key rotation reads it.
#[derive(Debug, Clone)]
pub struct StoredWebhookSecret {
    pub tenant_id: TenantId,
    pub row: WebhookSecretRow,
    pub sealed: SealedSecret,
}

impl Store {
    /// Up to `limit` endpoints' signing secrets sealed under `key_id`, every tenant's,
    /// after endpoint `after` in id order: one page of a master key rotation.
    pub async fn webhook_endpoint_secrets_sealed_with_unscoped(
        &self,
        key_id: &str,
        after: Option<&WebhookId>,
        limit: u32,
    ) -> Result<Vec<StoredWebhookSecret>> {
        let found = sqlx::query(
            "SELECT id, tenant_id, ciphertext, nonce, key_id FROM webhook_endpoints
             WHERE key_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(key_id)
        .bind(after.map(WebhookId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(StoredWebhookSecret {
                    tenant_id: TenantId::from_trusted(row.try_get("tenant_id")?),
                    row: WebhookSecretRow::Endpoint(WebhookId::from_trusted(row.try_get("id")?)),
                    sealed: sealed(row)?,
                })
            })
            .collect()
    }

    /// Up to `limit` tenants' invocation webhook secrets sealed under `key_id`, after
    /// tenant `after` in id order: one page of a master key rotation.
    pub async fn webhook_invocation_secrets_sealed_with_unscoped(
        &self,
        key_id: &str,
        after: Option<&TenantId>,
        limit: u32,
    ) -> Result<Vec<StoredWebhookSecret>> {
        let found = sqlx::query(
            "SELECT tenant_id, ciphertext, nonce, key_id FROM webhook_invocation_secrets
             WHERE key_id = $1 AND ($2 IS NULL OR tenant_id > $2) ORDER BY tenant_id LIMIT $3",
        )
        .bind(key_id)
        .bind(after.map(TenantId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(StoredWebhookSecret {
                    tenant_id: TenantId::from_trusted(row.try_get("tenant_id")?),
                    row: WebhookSecretRow::Invocation,
                    sealed: sealed(row)?,
                })
            })
            .collect()
    }

    /// Replaces a webhook secret's sealing (same value, another key) unless it changed
    /// since it was read (rotated or deleted meanwhile): false says so.
    pub async fn webhook_secret_reseal_unscoped(&self, old: &StoredWebhookSecret, new: &SealedSecret) -> Result<bool> {
        let (sql, key) = match &old.row {
            WebhookSecretRow::Endpoint(id) => (
                "UPDATE webhook_endpoints SET ciphertext = $1, nonce = $2, key_id = $3
                 WHERE id = $4 AND key_id = $5 AND nonce = $6",
                id.as_str(),
            ),
            WebhookSecretRow::Invocation => (
                "UPDATE webhook_invocation_secrets SET ciphertext = $1, nonce = $2, key_id = $3
                 WHERE tenant_id = $4 AND key_id = $5 AND nonce = $6",
                old.tenant_id.as_str(),
            ),
        };
        let done = sqlx::query(sql)
            .bind(&new.ciphertext)
            .bind(&new.nonce)
            .bind(&new.key_id)
            .bind(key)
            .bind(&old.sealed.key_id)
            .bind(&old.sealed.nonce)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
