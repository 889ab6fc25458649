//! `/v1/agents`: creating and changing agents. Versions are uploaded as raw bundle bytes.

use agentd_core::{AgentStatus, Visibility};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentRequest {
    pub slug: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
}

/// Every field is optional; an absent one keeps its value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchAgentRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AgentStatus>,
}

/// `GET /v1/agents/{slug}/versions/{n}/build`: a version's dependency build and its log.
/// A version with nothing to install is `ready` with no build id and an empty log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionBuildResponse {
    pub version: u32,
    pub status: agentd_core::BuildStatus,
    pub id: Option<agentd_core::BuildId>,
    pub runtime: Option<String>,
    pub installer: Option<String>,
    pub dependencies_digest: Option<String>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub attempt: u32,
    pub installed_bytes: Option<u64>,
    pub created_at: Option<agentd_core::Timestamp>,
    pub started_at: Option<agentd_core::Timestamp>,
    pub finished_at: Option<agentd_core::Timestamp>,
    pub log: Vec<agentd_core::BuildLogLine>,
}

/// One entry of `GET /v1/runtimes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeResponse {
    pub runtime: String,
    /// The interpreter's version (`3.11.2`); `null` for `shell` and `binary`.
    pub version: Option<String>,
    pub available: bool,
}
