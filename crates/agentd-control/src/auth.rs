//! Authentication and authorization. A bearer token becomes a [`Principal`] (who is
//! calling, on behalf of which tenant); a principal becomes a [`Ctx<C>`] only through
//! [`Principal::authorize`], which checks that its scopes grant capability `C`. Every
//! operation names the capability it needs in its signature (`&Ctx<Deploy>`), so a
//! front end that checked the wrong scope, or none, does not compile:
//!
//! ```compile_fail
//! # async fn f(control: &agentd_control::Control, principal: &agentd_control::Principal) {
//! let ctx = principal.authorize::<agentd_control::Read>().unwrap();
//! let slug = agentd_core::Slug::parse("echo").unwrap();
//! // A read-only context cannot reach a deploy operation: this fails to compile.
//! control.agent_delete(&ctx, &slug).await;
//! # }
//! ```
//!
//! ```no_run
//! # async fn f(control: &agentd_control::Control, principal: &agentd_control::Principal) {
//! let ctx = principal.authorize::<agentd_control::Deploy>().unwrap();
//! let slug = agentd_core::Slug::parse("echo").unwrap();
//! control.agent_delete(&ctx, &slug).await.unwrap();
//! # }
//! ```
//!
//! Neither a principal nor a context can be built outside this module: their fields are
//! private and their only constructors are here. Worker tokens authenticate the remote
//! worker protocol the same way, as a [`WorkerCtx`].

use std::marker::PhantomData;
use std::sync::Arc;

use agentd_core::queue::RunLease;
use agentd_core::{
    Actor, RequestId, ResourceKind, Role, Scope, Scopes, Tenant, TenantId, TenantLimits, TenantScope, TenantStatus,
    User, WorkerTokenId,
};
use agentd_store::{Credential, hash_secret};

use crate::Control;
use crate::error::{ControlError, Forbidden, Result, Unauthenticated};

pub const API_KEY_PREFIX: &str = "agd_";
pub const SESSION_PREFIX: &str = "ags_";
pub const WORKER_TOKEN_PREFIX: &str = "agw_";

/// An authenticated caller whose scopes have not been checked yet.
#[derive(Debug, Clone)]
pub struct Principal {
    credential: Credential,
    request_id: RequestId,
}

impl Principal {
    /// The context for operations that need capability `C`; `Forbidden` without it.
    pub fn authorize<C: Capability>(&self) -> Result<Ctx<C>> {
        let c = &self.credential;
        if !c.scopes.allows(C::SCOPE) {
            return Err(Forbidden::InsufficientScope { needed: C::SCOPE }.into());
        }
        let span = tracing::info_span!(
            "op",
            tenant_id = %c.tenant.id,
            actor = c.actor.id_str(),
            request_id = %self.request_id,
            scope = C::SCOPE.as_str(),
        );
        let inner = CtxInner {
            scope: TenantScope::new(c.tenant.id.clone(), c.actor.clone(), self.request_id.clone()),
            tenant: c.tenant.clone(),
            scopes: c.scopes.clone(),
            user: c.user.clone(),
            role: c.role,
            span,
        };
        Ok(Ctx { inner: Arc::new(inner), _capability: PhantomData })
    }

    pub fn tenant_id(&self) -> &TenantId {
        &self.credential.tenant.id
    }

    pub fn actor(&self) -> &Actor {
        &self.credential.actor
    }
}

/// What one operation may do and on whose behalf: the tenant (with its limits as of
/// authentication), the actor, the scopes, the request id and a tracing span carrying
/// them. `C` is the capability that was checked.
pub struct Ctx<C> {
    inner: Arc<CtxInner>,
    _capability: PhantomData<fn() -> C>,
}

struct CtxInner {
    scope: TenantScope,
    tenant: Tenant,
    scopes: Scopes,
    user: Option<User>,
    role: Option<Role>,
    span: tracing::Span,
}

impl<C> Clone for Ctx<C> {
    fn clone(&self) -> Self {
        Ctx { inner: self.inner.clone(), _capability: PhantomData }
    }
}

impl<C> std::fmt::Debug for Ctx<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("scope", &self.inner.scope).field("scopes", &self.inner.scopes).finish()
    }
}

impl<C> Ctx<C> {
    pub fn tenant_id(&self) -> &TenantId {
        self.inner.scope.tenant_id()
    }

    pub fn actor(&self) -> &Actor {
        self.inner.scope.actor()
    }

    pub fn scopes(&self) -> &Scopes {
        &self.inner.scopes
    }

    pub fn request_id(&self) -> &RequestId {
        self.inner.scope.request_id()
    }

    /// The span every log line of this operation belongs to.
    pub fn span(&self) -> &tracing::Span {
        &self.inner.span
    }

