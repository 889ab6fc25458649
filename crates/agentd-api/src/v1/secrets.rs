//! `/v1/agents/{slug}/secrets`: an agent's secrets. `PUT …/{NAME}` sets one (`201` when
//! new, `200` when its value was replaced), `GET` lists names and instants, `DELETE
//! …/{NAME}` removes one. No route ever returns a value.

use agentd_api_types::{AgentSecret, Page, PutSecretRequest};
use agentd_control::input::{SecretName, SecretValue};
use agentd_control::{ControlError, Deploy, Read};
use agentd_core::ResourceKind;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};

use crate::extract::{ApiJson, Caller, path_slug};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/agents/{slug}/secrets", get(list))
        .route("/agents/{slug}/secrets/{name}", put(set).delete(remove))
}

#[utoipa::path(
    put,
    operation_id = "secrets_set",
    path = "/v1/agents/{slug}/secrets/{name}",
    tag = "agents",
    summary = "Sets a secret (write-only)",
    params(("slug" = String, Path, description = "The agent's slug"), ("name" = String, Path, description = "Secret name")),
    request_body = agentd_api_types::PutSecretRequest,
    responses((status = 200, description = "Replaced", body = agentd_api_types::AgentSecret), (status = 201, description = "Created", body = agentd_api_types::AgentSecret))
)]
async fn set(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((slug, name)): Path<(String, String)>,
    ApiJson(req): ApiJson<PutSecretRequest>,
) -> Result<(StatusCode, Json<AgentSecret>), ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    // The name is what the PUT creates: a bad one is refused, not "not found".
    let name = SecretName::parse(&name)?;
    let value = SecretValue::parse(req.value)?;
    let written = state.control.secret_put(&ctx, &slug, &name, value).await?;
    let status = if written.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(written.secret)))
}

#[utoipa::path(
    get,
    operation_id = "secrets_list",
    path = "/v1/agents/{slug}/secrets",
    tag = "agents",
    summary = "An agent's secrets (names only)",
    params(("slug" = String, Path, description = "The agent's slug")),
    responses((status = 200, description = "Secrets", body = agentd_api_types::Page<agentd_api_types::AgentSecret>))
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
) -> Result<Json<Page<AgentSecret>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    // At most 100 per agent: one page, always.
    let data = state.control.secrets_list(&ctx, &slug).await?;
    Ok(Json(Page { data, next_cursor: None }))
}

#[utoipa::path(
    delete,
    operation_id = "secrets_remove",
    path = "/v1/agents/{slug}/secrets/{name}",
    tag = "agents",
    summary = "Deletes a secret",
    params(("slug" = String, Path, description = "The agent's slug"), ("name" = String, Path, description = "Secret name")),
    responses((status = 204, description = "Deleted"))
)]
async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((slug, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    // A name no secret can have names nothing.
    let name = SecretName::parse(&name).map_err(|_| ControlError::NotFound(ResourceKind::Secret))?;
    state.control.secret_delete(&ctx, &slug, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(set, list, remove))]
pub(super) struct Doc;
