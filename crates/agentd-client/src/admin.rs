//! The operators' routes (`/v1/admin/*`), called with an operator token.

use agentd_api_types::{ChangeTenantLimitsRequest, CreateTenantRequest, CreatedTenant, TenantLimitsReport};
use agentd_core::Page;
use agentd_core::operators::{QueueStats, TenantOverview, WorkerProcess};
use reqwest::Method;

use crate::{Client, ClientError, ListOptions};

impl Client {
    /// `GET /v1/admin/tenants`: every tenant, newest first, with its usage.
    pub async fn admin_tenants_list(&self, page: &ListOptions) -> Result<Page<TenantOverview>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "admin", "tenants"])?.query(page)).await
    }

    /// `POST /v1/admin/tenants`: a workspace with no members and its owner's invite.
    pub async fn admin_tenant_create(&self, request: &CreateTenantRequest) -> Result<CreatedTenant, ClientError> {
        self.call(self.route(Method::POST, &["v1", "admin", "tenants"])?.json(request)).await
    }

    /// `PUT /v1/admin/tenants/{id}/limits`: sets and unsets the tenant's own limit values.
    pub async fn admin_tenant_limits_change(
        &self,
        id: &str,
        request: &ChangeTenantLimitsRequest,
    ) -> Result<TenantLimitsReport, ClientError> {
        self.call(self.route(Method::PUT, &["v1", "admin", "tenants", id, "limits"])?.json(request)).await
    }

    /// `GET /v1/admin/tenants/{id}`.
    pub async fn admin_tenant_get(&self, id: &str) -> Result<TenantOverview, ClientError> {
        self.call(self.route(Method::GET, &["v1", "admin", "tenants", id])?).await
    }

    /// `POST /v1/admin/tenants/{id}/suspend`.
    pub async fn admin_tenant_suspend(&self, id: &str) -> Result<TenantOverview, ClientError> {
        self.call(self.route(Method::POST, &["v1", "admin", "tenants", id, "suspend"])?).await
    }

    /// `POST /v1/admin/tenants/{id}/resume`.
    pub async fn admin_tenant_resume(&self, id: &str) -> Result<TenantOverview, ClientError> {
        self.call(self.route(Method::POST, &["v1", "admin", "tenants", id, "resume"])?).await
    }

    /// `GET /v1/admin/workers`: worker processes seen in the last day.
    pub async fn admin_workers(&self) -> Result<Page<WorkerProcess>, ClientError> {
        self.call(self.route(Method::GET, &["v1", "admin", "workers"])?).await
    }

    /// `GET /v1/admin/queue`: the queue's depth, oldest ready run and claim rate.
    pub async fn admin_queue(&self) -> Result<QueueStats, ClientError> {
        self.call(self.route(Method::GET, &["v1", "admin", "queue"])?).await
    }
}
