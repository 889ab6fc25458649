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
//!
//! # Runs calling back
//!
//! Every attempt of a run gets a token of its own (`AGENTD_TOKEN`, `agr_…`), made by the
//! claim that starts the attempt. It authenticates as a principal of the run's tenant
//! that carries a [`RunGrant`] (the invocation, its agent, its thread, its depth), and
//! only while that attempt runs under a live lease; afterwards it is refused as
//! [`Unauthenticated::RunEnded`].
//!
//! A run principal never passes [`Principal::authorize`]: every route that calls it
//! refuses a run with [`Unauthenticated::RunTokenNotAccepted`]. A route lets runs in only
//! by calling [`Principal::authorize_run`] instead, for [`Read`] or [`Invoke`] (never
//! `Deploy` or `Admin`: [`RunCapability`] is not implemented for them, so that does not
//! compile). The context then carries the grant ([`Ctx::run`]), and the operation the
//! route calls is responsible for confining the run to what the grant covers. An
//! operation that a route opts in therefore checks `ctx.run()`:
//!
//! ```no_run
//! # async fn f(control: &agentd_control::Control, principal: &agentd_control::Principal,
//! #            id: &agentd_core::InvocationId) {
//! // A run may look at its own sub-invocations only: `invocation_get` checks the grant.
//! let ctx = principal.authorize_run::<agentd_control::Read>().unwrap();
//! control.invocation_get(&ctx, id).await.unwrap();
//! # }
//! ```
//!
//! ```compile_fail
//! # fn f(principal: &agentd_control::Principal) {
//! // No route can let a run deploy.
//! let ctx = principal.authorize_run::<agentd_control::Deploy>();
//! # }
//! ```
//!
//! Opted in today (docs/API.md lists them): invoking an agent of the run's tenant (a
//! sub-agent, recorded with `parent_id` and `depth`), reading and cancelling the run's
//! own sub-invocations, reading its own thread and writing its state, the tenant's
//! memory store, and `GET /v1/me`. For a member (key or session) `authorize_run`
//! is exactly `authorize`.

use std::marker::PhantomData;
use std::sync::Arc;

use agentd_core::queue::RunLease;
use agentd_core::{
    Actor, AgentId, InvocationId, InvocationStatus, RateDecision, RequestId, RequestOrigin, ResourceKind, Role, Scope,
    Scopes, Secret, SessionId, Slug, Tenant, TenantId, TenantLimits, TenantScope, TenantStatus, ThreadId, User,
    WorkerTokenId,
};
use agentd_store::{Credential, RunCredential, hash_secret};

use crate::Control;
use crate::error::{ControlError, Forbidden, Result, Unauthenticated};

pub const API_KEY_PREFIX: &str = "agd_";
pub const SESSION_PREFIX: &str = "ags_";
pub const WORKER_TOKEN_PREFIX: &str = "agw_";
pub const RUN_TOKEN_PREFIX: &str = "agr_";

/// An authenticated caller whose scopes have not been checked yet.
#[derive(Debug, Clone)]
pub struct Principal {
    credential: Credential,
    /// Set when the caller is a run, with its own token.
    run: Option<RunGrant>,
    origin: RequestOrigin,
    /// What the credential's `requests_per_second` bucket said of this request (`None`:
    /// the limit is off).
    rate: Option<RateDecision>,
}

/// What a run's token stands for: one attempt of one invocation, of its tenant's agent.
/// Operations that let runs in confine them with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunGrant {
    pub invocation_id: InvocationId,
    pub agent_id: AgentId,
    pub agent: Slug,
    pub thread_id: Option<ThreadId>,
    /// 0 for an invocation a client made; its sub-invocations are one deeper.
    pub depth: u32,
    pub attempt: u32,
}

impl Principal {
    /// The context for operations that need capability `C`; `Forbidden` without it. A
    /// run's token is refused here: see [`Principal::authorize_run`].
    pub fn authorize<C: Capability>(&self) -> Result<Ctx<C>> {
        if self.run.is_some() {
            return Err(Unauthenticated::RunTokenNotAccepted.into());
        }
        if !self.credential.scopes.allows(C::SCOPE) {
            return Err(Forbidden::InsufficientScope { needed: C::SCOPE }.into());
        }
        Ok(self.context())
    }

