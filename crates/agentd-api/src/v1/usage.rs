//! `GET /v1/usage`: what the tenant's finished runs consumed, per agent and UTC day.

use agentd_api_types::UsageReport;
use agentd_control::{Read, UsagePeriod};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::extract::{ApiQuery, Caller, query_agent};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/usage", get(usage))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    from: Option<String>,
    to: Option<String>,
    agent: Option<String>,
}

#[utoipa::path(
    get,
    operation_id = "usage_usage",
    path = "/v1/usage",
    tag = "usage",
    summary = "Metered usage by day and agent",
    params(UsageQuery),
    responses((status = 200, description = "Usage", body = agentd_api_types::UsageReport))
)]
async fn usage(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    let ctx = caller.authorize::<Read>()?;
    let period = UsagePeriod::parse(q.from.as_deref(), q.to.as_deref())?;
    let agent = query_agent(q.agent.as_deref())?;
    Ok(Json(state.control.usage(&ctx, period, agent).await?))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(usage))]
pub(super) struct Doc;
