//! The remote worker protocol: claim (long-poll), heartbeat, events, completion,
//! release, and bundle download, authenticated with a worker token.

use agentd_api_types::worker::{
    AppendEventsRequest, Applied, BuildFailRequest, BuildLogEntry, BuildLogRequest, BuildReleaseRequest, ClaimRequest,
    CompleteRequest, HeartbeatRequest, HeartbeatResponse, ReleaseRequest,
};
use agentd_core::queue::{BuildLease, ClaimedBuild, ClaimedRun, Completion, LeaseStatus, NewEvent, RunLease};
use reqwest::Method;

use crate::{Client, ClientError};

impl Client {
    /// Waits server-side up to `request.wait_s` for a run; `None` when none came.
    pub async fn worker_claim(&self, request: &ClaimRequest) -> Result<Option<ClaimedRun>, ClientError> {
        self.long_poll_claim(&["v1", "worker", "claim"], request).await
    }

    /// A claim that waits server-side: the claimed item, or `None` on `204 No Content`.
    async fn long_poll_claim<T: serde::de::DeserializeOwned>(
        &self,
        route: &[&str],
        request: &ClaimRequest,
    ) -> Result<Option<T>, ClientError> {
        let response = self.call_raw(self.route(Method::POST, route)?.json(request)).await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(ClientError::Transport)?;
        serde_json::from_slice(&body).map(Some).map_err(|e| ClientError::decode(status, &body, e))
    }

    pub async fn worker_heartbeat(&self, lease: &RunLease, lease_s: u32) -> Result<LeaseStatus, ClientError> {
        let request = HeartbeatRequest { lease: lease.clone(), lease_s };
        let response: HeartbeatResponse =
            self.call(self.route(Method::POST, &["v1", "worker", "heartbeat"])?.json(&request)).await?;
        Ok(response.status)
    }

    pub async fn worker_events(&self, lease: &RunLease, events: &[NewEvent]) -> Result<bool, ClientError> {
        let request = AppendEventsRequest { lease: lease.clone(), events: events.to_vec() };
        let applied: Applied = self.call(self.route(Method::POST, &["v1", "worker", "events"])?.json(&request)).await?;
        Ok(applied.applied)
    }

    pub async fn worker_complete(&self, lease: &RunLease, completion: Completion) -> Result<bool, ClientError> {
        let request = CompleteRequest { lease: lease.clone(), completion };
        let applied: Applied =
            self.call(self.route(Method::POST, &["v1", "worker", "complete"])?.json(&request)).await?;
        Ok(applied.applied)
    }

    pub async fn worker_release(&self, lease: &RunLease) -> Result<bool, ClientError> {
        let request = ReleaseRequest { lease: lease.clone() };
        let applied: Applied =
            self.call(self.route(Method::POST, &["v1", "worker", "release"])?.json(&request)).await?;
        Ok(applied.applied)
    }

    /// The bundle with `digest` (`sha256:<hex>`), as stored.
    pub async fn worker_bundle(&self, digest: &str) -> Result<Vec<u8>, ClientError> {
        let response = self.call_raw(self.route(Method::GET, &["v1", "worker", "bundles", digest])?).await?;
        Ok(response.bytes().await.map_err(ClientError::Transport)?.to_vec())
    }

    /// Uploads one artifact of a run (its bytes and its name below `/outputs`); false when
    /// the lease is no longer this worker's.
    pub async fn worker_artifact(&self, lease: &RunLease, name: &str, bytes: Vec<u8>) -> Result<bool, ClientError> {
        let attempt = lease.attempt.to_string();
        let query = [
            ("invocation_id", lease.invocation_id.as_str()),
            ("lease_owner", lease.lease_owner.as_str()),
            ("attempt", attempt.as_str()),
            ("name", name),
        ];
        let builder = self.route(Method::POST, &["v1", "worker", "artifacts"])?.query(&query).body(bytes);
        let applied: Applied = self.call(builder).await?;
        Ok(applied.applied)
    }

    /// Waits server-side up to `request.wait_s` for a dependency build; `None` when none came.
    pub async fn worker_build_claim(&self, request: &ClaimRequest) -> Result<Option<ClaimedBuild>, ClientError> {
        self.long_poll_claim(&["v1", "worker", "builds", "claim"], request).await
    }

    /// Appends build log lines `(stream, message)` and renews the build's lease.
    pub async fn worker_build_log(
        &self,
        lease: &BuildLease,
        lines: &[(String, String)],
        lease_s: u32,
    ) -> Result<bool, ClientError> {
        let lines = lines
            .iter()
            .map(|(stream, message)| BuildLogEntry { stream: stream.clone(), message: message.clone() })
            .collect();
        let request = BuildLogRequest { lease: lease.clone(), lines, lease_s };
        let builder = self.route(Method::POST, &["v1", "worker", "builds", "log"])?.json(&request);
        let applied: Applied = self.call(builder).await?;
        Ok(applied.applied)
    }

    pub async fn worker_build_fail(&self, lease: &BuildLease, error: &str) -> Result<bool, ClientError> {
        let request = BuildFailRequest { lease: lease.clone(), error: error.to_owned() };
        let builder = self.route(Method::POST, &["v1", "worker", "builds", "fail"])?.json(&request);
        let applied: Applied = self.call(builder).await?;
        Ok(applied.applied)
    }

    /// Uploads a build's installed tree (a `.tar.gz`) and marks the build ready.
    pub async fn worker_build_ready(
        &self,
        lease: &BuildLease,
        archive: Vec<u8>,
        installed_bytes: u64,
    ) -> Result<bool, ClientError> {
        let attempt = lease.attempt.to_string();
        let installed = installed_bytes.to_string();
        let query = [
            ("build_id", lease.build_id.as_str()),
            ("lease_owner", lease.lease_owner.as_str()),
            ("attempt", attempt.as_str()),
            ("installed_bytes", installed.as_str()),
        ];
        let builder = self.route(Method::POST, &["v1", "worker", "builds", "ready"])?.query(&query).body(archive);
        let applied: Applied = self.call(builder).await?;
        Ok(applied.applied)
    }

    /// Hands a build back untouched; false when the lease is no longer this worker's.
    pub async fn worker_build_release(&self, lease: &BuildLease) -> Result<bool, ClientError> {
        let request = BuildReleaseRequest { lease: lease.clone() };
        let builder = self.route(Method::POST, &["v1", "worker", "builds", "release"])?.json(&request);
        let applied: Applied = self.call(builder).await?;
        Ok(applied.applied)
    }
}
