//! Operators: the people who run the platform, above every tenant. Their credential is
//! an operator token (`ago_…`), made on the database by `agentd admin operator
//! create-token` like a worker token, and it authenticates `/v1/admin/*` alone: it
//! belongs to no tenant, so it passes no tenant route, and no tenant's credential passes
//! an operator route. An operator's context is an [`OperatorCtx`], which only
//! [`Control::authenticate_operator`] (a token) and [`operators_on_store`] (someone
//! holding the database itself) make; every operation of [`Operators`] takes one.
//!
//! Suspending a tenant locks it out (its keys, sessions and runs' tokens are refused
//! `403 tenant_suspended`) and stops its queued runs from starting (the claim serves
//! active tenants only); runs already running finish (within their timeout), since
//! stopping a run is not undone by resuming. Resuming lets its queued runs start again.

use agentd_core::operators::{OperatorToken, QueueStats, TenantOverview, WorkerProcess};
use agentd_core::{
    AuditActor, AuditOrigin, OperatorTokenId, Page, PageRequest, RequestId, RequestOrigin, Secret, Slug, TenantId,
    TenantStatus,
};
use agentd_store::{Store, TenantLimitsRecord, hash_secret};

use crate::error::{ControlError, Forbidden, Invalid, Result, Unauthenticated};
use crate::input::{Email, WorkspaceName};
use crate::{Control, LimitChange, LimitsView, OwnerInvite};

pub const OPERATOR_TOKEN_PREFIX: &str = "ago_";

/// Who is acting as operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// A caller holding this operator token.
    Token(OperatorTokenId),
    /// Someone with the database's own credentials (`agentd admin`).
    Database,
}

/// An operator's context: who, for which request, and a span carrying both.
#[derive(Debug, Clone)]
pub struct OperatorCtx {
    operator: Operator,
    origin: RequestOrigin,
    span: tracing::Span,
}

impl OperatorCtx {
    fn new(operator: Operator, origin: RequestOrigin) -> OperatorCtx {
        let who = match &operator {
            Operator::Token(id) => id.as_str().to_owned(),
            Operator::Database => "database".to_owned(),
        };
        let span = tracing::info_span!("operator", operator = who, request_id = %origin.request_id);
        OperatorCtx { operator, origin, span }
    }

    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    pub fn request_id(&self) -> &RequestId {
        &self.origin.request_id
    }

    pub fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.origin.client_ip
    }

    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Who the audit log names for this operator's changes to a tenant.
    fn audit_origin(&self) -> AuditOrigin {
        let token = match &self.operator {
            Operator::Token(id) => Some(id),
            Operator::Database => None,
        };
        AuditOrigin::new(AuditActor::operator(token), self.origin.clone())
    }
}

/// An operator acting on the database itself (`agentd admin`), as the audit log names
/// them, for a request of its own.
pub(crate) fn database_operator() -> AuditOrigin {
    AuditOrigin::new(AuditActor::operator(None), RequestOrigin::new(RequestId::generate(), None))
}

/// The operations of operators, over the store of every tenant.
#[derive(Clone)]
pub struct Operators {
    store: Store,
}

/// The operations and an operator's context for someone holding the database itself
/// (`agentd admin`): holding the store is the credential.
pub fn operators_on_store(store: Store) -> (Operators, OperatorCtx) {
    (Operators { store }, OperatorCtx::new(Operator::Database, RequestOrigin::new(RequestId::generate(), None)))
}

/// A workspace an operator opens: its slug, its name and whom its owner invite is for.
#[derive(Debug, Clone)]
pub struct NewWorkspace {
    pub slug: Slug,
    pub name: WorkspaceName,
    pub owner_email: Email,
}

/// A new operator token, and its secret shown this once.
#[derive(Debug, Clone)]
pub struct CreatedOperatorToken {
    pub token: OperatorToken,
    pub secret: Secret,
}

/// A name of an operator token: 1 to 100 characters without control characters.
fn operator_token_name(raw: &str) -> Result<&str> {
    const MAX: usize = 100;
    if raw.is_empty() || raw.chars().count() > MAX || raw.chars().any(char::is_control) {
        return Err(Invalid::KeyName { max: MAX }.into());
    }
    Ok(raw)
}

impl Operators {
    /// Mints an operator token; only its SHA-256 is kept.
    pub async fn token_create(&self, _op: &OperatorCtx, name: &str) -> Result<CreatedOperatorToken> {
        let name = operator_token_name(name)?;
        let secret = format!("{OPERATOR_TOKEN_PREFIX}{}", crate::accounts::random_text(40));
        let token = self.store.operator_token_create_unscoped(name, &hash_secret(&secret)).await?;
        Ok(CreatedOperatorToken { token, secret: Secret::new(secret) })
    }

