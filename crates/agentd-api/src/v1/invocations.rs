//! `POST /v1/agents/{slug}/invoke` and `/v1/invocations`: accept, read, logs, cancel.
//! Invoke, read and cancel let a run's own token in (`authorize_run`): a run invokes
//! sub-agents and reads or cancels only those.

use agentd_api_types::{Event, Interrupt, Invocation, InvocationStatus, InvokeRequest, Page, RespondRequest};
use agentd_control::{Invalid, InvocationFilter, Invoke, InvokeSpec, Read, input, settled};
use agentd_core::{InvocationId, PageBounds, PageRequest, ResourceKind, ThreadId};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::extract::{ApiJson, ApiQuery, Caller, path_invocation_id, path_slug, query_agent};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/agents/{slug}/invoke", post(invoke))
        .route("/invocations", get(list))
        .route("/invocations/{id}", get(show))
        .route("/invocations/{id}/logs", get(logs))
        .route("/invocations/{id}/cancel", post(cancel))
        .route("/invocations/{id}/respond", post(respond))
        .route("/invocations/{id}/interrupts", get(interrupts))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvokeQuery {
    wait: Option<u64>,
}

/// `202` while the invocation is still going, `200` once it has settled.
fn invocation_response(invocation: Invocation) -> Response {
    let status = if settled(&invocation) { StatusCode::OK } else { StatusCode::ACCEPTED };
    let location = HeaderValue::from_str(&format!("/v1/invocations/{}", invocation.id)).ok();
    let mut response = (status, Json(invocation)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

#[utoipa::path(
    post,
    operation_id = "invocations_invoke",
    path = "/v1/agents/{slug}/invoke",
    tag = "invocations",
    summary = "Invokes an agent",
    params(("slug" = String, Path, description = "The agent's slug"), InvokeQuery, ("Idempotency-Key" = Option<String>, Header, description = "Deduplicates retries of this invoke for 24 h")),
    request_body = agentd_api_types::InvokeRequest,
    responses((status = 200, description = "Finished within `wait`", body = agentd_api_types::Invocation), (status = 202, description = "Accepted; still going", body = agentd_api_types::Invocation))
)]
async fn invoke(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
    ApiQuery(q): ApiQuery<InvokeQuery>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<InvokeRequest>,
) -> Result<Response, ApiError> {
    let ctx = caller.authorize_run::<Invoke>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    let wait = q.wait.map(input::WaitTime::parse_secs).transpose()?;
    // A value that is not visible ASCII reads as empty, which the key's rule refuses.
    let idempotency_key = headers
        .get("idempotency-key")
        .map(|value| input::IdempotencyKey::parse(value.to_str().unwrap_or_default()))
        .transpose()?;
    let spec = InvokeSpec {
        input: req.input,
        priority: input::Priority::parse(req.priority)?,
        max_attempts: input::MaxAttempts::parse(req.max_attempts)?,
        timeout_s: req.timeout_s,
        metadata: input::Metadata::parse(req.metadata)?,
        idempotency_key,
        env: input::EnvVars::parse(req.env.unwrap_or_default())?,
        input_timeout_s: req.input_timeout_s,
        thread_id: req.thread_id.as_deref().map(input::thread_id).transpose()?,
        multitask_strategy: input::multitask_strategy(req.multitask_strategy.as_deref())?,
        webhook_url: req.webhook_url,
    };
    let accepted = state.control.invoke(&ctx, &slug, spec, wait).await?;
    crate::request_id::record_invocation(&accepted.invocation.id);
    Ok(invocation_response(accepted.invocation))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    agent: Option<String>,
    status: Option<String>,
    thread_id: Option<String>,
    parent_id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    operation_id = "invocations_list",
    path = "/v1/invocations",
    tag = "invocations",
    summary = "Lists invocations",
    params(ListQuery),
    responses((status = 200, description = "Invocations", body = agentd_api_types::Page<agentd_api_types::Invocation>))
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Invocation>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let status = match &q.status {
        Some(s) => Some(InvocationStatus::parse(s).map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?),
        None => None,
    };
    let agent = query_agent(q.agent.as_deref())?;
    let page = PageRequest::parse(q.limit, q.cursor.as_deref(), PageBounds::RESOURCES).map_err(Invalid::from)?;
    let thread_id = match q.thread_id.as_deref() {
        Some(t) => {
            Some(ThreadId::parse(t).map_err(|e| ApiError::bad_request("invalid_query", format!("thread_id: {e}")))?)
        }
        None => None,
    };
    let parent_id = match &q.parent_id {
        Some(p) => Some(
            InvocationId::parse(p).map_err(|e| ApiError::bad_request("invalid_query", format!("parent_id: {e}")))?,
        ),
        None => None,
    };
    let filter = InvocationFilter { agent, status, thread_id, parent_id };
    Ok(Json(state.control.invocations_list(&ctx, &filter, &page).await?))
}

