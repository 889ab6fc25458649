//! What happens to runs: timeouts and cancellation kill the whole process tree, the
//! sandbox has no network, and a restart of the server loses nothing.

use std::time::Duration;

use agentd_api_types::{InvocationStatus, InvokeRequest};
use agentd_client::{InvocationFilter, InvokeOptions};
use agentd_test_support::{Backend, on_both_stores};
use serde_json::json;

use crate::harness::{TestApp, TestTenant, invoke_and_wait, log_messages, poll_invocation};

/// A shell agent that starts a background sleeper and a foreground sleeper, both
/// carrying `marker` in their command line so the host can find them.
async fn deploy_sleeper(app: &TestApp, tenant: &TestTenant, marker: &str) {
    let sleep = format!("/usr/bin/python3 -c 'import time; time.sleep(300)' {marker}");
    let script = format!("{sleep} &\necho started\n{sleep}");
    app.deploy_script(tenant, "sleeper", &script).await;
}

fn processes_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(marker))
        .count()
}

async fn wait_until_started(tenant: &TestTenant, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !log_messages(tenant, id).await.iter().any(|m| m == "started") {
        assert!(tokio::time::Instant::now() < deadline, "the agent never started");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn wait_for_no_processes(marker: &str) -> usize {
    for _ in 0..200 {
        if processes_with(marker) == 0 {
            return 0;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    processes_with(marker)
}

on_both_stores!(cancelling_a_running_invocation_kills_its_process_tree);
async fn cancelling_a_running_invocation_kills_its_process_tree(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let marker = format!("marker-{}", uuid::Uuid::now_v7().simple());
    deploy_sleeper(&app, &alpha, &marker).await;
    let accepted = alpha.client.invoke("sleeper", &InvokeRequest::default(), &InvokeOptions::default()).await.unwrap();
    wait_until_started(&alpha, accepted.id.as_str()).await;
    // `started` is printed between the two sleepers' starts: poll for the second one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while processes_with(&marker) < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(processes_with(&marker), 2, "both sleepers run before the cancel");
    let cancelled = alpha.client.invocation_cancel(accepted.id.as_str()).await.unwrap();
    assert_eq!(cancelled.status, InvocationStatus::Cancelled, "{cancelled:?}");
    assert_eq!(cancelled.error.map(|e| e.code), Some("cancelled".to_owned()));
    assert_eq!(wait_for_no_processes(&marker).await, 0, "cancel must kill the whole tree");
    let err = alpha.client.invocation_cancel(accepted.id.as_str()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("invocation_finished")));
}

on_both_stores!(a_cancelled_queued_invocation_never_runs);
async fn a_cancelled_queued_invocation_never_runs(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "1")]).await;
    let alpha = app.signup("alpha").await;
    let marker = format!("marker-{}", uuid::Uuid::now_v7().simple());
    deploy_sleeper(&app, &alpha, &marker).await;
    let busy = alpha.client.invoke("sleeper", &InvokeRequest::default(), &InvokeOptions::default()).await.unwrap();
    wait_until_started(&alpha, busy.id.as_str()).await;
    let waiting = alpha.client.invoke("sleeper", &InvokeRequest::default(), &InvokeOptions::default()).await.unwrap();
    assert_eq!(waiting.status, InvocationStatus::Queued);
    let cancelled = alpha.client.invocation_cancel(waiting.id.as_str()).await.unwrap();
    assert_eq!(cancelled.status, InvocationStatus::Cancelled);
    alpha.client.invocation_cancel(busy.id.as_str()).await.unwrap();
    assert_eq!(wait_for_no_processes(&marker).await, 0);
    let after = alpha.client.invocation_get(waiting.id.as_str()).await.unwrap();
    assert_eq!((after.status, after.attempt, after.started_at), (InvocationStatus::Cancelled, 0, None));
    assert!(log_messages(&alpha, waiting.id.as_str()).await.is_empty(), "it never ran, so it has no events");
}