    /// As [`Principal::authorize`], and a run's token is accepted too: the context then
    /// carries its [`RunGrant`], which the operation must honour (see the module docs).
    pub fn authorize_run<C: RunCapability>(&self) -> Result<Ctx<C>> {
        match self.run {
            Some(_) => Ok(self.context()),
            None => self.authorize(),
        }
    }

    /// The context of an authorized caller.
    fn context<C: Capability>(&self) -> Ctx<C> {
        let c = &self.credential;
        let span = tracing::info_span!(
            "op",
            tenant_id = %c.tenant.id,
            actor = c.actor.id_str(),
            request_id = %self.origin.request_id,
            scope = C::SCOPE.as_str(),
        );
        let inner = CtxInner {
            scope: TenantScope::from_origin(c.tenant.id.clone(), c.actor.clone(), &self.origin),
            tenant: c.tenant.clone(),
            scopes: c.scopes.clone(),
            user: c.user.clone(),
            role: c.role,
            session_id: c.session_id.clone(),
            run: self.run.clone(),
            span,
        };
        Ctx { inner: Arc::new(inner), _capability: PhantomData }
    }

    pub fn tenant_id(&self) -> &TenantId {
        &self.credential.tenant.id
    }

    pub fn actor(&self) -> &Actor {
        &self.credential.actor
    }

