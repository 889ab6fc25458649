//! `/v1/threads`: conversations with an agent across invocations.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/threads`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateThreadRequest {
    /// The agent's slug; absent: the first invoke on the thread decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// `PATCH /v1/threads/{id}`: fields merged into the metadata (`null` removes one).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchThreadRequest {
    pub metadata: Value,
}

/// `POST /v1/threads/{id}/state`: the new state, written as a checkpoint.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetThreadStateRequest {
    pub state: Value,
}
