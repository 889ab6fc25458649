//! The remote worker protocol (`/v1/worker/...`): what `agentd worker` on another machine
//! sends to claim runs and report on them. The values it carries (`ClaimedRun`,
//! `RunLease`, `Completion`, events) are the queue's own, from `agentd_core::queue`.

use agentd_core::queue::{Completion, LeaseStatus, NewEvent, RunLease};
use serde::{Deserialize, Serialize};

/// `POST /v1/worker/claim`: waits up to `wait_s` for a run; `204` when none came.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The worker process's own name; the server makes it part of the lease owner.
    pub worker: String,
    pub lease_s: u32,
    pub wait_s: u32,
    /// How many runs the worker executes at once, shown to operators; optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<u32>,
}

/// `POST /v1/worker/heartbeat`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub lease: RunLease,
    pub lease_s: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub status: LeaseStatus,
}

/// `POST /v1/worker/events`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendEventsRequest {
    pub lease: RunLease,
    pub events: Vec<NewEvent>,
}

/// `POST /v1/worker/complete`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub lease: RunLease,
    pub completion: Completion,
}

/// `POST /v1/worker/release`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    pub lease: RunLease,
}

/// Whether a fenced write was applied (false: the lease was no longer current).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Applied {
    pub applied: bool,
}

/// `POST /v1/worker/builds/claim`: waits up to `wait_s` for a dependency build; `204`
/// when none came. The claim's lease lasts `lease_s` and every log write renews it.
pub type BuildClaimRequest = ClaimRequest;

/// `POST /v1/worker/builds/log`: log lines `(stream, message)`; none is a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildLogRequest {
    pub lease: agentd_core::queue::BuildLease,
    pub lines: Vec<BuildLogEntry>,
    pub lease_s: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildLogEntry {
    pub stream: String,
    pub message: String,
}

/// `POST /v1/worker/builds/fail`: the build failed, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildFailRequest {
    pub lease: agentd_core::queue::BuildLease,
    pub error: String,
}

/// `POST /v1/worker/builds/release`: hands a build back untouched (shutting down).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildReleaseRequest {
    pub lease: agentd_core::queue::BuildLease,
}
