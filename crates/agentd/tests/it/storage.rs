//! Storage: what a workspace stores counts against `max_storage_bytes` (at deploy and at
//! artifact upload), and the blob sweep deletes the blobs no row refers to any more, on
//! both engines and both blob stores, keeping a blob shared with another row and a blob
//! written within the grace period.

use std::time::Duration;

use agentd_api_types::InvokeRequest;
use agentd_api_types::worker::ClaimRequest;
use agentd_client::{Client, InvokeOptions};
use agentd_test_support::{Backend, S3Server, aws_env, on_both_stores, on_postgres};

use crate::harness::{TestApp, invoke_and_wait};

/// Sweeps every second, and blobs or deleted agents' versions older than a second go.
const QUICK_SWEEP: [(&str, &str); 2] = [("AGENTD_BLOB_SWEEP_S", "1"), ("AGENTD_BLOB_GRACE_S", "1")];

/// Whether the blob store still holds `digest`, asked as a worker fetching a bundle.
async fn holds(worker: &Client, digest: &str) -> bool {
    match worker.worker_bundle(digest).await {
        Ok(_) => true,
        Err(err) if err.status() == Some(404) => false,
        Err(err) => panic!("fetching {digest}: {err}"),
    }
}

/// Waits (bounded) until the blob store no longer holds `digest`.
async fn until_collected(worker: &Client, digest: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while holds(worker, digest).await {
        assert!(tokio::time::Instant::now() < deadline, "{digest} was never collected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn storage_used(client: &Client) -> u64 {
    client.limits().await.expect("limits").limits["max_storage_bytes"].used.expect("storage has a use")
}

/// Two workspaces deploy the same bundle (one blob); one of them deletes its agent, and
/// an agent of its own with a bundle nobody else has.
async fn collects_what_nothing_refers_to_and_keeps_what_is_shared(app: &TestApp) {
    let worker = app.client().with_token(app.create_worker_token());
    let alpha = app.signup("alpha").await;
    let beta = app.signup("beta").await;
    let shared =
        app.deploy_script(&alpha, "twin", "cat > /dev/null; echo '{\"type\":\"output\",\"data\":1}' >&3").await;
    let beta_twin =
        app.deploy_script(&beta, "twin", "cat > /dev/null; echo '{\"type\":\"output\",\"data\":1}' >&3").await;
    assert_eq!(shared.digest, beta_twin.digest, "one blob for both workspaces");
    let own = app.deploy_script(&alpha, "own", "cat > /dev/null; echo mine").await;
    let done = invoke_and_wait(&alpha, "own", serde_json::json!({})).await;
    assert!(done.status.is_terminal(), "{done:?}");
    assert_eq!(storage_used(&alpha.client).await, shared.size_bytes + own.size_bytes);

    alpha.client.agent_delete("own").await.expect("delete own");
    alpha.client.agent_delete("twin").await.expect("delete twin");
    assert_eq!(storage_used(&alpha.client).await, 0, "a deleted agent's bundles count no more");
    assert_eq!(storage_used(&beta.client).await, beta_twin.size_bytes);

    // The sweep that deleted alpha's own bundle had purged both deleted agents' versions.
    until_collected(&worker, &own.digest).await;
    assert!(holds(&worker, &shared.digest).await, "beta's version still refers to the shared blob");
    let done = invoke_and_wait(&beta, "twin", serde_json::json!({})).await;
    assert_eq!(done.status.as_str(), "succeeded", "{done:?}");
}

on_both_stores!(the_blob_sweep_deletes_a_deleted_agents_bundle_and_keeps_one_another_workspace_shares);
async fn the_blob_sweep_deletes_a_deleted_agents_bundle_and_keeps_one_another_workspace_shares(backend: Backend) {
    let app = TestApp::spawn_with(backend, &QUICK_SWEEP).await;
    collects_what_nothing_refers_to_and_keeps_what_is_shared(&app).await;
}

on_postgres!(the_blob_sweep_deletes_from_an_s3_bucket_too);
async fn the_blob_sweep_deletes_from_an_s3_bucket_too() {
    let Some(s3) = S3Server::start("agentd-swept") else { return };
    let mut env: Vec<(&str, String)> = aws_env(&s3);
    env.push(("AGENTD_BLOB_URL", "s3://agentd-swept/blobs".into()));
    env.extend(QUICK_SWEEP.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(Backend::Postgres, &env).await;
    collects_what_nothing_refers_to_and_keeps_what_is_shared(&app).await;
    assert!(!app.data_dir.join("blobs").exists(), "nothing went to the local directory");
}

on_both_stores!(a_blob_written_within_the_grace_period_is_not_collected);
async fn a_blob_written_within_the_grace_period_is_not_collected(backend: Backend) {
    // The default grace period (an hour), swept every second.
    let app = TestApp::spawn_with(backend, &[("AGENTD_BLOB_SWEEP_S", "1")]).await;
    let worker = app.client().with_token(app.create_worker_token());
    let alpha = app.signup("alpha").await;
    let fresh = app.deploy_script(&alpha, "fresh", "cat > /dev/null; echo fresh").await;
    alpha.client.agent_delete("fresh").await.expect("delete");
    // A blob nothing refers to, written two hours ago (as a deploy that failed after
    // storing its bundle leaves one): the sweep deletes it, which shows that it ran.
    let orphan = b"left behind by a deploy that never committed its version";
    let orphan_digest = agentd_store::digest_of(orphan);
    let path = app.data_dir.join("blobs/sha256").join(orphan_digest.trim_start_matches("sha256:"));
    std::fs::write(&path, orphan).expect("write the orphan");
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
    std::fs::File::options().write(true).open(&path).and_then(|f| f.set_modified(two_hours_ago)).expect("backdate");
    assert!(holds(&worker, &orphan_digest).await);
    until_collected(&worker, &orphan_digest).await;
    assert!(holds(&worker, &fresh.digest).await, "written seconds ago: kept through the grace period");
}

on_both_stores!(an_artifact_past_max_storage_bytes_is_413_and_fails_the_run_with_that_code);
async fn an_artifact_past_max_storage_bytes_is_413_and_fails_the_run_with_that_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("full").await;
    let version =
        app.deploy_script(&alpha, "big", "cat > /dev/null; head -c 5000 /dev/zero > /outputs/big.bin; echo done").await;
    let limit = version.size_bytes + 1000;
    let set = app.admin(&["limits", "set", "full", &format!("max_storage_bytes={limit}")], &[]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));

    // The in-process worker: the run fails as the agent's doing, with the limit's code.
    let done = invoke_and_wait(&alpha, "big", serde_json::json!({})).await;
    assert_eq!(done.status.as_str(), "failed", "{done:?}");
    assert_eq!(done.error.as_ref().map(|e| e.code.as_str()), Some("max_storage_bytes"), "{done:?}");
    assert!(alpha.client.artifacts_list(done.id.as_str()).await.expect("artifacts").data.is_empty());
    assert_eq!(storage_used(&alpha.client).await, version.size_bytes, "nothing was stored");

    // The worker protocol answers an upload past the limit with 413 max_storage_bytes.
    let mut paused = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "0")]).await;
    let tenant = paused.signup("full").await;
    let version = paused.deploy_script(&tenant, "big", "cat > /dev/null").await;
    let set = paused.admin(&["limits", "set", "full", &format!("max_storage_bytes={}", version.size_bytes + 10)], &[]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    tenant.client.invoke("big", &InvokeRequest::default(), &InvokeOptions::default()).await.expect("invoke");
    let worker = paused.client().with_token(paused.create_worker_token());
    let claim = ClaimRequest { worker: "probe".into(), lease_s: 30, wait_s: 10, slots: None };
    let run = worker.worker_claim(&claim).await.expect("claim").expect("a run");
    let refused = worker.worker_artifact(&run.lease(), "big.bin", vec![0; 100]).await.expect_err("past the limit");
    assert_eq!((refused.status(), refused.code()), (Some(413), Some("max_storage_bytes")), "{refused}");
    assert!(worker.worker_artifact(&run.lease(), "small.bin", vec![1; 5]).await.expect("within the limit"));
    worker.worker_release(&run.lease()).await.expect("release");
    paused.stop().await;
}
