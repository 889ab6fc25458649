//! `/v1/admin/*` bodies that are not core resources: a tenant's limits as an operator
//! changes them, and a new workspace with its owner's invite.

use std::collections::BTreeMap;

use agentd_core::Tenant;
use serde::{Deserialize, Serialize};

use crate::{CreatedInvite, LimitEntry};

/// `PUT /v1/admin/tenants/{id}/limits`: values to give the tenant (`set`, by limit name)
/// and names whose own value goes so the default applies again (`unset`, applied after
/// `set`), as `agentd admin limits set|unset` does. Either may be left out.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeTenantLimitsRequest {
    #[serde(default)]
    pub set: BTreeMap<String, u64>,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// A tenant's limits as an operator sees them: each effective value and its source
/// (`used` is `null`: `GET /v1/limits` shows the tenant its use).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantLimitsReport {
    pub tenant_id: String,
    pub slug: String,
    pub limits: BTreeMap<String, LimitEntry>,
}

/// `POST /v1/admin/tenants`: a workspace with no members yet and an owner invite for
/// `owner_email`. `name` defaults to the slug.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    pub slug: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub owner_email: String,
}

/// The new workspace and its owner's invite, whose token is shown this once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedTenant {
    pub tenant: Tenant,
    pub owner_invite: CreatedInvite,
}
