//! `/v1/schedules`: cron schedules that invoke an agent, and running one now. A run's
//! own token reaches none of them.

use agentd_api_types::{CreateScheduleRequest, Invocation, Page, PatchScheduleRequest, Schedule};
use agentd_control::{ControlError, Invalid, Invoke, Read, ScheduleChanges, ScheduleSpec, input};
use agentd_core::{ResourceKind, ScheduleCatchup, ScheduleId, ScheduleOverlap};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::extract::{ApiJson, ApiQuery, Caller, PageQuery, path_slug};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/schedules", get(list).post(create))
        .route("/schedules/{id}", get(show).patch(patch).delete(remove))
        .route("/schedules/{id}/trigger", post(trigger))
}

fn path_schedule_id(raw: &str) -> Result<ScheduleId, ApiError> {
    ScheduleId::parse(raw).map_err(|_| ControlError::NotFound(ResourceKind::Schedule).into())
}

fn overlap(raw: Option<&str>) -> Result<Option<ScheduleOverlap>, ApiError> {
    raw.map(|w| ScheduleOverlap::parse(w).map_err(|detail| Invalid::Word { field: "overlap", detail }.into()))
        .transpose()
}

fn catchup(raw: Option<&str>) -> Result<Option<ScheduleCatchup>, ApiError> {
    raw.map(|w| ScheduleCatchup::parse(w).map_err(|detail| Invalid::Word { field: "catchup", detail }.into()))
        .transpose()
}

#[utoipa::path(
    post,
    operation_id = "schedules_create",
    path = "/v1/schedules",
    tag = "schedules",
    summary = "Creates a schedule",
    request_body = agentd_api_types::CreateScheduleRequest,
    responses((status = 201, description = "The schedule", body = agentd_api_types::Schedule))
)]
async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<CreateScheduleRequest>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    let ctx = caller.authorize::<Invoke>()?;
    let spec = ScheduleSpec {
        agent: path_slug(&req.agent, ResourceKind::Agent)?,
        cron: req.cron,
        timezone: req.timezone,
        input: req.input,
        enabled: req.enabled.unwrap_or(true),
        overlap: overlap(req.overlap.as_deref())?.unwrap_or_default(),
        catchup: catchup(req.catchup.as_deref())?.unwrap_or_default(),
        metadata: input::Metadata::parse(req.metadata)?,
    };
    Ok((StatusCode::CREATED, Json(state.control.schedule_create(&ctx, spec).await?)))
}

#[utoipa::path(
    get,
    operation_id = "schedules_list",
    path = "/v1/schedules",
    tag = "schedules",
    summary = "Lists schedules, newest first",
    params(crate::extract::PageQuery),
    responses((status = 200, description = "Schedules", body = agentd_api_types::Page<agentd_api_types::Schedule>))
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Schedule>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    Ok(Json(state.control.schedules_list(&ctx, &q.parse()?).await?))
}

#[utoipa::path(
    get,
    operation_id = "schedules_show",
    path = "/v1/schedules/{id}",
    tag = "schedules",
    summary = "One schedule",
    params(("id" = String, Path, description = "Schedule id")),
    responses((status = 200, description = "The schedule", body = agentd_api_types::Schedule))
)]
async fn show(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    Ok(Json(state.control.schedule_get(&ctx, &path_schedule_id(&id)?).await?))
}

#[utoipa::path(
    patch,
    operation_id = "schedules_patch",
    path = "/v1/schedules/{id}",
    tag = "schedules",
    summary = "Changes, pauses or resumes a schedule",
    params(("id" = String, Path, description = "Schedule id")),
    request_body = agentd_api_types::PatchScheduleRequest,
    responses((status = 200, description = "The schedule", body = agentd_api_types::Schedule))
)]
async fn patch(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PatchScheduleRequest>,
) -> Result<Json<Schedule>, ApiError> {
    let ctx = caller.authorize::<Invoke>()?;
    let id = path_schedule_id(&id)?;
    let changes = ScheduleChanges {
        agent: req.agent.as_deref().map(|slug| path_slug(slug, ResourceKind::Agent)).transpose()?,
        cron: req.cron,
        timezone: req.timezone,
        input: req.input,
        enabled: req.enabled,
        overlap: overlap(req.overlap.as_deref())?,
        catchup: catchup(req.catchup.as_deref())?,
        metadata: req.metadata.map(|m| input::Metadata::parse(Some(m))).transpose()?,
    };
    Ok(Json(state.control.schedule_update(&ctx, &id, changes).await?))
}

#[utoipa::path(
    delete,
    operation_id = "schedules_remove",
    path = "/v1/schedules/{id}",
    tag = "schedules",
    summary = "Deletes a schedule (its invocations stay)",
    params(("id" = String, Path, description = "Schedule id")),
    responses((status = 204, description = "Deleted"))
)]
async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ctx = caller.authorize::<Invoke>()?;
    state.control.schedule_delete(&ctx, &path_schedule_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    operation_id = "schedules_trigger",
    path = "/v1/schedules/{id}/trigger",
    tag = "schedules",
    summary = "Runs a schedule now",
    params(("id" = String, Path, description = "Schedule id")),
    responses((status = 202, description = "The invocation, queued", body = agentd_api_types::Invocation))
)]
async fn trigger(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Invocation>), ApiError> {
    let ctx = caller.authorize::<Invoke>()?;
    let invocation = state.control.schedule_trigger(&ctx, &path_schedule_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(invocation)))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list, show, patch, remove, trigger))]
pub(super) struct Doc;
