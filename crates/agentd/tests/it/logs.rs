//! The server's log as a log shipper reads it: JSON lines when stderr is not a terminal,
//! one line per request with its route template, and every line inside a request
//! carrying its `request_id` (and `tenant_id`, `invocation_id` once known).

use agentd_api_types::InvocationStatus;
use agentd_test_support::Backend;
use serde_json::{Value, json};

use crate::harness::{TestApp, invoke_and_wait};

fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .map(|line| line.strip_prefix("[agentd] ").unwrap_or(line))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect()
}

#[tokio::test]
async fn requests_log_json_lines_with_route_template_and_ids() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let tenant = app.signup("logged").await;
    app.deploy_script(&tenant, "echo", "#!/bin/sh\nprintf '{\"type\":\"output\",\"data\":1}\\n' >&3\n").await;
    let done = invoke_and_wait(&tenant, "echo", json!({})).await;
    assert_eq!(done.status, InvocationStatus::Succeeded);
    tenant.client.invocation_get(done.id.as_str()).await.expect("get");
    // The log is read from the server's stderr as it comes: wait for the last request's line.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let lines = loop {
        let lines = json_lines(&app.server_log());
        let logged = lines.iter().any(|l| l["fields"]["route"] == "/v1/invocations/{id}");
        if logged || tokio::time::Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };

    let served: Vec<&Value> = lines.iter().filter(|l| l["fields"]["message"] == "served").collect();
    let get = served
        .iter()
        .find(|l| l["fields"]["route"] == "/v1/invocations/{id}")
        .unwrap_or_else(|| panic!("no line for GET /v1/invocations/{{id}}: {served:#?}"));
    assert_eq!(get["fields"]["status"], 200);
    assert!(get["fields"]["latency_ms"].is_number());
    assert_eq!(get["span"]["method"], "GET");
    assert!(get["span"]["request_id"].as_str().is_some_and(|r| r.starts_with("req_")));
    assert_eq!(get["span"]["tenant_id"], tenant.signup.tenant.id.as_str());
    assert_eq!(get["span"]["invocation_id"], done.id.as_str());
    assert!(get["span"].get("path").is_none(), "the path (with its ids) is not a field: {get}");
    let invoke = served.iter().find(|l| l["fields"]["route"] == "/v1/agents/{slug}/invoke").expect("invoke line");
    assert_eq!(invoke["span"]["invocation_id"], done.id.as_str(), "the invocation made is named: {invoke}");

    // Every line logged inside a request (the domain's too) names the request.
    let inside: Vec<&Value> = lines
        .iter()
        .filter(|l| l["spans"].as_array().is_some_and(|s| s.iter().any(|s| s["name"] == "request")))
        .collect();
    assert!(inside.iter().any(|l| l["fields"]["message"] == "accepted"), "the domain logs inside the request");
    for line in inside {
        assert!(line["spans"][0]["request_id"].is_string(), "{line}");
    }
    // A run's lines carry the tenant and the invocation.
    let run = lines.iter().find(|l| l["span"]["name"] == "run").map(|l| &l["span"]);
    if let Some(run) = run {
        assert_eq!(run["invocation_id"], done.id.as_str());
        assert_eq!(run["tenant_id"], tenant.signup.tenant.id.as_str());
    }
}

#[tokio::test]
async fn log_format_pretty_is_text() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("AGENTD_LOG_FORMAT", "pretty")]).await;
    app.client().healthz().await.expect("healthz");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let log = loop {
        let log = app.server_log();
        if log.contains("served") || tokio::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let line = log.lines().find(|l| l.contains("served")).unwrap_or_else(|| panic!("{log}"));
    assert!(serde_json::from_str::<Value>(line.trim_start_matches("[agentd] ")).is_err(), "{line}");
    assert!(line.contains("route=/healthz"), "{line}");
}
