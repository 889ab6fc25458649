//! Accepting invocations (checked against the tenant's limits and the agent's
//! manifest), reading them, and waiting for them to settle.

use std::time::Duration;

use agentd_core::{
    AgentStatus, Event, Invocation, InvocationId, InvocationStatus, MultitaskStrategy, Page, PageRequest, ResourceKind,
    Slug, ThreadId,
};
use agentd_store::{Enqueued, NewInvocation, ParentRun, ScheduledRun, StoreError, ThreadRun};
use serde_json::Value;
use tokio::time::Instant;

use crate::Control;
use crate::auth::{Ctx, Invoke, Read};
use crate::config::RunConfig;
use crate::error::{Conflict, ControlError, Invalid, QuotaExceeded, Result};
use crate::input::{EnvVars, IdempotencyKey, MaxAttempts, Metadata, Priority, WaitTime};
use crate::wait::{self, Step};

/// How long `cancel` waits for a running agent to be killed before answering.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// An invocation as asked for, its options checked (the timeout is checked against the
/// tenant's cap when it is accepted).
#[derive(Debug, Clone, Default)]
pub struct InvokeSpec {
    pub input: Value,
    pub priority: Priority,
    pub max_attempts: MaxAttempts,
    /// Seconds; absent: the manifest's `[limits] timeout_s`, else the tenant's cap.
    pub timeout_s: Option<u32>,
    pub metadata: Metadata,
    pub idempotency_key: Option<IdempotencyKey>,
    /// Overrides of the names the manifest lists in `overridable_env`.
    pub env: EnvVars,
    /// How long a question the agent asks may wait for its answer (at most the tenant's
    /// `max_input_timeout_s`); absent: as long as it takes.
    pub input_timeout_s: Option<u32>,
    /// The thread to run on: the agent gets its state, and its runs run one at a time.
    pub thread_id: Option<ThreadId>,
    /// What to do when the thread has a run going; absent: `enqueue`.
    pub multitask_strategy: Option<MultitaskStrategy>,
    /// Where this invocation's terminal and waiting_for_input events are POSTed, signed
    /// with the tenant's invocation webhook secret; checked like an endpoint's URL.
    pub webhook_url: Option<String>,
}

/// Which invocations a list shows; `None` does not filter.
#[derive(Debug, Clone, Default)]
pub struct InvocationFilter {
    pub agent: Option<Slug>,
    pub status: Option<InvocationStatus>,
    pub thread_id: Option<ThreadId>,
    /// The sub-invocations of this run only.
    pub parent_id: Option<InvocationId>,
}

/// An accepted invocation, and whether this call created it or found it by its
/// idempotency key.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub invocation: Invocation,
    pub created: bool,
}

/// Terminal, or paused for a human: either way the caller has something to act on.
/// Largest answer accepted, as JSON text: it is handed to every later attempt on stdin.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

pub fn settled(invocation: &Invocation) -> bool {
    invocation.status.is_terminal() || invocation.status == InvocationStatus::WaitingForInput
}

/// The parent of an invocation `ctx` makes: the calling run, when it is one. Refused
/// past the workspace's `max_invocation_depth`.
fn parent_of_new<C>(ctx: &Ctx<C>) -> Result<Option<ParentRun>> {
    let Some(run) = ctx.run() else { return Ok(None) };
    let max = ctx.limits().max_invocation_depth;
    if run.depth >= max {
        return Err(Invalid::InvocationDepth { parent_depth: run.depth, max }.into());
    }
    Ok(Some(ParentRun { id: run.invocation_id.clone(), depth: run.depth + 1 }))
}

/// What a caller may see of `invocation`: a member all of the tenant's, a run only its
/// own sub-invocations (anything else does not exist for it).
fn visible<C>(ctx: &Ctx<C>, invocation: Invocation) -> Result<Invocation> {
    match ctx.run() {
        Some(run) if invocation.parent_id.as_ref() != Some(&run.invocation_id) => {
            Err(ControlError::NotFound(ResourceKind::Invocation))
        }
        _ => Ok(invocation),
    }
}

impl Control {
    /// Accepts an invocation of the agent's active version; with `wait`, waits up to that
    /// long for it to settle and returns it as it is then. A run calling with its token
    /// makes a sub-invocation: its `parent_id` is the run, its depth one more.
    pub async fn invoke(
        &self,
        ctx: &Ctx<Invoke>,
        slug: &Slug,
        spec: InvokeSpec,
        wait: Option<WaitTime>,
    ) -> Result<Accepted> {
        self.invoke_for(ctx, slug, spec, wait, None).await
    }

