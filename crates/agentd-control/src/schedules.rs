//! Schedules: a cron pattern in a time zone that invokes an agent with a fixed input
//! (docs/API.md, "Schedules"). The reconciler [`Control::run_due_schedules`] claims each
//! due occurrence in the store (one replica alone wins it) and invokes through
//! [`Control::invoke`]'s own path, as the schedule, so the tenant's limits, the manifest
//! and the input schema apply to every run; a refused run is recorded on the schedule
//! (`last_error`) and the schedule moves on.

use std::time::Duration;

use agentd_core::{
    Actor, Invocation, Page, PageRequest, RequestId, RequestOrigin, Schedule, ScheduleCatchup, ScheduleId,
    ScheduleOverlap, Slug, TenantId, TenantScope, Timestamp,
};
use agentd_store::{DueSchedule, OccurrenceOutcome, ScheduleFields, ScheduledRun, StoreError};
use serde_json::Value;

use crate::Control;
use crate::auth::{Ctx, Invoke, Read};
use crate::cron::CronSchedule;
use crate::error::{Conflict, ControlError, Invalid, Result};
use crate::input::Metadata;
use crate::invocations::InvokeSpec;

/// Largest input a schedule keeps, as JSON text.
const MAX_INPUT_BYTES: usize = 256 * 1024;
/// Most missed occurrences `catchup = all` runs when the schedule is next looked at
/// (the newest ones); older ones are dropped.
pub const CATCHUP_ALL_CAP: usize = 100;
/// Under `catchup = skip`, an occurrence found later than this after its time counts as
/// missed and does not run.
pub const SKIP_GRACE: Duration = Duration::from_secs(10);
/// A claimed occurrence with no invocation after this long lost its claimer (a crash
/// between the claim and the invoke); the reconciler makes its invocation then.
const ORPHAN_AFTER: Duration = Duration::from_secs(60);
/// How long an occurrence's row is kept once settled.
const OCCURRENCES_KEPT: Duration = Duration::from_secs(24 * 60 * 60);
/// Schedules looked at per pass.
const DUE_PER_PASS: u32 = 200;

/// A schedule to create.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub agent: Slug,
    pub cron: String,
    pub timezone: String,
    pub input: Value,
    pub enabled: bool,
    pub overlap: ScheduleOverlap,
    pub catchup: ScheduleCatchup,
    pub metadata: Metadata,
}

/// A change to a schedule; `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct ScheduleChanges {
    pub agent: Option<Slug>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub input: Option<Value>,
    pub enabled: Option<bool>,
    pub overlap: Option<ScheduleOverlap>,
    pub catchup: Option<ScheduleCatchup>,
    pub metadata: Option<Metadata>,
}

fn check_input(input: &Value) -> Result<()> {
    let size = input.to_string().len();
    if size > MAX_INPUT_BYTES {
        return Err(Invalid::ScheduleInputTooLarge { size, max: MAX_INPUT_BYTES }.into());
    }
    Ok(())
}

