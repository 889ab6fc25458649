//! `/v1/agents`: the registry, bundle uploads, version history and rollback.

use agentd_api_types::{Agent, AgentVersion, CreateAgentRequest, Page, PatchAgentRequest};
use agentd_control::{Activation, AgentChanges, AgentSpec, Deploy, Read, input};
use agentd_core::ResourceKind;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::extract::{ApiBytes, ApiJson, ApiQuery, Caller, PageQuery, path_slug};
use crate::{ApiError, AppState};

pub fn routes(upload_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/agents", get(list).post(create))
        .route("/agents/{slug}", get(show).patch(patch).delete(remove))
        .route("/agents/{slug}/versions", get(versions).post(upload).layer(DefaultBodyLimit::max(upload_limit)))
        .route("/agents/{slug}/versions/{n}/activate", post(activate))
}

#[utoipa::path(
    get,
    operation_id = "agents_list",
    path = "/v1/agents",
    tag = "agents",
    summary = "Lists agents",
    params(crate::extract::PageQuery),
    responses((status = 200, description = "Agents", body = agentd_api_types::Page<agentd_api_types::Agent>))
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Agent>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    Ok(Json(state.control.agents_list(&ctx, &q.parse()?).await?))
}

#[utoipa::path(
    post,
    operation_id = "agents_create",
    path = "/v1/agents",
    tag = "agents",
    summary = "Creates an agent",
    request_body = agentd_api_types::CreateAgentRequest,
    responses((status = 201, description = "The agent", body = agentd_api_types::Agent))
)]
async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<CreateAgentRequest>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let spec = AgentSpec {
        slug: input::agent_slug(&req.slug)?,
        name: req.name.map(input::AgentName::parse).transpose()?,
        description: req.description.map(input::Description::parse).transpose()?,
        tags: input::Tags::parse(req.tags.unwrap_or_default())?,
        visibility: req.visibility.unwrap_or_default(),
    };
    Ok((StatusCode::CREATED, Json(state.control.agent_create(&ctx, spec).await?)))
}

#[utoipa::path(
    get,
    operation_id = "agents_show",
    path = "/v1/agents/{slug}",
    tag = "agents",
    summary = "One agent",
    params(("slug" = String, Path, description = "The agent's slug")),
    responses((status = 200, description = "The agent", body = agentd_api_types::Agent))
)]
async fn show(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
) -> Result<Json<Agent>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    Ok(Json(state.control.agent_get(&ctx, &path_slug(&slug, ResourceKind::Agent)?).await?))
}

#[utoipa::path(
    patch,
    operation_id = "agents_patch",
    path = "/v1/agents/{slug}",
    tag = "agents",
    summary = "Changes an agent",
    params(("slug" = String, Path, description = "The agent's slug")),
    request_body = agentd_api_types::PatchAgentRequest,
    responses((status = 200, description = "The agent", body = agentd_api_types::Agent))
)]
async fn patch(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<PatchAgentRequest>,
) -> Result<Json<Agent>, ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    let changes = AgentChanges {
        name: req.name.map(input::AgentName::parse).transpose()?,
        description: req.description.map(input::Description::parse).transpose()?,
        tags: req.tags.map(input::Tags::parse).transpose()?,
        visibility: req.visibility,
        status: req.status,
        env: req.config.and_then(|config| config.env).map(input::EnvVars::parse).transpose()?,
        input_schema: req.input_schema.map(|s| input::SchemaChange::parse(input::SchemaField::Input, s)).transpose()?,
        output_schema: req
            .output_schema
            .map(|s| input::SchemaChange::parse(input::SchemaField::Output, s))
            .transpose()?,
    };
    Ok(Json(state.control.agent_patch(&ctx, &slug, changes).await?))
}

#[utoipa::path(
    delete,
    operation_id = "agents_remove",
    path = "/v1/agents/{slug}",
    tag = "agents",
    summary = "Deletes an agent",
    params(("slug" = String, Path, description = "The agent's slug")),
    responses((status = 204, description = "Deleted"))
)]
async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    state.control.agent_delete(&ctx, &path_slug(&slug, ResourceKind::Agent)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    activate: Option<bool>,
    /// Seconds to wait for the version's dependency build to settle.
    wait: Option<u64>,
}

#[utoipa::path(
    post,
    operation_id = "agents_upload",
    path = "/v1/agents/{slug}/versions",
    tag = "agents",
    summary = "Uploads a bundle as a new version",
    params(("slug" = String, Path, description = "The agent's slug"), UploadQuery),
    request_body(content((Vec<u8> = "application/gzip"), (Vec<u8> = "application/zip"), (Vec<u8> = "application/octet-stream")), description = "The bundle: a `.tar.gz` or `.zip` with `agent.toml` at its root"),
    responses((status = 201, description = "The new version", body = agentd_api_types::AgentVersion))
)]
async fn upload(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, Json<AgentVersion>), ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    let activation = if q.activate.unwrap_or(true) { Activation::Activate } else { Activation::Keep };
    let wait = q.wait.map(input::WaitTime::parse_secs).transpose()?;
    let version = state.control.deploy(&ctx, &slug, body, activation, wait).await?;
    Ok((StatusCode::CREATED, Json(version)))
}

#[utoipa::path(
    get,
    operation_id = "agents_versions",
    path = "/v1/agents/{slug}/versions",
    tag = "agents",
    summary = "An agent's versions",
    params(("slug" = String, Path, description = "The agent's slug"), crate::extract::PageQuery),
    responses((status = 200, description = "Versions", body = agentd_api_types::Page<agentd_api_types::AgentVersion>))
)]
async fn versions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<AgentVersion>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    Ok(Json(state.control.versions_list(&ctx, &slug, &q.parse()?).await?))
}

#[utoipa::path(
    post,
    operation_id = "agents_activate",
    path = "/v1/agents/{slug}/versions/{n}/activate",
    tag = "agents",
    summary = "Activates a version (rollback)",
    params(("slug" = String, Path, description = "The agent's slug"), ("n" = u32, Path, description = "The version number")),
    responses((status = 200, description = "The agent", body = agentd_api_types::Agent))
)]
async fn activate(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((slug, n)): Path<(String, String)>,
) -> Result<Json<Agent>, ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    let slug = path_slug(&slug, ResourceKind::Agent)?;
    let n: u32 = n.parse().map_err(|_| agentd_control::ControlError::NotFound(ResourceKind::AgentVersion))?;
    Ok(Json(state.control.version_activate(&ctx, &slug, n).await?))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, show, patch, remove, upload, versions, activate))]
pub(super) struct Doc;
