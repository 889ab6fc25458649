//! The wire types of the agentd REST API: every request body a client sends and every
//! response body the server returns, in one crate that the server (`agentd-api`), the
//! typed client (`agentd-client`) and a later OpenAPI derivation share, so that they
//! cannot drift apart.
//!
//! Request bodies refuse unknown fields (`deny_unknown_fields`): a misspelt or
//! unsupported field is an error naming it, never silently ignored. Response bodies
//! accept unknown fields, so an older client keeps working against a newer server.
//!
//! The resources themselves (`Agent`, `Invocation`, …) are shown as the domain defines
//! them in `agentd-core`; they are re-exported here so a client needs this crate only.

pub mod accounts;
pub mod admin;
pub mod agents;
pub mod invocations;
pub mod limits;
pub mod members;
pub mod memory;
pub mod schedules;
pub mod threads;
pub mod triggers;
pub mod webhooks;
pub mod worker;

pub use accounts::{
    CreateApiKeyRequest, CreatedApiKey, LoginRequest, LoginResponse, Me, MeRun, SignupRequest, SignupResponse,
};
pub use admin::{ChangeTenantLimitsRequest, CreateTenantRequest, CreatedTenant, TenantLimitsReport};
pub use agentd_core::{
    Actor, Agent, AgentConfig, AgentSecret, AgentStatus, AgentVersion, ApiKey, Artifact, AuditAction, AuditActor,
    AuditActorKind, AuditEvent, BuildLogLine, BuildStatus, Checkpoint, DependencyBuild, Event, EventKind, EventStream,
    Interrupt, Invite, InviteStatus, Invocation, InvocationError, InvocationStatus, Member, MemoryItem,
    MultitaskStrategy, Page, Role, Schedule, ScheduleCatchup, ScheduleOverlap, Scope, Scopes, SessionInfo, Tenant,
    TenantLimits, Thread, ThreadState, ThreadStatus, Timestamp, TriggerMode, Usage, UsageDay, UsageFigures,
    UsageReport, User, VersionBuild, Visibility, WebhookAttempt, WebhookDelivery, WebhookDeliveryStatus,
    WebhookEndpoint, WebhookEvent,
};
pub use agents::{
    AgentConfigPatch, CreateAgentRequest, PatchAgentRequest, PutSecretRequest, RuntimeResponse, VersionBuildResponse,
};
pub use invocations::{InvokeRequest, RespondRequest};
pub use limits::{LimitEntry, LimitsReport};
pub use members::{
    AcceptInviteRequest, AcceptInviteResponse, CreateInviteRequest, CreatedInvite, PatchMemberRequest,
    SwitchWorkspaceRequest,
};
pub use memory::{
    ListNamespacesRequest, MemoryItemQuery, MemoryItems, MemoryNamespaces, PutMemoryItemRequest,
    SearchMemoryItemsRequest,
};
pub use schedules::{CreateScheduleRequest, PatchScheduleRequest};
pub use threads::{CreateThreadRequest, PatchThreadRequest, SetThreadStateRequest};
pub use triggers::{CreateTriggerRequest, CreatedTrigger, Trigger, TriggerAccepted};
pub use webhooks::{
    CreateWebhookRequest, CreatedWebhook, InvocationWebhookSecret, PatchWebhookRequest, WebhookDeliveries,
};
