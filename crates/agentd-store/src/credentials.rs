//! Users, API keys and sessions. Secrets are never stored: only the SHA-256 of the
//! whole presented token. Looking a token up happens before any tenant is known, so
//! those lookups are `unscoped`.

use agentd_core::{
    Actor, AgentId, ApiKey, ApiKeyId, AuditAction, AuditOrigin, InvocationId, InvocationStatus, Page, PageRequest,
    ResourceKind, Role, Scopes, SessionId, Slug, Tenant, TenantId, TenantScope, Timestamp, User, UserId,
};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use crate::audit::{Audit, resource};
use crate::{Result, Store, StoreError, rows};

/// SHA-256 of a presented secret, hex encoded; what the store keeps and compares.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub struct NewApiKey {
    pub name: String,
    /// Public, unique part shown in listings (`agd_<prefix>_…`).
    pub prefix: String,
    pub key_hash: String,
    pub scopes: Scopes,
    pub expires_at: Option<Timestamp>,
}

pub struct NewSession {
    pub token_hash: String,
    pub expires_at: Timestamp,
}

/// Who a presented token belongs to, resolved before the request gets a tenant context.
#[derive(Debug, Clone)]
pub struct Credential {
    pub tenant: Tenant,
    pub actor: Actor,
    pub scopes: Scopes,
    pub user: Option<User>,
    pub role: Option<Role>,
    /// The session the token is, for a session token.
    pub session_id: Option<SessionId>,
}

/// The invocation a run token was made for, as it is now; the domain decides whether
/// the token still stands (the run must be running under a live lease).
#[derive(Debug, Clone)]
pub struct RunCredential {
    pub tenant: Tenant,
    pub invocation_id: InvocationId,
    pub agent_id: AgentId,
    pub agent: Slug,
    pub thread_id: Option<String>,
    pub depth: u32,
    /// The attempt the token was made for: a claim replaces the token with the attempt.
    pub attempt: u32,
    pub status: InvocationStatus,
    /// Whether the attempt's lease has not expired (its worker still renews it).
    pub lease_live: bool,
}

/// A user as login needs them: with the argon2 hash of their password.
pub struct UserWithPassword {
    pub user: User,
    pub password_hash: String,
    /// Logins are refused until then after too many wrong passwords in a row.
    pub login_locked_until: Option<Timestamp>,
}

/// A tenant a user belongs to, and their role in it.
pub struct Membership {
    pub tenant: Tenant,
    pub role: Role,
}

/// Don't write `last_used_at` on every request; once a minute is precise enough.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

pub(crate) async fn insert_api_key(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &TenantId,
    created_by: &str,
    new: NewApiKey,
    now: Timestamp,
) -> Result<ApiKey> {
    let id = ApiKeyId::generate();
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id.as_str())
    .bind(tenant_id.as_str())
    .bind(&new.name)
    .bind(&new.prefix)
    .bind(&new.key_hash)
    .bind(rows::scopes_json(&new.scopes))
    .bind(created_by)
    .bind(now.unix_ms())
    .bind(new.expires_at.map(Timestamp::unix_ms))
    .execute(&mut **tx)
    .await?;
    Ok(ApiKey {
        id,
        name: new.name,
        prefix: new.prefix,
        scopes: new.scopes,
        created_at: now,
        expires_at: new.expires_at,
        last_used_at: None,
        revoked_at: None,
    })
}

