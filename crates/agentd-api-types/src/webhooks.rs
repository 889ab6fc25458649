//! Bodies of `/v1/webhooks`: creating and changing a tenant's webhook endpoints, and the
//! responses that show a signing secret (once).

use serde::{Deserialize, Deserializer, Serialize};

use agentd_core::{WebhookDelivery, WebhookEndpoint};

/// `POST /v1/webhooks`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where deliveries are POSTed: `https://` (`http://` outside production).
    pub url: String,
    /// At least one of `invocation.succeeded`, `invocation.failed`, `invocation.cancelled`,
    /// `invocation.timed_out`, `invocation.waiting_for_input`.
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `PATCH /v1/webhooks/{id}`: every field optional; an absent one keeps its value.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhookRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
    /// `true` enables it again after the platform disabled it, and forgets its failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// An endpoint with its signing secret: returned by creation and by rotation, the only
/// times the secret is shown.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`: verify deliveries with it (Standard Webhooks).
    pub secret: String,
}

/// The tenant's secret that signs deliveries to invocations' own `webhook_url`s.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvocationWebhookSecret {
    /// `whsec_…`.
    pub secret: String,
}

/// `GET /v1/webhooks/{id}/deliveries`: the newest deliveries, newest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookDeliveries {
    pub data: Vec<WebhookDelivery>,
}
