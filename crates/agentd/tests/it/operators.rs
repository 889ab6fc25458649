//! Operators: an operator token made with `agentd admin operator create-token` reaches
//! `/v1/admin/*` and nothing else; a workspace's credentials do not reach it. Suspending
//! a tenant locks it out and holds its queued runs; resuming lets them run. Operators
//! open workspaces with an owner invite and change tenants' limits over the API.

use std::time::Duration;

use agentd_api_types::{
    AcceptInviteRequest, ChangeTenantLimitsRequest, CreateTenantRequest, InvocationStatus, InvokeRequest,
};
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

on_both_stores!(an_operator_opens_a_workspace_whose_owner_joins_through_the_invite);
async fn an_operator_opens_a_workspace_whose_owner_joins_through_the_invite(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_SIGNUP", "closed")]).await;
    let ops = operator_client(&app);
    let request = CreateTenantRequest {
        slug: "acme".into(),
        name: Some("Acme Corp".into()),
        owner_email: "ceo@acme.example".into(),
    };
    let made = ops.admin_tenant_create(&request).await.expect("create a workspace");
    assert_eq!((made.tenant.slug.as_str(), made.tenant.name.as_str()), ("acme", "Acme Corp"));
    assert_eq!(made.owner_invite.invite.email, "ceo@acme.example");
    assert_eq!(made.owner_invite.invite.role.as_str(), "owner");
    assert!(made.owner_invite.token.starts_with("agi_"), "{:?}", made.owner_invite.token);
    let listed = ops.admin_tenants_list(&ListOptions::default()).await.expect("list");
    assert!(listed.data.iter().any(|t| t.tenant.id == made.tenant.id), "{listed:?}");

    // The owner makes an account with the token (signup itself is closed).
    let accept = AcceptInviteRequest { password: Some("correct horse battery staple".into()), ..Default::default() };
    let joined = app.client().invite_accept(&made.owner_invite.token, &accept).await.expect("accept");
    let owner = app.client().with_token(joined.token);
    let me = owner.me().await.expect("me");
    assert_eq!(me.tenant.id, made.tenant.id);
    // The workspace's log opens with the operator who made it, by its token.
    let log = owner.audit_list(&agentd_client::AuditFilter::default()).await.expect("audit");
    let opened = log.data.last().expect("a first event");
    assert_eq!(opened.actor.kind.as_str(), "operator", "{opened:?}");
    assert!(opened.actor.id.starts_with("opt_"), "the operator token, not the database: {opened:?}");

    let taken = ops.admin_tenant_create(&request).await.expect_err("the slug is taken");
    assert_eq!((taken.status(), taken.code()), (Some(409), Some("workspace_slug_taken")));
    let reserved = CreateTenantRequest { slug: "admin".into(), ..request.clone() };
    let refused = ops.admin_tenant_create(&reserved).await.expect_err("a reserved slug");
    assert_eq!((refused.status(), refused.code()), (Some(422), Some("workspace_slug_reserved")));
    let bad_email = CreateTenantRequest { slug: "other".into(), owner_email: "nobody".into(), ..request };
    let refused = ops.admin_tenant_create(&bad_email).await.expect_err("not an email");
    assert_eq!(refused.status(), Some(422));
    let refused = owner.admin_tenant_create(&CreateTenantRequest::default()).await.expect_err("a workspace's session");
    assert_eq!((refused.status(), refused.code()), (Some(403), Some("operator_required")));
}

on_both_stores!(an_operator_sets_and_unsets_a_tenants_limits_over_the_api);
async fn an_operator_sets_and_unsets_a_tenants_limits_over_the_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ops = operator_client(&app);
    let alpha = app.signup("alpha").await;
    let id = alpha.signup.tenant.id.to_string();
    let default_keys = alpha.client.limits().await.expect("limits").limits["max_api_keys"].value;

    let set = ChangeTenantLimitsRequest {
        set: [("max_agents".to_owned(), 1), ("max_api_keys".to_owned(), 7)].into(),
        ..Default::default()
    };
    let report = ops.admin_tenant_limits_change(&id, &set).await.expect("set");
    assert_eq!((report.tenant_id.as_str(), report.slug.as_str()), (id.as_str(), "alpha"));
    assert_eq!((report.limits["max_agents"].value, report.limits["max_agents"].source.as_str()), (1, "override"));
    // The tenant lives under it from its next request.
    let seen = alpha.client.limits().await.expect("limits");
    assert_eq!((seen.limits["max_agents"].value, seen.limits["max_agents"].source.as_str()), (1, "override"));
    app.deploy_script(&alpha, "first", "cat > /dev/null").await;
    let request = agentd_api_types::CreateAgentRequest { slug: "second".into(), ..Default::default() };
    let full = alpha.client.agent_create(&request).await.expect_err("max_agents=1");
    assert_eq!(full.code(), Some("max_agents"));

    let unset = ChangeTenantLimitsRequest { unset: vec!["max_api_keys".into()], ..Default::default() };
    let report = ops.admin_tenant_limits_change(&id, &unset).await.expect("unset");
    assert_eq!(
        (report.limits["max_api_keys"].value, report.limits["max_api_keys"].source.as_str()),
        (default_keys, "default")
    );
    assert_eq!(report.limits["max_agents"].source, "override", "the other override stays");

    for bad in [
        ChangeTenantLimitsRequest { set: [("max_agnts".to_owned(), 1)].into(), ..Default::default() },
        ChangeTenantLimitsRequest { set: [("memory_mb".to_owned(), 0)].into(), ..Default::default() },
        ChangeTenantLimitsRequest { unset: vec!["nope".into()], ..Default::default() },
    ] {
        let refused = ops.admin_tenant_limits_change(&id, &bad).await.expect_err("refused");
        assert_eq!((refused.status(), refused.code()), (Some(422), Some("invalid_limit_override")), "{bad:?}");
    }
    let missing =
        ops.admin_tenant_limits_change("ten_00000000000000000000000000000000", &set).await.expect_err("no tenant");
    assert_eq!(missing.status(), Some(404));
    let refused = alpha.client.admin_tenant_limits_change(&id, &set).await.expect_err("a tenant key");
    assert_eq!((refused.status(), refused.code()), (Some(403), Some("operator_required")));
}
