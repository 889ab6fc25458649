//! `/v1/members`, `/v1/invites` and `POST /v1/auth/switch`.

use agentd_core::{Invite, Role, Tenant, Timestamp, User};
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    pub email: String,
    pub role: Role,
}

/// Returned once, at creation: the only time the invite's token is shown.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedInvite {
    #[serde(flatten)]
    pub invite: Invite,
    pub token: String,
    /// Where to accept it, when the server knows its public URL.
    pub accept_url: Option<String>,
}

/// `{password}` for someone without an account, `{email, password}` for an existing
/// user, `{}` with the existing user's session as the bearer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A session in the workspace joined.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceptInviteResponse {
    pub token: String,
    pub expires_at: Timestamp,
    pub tenant: Tenant,
    pub user: User,
    pub role: Role,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchMemberRequest {
    pub role: Role,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchWorkspaceRequest {
    pub workspace_slug: String,
}
