//! Who belongs to a workspace: its members with their roles, and the invites that let
//! someone join with a role.

use serde::{Deserialize, Serialize};

use crate::context::Role;
use crate::ids::{InviteId, UserId};
use crate::status::InviteStatus;
use crate::timestamp::Timestamp;

/// A user's membership of a workspace; `id` is the user's id.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: UserId,
    pub email: String,
    pub role: Role,
    /// When they joined.
    pub created_at: Timestamp,
}

/// An invitation to join a workspace as `role`. Its token is shown once, at creation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub id: InviteId,
    pub email: String,
    pub role: Role,
    pub status: InviteStatus,
    /// The user or key that invited, or `operator`.
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}
