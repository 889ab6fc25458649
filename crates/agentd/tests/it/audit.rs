//! The audit log: every change a caller makes is an event, in order, with who, what,
//! which resource, the request id and the client's address; refused requests leave
//! none; only owners and admins read it, and only their own workspace's.

use agentd_api_types::{
    AcceptInviteRequest, AuditEvent, CreateAgentRequest, CreateApiKeyRequest, CreateInviteRequest, CreateThreadRequest,
    InvocationStatus, InvokeRequest, LoginRequest, PatchAgentRequest, PutMemoryItemRequest, PutSecretRequest, Role,
    Scope,
};
use agentd_client::{AuditFilter, Client, InvokeOptions};
use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;
use serde_json::json;

use crate::harness::{TestApp, TestTenant};

const PASSWORD: &str = "correct horse battery staple";
const SECRET_VALUE: &str = "s3cr3t-value-never-logged";

async fn all_events(client: &Client) -> Vec<AuditEvent> {
    client.audit_list(&AuditFilter { limit: Some(200), ..Default::default() }).await.expect("audit list").data
}

fn actions(events: &[AuditEvent]) -> Vec<&str> {
    events.iter().map(|e| e.action.as_str()).collect()
}

fn only<'a>(events: &'a [AuditEvent], action: &str) -> &'a AuditEvent {
    let found: Vec<&AuditEvent> = events.iter().filter(|e| e.action.as_str() == action).collect();
    assert_eq!(found.len(), 1, "one {action} in {:?}", actions(events));
    found[0]
}

/// The scripted session of the issue: what an owner does in a first afternoon.
struct Scripted {
    key_id: String,
    read_key: Client,
    member: Client,
    member_id: String,
    agent_id: String,
    invocation_id: String,
    secret_request_id: String,
}

async fn scripted_session(app: &TestApp, alpha: &TestTenant) -> Scripted {
    let login = LoginRequest { email: "alpha@example.com".into(), password: PASSWORD.into(), workspace_slug: None };
    let owner = app.client().with_token(app.client().login(&login).await.expect("login").token);
    let key = alpha
        .client
        .api_key_create(&CreateApiKeyRequest { name: "ci".into(), ..Default::default() })
        .await
        .expect("create key");
    let read_key = alpha
        .client
        .api_key_create(&CreateApiKeyRequest {
            name: "reader".into(),
            scopes: Some(vec![Scope::Read]),
            ..Default::default()
        })
        .await
        .expect("create read key");
    let version = app.deploy_script(alpha, "sleeper", "sleep 30").await;
    let invocation =
        alpha.client.invoke("sleeper", &InvokeRequest::default(), &InvokeOptions::default()).await.expect("invoke");
    alpha.client.invocation_cancel(invocation.id.as_str()).await.expect("cancel");
    // Through the raw request, to read the response's `x-request-id`.
    let response = alpha
        .client
        .request(Method::PUT, "/v1/agents/sleeper/secrets/API_TOKEN")
        .json(&PutSecretRequest { value: SECRET_VALUE.into() })
        .send()
        .await
        .expect("put secret");
    assert_eq!(response.status().as_u16(), 201);
    let secret_request_id = response.headers()["x-request-id"].to_str().expect("request id").to_owned();
    let invite = owner
        .invite_create(&CreateInviteRequest { email: "dev@example.com".into(), role: Role::Developer })
        .await
        .expect("invite");
    let accept = AcceptInviteRequest { password: Some(PASSWORD.into()), ..Default::default() };
    let joined = app.client().invite_accept(&invite.token, &accept).await.expect("accept");
    let member_id = joined.user.id.to_string();
    owner.member_set_role(&member_id, Role::Viewer).await.expect("change role");
    alpha.client.api_key_revoke(key.key.id.as_str()).await.expect("revoke key");
    owner.logout().await.expect("logout");
    Scripted {
        key_id: key.key.id.to_string(),
        read_key: app.client().with_token(read_key.secret),
        member: app.client().with_token(joined.token),
        member_id,
        agent_id: version.agent_id.to_string(),
        invocation_id: invocation.id.to_string(),
        secret_request_id,
    }
}

