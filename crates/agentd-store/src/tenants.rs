//! Tenants and self-service signup: a tenant, its owner and the first API key are
//! created in one transaction, so a signup either happens whole or not at all.

use agentd_core::{
    Actor, ApiKey, AuditAction, AuditActor, AuditOrigin, LimitOverrides, RequestOrigin, ResourceKind, Role, Slug,
    Tenant, TenantId, TenantLimits, TenantScope, Timestamp, User, UserId,
};

use crate::audit::{Audit, resource};
use crate::credentials::{NewApiKey, insert_api_key};
use crate::error::{Conflict, is_unique_violation};
use crate::{Backend, Result, Store, StoreError, rows};
use sqlx::{Any, Transaction};

/// The limit the claim enforces from its own column, `max_concurrent_override`.
const CONCURRENCY: &str = "max_concurrent_invocations";

/// A tenant with its own values for limits, as an operator sees it.
#[derive(Debug, Clone)]
pub struct TenantLimitsRecord {
    /// `limits` are the effective ones.
    pub tenant: Tenant,
    pub overrides: LimitOverrides,
}

/// What a signup creates, all in one transaction.
pub struct SignedUp {
    pub tenant: Tenant,
    pub user: User,
    pub api_key: ApiKey,
}

pub struct NewSignup {
    pub tenant_name: String,
    pub tenant_slug: Slug,
    pub email: String,
    pub password_hash: String,
    pub limits: TenantLimits,
    pub first_key: NewApiKey,
    /// The request it came from, for the new tenant's audit log.
    pub origin: RequestOrigin,
}

impl Store {
    /// A new active tenant row, in `tx`: the one insert behind signup and an operator's
    /// new workspace. Only what differs from the platform's defaults is kept as its own.
    pub(crate) async fn insert_tenant(
        &self,
        tx: &mut Transaction<'_, Any>,
        slug: Slug,
        name: String,
        limits: TenantLimits,
        now: Timestamp,
    ) -> Result<Tenant> {
        let id = TenantId::generate();
        let overrides = limits.overrides_from(&self.default_limits);
        let stored = serde_json::to_string(&overrides).map_err(|e| StoreError::corrupt("limit_overrides", e))?;
        sqlx::query(
            "INSERT INTO tenants (id, slug, name, status, limit_overrides, max_concurrent_override, created_at)
             VALUES ($1, $2, $3, 'active', $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(slug.as_str())
        .bind(&name)
        .bind(&stored)
        .bind(overrides.get(CONCURRENCY).map(|v| v as i64))
        .bind(now.unix_ms())
        .execute(&mut **tx)
        .await
        .map_err(|e| match is_unique_violation(&e) {
            true => Conflict::WorkspaceSlugTaken { slug: slug.to_string() }.into(),
            false => StoreError::from(e),
        })?;
        Ok(Tenant { id, slug, name, status: agentd_core::TenantStatus::Active, limits, created_at: now })
    }

    pub async fn signup(&self, new: NewSignup) -> Result<SignedUp> {
        let now = Timestamp::now();
        let user_id = UserId::generate();
        let mut tx = self.writer.begin().await?;
        let tenant = self.insert_tenant(&mut tx, new.tenant_slug, new.tenant_name, new.limits, now).await?;
        let tenant_id = tenant.id.clone();
        sqlx::query("INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(user_id.as_str())
            .bind(&new.email)
            .bind(&new.password_hash)
            .bind(now.unix_ms())
            .execute(&mut *tx)
            .await
            .map_err(|e| match is_unique_violation(&e) {
                true => Conflict::EmailTaken.into(),
                false => StoreError::from(e),
            })?;
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(tenant_id.as_str())
            .bind(user_id.as_str())
            .bind(Role::Owner.as_str())
            .bind(now.unix_ms())
            .execute(&mut *tx)
            .await?;
        let key = insert_api_key(&mut tx, &tenant_id, user_id.as_str(), new.first_key, now).await?;
        let by = AuditOrigin::new(AuditActor::from(&Actor::User { id: user_id.clone() }), new.origin);
        Audit::new(AuditAction::TenantSignup, resource::TENANT, tenant_id.as_str())
            .details(serde_json::json!({"slug": tenant.slug, "api_key_id": key.id}))
            .record_by(&mut tx, &tenant_id, &by)
            .await?;
        tx.commit().await?;
        let user = User { id: user_id, email: new.email, created_at: now };
        Ok(SignedUp { tenant, user, api_key: key })
    }

    /// The caller's own tenant.
    pub async fn tenant_get(&self, ctx: &TenantScope) -> Result<Tenant> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
            .bind(ctx.tenant_id().as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound(ResourceKind::Tenant))?;
        tx.commit().await?;
        rows::tenant(&row, &self.default_limits)
    }

    /// The caller's own tenant's overrides (the rest of its limits are the defaults).
    pub async fn tenant_limit_overrides(&self, ctx: &TenantScope) -> Result<LimitOverrides> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let row = sqlx::query("SELECT limit_overrides FROM tenants WHERE id = $1")
            .bind(ctx.tenant_id().as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound(ResourceKind::Tenant))?;
        tx.commit().await?;
        rows::limit_overrides(&row)
    }

    /// A tenant named by its id or its slug, with its overrides: for operators.
    pub async fn tenant_limits_unscoped(&self, tenant: &str) -> Result<TenantLimitsRecord> {
        let row = sqlx::query("SELECT * FROM tenants WHERE id = $1 OR slug = $1")
            .bind(tenant)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound(ResourceKind::Tenant))?;
        Ok(TenantLimitsRecord {
            tenant: rows::tenant(&row, &self.default_limits)?,
            overrides: rows::limit_overrides(&row)?,
        })
    }