/// The first occurrence after now, refused for a pattern that never matches.
fn first_after_now(cron: &CronSchedule, pattern: &str) -> Result<Timestamp> {
    cron.next_after(Timestamp::now()).ok_or_else(|| Invalid::CronNeverRuns { cron: pattern.to_owned() }.into())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Control {
    pub async fn schedule_create(&self, ctx: &Ctx<Invoke>, spec: ScheduleSpec) -> Result<Schedule> {
        let cron = CronSchedule::parse(&spec.cron, &spec.timezone)?;
        check_input(&spec.input)?;
        let next = first_after_now(&cron, &spec.cron)?;
        // The agent must exist now; whether it can run is checked at each occurrence.
        self.store.agent_get(ctx.store_scope(), &spec.agent).await?;
        let fields = ScheduleFields {
            agent: spec.agent,
            cron: spec.cron.trim().to_owned(),
            timezone: spec.timezone.trim().to_owned(),
            input: spec.input,
            enabled: spec.enabled,
            overlap: spec.overlap,
            catchup: spec.catchup,
            metadata: spec.metadata.into_inner(),
            next_run_at: spec.enabled.then_some(next),
        };
        let schedule = self.store.schedule_create(ctx.store_scope(), &fields).await?;
        ctx.span().in_scope(|| tracing::info!(schedule_id = %schedule.id, "schedule created"));
        Ok(schedule)
    }

    pub async fn schedule_get(&self, ctx: &Ctx<Read>, id: &ScheduleId) -> Result<Schedule> {
        Ok(self.store.schedule_get(ctx.store_scope(), id).await?)
    }

    pub async fn schedules_list(&self, ctx: &Ctx<Read>, page: &PageRequest<ScheduleId>) -> Result<Page<Schedule>> {
        Ok(self.store.schedules_list(ctx.store_scope(), page).await?)
    }

    /// Changes a schedule. A new pattern or zone, or resuming a paused schedule, starts
    /// from the first occurrence after now (a paused schedule catches nothing up);
    /// pausing clears `next_run_at`.
    pub async fn schedule_update(
        &self,
        ctx: &Ctx<Invoke>,
        id: &ScheduleId,
        changes: ScheduleChanges,
    ) -> Result<Schedule> {
        let scope = ctx.store_scope();
        let current = self.store.schedule_get(scope, id).await?;
        let mut changed = Vec::new();
        let mut note = |given: bool, name: &'static str| {
            if given {
                changed.push(name);
            }
        };
        note(changes.agent.is_some(), "agent");
        note(changes.cron.is_some(), "cron");
        note(changes.timezone.is_some(), "timezone");
        note(changes.input.is_some(), "input");
        note(changes.enabled.is_some(), "enabled");
        note(changes.overlap.is_some(), "overlap");
        note(changes.catchup.is_some(), "catchup");
        note(changes.metadata.is_some(), "metadata");
        let cron = changes.cron.map(|c| c.trim().to_owned()).unwrap_or(current.cron.clone());
        let timezone = changes.timezone.map(|t| t.trim().to_owned()).unwrap_or(current.timezone.clone());
        let parsed = CronSchedule::parse(&cron, &timezone)?;
        let enabled = changes.enabled.unwrap_or(current.enabled);
        let input = changes.input.unwrap_or(current.input);
        check_input(&input)?;
        if let Some(agent) = &changes.agent {
            self.store.agent_get(scope, agent).await?;
        }
        let restart = cron != current.cron || timezone != current.timezone || !current.enabled;
        let next_run_at = match (enabled, current.next_run_at) {
            (false, _) => None,
            (true, Some(next)) if !restart => Some(next),
            (true, _) => Some(first_after_now(&parsed, &cron)?),
        };
        let fields = ScheduleFields {
            agent: changes.agent.unwrap_or(current.agent),
            cron,
            timezone,
            input,
            enabled,
            overlap: changes.overlap.unwrap_or(current.overlap),
            catchup: changes.catchup.unwrap_or(current.catchup),
            metadata: changes.metadata.map_or(current.metadata, Metadata::into_inner),
            next_run_at,
        };
        Ok(self.store.schedule_update(scope, id, &fields, &changed).await?)
    }

    /// Deletes a schedule; the invocations it made stay, naming it.
    pub async fn schedule_delete(&self, ctx: &Ctx<Invoke>, id: &ScheduleId) -> Result<()> {
        self.store.schedule_delete(ctx.store_scope(), id).await?;
        ctx.span().in_scope(|| tracing::info!(schedule_id = %id, "schedule deleted"));
        Ok(())
    }

    /// Runs the schedule now, paused or not and whatever its `overlap`, as the caller:
    /// the invocation names the schedule, and now as its `scheduled_at`.
    pub async fn schedule_trigger(&self, ctx: &Ctx<Invoke>, id: &ScheduleId) -> Result<Invocation> {
        let schedule = self.store.schedule_get(ctx.store_scope(), id).await?;
        let run = ScheduledRun { schedule_id: id.clone(), scheduled_at: Timestamp::now(), claimed: false };
        let spec = InvokeSpec { input: schedule.input, ..InvokeSpec::default() };
        let accepted = self.invoke_for(ctx, &schedule.agent, spec, None, Some(run)).await?;
        self.store.schedule_triggered(ctx.store_scope(), id, &accepted.invocation.id).await?;
        Ok(accepted.invocation)
    }

    /// One pass of the schedules reconciler: claims the due occurrences of every tenant's
    /// schedules and runs them, then runs any claimed occurrence whose claimer died before
    /// its invoke. Returns how many invocations it made.
    pub async fn run_due_schedules(&self) -> Result<u64> {
        let now = Timestamp::now();
        let mut made = 0;
        for due in self.store.schedules_due_unscoped(now, DUE_PER_PASS).await? {
            let id = due.schedule.id.clone();
            match self.claim_due(due, now).await {
                Ok(n) => made += n,
                Err(err) => {
                    tracing::warn!(schedule_id = %id, error = ?err, "schedule pass failed; the next one retries")
                }
            }
        }
        let orphaned = Timestamp::from_unix_ms(now.unix_ms() - ms(ORPHAN_AFTER));
        for pending in self.store.schedule_occurrences_pending_unscoped(orphaned, DUE_PER_PASS).await? {
            let scope = automation_scope(&pending.tenant_id, &pending.schedule_id);
            if !self.store.schedule_occurrence_retake(&scope, &pending).await? {
                continue;
            }
            let schedule = match self.store.schedule_get(&scope, &pending.schedule_id).await {
                Ok(schedule) => schedule,
                Err(StoreError::NotFound(_)) => continue,
                Err(err) => return Err(err.into()),
            };
            if self.fire(&pending.tenant_id, &schedule, pending.scheduled_at).await? {
                made += 1;
            }
        }
        Ok(made)
    }

    /// Deletes the rows of occurrences settled more than a day ago.
    pub async fn prune_schedule_occurrences(&self) -> Result<u64> {
        let before = Timestamp::from_unix_ms(Timestamp::now().unix_ms() - ms(OCCURRENCES_KEPT));
        Ok(self.store.schedule_occurrences_prune_unscoped(before).await?)
    }

    /// Claims what is due of one schedule under its `catchup` policy and runs it.
    async fn claim_due(&self, due: DueSchedule, now: Timestamp) -> Result<u64> {
        let DueSchedule { tenant_id, schedule } = due;
        let Some(seen) = schedule.next_run_at else { return Ok(0) };
        let scope = automation_scope(&tenant_id, &schedule.id);
        let cron = match CronSchedule::parse(&schedule.cron, &schedule.timezone) {
            Ok(cron) => cron,
            Err(err) => {
                // Stored values were checked when written; should one not parse (a zone
                // removed from the database), the schedule stops rather than spin.
                let why = format!("the schedule cannot run: {err}");
                self.store.schedule_claim(&scope, &schedule.id, seen, None, &[], Some((seen, &why))).await?;
                return Ok(0);
            }
        };
        let next = cron.next_after(now);
        // Newest first.
        let found = cron.due(seen, now, CATCHUP_ALL_CAP);
        let (run, skip): (Vec<Timestamp>, Option<(Timestamp, String)>) = match (schedule.catchup, found.first()) {
            (_, None) => (Vec::new(), None),
            (ScheduleCatchup::All, Some(_)) => (found.iter().rev().copied().collect(), None),
            (ScheduleCatchup::Latest, Some(latest)) => (vec![*latest], None),
            (ScheduleCatchup::Skip, Some(latest)) if now.unix_ms() - latest.unix_ms() <= ms(SKIP_GRACE) => {
                (vec![*latest], None)
            }
            (ScheduleCatchup::Skip, Some(latest)) => {
                let why = format!("missed: {} occurrence(s) up to {latest} skipped (catchup = skip)", found.len());
                (Vec::new(), Some((*latest, why)))
            }
        };
        let skip = skip.as_ref().map(|(at, why)| (*at, why.as_str()));
        let Some(claimed) = self.store.schedule_claim(&scope, &schedule.id, seen, next, &run, skip).await? else {
            return Ok(0);
        };
        let mut made = 0;
        for at in claimed {
            if self.fire(&tenant_id, &schedule, at).await? {
                made += 1;
            }
        }
        Ok(made)
    }

    /// Makes the invocation of one claimed occurrence, as the schedule, and records what
    /// became of it. `Ok(false)`: it was skipped or refused (recorded), or another
    /// replica made it. A fault of the platform is returned and leaves the occurrence
    /// claimed, for [`ORPHAN_AFTER`] to retry.
    async fn fire(&self, tenant_id: &TenantId, schedule: &Schedule, at: Timestamp) -> Result<bool> {
        let scope = automation_scope(tenant_id, &schedule.id);
        let outcome = match self.invoke_occurrence(tenant_id, schedule, at, &scope).await {
            Ok(outcome) => outcome,
            Err(ControlError::Conflict(Conflict::OccurrenceTaken)) => return Ok(false),
            Err(err @ ControlError::Internal(_)) => return Err(err),
            Err(refused) => OccurrenceOutcome::Refused(refused.to_string()),
        };
        let made = matches!(outcome, OccurrenceOutcome::Invoked(_));
        match &outcome {
            OccurrenceOutcome::Invoked(id) => {
                tracing::info!(schedule_id = %schedule.id, scheduled_at = %at, invocation_id = %id, "schedule ran")
            }
            OccurrenceOutcome::Skipped(why) | OccurrenceOutcome::Refused(why) => {
                tracing::info!(schedule_id = %schedule.id, scheduled_at = %at, why, "schedule did not run")
            }
        }
        self.store.schedule_occurrence_done(&scope, &schedule.id, at, &outcome).await?;
        Ok(made)
    }

    async fn invoke_occurrence(
        &self,
        tenant_id: &TenantId,
        schedule: &Schedule,
        at: Timestamp,
        scope: &TenantScope,
    ) -> Result<OccurrenceOutcome> {
        if schedule.overlap == ScheduleOverlap::Skip
            && let Some(going) = self.store.schedule_run_going(scope, &schedule.id).await?
        {
            return Ok(OccurrenceOutcome::Skipped(format!(
                "overlap: invocation {going} of this schedule is still going (overlap = skip)"
            )));
        }
        let actor = Actor::Schedule { id: schedule.id.clone() };
        let ctx = self.automation_ctx::<Invoke>(tenant_id, actor, origin()).await?;
        let run = ScheduledRun { schedule_id: schedule.id.clone(), scheduled_at: at, claimed: true };
        let spec = InvokeSpec { input: schedule.input.clone(), ..InvokeSpec::default() };
        let accepted = self.invoke_for(&ctx, &schedule.agent, spec, None, Some(run)).await?;
        Ok(OccurrenceOutcome::Invoked(accepted.invocation.id))
    }
}

/// A request id of its own for each piece of work a schedule does, with no client.
fn origin() -> RequestOrigin {
    RequestOrigin::new(RequestId::generate(), None)
}

/// The store scope the schedule itself acts in (for its own bookkeeping).
fn automation_scope(tenant_id: &TenantId, id: &ScheduleId) -> TenantScope {
    TenantScope::from_origin(tenant_id.clone(), Actor::Schedule { id: id.clone() }, &origin())
}
