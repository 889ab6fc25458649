//! The agent registry: agents by slug within a tenant, and their immutable versions.

use std::collections::BTreeMap;

use agentd_core::{
    Agent, AgentId, AgentStatus, AgentVersion, AuditAction, Page, PageRequest, ResourceKind, Slug, TenantScope,
    Timestamp, VersionId, Visibility,
};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::audit::{Audit, resource};
use crate::builds::{self, NewBuild};
use crate::error::{Conflict, is_unique_violation};
use crate::{Result, Store, StoreError, rows};

pub struct NewAgent {
    pub slug: Slug,
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub visibility: Visibility,
}

/// Changes to an agent; `None` keeps a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AgentPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub visibility: Option<Visibility>,
    pub status: Option<AgentStatus>,
    /// Replaces the whole `config.env`.
    pub env: Option<BTreeMap<String, String>>,
    /// `Some(None)` clears the schema.
    pub input_schema: Option<Option<Value>>,
    /// `Some(None)` clears the schema.
    pub output_schema: Option<Option<Value>>,
}

pub struct NewVersion {
    pub digest: String,
    pub manifest: Value,
    pub size_bytes: u64,
    /// Make it the active version: at once, or once its dependency build is ready.
    pub activate: bool,
    /// The dependencies it needs installed; `None` when it has none.
    pub build: Option<NewBuild>,
}

impl AgentPatch {
    /// The fields this patch changes, for the audit log (names only: `env` may hold
    /// values an operator would rather not copy around).
    fn fields(&self) -> Vec<&'static str> {
        let set = [
            ("name", self.name.is_some()),
            ("description", self.description.is_some()),
            ("tags", self.tags.is_some()),
            ("visibility", self.visibility.is_some()),
            ("status", self.status.is_some()),
            ("env", self.env.is_some()),
            ("input_schema", self.input_schema.is_some()),
            ("output_schema", self.output_schema.is_some()),
        ];
        set.into_iter().filter(|(_, changed)| *changed).map(|(field, _)| field).collect()
    }
}

fn visibility_word(v: Visibility) -> &'static str {
    match v {
        Visibility::Private => "private",
        Visibility::Public => "public",
    }
}

fn status_word(s: AgentStatus) -> &'static str {
    match s {
        AgentStatus::Active => "active",
        AgentStatus::Disabled => "disabled",
    }
}

/// A value for a JSON text column, when there is one.
fn json_text<T: serde::Serialize>(value: Option<&T>, col: &'static str) -> Result<Option<String>> {
    value.map(|v| serde_json::to_string(v).map_err(|e| StoreError::corrupt(col, e))).transpose()
}

fn agent_not_found() -> StoreError {
    StoreError::NotFound(ResourceKind::Agent)
}