    /// [`Control::invoke`], for a schedule's occurrence when `schedule` is given: the
    /// invocation records it, and a claimed occurrence gets one invocation at most.
    pub(crate) async fn invoke_for(
        &self,
        ctx: &Ctx<Invoke>,
        slug: &Slug,
        spec: InvokeSpec,
        wait: Option<WaitTime>,
        schedule: Option<ScheduledRun>,
    ) -> Result<Accepted> {
        if spec.multitask_strategy.is_some() && spec.thread_id.is_none() {
            return Err(Invalid::StrategyWithoutThread.into());
        }
        let parent = parent_of_new(ctx)?;
        let scope = ctx.store_scope();
        let agent = self.store.agent_get(scope, slug).await?;
        if agent.status == AgentStatus::Disabled {
            return Err(Conflict::AgentDisabled { slug: slug.to_string() }.into());
        }
        let Some(n) = agent.active_version else {
            return Err(match self.store.agent_is_building(scope, &agent.id).await? {
                true => Conflict::AgentBuilding { slug: slug.to_string() },
                false => Conflict::AgentHasNoVersion { slug: slug.to_string() },
            }
            .into());
        };
        let version = self.store.version_get(scope, &agent, n).await?;
        let config = RunConfig::of(&agent, &version)?;
        config.check_input(&spec.input)?;
        let env = config.run_env(spec.env)?;
        let cap = ctx.limits().invocation_timeout_s;
        let manifest_timeout = version.manifest.pointer("/limits/timeout_s").and_then(Value::as_u64);
        let timeout_s = match spec.timeout_s {
            Some(0) => return Err(Invalid::Timeout { cap }.into()),
            Some(t) if t > cap => return Err(Invalid::TimeoutOverLimit { asked: t, cap }.into()),
            Some(t) => t,
            None => manifest_timeout.map_or(cap, |t| (t.min(u64::from(cap)) as u32).max(1)),
        };
        let input_cap = ctx.limits().max_input_timeout_s;
        if spec.input_timeout_s.is_some_and(|t| t == 0 || t > input_cap) {
            return Err(Invalid::InputTimeout { cap: input_cap }.into());
        }
        let webhook_url = match &spec.webhook_url {
            Some(raw) => Some(self.check_invocation_webhook(ctx.tenant_id(), scope, raw).await?),
            None => None,
        };
        let new = NewInvocation {
            webhook_url,
            input_timeout_s: spec.input_timeout_s,
            input: spec.input,
            thread: spec.thread_id.map(|id| ThreadRun { id, strategy: spec.multitask_strategy.unwrap_or_default() }),
            priority: spec.priority.get(),
            max_attempts: spec.max_attempts.get(),
            timeout_s,
            idempotency_key: spec.idempotency_key.map(IdempotencyKey::into_inner),
            metadata: spec.metadata.into_inner(),
            env,
            parent,
            schedule,
        };
        self.rate_take_invocation(ctx, new.idempotency_key.as_deref()).await?;
        let limit = ctx.limits().max_queued_invocations;
        let enqueued =
            self.store.invocation_enqueue(scope, &agent, &version, new, limit).await.map_err(|e| match e {
                StoreError::QuotaReached { count } => QuotaExceeded::QueuedInvocations { count, limit }.into(),
                other => ControlError::from(other),
            })?;
        let created = matches!(enqueued, Enqueued::Created(_));
        let invocation = enqueued.into_invocation();
        if created {
            crate::metrics::invocation_created();
            let parent_id = invocation.parent_id.as_ref().map(InvocationId::as_str);
            ctx.span()
                .in_scope(|| tracing::info!(invocation_id = %invocation.id, agent = %slug, parent_id, "accepted"));
        }
        // An idempotency key may name an invocation that is not this run's child.
        let mut invocation = visible(ctx, invocation)?;
        if let Some(wait) = wait.filter(|w| !w.get().is_zero()) {
            invocation = self.wait_for(ctx, &invocation.id, wait.get(), settled).await?;
        }
        Ok(Accepted { invocation, created })
    }

    /// Counts a new invocation against the tenant's `invocations_per_minute`, runs'
    /// sub-invocations included. A retry with an idempotency key already seen creates
    /// nothing, so it neither counts nor is refused. (Two first tries racing with one
    /// key may both count; one of them then gets the other's invocation.)
    async fn rate_take_invocation(&self, ctx: &Ctx<Invoke>, idempotency_key: Option<&str>) -> Result<()> {
        let quota = ctx.limits().invocations_per_minute;
        if quota == 0 {
            return Ok(());
        }
        if let Some(key) = idempotency_key
            && self.store.invocation_idempotency_seen(ctx.store_scope(), key).await?
        {
            return Ok(());
        }
        let tenant = ctx.tenant_id().as_str();
        self.rate_take(agentd_core::RateLimitKind::InvocationsPerMinute, quota, tenant).await.map(drop)
    }

