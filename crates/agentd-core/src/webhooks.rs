//! Outbound webhooks as the API shows them: a tenant's endpoints and the log of their
//! deliveries, and the fixed set of event types an endpoint can subscribe to.

use serde::{Deserialize, Serialize};

use crate::ids::{InvocationId, WebhookDeliveryId, WebhookId};
use crate::status::{InvocationStatus, UnknownWord};
use crate::timestamp::Timestamp;

/// What a webhook message reports: an invocation reached a terminal status, or is
/// waiting for an answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WebhookEvent {
    #[serde(rename = "invocation.succeeded")]
    InvocationSucceeded,
    #[serde(rename = "invocation.failed")]
    InvocationFailed,
    #[serde(rename = "invocation.cancelled")]
    InvocationCancelled,
    #[serde(rename = "invocation.timed_out")]
    InvocationTimedOut,
    #[serde(rename = "invocation.waiting_for_input")]
    InvocationWaitingForInput,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 5] = [
        WebhookEvent::InvocationSucceeded,
        WebhookEvent::InvocationFailed,
        WebhookEvent::InvocationCancelled,
        WebhookEvent::InvocationTimedOut,
        WebhookEvent::InvocationWaitingForInput,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::InvocationSucceeded => "invocation.succeeded",
            WebhookEvent::InvocationFailed => "invocation.failed",
            WebhookEvent::InvocationCancelled => "invocation.cancelled",
            WebhookEvent::InvocationTimedOut => "invocation.timed_out",
            WebhookEvent::InvocationWaitingForInput => "invocation.waiting_for_input",
        }
    }

    /// The status whose reaching the event reports.
    pub fn status(self) -> InvocationStatus {
        match self {
            WebhookEvent::InvocationSucceeded => InvocationStatus::Succeeded,
            WebhookEvent::InvocationFailed => InvocationStatus::Failed,
            WebhookEvent::InvocationCancelled => InvocationStatus::Cancelled,
            WebhookEvent::InvocationTimedOut => InvocationStatus::TimedOut,
            WebhookEvent::InvocationWaitingForInput => InvocationStatus::WaitingForInput,
        }
    }

    pub fn parse(value: &str) -> Result<WebhookEvent, UnknownWord> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == value).ok_or_else(|| UnknownWord {
            set: "webhook event",
            value: value.chars().take(60).collect(),
            expected: "invocation.succeeded, invocation.failed, invocation.cancelled, invocation.timed_out or \
                       invocation.waiting_for_input",
        })
    }
}

/// A tenant's webhook endpoint. Its signing secret is shown once, when it is created or
/// rotated, and never again.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub description: Option<String>,
    /// False when paused by the tenant or disabled by the platform after failures.
    pub enabled: bool,
    /// Why the platform disabled it (`consecutive_failures`), when it did.
    pub disabled_reason: Option<String>,
    /// Deliveries that failed in a row (every attempt); a success sets it back to 0.
    pub consecutive_failures: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Where a delivery stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookDeliveryStatus {
    /// Not yet sent, or to be tried again at `next_attempt_at`.
    Pending,
    Succeeded,
    /// Every attempt within the retry window failed.
    Failed,
}

impl WebhookDeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookDeliveryStatus::Pending => "pending",
            WebhookDeliveryStatus::Succeeded => "succeeded",
            WebhookDeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<WebhookDeliveryStatus> {
        [WebhookDeliveryStatus::Pending, WebhookDeliveryStatus::Succeeded, WebhookDeliveryStatus::Failed]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// One POST of a delivery.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAttempt {
    /// 1 for the first attempt.
    pub n: u32,
    pub at: Timestamp,
    /// The receiver's HTTP status; none when no response came (timeout, refused).
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// Why it counts as a failure, when it does.
    pub error: Option<String>,
}

/// One message (`webhook-id` = `id`, the same on every attempt) and its attempts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub id: WebhookDeliveryId,
    /// None for a delivery to an invocation's own `webhook_url`.
    pub endpoint_id: Option<WebhookId>,
    pub invocation_id: InvocationId,
    pub event: WebhookEvent,
    pub status: WebhookDeliveryStatus,
    pub attempts: Vec<WebhookAttempt>,
    /// When the next attempt is due, while `pending`.
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}
