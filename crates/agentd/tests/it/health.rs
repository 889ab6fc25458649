//! `/healthz` and `/readyz` as a load balancer sees them: ready with every check named,
//! `503` naming the failed check while draining or when the blob store refuses writes.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use agentd_test_support::{Backend, on_both_stores};

use crate::harness::TestApp;

on_both_stores!(a_running_server_is_ready_and_names_its_checks);
async fn a_running_server_is_ready_and_names_its_checks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.client().healthz().await.expect("healthz");
    let (status, body) = app.client().readyz().await.expect("readyz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    for check in ["store", "migrations", "blobs", "draining"] {
        assert_eq!(body["checks"][check]["ok"], true, "{check}: {body}");
    }
}

#[tokio::test]
async fn draining_makes_readyz_answer_503_naming_it() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("AGENTD_DRAIN_S", "5")]).await;
    app.signal_terminate();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    let body = loop {
        let (status, body) = app.client().readyz().await.expect("the API still serves while draining");
        if status == 503 {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "never drained: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(body["failed"], serde_json::json!(["draining"]), "{body}");
    assert_eq!(body["checks"]["draining"]["ok"], false);
    app.client().healthz().await.expect("still alive while draining");
}

#[tokio::test]
async fn a_blob_store_that_stops_taking_writes_fails_readiness() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (status, body) = app.client().readyz().await.expect("readyz");
    assert_eq!(status, 200, "ready at first: {body}");
    let blobs = app.data_dir.join("blobs").join("sha256");
    if nix::unistd::geteuid().is_root() {
        // Root writes through permissions: a file where the directory was stops every write.
        std::fs::rename(&blobs, app.data_dir.join("blobs").join("moved")).expect("move the blob dir");
        std::fs::write(&blobs, b"not a directory").expect("block the blob dir");
    } else {
        std::fs::set_permissions(&blobs, std::fs::Permissions::from_mode(0o500)).expect("chmod");
    }
    let (status, body) = app.client().readyz().await.expect("readyz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failed"], serde_json::json!(["blobs"]), "{body}");
    assert!(body["checks"]["blobs"]["detail"].as_str().is_some_and(|d| d.contains("refuses writes")), "{body}");
}
