//! The domain layer of agentd, between every front end (the REST API, later MCP, the
//! LangGraph API, schedules and webhooks) and the store.
//!
//! It owns every operation (signup, login, keys, agents and deploys, invocations and
//! waiting on them, following events, artifacts, the memory store, the worker protocol), its validation
//! (parsed once into the types of [`input`]), its authorization (each operation takes
//! the capability it needs, see [`auth`]), the tenant's quotas, the decision of what
//! runs again ([`RetryPolicy`]), the sealing of agents' secrets and the background
//! reconcilers. Its errors
//! ([`ControlError`]) carry no HTTP; a front end parses, authorizes, calls an operation
//! here and maps the result.

pub mod accounts;
pub mod agents;
pub mod artifacts;
pub mod audit;
pub mod auth;
pub mod builds;
mod config;
mod cron;
mod error;
pub mod follow;
pub mod input;
pub mod invocations;
pub mod limits;
mod master_key;
pub mod members;
pub mod memory;
pub mod metrics;
pub mod operators;
mod rate_limits;
mod reconcilers;
mod retry;
pub mod runs;
pub mod schedules;
mod secrets;
pub mod signatures;
mod storage;
pub mod threads;
pub mod triggers;
pub mod usage;
mod wait;
pub mod webhooks;
mod worker_presence;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agentd_core::TenantLimits;
use agentd_core::builds::PackageIndexes;
use agentd_store::{Blobs, Store};

pub use accounts::{Caller, CreatedKey, Login, NewKey, Session, SignedUp, Signup};
pub use agentd_bundle::SchemaViolation;
pub use agentd_store::{Changes, SecretWritten, Subscription};
pub use agents::{Activation, AgentChanges, AgentSpec, RuntimeInfo};
pub use artifacts::ArtifactContent;
pub use audit::AuditFilter;
pub use auth::{
    Admin, Capability, CreatedWorkerToken, Ctx, Deploy, Invoke, Principal, Read, RunCapability, RunGrant, WorkerCtx,
    worker_token_create, worker_token_revoke,
};
pub use builds::{BuildFollowed, BuildFollower, BuildResult, VersionBuildView};
pub use error::{Conflict, ControlError, Forbidden, Invalid, QuotaExceeded, RateLimited, Result, Unauthenticated};
pub use follow::{EventFollower, Followed};
pub use invocations::{Accepted, InvocationFilter, InvokeSpec, settled};
pub use limits::{LimitChange, LimitSource, LimitView, LimitsView, tenant_limits_change, tenant_limits_show};
pub use master_key::{MASTER_KEY_BYTES, MasterKey, MasterKeyError, MasterKeys};
pub use members::{
    AcceptInvite, CreatedInvite, INVITE_TOKEN_PREFIX, InviteSpec, Joined, OwnerInvite, SignupPolicy,
    tenant_create_with_owner_invite,
};
pub use memory::{MemoryPut, MemoryPutSpec, MemorySearchSpec, NamespaceSpec};
pub use operators::{CreatedOperatorToken, NewWorkspace, Operator, OperatorCtx, Operators, operators_on_store};
pub use reconcilers::Reconcilers;
pub use retry::RetryPolicy;
pub use runs::{Claimer, LeaseLength, WorkerName};
pub use schedules::{ScheduleChanges, ScheduleSpec};
pub use secrets::{MAX_SECRETS_PER_AGENT, Rotation, secrets_rotate};
pub use threads::{ThreadFilter, ThreadSpec};
pub use triggers::{
    CreatedTrigger, ENVELOPE_HEADERS, MAX_TRIGGERS_PER_AGENT, OpenTrigger, TriggerFired, TriggerRequest, TriggerSpec,
};
pub use usage::UsagePeriod;
pub use webhooks::{WebhookChanges, WebhookSettings, WebhookSpec, WebhookWithSecret};

/// One check of readiness: its name and why it failed, if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessCheck {
    pub name: &'static str,
    pub outcome: std::result::Result<(), String>,
}