    /// An invocation of the tenant; for a run, one of its own sub-invocations.
    pub async fn invocation_get(&self, ctx: &Ctx<Read>, id: &InvocationId) -> Result<Invocation> {
        visible(ctx, self.store.invocation_get(ctx.store_scope(), id).await?)
    }

    pub async fn invocations_list(
        &self,
        ctx: &Ctx<Read>,
        filter: &InvocationFilter,
        page: &PageRequest<InvocationId>,
    ) -> Result<Page<Invocation>> {
        let filter = agentd_store::InvocationFilter {
            agent: filter.agent.clone(),
            status: filter.status,
            thread_id: filter.thread_id.clone(),
            parent_id: filter.parent_id.clone(),
        };
        Ok(self.store.invocations_list(ctx.store_scope(), &filter, page).await?)
    }

    /// Events after `page`'s seq, in order.
    pub async fn invocation_logs(
        &self,
        ctx: &Ctx<Read>,
        id: &InvocationId,
        page: &PageRequest<u64>,
    ) -> Result<Page<Event>> {
        Ok(self.store.events_list(ctx.store_scope(), id, page).await?)
    }

    /// Cancels an invocation: one that has not started never runs; for a running one,
    /// waits up to 10 s for its process tree to be killed. Returns it as it is then. A
    /// run may cancel its own sub-invocations only.
    pub async fn invocation_cancel(&self, ctx: &Ctx<Invoke>, id: &InvocationId) -> Result<Invocation> {
        if ctx.run().is_some() {
            // `parent_id` never changes, so this check holds for the cancel below.
            visible(ctx, self.store.invocation_get(ctx.store_scope(), id).await?)?;
        }
        let invocation = self.store.invocation_cancel(ctx.store_scope(), id).await.map_err(|e| match e {
            StoreError::Conflict(agentd_store::Conflict::InvocationFinished { status }) => {
                Conflict::InvocationFinished { id: id.clone(), status }.into()
            }
            other => ControlError::from(other),
        })?;
        crate::metrics::invocation_cancelled();
        if invocation.status != InvocationStatus::Running {
            return Ok(invocation);
        }
        self.wait_for(ctx, id, CANCEL_WAIT, |i| i.status.is_terminal()).await
    }

    /// Answers the question a waiting invocation asked and resumes it: a new attempt
    /// starts with every answer so far as `resume`. With `wait`, waits up to that long for
    /// it to settle again (finished, or waiting on its next question).
    pub async fn respond(
        &self,
        ctx: &Ctx<Invoke>,
        id: &InvocationId,
        answer: Value,
        wait: Option<WaitTime>,
    ) -> Result<Invocation> {
        let size = answer.to_string().len();
        if size > MAX_ANSWER_BYTES {
            return Err(Invalid::AnswerTooLarge { size, max: MAX_ANSWER_BYTES }.into());
        }
        let invocation = self.store.invocation_respond(ctx.store_scope(), id, &answer).await.map_err(|e| match e {
            StoreError::Conflict(agentd_store::Conflict::NotWaiting { status }) => {
                Conflict::NotWaiting { id: id.clone(), status }.into()
            }
            other => ControlError::from(other),
        })?;
        ctx.span().in_scope(|| tracing::info!(invocation_id = %id, "answered; resuming"));
        match wait.filter(|w| !w.get().is_zero()) {
            Some(wait) => self.wait_for(ctx, id, wait.get(), settled).await,
            None => Ok(invocation),
        }
    }

    /// The questions an invocation asked and their answers, in order.
    pub async fn interrupts(&self, ctx: &Ctx<Read>, id: &InvocationId) -> Result<Vec<agentd_core::Interrupt>> {
        Ok(self.store.interrupts_list(ctx.store_scope(), id).await?)
    }

    /// Ends the invocations whose question waited past its `input_timeout_s`.
    pub async fn end_unanswered(&self) -> Result<u64> {
        Ok(self.store.input_timeouts_unscoped().await?)
    }

    /// Re-reads the invocation until `done` holds for it or `wait` has passed; returns
    /// it as it is then either way.
    async fn wait_for<C>(
        &self,
        ctx: &Ctx<C>,
        id: &InvocationId,
        wait: Duration,
        done: impl Fn(&Invocation) -> bool,
    ) -> Result<Invocation> {
        let scope = ctx.store_scope();
        let mut changes = self.store.subscribe_invocation(id);
        let deadline = Some(Instant::now() + wait);
        let found = wait::until(&mut changes, deadline, wait::BACKSTOP, || async {
            let invocation = self.store.invocation_get(scope, id).await?;
            Ok(if done(&invocation) { Step::Ready(invocation) } else { Step::PENDING })
        })
        .await?;
        match found {
            Some(invocation) => Ok(invocation),
            None => Ok(self.store.invocation_get(scope, id).await?),
        }
    }
}
