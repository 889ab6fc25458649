//! The audit log: [`Audit`] appends one event inside the transaction of the change it
//! records, so an event exists exactly when its change committed (a change that fails
//! or rolls back takes its event with it). Who acted, the request id and the client's
//! address come from the [`TenantScope`] (or, for changes made before a tenant context
//! exists or by an operator, from an [`AuditOrigin`]).
//!
//! Events are never updated or deleted: this module has no path that does, the tenant
//! role on PostgreSQL may only `SELECT` and `INSERT` them, and triggers on both engines
//! refuse `UPDATE` and `DELETE` (migration 0021).

use agentd_core::{
    AuditAction, AuditActor, AuditActorKind, AuditEvent, AuditEventId, AuditOrigin, Page, PageRequest, RequestOrigin,
    TenantId, TenantScope, Timestamp,
};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Result, Store, StoreError, rows};

/// The kinds of resource the log names, as `resource_type` shows them.
pub(crate) mod resource {
    pub const TENANT: &str = "tenant";
    pub const SESSION: &str = "session";
    pub const API_KEY: &str = "api_key";
    pub const INVITE: &str = "invite";
    pub const MEMBER: &str = "member";
    pub const AGENT: &str = "agent";
    pub const AGENT_VERSION: &str = "agent_version";
    pub const SECRET: &str = "secret";
    pub const INVOCATION: &str = "invocation";
    pub const THREAD: &str = "thread";
    pub const SCHEDULE: &str = "schedule";
    pub const MEMORY_ITEM: &str = "memory_item";
    pub const TRIGGER: &str = "trigger";
    pub const WEBHOOK: &str = "webhook";
}

/// The only result recorded: refusals change nothing, and the log records changes.
const SUCCESS: &str = "success";

/// One audit event to append: the action, the resource it touched and a few details.
#[must_use = "an audit event is written only by `record`"]
pub(crate) struct Audit {
    action: AuditAction,
    resource_type: &'static str,
    resource_id: String,
    details: Value,
}

impl Audit {
    pub(crate) fn new(action: AuditAction, resource_type: &'static str, resource_id: impl Into<String>) -> Audit {
        Audit { action, resource_type, resource_id: resource_id.into(), details: Value::Object(Default::default()) }
    }

    /// Facts worth keeping about the change: names, roles, versions; never a secret.
    pub(crate) fn details(mut self, details: Value) -> Audit {
        self.details = details;
        self
    }

    /// Appends the event in `tx`, as the caller of `scope` in its tenant.
    pub(crate) async fn record(self, tx: &mut Transaction<'_, Any>, scope: &TenantScope) -> Result<()> {
        let actor = AuditActor::from(scope.actor());
        let origin = RequestOrigin::new(scope.request_id().clone(), scope.client_ip());
        self.record_by(tx, scope.tenant_id(), &AuditOrigin::new(actor, origin)).await
    }

    /// Appends the event in `tx`, in `tenant_id`'s log, as `by`.
    pub(crate) async fn record_by(
        self,
        tx: &mut Transaction<'_, Any>,
        tenant_id: &TenantId,
        by: &AuditOrigin,
    ) -> Result<()> {
        let details = serde_json::to_string(&self.details).map_err(|e| StoreError::corrupt("details", e))?;
        sqlx::query(
            "INSERT INTO audit_events (id, tenant_id, occurred_at, actor_type, actor_id, action, resource_type,
                 resource_id, result, client_ip, request_id, details)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(AuditEventId::generate().as_str())
        .bind(tenant_id.as_str())
        .bind(Timestamp::now().unix_ms())
        .bind(by.actor.kind.as_str())
        .bind(&by.actor.id)
        .bind(self.action.as_str())
        .bind(self.resource_type)
        .bind(&self.resource_id)
        .bind(SUCCESS)
        .bind(by.client_ip().map(|ip| ip.to_string()))
        .bind(by.request_id().as_str())
        .bind(details)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Which events a list returns: each field that is set must match exactly; `from` and
/// `to` bound `occurred_at` (both inclusive).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<AuditAction>,
    /// The actor's id (`usr_…`, `key_…`, `inv_…`, `opt_…`, `database`).
    pub actor: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl Store {
    /// A page of the tenant's audit log, newest first.
    pub async fn audit_list(
        &self,
        ctx: &TenantScope,
        filter: &AuditFilter,
        page: &PageRequest<AuditEventId>,
    ) -> Result<Page<AuditEvent>> {
        let limit = i64::from(page.limit());
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = sqlx::query(
            "SELECT * FROM audit_events
             WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) AND ($3 IS NULL OR action = $3)
                 AND ($4 IS NULL OR actor_id = $4) AND ($5 IS NULL OR resource_type = $5)
                 AND ($6 IS NULL OR resource_id = $6) AND ($7 IS NULL OR occurred_at >= $7)
                 AND ($8 IS NULL OR occurred_at <= $8)
             ORDER BY id DESC LIMIT $9",
        )
        .bind(ctx.tenant_id().as_str())
        .bind(page.after().map(AuditEventId::as_str))
        .bind(filter.action.map(AuditAction::as_str))
        .bind(filter.actor.as_deref())
        .bind(filter.resource_type.as_deref())
        .bind(filter.resource_id.as_deref())
        .bind(filter.from.map(Timestamp::unix_ms))
        .bind(filter.to.map(Timestamp::unix_ms))
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let events = found.iter().map(audit_event).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(events, limit, |e| e.id.to_string()))
    }
}

fn audit_event(row: &AnyRow) -> Result<AuditEvent> {
    let kind: String = row.try_get("actor_type")?;
    let action: String = row.try_get("action")?;
    Ok(AuditEvent {
        id: AuditEventId::from_trusted(row.try_get("id")?),
        occurred_at: rows::ts(row, "occurred_at")?,
        actor: AuditActor {
            kind: AuditActorKind::parse(&kind).map_err(|e| StoreError::corrupt("actor_type", e))?,
            id: row.try_get("actor_id")?,
        },
        action: AuditAction::parse(&action).map_err(|e| StoreError::corrupt("action", e))?,
        resource_type: row.try_get("resource_type")?,
        resource_id: row.try_get("resource_id")?,
        result: row.try_get("result")?,
        client_ip: row.try_get("client_ip")?,
        request_id: row.try_get("request_id")?,
        details: rows::json(row, "details")?,
    })
}
