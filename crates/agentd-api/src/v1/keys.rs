//! `/v1/api-keys`: list (prefixes only), create (secret shown once), revoke.

use agentd_api_types::{ApiKey, CreateApiKeyRequest, CreatedApiKey, Page};
use agentd_control::{Admin, CreatedKey, NewKey, input};
use agentd_core::{ApiKeyId, ResourceKind};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};

use crate::extract::{ApiJson, ApiQuery, Caller, PageQuery};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api-keys", get(list).post(create)).route("/api-keys/{id}", delete(revoke))
}

/// A new key as the API shows it: the only time its secret leaves the server.
pub(super) fn created_key(created: CreatedKey) -> CreatedApiKey {
    CreatedApiKey { key: created.key, secret: created.secret.into_exposed() }
}

#[utoipa::path(
    get,
    operation_id = "keys_list",
    path = "/v1/api-keys",
    tag = "api-keys",
    summary = "Lists API keys",
    params(crate::extract::PageQuery),
    responses((status = 200, description = "API keys", body = agentd_api_types::Page<agentd_api_types::ApiKey>))
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<ApiKey>>, ApiError> {
    let ctx = caller.authorize::<Admin>()?;
    Ok(Json(state.control.api_keys_list(&ctx, &q.parse()?).await?))
}

#[utoipa::path(
    post,
    operation_id = "keys_create",
    path = "/v1/api-keys",
    tag = "api-keys",
    summary = "Creates an API key (secret shown once)",
    request_body = agentd_api_types::CreateApiKeyRequest,
    responses((status = 201, description = "The key with its secret", body = agentd_api_types::CreatedApiKey))
)]
async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let ctx = caller.authorize::<Admin>()?;
    let new = NewKey {
        name: input::KeyName::parse(&req.name)?,
        scopes: input::key_scopes(req.scopes)?,
        expiry: input::KeyExpiry::parse(req.expires_in_days)?,
    };
    let created = state.control.api_key_create(&ctx, new).await?;
    Ok((StatusCode::CREATED, Json(created_key(created))))
}

#[utoipa::path(
    delete,
    operation_id = "keys_revoke",
    path = "/v1/api-keys/{id}",
    tag = "api-keys",
    summary = "Revokes an API key",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 200, description = "The key, revoked", body = agentd_api_types::ApiKey))
)]
async fn revoke(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    let ctx = caller.authorize::<Admin>()?;
    let id = ApiKeyId::parse(&id).map_err(|_| agentd_control::ControlError::NotFound(ResourceKind::ApiKey))?;
    Ok(Json(state.control.api_key_revoke(&ctx, &id).await?))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, revoke))]
pub(super) struct Doc;
