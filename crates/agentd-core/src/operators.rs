//! What operators see: their own tokens, every tenant with its usage, the worker
//! processes serving the queue and the queue's depth. These views cross tenants on
//! purpose; only an operator's context reaches them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{OperatorTokenId, TenantId, WorkerTokenId};
use crate::resources::Tenant;
use crate::timestamp::Timestamp;
use crate::usage::UsageFigures;

/// An operator token as listed: never its secret.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorToken {
    pub id: OperatorTokenId,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A tenant as an operator sees it: the tenant, when it was suspended, and what it used.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantOverview {
    #[serde(flatten)]
    pub tenant: Tenant,
    pub suspended_at: Option<Timestamp>,
    pub usage: TenantUsage,
}

/// How many days back [`TenantUsage`] counts finished runs.
pub const TENANT_USAGE_DAYS: u32 = 30;

/// A tenant's usage: its runs that finished in the last [`TENANT_USAGE_DAYS`] days, what
/// it stores now, and its runs not yet finished.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantUsage {
    pub days: u32,
    #[serde(flatten)]
    pub figures: UsageFigures,
    pub storage: TenantStorage,
    /// Runs queued or retrying, running, and waiting for an answer, now.
    pub queued: u64,
    pub running: u64,
    pub waiting_for_input: u64,
}

/// Bytes a tenant stores: its bundles (each digest once), its runs' artifacts and its
/// memory store.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantStorage {
    pub bundle_bytes: u64,
    pub artifact_bytes: u64,
    pub memory_bytes: u64,
    pub total_bytes: u64,
}

/// A worker process as it was last seen by a claim or a lease renewal.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerProcess {
    /// What its runs' leases are held by: `<worker token id>/<name>`, or
    /// `embedded/<name>` for a server's own in-process worker.
    pub lease_owner: String,
    pub name: String,
    /// `None` for a server's in-process worker.
    pub worker_token_id: Option<WorkerTokenId>,
    /// How many runs it executes at once, as it said (`None` when it did not).
    pub slots: Option<u32>,
    pub runs_in_flight: u64,
    pub first_seen_at: Timestamp,
    /// Its last heartbeat: the last claim or lease renewal recorded.
    pub last_seen_at: Timestamp,
    /// Seen within [`WORKER_LIVE_S`].
    pub live: bool,
}

/// A worker not seen for longer than this many seconds is shown as not live: a live one
/// asks for work at least every 20 s and renews its runs' leases every third of a lease.
pub const WORKER_LIVE_S: u64 = 60;

/// The queue's state across tenants.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Invocations not finished, by status (`queued`, `retrying`, `running`,
    /// `waiting_for_input`), over every tenant.
    pub depth: BTreeMap<String, u64>,
    /// How long the oldest run that is ready to be claimed (queued or retrying and due)
    /// has waited since it was accepted, in seconds; `None` when there is none.
    pub oldest_queued_age_s: Option<f64>,
    /// Runs claimed in the last minute, and that count per second.
    pub claims_last_minute: u64,
    pub claim_rate_per_s: f64,
    /// Per tenant with unfinished invocations: their counts by status.
    pub tenants: Vec<TenantQueue>,
}

/// One tenant's unfinished invocations, by status.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantQueue {
    pub tenant_id: TenantId,
    pub slug: String,
    pub depth: BTreeMap<String, u64>,
    /// Since when its oldest ready run has waited.
    pub oldest_queued_at: Option<Timestamp>,
}