on_both_stores!(a_run_past_its_timeout_is_timed_out_and_killed);
async fn a_run_past_its_timeout_is_timed_out_and_killed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let marker = format!("marker-{}", uuid::Uuid::now_v7().simple());
    deploy_sleeper(&app, &alpha, &marker).await;
    let request = InvokeRequest { timeout_s: Some(1), ..Default::default() };
    let options = InvokeOptions { wait_s: Some(30), ..Default::default() };
    let done = alpha.client.invoke("sleeper", &request, &options).await.unwrap();
    assert_eq!(done.status, InvocationStatus::TimedOut, "{done:?}");
    assert_eq!(done.error.map(|e| e.code), Some("timeout".to_owned()));
    assert_eq!(wait_for_no_processes(&marker).await, 0);
}

on_both_stores!(an_agent_cannot_reach_the_network_not_even_the_hosts_loopback);
async fn an_agent_cannot_reach_the_network_not_even_the_hosts_loopback(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "/usr/bin/python3 - <<'PY' >&3\nimport json, socket\ns = socket.socket()\ns.settimeout(2)\ntry:\n    s.connect(('127.0.0.1', {port}))\n    r = 'connected'\nexcept OSError as e:\n    r = type(e).__name__\nprint(json.dumps({{'type': 'output', 'data': r}}))\nPY"
    );
    app.deploy_script(&alpha, "prober", &script).await;
    let done = invoke_and_wait(&alpha, "prober", json!({})).await;
    assert_eq!(done.status, InvocationStatus::Succeeded, "{done:?}");
    let result = done.output.unwrap();
    assert_ne!(result, json!("connected"));
    assert!(listener.accept().is_err(), "nothing may arrive at the host's listener");
}

on_both_stores!(a_restart_keeps_every_invocation_and_reruns_the_interrupted_one);
async fn a_restart_keeps_every_invocation_and_reruns_the_interrupted_one(backend: Backend) {
    // No grace: the run in flight is stopped at once and handed back to the queue.
    let mut app = TestApp::spawn_with(backend, &[("AGENTD_SHUTDOWN_GRACE_S", "0")]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_example(&alpha, "shell-wc").await;
    app.deploy_script(
        &alpha,
        "slow",
        "echo started\nsleep 2\nprintf '{\"type\":\"output\",\"data\":\"slow done\"}\\n' >&3",
    )
    .await;
    let mut finished = Vec::new();
    for n in 0..3 {
        finished.push(invoke_and_wait(&alpha, "shell-wc", json!({"n": n})).await);
    }
    let interrupted = alpha.client.invoke("slow", &InvokeRequest::default(), &InvokeOptions::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !log_messages(&alpha, interrupted.id.as_str()).await.iter().any(|m| m == "started") {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    app.restart().await;
    let alpha = TestTenant { client: app.client().with_token(alpha.key.clone()), ..alpha };
    for before in &finished {
        let after = alpha.client.invocation_get(before.id.as_str()).await.unwrap();
        assert_eq!((after.status, after.output.clone()), (before.status, before.output.clone()));
    }
    let rerun =
        poll_invocation(&alpha, interrupted.id.as_str(), Duration::from_secs(60), |i| i.status.is_terminal()).await;
    assert_eq!((rerun.status, rerun.output), (InvocationStatus::Succeeded, Some(json!("slow done"))));
    let all = alpha.client.invocations_list(&InvocationFilter::default()).await.unwrap();
    assert_eq!(all.data.len(), 4);
}

on_both_stores!(a_server_killed_mid_run_loses_no_accepted_invocation);
async fn a_server_killed_mid_run_loses_no_accepted_invocation(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "1"), ("AGENTD_LEASE_S", "2")]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "slow", "echo started\nsleep 2\nprintf '{\"type\":\"output\",\"data\":\"done\"}\\n' >&3")
        .await;
    let request = InvokeRequest { max_attempts: Some(2), ..Default::default() };
    let running = alpha.client.invoke("slow", &request, &InvokeOptions::default()).await.unwrap();
    wait_until_started(&alpha, running.id.as_str()).await;
    let mut queued = Vec::new();
    for _ in 0..3 {
        queued.push(alpha.client.invoke("slow", &request, &InvokeOptions::default()).await.unwrap());
    }
    app.crash().await;
    app.start_again().await;
    let alpha = TestTenant { client: app.client().with_token(alpha.key.clone()), ..alpha };
    let rerun = poll_invocation(&alpha, running.id.as_str(), Duration::from_secs(60), |i| i.status.is_terminal()).await;
    assert_eq!(
        (rerun.status, rerun.attempt),
        (InvocationStatus::Succeeded, 2),
        "the interrupted run is put back once its lease expires: {rerun:?}"
    );
    for accepted in queued {
        let done =
            poll_invocation(&alpha, accepted.id.as_str(), Duration::from_secs(60), |i| i.status.is_terminal()).await;
        assert_eq!((done.status, done.output), (InvocationStatus::Succeeded, Some(json!("done"))));
    }
}

