//! `/v1/agents/{slug}/triggers`: an agent's inbound trigger URLs (create, list, show,
//! delete), and `POST /v1/triggers/{id}`, the URL itself: no API key, a signed request
//! whose body becomes the input of a new invocation (`202 {id, status, duplicate}`).
//! The signing secret is in the creation's answer only.
//!
//! A trigger's `url` is built from `AGENTD_PUBLIC_URL` when the operator set it, else
//! from the request's `Host` (over `http://`).

use agentd_api_types::{CreateTriggerRequest, CreatedTrigger, Page, Trigger, TriggerAccepted};
use agentd_control::input::Description;
use agentd_control::{ControlError, Deploy, Read, TriggerRequest, TriggerSpec};
use agentd_core::{ResourceKind, TriggerId};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::extract::{ApiJson, Caller, path_slug, request_origin};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/agents/{slug}/triggers", get(list).post(create))
        .route("/agents/{slug}/triggers/{id}", get(show).delete(remove))
        .route("/triggers/{id}", post(fire))
}

/// Where this server is reached: `AGENTD_PUBLIC_URL`, else the request's `Host`.
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = state.control.settings().public_url.as_deref() {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

fn view(base: &str, trigger: agentd_core::Trigger) -> Trigger {
    Trigger {
        url: format!("{base}/v1/triggers/{}", trigger.id),
        id: trigger.id,
        agent: trigger.agent,
        mode: trigger.mode,
        envelope: trigger.envelope,
        description: trigger.description,
        created_at: trigger.created_at,
    }
}

/// A trigger id from the path; one that cannot be valid names nothing.
fn path_trigger_id(raw: &str) -> Result<TriggerId, ApiError> {
    TriggerId::parse(raw).map_err(|_| ControlError::NotFound(ResourceKind::Trigger).into())
}

#[utoipa::path(
    post,
    operation_id = "triggers_create",
    path = "/v1/agents/{slug}/triggers",
    tag = "triggers",
    summary = "Creates a trigger URL (its signing secret is shown once)",
    params(("slug" = String, Path, description = "The agent's slug")),
    request_body = agentd_api_types::CreateTriggerRequest,
    responses((status = 201, description = "The trigger and its secret, shown once", body = agentd_api_types::CreatedTrigger))
)]
async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateTriggerRequest>,
) -> Result<(StatusCode, Json<CreatedTrigger>), ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    let spec = TriggerSpec {
        mode: req.mode,
        envelope: req.envelope.unwrap_or(false),
        description: req.description.map(Description::parse).transpose()?,
    };
    let created = state.control.trigger_create(&ctx, &slug, spec).await?;
    let base = public_base(&state, &headers);
    let body = CreatedTrigger { trigger: view(&base, created.trigger), secret: created.secret.into_exposed() };
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(
    get,
    operation_id = "triggers_list",
    path = "/v1/agents/{slug}/triggers",
    tag = "triggers",
    summary = "An agent's triggers (never their secrets)",
    params(("slug" = String, Path, description = "The agent's slug")),
    responses((status = 200, description = "Triggers, oldest first", body = agentd_api_types::Page<agentd_api_types::Trigger>))
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Page<Trigger>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    let base = public_base(&state, &headers);
    // At most MAX_TRIGGERS_PER_AGENT: one page, always.
    let data = state.control.triggers_list(&ctx, &slug).await?.into_iter().map(|t| view(&base, t)).collect();
    Ok(Json(Page { data, next_cursor: None }))
}

#[utoipa::path(
    get,
    operation_id = "triggers_show",
    path = "/v1/agents/{slug}/triggers/{id}",
    tag = "triggers",
    summary = "One trigger (never its secret)",
    params(("slug" = String, Path, description = "The agent's slug"), ("id" = String, Path, description = "Trigger id (`trg_…`)")),
    responses((status = 200, description = "The trigger", body = agentd_api_types::Trigger))
)]
async fn show(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Trigger>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    let id = path_trigger_id(&id)?;
    let trigger = state.control.trigger_get(&ctx, &slug, &id).await?;
    Ok(Json(view(&public_base(&state, &headers), trigger)))
}

#[utoipa::path(
    delete,
    operation_id = "triggers_delete",
    path = "/v1/agents/{slug}/triggers/{id}",
    tag = "triggers",
    summary = "Deletes a trigger; its URL answers 404 from then on",
    params(("slug" = String, Path, description = "The agent's slug"), ("id" = String, Path, description = "Trigger id (`trg_…`)")),
    responses((status = 204, description = "Deleted"))
)]
async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((slug, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    let id = path_trigger_id(&id)?;
    state.control.trigger_delete(&ctx, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn body_too_large(limit: u64) -> ApiError {
    ApiError::request(
        StatusCode::PAYLOAD_TOO_LARGE,
        "max_request_body_bytes",
        format!("the body is larger than this workspace's {limit} bytes (max_request_body_bytes)"),
    )
}

#[utoipa::path(
    post,
    operation_id = "triggers_fire",
    path = "/v1/triggers/{id}",
    tag = "triggers",
    summary = "Starts an invocation from a signed request (no API key; the signature is required)",
    description = "`standard_webhooks` mode: `webhook-id`, `webhook-timestamp` (within 5 min) and \
                   `webhook-signature: v1,<base64 HMAC-SHA256 of \"{id}.{timestamp}.{body}\">`. `github` mode: \
                   `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, deduplicated by \
                   `X-GitHub-Delivery`. A bad or missing signature is `401 trigger_signature_invalid`.",
    params(("id" = String, Path, description = "Trigger id (`trg_…`)")),
    request_body(content = serde_json::Value, content_type = "application/json", description = "Any JSON document: the run's input (or its envelope's `body`)"),
    responses((status = 202, description = "Accepted (or, with `duplicate`, accepted before)", body = agentd_api_types::TriggerAccepted)),
    security(())
)]
async fn fire(State(state): State<AppState>, Path(id): Path<String>, request: Request) -> Result<Response, ApiError> {
    let id = path_trigger_id(&id)?;
    let open = state.control.trigger_open(&id, request_origin()).await?;
    tracing::Span::current().record("tenant_id", open.tenant_id().as_str());
    let limit = open.body_limit();
    let (parts, body) = request.into_parts();
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(body_too_large(limit));
    }
    // Past the limit is the one way reading a body fails but for the sender going away,
    // which leaves nobody to answer.
    let body = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| body_too_large(limit))?;
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    let fired = state.control.trigger_fire(open, TriggerRequest { headers: &headers, body: &body }).await?;
    crate::request_id::record_invocation(&fired.invocation.id);
    let location = HeaderValue::from_str(&format!("/v1/invocations/{}", fired.invocation.id)).ok();
    let accepted =
        TriggerAccepted { id: fired.invocation.id, status: fired.invocation.status, duplicate: !fired.created };
    let mut response = (StatusCode::ACCEPTED, Json(accepted)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list, show, remove, fire))]
pub(super) struct Doc;
