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

async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Agent>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    Ok(Json(state.control.agents_list(&ctx, &q.parse()?).await?))
}

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

async fn show(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
) -> Result<Json<Agent>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    Ok(Json(state.control.agent_get(&ctx, &path_slug(&slug, ResourceKind::Agent)?).await?))
}

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

async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ctx = caller.authorize::<Deploy>()?;
    state.control.agent_delete(&ctx, &path_slug(&slug, ResourceKind::Agent)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    activate: Option<bool>,
    /// Seconds to wait for the version's dependency build to settle.
    wait: Option<u64>,
}

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
