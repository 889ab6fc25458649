//! `/v1/agents`: the registry, bundle uploads, version history and rollback.

use agentd_core::{Agent, AgentVersion, CreateAgentRequest, Page, PatchAgentRequest, Scope, Slug};
use agentd_store::NewAgent;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{PageQuery, path_slug};
use crate::auth::Caller;
use crate::extract::{ApiBytes, ApiJson, ApiQuery};
use crate::ops::deploy;
use crate::{ApiError, AppState};

const MAX_TAGS: usize = 20;

fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::invalid("invalid_field", format!("{field} must be at most {max} characters")));
    }
    Ok(())
}

fn check_tags(tags: &[String]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS || tags.iter().any(|t| t.is_empty() || t.chars().count() > 40) {
        return Err(ApiError::invalid("invalid_tags", format!("at most {MAX_TAGS} tags of 1 to 40 characters each")));
    }
    Ok(())
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Agent>>, ApiError> {
    let ctx = caller.authorize(Scope::Read)?;
    Ok(Json(state.store.agents_list(&ctx, q.limit, q.cursor.as_deref()).await?))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateAgentRequest>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    let ctx = caller.authorize(Scope::Deploy)?;
    let slug = Slug::parse(&req.slug).map_err(|e| ApiError::invalid("invalid_slug", format!("slug: {e}")))?;
    let name = req.name.unwrap_or_else(|| slug.to_string());
    check_text("name", &name, 100)?;
    if let Some(description) = &req.description {
        check_text("description", description, 2000)?;
    }
    let tags = req.tags.unwrap_or_default();
    check_tags(&tags)?;
    let new =
        NewAgent { slug, name, description: req.description, tags, visibility: req.visibility.unwrap_or_default() };
    let agent = state.store.agent_create(&ctx, new, caller.tenant().limits.max_agents).await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<Agent>, ApiError> {
    let ctx = caller.authorize(Scope::Read)?;
    Ok(Json(state.store.agent_get(&ctx, &path_slug(&slug, "agent")?).await?))
}

pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<PatchAgentRequest>,
) -> Result<Json<Agent>, ApiError> {
    let ctx = caller.authorize(Scope::Deploy)?;
    let slug = path_slug(&slug, "agent")?;
    if let Some(name) = &req.name {
        if name.trim().is_empty() {
            return Err(ApiError::invalid("invalid_field", "name must not be empty"));
        }
        check_text("name", name, 100)?;
    }
    if let Some(description) = &req.description {
        check_text("description", description, 2000)?;
    }
    if let Some(tags) = &req.tags {
        check_tags(tags)?;
    }
    Ok(Json(state.store.agent_patch(&ctx, &slug, &req).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ctx = caller.authorize(Scope::Deploy)?;
    state.store.agent_delete(&ctx, &path_slug(&slug, "agent")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    activate: Option<bool>,
}

pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    ApiBytes(body): ApiBytes,
) -> Result<(StatusCode, Json<AgentVersion>), ApiError> {
    let ctx = caller.authorize(Scope::Deploy)?;
    let slug = path_slug(&slug, "agent")?;
    let version = deploy::deploy(&state, &ctx, caller.tenant(), &slug, body, q.activate.unwrap_or(true)).await?;
    Ok((StatusCode::CREATED, Json(version)))
}

pub async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(slug): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<AgentVersion>>, ApiError> {
    let ctx = caller.authorize(Scope::Read)?;
    let slug = path_slug(&slug, "agent")?;
    Ok(Json(state.store.versions_list(&ctx, &slug, q.limit, q.cursor.as_deref()).await?))
}

pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    Path((slug, n)): Path<(String, String)>,
) -> Result<Json<Agent>, ApiError> {
    let ctx = caller.authorize(Scope::Deploy)?;
    let slug = path_slug(&slug, "agent")?;
    let n: u32 = n.parse().map_err(|_| ApiError::not_found("agent version"))?;
    Ok(Json(state.store.version_activate(&ctx, &slug, n).await?))
}
