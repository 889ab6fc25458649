//! An agent's inbound triggers as the store keeps them: mode, envelope, description and
//! the signing secret as the domain sealed it (the store cannot open it). Creating and
//! deleting one appends its audit event in the same transaction. The one unscoped read
//! is the lookup of a signed request, which knows only the trigger's id.
//!
//! Deleting an agent deletes its triggers (the foreign key cascades, migration 0025).

use agentd_core::{
    AgentId, AuditAction, ResourceKind, Slug, TenantId, TenantScope, Timestamp, Trigger, TriggerId, TriggerMode,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{Audit, resource};
use crate::secrets::SealedSecret;
use crate::{Backend, Result, Store, StoreError, rows};

/// A trigger to create; its id and sealed secret are the domain's.
#[derive(Debug, Clone)]
pub struct NewTrigger {
    pub id: TriggerId,
    pub mode: TriggerMode,
    pub envelope: bool,
    pub description: Option<String>,
    pub sealed: SealedSecret,
}

/// A trigger found by the id a signed request named, with its tenant and its secret
/// sealed.
#[derive(Debug, Clone)]
pub struct FoundTrigger {
    pub tenant_id: TenantId,
    pub trigger: Trigger,
    pub sealed: SealedSecret,
}

/// What every read of a trigger selects: the trigger joined with its agent's slug.
macro_rules! select_triggers {
    ($rest:literal) => {
        concat!(
            "SELECT t.id, t.tenant_id, t.agent_id, a.slug AS agent_slug, t.mode, t.envelope, t.description,
                t.created_at, t.secret_ciphertext, t.secret_nonce, t.secret_key_id
             FROM triggers t JOIN agents a ON a.id = t.agent_id ",
            $rest
        )
    };
}

/// One trigger of an agent, by the agent's slug and the trigger's id.
const SELECT_ONE: &str = select_triggers!("WHERE t.tenant_id = $1 AND a.slug = $2 AND t.id = $3");

/// A trigger's sealed secret with what its associated data is made of: one item of a
/// master key rotation.
#[derive(Debug, Clone)]
pub struct StoredTriggerSecret {
    pub tenant_id: TenantId,
    pub agent_id: AgentId,
    pub id: TriggerId,
    pub sealed: SealedSecret,
}

fn trigger(row: &AnyRow) -> Result<Trigger> {
    let mode: String = row.try_get("mode")?;
    let envelope: i64 = row.try_get("envelope")?;
    Ok(Trigger {
        id: TriggerId::from_trusted(row.try_get("id")?),
        agent_id: AgentId::from_trusted(row.try_get("agent_id")?),
        agent: Slug::from_trusted(row.try_get("agent_slug")?),
        mode: TriggerMode::parse(&mode).map_err(|e| StoreError::corrupt("trigger mode", e))?,
        envelope: envelope != 0,
        description: row.try_get("description")?,
        created_at: rows::ts(row, "created_at")?,
    })
}

fn sealed(row: &AnyRow) -> Result<SealedSecret> {
    Ok(SealedSecret {
        ciphertext: row.try_get("secret_ciphertext")?,
        nonce: row.try_get("secret_nonce")?,
        key_id: row.try_get("secret_key_id")?,
    })
}

fn audit_trigger(action: AuditAction, trigger: &Trigger) -> Audit {
    Audit::new(action, resource::TRIGGER, trigger.id.as_str()).details(serde_json::json!({
        "agent": trigger.agent,
        "mode": trigger.mode.as_str(),
        "envelope": trigger.envelope,
    }))
}

impl Store {
    /// Creates a trigger of agent `agent_id`, unless the agent already has `max_triggers`.
    pub async fn trigger_create(
        &self,
        ctx: &TenantScope,
        agent_id: &AgentId,
        new: NewTrigger,
        max_triggers: u32,
    ) -> Result<Trigger> {
        let mut tx = self.begin_scoped(ctx).await?;
        // On PostgreSQL creations for one agent serialize on its row, so the count below
        // stays exact; SQLite has one writer anyway.
        let lock_agent = match self.backend {
            Backend::Postgres => "SELECT slug FROM agents WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
            Backend::Sqlite => "SELECT slug FROM agents WHERE tenant_id = $1 AND id = $2",
        };
        let slug: Option<String> = sqlx::query_scalar(lock_agent)
            .bind(ctx.tenant_id().as_str())
            .bind(agent_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(slug) = slug else { return Err(StoreError::NotFound(ResourceKind::Agent)) };
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM triggers WHERE tenant_id = $1 AND agent_id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(agent_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if count >= i64::from(max_triggers) {
            return Err(StoreError::QuotaReached { count: count.unsigned_abs() });
        }
        let now = Timestamp::now();
        sqlx::query(
            "INSERT INTO triggers (id, tenant_id, agent_id, mode, envelope, description, secret_ciphertext,
                secret_nonce, secret_key_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(new.id.as_str())
        .bind(ctx.tenant_id().as_str())
        .bind(agent_id.as_str())
        .bind(new.mode.as_str())
        .bind(i64::from(new.envelope))
        .bind(&new.description)
        .bind(&new.sealed.ciphertext)
        .bind(&new.sealed.nonce)
        .bind(&new.sealed.key_id)
        .bind(now.unix_ms())
        .execute(&mut *tx)
        .await?;
        let created = Trigger {
            id: new.id,
            agent_id: agent_id.clone(),
            agent: Slug::from_trusted(slug),
            mode: new.mode,
            envelope: new.envelope,
            description: new.description,
            created_at: now,
        };
        audit_trigger(AuditAction::TriggerCreate, &created).record(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Agent `slug`'s triggers, oldest first.
    pub async fn triggers_list(&self, ctx: &TenantScope, slug: &Slug) -> Result<Vec<Trigger>> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let agent: Option<String> = sqlx::query_scalar("SELECT id FROM agents WHERE tenant_id = $1 AND slug = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(slug.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(agent) = agent else { return Err(StoreError::NotFound(ResourceKind::Agent)) };
        let found =
            sqlx::query(select_triggers!("WHERE t.tenant_id = $1 AND t.agent_id = $2 ORDER BY t.created_at, t.id"))
                .bind(ctx.tenant_id().as_str())
                .bind(&agent)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        found.iter().map(trigger).collect()
    }

    /// One trigger of agent `slug`.
    pub async fn trigger_get(&self, ctx: &TenantScope, slug: &Slug, id: &TriggerId) -> Result<Trigger> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let row = sqlx::query(SELECT_ONE)
            .bind(ctx.tenant_id().as_str())
            .bind(slug.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound(ResourceKind::Trigger))?;
        tx.commit().await?;
        trigger(&row)
    }

    /// Deletes one trigger of agent `slug`: its URL answers `404` from now on.
    pub async fn trigger_delete(&self, ctx: &TenantScope, slug: &Slug, id: &TriggerId) -> Result<()> {
        let mut tx = self.begin_scoped(ctx).await?;
        let row = sqlx::query(SELECT_ONE)
            .bind(ctx.tenant_id().as_str())
            .bind(slug.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound(ResourceKind::Trigger))?;
        let found = trigger(&row)?;
        let deleted = sqlx::query("DELETE FROM triggers WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(ResourceKind::Trigger));
        }
        audit_trigger(AuditAction::TriggerDelete, &found).record(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The trigger a signed request names, whichever tenant's: the request carries no
    /// credential, so its tenant is known only once this finds it.
    pub async fn trigger_find_unscoped(&self, id: &TriggerId) -> Result<Option<FoundTrigger>> {
        let row =
            sqlx::query(select_triggers!("WHERE t.id = $1")).bind(id.as_str()).fetch_optional(&self.reader).await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(FoundTrigger {
            tenant_id: TenantId::from_trusted(row.try_get("tenant_id")?),
            trigger: trigger(&row)?,
            sealed: sealed(&row)?,
        }))
    }

    /// Up to `limit` trigger secrets sealed under `key_id`, every tenant's, after trigger
    /// `after` in id order: one page of a master key rotation.
    pub async fn trigger_secrets_sealed_with_unscoped(
        &self,
        key_id: &str,
        after: Option<&TriggerId>,
        limit: u32,
    ) -> Result<Vec<StoredTriggerSecret>> {
        let found = sqlx::query(
            "SELECT id, tenant_id, agent_id, secret_ciphertext, secret_nonce, secret_key_id FROM triggers
             WHERE secret_key_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(key_id)
        .bind(after.map(TriggerId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(StoredTriggerSecret {
                    tenant_id: TenantId::from_trusted(row.try_get("tenant_id")?),
                    agent_id: AgentId::from_trusted(row.try_get("agent_id")?),
                    id: TriggerId::from_trusted(row.try_get("id")?),
                    sealed: sealed(row)?,
                })
            })
            .collect()
    }

    /// Replaces a trigger secret's sealing (same value, another key) unless it changed
    /// since it was read (the trigger was deleted): false says so.
    pub async fn trigger_secret_reseal_unscoped(&self, old: &StoredTriggerSecret, new: &SealedSecret) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE triggers SET secret_ciphertext = $1, secret_nonce = $2, secret_key_id = $3
             WHERE id = $4 AND secret_key_id = $5 AND secret_nonce = $6",
        )
        .bind(&new.ciphertext)
        .bind(&new.nonce)
        .bind(&new.key_id)
        .bind(old.id.as_str())
        .bind(&old.sealed.key_id)
        .bind(&old.sealed.nonce)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
