//! `GET /v1/limits`: the workspace's limits, each with its source and current use.

use agentd_api_types::{LimitEntry, LimitsReport};
use agentd_control::Read;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::extract::Caller;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/limits", get(limits))
}

#[utoipa::path(
    get,
    operation_id = "limits_limits",
    path = "/v1/limits",
    tag = "usage",
    summary = "The workspace's limits",
    responses((status = 200, description = "Limits", body = agentd_api_types::LimitsReport))
)]
async fn limits(State(state): State<AppState>, Caller(caller): Caller) -> Result<Json<LimitsReport>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let view = state.control.limits(&ctx).await?;
    let limits = view
        .limits
        .into_iter()
        .map(|l| (l.name.to_owned(), LimitEntry { value: l.value, source: l.source.as_str().to_owned(), used: l.used }))
        .collect();
    Ok(Json(LimitsReport { limits }))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(limits))]
pub(super) struct Doc;