async fn agent_row(tx: &mut Transaction<'_, Any>, ctx: &TenantScope, slug: &Slug) -> Result<AnyRow> {
    sqlx::query("SELECT * FROM agents WHERE tenant_id = $1 AND slug = $2")
        .bind(ctx.tenant_id().as_str())
        .bind(slug.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(agent_not_found)
}

impl Store {
    /// Creates an agent unless the tenant already has `max_agents`.
    pub async fn agent_create(&self, ctx: &TenantScope, new: NewAgent, max_agents: u32) -> Result<Agent> {
        let now = Timestamp::now();
        let id = AgentId::generate();
        let mut tx = self.begin_scoped(ctx).await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agents WHERE tenant_id = $1")
            .bind(ctx.tenant_id().as_str())
            .fetch_one(&mut *tx)
            .await?;
        if count >= i64::from(max_agents) {
            return Err(StoreError::QuotaReached { count: count.unsigned_abs() });
        }
        let tags = serde_json::to_string(&new.tags).map_err(|e| StoreError::corrupt("tags", e))?;
        let row = sqlx::query(
            "INSERT INTO agents (id, tenant_id, slug, name, description, tags, visibility, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $8) RETURNING *",
        )
        .bind(id.as_str())
        .bind(ctx.tenant_id().as_str())
        .bind(new.slug.as_str())
        .bind(&new.name)
        .bind(&new.description)
        .bind(&tags)
        .bind(visibility_word(new.visibility))
        .bind(now.unix_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match is_unique_violation(&e) {
            true => Conflict::AgentSlugTaken { slug: new.slug.to_string() }.into(),
            false => StoreError::from(e),
        })?;
        Audit::new(AuditAction::AgentCreate, resource::AGENT, id.as_str())
            .details(serde_json::json!({"slug": new.slug}))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        rows::agent(&row)
    }

    pub async fn agents_list(&self, ctx: &TenantScope, page: &PageRequest<AgentId>) -> Result<Page<Agent>> {
        let limit = i64::from(page.limit());
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = sqlx::query(
            "SELECT * FROM agents WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(page.after().map(AgentId::as_str))
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let agents = found.iter().map(rows::agent).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(agents, limit, |a| a.id.to_string()))
    }

    pub async fn agent_get(&self, ctx: &TenantScope, slug: &Slug) -> Result<Agent> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let row = agent_row(&mut tx, ctx, slug).await?;
        tx.commit().await?;
        rows::agent(&row)
    }

    pub async fn agent_patch(&self, ctx: &TenantScope, slug: &Slug, patch: &AgentPatch) -> Result<Agent> {
        let tags = json_text(patch.tags.as_ref(), "tags")?;
        let env = json_text(patch.env.as_ref(), "env")?;
        let input_schema = json_text(patch.input_schema.as_ref().and_then(Option::as_ref), "input_schema")?;
        let output_schema = json_text(patch.output_schema.as_ref().and_then(Option::as_ref), "output_schema")?;
        let mut tx = self.begin_scoped(ctx).await?;
        // A schema can be cleared, so COALESCE cannot tell "keep" from "clear": a flag says
        // whether the schema column changes, and its value (NULL to clear) follows it.
        let row = sqlx::query(
            "UPDATE agents SET
                name = COALESCE($3, name),
                description = COALESCE($4, description),
                tags = COALESCE($5, tags),
                visibility = COALESCE($6, visibility),
                status = COALESCE($7, status),
                updated_at = $8,
                env = COALESCE($9, env),
                input_schema = CASE WHEN $10 THEN $11 ELSE input_schema END,
                output_schema = CASE WHEN $12 THEN $13 ELSE output_schema END
             WHERE tenant_id = $1 AND slug = $2 RETURNING *",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(slug.as_str())
        .bind(&patch.name)
        .bind(&patch.description)
        .bind(tags)
        .bind(patch.visibility.map(visibility_word))
        .bind(patch.status.map(status_word))
        .bind(Timestamp::now().unix_ms())
        .bind(env)
        .bind(patch.input_schema.is_some())
        .bind(input_schema)
        .bind(patch.output_schema.is_some())
        .bind(output_schema)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(agent_not_found)?;
        let agent = rows::agent(&row)?;
        Audit::new(AuditAction::AgentUpdate, resource::AGENT, agent.id.as_str())
            .details(serde_json::json!({"slug": slug, "fields": patch.fields()}))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        Ok(agent)
    }

    /// Removes the agent from the registry. Its past invocations stay, so history remains
    /// readable; its versions stay until no run of theirs is unfinished (runs already
    /// accepted still execute), then the blob sweep deletes them.
    pub async fn agent_delete(&self, ctx: &TenantScope, slug: &Slug) -> Result<()> {
        let mut tx = self.begin_scoped(ctx).await?;
        // When: the blob sweep purges the versions once no run needs them and the grace
        // period since the deletion has passed (see `blob_collection`).
        sqlx::query(
            "UPDATE agent_versions SET agent_deleted_at = $3
             WHERE tenant_id = $1 AND agent_id IN (SELECT id FROM agents WHERE tenant_id = $1 AND slug = $2)",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(slug.as_str())
        .bind(Timestamp::now().unix_ms())
        .execute(&mut *tx)
        .await?;
        let deleted: Option<String> =
            sqlx::query_scalar("DELETE FROM agents WHERE tenant_id = $1 AND slug = $2 RETURNING id")
                .bind(ctx.tenant_id().as_str())
                .bind(slug.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let id = deleted.ok_or_else(agent_not_found)?;
        Audit::new(AuditAction::AgentDelete, resource::AGENT, id)
            .details(serde_json::json!({"slug": slug}))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the next version (1, 2, …) of an agent whose bundle is already stored.
    pub async fn version_create(&self, ctx: &TenantScope, slug: &Slug, new: NewVersion) -> Result<AgentVersion> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(ctx).await?;
        let agent_id: String = sqlx::query_scalar("SELECT id FROM agents WHERE tenant_id = $1 AND slug = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(slug.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(agent_not_found)?;
        let next: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM agent_versions WHERE agent_id = $1")
                .bind(&agent_id)
                .fetch_one(&mut *tx)
                .await?;
        let manifest = serde_json::to_string(&new.manifest).map_err(|e| StoreError::corrupt("manifest", e))?;
        let build = match &new.build {
            Some(wanted) => Some(builds::find_or_create(&mut tx, ctx.tenant_id(), wanted).await?),
            None => None,
        };
        let ready = build.as_ref().is_none_or(|b| b.status == agentd_core::BuildStatus::Ready);
        let warnings = match &new.build {
            Some(wanted) => serde_json::to_string(&wanted.warnings).map_err(|e| StoreError::corrupt("warnings", e))?,
            None => "[]".to_owned(),
        };
        let row = sqlx::query(
            "INSERT INTO agent_versions (id, tenant_id, agent_id, version, digest, manifest, size_bytes, created_by,
                 created_at, build_id, build_status, dependencies_digest, dependencies_archive, installer,
                 build_warnings, activate_when_ready)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING *",
        )
        .bind(VersionId::generate().as_str())
        .bind(ctx.tenant_id().as_str())
        .bind(&agent_id)
        .bind(next)
        .bind(&new.digest)
        .bind(&manifest)
        .bind(i64::try_from(new.size_bytes).unwrap_or(i64::MAX))
        .bind(ctx.actor().id_str())
        .bind(now.unix_ms())
        .bind(build.as_ref().map(|b| b.id.as_str()))
        .bind(build.as_ref().map_or("ready", |b| b.status.as_str()))
        .bind(new.build.as_ref().map(|b| b.digest.as_str()))
        .bind(build.as_ref().and_then(|b| b.archive_digest.as_deref()))
        .bind(new.build.as_ref().map(|b| b.installer.as_str()))
        .bind(&warnings)
        .bind(i64::from(new.activate && !ready))
        .fetch_one(&mut *tx)
        .await?;
        if new.activate && ready {
            sqlx::query("UPDATE agents SET active_version = $1, updated_at = $2 WHERE id = $3")
                .bind(next)
                .bind(now.unix_ms())
                .bind(&agent_id)
                .execute(&mut *tx)
                .await?;
        }
        let version = rows::version(&row)?;
        Audit::new(AuditAction::AgentDeploy, resource::AGENT_VERSION, version.id.as_str())
            .details(serde_json::json!({
                "agent_id": agent_id,
                "slug": slug,
                "version": next,
                "digest": new.digest,
                "activate": new.activate,
            }))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        if build.as_ref().is_some_and(|b| b.created) {
            self.builds_changed().await;
        }
        Ok(version)
    }

    /// Whether an agent of the caller's tenant has a version whose build is not settled.
    pub async fn agent_is_building(&self, ctx: &TenantScope, agent_id: &AgentId) -> Result<bool> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM agent_versions WHERE tenant_id = $1 AND agent_id = $2
                 AND build_status IN ('pending', 'building') LIMIT 1",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(agent_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(found.is_some())
    }

    pub async fn versions_list(
        &self,
        ctx: &TenantScope,
        slug: &Slug,
        page: &PageRequest<u32>,
    ) -> Result<Page<AgentVersion>> {
        let limit = i64::from(page.limit());
        let before: Option<i64> = page.after().map(|n| i64::from(*n));
        let mut tx = self.begin_scoped_read(ctx).await?;
        let agent = rows::agent(&agent_row(&mut tx, ctx, slug).await?)?;
        let found = sqlx::query(
            "SELECT * FROM agent_versions WHERE tenant_id = $1 AND agent_id = $2 AND ($3 IS NULL OR version < $3)
             ORDER BY version DESC LIMIT $4",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(agent.id.as_str())
        .bind(before)
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let versions = found.iter().map(rows::version).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(versions, limit, |v| v.version.to_string()))
    }

    /// Makes version `n` the one new invocations run: a deploy or a rollback.
    pub async fn version_activate(&self, ctx: &TenantScope, slug: &Slug, n: u32) -> Result<Agent> {
        let mut tx = self.begin_scoped(ctx).await?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT v.build_status FROM agent_versions v JOIN agents a ON a.id = v.agent_id
             WHERE a.tenant_id = $1 AND a.slug = $2 AND v.version = $3",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(slug.as_str())
        .bind(i64::from(n))
        .fetch_optional(&mut *tx)
        .await?;
        let status = status.ok_or(StoreError::NotFound(ResourceKind::AgentVersion))?;
        match agentd_core::BuildStatus::parse(&status) {
            Some(agentd_core::BuildStatus::Ready) => {}
            Some(status) => return Err(Conflict::VersionNotReady { version: n, status }.into()),
            None => return Err(StoreError::corrupt("build_status", status)),
        }
        let row = sqlx::query(
            "UPDATE agents SET active_version = $3, updated_at = $4 WHERE tenant_id = $1 AND slug = $2 RETURNING *",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(slug.as_str())
        .bind(i64::from(n))
        .bind(Timestamp::now().unix_ms())
        .fetch_one(&mut *tx)
        .await?;
        let agent = rows::agent(&row)?;
        Audit::new(AuditAction::AgentRollback, resource::AGENT, agent.id.as_str())
            .details(serde_json::json!({"slug": slug, "version": n}))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        Ok(agent)
    }
}

impl Store {
    /// Version `n` of an agent of the caller's tenant.
    pub async fn version_get(&self, ctx: &TenantScope, agent: &Agent, n: u32) -> Result<AgentVersion> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let row = sqlx::query("SELECT * FROM agent_versions WHERE tenant_id = $1 AND agent_id = $2 AND version = $3")
            .bind(ctx.tenant_id().as_str())
            .bind(agent.id.as_str())
            .bind(i64::from(n))
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound(ResourceKind::AgentVersion))?;
        tx.commit().await?;
        rows::version(&row)
    }
}
