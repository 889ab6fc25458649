//! `GET /v1/audit`: the tenant's audit log, newest first, for owners and admins (the
//! `admin` scope). The log is read-only here: no route changes or removes an event.

use agentd_api_types::{AuditEvent, Page};
use agentd_control::{Admin, AuditFilter, Invalid};
use agentd_core::{AuditAction, PageBounds, PageRequest, Timestamp};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::extract::{ApiQuery, Caller};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Only this action, e.g. `agent.deploy`.
    action: Option<String>,
    /// Only this actor's id (`usr_…`, `agk_…`, `inv_…`, an operator token's id).
    actor: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    /// Events at or after this RFC 3339 instant.
    from: Option<String>,
    /// Events before this RFC 3339 instant.
    to: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The longest filter value worth comparing: longer than any id or name the log holds.
const MAX_FILTER_CHARS: usize = 1024;

fn invalid_query(field: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("invalid_query", format!("{field}: {what}"))
}

/// An exact-match filter: text without control characters, of bounded length.
fn text_filter(field: &str, raw: Option<String>) -> Result<Option<String>, ApiError> {
    match raw {
        Some(value) if value.is_empty() || value.chars().count() > MAX_FILTER_CHARS => {
            Err(invalid_query(field, format!("must be 1 to {MAX_FILTER_CHARS} characters")))
        }
        Some(value) if value.chars().any(char::is_control) => {
            Err(invalid_query(field, "must not contain control characters"))
        }
        other => Ok(other),
    }
}

fn instant(field: &str, raw: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    raw.map(|value| {
        Timestamp::parse_rfc3339(value)
            .ok_or_else(|| invalid_query(field, "must be an RFC 3339 instant, e.g. 2026-11-22T10:00:00Z"))
    })
    .transpose()
}

#[utoipa::path(
    get,
    operation_id = "audit_list",
    path = "/v1/audit",
    tag = "audit",
    summary = "The workspace's audit log, newest first (owners and admins)",
    params(AuditQuery),
    responses((status = 200, description = "Audit events", body = agentd_api_types::Page<agentd_core::AuditEvent>))
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEvent>>, ApiError> {
    let ctx = caller.authorize::<Admin>()?;
    let page = PageRequest::parse(q.limit, q.cursor.as_deref(), PageBounds::RESOURCES).map_err(Invalid::from)?;
    let action = q.action.as_deref().map(AuditAction::parse).transpose().map_err(|e| invalid_query("action", e))?;
    let filter = AuditFilter {
        action,
        actor: text_filter("actor", q.actor)?,
        resource_type: text_filter("resource_type", q.resource_type)?,
        resource_id: text_filter("resource_id", q.resource_id)?,
        from: instant("from", q.from.as_deref())?,
        to: instant("to", q.to.as_deref())?,
    };
    Ok(Json(state.control.audit_list(&ctx, &filter, &page).await?))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list))]
pub(super) struct Doc;
