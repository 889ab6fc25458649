//! `/v1/agents/{slug}/triggers` and `POST /v1/triggers/{id}`: inbound trigger URLs. A
//! trigger's signing secret is in the answer to its creation only.

use agentd_core::{InvocationId, InvocationStatus, Slug, Timestamp, TriggerId, TriggerMode};
use serde::{Deserialize, Serialize};

/// `POST /v1/agents/{slug}/triggers`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTriggerRequest {
    /// How requests are signed: `standard_webhooks` or `github`.
    pub mode: TriggerMode,
    /// The run's input is `{body, headers}` instead of the body alone. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A trigger: the URL another system POSTs to, and how it signs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub id: TriggerId,
    /// The agent's slug.
    pub agent: Slug,
    pub mode: TriggerMode,
    pub envelope: bool,
    pub description: Option<String>,
    /// Where to send requests: `{public URL}/v1/triggers/{id}`.
    pub url: String,
    pub created_at: Timestamp,
}

/// The answer to a trigger's creation: the trigger and its signing secret, shown once
/// (`whsec_…` for `standard_webhooks`; for `github`, the text to paste as the webhook's
/// secret).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
pub struct CreatedTrigger {
    #[serde(flatten)]
    pub trigger: Trigger,
    pub secret: String,
}

impl std::fmt::Debug for CreatedTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedTrigger").field("trigger", &self.trigger).field("secret", &"<redacted>").finish()
    }
}

/// `202` to a signed request: the invocation it started, or the one its delivery id
/// started before (`duplicate`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerAccepted {
    /// The invocation's id.
    pub id: InvocationId,
    pub status: InvocationStatus,
    /// True when this delivery id was seen before and nothing new started.
    pub duplicate: bool,
}
