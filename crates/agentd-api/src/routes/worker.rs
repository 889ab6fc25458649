//! `/v1/worker/...`: the protocol remote workers pull work with. Authenticated by a
//! worker token (`agw_…`); every write is fenced by the run's lease, and the lease owner
//! is prefixed with the token's id, so a worker can only touch runs it claimed itself.

use std::time::Duration;

use agentd_core::queue::{
    AppendEventsRequest, Applied, ClaimRequest, CompleteRequest, HeartbeatRequest, HeartbeatResponse, ReleaseRequest,
    RunLease,
};
use agentd_core::{Artifact, InvocationId, WorkerTokenId};
use agentd_store::{NewArtifact, RetryPolicy, hash_secret};
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use bytes::Bytes;

use crate::extract::{ApiJson, ApiQuery};
use crate::{ApiError, AppState};

pub const WORKER_TOKEN_PREFIX: &str = "agw_";
const MAX_WAIT: Duration = Duration::from_secs(30);
const MAX_LEASE_S: u32 = 3600;

/// A caller holding a live worker token.
pub struct WorkerCaller {
    token: WorkerTokenId,
}

impl WorkerCaller {
    fn owner_prefix(&self) -> String {
        format!("{}/", self.token)
    }

    /// `404` for a lease that is not this token's: to a worker, another's run does not exist.
    fn check(&self, lease: &RunLease) -> Result<(), ApiError> {
        if lease.lease_owner.starts_with(&self.owner_prefix()) { Ok(()) } else { Err(ApiError::not_found("run")) }
    }
}

impl FromRequestParts<AppState> for WorkerCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| t.starts_with(WORKER_TOKEN_PREFIX))
            .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <worker token>`"))?;
        let found = state.store.worker_token_authenticate_unscoped(&hash_secret(token)).await?;
        let token = found.ok_or_else(|| ApiError::unauthorized("the worker token is unknown or revoked"))?;
        Ok(WorkerCaller { token })
    }
}

fn lease_duration(lease_s: u32) -> Result<Duration, ApiError> {
    if (1..=MAX_LEASE_S).contains(&lease_s) {
        Ok(Duration::from_secs(u64::from(lease_s)))
    } else {
        Err(ApiError::invalid("invalid_lease", format!("lease_s must be between 1 and {MAX_LEASE_S}")))
    }
}

pub async fn claim(
    State(state): State<AppState>,
    caller: WorkerCaller,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<Response, ApiError> {
    let name_ok = !req.worker.is_empty() && req.worker.len() <= 100 && req.worker.chars().all(|c| c.is_ascii_graphic());
    if !name_ok {
        return Err(ApiError::invalid("invalid_worker", "worker must be 1 to 100 visible ASCII characters"));
    }
    let owner = format!("{}{}", caller.owner_prefix(), req.worker);
    let wait = Duration::from_secs(u64::from(req.wait_s)).min(MAX_WAIT);
    let claimed = state.store.queue_claim_waiting_unscoped(&owner, lease_duration(req.lease_s)?, wait).await?;
    Ok(match claimed {
        Some(run) => Json(run).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

pub async fn heartbeat(
    State(state): State<AppState>,
    caller: WorkerCaller,
    ApiJson(req): ApiJson<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    caller.check(&req.lease)?;
    let status = state.store.queue_renew_lease(&req.lease, lease_duration(req.lease_s)?).await?;
    Ok(Json(HeartbeatResponse { status }))
}

pub async fn events(
    State(state): State<AppState>,
    caller: WorkerCaller,
    ApiJson(req): ApiJson<AppendEventsRequest>,
) -> Result<Json<Applied>, ApiError> {
    caller.check(&req.lease)?;
    Ok(Json(Applied { applied: state.store.events_append(&req.lease, &req.events).await? }))
}

pub async fn complete(
    State(state): State<AppState>,
    caller: WorkerCaller,
    ApiJson(req): ApiJson<CompleteRequest>,
) -> Result<Json<Applied>, ApiError> {
    caller.check(&req.lease)?;
    let applied = state.store.queue_complete(&req.lease, req.completion, &RetryPolicy::default()).await?;
    Ok(Json(Applied { applied }))
}

pub async fn release(
    State(state): State<AppState>,
    caller: WorkerCaller,
    ApiJson(req): ApiJson<ReleaseRequest>,
) -> Result<Json<Applied>, ApiError> {
    caller.check(&req.lease)?;
    Ok(Json(Applied { applied: state.store.queue_release(&req.lease).await? }))
}

/// A bundle by digest. Any worker may fetch any bundle: it is the code it will be asked
/// to run, and knowing a digest requires having been handed a run that names it.
pub async fn bundle(
    State(state): State<AppState>,
    _caller: WorkerCaller,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    let bytes = match state.blobs.get(&digest).await {
        Err(agentd_store::StoreError::NotFound { .. }) => return Err(ApiError::not_found("bundle")),
        read => read?,
    };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Body::from(bytes)).into_response())
}

/// Where an uploaded artifact belongs: the run's lease and the artifact's name.
#[derive(Debug, serde::Deserialize)]
pub struct ArtifactQuery {
    invocation_id: String,
    lease_owner: String,
    attempt: u32,
    name: String,
}

/// Stores an artifact's bytes (the body) and records it for the run, fenced by the lease.
pub async fn artifact(
    State(state): State<AppState>,
    caller: WorkerCaller,
    ApiQuery(q): ApiQuery<ArtifactQuery>,
    body: Bytes,
) -> Result<Json<Applied>, ApiError> {
    let invocation_id = InvocationId::parse(&q.invocation_id).map_err(|_| ApiError::not_found("run"))?;
    let lease = RunLease { invocation_id, lease_owner: q.lease_owner, attempt: q.attempt };
    caller.check(&lease)?;
    if !Artifact::is_valid_name(&q.name) {
        return Err(ApiError::invalid("artifact_name_invalid", "the artifact name must be a clean relative path"));
    }
    let size = body.len() as u64;
    let digest = state.blobs.put(body).await?;
    let artifact = NewArtifact { name: q.name, size, digest };
    Ok(Json(Applied { applied: state.store.artifact_record(&lease, &artifact).await? }))
}
