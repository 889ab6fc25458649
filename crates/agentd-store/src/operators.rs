//! Operators' side of the store: their tokens (created with direct database access, by
//! `agentd admin operator create-token`; only the SHA-256 of a token is stored) and the
//! tenant views and changes of `/v1/admin/*`. Every method here crosses tenants on
//! purpose, so each says `unscoped`.

use std::collections::HashMap;

use agentd_core::operators::{OperatorToken, TENANT_USAGE_DAYS, TenantOverview, TenantStorage, TenantUsage};
use agentd_core::{
    AuditAction, AuditOrigin, OperatorTokenId, Page, PageRequest, ResourceKind, TenantId, TenantStatus, Timestamp,
    UsageFigures,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{Audit, resource};
use crate::{Result, Signal, Store, StoreError, rows};

/// Don't write `last_used_at` on every request; once a minute is precise enough.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Store {
    /// Records a new operator token whose SHA-256 is `token_hash`.
    pub async fn operator_token_create_unscoped(&self, name: &str, token_hash: &str) -> Result<OperatorToken> {
        let id = OperatorTokenId::generate();
        let now = Timestamp::now();
        sqlx::query("INSERT INTO operator_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id.as_str())
            .bind(name)
            .bind(token_hash)
            .bind(now.unix_ms())
            .execute(&self.writer)
            .await?;
        Ok(OperatorToken { id, name: name.to_owned(), created_at: now, last_used_at: None, revoked_at: None })
    }

    /// The live operator token with this hash, if any; notes its use (at most once a minute).
    pub async fn operator_token_authenticate_unscoped(&self, token_hash: &str) -> Result<Option<OperatorToken>> {
        let row = sqlx::query("SELECT * FROM operator_tokens WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(token_hash)
            .fetch_optional(&self.reader)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let token = operator_token(&row)?;
        let now = Timestamp::now().unix_ms();
        if token.last_used_at.is_none_or(|at| now - at.unix_ms() >= LAST_USED_GRANULARITY_MS) {
            sqlx::query("UPDATE operator_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(token.id.as_str())
                .execute(&self.writer)
                .await?;
        }
        Ok(Some(token))
    }

    /// Every operator token, newest first (there are few).
    pub async fn operator_tokens_list_unscoped(&self) -> Result<Vec<OperatorToken>> {
        let found = sqlx::query("SELECT * FROM operator_tokens ORDER BY id DESC").fetch_all(&self.reader).await?;
        found.iter().map(operator_token).collect()
    }

    /// Revokes an operator token; revoking twice keeps the first time. `None` when there
    /// is no such token.
    pub async fn operator_token_revoke_unscoped(&self, id: &OperatorTokenId) -> Result<Option<OperatorToken>> {
        let row =
            sqlx::query("UPDATE operator_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING *")
                .bind(Timestamp::now().unix_ms())
                .bind(id.as_str())
                .fetch_optional(&self.writer)
                .await?;
        row.as_ref().map(operator_token).transpose()
    }

    /// A page of every tenant, newest first, with its usage.
    pub async fn tenants_list_unscoped(&self, page: &PageRequest<TenantId>) -> Result<Page<TenantOverview>> {
        let limit = i64::from(page.limit());
        let found = sqlx::query("SELECT * FROM tenants WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2")
            .bind(page.after().map(TenantId::as_str))
            .bind(limit + 1)
            .fetch_all(&self.reader)
            .await?;
        let ids: Vec<String> = found.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
        let mut usage = self.tenants_usage_unscoped(&ids).await?;
        let tenants = found
            .iter()
            .map(|row| {
                let tenant = rows::tenant(row, &self.default_limits)?;
                let usage = usage.remove(tenant.id.as_str()).unwrap_or_else(empty_usage);
                Ok(TenantOverview { suspended_at: rows::opt_ts(row, "suspended_at")?, tenant, usage })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(rows::page(tenants, limit, |t| t.tenant.id.to_string()))
    }

    /// One tenant, with its usage.
    pub async fn tenant_overview_unscoped(&self, id: &TenantId) -> Result<TenantOverview> {
        let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound(ResourceKind::Tenant))?;
        let mut usage = self.tenants_usage_unscoped(&[id.as_str().to_owned()]).await?;
        let usage = usage.remove(id.as_str()).unwrap_or_else(empty_usage);
        Ok(TenantOverview {
            tenant: rows::tenant(&row, &self.default_limits)?,
            suspended_at: rows::opt_ts(&row, "suspended_at")?,
            usage,
        })
    }

    /// Sets a tenant's status; suspending twice keeps the first time. A change of status
    /// is an event in the tenant's audit log, by `by`, in the same transaction; setting
    /// the status it has changes nothing and records nothing. Resuming wakes the
    /// claimers: the tenant's queued runs may start again.
    pub async fn tenant_set_status_unscoped(
        &self,
        id: &TenantId,
        status: TenantStatus,
        by: &AuditOrigin,
    ) -> Result<TenantOverview> {
        let now = Timestamp::now().unix_ms();
        let mut tx = self.writer.begin().await?;
        let changed = sqlx::query(
            "UPDATE tenants SET status = $1,
                suspended_at = CASE WHEN $1 = 'suspended' THEN COALESCE(suspended_at, $2) ELSE NULL END
             WHERE id = $3 AND status <> $1",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            let exists: Option<String> = sqlx::query_scalar("SELECT id FROM tenants WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound(ResourceKind::Tenant));
            }
        } else {
            let action = match status {
                TenantStatus::Suspended => AuditAction::TenantSuspend,
                TenantStatus::Active => AuditAction::TenantResume,
            };
            Audit::new(action, resource::TENANT, id.as_str()).record_by(&mut tx, id, by).await?;
        }
        tx.commit().await?;
        if status == TenantStatus::Active {
            self.emit(Signal::InvocationQueued).await;
        }
        self.tenant_overview_unscoped(id).await
    }

    /// Usage of the tenants `ids` (see [`TenantUsage`]), keyed by tenant id.
    async fn tenants_usage_unscoped(&self, ids: &[String]) -> Result<HashMap<String, TenantUsage>> {
        let since = Timestamp::now().unix_ms() - i64::from(TENANT_USAGE_DAYS) * DAY_MS;
        let mut usage = HashMap::new();
        for id in ids {
            usage.insert(id.clone(), self.tenant_usage_unscoped(id, since).await?);
        }
        Ok(usage)
    }

    /// One tenant's usage: a few aggregates over its own rows (each reads the tenant's
    /// index). A page holds at most 200 tenants, and this is an operator's view.
    async fn tenant_usage_unscoped(&self, id: &str, since: i64) -> Result<TenantUsage> {
        let runs = sqlx::query(
            "SELECT status, COUNT(*) AS n, CAST(SUM(wall_ms) AS BIGINT) AS wall_ms,
                CAST(SUM(cpu_ms) AS BIGINT) AS cpu_ms, MAX(peak_memory_bytes) AS peak,
                CAST(SUM(log_bytes) AS BIGINT) AS log_bytes
             FROM invocations WHERE tenant_id = $1 AND (finished_at >= $2 OR finished_at IS NULL)
             GROUP BY status",
        )
        .bind(id)
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        let mut usage = empty_usage();
        for row in &runs {
            let n = count(row, "n")?;
            let figures = &mut usage.figures;
            match row.try_get::<String, _>("status")?.as_str() {
                "queued" | "retrying" => {
                    usage.queued += n;
                    continue;
                }
                "running" => {
                    usage.running += n;
                    continue;
                }
                "waiting_for_input" => {
                    usage.waiting_for_input += n;
                    continue;
                }
                "succeeded" => figures.succeeded += n,
                "failed" => figures.failed += n,
                "cancelled" => figures.cancelled += n,
                _ => figures.timed_out += n,
            }
            figures.invocations += n;
            figures.wall_ms += count(row, "wall_ms")?;
            figures.cpu_ms += count(row, "cpu_ms")?;
            figures.peak_memory_bytes = figures.peak_memory_bytes.max(count(row, "peak")?);
            figures.log_bytes += count(row, "log_bytes")?;
        }
        let stored = sqlx::query(
            "SELECT
                (SELECT CAST(SUM(a.size) AS BIGINT) FROM invocation_artifacts a JOIN invocations i
                    ON i.id = a.invocation_id
                    WHERE a.tenant_id = $1 AND i.finished_at >= $2) AS recent_artifacts,
                (SELECT CAST(SUM(size_bytes) AS BIGINT) FROM
                    (SELECT DISTINCT digest, size_bytes FROM agent_versions
                     WHERE tenant_id = $1 AND agent_deleted_at IS NULL) b) AS bundles,
                (SELECT CAST(SUM(size) AS BIGINT) FROM invocation_artifacts WHERE tenant_id = $1) AS artifacts,
                (SELECT bytes FROM memory_usage WHERE tenant_id = $1) AS memory",
        )
        .bind(id)
        .bind(since)
        .fetch_one(&self.reader)
        .await?;
        usage.figures.artifact_bytes = count(&stored, "recent_artifacts")?;
        let storage = TenantStorage {
            bundle_bytes: count(&stored, "bundles")?,
            artifact_bytes: count(&stored, "artifacts")?,
            memory_bytes: count(&stored, "memory")?,
            total_bytes: 0,
        };
        usage.storage = TenantStorage {
            total_bytes: storage.bundle_bytes + storage.artifact_bytes + storage.memory_bytes,
            ..storage
        };
        Ok(usage)
    }
}

fn empty_usage() -> TenantUsage {
    TenantUsage { days: TENANT_USAGE_DAYS, figures: UsageFigures::default(), ..TenantUsage::default() }
}

fn operator_token(row: &AnyRow) -> Result<OperatorToken> {
    Ok(OperatorToken {
        id: OperatorTokenId::from_trusted(row.try_get("id")?),
        name: row.try_get("name")?,
        created_at: rows::ts(row, "created_at")?,
        last_used_at: rows::opt_ts(row, "last_used_at")?,
        revoked_at: rows::opt_ts(row, "revoked_at")?,
    })
}

/// An aggregate column as a count (`NULL` when nothing was summed).
fn count(row: &AnyRow, col: &'static str) -> Result<u64> {
    Ok(row.try_get::<Option<i64>, _>(col)?.unwrap_or(0).max(0) as u64)
}
