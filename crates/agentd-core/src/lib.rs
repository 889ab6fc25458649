//! Domain vocabulary of agentd: typed ids, slugs, statuses, resources, scopes, limits,
//! pages and the tenant scope of a store call. No I/O lives here; every other crate
//! speaks these types.
//!
//! The resource structs are also the JSON shapes in which the REST API shows them
//! (`agentd-api-types` re-exports them beside the request bodies).

pub mod audit;
pub mod builds;
pub mod context;
pub mod ids;
pub mod limits;
pub mod members;
pub mod memory;
pub mod net;
#[cfg(feature = "openapi")]
mod openapi;
pub mod operators;
pub mod page;
pub mod queue;
pub mod rate;
pub mod resources;
pub mod secret;
pub mod slug;
pub mod status;
pub mod timestamp;
pub mod triggers;
pub mod usage;
pub mod webhooks;

pub use audit::{AuditAction, AuditActor, AuditActorKind, AuditEvent, AuditOrigin};
pub use builds::{BuildLogLine, BuildStatus, DependencyBuild, VersionBuild};
pub use context::{Actor, RequestOrigin, Role, Scope, Scopes, TenantScope};
pub use ids::{
    AgentId, ApiKeyId, AuditEventId, BuildId, InviteId, InvocationId, OperatorTokenId, RequestId, ScheduleId,
    SessionId, TenantId, ThreadId, TriggerId, UserId, VersionId, WebhookDeliveryId, WebhookId, WorkerTokenId,
};
pub use limits::{LimitError, LimitOverrides, TenantLimits};
pub use members::{Invite, Member};
pub use memory::{MemoryItem, MemoryKey, MemoryKeyError, Namespace, NamespaceError};
pub use page::{Cursor, NameCursor, OffsetPage, PageBounds, PageError, PageRequest};
pub use queue::Fault;
pub use rate::{RateDecision, RateLimitKind, RateOutcome, RatePolicy};
pub use resources::*;
pub use secret::{RunSecrets, Secret};
pub use slug::{Slug, SlugError};
pub use status::{
    EventKind, EventStream, InviteStatus, InvocationStatus, MultitaskStrategy, ScheduleCatchup, ScheduleOverlap,
    TenantStatus, ThreadStatus, TriggerMode,
};
pub use timestamp::Timestamp;
pub use triggers::Trigger;
pub use usage::{UsageDay, UsageFigures, UsageReport};
pub use webhooks::{WebhookAttempt, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint, WebhookEvent};