    pub async fn tokens_list(&self, _op: &OperatorCtx) -> Result<Vec<OperatorToken>> {
        Ok(self.store.operator_tokens_list_unscoped().await?)
    }

    /// Revokes an operator token: refused from the next request on. `None` when there is
    /// no such token.
    pub async fn token_revoke(&self, _op: &OperatorCtx, id: &OperatorTokenId) -> Result<Option<OperatorToken>> {
        Ok(self.store.operator_token_revoke_unscoped(id).await?)
    }

    /// Every tenant, newest first, with its usage.
    pub async fn tenants_list(&self, _op: &OperatorCtx, page: &PageRequest<TenantId>) -> Result<Page<TenantOverview>> {
        Ok(self.store.tenants_list_unscoped(page).await?)
    }

    pub async fn tenant_get(&self, _op: &OperatorCtx, id: &TenantId) -> Result<TenantOverview> {
        Ok(self.store.tenant_overview_unscoped(id).await?)
    }

    /// Suspends a tenant (see the module docs for what that stops); suspending a
    /// suspended tenant changes nothing.
    pub async fn tenant_suspend(&self, op: &OperatorCtx, id: &TenantId) -> Result<TenantOverview> {
        let tenant = self.store.tenant_set_status_unscoped(id, TenantStatus::Suspended, &op.audit_origin()).await?;
        op.span.in_scope(|| tracing::info!(tenant_id = %id, "tenant suspended"));
        Ok(tenant)
    }

    /// Lets a suspended tenant in again; its queued runs start again.
    pub async fn tenant_resume(&self, op: &OperatorCtx, id: &TenantId) -> Result<TenantOverview> {
        let tenant = self.store.tenant_set_status_unscoped(id, TenantStatus::Active, &op.audit_origin()).await?;
        op.span.in_scope(|| tracing::info!(tenant_id = %id, "tenant resumed"));
        Ok(tenant)
    }

    /// Changes a tenant's overrides (by id or slug), logged in its audit log as
    /// `limits.set` by this operator, and returns its limits as they are now.
    pub async fn tenant_limits_change(
        &self,
        op: &OperatorCtx,
        tenant: &str,
        change: &LimitChange,
    ) -> Result<(TenantLimitsRecord, LimitsView)> {
        let by = op.audit_origin();
        let record = self.store.tenant_limits_update_unscoped(tenant, &change.set, &change.unset, &by).await?;
        op.span.in_scope(|| tracing::info!(tenant_id = %record.tenant.id, "tenant limits changed"));
        let view = crate::limits::view_of(&record);
        Ok((record, view))
    }

    /// The worker processes seen in the last day, with their heartbeat, slots and runs.
    pub async fn workers_list(&self, _op: &OperatorCtx) -> Result<Vec<WorkerProcess>> {
        Ok(self.store.workers_list_unscoped().await?)
    }

    pub async fn queue_stats(&self, _op: &OperatorCtx) -> Result<QueueStats> {
        Ok(self.store.queue_stats_unscoped().await?)
    }
}

impl Control {
    /// The operator behind an operator token presented for the request from `origin`. A
    /// workspace's credential (a key, a session, a run's token) that is good is refused
    /// as [`Forbidden::OperatorRequired`], one that is not as it would be anywhere.
    pub async fn authenticate_operator(&self, token: &str, origin: RequestOrigin) -> Result<OperatorCtx> {
        if !token.starts_with(OPERATOR_TOKEN_PREFIX) {
            return match self.authenticate(token, origin.clone()).await {
                Ok(_) | Err(ControlError::Forbidden(Forbidden::TenantSuspended)) => {
                    Err(Forbidden::OperatorRequired.into())
                }
                Err(err) => Err(err),
            };
        }
        let found = self
            .store
            .operator_token_authenticate_unscoped(&hash_secret(token))
            .await?
            .ok_or(Unauthenticated::UnknownToken)?;
        Ok(OperatorCtx::new(Operator::Token(found.id), origin))
    }

    /// Opens a workspace for a customer, with the platform's default limits, and the
    /// owner invite that lets them in (see [`crate::tenant_create_with_owner_invite`]).
    pub async fn operator_tenant_create(&self, op: &OperatorCtx, new: NewWorkspace) -> Result<OwnerInvite> {
        let limits = self.settings.default_limits.clone();
        let public_url = self.settings.public_url.as_deref();
        let by = op.audit_origin();
        let made =
            crate::members::workspace_create_with_owner_invite(&self.store, new, limits, public_url, &by).await?;
        op.span.in_scope(|| tracing::info!(tenant_id = %made.tenant.id, "workspace made through the operator API"));
        Ok(made)
    }

    /// The operators' operations; each needs an [`OperatorCtx`].
    pub fn operators(&self) -> Operators {
        Operators { store: self.store.clone() }
    }
}
