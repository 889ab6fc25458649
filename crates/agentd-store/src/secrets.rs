//! An agent's secrets as the store keeps them: sealed by the domain (ciphertext, nonce and
//! the id of the master key that sealed them), never a value. The store cannot open them
//! and nothing here logs them; names and instants are all it can show.
//!
//! Deleting an agent deletes its secrets (the foreign key cascades, migration 0013).

use agentd_core::{
    AgentId, AgentSecret, AuditAction, InvocationId, ResourceKind, Slug, TenantId, TenantScope, Timestamp,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{Audit, resource};
use crate::{Backend, Result, Store, StoreError, rows};

/// A value as the domain sealed it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    /// Which master key sealed it (a short hash of the key, never the key).
    pub key_id: String,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Ciphertext is no secret, but it is noise in a log.
        f.debug_struct("SealedSecret").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// A sealed secret with what its associated data is made of.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    pub tenant_id: TenantId,
    pub agent_id: AgentId,
    pub name: String,
    pub sealed: SealedSecret,
}

/// What a `PUT` of a secret did.
#[derive(Debug, Clone)]
pub struct SecretWritten {
    pub secret: AgentSecret,
    /// False when an existing value was replaced.
    pub created: bool,
}

/// Where a pass over the secrets sealed under one key goes on from.
pub type SecretCursor = (AgentId, String);

/// A secret as the audit log names it: its agent's id and its name; never its value.
fn audit_secret(agent_id: &str, name: &str, created: Option<bool>) -> Audit {
    let details = match created {
        Some(created) => serde_json::json!({"agent_id": agent_id, "name": name, "created": created}),
        None => serde_json::json!({"agent_id": agent_id, "name": name}),
    };
    let action = if created.is_some() { AuditAction::SecretPut } else { AuditAction::SecretDelete };
    Audit::new(action, resource::SECRET, format!("{agent_id}/{name}")).details(details)
}

fn stored(row: &AnyRow) -> Result<StoredSecret> {
    Ok(StoredSecret {
        tenant_id: TenantId::from_trusted(row.try_get("tenant_id")?),
        agent_id: AgentId::from_trusted(row.try_get("agent_id")?),
        name: row.try_get("name")?,
        sealed: SealedSecret {
            ciphertext: row.try_get("ciphertext")?,
            nonce: row.try_get("nonce")?,
            key_id: row.try_get("key_id")?,
        },
    })
}

fn listed(row: &AnyRow) -> Result<AgentSecret> {
    Ok(AgentSecret {
        name: row.try_get("name")?,
        created_at: rows::ts(row, "created_at")?,
        updated_at: rows::ts(row, "updated_at")?,
    })
}

