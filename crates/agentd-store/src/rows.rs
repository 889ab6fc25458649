//! Turning database rows into the domain's resources. Values our own code wrote are
//! trusted to parse; when one does not, the error names the column.

use std::collections::BTreeMap;

use agentd_core::{
    Agent, AgentConfig, AgentId, AgentStatus, AgentVersion, ApiKey, ApiKeyId, Event, EventKind, EventStream,
    Invocation, InvocationError, InvocationId, InvocationStatus, LimitOverrides, ResourceKind, ScheduleId, Scope,
    Scopes, Slug, Tenant, TenantId, TenantLimits, TenantStatus, ThreadId, Timestamp, Usage, User, UserId, VersionId,
    Visibility,
};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, StoreError};

pub(crate) fn ts(row: &AnyRow, col: &'static str) -> Result<Timestamp> {
    Ok(Timestamp::from_unix_ms(row.try_get::<i64, _>(col)?))
}

pub(crate) fn opt_ts(row: &AnyRow, col: &'static str) -> Result<Option<Timestamp>> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(Timestamp::from_unix_ms))
}

pub(crate) fn json(row: &AnyRow, col: &'static str) -> Result<Value> {
    let raw: String = row.try_get(col)?;
    serde_json::from_str(&raw).map_err(|e| StoreError::corrupt(col, e))
}

pub(crate) fn opt_json(row: &AnyRow, col: &'static str) -> Result<Option<Value>> {
    match row.try_get::<Option<String>, _>(col)? {
        Some(raw) => serde_json::from_str(&raw).map(Some).map_err(|e| StoreError::corrupt(col, e)),
        None => Ok(None),
    }
}

/// An `env` column: a JSON object of strings.
pub(crate) fn env(row: &AnyRow) -> Result<BTreeMap<String, String>> {
    serde_json::from_value(json(row, "env")?).map_err(|e| StoreError::corrupt("env", e))
}

pub(crate) fn u32_col(row: &AnyRow, col: &'static str) -> Result<u32> {
    let v: i64 = row.try_get(col)?;
    u32::try_from(v).map_err(|e| StoreError::corrupt(col, e))
}

pub(crate) fn u64_col(row: &AnyRow, col: &'static str) -> Result<u64> {
    let v: i64 = row.try_get(col)?;
    u64::try_from(v).map_err(|e| StoreError::corrupt(col, e))
}

/// A tenant's effective limits: `defaults` overlaid by the row's `limit_overrides`.
pub(crate) fn limits(row: &AnyRow, defaults: &TenantLimits) -> Result<TenantLimits> {
    Ok(defaults.with_overrides(&limit_overrides(row)?))
}

pub(crate) fn limit_overrides(row: &AnyRow) -> Result<LimitOverrides> {
    serde_json::from_value(json(row, "limit_overrides")?).map_err(|e| StoreError::corrupt("limit_overrides", e))
}