impl Store {
    /// The live (not revoked, not expired) API key with this prefix and hash, if any.
    pub async fn api_key_authenticate_unscoped(&self, prefix: &str, key_hash: &str) -> Result<Option<Credential>> {
        let now = Timestamp::now().unix_ms();
        let row = sqlx::query(
            "SELECT k.id AS key_id, k.key_hash, k.scopes, k.last_used_at, t.*
             FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
             WHERE k.prefix = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $2)",
        )
        .bind(prefix)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = row.try_get("key_hash")?;
        if !constant_time_eq(stored.as_bytes(), key_hash.as_bytes()) {
            return Ok(None);
        }
        let key_id = ApiKeyId::from_trusted(row.try_get("key_id")?);
        let last_used: Option<i64> = row.try_get("last_used_at")?;
        if last_used.is_none_or(|t| now - t > LAST_USED_GRANULARITY_MS) {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(key_id.as_str())
                .execute(&self.writer)
                .await?;
        }
        Ok(Some(Credential {
            tenant: rows::tenant(&row, &self.default_limits)?,
            actor: Actor::ApiKey { id: key_id },
            scopes: rows::scopes(row.try_get("scopes")?)?,
            user: None,
            role: None,
            session_id: None,
        }))
    }

    /// The live session with this token hash, if any.
    pub async fn session_authenticate_unscoped(&self, token_hash: &str) -> Result<Option<Credential>> {
        let row = sqlx::query(
            "SELECT s.id AS session_id, s.user_id, u.email, u.created_at AS user_created_at, m.role, t.*
             FROM sessions s
             JOIN users u ON u.id = s.user_id
             JOIN memberships m ON m.user_id = s.user_id AND m.tenant_id = s.tenant_id
             JOIN tenants t ON t.id = s.tenant_id
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(Timestamp::now().unix_ms())
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let role = Role::parse(row.try_get("role")?).map_err(|e| StoreError::corrupt("role", e))?;
        let user = User {
            id: UserId::from_trusted(row.try_get("user_id")?),
            email: row.try_get("email")?,
            created_at: rows::ts(&row, "user_created_at")?,
        };
        Ok(Some(Credential {
            tenant: rows::tenant(&row, &self.default_limits)?,
            actor: Actor::User { id: user.id.clone() },
            scopes: role.scopes(),
            user: Some(user),
            role: Some(role),
            session_id: Some(SessionId::from_trusted(row.try_get("session_id")?)),
        }))
    }

    /// The invocation whose current attempt holds the run token with this hash, if any.
    pub async fn run_token_authenticate_unscoped(&self, token_hash: &str) -> Result<Option<RunCredential>> {
        let now = Timestamp::now().unix_ms();
        let row = sqlx::query(
            "SELECT i.id AS invocation_id, i.agent_id, i.agent_slug, i.thread_id, i.depth, i.attempt,
                i.status AS invocation_status, i.lease_expires_at, t.*
             FROM invocations i JOIN tenants t ON t.id = i.tenant_id
             WHERE i.run_token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status =
            InvocationStatus::parse(row.try_get("invocation_status")?).map_err(|e| StoreError::corrupt("status", e))?;
        let lease_expires_at: Option<i64> = row.try_get("lease_expires_at")?;
        Ok(Some(RunCredential {
            tenant: rows::tenant(&row, &self.default_limits)?,
            invocation_id: InvocationId::from_trusted(row.try_get("invocation_id")?),
            agent_id: AgentId::from_trusted(row.try_get("agent_id")?),
            agent: Slug::from_trusted(row.try_get("agent_slug")?),
            thread_id: row.try_get("thread_id")?,
            depth: rows::u32_col(&row, "depth")?,
            attempt: rows::u32_col(&row, "attempt")?,
            status,
            lease_live: lease_expires_at.is_some_and(|at| at > now),
        }))
    }

    /// The user with this email and their password hash, for login.
    pub async fn user_by_email_unscoped(&self, email: &str) -> Result<Option<UserWithPassword>> {
        let row = sqlx::query("SELECT * FROM users WHERE email = $1").bind(email).fetch_optional(&self.reader).await?;
        match row {
            Some(row) => Ok(Some(UserWithPassword {
                user: rows::user(&row)?,
                password_hash: row.try_get("password_hash")?,
                login_locked_until: rows::opt_ts(&row, "login_locked_until")?,
            })),
            None => Ok(None),
        }
    }

    /// Counts a wrong password for the user and returns how many there have been in a row.
    pub async fn login_failed_unscoped(&self, user_id: &UserId) -> Result<u32> {
        let failed: i64 = sqlx::query_scalar(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins",
        )
        .bind(user_id.as_str())
        .fetch_one(&self.writer)
        .await?;
        Ok(u32::try_from(failed).unwrap_or(u32::MAX))
    }

    /// Refuses the user's logins until `until`.
    pub async fn login_lock_unscoped(&self, user_id: &UserId, until: Timestamp) -> Result<()> {
        sqlx::query("UPDATE users SET login_locked_until = $2 WHERE id = $1")
            .bind(user_id.as_str())
            .bind(until.unix_ms())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Forgets the user's wrong passwords after a right one (no write when there were none).
    pub async fn login_succeeded_unscoped(&self, user_id: &UserId) -> Result<()> {
        sqlx::query(
            "UPDATE users SET failed_logins = 0, login_locked_until = NULL
             WHERE id = $1 AND (failed_logins > 0 OR login_locked_until IS NOT NULL)",
        )
        .bind(user_id.as_str())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The tenants a user belongs to, oldest membership first.
    pub async fn memberships_of_unscoped(&self, user_id: &UserId) -> Result<Vec<Membership>> {
        let found = sqlx::query(
            "SELECT t.*, m.role FROM memberships m JOIN tenants t ON t.id = m.tenant_id
             WHERE m.user_id = $1 ORDER BY m.created_at, t.id",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.reader)
        .await?;
        found
            .iter()
            .map(|row| {
                let role = Role::parse(row.try_get("role")?).map_err(|e| StoreError::corrupt("role", e))?;
                Ok(Membership { tenant: rows::tenant(row, &self.default_limits)?, role })
            })
            .collect()
    }

    /// The user's live sessions in this workspace, newest first.
    pub async fn sessions_list(
        &self,
        ctx: &TenantScope,
        user_id: &UserId,
    ) -> Result<Vec<(SessionId, Timestamp, Timestamp)>> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = sqlx::query(
            "SELECT id, created_at, expires_at FROM sessions
             WHERE tenant_id = $1 AND user_id = $2 AND expires_at > $3 ORDER BY id DESC",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(user_id.as_str())
        .bind(Timestamp::now().unix_ms())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        found
            .iter()
            .map(|row| {
                Ok((
                    SessionId::from_trusted(row.try_get("id")?),
                    rows::ts(row, "created_at")?,
                    rows::ts(row, "expires_at")?,
                ))
            })
            .collect()
    }

    /// Ends one of the user's sessions in this workspace: its token authenticates no more.
    /// `action` says how, for the audit log: a logout or a revocation.
    pub async fn session_revoke(
        &self,
        ctx: &TenantScope,
        user_id: &UserId,
        id: &SessionId,
        action: AuditAction,
    ) -> Result<()> {
        let mut tx = self.begin_scoped(ctx).await?;
        let ended = sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND id = $3")
            .bind(ctx.tenant_id().as_str())
            .bind(user_id.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        // Checked before the commit, so no audit event records a session that was not there.
        if ended.rows_affected() == 0 {
            return Err(StoreError::NotFound(ResourceKind::Session));
        }
        Audit::new(action, resource::SESSION, id.as_str()).record(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Opens a session of `user_id` in `tenant_id`, logged as `action` (a login or a
    /// switch) by `by`, the user.
    pub async fn session_create_unscoped(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        new: NewSession,
        action: AuditAction,
        by: &AuditOrigin,
    ) -> Result<SessionId> {
        let id = SessionId::generate();
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, tenant_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(&new.token_hash)
        .bind(tenant_id.as_str())
        .bind(user_id.as_str())
        .bind(Timestamp::now().unix_ms())
        .bind(new.expires_at.unix_ms())
        .execute(&mut *tx)
        .await?;
        Audit::new(action, resource::SESSION, id.as_str()).record_by(&mut tx, tenant_id, by).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn api_key_create(&self, ctx: &TenantScope, new: NewApiKey, max_keys: u32) -> Result<ApiKey> {
        let mut tx = self.begin_scoped(ctx).await?;
        let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL")
            .bind(ctx.tenant_id().as_str())
            .fetch_one(&mut *tx)
            .await?;
        if live >= i64::from(max_keys) {
            return Err(StoreError::QuotaReached { count: live.unsigned_abs() });
        }
        let key = insert_api_key(&mut tx, ctx.tenant_id(), ctx.actor().id_str(), new, Timestamp::now()).await?;
        Audit::new(AuditAction::ApiKeyCreate, resource::API_KEY, key.id.as_str())
            .details(serde_json::json!({"name": key.name, "scopes": key.scopes, "expires_at": key.expires_at}))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        Ok(key)
    }

    pub async fn api_keys_list(&self, ctx: &TenantScope, page: &PageRequest<ApiKeyId>) -> Result<Page<ApiKey>> {
        let limit = i64::from(page.limit());
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = sqlx::query(
            "SELECT * FROM api_keys WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(page.after().map(ApiKeyId::as_str))
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let keys = found.iter().map(rows::api_key).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(keys, limit, |k| k.id.to_string()))
    }

    /// Revokes a key of the caller's tenant; revoking twice keeps the first time (and
    /// only the first is an audit event: the second changes nothing).
    pub async fn api_key_revoke(&self, ctx: &TenantScope, id: &ApiKeyId) -> Result<ApiKey> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(ctx).await?;
        let row = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND tenant_id = $3 RETURNING *",
        )
        .bind(now.unix_ms())
        .bind(id.as_str())
        .bind(ctx.tenant_id().as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound(ResourceKind::ApiKey))?;
        let key = rows::api_key(&row)?;
        if key.revoked_at == Some(now) {
            Audit::new(AuditAction::ApiKeyRevoke, resource::API_KEY, id.as_str())
                .details(serde_json::json!({"name": key.name}))
                .record(&mut tx, ctx)
                .await?;
        }
        tx.commit().await?;
        Ok(key)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