    pub fn user(&self) -> Option<&User> {
        self.inner.user.as_ref()
    }

    pub fn role(&self) -> Option<Role> {
        self.inner.role
    }

    /// What the store confines this operation to.
    pub(crate) fn store_scope(&self) -> &TenantScope {
        &self.inner.scope
    }

    /// The tenant's limits as they were when the caller was authenticated.
    pub(crate) fn limits(&self) -> &TenantLimits {
        &self.inner.tenant.limits
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A capability an operation may need; one per scope. Sealed: the set is fixed here.
pub trait Capability: sealed::Sealed {
    const SCOPE: Scope;
}

macro_rules! capability {
    ($($(#[$doc:meta])* $name:ident => $scope:expr),+ $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}
        impl sealed::Sealed for $name {}
        impl Capability for $name {
            const SCOPE: Scope = $scope;
        }
    )+};
}

capability!(
    /// Reading the tenant's resources.
    Read => Scope::Read,
    /// Starting and cancelling invocations.
    Invoke => Scope::Invoke,
    /// Creating, changing and deploying agents.
    Deploy => Scope::Deploy,
    /// Managing the workspace's credentials.
    Admin => Scope::Admin,
);

/// A worker allowed to take runs: one holding a worker token, or the server's own
/// in-process worker. It may touch only leases it claimed itself: every lease owner it
/// gets starts with its own prefix.
#[derive(Debug, Clone)]
pub struct WorkerCtx {
    owner_prefix: String,
}

impl WorkerCtx {
    /// The lease owner of a run claimed by the worker process called `name`.
    pub(crate) fn lease_owner(&self, name: &str) -> String {
        format!("{}{name}", self.owner_prefix)
    }

    /// Whether a lease owner names a worker process of this worker.
    pub(crate) fn owns(&self, lease_owner: &str) -> bool {
        lease_owner.starts_with(&self.owner_prefix)
    }

    /// To a worker, another worker's run does not exist.
    pub(crate) fn check(&self, lease: &RunLease) -> Result<()> {
        if self.owns(&lease.lease_owner) { Ok(()) } else { Err(ControlError::NotFound(ResourceKind::Run)) }
    }
}

/// A new worker token, and its secret shown this once.
#[derive(Debug, Clone)]
pub struct CreatedWorkerToken {
    pub id: WorkerTokenId,
    pub token: agentd_core::Secret,
}

/// Mints a worker token for `agentd worker --token`. An operator's act: it takes the store
/// itself, which only someone holding the database credentials has.
pub async fn worker_token_create(store: &agentd_store::Store, name: &str) -> Result<CreatedWorkerToken> {
    let token = format!("{WORKER_TOKEN_PREFIX}{}", crate::accounts::random_text(40));
    let id = store.worker_token_create_unscoped(name, &hash_secret(&token)).await?;
    Ok(CreatedWorkerToken { id, token: agentd_core::Secret::new(token) })
}

impl Control {
    /// The principal behind a bearer token (an API key or a session token) presented
    /// for request `request_id`.
    pub async fn authenticate(&self, token: &str, request_id: RequestId) -> Result<Principal> {
        let credential = if let Some(rest) = token.strip_prefix(API_KEY_PREFIX) {
            match rest.split_once('_') {
                Some((prefix, _secret)) => {
                    self.store.api_key_authenticate_unscoped(prefix, &hash_secret(token)).await?
                }
                None => None,
            }
        } else if token.starts_with(SESSION_PREFIX) {
            self.store.session_authenticate_unscoped(&hash_secret(token)).await?
        } else {
            None
        };
        let credential = credential.ok_or(Unauthenticated::UnknownToken)?;
        if credential.tenant.status == TenantStatus::Suspended {
            return Err(Forbidden::TenantSuspended.into());
        }
        Ok(Principal { credential, request_id })
    }

    /// The remote worker behind a worker token.
    pub async fn authenticate_worker(&self, token: &str) -> Result<WorkerCtx> {
        if !token.starts_with(WORKER_TOKEN_PREFIX) {
            return Err(Unauthenticated::MissingWorkerToken.into());
        }
        let id: WorkerTokenId = self
            .store
            .worker_token_authenticate_unscoped(&hash_secret(token))
            .await?
            .ok_or(Unauthenticated::UnknownWorkerToken)?;
        Ok(WorkerCtx { owner_prefix: format!("{id}/") })
    }

    /// The server's own in-process worker: it runs inside the process that holds the
    /// store, so it needs no token.
    pub fn embedded_worker(&self) -> WorkerCtx {
        WorkerCtx { owner_prefix: "embedded/".to_owned() }
    }
}
