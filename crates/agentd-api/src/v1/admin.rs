//! `/v1/admin/*`: the operators' routes. Only an operator token passes them (the domain's
//! `Control::authenticate_operator`); a workspace's own credential is `403
//! operator_required`. They cross tenants on purpose: tenants with their usage,
//! suspending and resuming one, the worker processes and the queue.

use agentd_control::OperatorCtx;
use agentd_core::operators::{QueueStats, TenantOverview, WorkerProcess};
use agentd_core::{Page, ResourceKind, TenantId};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::extract::{ApiQuery, PageQuery, bearer_token, request_origin};
use crate::{ApiError, AppState};
use agentd_control::{ControlError, Unauthenticated};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/tenants", get(tenants_list))
        .route("/admin/tenants/{id}", get(tenant_get))
        .route("/admin/tenants/{id}/suspend", post(tenant_suspend))
        .route("/admin/tenants/{id}/resume", post(tenant_resume))
        .route("/admin/workers", get(workers_list))
        .route("/admin/queue", get(queue_stats))
}

/// A caller holding a live operator token.
struct Operator(OperatorCtx);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?.ok_or(ControlError::from(Unauthenticated::Missing))?;
        Ok(Operator(state.control.authenticate_operator(token, request_origin()).await?))
    }
}

/// A tenant id from the path; one that cannot be valid is `404`.
fn path_tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|_| ControlError::NotFound(ResourceKind::Tenant).into())
}

#[utoipa::path(
    get,
    operation_id = "admin_tenants_list",
    path = "/v1/admin/tenants",
    tag = "admin",
    summary = "Every tenant with its usage (operator)",
    params(crate::extract::PageQuery),
    responses((status = 200, description = "Tenants", body = agentd_api_types::Page<agentd_core::operators::TenantOverview>))
)]
async fn tenants_list(
    State(state): State<AppState>,
    Operator(op): Operator,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<TenantOverview>>, ApiError> {
    Ok(Json(state.control.operators().tenants_list(&op, &q.parse()?).await?))
}

#[utoipa::path(
    get,
    operation_id = "admin_tenant_get",
    path = "/v1/admin/tenants/{id}",
    tag = "admin",
    summary = "One tenant (operator)",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "The tenant", body = agentd_core::operators::TenantOverview))
)]
async fn tenant_get(
    State(state): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<String>,
) -> Result<Json<TenantOverview>, ApiError> {
    Ok(Json(state.control.operators().tenant_get(&op, &path_tenant_id(&id)?).await?))
}

#[utoipa::path(
    post,
    operation_id = "admin_tenant_suspend",
    path = "/v1/admin/tenants/{id}/suspend",
    tag = "admin",
    summary = "Suspends a tenant (operator)",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "The tenant, suspended", body = agentd_core::operators::TenantOverview))
)]
async fn tenant_suspend(
    State(state): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<String>,
) -> Result<Json<TenantOverview>, ApiError> {
    Ok(Json(state.control.operators().tenant_suspend(&op, &path_tenant_id(&id)?).await?))
}

#[utoipa::path(
    post,
    operation_id = "admin_tenant_resume",
    path = "/v1/admin/tenants/{id}/resume",
    tag = "admin",
    summary = "Resumes a suspended tenant (operator)",
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, description = "The tenant, active", body = agentd_core::operators::TenantOverview))
)]
async fn tenant_resume(
    State(state): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<String>,
) -> Result<Json<TenantOverview>, ApiError> {
    Ok(Json(state.control.operators().tenant_resume(&op, &path_tenant_id(&id)?).await?))
}

#[utoipa::path(
    get,
    operation_id = "admin_workers_list",
    path = "/v1/admin/workers",
    tag = "admin",
    summary = "Worker processes serving the queue (operator)",
    params(crate::extract::PageQuery),
    responses((status = 200, description = "Workers", body = agentd_api_types::Page<agentd_core::operators::WorkerProcess>))
)]
async fn workers_list(
    State(state): State<AppState>,
    Operator(op): Operator,
) -> Result<Json<Page<WorkerProcess>>, ApiError> {
    let data = state.control.operators().workers_list(&op).await?;
    Ok(Json(Page { data, next_cursor: None }))
}

#[utoipa::path(
    get,
    operation_id = "admin_queue_stats",
    path = "/v1/admin/queue",
    tag = "admin",
    summary = "The queue's depth across tenants (operator)",
    responses((status = 200, description = "Queue statistics", body = agentd_core::operators::QueueStats))
)]
async fn queue_stats(State(state): State<AppState>, Operator(op): Operator) -> Result<Json<QueueStats>, ApiError> {
    Ok(Json(state.control.operators().queue_stats(&op).await?))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(tenants_list, tenant_get, tenant_suspend, tenant_resume, workers_list, queue_stats))]
pub(super) struct Doc;