    /// Gives a tenant (by id or slug) the values in `set` and drops its own values for
    /// `unset`, in one transaction that reads and writes the row (locked on PostgreSQL, so
    /// two operators' changes do not lose each other's). The claim's concurrency column
    /// is written with the JSON, so the two never disagree.
    pub async fn tenant_limits_update_unscoped(
        &self,
        tenant: &str,
        set: &LimitOverrides,
        unset: &[String],
        by: &AuditOrigin,
    ) -> Result<TenantLimitsRecord> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let select = format!("SELECT id, limit_overrides FROM tenants WHERE id = $1 OR slug = $1{lock}");
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(select))
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound(ResourceKind::Tenant))?;
        let id: String = sqlx::Row::try_get(&row, "id")?;
        let mut overrides = rows::limit_overrides(&row)?;
        overrides.merge(set);
        for name in unset {
            overrides.remove(name);
        }
        let json = serde_json::to_string(&overrides).map_err(|e| StoreError::corrupt("limit_overrides", e))?;
        sqlx::query("UPDATE tenants SET limit_overrides = $1, max_concurrent_override = $2 WHERE id = $3")
            .bind(&json)
            .bind(overrides.get(CONCURRENCY).map(|v| v as i64))
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        Audit::new(AuditAction::LimitsSet, resource::TENANT, id.as_str())
            .details(serde_json::json!({"set": set, "unset": unset}))
            .record_by(&mut tx, &TenantId::from_trusted(id.clone()), by)
            .await?;
        tx.commit().await?;
        // A freed concurrency slot may make a run claimable.
        self.emit(crate::Signal::InvocationQueued).await;
        self.tenant_limits_unscoped(&id).await
    }

    /// What the caller's tenant holds of the things its limits count, read together.
    pub async fn tenant_usage_counts(&self, ctx: &TenantScope) -> Result<TenantUsageCounts> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM agents WHERE tenant_id = $1) AS agents,
                    (SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL) AS api_keys,
                    (SELECT COUNT(*) FROM invocations WHERE tenant_id = $1 AND status IN ('queued', 'retrying'))
                        AS queued,
                    (SELECT COUNT(*) FROM invocations WHERE tenant_id = $1 AND status = 'running') AS running,
                    (SELECT COALESCE(MAX(bytes), 0) FROM memory_usage WHERE tenant_id = $1) AS store_bytes",
        )
        .bind(ctx.tenant_id().as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(TenantUsageCounts {
            agents: rows::u64_col(&row, "agents")?,
            api_keys: rows::u64_col(&row, "api_keys")?,
            queued_invocations: rows::u64_col(&row, "queued")?,
            running_invocations: rows::u64_col(&row, "running")?,
            store_bytes: rows::u64_col(&row, "store_bytes")?,
        })
    }

    /// Bytes of blobs the tenant's rows refer to (bundles of every version, artifacts),
    /// each digest once however many rows share it, and whether `digest` is among them.
    /// Versions of a deleted agent count no more: they wait for the blob sweep, on the
    /// platform's account.
    pub async fn storage_used(&self, ctx: &TenantScope, digest: &str) -> Result<(u64, bool)> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS used,
                    CAST(COALESCE(MAX(CASE WHEN digest = $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS held
             FROM (SELECT digest, MAX(size) AS size FROM (
                       SELECT digest, size_bytes AS size FROM agent_versions
                           WHERE tenant_id = $1 AND agent_deleted_at IS NULL
                       UNION ALL SELECT digest, size FROM invocation_artifacts WHERE tenant_id = $1) AS blobs
                   GROUP BY digest) AS distinct_blobs",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(digest)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((rows::u64_col(&row, "used")?, rows::u64_col(&row, "held")? == 1))
    }
}

/// Counts of what a tenant holds, for its limits' `used`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TenantUsageCounts {
    pub agents: u64,
    pub api_keys: u64,
    pub queued_invocations: u64,
    pub running_invocations: u64,
    pub store_bytes: u64,
}