on_both_stores!(an_agent_printing_past_its_output_limit_is_stopped_with_output_limit);
async fn an_agent_printing_past_its_output_limit_is_stopped_with_output_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_LIMITS_LOG_BYTES_PER_INVOCATION", "65536")]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "noisy", "yes 'all work and no play'").await;
    let done = invoke_and_wait(&alpha, "noisy", json!({})).await;
    assert_eq!(done.status, InvocationStatus::Failed, "{done:?}");
    assert_eq!(done.error.map(|e| e.code), Some("output_limit".to_owned()));
    // Bytes read are counted; the read that crosses the cap (at most 64 KiB) is not delivered.
    assert!(done.usage.log_bytes <= 2 * 65536, "{}", done.usage.log_bytes);
    // The worker is healthy afterwards.
    app.deploy_example(&alpha, "shell-wc").await;
    assert_eq!(invoke_and_wait(&alpha, "shell-wc", json!({})).await.status, InvocationStatus::Succeeded);
}

on_both_stores!(an_agent_allocating_past_its_memory_cap_fails_with_memory_limit);
async fn an_agent_allocating_past_its_memory_cap_fails_with_memory_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_LIMITS_MEMORY_MB", "64")]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "hungry", "/usr/bin/python3 -c 'b = bytearray(512 * 1024 * 1024); print(len(b))'").await;
    let done = invoke_and_wait(&alpha, "hungry", json!({})).await;
    assert_eq!(done.status, InvocationStatus::Failed, "{done:?}");
    assert_eq!(done.error.map(|e| e.code), Some("memory_limit".to_owned()));
    app.deploy_example(&alpha, "shell-wc").await;
    let next = invoke_and_wait(&alpha, "shell-wc", json!({})).await;
    assert_eq!(next.status, InvocationStatus::Succeeded, "the worker is healthy afterwards");
    assert!(next.usage.wall_ms > 0);
}

on_both_stores!(a_clean_shutdown_lets_a_run_in_flight_finish_within_the_grace_period);
async fn a_clean_shutdown_lets_a_run_in_flight_finish_within_the_grace_period(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, &[("AGENTD_SHUTDOWN_GRACE_S", "30")]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(
        &alpha,
        "slow",
        "echo started\nsleep 1\nprintf '{\"type\":\"output\",\"data\":\"finished\"}\\n' >&3",
    )
    .await;
    let accepted = alpha.client.invoke("slow", &InvokeRequest::default(), &InvokeOptions::default()).await.unwrap();
    wait_until_started(&alpha, accepted.id.as_str()).await;
    app.restart().await;
    let alpha = TestTenant { client: app.client().with_token(alpha.key.clone()), ..alpha };
    let done = alpha.client.invocation_get(accepted.id.as_str()).await.unwrap();
    assert_eq!((done.status, done.attempt, done.output), (InvocationStatus::Succeeded, 1, Some(json!("finished"))));
}
