//! `POST /v1/agents/{slug}/invoke` and `/v1/invocations`: accept, read, logs, cancel.

use std::time::Duration;

use agentd_core::{Event, Invocation, InvocationStatus, InvokeRequest, Page, Scope};
use agentd_store::InvocationFilter;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{path_invocation_id, path_slug};
use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery};
use crate::ops::invoke::{self, MAX_WAIT_S, settled};
use crate::{ApiError, AppState};

/// How long `cancel` waits for a running agent to be killed before answering.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
pub struct InvokeQuery {
    wait: Option<u64>,
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().ok().map(str::trim).filter(|k| !k.is_empty() && k.len() <= 255);
    key.map(|k| Some(k.to_owned())).ok_or_else(|| {
        ApiError::bad_request("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 visible ASCII characters")
    })
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

pub async fn invoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    ApiQuery(q): ApiQuery<InvokeQuery>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<InvokeRequest>,
) -> Result<Response, ApiError> {
    let ctx = caller.authorize(Scope::Invoke)?;
    let slug = path_slug(&slug, "agent")?;
    if q.wait.is_some_and(|w| w > MAX_WAIT_S) {
        return Err(ApiError::bad_request(
            "invalid_wait",
            format!("wait must be at most {MAX_WAIT_S} seconds; poll or stream the events for longer runs"),
        ));
    }
    let key = idempotency_key(&headers)?;
    let (invocation, _created) = invoke::invoke(&state, &ctx, caller.tenant(), &slug, req, key).await?;
    let invocation = match q.wait {
        Some(wait) if wait > 0 => {
            invoke::wait_for(&state, &ctx, &invocation.id, Duration::from_secs(wait), settled).await?
        }
        _ => invocation,
    };
    Ok(invocation_response(invocation))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    agent: Option<String>,
    status: Option<String>,
    thread_id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Invocation>>, ApiError> {
    let ctx = caller.authorize(Scope::Read)?;
    let status = match q.status.as_deref() {
        Some(s) => Some(InvocationStatus::parse(s).map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?),
        None => None,
    };
    let filter = InvocationFilter { agent: q.agent, status, thread_id: q.thread_id, limit: q.limit, cursor: q.cursor };
    Ok(Json(state.store.invocations_list(&ctx, &filter).await?))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Invocation>, ApiError> {
    let ctx = caller.authorize(Scope::Read)?;
    Ok(Json(state.store.invocation_get(&ctx, &path_invocation_id(&id)?).await?))
}

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

pub async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> Result<Json<Page<Event>>, ApiError> {
    let ctx = caller.authorize(Scope::Read)?;
    Ok(Json(state.store.events_list(&ctx, &path_invocation_id(&id)?, q.after.unwrap_or(0), q.limit).await?))
}

pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let ctx = caller.authorize(Scope::Invoke)?;
    let id = path_invocation_id(&id)?;
    let invocation = state.store.invocation_cancel(&ctx, &id).await?;
    let invocation = if invocation.status == InvocationStatus::Running {
        invoke::wait_for(&state, &ctx, &id, CANCEL_WAIT, |i| i.status.is_terminal()).await?
    } else {
        invocation
    };
    Ok(invocation_response(invocation))
}
