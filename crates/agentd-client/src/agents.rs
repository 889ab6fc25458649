//! Routes of the agent registry: agents, their versions (bundle uploads, rollback) and
//! their secrets.

use agentd_api_types::{
    Agent, AgentSecret, AgentVersion, CreateAgentRequest, Page, PatchAgentRequest, PutSecretRequest, RuntimeResponse,
    VersionBuildResponse,
};
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;

use crate::{Client, ClientError, ListOptions};

/// The first bytes of a zip archive (a local file header).
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

impl Client {
    /// `GET /v1/agents`: one page of the tenant's agents.
    pub async fn agents_list(&self, page: &ListOptions) -> Result<Page<Agent>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "agents"])?.query(page)).await
    }

    /// `POST /v1/agents`: registers an agent (it has no version until one is uploaded).
    pub async fn agent_create(&self, request: &CreateAgentRequest) -> Result<Agent, ClientError> {
        self.call(self.route(Method::POST, &["v1", "agents"])?.json(request)).await
    }

    /// `GET /v1/agents/{slug}`.
    pub async fn agent_get(&self, slug: &str) -> Result<Agent, ClientError> {
        self.call(self.route(Method::GET, &["v1", "agents", slug])?).await
    }

    /// `PATCH /v1/agents/{slug}`: changes only the fields that are `Some`.
    pub async fn agent_patch(&self, slug: &str, request: &PatchAgentRequest) -> Result<Agent, ClientError> {
        self.call(self.route(Method::PATCH, &["v1", "agents", slug])?.json(request)).await
    }

    /// `DELETE /v1/agents/{slug}` (204).
    pub async fn agent_delete(&self, slug: &str) -> Result<(), ClientError> {
        self.call_empty(self.route(Method::DELETE, &["v1", "agents", slug])?).await
    }

    /// `POST /v1/agents/{slug}/versions`: uploads a bundle (`.tar.gz` or `.zip`, told
    /// apart by its first bytes) as the next version; it becomes the active version
    /// unless `activate` is false.
    pub async fn version_upload(
        &self,
        slug: &str,
        bundle: Vec<u8>,
        activate: bool,
    ) -> Result<AgentVersion, ClientError> {
        self.version_upload_with_progress(slug, bundle, activate, |_| {}).await
    }

    /// [`Client::version_upload`], calling `sent` with the bytes handed to the connection
    /// so far as the upload goes (for a progress bar).
    pub async fn version_upload_with_progress(
        &self,
        slug: &str,
        bundle: Vec<u8>,
        activate: bool,
        sent: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<AgentVersion, ClientError> {
        const CHUNK: usize = 64 * 1024;
        let content_type = if bundle.starts_with(ZIP_MAGIC) { "application/zip" } else { "application/gzip" };
        let length = bundle.len();
        let bundle = bytes::Bytes::from(bundle);
        let chunks = (0..length.div_ceil(CHUNK)).map(move |i| {
            let end = ((i + 1) * CHUNK).min(length);
            sent(end as u64);
            Ok::<_, std::io::Error>(bundle.slice(i * CHUNK..end))
        });
        let mut request = self
            .route(Method::POST, &["v1", "agents", slug, "versions"])?
            .header(CONTENT_TYPE, content_type)
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)));
        if !activate {
            request = request.query(&[("activate", "false")]);
        }
        self.call(request).await
    }

    /// `GET /v1/agents/{slug}/versions`: one page of the agent's versions.
    pub async fn versions_list(&self, slug: &str, page: &ListOptions) -> Result<Page<AgentVersion>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "agents", slug, "versions"])?.query(page)).await
    }

    /// `POST /v1/agents/{slug}/versions/{n}/activate`: makes version `n` the one new
    /// invocations run (a rollback when `n` is older).
    pub async fn version_activate(&self, slug: &str, version: u32) -> Result<Agent, ClientError> {
        let n = version.to_string();
        let route = ["v1", "agents", slug, "versions", n.as_str(), "activate"];
        self.call(self.route(Method::POST, &route)?).await
    }

    /// `GET /v1/agents/{slug}/versions/{n}/build`: version `n`'s dependency build and log.
    pub async fn version_build(&self, slug: &str, version: u32) -> Result<VersionBuildResponse, ClientError> {
        let n = version.to_string();
        let route = ["v1", "agents", slug, "versions", n.as_str(), "build"];
        self.call(self.route(Method::GET, &route)?).await
    }

    /// `GET /v1/runtimes`: the interpreters agents run with here.
    pub async fn runtimes(&self) -> Result<Page<RuntimeResponse>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "runtimes"])?).await
    }

    /// `PUT /v1/agents/{slug}/secrets/{name}`: sets a secret; true when it was new, false
    /// when an existing value was replaced. The value is never sent back.
    pub async fn secret_set(&self, slug: &str, name: &str, value: &str) -> Result<(AgentSecret, bool), ClientError> {
        let request = PutSecretRequest { value: value.to_owned() };
        let route = ["v1", "agents", slug, "secrets", name];
        let response = self.call_raw(self.route(Method::PUT, &route)?.json(&request)).await?;
        let created = response.status() == reqwest::StatusCode::CREATED;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(ClientError::Transport)?;
        let secret = serde_json::from_slice(&body).map_err(|e| ClientError::decode(status, &body, e))?;
        Ok((secret, created))
    }

    /// `GET /v1/agents/{slug}/secrets`: the names of the agent's secrets and when they
    /// were set.
    pub async fn secrets_list(&self, slug: &str) -> Result<Page<AgentSecret>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "agents", slug, "secrets"])?).await
    }

    /// `DELETE /v1/agents/{slug}/secrets/{name}` (204).
    pub async fn secret_delete(&self, slug: &str, name: &str) -> Result<(), ClientError> {
        self.call_empty(self.route(Method::DELETE, &["v1", "agents", slug, "secrets", name])?).await
    }
}
