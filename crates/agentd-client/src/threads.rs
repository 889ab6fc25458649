//! Routes of threads: create, list, read, metadata, delete, state and its history.

use agentd_api_types::{
    Checkpoint, CreateThreadRequest, Page, PatchThreadRequest, SetThreadStateRequest, Thread, ThreadState, ThreadStatus,
};
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use crate::{Client, ClientError};

/// Query of [`Client::threads_list`]; absent fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThreadFilter {
    /// Agent slug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ThreadStatus>,
    /// A JSON object as text: threads whose metadata has each of its fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Serialize)]
struct HistoryQuery<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<&'a str>,
}

impl Client {
    /// `POST /v1/threads`.
    pub async fn thread_create(&self, request: &CreateThreadRequest) -> Result<Thread, ClientError> {
        self.call(self.route(Method::POST, &["v1", "threads"])?.json(request)).await
    }

    /// `GET /v1/threads`: one page, newest first.
    pub async fn threads_list(&self, filter: &ThreadFilter) -> Result<Page<Thread>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "threads"])?.query(filter)).await
    }

    /// `GET /v1/threads/{id}`.
    pub async fn thread_get(&self, id: &str) -> Result<Thread, ClientError> {
        self.call(self.route(Method::GET, &["v1", "threads", id])?).await
    }

    /// `PATCH /v1/threads/{id}`: merges `metadata` into the thread's.
    pub async fn thread_patch(&self, id: &str, metadata: Value) -> Result<Thread, ClientError> {
        let body = PatchThreadRequest { metadata };
        self.call(self.route(Method::PATCH, &["v1", "threads", id])?.json(&body)).await
    }

    /// `DELETE /v1/threads/{id}`.
    pub async fn thread_delete(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(self.route(Method::DELETE, &["v1", "threads", id])?).await
    }

    /// `GET /v1/threads/{id}/state`.
    pub async fn thread_state(&self, id: &str) -> Result<ThreadState, ClientError> {
        self.call(self.route(Method::GET, &["v1", "threads", id, "state"])?).await
    }

    /// `POST /v1/threads/{id}/state`: sets the state by hand, as a new checkpoint.
    pub async fn thread_set_state(&self, id: &str, state: Value) -> Result<ThreadState, ClientError> {
        let body = SetThreadStateRequest { state };
        self.call(self.route(Method::POST, &["v1", "threads", id, "state"])?.json(&body)).await
    }

    /// `GET /v1/threads/{id}/history`: checkpoints newest first.
    pub async fn thread_history(
        &self,
        id: &str,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<Checkpoint>, ClientError> {
        let query = HistoryQuery { limit, cursor };
        self.call(self.route(Method::GET, &["v1", "threads", id, "history"])?.query(&query)).await
    }
}

#[derive(Serialize)]
struct UsageQuery<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<&'a str>,
}

impl Client {
    /// `GET /v1/limits`: every limit of the workspace with its source and use.
    pub async fn limits(&self) -> Result<agentd_api_types::LimitsReport, ClientError> {
        self.call(self.route(Method::GET, &["v1", "limits"])?).await
    }

    /// `GET /v1/usage`: what finished runs consumed from `from` to `to` (`YYYY-MM-DD`, UTC).
    pub async fn usage(
        &self,
        from: Option<&str>,
        to: Option<&str>,
        agent: Option<&str>,
    ) -> Result<agentd_api_types::UsageReport, ClientError> {
        let query = UsageQuery { from, to, agent };
        self.call(self.route(Method::GET, &["v1", "usage"])?.query(&query)).await
    }
}