impl Store {
    /// Sets secret `name` of agent `agent_id` to `sealed`: a new one unless the agent
    /// already has `max_secrets`, else a new value for an existing one. `updated_at`
    /// moves forward with every write, even two in one millisecond.
    pub async fn secret_put(
        &self,
        ctx: &TenantScope,
        agent_id: &AgentId,
        name: &str,
        sealed: &SealedSecret,
        max_secrets: u32,
    ) -> Result<SecretWritten> {
        let now = Timestamp::now().unix_ms();
        let mut tx = self.begin_scoped(ctx).await?;
        // On PostgreSQL writes to one agent's secrets serialize on the agent's row, so the
        // count below stays exact under concurrent PUTs; SQLite has one writer anyway.
        let lock_agent = match self.backend {
            Backend::Postgres => "SELECT id FROM agents WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
            Backend::Sqlite => "SELECT id FROM agents WHERE tenant_id = $1 AND id = $2",
        };
        let agent: Option<String> = sqlx::query_scalar(lock_agent)
            .bind(ctx.tenant_id().as_str())
            .bind(agent_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if agent.is_none() {
            return Err(StoreError::NotFound(ResourceKind::Agent));
        }
        let replaced = sqlx::query(
            "UPDATE agent_secrets SET ciphertext = $4, nonce = $5, key_id = $6,
                updated_at = CASE WHEN updated_at < $7 THEN $7 ELSE updated_at + 1 END
             WHERE tenant_id = $1 AND agent_id = $2 AND name = $3 RETURNING name, created_at, updated_at",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(agent_id.as_str())
        .bind(name)
        .bind(&sealed.ciphertext)
        .bind(&sealed.nonce)
        .bind(&sealed.key_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = replaced {
            let secret = listed(&row)?;
            audit_secret(agent_id.as_str(), name, Some(false)).record(&mut tx, ctx).await?;
            tx.commit().await?;
            return Ok(SecretWritten { secret, created: false });
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM agent_secrets WHERE tenant_id = $1 AND agent_id = $2")
                .bind(ctx.tenant_id().as_str())
                .bind(agent_id.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if count >= i64::from(max_secrets) {
            return Err(StoreError::QuotaReached { count: count.unsigned_abs() });
        }
        let row = sqlx::query(
            "INSERT INTO agent_secrets (agent_id, name, tenant_id, ciphertext, nonce, key_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING name, created_at, updated_at",
        )
        .bind(agent_id.as_str())
        .bind(name)
        .bind(ctx.tenant_id().as_str())
        .bind(&sealed.ciphertext)
        .bind(&sealed.nonce)
        .bind(&sealed.key_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let secret = listed(&row)?;
        audit_secret(agent_id.as_str(), name, Some(true)).record(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(SecretWritten { secret, created: true })
    }

    /// The names of an agent's secrets and when they were set, by name.
    pub async fn secrets_list(&self, ctx: &TenantScope, slug: &Slug) -> Result<Vec<AgentSecret>> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let agent_id = agent_id_of(&mut tx, ctx, slug).await?;
        let found = sqlx::query(
            "SELECT name, created_at, updated_at FROM agent_secrets WHERE tenant_id = $1 AND agent_id = $2 ORDER BY name",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(&agent_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        found.iter().map(listed).collect()
    }

    /// Deletes one secret of an agent; [`ResourceKind::Secret`] not found when it has none
    /// of that name.
    pub async fn secret_delete(&self, ctx: &TenantScope, slug: &Slug, name: &str) -> Result<()> {
        let mut tx = self.begin_scoped(ctx).await?;
        let agent_id = agent_id_of(&mut tx, ctx, slug).await?;
        let deleted = sqlx::query("DELETE FROM agent_secrets WHERE tenant_id = $1 AND agent_id = $2 AND name = $3")
            .bind(ctx.tenant_id().as_str())
            .bind(&agent_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(ResourceKind::Secret));
        }
        audit_secret(&agent_id, name, None).record(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The sealed secrets of the agent an invocation runs, for the worker that claimed
    /// it; unscoped, like the claim it follows. An agent deleted since the invocation was
    /// accepted has none.
    pub async fn secrets_for_run_unscoped(&self, id: &InvocationId) -> Result<Vec<StoredSecret>> {
        let found = sqlx::query(
            "SELECT s.tenant_id, s.agent_id, s.name, s.ciphertext, s.nonce, s.key_id
             FROM invocations i JOIN agent_secrets s ON s.agent_id = i.agent_id AND s.tenant_id = i.tenant_id
             WHERE i.id = $1 ORDER BY s.name",
        )
        .bind(id.as_str())
        .fetch_all(&self.reader)
        .await?;
        found.iter().map(stored).collect()
    }

    /// Up to `limit` secrets sealed under `key_id`, every tenant's, after `after` in
    /// `(agent_id, name)` order: one page of a key rotation.
    pub async fn secrets_sealed_with_unscoped(
        &self,
        key_id: &str,
        after: Option<&SecretCursor>,
        limit: u32,
    ) -> Result<Vec<StoredSecret>> {
        let (after_agent, after_name) = match after {
            Some((agent, name)) => (Some(agent.as_str()), Some(name.as_str())),
            None => (None, None),
        };
        let found = sqlx::query(
            "SELECT tenant_id, agent_id, name, ciphertext, nonce, key_id FROM agent_secrets
             WHERE key_id = $1 AND ($2 IS NULL OR agent_id > $2 OR (agent_id = $2 AND name > $3))
             ORDER BY agent_id, name LIMIT $4",
        )
        .bind(key_id)
        .bind(after_agent)
        .bind(after_name)
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await?;
        found.iter().map(stored).collect()
    }

    /// Replaces a secret's sealing (same value, another key) unless it changed since it
    /// was read: a `PUT` in between wins, and false says so.
    pub async fn secret_reseal_unscoped(&self, old: &StoredSecret, new: &SealedSecret) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE agent_secrets SET ciphertext = $1, nonce = $2, key_id = $3
             WHERE agent_id = $4 AND name = $5 AND key_id = $6 AND nonce = $7",
        )
        .bind(&new.ciphertext)
        .bind(&new.nonce)
        .bind(&new.key_id)
        .bind(old.agent_id.as_str())
        .bind(&old.name)
        .bind(&old.sealed.key_id)
        .bind(&old.sealed.nonce)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many secrets each master key sealed, by key id: agents' secrets and
    /// triggers' signing secrets.
    pub async fn secret_key_ids_unscoped(&self) -> Result<Vec<(String, u64)>> {
        let found = sqlx::query(
            "SELECT key_id, COUNT(*) AS n
             FROM (SELECT key_id FROM agent_secrets UNION ALL SELECT secret_key_id AS key_id FROM triggers
                   UNION ALL SELECT key_id FROM webhook_endpoints UNION ALL SELECT key_id FROM webhook_invocation_secrets) k
             GROUP BY key_id ORDER BY key_id",
        )
        .fetch_all(&self.reader)
        .await?;
        found.iter().map(|row| Ok((row.try_get("key_id")?, rows::u64_col(row, "n")?))).collect()
    }
}

/// The id of the agent `slug` of `ctx`'s tenant.
async fn agent_id_of(tx: &mut sqlx::Transaction<'_, sqlx::Any>, ctx: &TenantScope, slug: &Slug) -> Result<String> {
    let id: Option<String> = sqlx::query_scalar("SELECT id FROM agents WHERE tenant_id = $1 AND slug = $2")
        .bind(ctx.tenant_id().as_str())
        .bind(slug.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    id.ok_or(StoreError::NotFound(ResourceKind::Agent))
}
