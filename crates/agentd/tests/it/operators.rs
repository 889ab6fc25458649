//! Operators: an operator token made with `agentd admin operator create-token` reaches
//! `/v1/admin/*` and nothing else; a workspace's credentials do not reach it. Suspending
//! a tenant locks it out and holds its queued runs; resuming lets them run.

use std::time::Duration;

use agentd_api_types::{InvocationStatus, InvokeRequest};
use agentd_client::{Client, InvokeOptions, ListOptions};
use agentd_test_support::{Backend, on_both_stores};

use crate::harness::{TestApp, poll_invocation};

/// An operator token, made on the database as an operator would.
fn operator_client(app: &TestApp) -> Client {
    let out = app.admin(&["operator", "create-token", "--name", "ops"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("ago_"), "{token}");
    app.client().with_token(token)
}

on_both_stores!(an_operator_suspends_a_tenant_whose_queued_run_waits_until_it_is_resumed);
async fn an_operator_suspends_a_tenant_whose_queued_run_waits_until_it_is_resumed(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "0")]).await;
    let ops = operator_client(&app);
    let alpha = app.signup("alpha").await;
    let beta = app.signup("beta").await;
    app.deploy_example(&alpha, "python-echo").await;
    let alpha_id = alpha.signup.tenant.id.to_string();

    let listed = ops.admin_tenants_list(&ListOptions::default()).await.expect("list tenants");
    let slugs: Vec<&str> = listed.data.iter().map(|t| t.tenant.slug.as_str()).collect();
    assert_eq!(slugs, ["beta", "alpha"], "newest first");

    let accepted =
        alpha.client.invoke("python-echo", &InvokeRequest::default(), &InvokeOptions::default()).await.expect("invoke");
    let suspended = ops.admin_tenant_suspend(&alpha_id).await.expect("suspend");
    assert_eq!(suspended.tenant.status.as_str(), "suspended");
    assert!(suspended.suspended_at.is_some());
    assert_eq!(suspended.usage.queued, 1, "{suspended:?}");
    let refused = alpha.client.me().await.expect_err("a suspended tenant's key");
    assert_eq!((refused.status(), refused.code()), (Some(403), Some("tenant_suspended")));
    beta.client.me().await.expect("another tenant is not affected");

    // A worker comes and asks for work: the suspended tenant's run is not handed out.
    let token = app.create_worker_token();
    let _worker = app.spawn_worker(&token, "remote-one");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let worker = loop {
        let workers = ops.admin_workers().await.expect("workers");
        if let Some(w) = workers.data.into_iter().find(|w| w.worker_token_id.is_some()) {
            break w;
        }
        assert!(tokio::time::Instant::now() < deadline, "the worker never showed up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(worker.live && worker.lease_owner.ends_with(&worker.name), "{worker:?}");
    assert_eq!(worker.slots, Some(4), "{worker:?}");
    assert_eq!(worker.runs_in_flight, 0, "{worker:?}");
    let queue = ops.admin_queue().await.expect("queue");
    assert_eq!(queue.depth.get("queued"), Some(&1), "{queue:?}");
    assert_eq!(queue.tenants.len(), 1, "{queue:?}");
    assert_eq!(queue.tenants[0].tenant_id.as_str(), alpha_id);
    assert!(queue.oldest_queued_age_s.is_some(), "{queue:?}");
    assert_eq!(ops.admin_tenant_get(&alpha_id).await.expect("show").usage.queued, 1);

    let resumed = ops.admin_tenant_resume(&alpha_id).await.expect("resume");
    assert_eq!(resumed.tenant.status.as_str(), "active");
    let done = poll_invocation(&alpha, accepted.id.as_str(), Duration::from_secs(60), |i| i.status.is_terminal()).await;
    assert_eq!(done.status, InvocationStatus::Succeeded, "{done:?}");
    let queue = ops.admin_queue().await.expect("queue");
    assert!(queue.claims_last_minute >= 1, "{queue:?}");
    let shown = ops.admin_tenant_get(&alpha_id).await.expect("show");
    assert_eq!(shown.usage.figures.invocations, 1, "{shown:?}");
    assert!(shown.usage.storage.bundle_bytes > 0, "{shown:?}");
}

on_both_stores!(operator_tokens_reach_admin_routes_only_and_tenant_credentials_are_refused_there);
async fn operator_tokens_reach_admin_routes_only_and_tenant_credentials_are_refused_there(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ops = operator_client(&app);
    let alpha = app.signup("alpha").await;

    let refused = alpha.client.admin_tenants_list(&ListOptions::default()).await.expect_err("a tenant key");
    assert_eq!((refused.status(), refused.code()), (Some(403), Some("operator_required")));
    let refused = ops.me().await.expect_err("an operator token on /v1/me");
    assert_eq!((refused.status(), refused.code()), (Some(401), Some("operator_token_not_accepted")));
    let forged = app.client().with_token("ago_forged").admin_queue().await.expect_err("a forged operator token");
    assert_eq!((forged.status(), forged.code()), (Some(401), Some("unauthorized")));
    let missing = ops.admin_tenant_get("ten_nope").await.expect_err("no such tenant");
    assert_eq!(missing.status(), Some(404));

    // A revoked operator token is refused from then on.
    let out = app.admin(&["operator", "list", "--json"], &[]);
    let tokens: serde_json::Value = serde_json::from_slice(&out.stdout).expect("operator list --json");
    let id = tokens[0]["id"].as_str().expect("a token id").to_owned();
    let out = app.admin(&["operator", "revoke", &id], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let revoked = ops.admin_queue().await.expect_err("a revoked operator token");
    assert_eq!(revoked.status(), Some(401));
}

on_both_stores!(admin_tenants_commands_suspend_and_resume_on_the_database);
async fn admin_tenants_commands_suspend_and_resume_on_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let id = alpha.signup.tenant.id.to_string();
    let out = app.admin(&["tenants", "list"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("alpha"), "{out:?}");
    let out = app.admin(&["tenants", "suspend", &id, "--json"], &[]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("suspend --json");
    assert_eq!(shown["status"], "suspended");
    let refused = alpha.client.me().await.expect_err("suspended");
    assert_eq!(refused.code(), Some("tenant_suspended"));
    let out = app.admin(&["tenants", "resume", &id], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    alpha.client.me().await.expect("resumed");
    let out = app.admin(&["workers", "list", "--json"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