#[utoipa::path(
    get,
    operation_id = "invocations_show",
    path = "/v1/invocations/{id}",
    tag = "invocations",
    summary = "One invocation",
    params(("id" = String, Path, description = "Invocation id")),
    responses((status = 200, description = "The invocation", body = agentd_api_types::Invocation))
)]
async fn show(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Invocation>, ApiError> {
    let ctx = caller.authorize_run::<Read>()?;
    Ok(Json(state.control.invocation_get(&ctx, &path_invocation_id(&id)?).await?))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    operation_id = "invocations_logs",
    path = "/v1/invocations/{id}/logs",
    tag = "invocations",
    summary = "An invocation's events as JSON",
    params(("id" = String, Path, description = "Invocation id"), LogsQuery),
    responses((status = 200, description = "Events", body = agentd_api_types::Page<agentd_api_types::Event>))
)]
async fn logs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> Result<Json<Page<Event>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let after = q.after.map(|seq| seq.to_string());
    let page = PageRequest::parse(q.limit, after.as_deref(), PageBounds::EVENTS).map_err(Invalid::from)?;
    Ok(Json(state.control.invocation_logs(&ctx, &path_invocation_id(&id)?, &page).await?))
}

#[utoipa::path(
    post,
    operation_id = "invocations_cancel",
    path = "/v1/invocations/{id}/cancel",
    tag = "invocations",
    summary = "Cancels an invocation",
    params(("id" = String, Path, description = "Invocation id")),
    responses((status = 200, description = "Cancelled (or already finished)", body = agentd_api_types::Invocation), (status = 202, description = "Cancellation under way", body = agentd_api_types::Invocation))
)]
async fn cancel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let ctx = caller.authorize_run::<Invoke>()?;
    let invocation = state.control.invocation_cancel(&ctx, &path_invocation_id(&id)?).await?;
    Ok(invocation_response(invocation))
}

/// Answers the invocation's open question; `?wait=N` returns once it settles again.
#[utoipa::path(
    post,
    operation_id = "invocations_respond",
    path = "/v1/invocations/{id}/respond",
    tag = "invocations",
    summary = "Answers an invocation's open question",
    params(("id" = String, Path, description = "Invocation id"), InvokeQuery),
    request_body = agentd_api_types::RespondRequest,
    responses((status = 200, description = "Finished within `wait`", body = agentd_api_types::Invocation), (status = 202, description = "Resumed", body = agentd_api_types::Invocation))
)]
async fn respond(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<InvokeQuery>,
    ApiJson(req): ApiJson<RespondRequest>,
) -> Result<Response, ApiError> {
    let ctx = caller.authorize::<Invoke>()?;
    let id = path_invocation_id(&id)?;
    let wait = q.wait.map(input::WaitTime::parse_secs).transpose()?;
    let invocation = state.control.respond(&ctx, &id, req.answer, wait).await?;
    Ok(invocation_response(invocation))
}

#[utoipa::path(
    get,
    operation_id = "invocations_interrupts",
    path = "/v1/invocations/{id}/interrupts",
    tag = "invocations",
    summary = "The questions an invocation asked",
    params(("id" = String, Path, description = "Invocation id")),
    responses((status = 200, description = "Interrupts", body = agentd_api_types::Page<agentd_api_types::Interrupt>))
)]
async fn interrupts(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Page<Interrupt>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let data = state.control.interrupts(&ctx, &path_invocation_id(&id)?).await?;
    Ok(Json(Page { data, next_cursor: None }))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(invoke, list, show, logs, cancel, respond, interrupts))]
pub(super) struct Doc;
