//! Schedules' occurrences: a claim moves `next_run_at` only from the value read, so of
//! two claimers that read the same schedule one alone wins; a claimed occurrence gets one
//! invocation at most, even when its invoke is retried.

use agentd_core::{ScheduleCatchup, ScheduleOverlap, Slug, Timestamp};
use agentd_store::{ScheduleFields, ScheduledRun, StoreError};

use agentd_test_support::{Backend, on_both_stores};

use super::{agent_with_version, new_invocation, open, tenant};

on_both_stores!(one_claimer_wins_an_occurrence_and_it_gets_one_invocation);
async fn one_claimer_wins_an_occurrence_and_it_gets_one_invocation(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "clock").await;
    let (agent, version) = agent_with_version(&store, &ctx, "tick").await;
    let at = Timestamp::from_unix_ms(Timestamp::now().unix_ms() / 1000 * 1000 - 1000);
    let fields = ScheduleFields {
        agent: Slug::parse("tick").unwrap(),
        cron: "* * * * * *".into(),
        timezone: "UTC".into(),
        input: serde_json::json!({}),
        enabled: true,
        overlap: ScheduleOverlap::Allow,
        catchup: ScheduleCatchup::Latest,
        metadata: serde_json::json!({}),
        next_run_at: Some(at),
    };
    let schedule = store.schedule_create(&ctx, &fields).await.unwrap();
    let due = store.schedules_due_unscoped(Timestamp::now(), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].tenant_id, *ctx.tenant_id());

    let next = Some(at.plus_ms(60_000));
    let occurrences = [at];
    let (a, b) = tokio::join!(
        store.schedule_claim(&ctx, &schedule.id, at, next, &occurrences, None),
        store.schedule_claim(&ctx, &schedule.id, at, next, &occurrences, None),
    );
    let won: Vec<Vec<Timestamp>> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(won.len(), 1, "both claimers won");
    assert_eq!(won[0].len(), 1);
    assert!(store.schedules_due_unscoped(Timestamp::now(), 10).await.unwrap().is_empty());

    // A claim whose claimer died is retaken by one retrier alone, and then waits again.
    let soon = Timestamp::now().plus_ms(1000);
    let orphans = store.schedule_occurrences_pending_unscoped(soon, 10).await.unwrap();
    assert_eq!(orphans.len(), 1);
    let (a, b) = tokio::join!(
        store.schedule_occurrence_retake(&ctx, &orphans[0]),
        store.schedule_occurrence_retake(&ctx, &orphans[0]),
    );
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|t| **t).count(), 1, "both retook it");

    let run = ScheduledRun { schedule_id: schedule.id.clone(), scheduled_at: at, claimed: true };
    let mut first = new_invocation(0, None);
    first.schedule = Some(run.clone());
    let made = store.invocation_enqueue(&ctx, &agent, &version, first, 100).await.unwrap().into_invocation();
    assert_eq!(made.schedule_id.as_ref(), Some(&schedule.id));
    assert_eq!(made.scheduled_at.map(Timestamp::unix_ms), Some(at.unix_ms()));
    let mut again = new_invocation(0, None);
    again.schedule = Some(run);
    let refused = store.invocation_enqueue(&ctx, &agent, &version, again, 100).await;
    assert!(matches!(refused, Err(StoreError::Conflict(agentd_store::Conflict::OccurrenceTaken))), "{refused:?}");
    // Nothing is left for the orphan sweep.
    let pending = store.schedule_occurrences_pending_unscoped(Timestamp::now().plus_ms(1000), 10).await.unwrap();
    assert!(pending.is_empty());
    // A settled occurrence's row goes after a day; here, with a cut-off in the future.
    assert_eq!(store.schedule_occurrences_prune_unscoped(Timestamp::now().plus_ms(1000)).await.unwrap(), 1);
}
