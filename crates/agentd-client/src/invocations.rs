//! Routes of invocations: invoke, list, read, logs, cancel.

use agentd_api_types::{Artifact, Event, Interrupt, Invocation, InvocationStatus, InvokeRequest, Page, RespondRequest};
use reqwest::Method;
use serde::Serialize;

use crate::{Client, ClientError};

/// Per-call options of [`Client::invoke`] that travel outside the JSON body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeOptions {
    /// `?wait=N`: let the server hold the answer up to `N` seconds (it caps at 60) and
    /// return the finished invocation if it ends in time.
    pub wait_s: Option<u32>,
    /// `Idempotency-Key`: a repeat with the same key returns the first invocation.
    pub idempotency_key: Option<String>,
}

/// Query of [`Client::invocations_list`]; absent fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvocationFilter {
    /// Agent slug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<InvocationStatus>,
    /// Only the sub-invocations of this invocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Serialize)]
struct WaitQuery {
    wait: u32,
}

#[derive(Serialize)]
struct LogsQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
}

impl Client {
    /// `POST /v1/agents/{slug}/invoke`: queues a run. The answer is `202` with the queued
    /// invocation, or `200` with the finished one when it ended within `wait_s`.
    pub async fn invoke(
        &self,
        slug: &str,
        request: &InvokeRequest,
        options: &InvokeOptions,
    ) -> Result<Invocation, ClientError> {
        let mut builder = self.route(Method::POST, &["v1", "agents", slug, "invoke"])?.json(request);
        if let Some(wait) = options.wait_s {
            builder = builder.query(&WaitQuery { wait });
        }
        if let Some(key) = &options.idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        self.call(builder).await
    }

    /// `GET /v1/invocations`: one page of the tenant's invocations, newest first.
    pub async fn invocations_list(&self, filter: &InvocationFilter) -> Result<Page<Invocation>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "invocations"])?.query(filter)).await
    }

    /// `GET /v1/invocations/{id}`.
    pub async fn invocation_get(&self, id: &str) -> Result<Invocation, ClientError> {
        self.call(self.route(Method::GET, &["v1", "invocations", id])?).await
    }

    /// `GET /v1/invocations/{id}/logs`: events with `seq > after`, ascending. The page's
    /// `next_cursor` is the last `seq` when more may follow.
    pub async fn invocation_logs(
        &self,
        id: &str,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> Result<Page<Event>, ClientError> {
        let query = LogsQuery { after, limit };
        self.call(self.route(Method::GET, &["v1", "invocations", id, "logs"])?.query(&query)).await
    }

    /// `POST /v1/invocations/{id}/cancel`: a queued run never starts; a running one has
    /// its process tree killed.
    pub async fn invocation_cancel(&self, id: &str) -> Result<Invocation, ClientError> {
        self.call(self.route(Method::POST, &["v1", "invocations", id, "cancel"])?).await
    }

    /// `POST /v1/invocations/{id}/respond`: answers the agent's open question; with
    /// `wait_s`, the server waits that long for the run to settle again.
    pub async fn respond(
        &self,
        id: &str,
        answer: serde_json::Value,
        wait_s: Option<u32>,
    ) -> Result<Invocation, ClientError> {
        let mut builder =
            self.route(Method::POST, &["v1", "invocations", id, "respond"])?.json(&RespondRequest { answer });
        if let Some(wait) = wait_s {
            builder = builder.query(&WaitQuery { wait });
        }
        self.call(builder).await
    }

    /// `GET /v1/invocations/{id}/interrupts`: the questions the agent asked and their answers.
    pub async fn interrupts(&self, id: &str) -> Result<Page<Interrupt>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "invocations", id, "interrupts"])?).await
    }

    /// `GET /v1/invocations/{id}/artifacts`: the files the run left in `/outputs` (first page).
    pub async fn artifacts_list(&self, id: &str) -> Result<Page<Artifact>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "invocations", id, "artifacts"])?).await
    }

    /// `GET /v1/invocations/{id}/artifacts/{name}`: one artifact's bytes.
    pub async fn artifact_download(&self, id: &str, name: &str) -> Result<Vec<u8>, ClientError> {
        let mut segments = vec!["v1", "invocations", id, "artifacts"];
        segments.extend(name.split('/'));
        let response = self.call_raw(self.route(Method::GET, &segments)?).await?;
        Ok(response.bytes().await.map_err(ClientError::Transport)?.to_vec())
    }
}