    /// The `requests_per_second` decision that let this request in, for the response's
    /// `RateLimit` headers; `None` when the tenant's limit is off.
    pub fn rate_limit(&self) -> Option<&RateDecision> {
        self.rate.as_ref()
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
    session_id: Option<SessionId>,
    run: Option<RunGrant>,
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

    /// The session this request was made with, for a session token.
    pub fn session_id(&self) -> Option<&SessionId> {
        self.inner.session_id.as_ref()
    }

    /// The run calling with its own token, when it is one (only through
    /// [`Principal::authorize_run`]); `None` for a member's key or session.
    pub fn run(&self) -> Option<&RunGrant> {
        self.inner.run.as_ref()
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

/// A capability a route may grant a run's token ([`Principal::authorize_run`]): reading
/// and invoking, never deploying or administering.
pub trait RunCapability: Capability {}
impl RunCapability for Read {}
impl RunCapability for Invoke {}

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
    /// The worker token it holds; `None` for the server's in-process worker.
    token_id: Option<WorkerTokenId>,
}

impl WorkerCtx {
    pub(crate) fn token_id(&self) -> Option<&WorkerTokenId> {
        self.token_id.as_ref()
    }

    /// The process name within a lease owner of this worker.
    pub(crate) fn process_name<'a>(&self, lease_owner: &'a str) -> Option<&'a str> {
        lease_owner.strip_prefix(self.owner_prefix.as_str())
    }

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

/// A fresh run token, for the attempt a claim starts.
pub(crate) fn mint_run_token() -> Secret {
    Secret::new(format!("{RUN_TOKEN_PREFIX}{}", crate::accounts::random_text(40)))
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

/// Revokes a worker token by its id (`wkt_…`); `false` when there is no such live token.
/// Like making one, a matter for whoever holds the database credentials.
pub async fn worker_token_revoke(store: &agentd_store::Store, id: &str) -> Result<bool> {
    // Not an id at all: there is no such token either.
    let Ok(id) = WorkerTokenId::parse(id) else { return Ok(false) };
    Ok(store.worker_token_revoke_unscoped(&id).await?)
}

impl Control {
    /// The principal behind a bearer token (an API key or a session token) presented
    /// for the request from `origin`.
    pub async fn authenticate(&self, token: &str, origin: RequestOrigin) -> Result<Principal> {
        let credential = if let Some(rest) = token.strip_prefix(API_KEY_PREFIX) {
            match rest.split_once('_') {
                Some((prefix, _secret)) => {
                    self.store.api_key_authenticate_unscoped(prefix, &hash_secret(token)).await?
                }
                None => None,
            }
        } else if token.starts_with(SESSION_PREFIX) {
            self.store.session_authenticate_unscoped(&hash_secret(token)).await?
        } else if token.starts_with(RUN_TOKEN_PREFIX) {
            return self.authenticate_run(token, origin).await;
        } else if token.starts_with(crate::operators::OPERATOR_TOKEN_PREFIX) {
            return Err(Unauthenticated::OperatorTokenNotAccepted.into());
        } else {
            None
        };
        let credential = credential.ok_or(Unauthenticated::UnknownToken)?;
        if credential.tenant.status == TenantStatus::Suspended {
            return Err(Forbidden::TenantSuspended.into());
        }
        let quota = credential.tenant.limits.requests_per_second;
        let rate = self.rate_take_request(&credential.actor, credential.session_id.as_ref(), None, quota).await?;
        Ok(Principal { credential, run: None, origin, rate })
    }

    /// The run behind a run token: accepted only while the attempt it was made for is
    /// running under a live lease (a later claim replaced it with the next attempt's).
    async fn authenticate_run(&self, token: &str, origin: RequestOrigin) -> Result<Principal> {
        let found: RunCredential = self
            .store
            .run_token_authenticate_unscoped(&hash_secret(token))
            .await?
            .ok_or(Unauthenticated::UnknownToken)?;
        if found.status != InvocationStatus::Running || !found.lease_live {
            return Err(Unauthenticated::RunEnded { id: found.invocation_id }.into());
        }
        if found.tenant.status == TenantStatus::Suspended {
            return Err(Forbidden::TenantSuspended.into());
        }
        let credential = Credential {
            tenant: found.tenant,
            actor: Actor::Run { id: found.invocation_id.clone() },
            // Scopes are what ordinary routes check, and a run passes none of them.
            scopes: Scopes::default(),
            user: None,
            role: None,
            session_id: None,
        };
        let run = RunGrant {
            invocation_id: found.invocation_id,
            agent_id: found.agent_id,
            agent: found.agent,
            thread_id: found.thread_id.map(ThreadId::from_trusted),
            depth: found.depth,
            attempt: found.attempt,
        };
        let quota = credential.tenant.limits.requests_per_second;
        let rate = self.rate_take_request(&credential.actor, None, Some(&run), quota).await?;
        Ok(Principal { credential, run: Some(run), origin, rate })
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
        Ok(WorkerCtx { owner_prefix: format!("{id}/"), token_id: Some(id) })
    }

    /// The context of something of the tenant's own acting on its behalf with no caller
    /// present (a schedule's occurrence, a trigger URL's signed request): the tenant's
    /// current limits, only capability `C`, and a request id of its own. Refused for a
    /// suspended tenant, as its members' keys are.
    pub async fn automation_ctx<C: Capability>(
        &self,
        tenant_id: &TenantId,
        actor: Actor,
        origin: RequestOrigin,
    ) -> Result<Ctx<C>> {
        let scope = TenantScope::from_origin(tenant_id.clone(), actor, &origin);
        let tenant = self.store.tenant_get(&scope).await?;
        if tenant.status == TenantStatus::Suspended {
            return Err(Forbidden::TenantSuspended.into());
        }
        let span = tracing::info_span!(
            "op",
            tenant_id = %tenant.id,
            actor = scope.actor().id_str(),
            request_id = %origin.request_id,
            scope = C::SCOPE.as_str(),
        );
        let inner = CtxInner {
            scope,
            tenant,
            scopes: Scopes::new(vec![C::SCOPE]),
            user: None,
            role: None,
            session_id: None,
            run: None,
            span,
        };
        Ok(Ctx { inner: Arc::new(inner), _capability: PhantomData })
    }

    /// The server's own in-process worker: it runs inside the process that holds the
    /// store, so it needs no token.
    pub fn embedded_worker(&self) -> WorkerCtx {
        WorkerCtx { owner_prefix: "embedded/".to_owned(), token_id: None }
    }
}
