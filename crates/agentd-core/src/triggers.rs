//! An inbound trigger: a URL of an agent's that another system POSTs signed requests to,
//! each starting an invocation. Its signing secret is the domain's to keep (sealed in
//! the store, shown once at creation); this type never holds it.

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, TriggerId};
use crate::slug::Slug;
use crate::status::TriggerMode;
use crate::timestamp::Timestamp;

/// A trigger as its tenant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub id: TriggerId,
    pub agent_id: AgentId,
    /// The agent's slug.
    pub agent: Slug,
    pub mode: TriggerMode,
    /// Whether a run's input is `{body, headers}` rather than the body alone.
    pub envelope: bool,
    pub description: Option<String>,
    pub created_at: Timestamp,
}
