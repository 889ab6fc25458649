//! `/v1/threads`: conversations with an agent, their state and its history. A run's own
//! token reads its thread and writes its state (`authorize_run`); it lists, creates,
//! changes and deletes none.

use agentd_api_types::{
    Checkpoint, CreateThreadRequest, Page, PatchThreadRequest, SetThreadStateRequest, Thread, ThreadState,
};
use agentd_control::{Invoke, Read, ThreadFilter, ThreadSpec, input};
use agentd_core::{PageBounds, PageRequest, ResourceKind};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::extract::{ApiJson, ApiQuery, Caller, PageQuery, path_slug, path_thread_id, query_agent};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/threads", get(list).post(create))
        .route("/threads/{id}", get(show).patch(patch).delete(remove))
        .route("/threads/{id}/state", get(state).post(set_state))
        .route("/threads/{id}/history", get(history))
}

#[utoipa::path(
    post,
    operation_id = "threads_create",
    path = "/v1/threads",
    tag = "threads",
    summary = "Creates a thread",
    request_body = agentd_api_types::CreateThreadRequest,
    responses((status = 201, description = "The thread", body = agentd_api_types::Thread))
)]
async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<CreateThreadRequest>,
) -> Result<(StatusCode, Json<Thread>), ApiError> {
    let ctx = caller.authorize::<Invoke>()?;
    let agent = req.agent.as_deref().map(|slug| path_slug(slug, ResourceKind::Agent)).transpose()?;
    let spec = ThreadSpec { agent, metadata: input::Metadata::parse(req.metadata)? };
    Ok((StatusCode::CREATED, Json(state.control.thread_create(&ctx, spec).await?)))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    agent: Option<String>,
    status: Option<String>,
    /// A JSON object: threads whose metadata has each field with exactly that value.
    metadata: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    operation_id = "threads_list",
    path = "/v1/threads",
    tag = "threads",
    summary = "Lists threads",
    params(ListQuery),
    responses((status = 200, description = "Threads", body = agentd_api_types::Page<agentd_api_types::Thread>))
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Thread>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let agent = query_agent(q.agent.as_deref())?;
    let filter = ThreadFilter {
        agent,
        status: input::thread_status(q.status.as_deref())?,
        metadata: input::MetadataFilter::parse(q.metadata.as_deref())?,
    };
    let page = PageRequest::parse(q.limit, q.cursor.as_deref(), PageBounds::RESOURCES)
        .map_err(agentd_control::Invalid::from)?;
    Ok(Json(state.control.threads_list(&ctx, filter, &page).await?))
}

#[utoipa::path(
    get,
    operation_id = "threads_show",
    path = "/v1/threads/{id}",
    tag = "threads",
    summary = "One thread",
    params(("id" = String, Path, description = "Thread id")),
    responses((status = 200, description = "The thread", body = agentd_api_types::Thread))
)]
async fn show(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Thread>, ApiError> {
    let ctx = caller.authorize_run::<Read>()?;
    Ok(Json(state.control.thread_get(&ctx, &path_thread_id(&id)?).await?))
}

#[utoipa::path(
    patch,
    operation_id = "threads_patch",
    path = "/v1/threads/{id}",
    tag = "threads",
    summary = "Merges fields into a thread's metadata",
    params(("id" = String, Path, description = "Thread id")),
    request_body = agentd_api_types::PatchThreadRequest,
    responses((status = 200, description = "The thread", body = agentd_api_types::Thread))
)]
async fn patch(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PatchThreadRequest>,
) -> Result<Json<Thread>, ApiError> {
    let ctx = caller.authorize::<Invoke>()?;
    let id = path_thread_id(&id)?;
    let metadata = input::Metadata::parse(Some(req.metadata))?;
    Ok(Json(state.control.thread_patch(&ctx, &id, metadata).await?))
}

#[utoipa::path(
    delete,
    operation_id = "threads_remove",
    path = "/v1/threads/{id}",
    tag = "threads",
    summary = "Deletes a thread",
    params(("id" = String, Path, description = "Thread id")),
    responses((status = 204, description = "Deleted"))
)]
async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ctx = caller.authorize::<Invoke>()?;
    state.control.thread_delete(&ctx, &path_thread_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    operation_id = "threads_state",
    path = "/v1/threads/{id}/state",
    tag = "threads",
    summary = "A thread's current state",
    params(("id" = String, Path, description = "Thread id")),
    responses((status = 200, description = "The state", body = agentd_api_types::ThreadState))
)]
async fn state(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<ThreadState>, ApiError> {
    let ctx = caller.authorize_run::<Read>()?;
    Ok(Json(state.control.thread_state(&ctx, &path_thread_id(&id)?).await?))
}

#[utoipa::path(
    post,
    operation_id = "threads_set_state",
    path = "/v1/threads/{id}/state",
    tag = "threads",
    summary = "Sets a thread's state as a new checkpoint",
    params(("id" = String, Path, description = "Thread id")),
    request_body = agentd_api_types::SetThreadStateRequest,
    responses((status = 200, description = "The state", body = agentd_api_types::ThreadState))
)]
async fn set_state(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SetThreadStateRequest>,
) -> Result<Json<ThreadState>, ApiError> {
    let ctx = caller.authorize_run::<Invoke>()?;
    let id = path_thread_id(&id)?;
    let value = input::ThreadStateValue::parse(req.state)?;
    Ok(Json(state.control.thread_set_state(&ctx, &id, value).await?))
}

#[utoipa::path(
    get,
    operation_id = "threads_history",
    path = "/v1/threads/{id}/history",
    tag = "threads",
    summary = "A thread's checkpoints",
    params(("id" = String, Path, description = "Thread id"), crate::extract::PageQuery),
    responses((status = 200, description = "Checkpoints", body = agentd_api_types::Page<agentd_api_types::Checkpoint>))
)]
async fn history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Checkpoint>>, ApiError> {
    let ctx = caller.authorize_run::<Read>()?;
    let id = path_thread_id(&id)?;
    Ok(Json(state.control.thread_history(&ctx, &id, &q.parse()?).await?))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list, show, patch, remove, state, set_state, history))]
pub(super) struct Doc;
