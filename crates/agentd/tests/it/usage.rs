//! Usage: the meter sums what the sandbox accounted for each finished run, per agent and
//! day, and shows nothing of another tenant's.

use agentd_api_types::{Invocation, InvocationStatus};
use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;
use serde_json::json;

use crate::harness::{TestApp, invoke_and_wait};

on_both_stores!(usage_sums_match_the_runs_made);
async fn usage_sums_match_the_runs_made(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("metered").await;
    let other = app.signup("unmetered").await;
    app.deploy_script(
        &tenant,
        "report",
        "cat > /dev/null; printf 'quarterly numbers\\n' > /outputs/report.txt; echo done",
    )
    .await;
    app.deploy_script(&tenant, "fails", "echo going; exit 3").await;
    let mut runs: Vec<Invocation> = Vec::new();
    for n in 0..3 {
        runs.push(invoke_and_wait(&tenant, "report", json!({"n": n})).await);
    }
    runs.push(invoke_and_wait(&tenant, "fails", json!({})).await);
    assert_eq!(runs.iter().filter(|r| r.status == InvocationStatus::Succeeded).count(), 3);
    assert_eq!(runs[3].status, InvocationStatus::Failed);
    // Re-read: the figures are final once the invocation is.
    let mut final_runs = Vec::new();
    for run in &runs {
        final_runs.push(tenant.client.invocation_get(run.id.as_str()).await.unwrap());
    }
    let mut artifact_bytes = 0;
    for run in &final_runs {
        artifact_bytes +=
            tenant.client.artifacts_list(run.id.as_str()).await.unwrap().data.iter().map(|a| a.size).sum::<u64>();
    }
    assert!(artifact_bytes > 0, "the agent leaves a report");

    let report = tenant.client.usage(None, None, None).await.unwrap();
    let totals = &report.totals;
    assert_eq!((totals.invocations, totals.succeeded, totals.failed), (4, 3, 1), "{report:?}");
    assert_eq!(totals.wall_ms, final_runs.iter().map(|r| r.usage.wall_ms).sum::<u64>());
    assert_eq!(totals.cpu_ms, final_runs.iter().map(|r| r.usage.cpu_ms).sum::<u64>());
    assert_eq!(totals.log_bytes, final_runs.iter().map(|r| r.usage.log_bytes).sum::<u64>());
    assert_eq!(totals.peak_memory_bytes, final_runs.iter().map(|r| r.usage.peak_memory_bytes).max().unwrap_or(0));
    assert_eq!(totals.artifact_bytes, artifact_bytes);
    assert!(totals.wall_ms > 0 && totals.peak_memory_bytes > 0, "{totals:?}");
    let agents: Vec<&str> = report.data.iter().map(|d| d.agent.as_str()).collect();
    assert_eq!(agents, ["fails", "report"], "one row per agent and day");

    let one = tenant.client.usage(None, None, Some("fails")).await.unwrap();
    assert_eq!((one.totals.invocations, one.totals.failed, one.data.len()), (1, 1, 1));
    let today = report.to.to_string();
    let past = tenant.client.usage(Some("2020-01-01"), Some("2020-01-31"), None).await.unwrap();
    assert_eq!((past.totals.invocations, past.data.len()), (0, 0), "{today}");
    assert_eq!(other.client.usage(None, None, None).await.unwrap().totals.invocations, 0);

    for bad in [
        "from=yesterday",
        "from=2026-02-30",
        "from=2020-01-01&to=2026-01-01",
        "from=2026-02-02&to=2026-02-01",
        "agent=Bad%20Slug",
        "days=3",
    ] {
        let response = tenant.client.request(Method::GET, &format!("/v1/usage?{bad}")).send().await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
}
