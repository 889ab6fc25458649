//! `/v1/webhooks`: a tenant's outbound webhook endpoints. `POST` creates one and shows
//! its `whsec_` signing secret once; `GET`, `PATCH` and `DELETE` on `/{id}`;
//! `POST /{id}/rotate-secret` shows a new secret once; `GET /{id}/deliveries` is the
//! delivery log and `POST …/{delivery_id}/redeliver` sends one again.
//! `GET /v1/invocations/{id}/webhook-deliveries` is one invocation's deliveries.
//! `/v1/webhooks/invocation-secret` is the tenant's secret for invocations' own
//! `webhook_url`s (made on first read) and `…/rotate` replaces it.

use agentd_api_types::{
    CreateWebhookRequest, CreatedWebhook, InvocationWebhookSecret, Page, PatchWebhookRequest, WebhookDeliveries,
    WebhookDelivery, WebhookEndpoint,
};
use agentd_control::{ControlError, Deploy, Read, WebhookChanges, WebhookSpec, WebhookWithSecret};
use agentd_core::{ResourceKind, WebhookDeliveryId, WebhookId};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::extract::{ApiJson, Caller, path_invocation_id};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", post(create).get(list))
        .route("/webhooks/invocation-secret", get(invocation_secret))
        .route("/webhooks/invocation-secret/rotate", post(rotate_invocation_secret))
        .route("/webhooks/{id}", get(show).patch(update).delete(remove))
        .route("/webhooks/{id}/rotate-secret", post(rotate_secret))
        .route("/webhooks/{id}/deliveries", get(deliveries))
        .route("/webhooks/{id}/deliveries/{delivery_id}/redeliver", post(redeliver))
        .route("/invocations/{id}/webhook-deliveries", get(invocation_deliveries))
}

/// An endpoint id from the path; one that cannot be valid is `404`.
fn path_webhook_id(raw: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(raw).map_err(|_| ControlError::NotFound(ResourceKind::Webhook).into())
}

fn with_secret(created: WebhookWithSecret) -> CreatedWebhook {
    CreatedWebhook { endpoint: created.endpoint, secret: created.secret }
}

#[utoipa::path(
    post,
    operation_id = "webhooks_create",
    path = "/v1/webhooks",
    tag = "webhooks",
    summary = "Creates a webhook endpoint (its secret is shown once)",
    request_body = agentd_api_types::CreateWebhookRequest,
    responses((status = 201, description = "Created, with its signing secret", body = agentd_api_types::CreatedWebhook))
)]
async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<CreateWebhookRequest>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let spec = WebhookSpec { url: req.url, events: req.events, description: req.description, enabled: req.enabled };
    let created = state.control.webhook_create(&ctx, spec).await?;
    Ok((StatusCode::CREATED, Json(with_secret(created))))
}

#[utoipa::path(
    get,
    operation_id = "webhooks_list",
    path = "/v1/webhooks",
    tag = "webhooks",
    summary = "The workspace's webhook endpoints",
    responses((status = 200, description = "Endpoints, oldest first", body = agentd_api_types::Page<agentd_api_types::WebhookEndpoint>))
)]
async fn list(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<Page<WebhookEndpoint>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    // At most MAX_WEBHOOKS_PER_TENANT: one page, always.
    let data = state.control.webhooks_list(&ctx).await?;
    Ok(Json(Page { data, next_cursor: None }))
}

#[utoipa::path(
    get,
    operation_id = "webhooks_show",
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    summary = "A webhook endpoint",
    params(("id" = String, Path, description = "The endpoint's id (`whk_…`)")),
    responses((status = 200, description = "The endpoint", body = agentd_api_types::WebhookEndpoint))
)]
async fn show(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookEndpoint>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    Ok(Json(state.control.webhook_get(&ctx, &path_webhook_id(&id)?).await?))
}

#[utoipa::path(
    patch,
    operation_id = "webhooks_update",
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    summary = "Changes a webhook endpoint (enabled: true re-enables a disabled one)",
    params(("id" = String, Path, description = "The endpoint's id (`whk_…`)")),
    request_body = agentd_api_types::PatchWebhookRequest,
    responses((status = 200, description = "The endpoint as changed", body = agentd_api_types::WebhookEndpoint))
)]
async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PatchWebhookRequest>,
) -> Result<Json<WebhookEndpoint>, ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let id = path_webhook_id(&id)?;
    let changes =
        WebhookChanges { url: req.url, events: req.events, description: req.description, enabled: req.enabled };
    Ok(Json(state.control.webhook_update(&ctx, &id, changes).await?))
}

