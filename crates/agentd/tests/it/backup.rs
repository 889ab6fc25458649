//! The restore drill of docs/OPERATIONS.md: back up while invocations run, restore into
//! a new data dir, start a server there, and every invocation that had finished before
//! the backup is there with its logs. Also `agentd migrate` and `serve --no-migrate`.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use agentd_api_types::{InvocationStatus, InvokeRequest};
use agentd_client::{InvocationFilter, InvokeOptions};
use agentd_test_support::Backend;
use serde_json::json;

use crate::harness::{TestApp, TestTenant, bin, log_messages};

const RUNS: usize = 200;

async fn succeeded_ids(tenant: &TestTenant) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut cursor = None;
    loop {
        let filter = InvocationFilter {
            status: Some(InvocationStatus::Succeeded),
            limit: Some(100),
            cursor: cursor.clone(),
            ..InvocationFilter::default()
        };
        let page = tenant.client.invocations_list(&filter).await.expect("list");
        ids.extend(page.data.into_iter().map(|i| i.id.to_string()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
}

fn agentd(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().expect("run agentd")
}

#[tokio::test]
async fn a_backup_taken_under_load_restores_every_finished_invocation_with_its_logs() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let tenant = app.signup("backed").await;
    let script =
        "#!/bin/sh\necho \"hello from $AGENTD_INVOCATION_ID\"\nprintf '{\"type\":\"output\",\"data\":1}\\n' >&3\n";
    app.deploy_script(&tenant, "echo", script).await;
    let request = InvokeRequest { input: json!({}), ..InvokeRequest::default() };
    for _ in 0..RUNS {
        tenant.client.invoke("echo", &request, &InvokeOptions::default()).await.expect("invoke");
    }
    // Some have finished and most have not: the backup is taken under load.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let finished = loop {
        let finished = succeeded_ids(&tenant).await;
        if finished.len() >= 10 || tokio::time::Instant::now() > deadline {
            break finished;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!finished.is_empty(), "runs finish");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("agentd-backup.tar.gz");
    let data_dir = app.data_dir.to_str().expect("utf-8");
    let file_arg = file.to_str().expect("utf-8");
    let out = agentd(&["backup", file_arg, "--data-dir", data_dir, "--database-url", app.database_url()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let still_running = tenant.client.invocations_list(&InvocationFilter::default()).await.expect("list");
    assert!(still_running.data.iter().any(|i| !i.status.is_terminal()) || finished.len() < RUNS);

    let restored_dir = dir.path().join("restored");
    let restored = restored_dir.to_str().expect("utf-8");
    let out = agentd(&["restore", file_arg, "--data-dir", restored]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = agentd(&["restore", file_arg, "--data-dir", restored]);
    assert!(!again.status.success(), "a non-empty data dir is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let restored_app = TestApp::spawn_on_data_dir(&restored_dir, &[]).await;
    let client = restored_app.client().with_token(&tenant.key);
    let restored_tenant = TestTenant { client, key: tenant.key.clone(), signup: tenant.signup.clone() };
    for id in &finished {
        let invocation = restored_tenant.client.invocation_get(id).await.expect("restored invocation");
        assert_eq!(invocation.status, InvocationStatus::Succeeded, "{id}");
        let logs = log_messages(&restored_tenant, id).await;
        assert!(logs.iter().any(|l| l.contains(&format!("hello from {id}"))), "{id}: {logs:?}");
    }
    // The restored server runs the agent too: its bundle came along with the blobs.
    let options = InvokeOptions { wait_s: Some(30), ..InvokeOptions::default() };
    let fresh = restored_tenant.client.invoke("echo", &request, &options).await.expect("invoke");
    assert_eq!(fresh.status, InvocationStatus::Succeeded, "{fresh:?}");
}

#[tokio::test]
async fn backup_of_postgres_points_to_pg_dump() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("b.tar.gz");
    let url = "postgres://nobody@127.0.0.1:1/none";
    let out = agentd(&["backup", file.to_str().expect("utf-8"), "--database-url", url]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!file.exists());
}

#[tokio::test]
async fn no_migrate_refuses_a_database_with_pending_migrations_until_migrate_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let data = data_dir.to_str().expect("utf-8");
    let refused = agentd(&["serve", "--no-migrate", "--listen", "127.0.0.1:0", "--data-dir", data]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("agentd migrate"), "{said}");
    let migrated = agentd(&["migrate", "--data-dir", data]);
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    assert!(String::from_utf8_lossy(&migrated.stdout).contains("applied migrations"));
    let current = agentd(&["migrate", "--data-dir", data]);
    assert!(String::from_utf8_lossy(&current.stdout).contains("current"));
    let app = TestApp::spawn_on_data_dir(&data_dir, &[("AGENTD_NO_MIGRATE", "true")]).await;
    let (status, body) = app.client().readyz().await.expect("readyz");
    assert_eq!(status, 200, "{body}");
}
