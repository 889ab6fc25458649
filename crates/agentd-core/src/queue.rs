//! What passes between the queue and a worker: a claimed run, the events it produces,
//! how it ended, and what a lease renewal found. Embedded workers get these from the
//! store directly; remote workers get the same JSON over HTTP.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{InvocationId, TenantId};
use crate::limits::TenantLimits;
use crate::resources::{Event, InvocationError, Usage};
use crate::status::InvocationStatus;

/// A run handed to one worker until its lease expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimedRun {
    pub invocation_id: InvocationId,
    pub tenant_id: TenantId,
    pub agent_slug: String,
    pub attempt: u32,
    pub max_attempts: u32,
    pub lease_owner: String,
    /// `sha256:<hex>` of the bundle to run.
    pub digest: String,
    pub manifest: Value,
    pub input: Value,
    pub thread_id: Option<String>,
    pub timeout_s: u32,
    pub limits: TenantLimits,
    /// The `seq` the next event of this invocation gets.
    pub next_seq: u64,
}

/// One event a worker appends to the run it holds: an [`Event`] as it will be read back.
pub type NewEvent = Event;

/// How a run ended, as the worker reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Completion {
    pub status: InvocationStatus,
    pub output: Option<Value>,
    pub error: Option<InvocationError>,
    pub usage: Usage,
}

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseStatus {
    Held,
    /// Held, and someone asked to cancel the run.
    CancelRequested,
    /// The run is no longer ours (reaped, or finished elsewhere): stop it.
    Lost,
}

/// Identifies one lease on one run: every write a worker makes about the run carries
/// it, and the store applies the write only while this lease is current (fencing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLease {
    pub invocation_id: InvocationId,
    pub lease_owner: String,
    pub attempt: u32,
}

impl ClaimedRun {
    pub fn lease(&self) -> RunLease {
        RunLease {
            invocation_id: self.invocation_id.clone(),
            lease_owner: self.lease_owner.clone(),
            attempt: self.attempt,
        }
    }
}

// ----- the remote worker protocol (`/v1/worker/...`) -----

/// `POST /v1/worker/claim`: waits up to `wait_s` for a run; `204` when none came.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// The worker process's own name; the server makes it part of the lease owner.
    pub worker: String,
    pub lease_s: u32,
    pub wait_s: u32,
}

/// `POST /v1/worker/heartbeat`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
pub struct AppendEventsRequest {
    pub lease: RunLease,
    pub events: Vec<NewEvent>,
}

/// `POST /v1/worker/complete`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompleteRequest {
    pub lease: RunLease,
    pub completion: Completion,
}

/// `POST /v1/worker/release`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseRequest {
    pub lease: RunLease,
}

/// Whether a fenced write was applied (false: the lease was no longer current).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Applied {
    pub applied: bool,
}
