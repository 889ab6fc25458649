//! `GET /v1/limits`: every limit of the workspace, keyed by name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `{"limits": {"max_agents": {"value": 100, "source": "default", "used": 3}, …}}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitsReport {
    pub limits: BTreeMap<String, LimitEntry>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LimitEntry {
    /// The effective value.
    pub value: u64,
    /// `default` (the platform's) or `override` (the workspace's own, set by an operator).
    pub source: String,
    /// How much is in use now, for the limits that count something held; else `null`.
    pub used: Option<u64>,
}
