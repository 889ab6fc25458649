//! Routes of outbound webhooks: endpoints, their secrets, the delivery log and
//! redelivery, and the tenant's invocation webhook secret.

use agentd_api_types::{
    CreateWebhookRequest, CreatedWebhook, InvocationWebhookSecret, Page, PatchWebhookRequest, WebhookDeliveries,
    WebhookDelivery, WebhookEndpoint,
};
use reqwest::Method;

use crate::{Client, ClientError};

impl Client {
    /// `POST /v1/webhooks`: the endpoint with its secret (shown this once).
    pub async fn webhook_create(&self, request: &CreateWebhookRequest) -> Result<CreatedWebhook, ClientError> {
        self.call(self.route(Method::POST, &["v1", "webhooks"])?.json(request)).await
    }

    /// `GET /v1/webhooks`.
    pub async fn webhooks_list(&self) -> Result<Page<WebhookEndpoint>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "webhooks"])?).await
    }

    /// `GET /v1/webhooks/{id}`.
    pub async fn webhook_get(&self, id: &str) -> Result<WebhookEndpoint, ClientError> {
        self.call(self.route(Method::GET, &["v1", "webhooks", id])?).await
    }

    /// `PATCH /v1/webhooks/{id}`.
    pub async fn webhook_patch(&self, id: &str, request: &PatchWebhookRequest) -> Result<WebhookEndpoint, ClientError> {
        self.call(self.route(Method::PATCH, &["v1", "webhooks", id])?.json(request)).await
    }

    /// `DELETE /v1/webhooks/{id}`.
    pub async fn webhook_delete(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(self.route(Method::DELETE, &["v1", "webhooks", id])?).await
    }

    /// `POST /v1/webhooks/{id}/rotate-secret`: the endpoint with its new secret.
    pub async fn webhook_rotate_secret(&self, id: &str) -> Result<CreatedWebhook, ClientError> {
        self.call(self.route(Method::POST, &["v1", "webhooks", id, "rotate-secret"])?).await
    }

    /// `GET /v1/webhooks/{id}/deliveries`: the newest, newest first.
    pub async fn webhook_deliveries(&self, id: &str) -> Result<WebhookDeliveries, ClientError> {
        self.call(self.route(Method::GET, &["v1", "webhooks", id, "deliveries"])?).await
    }

    /// `POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver`.
    pub async fn webhook_redeliver(&self, id: &str, delivery_id: &str) -> Result<WebhookDelivery, ClientError> {
        let route = ["v1", "webhooks", id, "deliveries", delivery_id, "redeliver"];
        self.call(self.route(Method::POST, &route)?).await
    }

    /// `GET /v1/invocations/{id}/webhook-deliveries`: oldest first.
    pub async fn invocation_webhook_deliveries(&self, id: &str) -> Result<WebhookDeliveries, ClientError> {
        self.call(self.route(Method::GET, &["v1", "invocations", id, "webhook-deliveries"])?).await
    }

    /// `GET /v1/webhooks/invocation-secret`: signs deliveries to invocations' `webhook_url`.
    pub async fn webhook_invocation_secret(&self) -> Result<InvocationWebhookSecret, ClientError> {
        self.call(self.route(Method::GET, &["v1", "webhooks", "invocation-secret"])?).await
    }

    /// `POST /v1/webhooks/invocation-secret/rotate`.
    pub async fn webhook_rotate_invocation_secret(&self) -> Result<InvocationWebhookSecret, ClientError> {
        self.call(self.route(Method::POST, &["v1", "webhooks", "invocation-secret", "rotate"])?).await
    }
}