pub(crate) fn tenant(row: &AnyRow, defaults: &TenantLimits) -> Result<Tenant> {
    let limits = limits(row, defaults)?;
    Ok(Tenant {
        id: TenantId::from_trusted(row.try_get("id")?),
        slug: Slug::from_trusted(row.try_get("slug")?),
        name: row.try_get("name")?,
        status: TenantStatus::parse(row.try_get("status")?).map_err(|e| StoreError::corrupt("status", e))?,
        limits,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn user(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: UserId::from_trusted(row.try_get("id")?),
        email: row.try_get("email")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn scopes(raw: &str) -> Result<Scopes> {
    let words: Vec<String> = serde_json::from_str(raw).map_err(|e| StoreError::corrupt("scopes", e))?;
    let parsed = words.iter().map(|w| Scope::parse(w)).collect::<Result<Vec<_>, _>>();
    parsed.map(Scopes::new).map_err(|e| StoreError::corrupt("scopes", e))
}

pub(crate) fn scopes_json(scopes: &Scopes) -> String {
    let words: Vec<&str> = scopes.iter().map(Scope::as_str).collect();
    serde_json::to_string(&words).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn api_key(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: ApiKeyId::from_trusted(row.try_get("id")?),
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        scopes: scopes(row.try_get("scopes")?)?,
        created_at: ts(row, "created_at")?,
        expires_at: opt_ts(row, "expires_at")?,
        last_used_at: opt_ts(row, "last_used_at")?,
        revoked_at: opt_ts(row, "revoked_at")?,
    })
}

pub(crate) fn agent(row: &AnyRow) -> Result<Agent> {
    let tags: Vec<String> = serde_json::from_value(json(row, "tags")?).map_err(|e| StoreError::corrupt("tags", e))?;
    let visibility = match row.try_get::<&str, _>("visibility")? {
        "public" => Visibility::Public,
        _ => Visibility::Private,
    };
    let status = match row.try_get::<&str, _>("status")? {
        "disabled" => AgentStatus::Disabled,
        _ => AgentStatus::Active,
    };
    let active: Option<i64> = row.try_get("active_version")?;
    Ok(Agent {
        id: AgentId::from_trusted(row.try_get("id")?),
        slug: Slug::from_trusted(row.try_get("slug")?),
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        tags,
        visibility,
        status,
        active_version: active.and_then(|v| u32::try_from(v).ok()),
        config: AgentConfig { env: env(row)? },
        input_schema: opt_json(row, "input_schema")?,
        output_schema: opt_json(row, "output_schema")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn version(row: &AnyRow) -> Result<AgentVersion> {
    Ok(AgentVersion {
        id: VersionId::from_trusted(row.try_get("id")?),
        agent_id: AgentId::from_trusted(row.try_get("agent_id")?),
        version: u32_col(row, "version")?,
        digest: row.try_get("digest")?,
        manifest: json(row, "manifest")?,
        size_bytes: u64_col(row, "size_bytes")?,
        created_by: row.try_get("created_by")?,
        created_at: ts(row, "created_at")?,
        build: crate::builds::version_build(row)?,
    })
}

pub(crate) fn invocation(row: &AnyRow) -> Result<Invocation> {
    let error = match row.try_get::<Option<String>, _>("error_code")? {
        Some(code) => Some(InvocationError {
            code,
            message: row.try_get::<Option<String>, _>("error_message")?.unwrap_or_default(),
        }),
        None => None,
    };
    let priority: i64 = row.try_get("priority")?;
    Ok(Invocation {
        id: InvocationId::from_trusted(row.try_get("id")?),
        agent: Slug::from_trusted(row.try_get("agent_slug")?),
        version: u32_col(row, "version")?,
        thread_id: row.try_get::<Option<String>, _>("thread_id")?.map(ThreadId::from_trusted),
        status: InvocationStatus::parse(row.try_get("status")?).map_err(|e| StoreError::corrupt("status", e))?,
        input: json(row, "input")?,
        output: opt_json(row, "output")?,
        error,
        priority: u8::try_from(priority).map_err(|e| StoreError::corrupt("priority", e))?,
        attempt: u32_col(row, "attempt")?,
        max_attempts: u32_col(row, "max_attempts")?,
        recoveries: u32_col(row, "recoveries")?,
        timeout_s: u32_col(row, "timeout_s")?,
        idempotency_key: row.try_get("idempotency_key")?,
        metadata: json(row, "metadata")?,
        parent_id: row.try_get::<Option<String>, _>("parent_id")?.map(InvocationId::from_trusted),
        depth: u32_col(row, "depth")?,
        schedule_id: row.try_get::<Option<String>, _>("schedule_id")?.map(ScheduleId::from_trusted),
        scheduled_at: opt_ts(row, "scheduled_at")?,
        created_at: ts(row, "created_at")?,
        started_at: opt_ts(row, "started_at")?,
        finished_at: opt_ts(row, "finished_at")?,
        usage: Usage {
            wall_ms: u64_col(row, "wall_ms")?,
            cpu_ms: u64_col(row, "cpu_ms")?,
            peak_memory_bytes: u64_col(row, "peak_memory_bytes")?,
            log_bytes: u64_col(row, "log_bytes")?,
        },
    })
}

pub(crate) fn event(row: &AnyRow) -> Result<Event> {
    Ok(Event {
        seq: u64_col(row, "seq")?,
        ts: ts(row, "ts")?,
        kind: EventKind::parse(row.try_get("kind")?).map_err(|e| StoreError::corrupt("kind", e))?,
        stream: EventStream::parse(row.try_get("stream")?).map_err(|e| StoreError::corrupt("stream", e))?,
        level: row.try_get("level")?,
        message: row.try_get("message")?,
        data: opt_json(row, "data")?,
    })
}

/// Builds a page from `limit + 1` fetched rows: the extra row only says "there is more".
pub(crate) fn page<T>(mut items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> agentd_core::Page<T> {
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = if more { items.last().map(cursor_of) } else { None };
    agentd_core::Page { data: items, next_cursor }
}

/// `NotFound` unless `id` is an invocation of the caller's tenant: lists of an
/// invocation's children say so rather than answering an empty page.
pub(crate) async fn require_invocation(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ctx: &agentd_core::TenantScope,
    id: &InvocationId,
) -> Result<()> {
    let exists: Option<String> = sqlx::query_scalar("SELECT id FROM invocations WHERE tenant_id = $1 AND id = $2")
        .bind(ctx.tenant_id().as_str())
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    exists.map(drop).ok_or(StoreError::NotFound(ResourceKind::Invocation))
}
