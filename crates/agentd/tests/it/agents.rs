//! The agent registry: create, list, show, patch, delete; versions and rollback.

use agentd_api_types::{AgentStatus, CreateAgentRequest, InvocationStatus, PatchAgentRequest};
use agentd_client::ListOptions;
use agentd_test_support::{Backend, on_both_stores};
use serde_json::json;

use crate::harness::{TestApp, invoke_and_wait};

on_both_stores!(agents_are_created_listed_patched_and_deleted);
async fn agents_are_created_listed_patched_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let request = CreateAgentRequest {
        slug: "summarize".into(),
        name: Some("Summarizer".into()),
        tags: Some(vec!["text".into()]),
        ..Default::default()
    };
    let created = alpha.client.agent_create(&request).await.unwrap();
    assert_eq!(
        (created.slug.as_str(), created.name.as_str(), created.active_version),
        ("summarize", "Summarizer", None)
    );
    let err = alpha.client.agent_create(&request).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("agent_exists")));
    let err = alpha
        .client
        .agent_create(&CreateAgentRequest { slug: "Not A Slug".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(422), Some("invalid_slug")));

    let patch = PatchAgentRequest {
        description: Some("shortens text".into()),
        status: Some(AgentStatus::Disabled),
        ..Default::default()
    };
    let patched = alpha.client.agent_patch("summarize", &patch).await.unwrap();
    assert_eq!(patched.description.as_deref(), Some("shortens text"));
    assert_eq!(patched.status, AgentStatus::Disabled);
    assert_eq!(patched.tags, vec!["text".to_owned()]);

    let listed = alpha.client.agents_list(&ListOptions::default()).await.unwrap();
    assert_eq!(listed.data.iter().map(|a| a.slug.as_str()).collect::<Vec<_>>(), ["summarize"]);
    alpha.client.agent_delete("summarize").await.unwrap();
    assert_eq!(alpha.client.agent_get("summarize").await.unwrap_err().status(), Some(404));
    assert_eq!(alpha.client.agent_delete("summarize").await.unwrap_err().status(), Some(404));
}

on_both_stores!(versions_count_up_and_activating_an_old_one_rolls_back);
async fn versions_count_up_and_activating_an_old_one_rolls_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let v1 = app.deploy_script(&alpha, "which", r#"printf '{"type":"output","data":"one"}\n' >&3"#).await;
    let v2 = app.deploy_script(&alpha, "which", r#"printf '{"type":"output","data":"two"}\n' >&3"#).await;
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_ne!(v1.digest, v2.digest);
    assert_eq!(invoke_and_wait(&alpha, "which", json!({})).await.output, Some(json!("two")));

    let agent = alpha.client.version_activate("which", 1).await.unwrap();
    assert_eq!(agent.active_version, Some(1));
    let rolled_back = invoke_and_wait(&alpha, "which", json!({})).await;
    assert_eq!(
        (rolled_back.status, rolled_back.version, rolled_back.output),
        (InvocationStatus::Succeeded, 1, Some(json!("one")))
    );

    let versions = alpha.client.versions_list("which", &ListOptions::default()).await.unwrap();
    assert_eq!(versions.data.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(alpha.client.version_activate("which", 9).await.unwrap_err().status(), Some(404));
}

on_both_stores!(an_upload_with_activate_false_keeps_the_current_version);
async fn an_upload_with_activate_false_keeps_the_current_version(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "keep", "true").await;
    let dir = tempfile::tempdir().unwrap();
    crate::harness::write_shell_agent(dir.path(), "keep", "false");
    let bundle = agentd_bundle::pack_dir(dir.path()).unwrap();
    let staged = alpha.client.version_upload("keep", bundle, false).await.unwrap();
    assert_eq!(staged.version, 2);
    assert_eq!(alpha.client.agent_get("keep").await.unwrap().active_version, Some(1));
}

on_both_stores!(invoking_a_disabled_or_undeployed_agent_is_a_conflict);
async fn invoking_a_disabled_or_undeployed_agent_is_a_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    alpha.client.agent_create(&CreateAgentRequest { slug: "empty".into(), ..Default::default() }).await.unwrap();
    let request = agentd_api_types::InvokeRequest::default();
    let err = alpha.client.invoke("empty", &request, &Default::default()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("agent_has_no_version")));
    app.deploy_script(&alpha, "empty", "true").await;
    alpha
        .client
        .agent_patch("empty", &PatchAgentRequest { status: Some(AgentStatus::Disabled), ..Default::default() })
        .await
        .unwrap();
    let err = alpha.client.invoke("empty", &request, &Default::default()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("agent_disabled")));
    let err = alpha.client.invoke("missing", &request, &Default::default()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")));
}
