//! Domain vocabulary of agentd: typed ids, slugs, statuses, resources, scopes and the
//! per-request tenant context. No I/O lives here; every other crate speaks these types.
//!
//! The resource structs double as the public JSON shapes of the REST API, so the server
//! and the typed client can never disagree on a field name.

pub mod context;
pub mod ids;
pub mod limits;
pub mod queue;
pub mod resources;
pub mod slug;
pub mod status;
pub mod timestamp;

pub use context::{Actor, Role, Scope, Scopes, TenantCtx};
pub use ids::{AgentId, ApiKeyId, InvocationId, RequestId, SessionId, TenantId, UserId, VersionId, WorkerTokenId};
pub use limits::TenantLimits;
pub use resources::*;
pub use slug::{Slug, SlugError};
pub use status::{EventKind, EventStream, InvocationStatus, TenantStatus};
pub use timestamp::Timestamp;
