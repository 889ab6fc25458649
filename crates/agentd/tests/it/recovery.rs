//! A platform failure does not fail the user's work: a run whose worker dies is run again
//! as a new attempt (recorded, with its reason) without consuming `max_attempts`, and a
//! run whose events cannot be recorded ends failed with a clear code, never succeeded
//! with holes in its log.

use std::time::Duration;

use agentd_api_types::{EventKind, InvocationStatus, InvokeRequest};
use agentd_client::InvokeOptions;
use agentd_test_support::{Backend, on_both_stores};
use serde_json::json;

use crate::harness::{TestApp, log_messages, poll_invocation};

/// Sleeps on its first attempt (to be killed), answers with its stdin on any other.
const FIRST_ATTEMPT_HANGS: &str = r#"doc=$(cat)
case "$doc" in *'"attempt":1'*) echo started; sleep 300;; esac
printf '{"type":"output","data":%s}\n' "$doc" >&3"#;

on_both_stores!(a_run_whose_worker_is_killed_succeeds_as_a_new_attempt_with_the_loss_recorded);
async fn a_run_whose_worker_is_killed_succeeds_as_a_new_attempt_with_the_loss_recorded(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "0"), ("AGENTD_LEASE_S", "2")]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "once", FIRST_ATTEMPT_HANGS).await;
    let token = app.create_worker_token();
    let doomed = app.spawn_worker(&token, "doomed");
    // The default max_attempts: 1. The agent does nothing wrong, so it is not spent.
    let accepted = alpha.client.invoke("once", &InvokeRequest::default(), &InvokeOptions::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !log_messages(&alpha, accepted.id.as_str()).await.iter().any(|m| m == "started") {
        assert!(tokio::time::Instant::now() < deadline, "the worker never started the run");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    doomed.crash();
    let _rescuer = app.spawn_worker(&token, "rescuer");
    let done = poll_invocation(&alpha, accepted.id.as_str(), Duration::from_secs(60), |i| i.status.is_terminal()).await;
    assert_eq!(
        (done.status, done.attempt, done.max_attempts, done.recoveries),
        (InvocationStatus::Succeeded, 2, 1, 1),
        "{done:?}"
    );
    let stdin = done.output.unwrap_or_default();
    assert_eq!(stdin["attempt"], json!(2), "the agent is told which attempt it is: {stdin}");
    let events = alpha.client.invocation_logs(accepted.id.as_str(), None, None).await.unwrap().data;
    let recovery = events
        .iter()
        .find(|e| e.kind == EventKind::Status && e.data.as_ref().is_some_and(|d| d["reason"] == "worker_lost"))
        .unwrap_or_else(|| panic!("no event records the lost worker: {events:?}"));
    assert_eq!(recovery.data, Some(json!({"status": "queued", "reason": "worker_lost", "recovery": 1})));
    assert!(recovery.message.as_deref().unwrap_or("").contains("stopped responding"), "{recovery:?}");
}

on_both_stores!(a_run_whose_events_cannot_be_recorded_ends_failed_with_events_unrecorded);
async fn a_run_whose_events_cannot_be_recorded_ends_failed_with_events_unrecorded(backend: Backend) {
    // No recoveries, so that the first failure is the last.
    let app = TestApp::spawn_with(backend, &[("AGENTD_MAX_RECOVERIES", "0")]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "chatty", "echo one\necho two\nprintf '{\"type\":\"output\",\"data\":1}\\n' >&3").await;
    // The store refuses every log line from now on, as a full disk would.
    app.execute_sql(match backend {
        Backend::Sqlite => {
            "CREATE TRIGGER refuse_log_lines BEFORE INSERT ON invocation_events WHEN NEW.kind = 'log'
             BEGIN SELECT RAISE(ABORT, 'no space left on device'); END;"
        }
        Backend::Postgres => {
            "CREATE FUNCTION refuse_log_lines() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.kind = 'log' THEN RAISE EXCEPTION 'no space left on device'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER refuse_log_lines BEFORE INSERT ON invocation_events
             FOR EACH ROW EXECUTE FUNCTION refuse_log_lines();"
        }
    })
    .await;
    let accepted = alpha.client.invoke("chatty", &InvokeRequest::default(), &InvokeOptions::default()).await.unwrap();
    let done = poll_invocation(&alpha, accepted.id.as_str(), Duration::from_secs(60), |i| i.status.is_terminal()).await;
    assert_eq!(done.status, InvocationStatus::Failed, "{done:?}");
    let error = done.error.unwrap_or_else(|| panic!("a failed run says why"));
    assert_eq!(error.code, "events_unrecorded", "{error:?}");
    assert!(error.message.contains("could not record"), "{error:?}");
    let events = alpha.client.invocation_logs(accepted.id.as_str(), None, None).await.unwrap().data;
    assert!(events.iter().all(|e| e.kind != EventKind::Output), "no output of a run whose log has holes");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "the recorded log has no holes");
    let last = events.last().and_then(|e| e.data.clone());
    assert_eq!(last, Some(json!({"status": "failed"})));
}

on_both_stores!(a_restarted_server_removes_what_its_killed_predecessor_left_on_disk);
async fn a_restarted_server_removes_what_its_killed_predecessor_left_on_disk(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, &[("AGENTD_LEASE_S", "2")]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "once", FIRST_ATTEMPT_HANGS).await;
    let accepted = alpha.client.invoke("once", &InvokeRequest::default(), &InvokeOptions::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !log_messages(&alpha, accepted.id.as_str()).await.iter().any(|m| m == "started") {
        assert!(tokio::time::Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let instances = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("instance-") && !n.ends_with(".lock"))
            .collect()
    };
    let scratch = app.data_dir.join("runs");
    let before = instances(&scratch);
    assert_eq!(before.len(), 1, "one worker, one instance dir: {before:?}");
    app.crash().await;
    assert_eq!(instances(&scratch), before, "a SIGKILL leaves the run's files behind");
    app.start_again().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while instances(&scratch).contains(&before[0]) {
        assert!(tokio::time::Instant::now() < deadline, "the dead worker's files stayed: {:?}", instances(&scratch));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alpha = crate::harness::TestTenant { client: app.client().with_token(alpha.key.clone()), ..alpha };
    let done = poll_invocation(&alpha, accepted.id.as_str(), Duration::from_secs(60), |i| i.status.is_terminal()).await;
    assert_eq!((done.status, done.recoveries), (InvocationStatus::Succeeded, 1), "{done:?}");
}
