//! Artifacts: files an agent leaves in `/outputs` are listed and downloadable after the
//! run, only by their tenant; with an S3 blob store, replicas on separate machines share
//! bundles and artifacts.

use agentd_test_support::{Backend, S3Server, aws_env, on_both_stores, on_postgres};

use crate::harness::{TestApp, TestTenant, invoke_and_wait};

/// Writes two files and a symlink to a host secret into `/outputs`, then succeeds.
const WRITES_OUTPUTS: &str = r#"mkdir -p /outputs/sub
printf 'quarterly numbers\n' > /outputs/report.txt
printf '{"rows": 3}' > /outputs/sub/data.json
ln -s /etc/shadow /outputs/evil
printf '{"type":"output","data":"written"}\n' >&3"#;

async fn check_outputs_were_collected(tenant: &TestTenant, other: &TestTenant) {
    let done = invoke_and_wait(tenant, "writer", serde_json::json!({})).await;
    assert_eq!(done.status.as_str(), "succeeded", "{done:?}");
    let id = done.id.as_str();
    let listed = tenant.client.artifacts_list(id).await.unwrap();
    let names: Vec<(&str, u64)> = listed.data.iter().map(|a| (a.name.as_str(), a.size)).collect();
    assert_eq!(names, [("report.txt", 18), ("sub/data.json", 11)], "symlinks are not collected");
    assert!(listed.data.iter().all(|a| a.digest.starts_with("sha256:") && a.attempt == 1));
    assert_eq!(tenant.client.artifact_download(id, "report.txt").await.unwrap(), b"quarterly numbers\n");
    assert_eq!(tenant.client.artifact_download(id, "sub/data.json").await.unwrap(), br#"{"rows": 3}"#);
    let missing = tenant.client.artifact_download(id, "evil").await.unwrap_err();
    assert_eq!(missing.status(), Some(404));
    // Another tenant sees neither the list nor the bytes.
    assert_eq!(other.client.artifacts_list(id).await.unwrap_err().status(), Some(404));
    assert_eq!(other.client.artifact_download(id, "report.txt").await.unwrap_err().status(), Some(404));
}

on_both_stores!(files_left_in_outputs_become_artifacts_of_their_tenant);
async fn files_left_in_outputs_become_artifacts_of_their_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let beta = app.signup("beta").await;
    app.deploy_script(&alpha, "writer", WRITES_OUTPUTS).await;
    check_outputs_were_collected(&alpha, &beta).await;
}

on_postgres!(replicas_on_separate_machines_share_bundles_and_artifacts_through_s3);
/// Two replicas with separate data dirs share one bucket: the bundle uploaded through
/// the first runs on the second's worker, and the artifacts it wrote download from both.
async fn replicas_on_separate_machines_share_bundles_and_artifacts_through_s3() {
    let Some(s3) = S3Server::start("agentd-shared") else { return };
    let mut env: Vec<(&str, String)> = aws_env(&s3);
    env.push(("AGENTD_BLOB_URL", "s3://agentd-shared/blobs".into()));
    env.push(("AGENTD_WORKER_SLOTS", "0".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let front = TestApp::spawn_with(Backend::Postgres, &env).await;
    let runner = front.replica_apart(&[("AGENTD_WORKER_SLOTS", "2")]).await;
    let alpha = front.signup("alpha").await;
    let beta = front.signup("beta").await;
    front.deploy_script(&alpha, "writer", WRITES_OUTPUTS).await;
    assert!(!front.data_dir.join("blobs").exists(), "nothing went to the local directory");
    check_outputs_were_collected(&alpha, &beta).await;
    let on_runner = runner.client().with_token(alpha.key.clone());
    let id = on_runner.invocations_list(&Default::default()).await.unwrap().data[0].id.clone();
    let bytes = on_runner.artifact_download(id.as_str(), "report.txt").await.unwrap();
    assert_eq!(bytes, b"quarterly numbers\n");
}

/// An S3 blob URL is checked at startup, so a bad one fails fast with a clear message.
#[test]
fn a_malformed_blob_url_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::harness::bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--blob-url", "gs://somewhere"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unsupported blob URL"), "{stderr}");
}

/// A remote worker uploads the artifacts through the worker API, fenced by its lease.
#[tokio::test]
async fn a_remote_worker_uploads_artifacts_through_the_worker_api() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("AGENTD_WORKER_SLOTS", "0")]).await;
    let alpha = app.signup("alpha").await;
    let beta = app.signup("beta").await;
    app.deploy_script(&alpha, "writer", WRITES_OUTPUTS).await;
    let token = app.create_worker_token();
    let _worker = app.spawn_worker(&token, "remote");
    check_outputs_were_collected(&alpha, &beta).await;
}
