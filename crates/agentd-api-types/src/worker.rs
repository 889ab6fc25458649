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