#[utoipa::path(
    delete,
    operation_id = "webhooks_remove",
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    summary = "Deletes a webhook endpoint and its delivery log",
    params(("id" = String, Path, description = "The endpoint's id (`whk_…`)")),
    responses((status = 204, description = "Deleted"))
)]
async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    state.control.webhook_delete(&ctx, &path_webhook_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    operation_id = "webhooks_rotate_secret",
    path = "/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    summary = "Gives an endpoint a new signing secret (shown once)",
    params(("id" = String, Path, description = "The endpoint's id (`whk_…`)")),
    responses((status = 200, description = "The endpoint with its new secret", body = agentd_api_types::CreatedWebhook))
)]
async fn rotate_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<CreatedWebhook>, ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let rotated = state.control.webhook_rotate_secret(&ctx, &path_webhook_id(&id)?).await?;
    Ok(Json(with_secret(rotated)))
}

#[utoipa::path(
    get,
    operation_id = "webhooks_deliveries",
    path = "/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    summary = "An endpoint's newest deliveries with their attempts",
    params(("id" = String, Path, description = "The endpoint's id (`whk_…`)")),
    responses((status = 200, description = "Up to 100 deliveries, newest first", body = agentd_api_types::WebhookDeliveries))
)]
async fn deliveries(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookDeliveries>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let data = state.control.webhook_deliveries(&ctx, &path_webhook_id(&id)?).await?;
    Ok(Json(WebhookDeliveries { data }))
}

#[utoipa::path(
    post,
    operation_id = "webhooks_redeliver",
    path = "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    tag = "webhooks",
    summary = "Sends a delivery again, with the same webhook-id",
    params(
        ("id" = String, Path, description = "The endpoint's id (`whk_…`)"),
        ("delivery_id" = String, Path, description = "The delivery's id (`dlv_…`)")
    ),
    responses((status = 202, description = "Queued again", body = agentd_api_types::WebhookDelivery))
)]
async fn redeliver(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<WebhookDelivery>), ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let id = path_webhook_id(&id)?;
    let delivery_id =
        WebhookDeliveryId::parse(&delivery_id).map_err(|_| ControlError::NotFound(ResourceKind::WebhookDelivery))?;
    let delivery = state.control.webhook_redeliver(&ctx, &id, &delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}

#[utoipa::path(
    get,
    operation_id = "webhooks_invocation_deliveries",
    path = "/v1/invocations/{id}/webhook-deliveries",
    tag = "webhooks",
    summary = "An invocation's webhook deliveries (endpoints and its webhook_url) with their attempts",
    params(("id" = String, Path, description = "The invocation's id (`inv_…`)")),
    responses((status = 200, description = "Up to 100 deliveries, oldest first", body = agentd_api_types::WebhookDeliveries))
)]
async fn invocation_deliveries(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookDeliveries>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let data = state.control.invocation_webhook_deliveries(&ctx, &path_invocation_id(&id)?).await?;
    Ok(Json(WebhookDeliveries { data }))
}

#[utoipa::path(
    get,
    operation_id = "webhooks_invocation_secret",
    path = "/v1/webhooks/invocation-secret",
    tag = "webhooks",
    summary = "The secret that signs deliveries to invocations' own webhook_url",
    responses((status = 200, description = "The secret (made on first use)", body = agentd_api_types::InvocationWebhookSecret))
)]
async fn invocation_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<InvocationWebhookSecret>, ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let secret = state.control.webhook_invocation_secret(&ctx, false).await?;
    Ok(Json(InvocationWebhookSecret { secret }))
}

#[utoipa::path(
    post,
    operation_id = "webhooks_rotate_invocation_secret",
    path = "/v1/webhooks/invocation-secret/rotate",
    tag = "webhooks",
    summary = "Replaces the secret that signs deliveries to invocations' own webhook_url",
    responses((status = 200, description = "The new secret", body = agentd_api_types::InvocationWebhookSecret))
)]
async fn rotate_invocation_secret(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<InvocationWebhookSecret>, ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let secret = state.control.webhook_invocation_secret(&ctx, true).await?;
    Ok(Json(InvocationWebhookSecret { secret }))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create,
    list,
    show,
    update,
    remove,
    rotate_secret,
    deliveries,
    redeliver,
    invocation_deliveries,
    invocation_secret,
    rotate_invocation_secret
))]
pub(super) struct Doc;
