//! `POST /v1/signup`, `POST /v1/auth/login`, `GET /v1/me` and `/v1/api-keys`.

use agentd_core::{Actor, AgentId, ApiKey, InvocationId, Role, Scope, Scopes, Slug, Tenant, Timestamp, User};
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    pub email: String,
    pub password: String,
    pub workspace_name: String,
    pub workspace_slug: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupResponse {
    pub tenant: Tenant,
    pub user: User,
    pub api_key: CreatedApiKey,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// Which workspace to sign in to when the user belongs to several; defaults to the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_slug: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    /// Session token, used as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: Timestamp,
    pub tenant: Tenant,
    pub user: User,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Me {
    pub tenant: Tenant,
    pub actor: Actor,
    pub user: Option<User>,
    pub role: Option<Role>,
    /// The scopes ordinary routes check; a run's token has none.
    pub scopes: Scopes,
    /// When the caller is a run with its own `AGENTD_TOKEN`: which run.
    #[serde(default)]
    pub run: Option<MeRun>,
}

/// The run behind a run token, as `GET /v1/me` shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeRun {
    pub invocation_id: InvocationId,
    pub agent: Slug,
    pub agent_id: AgentId,
    pub thread_id: Option<String>,
    /// 0 for an invocation a client made; a sub-agent's is its parent's + 1.
    pub depth: u32,
    pub attempt: u32,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<Scope>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
}

/// Returned once, at creation: the only time the secret is ever shown.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub secret: String,
}
