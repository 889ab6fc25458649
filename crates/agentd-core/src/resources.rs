//! The resources of DESIGN §3, in the exact JSON shape the REST API shows them. The
//! request bodies of the API live in `agentd-api-types`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::Scopes;
use crate::ids::{AgentId, ApiKeyId, InvocationId, ScheduleId, SessionId, TenantId, ThreadId, UserId, VersionId};
use crate::limits::TenantLimits;
use crate::slug::Slug;
use crate::status::{
    EventKind, EventStream, InvocationStatus, ScheduleCatchup, ScheduleOverlap, TenantStatus, ThreadStatus,
};
use crate::timestamp::Timestamp;

/// The kinds of resource, for errors that name one ("agent not found").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Tenant,
    Workspace,
    ApiKey,
    Agent,
    AgentVersion,
    Invocation,
    Artifact,
    Blob,
    Bundle,
    /// A dependency install, as a worker sees it.
    Build,
    /// A run as a worker sees it: a lease on an invocation.
    Run,
    Thread,
    Session,
    /// An item of the tenant's memory store (`/v1/store/items`).
    MemoryItem,
    /// One of an agent's secrets, by name.
    Secret,
    /// A user's membership of a workspace (`/v1/members/{id}`).
    Member,
    /// An invitation to join a workspace.
    Invite,
    /// An inbound trigger URL of an agent.
    Trigger,
    /// An outbound webhook endpoint (`/v1/webhooks/{id}`).
    Webhook,
    /// One message to a webhook endpoint, with its attempts.
    WebhookDelivery,
    /// A cron schedule that invokes an agent (`/v1/schedules/{id}`).
    Schedule,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Tenant => "tenant",
            ResourceKind::Workspace => "workspace",
            ResourceKind::ApiKey => "API key",
            ResourceKind::Agent => "agent",
            ResourceKind::AgentVersion => "agent version",
            ResourceKind::Invocation => "invocation",
            ResourceKind::Artifact => "artifact",
            ResourceKind::Blob => "blob",
            ResourceKind::Bundle => "bundle",
            ResourceKind::Build => "dependency build",
            ResourceKind::Run => "run",
            ResourceKind::Thread => "thread",
            ResourceKind::Session => "session",
            ResourceKind::MemoryItem => "store item",
            ResourceKind::Secret => "secret",
            ResourceKind::Member => "member",
            ResourceKind::Invite => "invite",
            ResourceKind::Trigger => "trigger",
            ResourceKind::Webhook => "webhook endpoint",
            ResourceKind::WebhookDelivery => "webhook delivery",
            ResourceKind::Schedule => "schedule",
        }
    }
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One page of a cursor-paginated list.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: Slug,
    pub name: String,
    pub status: TenantStatus,
    pub limits: TenantLimits,
    pub created_at: Timestamp,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub created_at: Timestamp,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    /// The public part of the key (`agd_<prefix>_…`), enough to recognise it.
    pub prefix: String,
    pub scopes: Scopes,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// Returned once, at creation: the only time the secret is ever shown.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub secret: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Agent {
    pub id: AgentId,
    pub slug: Slug,
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub visibility: Visibility,
    pub status: AgentStatus,
    pub active_version: Option<u32>,
    /// Non-secret configuration every run of the agent gets.
    #[serde(default)]
    pub config: AgentConfig,
    /// JSON Schema of the input; when set, it wins over the active version's manifest.
    #[serde(default)]
    pub input_schema: Option<Value>,
    /// JSON Schema of the output; when set, it wins over the active version's manifest.
    #[serde(default)]
    pub output_schema: Option<Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An agent's configuration, set with `PATCH /v1/agents/{slug}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// Environment variables of every run, on top of the manifest's `[env]`; an invoke's
    /// `env` may override the names the manifest lists in `overridable_env`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Private,
    Public,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    #[default]
    Active,
    Disabled,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentVersion {
    pub id: VersionId,
    pub agent_id: AgentId,
    pub version: u32,
    /// `sha256:<hex>` of the uploaded bundle bytes.
    pub digest: String,
    pub manifest: Value,
    pub size_bytes: u64,
    pub created_by: String,
    pub created_at: Timestamp,
    /// Whether its dependencies are installed; only a `ready` version runs.
    pub build: crate::VersionBuild,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationError {
    pub code: String,
    pub message: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub wall_ms: u64,
    pub cpu_ms: u64,
    pub peak_memory_bytes: u64,
    pub log_bytes: u64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invocation {
    pub id: InvocationId,
    /// The agent's slug at the time of the call.
    pub agent: Slug,
    pub version: u32,
    pub thread_id: Option<ThreadId>,
    pub status: InvocationStatus,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<InvocationError>,
    pub priority: u8,
    /// Runs so far: each claim by a worker is one, recoveries included.
    pub attempt: u32,
    pub max_attempts: u32,
    /// Attempts that ran again because the platform failed them (a lost worker, a
    /// sandbox that would not start); they do not count against `max_attempts`.
    #[serde(default)]
    pub recoveries: u32,
    pub timeout_s: u32,
    pub idempotency_key: Option<String>,
    pub metadata: Value,
    /// The run that invoked this one with its `AGENTD_TOKEN` (a sub-agent's parent).
    #[serde(default)]
    pub parent_id: Option<InvocationId>,
    /// How deep it is among sub-agents: 0 for an invocation a client made, the parent's
    /// depth + 1 for one made by a run.
    #[serde(default)]
    pub depth: u32,
    /// The schedule that made it, for an occurrence of one (or its `trigger`).
    #[serde(default)]
    pub schedule_id: Option<ScheduleId>,
    /// The occurrence it runs for: the time the schedule's cron named (a run made by
    /// `POST /v1/schedules/{id}/trigger`: the time it was asked for).
    #[serde(default)]
    pub scheduled_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub usage: Usage,
}

/// A signed-in session of a user (`agentd login`, `POST /v1/auth/login`); its token is
/// never shown again.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: SessionId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Whether it is the session this request was made with.
    pub current: bool,
}

/// A cron schedule: it invokes `agent` with `input` at each time `cron` names in
/// `timezone` (see docs/API.md, "Schedules").
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schedule {
    pub id: ScheduleId,
    /// The agent's slug.
    pub agent: Slug,
    /// Five fields (minute hour day-of-month month day-of-week), or six with seconds first.
    pub cron: String,
    /// An IANA time zone (`Europe/Berlin`, `UTC`) the cron's times are read in.
    pub timezone: String,
    pub input: Value,
    pub enabled: bool,
    pub overlap: ScheduleOverlap,
    pub catchup: ScheduleCatchup,
    pub metadata: Value,
    /// The next occurrence; `null` while the schedule is paused.
    pub next_run_at: Option<Timestamp>,
    /// The latest occurrence the schedule acted on (ran, skipped or refused).
    pub last_run_at: Option<Timestamp>,
    /// The invocation the latest run created.
    pub last_invocation_id: Option<InvocationId>,
    /// Why the latest occurrence did not run (`agent_disabled: …`), else `null`.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A conversation across invocations of one agent.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Thread {
    pub id: ThreadId,
    /// The agent its runs run: named at creation or by its first invoke; `null` until then.
    pub agent: Option<Slug>,
    pub status: ThreadStatus,
    pub metadata: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A thread's state at one point: written when a run of the thread settles, or by hand.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// 1 for the thread's first checkpoint, then 2, …
    pub seq: u64,
    pub state: Value,
    /// The run that wrote it; `null` when the state was set by hand.
    pub invocation_id: Option<InvocationId>,
    pub created_at: Timestamp,
}

/// A thread's current state: its latest checkpoint that counts (`null` before the first).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadState {
    pub thread_id: ThreadId,
    pub state: Value,
    pub checkpoint: Option<Checkpoint>,
}

