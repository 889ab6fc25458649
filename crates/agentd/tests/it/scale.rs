//! The scaled-out topology on PostgreSQL: two `serve` replicas on one database, remote
//! workers pulling from both, 1,000 invocations across three tenants, and a worker and
//! a replica killed with SIGKILL mid-run. Every invocation ends, none is lost, none
//! succeeds twice, and the claim order honours fairness and priority.

use std::collections::HashMap;
use std::time::Duration;

use agentd_api_types::{EventKind, Invocation, InvocationStatus, InvokeRequest};
use agentd_client::{InvocationFilter, InvokeOptions};
use agentd_test_support::{Backend, on_postgres};
use futures_util::StreamExt;

use crate::harness::{TestApp, TestTenant};

const SCRIPT: &str = "printf '{\"type\":\"output\",\"data\":\"ok\"}\\n' >&3";

/// Submits `count` invocations of `slug` with `priority`, 16 at a time.
async fn submit(tenant: &TestTenant, slug: &str, count: usize, priority: u8) -> Vec<Invocation> {
    let request = InvokeRequest { priority: Some(priority), max_attempts: Some(3), ..Default::default() };
    let options = InvokeOptions::default();
    let calls = (0..count).map(|_| tenant.client.invoke(slug, &request, &options));
    futures_util::stream::iter(calls).buffer_unordered(16).map(|r| r.expect("invoke")).collect().await
}

async fn all_invocations(tenant: &TestTenant) -> Vec<Invocation> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let filter = InvocationFilter { limit: Some(200), cursor: cursor.clone(), ..Default::default() };
        let page = tenant.client.invocations_list(&filter).await.expect("list");
        all.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

fn started_ms(invocation: &Invocation) -> i64 {
    invocation.started_at.map(|t| t.unix_ms()).unwrap_or(i64::MAX)
}

on_postgres!(two_replicas_and_remote_workers_survive_kills_and_lose_no_invocation);
async fn two_replicas_and_remote_workers_survive_kills_and_lose_no_invocation() {
    let app = TestApp::spawn_with(Backend::Postgres, &[("AGENTD_WORKER_SLOTS", "0"), ("AGENTD_LEASE_S", "2")]).await;
    let mut replica = app.replica().await;
    let tenants = [app.signup("alpha").await, app.signup("beta").await, app.signup("gamma").await];
    for tenant in &tenants {
        app.deploy_script(tenant, "tiny", SCRIPT).await;
    }
    // Alpha's backlog first (with a late burst of urgent runs), then beta, then gamma.
    let via_replica = |t: &TestTenant| TestTenant {
        client: replica.client().with_token(t.key.clone()),
        key: t.key.clone(),
        signup: t.signup.clone(),
    };
    let mut expected = 0;
    expected += submit(&tenants[0], "tiny", 550, 0).await.len();
    let urgent = submit(&via_replica(&tenants[0]), "tiny", 50, 9).await;
    expected += urgent.len();
    expected += submit(&via_replica(&tenants[1]), "tiny", 300, 0).await.len();
    expected += submit(&tenants[2], "tiny", 100, 0).await.len();
    assert_eq!(expected, 1000);

    let token = app.create_worker_token();
    let doomed_worker = app.spawn_worker(&token, "w1");
    let _steady = app.spawn_worker(&token, "w2");
    let _orphan = replica.spawn_worker(&token, "w3");

    // Kill one worker and one replica once the run is well under way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let done = all_invocations(&tenants[1]).await.iter().filter(|i| i.status.is_terminal()).count();
        if done >= 30 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    doomed_worker.crash();
    replica.crash().await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    // (index of the owning tenant, invocation)
    let mut everything: Vec<(usize, Invocation)>;
    loop {
        everything = Vec::new();
        for (n, tenant) in tenants.iter().enumerate() {
            everything.extend(all_invocations(tenant).await.into_iter().map(|i| (n, i)));
        }
        if everything.iter().all(|(_, i)| i.status.is_terminal()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not every invocation ended within 300 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(everything.len(), 1000, "no invocation is lost");
    let by_status = everything.iter().fold(HashMap::new(), |mut m, (_, i)| {
        *m.entry(i.status).or_insert(0) += 1;
        m
    });
    assert_eq!(by_status.get(&InvocationStatus::Succeeded), Some(&1000), "{by_status:?}");

    // None succeeded twice: exactly one `succeeded` status event per invocation, and
    // an invocation that ran more than once shows it in its attempt count.
    for (n, invocation) in &everything {
        let events = tenants[*n].client.invocation_logs(invocation.id.as_str(), None, None).await.expect("logs").data;
        let outputs = events.iter().filter(|e| e.kind == EventKind::Output).count();
        let succeeded = events
            .iter()
            .filter(|e| e.kind == EventKind::Status && e.data.as_ref().is_some_and(|d| d["status"] == "succeeded"))
            .count();
        assert_eq!(succeeded, 1, "{invocation:?}");
        assert!(outputs as u32 <= invocation.attempt, "more outputs than attempts: {invocation:?}");
    }

    // Fairness: gamma's small batch, submitted last, started among the first runs.
    let mut starts: Vec<i64> = everything.iter().map(|(_, i)| started_ms(i)).collect();
    starts.sort_unstable();
    let gamma_first = everything.iter().filter(|(n, _)| *n == 2).map(|(_, i)| started_ms(i)).min().unwrap_or(i64::MAX);
    assert!(gamma_first <= starts[20], "gamma waited behind the others' backlog");
    // Priority: alpha's urgent runs, submitted after its backlog, all started before
    // most of that backlog.
    let urgent_last = urgent
        .iter()
        .map(|u| everything.iter().find(|(_, i)| i.id == u.id).map_or(i64::MAX, |(_, i)| started_ms(i)))
        .max();
    let mut alpha_normal: Vec<i64> =
        everything.iter().filter(|(n, i)| *n == 0 && i.priority == 0).map(|(_, i)| started_ms(i)).collect();
    alpha_normal.sort_unstable();
    assert!(urgent_last.unwrap_or(i64::MAX) <= alpha_normal[alpha_normal.len() / 2], "urgent runs waited");
}
