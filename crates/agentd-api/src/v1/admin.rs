//! `/v1/admin/*`: the operators' routes. Only an operator token passes them (the domain's
//! `Control::authenticate_operator`); a workspace's own credential is `403
//! operator_required`. They cross tenants on purpose: tenants with their usage, opening a
//! workspace with its owner's invite, suspending and resuming one, changing its limits,
//! the worker processes and the queue.

use agentd_control::OperatorCtx;
use agentd_core::operators::{QueueStats, TenantOverview, WorkerProcess};
use agentd_core::{Page, ResourceKind, TenantId};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use axum::{Json, Router};

use crate::extract::{ApiJson, ApiQuery, PageQuery, bearer_token, request_origin};
use crate::{ApiError, AppState};
use agentd_api_types::{
    ChangeTenantLimitsRequest, CreateTenantRequest, CreatedInvite, CreatedTenant, LimitEntry, TenantLimitsReport,
};
use agentd_control::{ControlError, Invalid, LimitChange, NewWorkspace, Unauthenticated, input};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/tenants", get(tenants_list).post(tenant_create))
        .route("/admin/tenants/{id}", get(tenant_get))
        .route("/admin/tenants/{id}/suspend", post(tenant_suspend))
        .route("/admin/tenants/{id}/resume", post(tenant_resume))
        .route("/admin/tenants/{id}/limits", put(tenant_limits_change))
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
    post,
    operation_id = "admin_tenants_create",
    path = "/v1/admin/tenants",
    tag = "admin",
    summary = "Opens a workspace with an invite for its owner (operator)",
    request_body = agentd_api_types::CreateTenantRequest,
    responses((status = 201, description = "The workspace and its owner's invite (token shown once)", body = agentd_api_types::CreatedTenant))
)]
async fn tenant_create(
    State(state): State<AppState>,
    Operator(op): Operator,
    ApiJson(req): ApiJson<CreateTenantRequest>,
) -> Result<(StatusCode, Json<CreatedTenant>), ApiError> {
    let new = NewWorkspace {
        slug: input::workspace_slug(&req.slug)?,
        name: input::WorkspaceName::parse(req.name.as_deref().unwrap_or(&req.slug))?,
        owner_email: input::Email::parse(&req.owner_email)?,
    };
    let made = state.control.operator_tenant_create(&op, new).await?;
    let invite = made.invite;
    let owner_invite =
        CreatedInvite { invite: invite.invite, token: invite.token.into_exposed(), accept_url: invite.accept_url };
    Ok((StatusCode::CREATED, Json(CreatedTenant { tenant: made.tenant, owner_invite })))
}

#[utoipa::path(
    put,
    operation_id = "admin_tenant_limits_change",
    path = "/v1/admin/tenants/{id}/limits",
    tag = "admin",
    summary = "Sets and unsets a tenant's own limit values (operator)",
    params(("id" = String, Path, description = "Tenant id")),
    request_body = agentd_api_types::ChangeTenantLimitsRequest,
    responses((status = 200, description = "The tenant's limits now", body = agentd_api_types::TenantLimitsReport))
)]
async fn tenant_limits_change(
    State(state): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ChangeTenantLimitsRequest>,
) -> Result<Json<TenantLimitsReport>, ApiError> {
    let id = path_tenant_id(&id)?;
    let set = req.set.iter().map(|(name, value)| (name.as_str(), *value));
    let change = LimitChange::of(set, req.unset.iter().map(String::as_str)).map_err(Invalid::from)?;
    let (record, view) = state.control.operators().tenant_limits_change(&op, id.as_str(), &change).await?;
    let limits = view
        .limits
        .iter()
        .map(|l| (l.name.to_owned(), LimitEntry { value: l.value, source: l.source.as_str().to_owned(), used: None }))
        .collect();
    let tenant = record.tenant;
    Ok(Json(TenantLimitsReport { tenant_id: tenant.id.to_string(), slug: tenant.slug.to_string(), limits }))
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
#[openapi(paths(
    tenants_list,
    tenant_create,
    tenant_get,
    tenant_suspend,
    tenant_resume,
    tenant_limits_change,
    workers_list,
    queue_stats
))]
pub(super) struct Doc;
