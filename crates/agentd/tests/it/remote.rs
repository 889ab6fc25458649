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

/// `agentd worker --server URL --token TOKEN` with stderr captured, as a supervisor sees it.
fn worker_with_stderr(server: &str, token: &str, dir: &std::path::Path) -> std::process::Child {
    std::process::Command::new(crate::harness::bin())
        .args(["worker", "--server", server, "--token", token, "--lease-s", "2", "--log-format", "pretty"])
        .arg("--data-dir")
        .arg(dir)
        .env("AGENTD_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start agentd worker")
}

/// Waits up to a minute for `child` to exit.
async fn exit_of(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn stderr_of(child: std::process::Child) -> String {
    String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned()
}

on_both_stores!(a_worker_whose_token_is_revoked_stops_and_says_why);
async fn a_worker_whose_token_is_revoked_stops_and_says_why(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "0")]).await;
    let made = app.admin(&["workers", "create-token", "--name", "doomed"], &[]);
    assert!(made.status.success(), "{made:?}");
    let token = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let said = String::from_utf8_lossy(&made.stderr).into_owned();
    assert!(said.contains("in the database"), "create-token names its database: {said}");
    let id = said.split_whitespace().find(|w| w.starts_with("wkt_")).unwrap().to_owned();
    let alpha = app.signup("alpha").await;
    app.deploy_example(&alpha, "shell-wc").await;
    let dir = tempfile::tempdir().unwrap();
    let mut worker = worker_with_stderr(&app.base_url, &token, dir.path());
    // It works first, so it is the revocation that stops it.
    let ran = invoke_and_wait(&alpha, "shell-wc", json!({})).await;
    assert_eq!(ran.status, InvocationStatus::Succeeded, "{ran:?}");

    let revoked = app.admin(&["workers", "revoke", &id], &[]);
    assert!(revoked.status.success(), "{revoked:?}");
    let status = exit_of(&mut worker).await;
    assert!(status.is_some_and(|s| !s.success()), "the worker goes on after its token was revoked: {status:?}");
    let log = stderr_of(worker);
    assert!(log.contains("refuses this worker's token"), "{log}");
    let again = app.admin(&["workers", "revoke", &id], &[]);
    assert!(!again.status.success(), "a token is revoked once: {again:?}");
}

#[tokio::test]
async fn a_worker_facing_a_down_server_backs_off_and_says_the_cause_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let mut worker = worker_with_stderr(&server, "agw_not_checked_yet", dir.path());
    // Attempts at about 0, 1, 3 and 7 s: several failures with one cause.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(worker.try_wait().unwrap().is_none(), "a down server is waited out, not a reason to stop");
    let _ = worker.kill();
    let log = stderr_of(worker);
    let said = log.lines().filter(|l| l.contains("claiming work") && l.contains("retrying with backoff")).count();
    assert_eq!(said, 1, "the cause is said once while it stays the same: {log}");
    assert!(log.to_lowercase().contains("connect"), "the cause names the connection failure: {log}");
}