on_both_stores!(the_audit_log_of_a_scripted_session_lists_each_mutation_in_order);
async fn the_audit_log_of_a_scripted_session_lists_each_mutation_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let script = scripted_session(&app, &alpha).await;

    let events = all_events(&alpha.client).await;
    assert_eq!(
        actions(&events),
        [
            "auth.logout",
            "api_key.revoke",
            "member.role_change",
            "invite.accept",
            "invite.create",
            "secret.put",
            "invocation.cancel",
            "invocation.create",
            "agent.deploy",
            "agent.create",
            "api_key.create",
            "api_key.create",
            "auth.login",
            "tenant.signup",
        ],
        "newest first"
    );
    let owner_id = alpha.signup.user.id.to_string();
    let owner_key = alpha.signup.api_key.key.id.to_string();
    for event in &events {
        assert_eq!(event.result, "success");
        assert_eq!(event.client_ip.as_deref(), Some("127.0.0.1"), "{event:?}");
        assert!(event.request_id.as_deref().is_some_and(|id| id.starts_with("req_")), "{event:?}");
    }
    let who = |action: &str| {
        let event = only(&events, action);
        (event.actor.kind.as_str().to_owned(), event.actor.id.clone())
    };
    assert_eq!(who("tenant.signup"), ("user".into(), owner_id.clone()));
    assert_eq!(who("auth.login"), ("user".into(), owner_id.clone()));
    assert_eq!(who("agent.create"), ("api_key".into(), owner_key.clone()));
    assert_eq!(who("invite.accept"), ("user".into(), script.member_id.clone()));
    assert_eq!(who("member.role_change"), ("user".into(), owner_id.clone()));
    assert_eq!(who("auth.logout"), ("user".into(), owner_id.clone()));

    let resource = |action: &str| {
        let event = only(&events, action);
        (event.resource_type.clone(), event.resource_id.clone())
    };
    assert_eq!(resource("tenant.signup"), ("tenant".into(), alpha.signup.tenant.id.to_string()));
    assert_eq!(resource("agent.create"), ("agent".into(), script.agent_id.clone()));
    assert_eq!(resource("invocation.create"), ("invocation".into(), script.invocation_id.clone()));
    assert_eq!(resource("invocation.cancel"), ("invocation".into(), script.invocation_id.clone()));
    assert_eq!(resource("api_key.revoke"), ("api_key".into(), script.key_id.clone()));
    assert_eq!(resource("member.role_change"), ("member".into(), script.member_id.clone()));
    assert_eq!(resource("secret.put"), ("secret".into(), format!("{}/API_TOKEN", script.agent_id)));
    let role_change = only(&events, "member.role_change");
    assert_eq!(role_change.details["from"], "developer");
    assert_eq!(role_change.details["to"], "viewer");

    let secret = only(&events, "secret.put");
    assert_eq!(secret.request_id.as_deref(), Some(script.secret_request_id.as_str()));
    assert_eq!(secret.details["name"], "API_TOKEN");
    let whole_log = serde_json::to_string(&events).unwrap();
    assert!(!whole_log.contains(SECRET_VALUE), "a secret's value is never in the log");
}

on_both_stores!(only_owners_and_admins_read_the_audit_log_and_only_their_own);
async fn only_owners_and_admins_read_the_audit_log_and_only_their_own(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let script = scripted_session(&app, &alpha).await;

    for (who, client) in [("a read key", &script.read_key), ("a viewer's session", &script.member)] {
        let refused = client.audit_list(&AuditFilter::default()).await.expect_err(who);
        assert_eq!((refused.status(), refused.code()), (Some(403), Some("insufficient_scope")), "{who}");
    }
    alpha.client.member_set_role(&script.member_id, Role::Developer).await.expect("make developer");
    let refused = script.member.audit_list(&AuditFilter::default()).await.expect_err("a developer");
    assert_eq!(refused.status(), Some(403));
    alpha.client.member_set_role(&script.member_id, Role::Admin).await.expect("make admin");
    let as_admin = all_events(&script.member).await;
    assert_eq!(as_admin.first().map(|e| e.action.as_str()), Some("member.role_change"));

    let beta = app.signup("beta").await;
    let theirs = all_events(&beta.client).await;
    assert_eq!(actions(&theirs), ["tenant.signup"]);
    assert_eq!(theirs[0].resource_id, beta.signup.tenant.id.to_string());
    let filtered = beta
        .client
        .audit_list(&AuditFilter { resource_id: Some(script.agent_id.clone()), ..Default::default() })
        .await
        .unwrap();
    assert!(filtered.data.is_empty(), "another tenant's resource finds nothing");
}

