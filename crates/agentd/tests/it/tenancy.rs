//! Another tenant's resources are `404` on every route, and stay untouched.

use agentd_api_types::{InvocationStatus, Scope};
use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;
use serde_json::json;

use crate::harness::{TestApp, invoke_and_wait};

on_both_stores!(every_route_answers_404_for_another_tenants_resources);
async fn every_route_answers_404_for_another_tenants_resources(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let beta = app.signup("beta").await;
    app.deploy_example(&alpha, "shell-wc").await;
    alpha.client.secret_set("shell-wc", "API_KEY", "alpha's secret").await.unwrap();
    let done = invoke_and_wait(&alpha, "shell-wc", json!({"secret": "alpha's"})).await;
    assert_eq!(done.status, InvocationStatus::Succeeded);
    let inv = done.id.to_string();
    let key_id = alpha.signup.api_key.key.id.to_string();
    let thread = alpha.client.thread_create(&Default::default()).await.unwrap().id.to_string();
    let memory = json!({"namespace": ["users", "ada"], "key": "prefs", "value": {"owner": "alpha"}});
    alpha
        .client
        .request(Method::PUT, "/v1/store/items")
        .json(&memory)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let invite_request = agentd_api_types::CreateInviteRequest {
        email: "invitee@example.com".into(),
        role: agentd_api_types::Role::Viewer,
    };
    let invite = alpha.client.invite_create(&invite_request).await.unwrap().invite.id.to_string();
    let owner = alpha.signup.user.id.to_string();
    let bundle = agentd_bundle::pack_dir(&crate::harness::examples_dir().join("shell-wc")).unwrap();
    let routes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, "/v1/agents/shell-wc".into(), None),
        (Method::PATCH, "/v1/agents/shell-wc".into(), Some(json!({"name": "stolen"}))),
        (Method::DELETE, "/v1/agents/shell-wc".into(), None),
        (Method::GET, "/v1/agents/shell-wc/versions".into(), None),
        (Method::POST, "/v1/agents/shell-wc/versions/1/activate".into(), None),
        (Method::GET, "/v1/agents/shell-wc/versions/1/build".into(), None),
        (Method::GET, "/v1/agents/shell-wc/versions/1/build/events".into(), None),
        (Method::GET, "/v1/agents/shell-wc/secrets".into(), None),
        (Method::PUT, "/v1/agents/shell-wc/secrets/API_KEY".into(), Some(json!({"value": "stolen"}))),
        (Method::PUT, "/v1/agents/shell-wc/secrets/NEW_ONE".into(), Some(json!({"value": "planted"}))),
        (Method::DELETE, "/v1/agents/shell-wc/secrets/API_KEY".into(), None),
        (Method::POST, "/v1/agents/shell-wc/invoke".into(), Some(json!({"input": {}}))),
        (Method::GET, format!("/v1/invocations/{inv}"), None),
        (Method::GET, format!("/v1/invocations/{inv}/logs"), None),
        (Method::GET, format!("/v1/invocations/{inv}/events"), None),
        (Method::GET, format!("/v1/invocations/{inv}/artifacts"), None),
        (Method::GET, format!("/v1/invocations/{inv}/artifacts/report.txt"), None),
        (Method::POST, format!("/v1/invocations/{inv}/cancel"), None),
        (Method::POST, format!("/v1/invocations/{inv}/respond"), Some(json!({"answer": "stolen"}))),
        (Method::GET, format!("/v1/invocations/{inv}/interrupts"), None),
        (Method::DELETE, format!("/v1/api-keys/{key_id}"), None),
        (Method::GET, format!("/v1/threads/{thread}"), None),
        (Method::PATCH, format!("/v1/threads/{thread}"), Some(json!({"metadata": {"k": "stolen"}}))),
        (Method::DELETE, format!("/v1/threads/{thread}"), None),
        (Method::GET, format!("/v1/threads/{thread}/state"), None),
        (Method::POST, format!("/v1/threads/{thread}/state"), Some(json!({"state": "stolen"}))),
        (Method::GET, format!("/v1/threads/{thread}/history"), None),
        (Method::GET, "/v1/store/items?namespace=users.ada&key=prefs".into(), None),
        (Method::DELETE, "/v1/store/items?namespace=users.ada&key=prefs".into(), None),
        (Method::GET, format!("/v1/members/{owner}"), None),
        (Method::PATCH, format!("/v1/members/{owner}"), Some(json!({"role": "viewer"}))),
        (Method::DELETE, format!("/v1/members/{owner}"), None),
        (Method::DELETE, format!("/v1/invites/{invite}"), None),
    ];
    for (method, path, body) in routes {
        let mut request = beta.client.request(method.clone(), &path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "not_found", "{method} {path}");
    }
    // The operators' routes cross tenants, so no tenant's key reaches them at all.
    let alpha_id = alpha.signup.tenant.id.to_string();
    let admin_routes = [
        (Method::GET, "/v1/admin/tenants".to_owned()),
        (Method::GET, format!("/v1/admin/tenants/{alpha_id}")),
        (Method::POST, format!("/v1/admin/tenants/{alpha_id}/suspend")),
        (Method::POST, format!("/v1/admin/tenants/{alpha_id}/resume")),
        (Method::GET, "/v1/admin/workers".to_owned()),
        (Method::GET, "/v1/admin/queue".to_owned()),
    ];
    for (method, path) in admin_routes {
        let response = beta.client.request(method.clone(), &path).send().await.unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "operator_required", "{method} {path}");
    }
    let upload = beta.client.version_upload("shell-wc", bundle, true).await.unwrap_err();
    assert_eq!(upload.status(), Some(404));

    // Lists never show another tenant's rows.
    let agents: serde_json::Value =
        beta.client.request(Method::GET, "/v1/agents").send().await.unwrap().json().await.unwrap();
    assert_eq!(agents["data"], json!([]));
    for list in ["/v1/invocations".to_owned(), format!("/v1/invocations?parent_id={inv}")] {
        let invocations: serde_json::Value =
            beta.client.request(Method::GET, &list).send().await.unwrap().json().await.unwrap();
        assert_eq!(invocations["data"], json!([]), "{list}");
    }
    for list in ["/v1/members", "/v1/invites"] {
        let found: serde_json::Value =
            beta.client.request(Method::GET, list).send().await.unwrap().json().await.unwrap();
        let emails: Vec<&str> = found["data"].as_array().unwrap().iter().filter_map(|m| m["email"].as_str()).collect();
        assert!(emails.iter().all(|e| e.starts_with("beta")), "{list}: {emails:?}");
    }
    let threads: serde_json::Value =
        beta.client.request(Method::GET, "/v1/threads").send().await.unwrap().json().await.unwrap();
    assert_eq!(threads["data"], json!([]));
    // Nor can another tenant's thread be run on, or shared with one's own agent.
    app.deploy_example(&beta, "shell-wc").await;
    let foreign = beta
        .client
        .request(Method::POST, "/v1/agents/shell-wc/invoke")
        .json(&json!({"input": {}, "thread_id": thread}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);
    for (path, body) in [("/v1/store/items/search", json!({})), ("/v1/store/namespaces", json!({}))] {
        let found: serde_json::Value =
            beta.client.request(Method::POST, path).json(&body).send().await.unwrap().json().await.unwrap();
        assert_eq!(found["data"], json!([]), "{path}");
    }
    // The same namespace and key are another item in another tenant: writing it creates
    // beta's own and leaves alpha's as it was.
    let beta_memory = json!({"namespace": ["users", "ada"], "key": "prefs", "value": {"owner": "beta"}});
    let response = beta.client.request(Method::PUT, "/v1/store/items").json(&beta_memory).send().await.unwrap();
    assert_eq!(response.status(), 201);

    // And alpha's resources are untouched.
    let agent = alpha.client.agent_get("shell-wc").await.unwrap();
    assert_eq!((agent.name.as_str(), agent.active_version), ("shell-wc", Some(1)));
    assert_eq!(alpha.client.thread_get(&thread).await.unwrap().metadata, json!({}));
    alpha.client.me().await.unwrap();
    assert!(alpha.client.me().await.unwrap().scopes.allows(Scope::Admin));
    let item = alpha.client.store_item_get(&["users", "ada"], "prefs").await.unwrap();
    assert_eq!(item.value, json!({"owner": "alpha"}));
    let secrets: Vec<String> =
        alpha.client.secrets_list("shell-wc").await.unwrap().data.into_iter().map(|s| s.name).collect();
    assert_eq!(secrets, ["API_KEY"]);
    assert_eq!(alpha.client.members_list(&Default::default()).await.unwrap().data.len(), 1);
    assert_eq!(alpha.client.invites_list(&Default::default()).await.unwrap().data.len(), 1);
}
