//! `/v1/worker/...`: the protocol remote workers pull runs with. A worker token is
//! checked by the domain's auth (`Control::authenticate_worker`), which also confines
//! the worker to leases it claimed itself; every write is fenced by the run's lease.

use std::time::Duration;

use agentd_api_types::worker::{
    AppendEventsRequest, Applied, BuildClaimRequest, BuildFailRequest, BuildLogRequest, BuildReleaseRequest,
    ClaimRequest, CompleteRequest, HeartbeatRequest, HeartbeatResponse, ReleaseRequest,
};
use agentd_control::{
    BuildResult, Claimer, ControlError, Invalid, LeaseLength, Unauthenticated, WorkerCtx, WorkerName,
};
use agentd_core::queue::{BuildLease, RunLease};
use agentd_core::{ArtifactName, BuildId, InvocationId, ResourceKind};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::extract::{ApiBytes, ApiJson, ApiQuery, bearer_token};
use crate::{ApiError, AppState};

/// A remote worker sends buffered output in batches (lines are capped at 64 KiB).
const EVENTS_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// One artifact upload; the sandbox caps `/outputs` well below this.
const ARTIFACT_BODY_LIMIT: usize = 1024 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/worker/claim", post(claim))
        .route("/worker/heartbeat", post(heartbeat))
        .route("/worker/events", post(events).layer(DefaultBodyLimit::max(EVENTS_BODY_LIMIT)))
        .route("/worker/complete", post(complete))
        .route("/worker/release", post(release))
        .route("/worker/bundles/{digest}", get(bundle))
        .route("/worker/artifacts", post(artifact).layer(DefaultBodyLimit::max(ARTIFACT_BODY_LIMIT)))
        .route("/worker/builds/claim", post(build_claim))
        .route("/worker/builds/log", post(build_log).layer(DefaultBodyLimit::max(EVENTS_BODY_LIMIT)))
        .route("/worker/builds/fail", post(build_fail))
        .route("/worker/builds/release", post(build_release))
        .route("/worker/builds/ready", post(build_ready).layer(DefaultBodyLimit::max(ARTIFACT_BODY_LIMIT)))
}

/// A caller holding a live worker token.
struct Worker(WorkerCtx);

impl FromRequestParts<AppState> for Worker {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?.ok_or(ControlError::from(Unauthenticated::MissingWorkerToken))?;
        Ok(Worker(state.control.authenticate_worker(token).await?))
    }
}