on_both_stores!(audit_filters_match_exactly_and_pages_walk_the_whole_log);
async fn audit_filters_match_exactly_and_pages_walk_the_whole_log(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let script = scripted_session(&app, &alpha).await;
    let events = all_events(&alpha.client).await;
    let list = |filter: AuditFilter| {
        let client = alpha.client.clone();
        async move { client.audit_list(&filter).await.expect("filtered list").data }
    };

    let created = list(AuditFilter { action: Some("api_key.create".into()), ..Default::default() }).await;
    assert_eq!(created.len(), 2);
    let owner_key = alpha.signup.api_key.key.id.to_string();
    let by_key = list(AuditFilter { actor: Some(owner_key.clone()), ..Default::default() }).await;
    assert!(by_key.iter().all(|e| e.actor.id == owner_key));
    assert_eq!(by_key.len(), events.iter().filter(|e| e.actor.id == owner_key).count());
    let invocation = list(AuditFilter {
        resource_type: Some("invocation".into()),
        resource_id: Some(script.invocation_id.clone()),
        ..Default::default()
    })
    .await;
    assert_eq!(actions(&invocation), ["invocation.cancel", "invocation.create"]);
    let newest = events[0].occurred_at.to_string();
    let since_newest = list(AuditFilter { from: Some(newest.clone()), ..Default::default() }).await;
    assert!(since_newest.iter().all(|e| e.occurred_at >= events[0].occurred_at) && !since_newest.is_empty());
    let until_first =
        list(AuditFilter { to: Some(events.last().unwrap().occurred_at.to_string()), ..Default::default() });
    assert!(until_first.await.iter().any(|e| e.action.as_str() == "tenant.signup"));
    let future = list(AuditFilter { from: Some("2999-01-01T00:00:00Z".into()), ..Default::default() }).await;
    assert!(future.is_empty());

    let mut walked = Vec::new();
    let mut cursor = None;
    loop {
        let page =
            alpha.client.audit_list(&AuditFilter { limit: Some(3), cursor, ..Default::default() }).await.unwrap();
        assert!(page.data.len() <= 3);
        walked.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let ids = |list: &[AuditEvent]| list.iter().map(|e| e.id.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&walked), ids(&events));

    for bad in
        ["/v1/audit?action=agent.explode", "/v1/audit?colour=blue", "/v1/audit?from=yesterday", "/v1/audit?cursor=x"]
    {
        let response = alpha.client.request(Method::GET, bad).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{bad}");
    }
}

on_both_stores!(a_refused_change_leaves_no_audit_event);
async fn a_refused_change_leaves_no_audit_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let create = CreateAgentRequest { slug: "echo".into(), ..CreateAgentRequest::default() };
    alpha.client.agent_create(&create).await.expect("create");
    let before = all_events(&alpha.client).await;
    let conflict = alpha.client.agent_create(&create).await.expect_err("the same slug again");
    assert_eq!(conflict.status(), Some(409));
    let missing = alpha.client.secret_delete("echo", "NOT_SET").await.expect_err("no such secret");
    assert_eq!(missing.status(), Some(404));
    let gone = alpha.client.session_revoke("ses_0192aaaaaaaaaaaaaaaaaaaaaaaaaaaa").await.expect_err("no such session");
    assert!(gone.status().is_some());
    assert_eq!(actions(&all_events(&alpha.client).await), actions(&before));
}

