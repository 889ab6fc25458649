//! Routes of an agent's inbound triggers: create (the secret is in the answer, once),
//! list, show, delete. Sending to a trigger's URL is another system's part; it needs no
//! client, only its signature.

use agentd_api_types::{CreateTriggerRequest, CreatedTrigger, Page, Trigger};
use reqwest::Method;

use crate::{Client, ClientError};

impl Client {
    /// `POST /v1/agents/{slug}/triggers`: a new trigger and its signing secret.
    pub async fn trigger_create(
        &self,
        slug: &str,
        request: &CreateTriggerRequest,
    ) -> Result<CreatedTrigger, ClientError> {
        self.call(self.route(Method::POST, &["v1", "agents", slug, "triggers"])?.json(request)).await
    }

    /// `GET /v1/agents/{slug}/triggers`: the agent's triggers, oldest first.
    pub async fn triggers_list(&self, slug: &str) -> Result<Page<Trigger>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "agents", slug, "triggers"])?).await
    }

    /// `GET /v1/agents/{slug}/triggers/{id}`.
    pub async fn trigger_get(&self, slug: &str, id: &str) -> Result<Trigger, ClientError> {
        self.call(self.route(Method::GET, &["v1", "agents", slug, "triggers", id])?).await
    }

    /// `DELETE /v1/agents/{slug}/triggers/{id}` (204).
    pub async fn trigger_delete(&self, slug: &str, id: &str) -> Result<(), ClientError> {
        self.call_empty(self.route(Method::DELETE, &["v1", "agents", slug, "triggers", id])?).await
    }
}
