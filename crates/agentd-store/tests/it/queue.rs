//! The queue under retries and under concurrent claimers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agentd_core::{Fault, InvocationError, InvocationStatus, PageBounds, PageRequest, TenantLimits, Timestamp, Usage};
use agentd_store::{Completion, InvocationFilter, RetryPlan, Store};

use agentd_test_support::{Backend, on_both_stores};

use super::{agent_with_version, claim, new_invocation, open, tenant, tenant_with_limits};

fn failure() -> Completion {
    Completion {
        status: InvocationStatus::Failed,
        output: None,
        error: Some(InvocationError { code: "exit".into(), message: "exit status 3".into() }),
        usage: Usage::default(),
        fault: Fault::Agent,
        interrupt: None,
        state: None,
    }
}

/// Retries due `delay_ms` from now; no recoveries.
fn retry_in(delay_ms: i64) -> RetryPlan {
    RetryPlan { retry_at: Timestamp::now().plus_ms(delay_ms), max_recoveries: 0 }
}

on_both_stores!(a_failed_run_is_retried_until_its_attempts_run_out_and_each_end_is_an_event);
async fn a_failed_run_is_retried_until_its_attempts_run_out_and_each_end_is_an_event(backend: Backend) {
    let (store, _db) = open(backend).await;
    let ctx = tenant(&store, "alpha").await;
    let (agent, version) = agent_with_version(&store, &ctx, "echo").await;
    // Two attempts.
    let inv =
        store.invocation_enqueue(&ctx, &agent, &version, new_invocation(0, None), 100).await.unwrap().into_invocation();
    let later = retry_in(600_000);
    let first = claim(&store, "w", Duration::from_secs(30)).await.unwrap();
    assert!(store.queue_complete(&first.lease(), failure(), &later).await.unwrap());
    let retrying = store.invocation_get(&ctx, &inv.id).await.unwrap();
    assert_eq!(retrying.status, InvocationStatus::Retrying);
    assert!(claim(&store, "w", Duration::from_secs(30)).await.is_none(), "not before its time");
    let due = store.queue_next_wakeup_unscoped(Timestamp::now()).await.unwrap().unwrap();
    assert!(due.unix_ms() >= agentd_core::Timestamp::now().unix_ms() + 599_000);

    let inv2 =
        store.invocation_enqueue(&ctx, &agent, &version, new_invocation(0, None), 100).await.unwrap().into_invocation();
    let now = retry_in(0);
    let run = claim(&store, "w", Duration::from_secs(30)).await.unwrap();
    assert_eq!((run.invocation_id.clone(), run.attempt), (inv2.id.clone(), 1));
    assert!(store.queue_complete(&run.lease(), failure(), &now).await.unwrap());
    let run = claim(&store, "w", Duration::from_secs(30)).await.unwrap();
    assert_eq!((run.invocation_id.clone(), run.attempt, run.next_seq), (inv2.id.clone(), 2, 2));
    assert!(store.queue_complete(&run.lease(), failure(), &now).await.unwrap());
    assert!(!store.queue_complete(&run.lease(), failure(), &now).await.unwrap(), "completed once");
    let failed = store.invocation_get(&ctx, &inv2.id).await.unwrap();
    assert_eq!((failed.status, failed.attempt), (InvocationStatus::Failed, 2));
    assert!(failed.finished_at.is_some());

    let events =
        store.events_list(&ctx, &inv2.id, &PageRequest::after_value(None, PageBounds::EVENTS)).await.unwrap().data;
    let ends: Vec<_> = events.iter().map(|e| (e.seq, e.message.clone().unwrap(), e.data.clone().unwrap())).collect();
    assert_eq!(
        ends,
        [
            (1, "retrying: exit status 3".to_owned(), serde_json::json!({"status": "retrying"})),
            (2, "failed: exit status 3".to_owned(), serde_json::json!({"status": "failed"})),
        ]
    );
}

on_both_stores!(concurrent_claimers_never_exceed_a_tenants_concurrency_limit);
async fn concurrent_claimers_never_exceed_a_tenants_concurrency_limit(backend: Backend) {
    const LIMIT: usize = 2;
    const RUNS: usize = 40;
    let (store, _db) = open(backend).await;
    let limits = TenantLimits { max_concurrent_invocations: LIMIT as u32, ..TenantLimits::default() };
    let ctx = tenant_with_limits(&store, "alpha", limits).await;
    let (agent, version) = agent_with_version(&store, &ctx, "echo").await;
    for _ in 0..RUNS {
        store.invocation_enqueue(&ctx, &agent, &version, new_invocation(0, None), 100).await.unwrap();
    }
    let done = Arc::new(AtomicUsize::new(0));
    let mut claimers = tokio::task::JoinSet::new();
    for claimer in 0..4 {
        let (store, ctx, done) = (store.clone(), ctx.clone(), done.clone());
        claimers.spawn(async move {
            while done.load(Ordering::SeqCst) < RUNS {
                let Some(run) = claim(&store, &format!("w{claimer}"), Duration::from_secs(30)).await else {
                    tokio::task::yield_now().await;
                    continue;
                };
                let running = running_now(&store, &ctx).await;
                assert!(running <= LIMIT, "{running} runs running, limit {LIMIT}");
                let ok = Completion {
                    status: InvocationStatus::Succeeded,
                    output: None,
                    error: None,
                    usage: Usage::default(),
                    fault: Fault::Agent,
                    interrupt: None,
                    state: None,
                };
                assert!(store.queue_complete(&run.lease(), ok, &retry_in(1000)).await.unwrap());
                done.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(claimer) = claimers.join_next().await {
            claimer.unwrap();
        }
    })
    .await
    .unwrap();
    assert_eq!(done.load(Ordering::SeqCst), RUNS);
    assert_eq!(running_now(&store, &ctx).await, 0);
}

async fn running_now(store: &Store, ctx: &agentd_core::TenantScope) -> usize {
    let filter = InvocationFilter { status: Some(InvocationStatus::Running), ..Default::default() };
    let page = PageRequest::parse(Some(100), None, PageBounds::RESOURCES).unwrap();
    store.invocations_list(ctx, &filter, &page).await.unwrap().data.len()
}
