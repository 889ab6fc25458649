//! Tenants and self-service signup: a tenant, its owner and the first API key are
//! created in one transaction, so a signup either happens whole or not at all.

use agentd_core::{
    ApiKey, ResourceKind, Role, Slug, Tenant, TenantId, TenantLimits, TenantScope, Timestamp, User, UserId,
};

use crate::credentials::{NewApiKey, insert_api_key};
use crate::error::{Conflict, is_unique_violation};
use crate::{Result, Store, StoreError, rows};

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
}

impl Store {
    pub async fn signup(&self, new: NewSignup) -> Result<SignedUp> {
        let now = Timestamp::now();
        let tenant_id = TenantId::generate();
        let user_id = UserId::generate();
        let limits = serde_json::to_string(&new.limits).map_err(|e| StoreError::corrupt("limits", e))?;
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO tenants (id, slug, name, status, limits, max_concurrent, created_at)
             VALUES ($1, $2, $3, 'active', $4, $5, $6)",
        )
        .bind(tenant_id.as_str())
        .bind(new.tenant_slug.as_str())
        .bind(&new.tenant_name)
        .bind(&limits)
        .bind(i64::from(new.limits.max_concurrent_invocations))
        .bind(now.unix_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| match is_unique_violation(&e) {
            true => Conflict::WorkspaceSlugTaken { slug: new.tenant_slug.to_string() }.into(),
            false => StoreError::from(e),
        })?;
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
        tx.commit().await?;
        let tenant = Tenant {
            id: tenant_id,
            slug: new.tenant_slug,
            name: new.tenant_name,
            status: agentd_core::TenantStatus::Active,
            limits: new.limits,
            created_at: now,
        };
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
        rows::tenant(&row)
    }
}
