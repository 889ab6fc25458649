//! What passes between the queue and a worker: a claimed run, the events it produces,
//! how it ended, and what a lease renewal found. Embedded workers get these from the
//! store directly; remote workers get the same JSON over HTTP.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{InvocationId, TenantId};
use crate::limits::TenantLimits;
use crate::resources::{Event, InvocationError, Usage};
use crate::secret::{RunSecrets, Secret};
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
    /// The run's own credential (`AGENTD_TOKEN`), made fresh for this attempt: the API
    /// accepts it only while this attempt is running. The store keeps only its SHA-256.
    pub run_token: Secret,
    /// `sha256:<hex>` of the bundle to run.
    pub digest: String,
    pub manifest: Value,
    /// `sha256:<hex>` of the version's installed dependencies (a `.tar.gz`), if it has any.
    #[serde(default)]
    pub dependencies: Option<String>,
    pub input: Value,
    /// The answers to the agent's questions so far, in order, once it has asked any.
    #[serde(default)]
    pub resume: Option<Vec<Value>>,
    /// The run's own environment (manifest `[env]`, agent `config.env` and invoke `env`,
    /// resolved when the invocation was accepted); the platform's variables come on top.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The agent's secrets, decrypted when the run was claimed (so every attempt gets the
    /// values current at its start). They are set after `env`, and win over it.
    #[serde(default)]
    pub secrets: RunSecrets,
    pub thread_id: Option<String>,
    /// The thread's state as this run starts on it (`null` before its first checkpoint;
    /// a resumed run starts again on the state its first attempt had).
    #[serde(default)]
    pub thread_state: Value,
    pub timeout_s: u32,
    pub limits: TenantLimits,
    /// The `seq` the next event of this invocation gets.
    pub next_seq: u64,
}

/// One event a worker appends to the run it holds: an [`Event`] as it will be read back.
pub type NewEvent = Event;

/// How a run ended, as the worker reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    pub status: InvocationStatus,
    pub output: Option<Value>,
    pub error: Option<InvocationError>,
    pub usage: Usage,
    /// Whose fault a failure was; it decides what runs again (see [`Fault`]).
    #[serde(default)]
    pub fault: Fault,
    /// For `waiting_for_input`: the question the agent asked (its `interrupt` value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt: Option<Value>,
    /// The last `state` the agent sent, if any: the thread's next checkpoint when the run
    /// settles (ignored for a run without a thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
}

/// Whose fault a run's failure was.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The run's own outcome (it failed, timed out, hit a limit): retried only while the
    /// invocation's `max_attempts` allow.
    #[default]
    Agent,
    /// The platform could not run it (the sandbox would not start, the worker broke):
    /// the agent did nothing wrong, so it runs again as a new attempt, up to a bound of
    /// its own that does not consume `max_attempts`.
    Platform,
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
#[serde(deny_unknown_fields)]
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

/// A dependency install handed to one worker until its lease expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimedBuild {
    pub build_id: crate::BuildId,
    pub tenant_id: TenantId,
    pub lease_owner: String,
    pub attempt: u32,
    /// The bundle whose dependency files are installed.
    pub bundle_digest: String,
    pub runtime: String,
    /// The bundle crate's `DependencyPlan`, as JSON.
    pub plan: Value,
    pub indexes: crate::builds::PackageIndexes,
    pub timeout_s: u32,
    pub memory_mb: u32,
    /// Largest installed tree.
    pub max_bytes: u64,
    /// The `seq` the next log line gets.
    pub next_seq: u64,
}

impl ClaimedBuild {
    pub fn lease(&self) -> BuildLease {
        BuildLease { build_id: self.build_id.clone(), lease_owner: self.lease_owner.clone(), attempt: self.attempt }
    }
}

/// Identifies one lease on one build; like [`RunLease`], every write about the build
/// carries it and applies only while it is current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildLease {
    pub build_id: crate::BuildId,
    pub lease_owner: String,
    pub attempt: u32,
}

/// How a build ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum BuildOutcome {
    /// The installed tree is stored as a blob (`.tar.gz`) under `archive_digest`.
    Ready {
        archive_digest: String,
        installed_bytes: u64,
    },
    Failed {
        error: String,
    },
}