/// One log line or lifecycle event of an invocation; `seq` counts from 1 per invocation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub ts: Timestamp,
    pub kind: EventKind,
    pub stream: EventStream,
    pub level: Option<String>,
    pub message: Option<String>,
    pub data: Option<Value>,
}

/// One of an agent's secrets as anyone may see it: its name and when it was set. The
/// value is write-only; nothing ever shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSecret {
    pub name: String,
    pub created_at: Timestamp,
    /// When the value was last written (a `PUT` of the same name replaces it).
    pub updated_at: Timestamp,
}

/// A question an agent asked (an `interrupt`) and, once given, its answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interrupt {
    /// 1 for the invocation's first question, then 2, …
    pub round: u32,
    pub value: Value,
    pub answer: Option<Value>,
    /// Who answered: `user:<id>` or `key:<id>`.
    pub answered_by: Option<String>,
    pub answered_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A file an invocation left in `/outputs`; `name` is its path below `/outputs`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub invocation_id: InvocationId,
    pub name: String,
    pub size: u64,
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
    /// The attempt that produced it.
    pub attempt: u32,
    pub created_at: Timestamp,
}

impl Artifact {
    /// Longest artifact name, in bytes.
    pub const MAX_NAME_BYTES: usize = 1024;

    /// A clean relative path: `/`-separated parts that are not empty, `.` or `..`, with no
    /// control characters or backslashes. Anything else could not have come from `/outputs`.
    pub fn is_valid_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= Artifact::MAX_NAME_BYTES
            && !name.chars().any(|c| c.is_control() || c == '\\')
            && name.split('/').all(|part| !part.is_empty() && part != "." && part != ".." && part.len() <= 255)
    }
}

/// The name of an artifact, checked: a clean relative path below `/outputs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactName(String);

impl ArtifactName {
    pub fn parse(name: &str) -> Option<ArtifactName> {
        Artifact::is_valid_name(name).then(|| ArtifactName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ArtifactName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
