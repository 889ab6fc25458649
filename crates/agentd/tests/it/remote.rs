//! Remote workers: `agentd worker` pulls runs over HTTP with a worker token, holds no
//! database credentials, and a worker that dies mid-run loses nothing.

use std::time::Duration;

use agentd_api_types::{InvocationStatus, InvokeRequest};
use agentd_client::InvokeOptions;
use agentd_test_support::{Backend, on_both_stores};
use serde_json::json;

use crate::harness::{TestApp, invoke_and_wait, log_messages, poll_invocation};

on_both_stores!(a_remote_worker_runs_invocations_for_a_server_without_workers);
async fn a_remote_worker_runs_invocations_for_a_server_without_workers(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "0")]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_example(&alpha, "python-echo").await;
    app.deploy_example(&alpha, "shell-wc").await;
    let token = app.create_worker_token();
    assert!(token.starts_with("agw_"));
    let _worker = app.spawn_worker(&token, "one");
    let echo = invoke_and_wait(&alpha, "python-echo", json!({"via": "http"})).await;
    assert_eq!(
        (echo.status, echo.output.clone()),
        (InvocationStatus::Succeeded, Some(json!({"echo": {"via": "http"}}))),
        "{echo:?}"
    );
    assert!(log_messages(&alpha, echo.id.as_str()).await.iter().any(|m| m.contains("echoing")));
    let wc = invoke_and_wait(&alpha, "shell-wc", json!({})).await;
    assert_eq!(wc.status, InvocationStatus::Succeeded);
}

on_both_stores!(a_bad_worker_token_gets_401_and_an_api_key_is_not_a_worker_token);
async fn a_bad_worker_token_gets_401_and_an_api_key_is_not_a_worker_token(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "0")]).await;
    let alpha = app.signup("alpha").await;
    let body = json!({"worker": "w", "lease_s": 5, "wait_s": 0});
    for token in ["agw_forged", alpha.key.as_str()] {
        let response = app
            .client()
            .with_token(token)
            .request(reqwest::Method::POST, "/v1/worker/claim")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{token}");
    }
}

on_both_stores!(a_remote_worker_killed_mid_run_loses_nothing_and_cancel_reaches_remote_runs);
async fn a_remote_worker_killed_mid_run_loses_nothing_and_cancel_reaches_remote_runs(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "0"), ("AGENTD_LEASE_S", "2")]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "slow", "echo started\nsleep 2\nprintf '{\"type\":\"output\",\"data\":\"done\"}\\n' >&3")
        .await;
    let token = app.create_worker_token();
    let first = app.spawn_worker(&token, "first");
    let request = InvokeRequest { max_attempts: Some(2), ..Default::default() };
    let accepted = alpha.client.invoke("slow", &request, &InvokeOptions::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !log_messages(&alpha, accepted.id.as_str()).await.iter().any(|m| m == "started") {
        assert!(tokio::time::Instant::now() < deadline, "the remote worker never started the run");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    first.crash();
    let _second = app.spawn_worker(&token, "second");
    let done = poll_invocation(&alpha, accepted.id.as_str(), Duration::from_secs(60), |i| i.status.is_terminal()).await;
    assert_eq!((done.status, done.attempt, done.output), (InvocationStatus::Succeeded, 2, Some(json!("done"))));

    app.deploy_script(&alpha, "sleeper", "echo started\nsleep 300").await;
    let sleeper = alpha.client.invoke("sleeper", &InvokeRequest::default(), &InvokeOptions::default()).await.unwrap();
    while !log_messages(&alpha, sleeper.id.as_str()).await.iter().any(|m| m == "started") {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let cancelled = alpha.client.invocation_cancel(sleeper.id.as_str()).await.unwrap();
    assert_eq!(cancelled.status, InvocationStatus::Cancelled, "{cancelled:?}");
}