/// What the operator decided for the domain.
#[derive(Debug, Clone)]
pub struct ControlSettings {
    /// Who may make an account: anyone, invited people only, or invited people with an
    /// account already (and an operator's owner invites).
    pub signup: SignupPolicy,
    /// The URL clients reach the API at (`AGENTD_PUBLIC_URL`), for invite links and
    /// trigger URLs.
    pub public_url: Option<String>,
    /// Limits every new tenant starts with.
    pub default_limits: TenantLimits,
    /// Upper bound on any upload, whatever a tenant's own limit says.
    pub max_upload_bytes: u64,
    pub retry: RetryPolicy,
    /// How often the lease reaper looks for runs whose worker is gone.
    pub reap_every: Duration,
    /// How often expired memory store items are deleted and their bytes given back.
    pub memory_sweep_every: Duration,
    /// How often the blob sweep deletes blobs no row refers to.
    pub blob_sweep_every: Duration,
    /// How often the schedules reconciler looks for due occurrences.
    pub schedule_tick: Duration,
    /// How long a blob just written, and the versions of an agent just deleted, are kept
    /// whatever refers to them: the time a writer has to commit its row.
    pub blob_grace: Duration,
    /// Where dependency builds get packages from.
    pub package_indexes: PackageIndexes,
    /// The interpreters' versions (`python` → `3.11.2`), part of every dependency digest:
    /// packages installed for one interpreter are not reused by another.
    pub runtime_versions: BTreeMap<String, String>,
    /// The keys agents' secrets are sealed and opened with.
    pub master_keys: MasterKeys,
    /// Signups accepted per client address per hour (0: no limit).
    pub signups_per_hour_per_ip: u32,
    /// Login attempts accepted per client address per minute (0: no limit), beside the
    /// per-account throttle on wrong passwords.
    pub logins_per_minute_per_ip: u32,
    /// Where outbound webhooks may go, and how they are retried.
    pub webhooks: WebhookSettings,
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
            signup: SignupPolicy::Open,
            public_url: None,
            default_limits: TenantLimits::default(),
            max_upload_bytes: 200 * 1024 * 1024,
            retry: RetryPolicy::default(),
            reap_every: Duration::from_secs(15),
            memory_sweep_every: Duration::from_secs(60),
            blob_sweep_every: Duration::from_secs(300),
            schedule_tick: Duration::from_secs(1),
            blob_grace: Duration::from_secs(3600),
            package_indexes: PackageIndexes::default(),
            runtime_versions: BTreeMap::new(),
            // A key of this process alone: fine for tests, lost at exit. `agentd serve`
            // always passes the operator's.
            master_keys: MasterKeys::new(MasterKey::generate(), None),
            signups_per_hour_per_ip: 20,
            logins_per_minute_per_ip: 30,
            webhooks: WebhookSettings::default(),
        }
    }
}

/// The domain: cheap to clone, shared by every front end and the in-process worker.
#[derive(Clone)]
pub struct Control {
    store: Store,
    blobs: Blobs,
    settings: Arc<ControlSettings>,
    workers: Arc<worker_presence::WorkerPresence>,
}

impl Control {
    pub fn new(store: Store, blobs: Blobs, settings: ControlSettings) -> Control {
        // Every tenant read from here on has its overrides laid over the operator's defaults.
        let store = store.with_default_limits(settings.default_limits.clone());
        Control { store, blobs, settings: Arc::new(settings), workers: Default::default() }
    }

    pub fn settings(&self) -> &ControlSettings {
        &self.settings
    }

    /// Ready when the store answers.
    pub async fn ready(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    /// What readiness depends on in the domain's reach, each checked now: the store
    /// answers, its schema has every migration this binary knows, the blob store takes a
    /// write (a probe file written and removed; in S3 one fixed small object).
    pub async fn readiness(&self) -> Vec<ReadinessCheck> {
        let store = self.store.ping().await.map_err(|e| format!("the database does not answer: {e}"));
        let migrations = match store {
            Err(_) => Err("unknown while the database does not answer".to_owned()),
            Ok(()) => match self.store.migrations_pending().await {
                Ok(pending) if pending.is_empty() => Ok(()),
                Ok(pending) => Err(format!("migrations not applied: {pending:?}; run `agentd migrate`")),
                Err(e) => Err(format!("cannot read the applied migrations: {e}")),
            },
        };
        let blobs = self.blobs.probe_write().await.map_err(|e| format!("the blob store refuses writes: {e}"));
        vec![
            ReadinessCheck { name: "store", outcome: store },
            ReadinessCheck { name: "migrations", outcome: migrations },
            ReadinessCheck { name: "blobs", outcome: blobs },
        ]
    }

    /// Reads the queue's depth and oldest ready run from the store into the metrics
    /// (one grouped read over unfinished invocations, which the status index serves).
    pub async fn observe_queue(&self) -> Result<()> {
        let stats = self.store.queue_stats_unscoped().await?;
        let depth = |status: agentd_core::InvocationStatus| stats.depth.get(status.as_str()).copied().unwrap_or(0);
        let oldest = stats.oldest_queued_age_s.map(|s| Duration::from_secs_f64(s.max(0.0)));
        crate::metrics::queue_observed(depth, oldest);
        Ok(())
    }
}
