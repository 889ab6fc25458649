//! `GET /v1/runtimes`: the interpreters agents run with here, and their versions, for
//! choosing `python = "…"` or `node = "…"` in agent.toml.

use agentd_api_types::{Page, RuntimeResponse};
use agentd_control::Read;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::extract::Caller;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/runtimes", get(list))
}

#[utoipa::path(
    get,
    operation_id = "runtimes_list",
    path = "/v1/runtimes",
    tag = "agents",
    summary = "The runtimes the workers offer",
    responses((status = 200, description = "Runtimes", body = agentd_api_types::Page<agentd_api_types::RuntimeResponse>))
)]
async fn list(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<Page<RuntimeResponse>>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let data = state
        .control
        .runtimes(&ctx)
        .into_iter()
        .map(|r| RuntimeResponse { runtime: r.runtime.to_owned(), version: r.version, available: r.available })
        .collect();
    Ok(Json(Page { data, next_cursor: None }))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list))]
pub(super) struct Doc;