async fn claim(
    State(state): State<AppState>,
    Worker(worker): Worker,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<Response, ApiError> {
    let claimer = Claimer { name: WorkerName::parse(&req.worker)?, slots: req.slots };
    let lease = LeaseLength::parse_secs(req.lease_s)?;
    let wait = Duration::from_secs(u64::from(req.wait_s));
    Ok(match state.control.run_claim(&worker, &claimer, lease, wait).await? {
        Some(run) => Json(run).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn heartbeat(
    State(state): State<AppState>,
    Worker(worker): Worker,
    ApiJson(req): ApiJson<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let lease = LeaseLength::parse_secs(req.lease_s)?;
    let status = state.control.run_heartbeat(&worker, &req.lease, lease).await?;
    Ok(Json(HeartbeatResponse { status }))
}

async fn events(
    State(state): State<AppState>,
    Worker(worker): Worker,
    ApiJson(req): ApiJson<AppendEventsRequest>,
) -> Result<Json<Applied>, ApiError> {
    Ok(Json(Applied { applied: state.control.run_append_events(&worker, &req.lease, &req.events).await? }))
}

async fn complete(
    State(state): State<AppState>,
    Worker(worker): Worker,
    ApiJson(req): ApiJson<CompleteRequest>,
) -> Result<Json<Applied>, ApiError> {
    Ok(Json(Applied { applied: state.control.run_complete(&worker, &req.lease, req.completion).await? }))
}

async fn release(
    State(state): State<AppState>,
    Worker(worker): Worker,
    ApiJson(req): ApiJson<ReleaseRequest>,
) -> Result<Json<Applied>, ApiError> {
    Ok(Json(Applied { applied: state.control.run_release(&worker, &req.lease).await? }))
}

async fn bundle(
    State(state): State<AppState>,
    Worker(worker): Worker,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    let bytes = state.control.run_bundle(&worker, &digest).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Body::from(bytes)).into_response())
}

/// Where an uploaded artifact belongs: the run's lease and the artifact's name.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ArtifactQuery {
    invocation_id: String,
    lease_owner: String,
    attempt: u32,
    name: String,
}

/// Stores an artifact's bytes (the body) and records it for the run, fenced by the lease.
async fn artifact(
    State(state): State<AppState>,
    Worker(worker): Worker,
    ApiQuery(q): ApiQuery<ArtifactQuery>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<Applied>, ApiError> {
    let invocation_id = InvocationId::parse(&q.invocation_id).map_err(|_| ControlError::NotFound(ResourceKind::Run))?;
    let lease = RunLease { invocation_id, lease_owner: q.lease_owner, attempt: q.attempt };
    let name = ArtifactName::parse(&q.name).ok_or(Invalid::ArtifactName)?;
    Ok(Json(Applied { applied: state.control.run_artifact(&worker, &lease, name, body).await? }))
}

async fn build_claim(
    State(state): State<AppState>,
    Worker(worker): Worker,
    ApiJson(req): ApiJson<BuildClaimRequest>,
) -> Result<Response, ApiError> {
    let name = WorkerName::parse(&req.worker)?;
    let lease = LeaseLength::parse_secs(req.lease_s)?;
    let wait = Duration::from_secs(u64::from(req.wait_s));
    Ok(match state.control.build_claim(&worker, &name, lease, wait).await? {
        Some(build) => Json(build).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Appends log lines to a build and renews its lease (no lines: a heartbeat).
async fn build_log(
    State(state): State<AppState>,
    Worker(worker): Worker,
    ApiJson(req): ApiJson<BuildLogRequest>,
) -> Result<Json<Applied>, ApiError> {
    let lease = LeaseLength::parse_secs(req.lease_s)?;
    let lines: Vec<(String, String)> = req.lines.into_iter().map(|l| (l.stream, l.message)).collect();
    Ok(Json(Applied { applied: state.control.build_log(&worker, &req.lease, &lines, lease).await? }))
}

async fn build_fail(
    State(state): State<AppState>,
    Worker(worker): Worker,
    ApiJson(req): ApiJson<BuildFailRequest>,
) -> Result<Json<Applied>, ApiError> {
    let result = BuildResult::Failed { error: req.error };
    Ok(Json(Applied { applied: state.control.build_finish(&worker, &req.lease, result).await? }))
}

/// Which build a ready tree (the body, a `.tar.gz`) belongs to.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildReadyQuery {
    build_id: String,
    lease_owner: String,
    attempt: u32,
    installed_bytes: u64,
}

async fn build_ready(
    State(state): State<AppState>,
    Worker(worker): Worker,
    ApiQuery(q): ApiQuery<BuildReadyQuery>,
    ApiBytes(archive): ApiBytes,
) -> Result<Json<Applied>, ApiError> {
    let build_id = BuildId::parse(&q.build_id).map_err(|_| ControlError::NotFound(ResourceKind::Build))?;
    let lease = BuildLease { build_id, lease_owner: q.lease_owner, attempt: q.attempt };
    let result = BuildResult::Ready { archive, installed_bytes: q.installed_bytes };
    Ok(Json(Applied { applied: state.control.build_finish(&worker, &lease, result).await? }))
}

async fn build_release(
    State(state): State<AppState>,
    Worker(worker): Worker,
    ApiJson(req): ApiJson<BuildReleaseRequest>,
) -> Result<Json<Applied>, ApiError> {
    Ok(Json(Applied { applied: state.control.build_release(&worker, &req.lease).await? }))
}
