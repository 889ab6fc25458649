//! Limits: each answers with its own code when hit; `GET /v1/limits` shows every limit
//! with its source (the platform's default or the workspace's override) and its use; an
//! operator sets and drops overrides with `agentd admin limits`.

use agentd_api_types::{CreateAgentRequest, CreateApiKeyRequest, InvokeRequest, Scope};
use agentd_client::InvokeOptions;
use agentd_test_support::{Backend, on_both_stores};

use crate::harness::{TestApp, TestTenant};

fn agent(slug: &str) -> CreateAgentRequest {
    serde_json::from_value(serde_json::json!({"slug": slug})).expect("agent request")
}

fn key(name: &str) -> CreateApiKeyRequest {
    CreateApiKeyRequest { name: name.into(), scopes: Some(vec![Scope::Read]), expires_in_days: None }
}

on_both_stores!(each_limit_hit_answers_with_its_own_name);
async fn each_limit_hit_answers_with_its_own_name(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("AGENTD_LIMITS_MAX_AGENTS", "1"),
            ("AGENTD_LIMITS_MAX_API_KEYS", "1"),
            ("AGENTD_LIMITS_INVOCATION_TIMEOUT_S", "30"),
        ],
    )
    .await;
    let alpha = app.signup("capped").await;
    app.deploy_script(&alpha, "only", "cat > /dev/null; echo hi").await;
    let err = alpha.client.agent_create(&agent("second")).await.expect_err("over max_agents");
    assert_eq!((err.status(), err.code()), (Some(409), Some("max_agents")), "{err}");
    // The signup's key is the one key allowed.
    let err = alpha.client.api_key_create(&key("second")).await.expect_err("over max_api_keys");
    assert_eq!((err.status(), err.code()), (Some(409), Some("max_api_keys")), "{err}");
    let long = InvokeRequest { timeout_s: Some(31), ..Default::default() };
    let err = alpha.client.invoke("only", &long, &InvokeOptions::default()).await.expect_err("over the cap");
    assert_eq!((err.status(), err.code()), (Some(422), Some("invocation_timeout_s")), "{err}");
}

on_both_stores!(limits_show_their_source_and_an_operator_override_applies_at_once);
async fn limits_show_their_source_and_an_operator_override_applies_at_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_LIMITS_MAX_AGENTS", "1")]).await;
    let alpha = app.signup("overridden").await;
    let other = app.signup("untouched").await;
    alpha.client.agent_create(&agent("first")).await.expect("first agent");

    let shown = alpha.client.limits().await.expect("limits");
    let max_agents = &shown.limits["max_agents"];
    assert_eq!((max_agents.value, max_agents.source.as_str(), max_agents.used), (1, "default", Some(1)));
    assert_eq!(shown.limits["max_api_keys"].used, Some(1));
    assert_eq!(shown.limits["memory_mb"].used, None);
    assert_eq!(shown.limits.len(), agentd_core::TenantLimits::names().len());

    let set = app.admin(&["limits", "set", "overridden", "max_agents=3", "memory_mb=256"], &[]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let table = String::from_utf8_lossy(&set.stdout);
    assert!(table.lines().any(|l| l.starts_with("max_agents") && l.ends_with("override")), "{table}");

    alpha.client.agent_create(&agent("second")).await.expect("the override lifts the default");
    let shown = alpha.client.limits().await.expect("limits");
    assert_eq!((shown.limits["max_agents"].value, shown.limits["max_agents"].source.as_str()), (3, "override"));
    assert_eq!((shown.limits["memory_mb"].value, shown.limits["memory_mb"].source.as_str()), (256, "override"));
    let untouched = other.client.limits().await.expect("limits");
    assert_eq!(untouched.limits["max_agents"].source, "default");

    let tenant_id = alpha.signup.tenant.id.to_string();
    // The command shows effective values under the defaults of its own environment.
    let server_env = [("AGENTD_LIMITS_MAX_AGENTS", "1")];
    let unset = app.admin(&["limits", "unset", &tenant_id, "max_agents", "--json"], &server_env);
    assert!(unset.status.success(), "{}", String::from_utf8_lossy(&unset.stderr));
    let json: serde_json::Value = serde_json::from_slice(&unset.stdout).expect("json");
    assert_eq!(json["limits"]["max_agents"], serde_json::json!({"value": 1, "source": "default"}));
    let err = alpha.client.agent_create(&agent("third")).await.expect_err("back at the default");
    assert_eq!(err.code(), Some("max_agents"));

    for (args, says) in [
        (vec!["limits", "set", "overridden", "max_agnts=3"], "not a limit"),
        (vec!["limits", "set", "overridden", "max_agents=lots"], "whole number"),
        (vec!["limits", "unset", "overridden", "nope"], "not a limit"),
        (vec!["limits", "show", "nobody"], "no tenant"),
    ] {
        let out = app.admin(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{args:?}: {stderr}");
    }
}

on_both_stores!(a_changed_default_reaches_tenants_without_an_override_on_restart);
async fn a_changed_default_reaches_tenants_without_an_override_on_restart(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, &[("AGENTD_LIMITS_MAX_AGENTS", "1")]).await;
    let alpha = app.signup("follows").await;
    app.set_env("AGENTD_LIMITS_MAX_AGENTS", Some("7"));
    app.restart().await;
    let alpha = TestTenant { client: app.client().with_token(alpha.key.clone()), ..alpha };
    let shown = alpha.client.limits().await.expect("limits");
    assert_eq!((shown.limits["max_agents"].value, shown.limits["max_agents"].source.as_str()), (7, "default"));
}

