//! `GET /metrics`: scraped from the real server, parsed with a real exposition-format
//! parser, and watched to move when runs happen.

use agentd_api_types::InvocationStatus;
use agentd_test_support::{Backend, on_both_stores};
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

use crate::harness::{TestApp, invoke_and_wait};

async fn scrape(client: &agentd_client::Client) -> Scrape {
    parse(&client.metrics().await.expect("GET /metrics"))
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("the exposition format parses")
}

/// The value of the one sample line of `name` with exactly `labels` (in the exporter's
/// order), read from the text: `prometheus-parse` skips a line whose label value holds a
/// `}` (its pattern stops at the first one), and route templates do (`{slug}`).
fn line_value(text: &str, name: &str, labels: &str) -> f64 {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
}

/// The sum over series of `name` whose labels include every pair of `labels`; a
/// histogram counts its observations.
fn total(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matches = |s: &&Sample| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v));
    scrape
        .samples
        .iter()
        .filter(matches)
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

on_both_stores!(metrics_parse_and_move_when_runs_happen);
async fn metrics_parse_and_move_when_runs_happen(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("metered").await;
    app.deploy_script(&tenant, "echo", "#!/bin/sh\nprintf '{\"type\":\"output\",\"data\":1}\\n' >&3\n").await;
    let before_text = app.client().metrics().await.expect("GET /metrics");
    let before = parse(&before_text);
    for _ in 0..2 {
        let done = invoke_and_wait(&tenant, "echo", json!({})).await;
        assert_eq!(done.status, InvocationStatus::Succeeded, "{done:?}");
    }
    // An attempt is counted just after its completion commits, which a waiting client
    // may hear of first: scrape until it shows, for a bounded time.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let (after_text, after) = loop {
        let text = app.client().metrics().await.expect("GET /metrics");
        let scraped = parse(&text);
        let finished = |s: &Scrape| total(s, "agentd_run_attempts_finished_total", &[("status", "succeeded")]);
        if finished(&scraped) - finished(&before) >= 2.0 || tokio::time::Instant::now() > deadline {
            break (text, scraped);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };

    let moved = |name: &str, labels: &[(&str, &str)]| total(&after, name, labels) - total(&before, name, labels);
    assert!(moved("agentd_invocations_created_total", &[]) >= 2.0);
    assert!(moved("agentd_run_attempts_finished_total", &[("status", "succeeded")]) >= 2.0);
    assert!(moved("agentd_sandbox_spawn_seconds", &[]) >= 2.0, "spawn time is observed per run");
    assert!(moved("agentd_claim_duration_seconds", &[]) >= 2.0);
    let invoked = r#"method="POST",route="/v1/agents/{slug}/invoke",status="200""#;
    let requests = |text: &str| line_value(text, "agentd_http_requests_total", invoked);
    assert!(requests(&after_text) - requests(&before_text) >= 2.0, "requests are counted by route template");
    let durations = line_value(&after_text, "agentd_http_request_duration_seconds_count", invoked);
    assert!(durations >= 2.0, "{after_text}");
    let signup = [("method", "POST"), ("route", "/v1/signup"), ("status", "201")];
    assert!(total(&after, "agentd_http_requests_total", &signup) >= 1.0, "{after_text}");
    // The queue is read from the store at each scrape: every unfinished status has a series.
    for status in ["queued", "retrying", "running", "waiting_for_input"] {
        assert!(
            after.samples.iter().any(|s| s.metric == "agentd_invocations" && s.labels.get("status") == Some(status))
        );
    }
    assert!(after.samples.iter().any(|s| s.metric == "agentd_queue_oldest_ready_age_seconds"));
    assert!(after.samples.iter().any(|s| s.metric == "agentd_worker_runs_in_flight"));
    assert!(after.docs.contains_key("agentd_invocations_created_total"), "metrics carry their help text");

    // No label value is an id: series stay bounded however many tenants and runs there are.
    let ids = ["ten_", "inv_", "agt_", "usr_", "key_"];
    for sample in &after.samples {
        for (name, value) in sample.labels.iter() {
            assert!(!ids.iter().any(|p| value.contains(p)), "{} has {name}={value}", sample.metric);
            assert!(!["tenant_id", "invocation_id", "agent"].contains(&name.as_str()), "{}", sample.metric);
        }
    }
}

#[tokio::test]
async fn a_metrics_token_guards_the_scrape() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("AGENTD_METRICS_TOKEN", "scrape-me")]).await;
    let refused = app.client().metrics().await.expect_err("no token, no metrics");
    assert_eq!(refused.status(), Some(401), "{refused}");
    let wrong = app.client().with_token("scrape-you").metrics().await.expect_err("a wrong token");
    assert_eq!(wrong.status(), Some(401));
    let text = app.client().with_token("scrape-me").metrics().await.expect("the right token");
    assert!(text.contains("agentd_http_requests_total"), "{text}");
}

#[tokio::test]
async fn rate_limit_rejections_are_counted_by_limit() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.signup("throttled").await;
    // Wrong passwords until the login throttle answers 429.
    let request = agentd_api_types::LoginRequest {
        email: "throttled@example.com".into(),
        password: "wrong".into(),
        workspace_slug: None,
    };
    let mut throttled = false;
    for _ in 0..30 {
        if let Err(err) = app.client().login(&request).await
            && err.status() == Some(429)
        {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "the login throttle answers 429 in the end");
    let after = scrape(&app.client()).await;
    assert!(total(&after, "agentd_rate_limited_total", &[("limit", "login_throttled")]) >= 1.0);
}

#[tokio::test]
async fn a_remote_worker_serves_its_own_metrics_on_its_flag() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("AGENTD_WORKER_SLOTS", "0")]).await;
    let tenant = app.signup("remote-metered").await;
    app.deploy_script(&tenant, "echo", "#!/bin/sh\nprintf '{\"type\":\"output\",\"data\":1}\\n' >&3\n").await;
    // A port that was free a moment ago; the worker binds it at start.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let token = app.create_worker_token();
    let _worker = app.spawn_worker_with(&token, "metered", &["--metrics-listen", &listen]);
    let done = invoke_and_wait(&tenant, "echo", json!({})).await;
    assert_eq!(done.status, InvocationStatus::Succeeded, "{done:?}");
    let client = agentd_client::Client::new(&format!("http://{listen}")).unwrap();
    let scrape = scrape(&client).await;
    assert!(total(&scrape, "agentd_sandbox_spawn_seconds", &[]) >= 1.0, "the worker observes its spawns");
    assert!(
        scrape.samples.iter().any(|s| s.metric == "agentd_worker_runs_in_flight" && s.labels.get("worker").is_some())
    );
}
