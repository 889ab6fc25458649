//! The tenant's audit log: `GET /v1/audit`.

use agentd_api_types::{AuditEvent, Page};
use reqwest::Method;
use serde::Serialize;

use crate::{Client, ClientError};

/// Query of [`Client::audit_list`]; absent fields do not filter, set ones match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditFilter {
    /// An action such as `agent.create`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The id of who acted: `usr_…`, `key_…`, `inv_…`, `opt_…` or `database`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// RFC 3339; events at or after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// RFC 3339; events at or before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl Client {
    /// `GET /v1/audit`: one page of the tenant's audit log, newest first (scope `admin`).
    pub async fn audit_list(&self, filter: &AuditFilter) -> Result<Page<AuditEvent>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "audit"])?.query(filter)).await
    }
}
