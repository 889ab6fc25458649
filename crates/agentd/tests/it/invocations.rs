//! Invoking agents: each example runs to the expected output and logs; waiting,
//! polling, idempotency, input validation and the log cursor.

use std::time::Duration;

use agentd_api_types::{EventKind, EventStream, InvocationStatus, InvokeRequest};
use agentd_client::{InvocationFilter, InvokeOptions};
use agentd_test_support::{Backend, on_both_stores};
use serde_json::json;

use crate::harness::{TestApp, invoke_and_wait, log_messages, poll_invocation};

on_both_stores!(each_example_agent_succeeds_with_its_output_and_logs);
async fn each_example_agent_succeeds_with_its_output_and_logs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    for example in ["python-echo", "node-greet", "shell-wc"] {
        app.deploy_example(&alpha, example).await;
    }
    let echo = invoke_and_wait(&alpha, "python-echo", json!({"x": [1, 2]})).await;
    assert_eq!(
        (echo.status, echo.output.clone()),
        (InvocationStatus::Succeeded, Some(json!({"echo": {"x": [1, 2]}}))),
        "{echo:?}"
    );
    assert!(log_messages(&alpha, echo.id.as_str()).await.iter().any(|m| m.contains("echoing")));

    let greet = invoke_and_wait(&alpha, "node-greet", json!({"name": "Ada"})).await;
    assert_eq!(
        (greet.status, greet.output.clone()),
        (InvocationStatus::Succeeded, Some(json!({"greeting": "hello, Ada"}))),
        "{greet:?}"
    );

    let wc = invoke_and_wait(&alpha, "shell-wc", json!({"text": "abc"})).await;
    assert_eq!(wc.status, InvocationStatus::Succeeded, "{wc:?}");
    let bytes = wc.output.as_ref().and_then(|o| o["bytes"].as_u64()).unwrap_or(0);
    assert!(bytes > 20, "shell-wc counts the stdin document: {wc:?}");
    let events = alpha.client.invocation_logs(wc.id.as_str(), None, None).await.unwrap().data;
    assert!(events.iter().any(|e| e.stream == EventStream::Stdout), "stdout is captured as a log event");
    assert!(events.iter().any(|e| e.kind == EventKind::Output));
    assert_eq!(events.first().map(|e| e.seq), Some(1));
    assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1), "seq counts up by one");
    assert!(wc.started_at.is_some() && wc.finished_at.is_some() && wc.attempt == 1);
}

on_both_stores!(a_failing_agent_is_failed_with_its_exit_code_and_stderr);
async fn a_failing_agent_is_failed_with_its_exit_code_and_stderr(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "broken", "echo 'something broke' >&2\nexit 3").await;
    let done = invoke_and_wait(&alpha, "broken", json!({})).await;
    assert_eq!(done.status, InvocationStatus::Failed);
    let error = done.error.unwrap();
    assert_eq!(error.code, "agent_failed");
    assert!(error.message.contains("code 3") && error.message.contains("something broke"), "{}", error.message);
}

on_both_stores!(an_invocation_without_wait_is_accepted_then_finishes);
async fn an_invocation_without_wait_is_accepted_then_finishes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_example(&alpha, "shell-wc").await;
    let accepted = alpha
        .client
        .invoke("shell-wc", &InvokeRequest { input: json!(1), ..Default::default() }, &InvokeOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        accepted.status,
        InvocationStatus::Queued | InvocationStatus::Running | InvocationStatus::Succeeded
    ));
    let done = poll_invocation(&alpha, accepted.id.as_str(), Duration::from_secs(30), |i| i.status.is_terminal()).await;
    assert_eq!(done.status, InvocationStatus::Succeeded);
    let listed = alpha
        .client
        .invocations_list(&InvocationFilter { agent: Some("shell-wc".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(listed.data.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), vec![accepted.id.clone()]);
    let none = alpha
        .client
        .invocations_list(&InvocationFilter { status: Some(InvocationStatus::Failed), ..Default::default() })
        .await
        .unwrap();
    assert!(none.data.is_empty());
}

on_both_stores!(an_idempotency_key_returns_the_same_invocation);
async fn an_idempotency_key_returns_the_same_invocation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_example(&alpha, "shell-wc").await;
    let options = InvokeOptions { idempotency_key: Some("order-42".into()), ..Default::default() };
    let request = InvokeRequest { input: json!({"n": 1}), ..Default::default() };
    let first = alpha.client.invoke("shell-wc", &request, &options).await.unwrap();
    let second = alpha.client.invoke("shell-wc", &request, &options).await.unwrap();
    assert_eq!(first.id, second.id);
    let all = alpha.client.invocations_list(&InvocationFilter::default()).await.unwrap();
    assert_eq!(all.data.len(), 1);
}

on_both_stores!(invalid_invoke_requests_are_rejected_and_nothing_is_queued);
async fn invalid_invoke_requests_are_rejected_and_nothing_is_queued(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_example(&alpha, "shell-wc").await;
    let cases = [
        (InvokeRequest { priority: Some(10), ..Default::default() }, "invalid_priority"),
        (InvokeRequest { max_attempts: Some(0), ..Default::default() }, "invalid_max_attempts"),
        (InvokeRequest { timeout_s: Some(0), ..Default::default() }, "invalid_timeout"),
        (InvokeRequest { metadata: Some(json!([1])), ..Default::default() }, "invalid_metadata"),
    ];
    for (request, code) in cases {
        let err = alpha.client.invoke("shell-wc", &request, &InvokeOptions::default()).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(422), Some(code)));
    }
    let too_long = InvokeOptions { wait_s: Some(61), ..Default::default() };
    let err = alpha.client.invoke("shell-wc", &InvokeRequest::default(), &too_long).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(400), Some("invalid_wait")));
    assert!(alpha.client.invocations_list(&InvocationFilter::default()).await.unwrap().data.is_empty());
}

on_both_stores!(logs_are_read_incrementally_after_a_sequence_number);
async fn logs_are_read_incrementally_after_a_sequence_number(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "chatty", "for i in 1 2 3 4 5; do echo line-$i; done").await;
    let done = invoke_and_wait(&alpha, "chatty", json!({})).await;
    let id = done.id.as_str();
    let all = alpha.client.invocation_logs(id, None, None).await.unwrap().data;
    let first_two = alpha.client.invocation_logs(id, None, Some(2)).await.unwrap();
    assert_eq!(first_two.data.len(), 2);
    let cursor: u64 = first_two.next_cursor.as_deref().unwrap().parse().unwrap();
    let rest = alpha.client.invocation_logs(id, Some(cursor), None).await.unwrap();
    assert_eq!(rest.data.len(), all.len() - 2);
    assert!(rest.next_cursor.is_none());
    let lines: Vec<_> =
        all.iter().filter(|e| e.stream == EventStream::Stdout).filter_map(|e| e.message.clone()).collect();
    assert_eq!(lines, ["line-1", "line-2", "line-3", "line-4", "line-5"]);
}
