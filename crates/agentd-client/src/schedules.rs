//! Routes of schedules: create, list, read, change (pause, resume), delete, run now.

use agentd_api_types::{CreateScheduleRequest, Invocation, Page, PatchScheduleRequest, Schedule};
use reqwest::Method;
use serde::Serialize;

use crate::{Client, ClientError};

#[derive(Serialize)]
struct PageQuery<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<&'a str>,
}

impl Client {
    /// `POST /v1/schedules`.
    pub async fn schedule_create(&self, request: &CreateScheduleRequest) -> Result<Schedule, ClientError> {
        self.call(self.route(Method::POST, &["v1", "schedules"])?.json(request)).await
    }

    /// `GET /v1/schedules`: one page, newest first.
    pub async fn schedules_list(
        &self,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<Schedule>, ClientError> {
        let query = PageQuery { limit, cursor };
        self.call(self.route(Method::GET, &["v1", "schedules"])?.query(&query)).await
    }

    /// `GET /v1/schedules/{id}`.
    pub async fn schedule_get(&self, id: &str) -> Result<Schedule, ClientError> {
        self.call(self.route(Method::GET, &["v1", "schedules", id])?).await
    }

    /// `PATCH /v1/schedules/{id}`: the fields given replace the schedule's.
    pub async fn schedule_patch(&self, id: &str, request: &PatchScheduleRequest) -> Result<Schedule, ClientError> {
        self.call(self.route(Method::PATCH, &["v1", "schedules", id])?.json(request)).await
    }

    /// Pauses (`false`) or resumes (`true`) a schedule.
    pub async fn schedule_set_enabled(&self, id: &str, enabled: bool) -> Result<Schedule, ClientError> {
        let request = PatchScheduleRequest { enabled: Some(enabled), ..PatchScheduleRequest::default() };
        self.schedule_patch(id, &request).await
    }

    /// `DELETE /v1/schedules/{id}`.
    pub async fn schedule_delete(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(self.route(Method::DELETE, &["v1", "schedules", id])?).await
    }

    /// `POST /v1/schedules/{id}/trigger`: runs it now; the queued invocation.
    pub async fn schedule_trigger(&self, id: &str) -> Result<Invocation, ClientError> {
        self.call(self.route(Method::POST, &["v1", "schedules", id, "trigger"])?).await
    }
}
