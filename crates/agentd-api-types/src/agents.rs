//! `/v1/agents`: creating and changing agents. Versions are uploaded as raw bundle bytes.

use std::collections::BTreeMap;

use agentd_core::{AgentStatus, Visibility};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<AgentConfigPatch>,
    /// A JSON Schema; `null` clears it (the manifest's applies again).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Option<Value>>,
    /// A JSON Schema; `null` clears it (the manifest's applies again).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Option<Value>>,
}

/// `config` in a PATCH: each field present replaces the agent's.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfigPatch {
    /// The agent's whole environment (non-secret values); `{}` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`, by `default`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<Value>>, D::Error> {
    Option::<Value>::deserialize(deserializer).map(Some)
}

/// `PUT /v1/agents/{slug}/secrets/{NAME}`: the value, write-only. `Debug` hides it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSecretRequest {
    pub value: String,
}

impl std::fmt::Debug for PutSecretRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutSecretRequest").field("value", &"<redacted>").finish()
    }
}

/// `GET /v1/agents/{slug}/versions/{n}/build`: a version's dependency build and its log.
/// A version with nothing to install is `ready` with no build id and an empty log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeResponse {
    pub runtime: String,
    /// The interpreter's version (`3.11.2`); `null` for `shell` and `binary`.
    pub version: Option<String>,
    pub available: bool,
}