on_both_stores!(a_full_queue_answers_max_queued_invocations_until_an_override_makes_room);
async fn a_full_queue_answers_max_queued_invocations_until_an_override_makes_room(backend: Backend) {
    // No worker: what is accepted stays queued.
    let app =
        TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "0"), ("AGENTD_LIMITS_MAX_QUEUED_INVOCATIONS", "1")])
            .await;
    let alpha = app.signup("queued").await;
    app.deploy_script(&alpha, "waits", "cat > /dev/null; echo hi").await;
    let (request, options) = (InvokeRequest::default(), InvokeOptions::default());
    let invoke = || alpha.client.invoke("waits", &request, &options);
    invoke().await.expect("the first is queued");
    let err = invoke().await.expect_err("the queue is full");
    assert_eq!((err.status(), err.code()), (Some(409), Some("max_queued_invocations")), "{err}");

    let set = app.admin(&["limits", "set", "queued", "max_queued_invocations=2"], &[]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    invoke().await.expect("the override makes room");
    let shown = alpha.client.limits().await.expect("limits");
    assert_eq!(shown.limits["max_queued_invocations"].used, Some(2));
}

on_both_stores!(storage_counts_a_bundle_shared_by_two_versions_once_and_refuses_past_the_limit);
async fn storage_counts_a_bundle_shared_by_two_versions_once_and_refuses_past_the_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("stored").await;
    let first = app.deploy_script(&alpha, "same", "cat > /dev/null; echo same").await;
    let second = app.deploy_script(&alpha, "same", "cat > /dev/null; echo same").await;
    assert_eq!(first.digest, second.digest, "the same bundle twice");
    let used = alpha.client.limits().await.expect("limits").limits["max_storage_bytes"].used;
    assert_eq!(used, Some(first.size_bytes), "one blob, counted once");

    let limit = first.size_bytes.to_string();
    let set = app.admin(&["limits", "set", "stored", &format!("max_storage_bytes={limit}")], &[]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    app.deploy_script(&alpha, "same", "cat > /dev/null; echo same").await;
    let dir = tempfile::tempdir().expect("temp dir");
    crate::harness::write_shell_agent(dir.path(), "same", "cat > /dev/null; echo different");
    let other = agentd_bundle::pack_dir(dir.path()).expect("pack");
    let err = alpha.client.version_upload("same", other, true).await.expect_err("past max_storage_bytes");
    assert_eq!((err.status(), err.code()), (Some(413), Some("max_storage_bytes")), "{err}");
}