on_both_stores!(operators_changes_to_a_tenant_are_in_its_log_as_the_operator);
async fn operators_changes_to_a_tenant_are_in_its_log_as_the_operator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let out = app.admin(&["operator", "create-token", "--name", "ops"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ops = app.client().with_token(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    let tenant_id = alpha.signup.tenant.id.to_string();
    ops.admin_tenant_suspend(&tenant_id).await.expect("suspend");
    ops.admin_tenant_suspend(&tenant_id).await.expect("suspend again: no change");
    ops.admin_tenant_resume(&tenant_id).await.expect("resume");
    let set = app.admin(&["limits", "set", "alpha", "max_agents=3"], &[]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));

    let events = all_events(&alpha.client).await;
    assert_eq!(actions(&events), ["limits.set", "tenant.resume", "tenant.suspend", "tenant.signup"]);
    let operator = |event: &AuditEvent| (event.actor.kind.as_str().to_owned(), event.actor.id.clone());
    assert_eq!(operator(&events[0]), ("operator".into(), "database".into()));
    assert_eq!(events[0].client_ip, None, "the database has no client address");
    assert_eq!(events[1].actor.kind.as_str(), "operator");
    assert!(events[1].actor.id.starts_with("opt_"), "{:?}", events[1].actor);
    assert_eq!(events[1].client_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(events[2].resource_id, tenant_id);

    // A workspace an operator makes starts its log with that, then its owner joining.
    let args = ["tenants", "create", "--slug", "gamma", "--name", "Gamma", "--owner-email", "boss@gamma.example"];
    let made = app.admin(&args, &[]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let token = String::from_utf8_lossy(&made.stdout).lines().next().unwrap().to_owned();
    let accept = AcceptInviteRequest { password: Some(PASSWORD.into()), ..Default::default() };
    let joined = app.client().invite_accept(&token, &accept).await.expect("accept the owner invite");
    let gamma = all_events(&app.client().with_token(joined.token)).await;
    assert_eq!(actions(&gamma), ["invite.accept", "tenant.create"]);
    assert_eq!(operator(&gamma[1]), ("operator".into(), "database".into()));
    assert_eq!(gamma[0].actor.id, joined.user.id.to_string());
}

on_both_stores!(every_other_kind_of_change_is_logged_too);
async fn every_other_kind_of_change_is_logged_too(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let c = &alpha.client;
    app.deploy_script(&alpha, "echo", "cat").await;
    app.deploy_script(&alpha, "echo", "cat; echo v2").await;
    c.version_activate("echo", 1).await.expect("roll back");
    let patch = PatchAgentRequest { description: Some("says it back".into()), ..Default::default() };
    c.agent_patch("echo", &patch).await.expect("patch");
    c.secret_set("echo", "TOKEN", "value-1").await.expect("set");
    c.secret_set("echo", "TOKEN", "value-2").await.expect("replace");
    c.secret_delete("echo", "TOKEN").await.expect("delete secret");
    let thread = c.thread_create(&CreateThreadRequest::default()).await.expect("thread");
    let thread_id = thread.id.to_string();
    c.thread_patch(&thread_id, json!({"topic": "audit"})).await.expect("patch thread");
    c.thread_set_state(&thread_id, json!({"n": 1})).await.expect("set state");
    c.thread_delete(&thread_id).await.expect("delete thread");
    let item = PutMemoryItemRequest { namespace: vec!["notes".into()], key: "k".into(), value: json!(1), ttl_s: None };
    c.store_item_put(&item).await.expect("put item");
    c.store_item_delete(&["notes"], "k").await.expect("delete item");
    app.deploy_example(&alpha, "python-ask").await;
    let options = InvokeOptions { wait_s: Some(30), ..Default::default() };
    let asking = c.invoke("python-ask", &InvokeRequest::default(), &options).await.expect("invoke");
    assert_eq!(asking.status, InvocationStatus::WaitingForInput, "{asking:?}");
    c.respond(asking.id.as_str(), json!("Ada"), None).await.expect("respond");
    let invite = c
        .invite_create(&CreateInviteRequest { email: "gone@example.com".into(), role: Role::Viewer })
        .await
        .expect("invite");
    c.invite_revoke(invite.invite.id.as_str()).await.expect("revoke invite");
    c.invite_revoke(invite.invite.id.as_str()).await.expect("revoke again: no change");
    let invite = c
        .invite_create(&CreateInviteRequest { email: "leaver@example.com".into(), role: Role::Viewer })
        .await
        .expect("invite");
    let accept = AcceptInviteRequest { password: Some(PASSWORD.into()), ..Default::default() };
    let leaver = app.client().invite_accept(&invite.token, &accept).await.expect("accept");
    c.member_remove(leaver.user.id.as_str()).await.expect("remove member");
    c.agent_delete("echo").await.expect("delete agent");

    // Sessions: one revoked from another, and a switch into a second workspace.
    let login = LoginRequest { email: "alpha@example.com".into(), password: PASSWORD.into(), workspace_slug: None };
    let laptop = app.client().with_token(app.client().login(&login).await.expect("login").token);
    let phone = app.client().login(&login).await.expect("login again");
    let phone_id = laptop.sessions_list().await.unwrap().data.into_iter().find(|s| !s.current).unwrap().id;
    laptop.session_revoke(phone_id.as_str()).await.expect("revoke session");
    drop(phone);
    let beta = app.signup("beta").await;
    let to_beta = beta
        .client
        .invite_create(&CreateInviteRequest { email: "alpha@example.com".into(), role: Role::Admin })
        .await
        .expect("invite alpha's owner");
    let existing = AcceptInviteRequest { email: Some("alpha@example.com".into()), password: Some(PASSWORD.into()) };
    app.client().invite_accept(&to_beta.token, &existing).await.expect("accept as an existing user");
    laptop.workspace_switch("beta").await.expect("switch");

    let events = all_events(c).await;
    let mut seen = actions(&events);
    seen.reverse();
    let expected = [
        "tenant.signup",
        "agent.create",
        "agent.deploy",
        "agent.deploy",
        "agent.rollback",
        "agent.update",
        "secret.put",
        "secret.put",
        "secret.delete",
        "thread.create",
        "thread.update",
        "thread.state_set",
        "thread.delete",
        "memory.put",
        "memory.delete",
        "agent.create",
        "agent.deploy",
        "invocation.create",
        "invocation.respond",
        "invite.create",
        "invite.revoke",
        "invite.create",
        "invite.accept",
        "member.remove",
        "agent.delete",
        "auth.login",
        "auth.login",
        "session.revoke",
    ];
    assert_eq!(seen, expected, "oldest first");
    let secrets: Vec<&serde_json::Value> =
        events.iter().filter(|e| e.action.as_str() == "secret.put").map(|e| &e.details["created"]).collect();
    assert_eq!(secrets, [&json!(false), &json!(true)], "newest first: replaced, then created");
    assert!(!serde_json::to_string(&events).unwrap().contains("value-"), "no secret value");
    let rollback = only(&events, "agent.rollback");
    assert_eq!(rollback.details["version"], 1);
    let removed = only(&events, "member.remove");
    assert_eq!(removed.resource_id, leaver.user.id.to_string());
    assert_eq!(only(&events, "session.revoke").resource_id, phone_id.to_string());

    let in_beta = all_events(&beta.client).await;
    assert_eq!(actions(&in_beta), ["auth.switch", "invite.accept", "invite.create", "tenant.signup"]);
    assert_eq!(in_beta[0].actor.id, alpha.signup.user.id.to_string());
}

on_both_stores!(agentd_audit_prints_the_log_as_a_table_and_as_json);
async fn agentd_audit_prints_the_log_as_a_table_and_as_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = crate::cli::Shell::new(&app.base_url);
    shell.signup().await;
    shell.ok(&["agents", "deploy", &crate::harness::examples_dir().join("shell-wc").to_string_lossy()]).await;

    let table = shell.ok(&["audit"]).await;
    let header = table.stdout.lines().next().unwrap_or_default();
    assert!(header.starts_with("WHEN") && header.contains("ACTION"), "{table:#?}");
    assert!(table.stdout.lines().any(|l| l.contains("agent.deploy") && l.contains("127.0.0.1")), "{table:#?}");
    let listed = crate::cli::json(&shell.ok(&["audit", "--action", "agent.create", "--json"]).await.stdout);
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["data"][0]["resource_type"], "agent");
    let refused = shell.run(&["audit", "--action", "agent.explode"]).await;
    assert_eq!(refused.code, Some(2), "{refused:#?}");
    assert!(refused.stderr.contains("invalid_query"), "{refused:#?}");
}
