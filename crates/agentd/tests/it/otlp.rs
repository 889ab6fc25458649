//! OpenTelemetry trace export (the `otlp` feature): with `OTEL_EXPORTER_OTLP_ENDPOINT`
//! set, the server sends its request spans over OTLP/HTTP to a receiver the test runs,
//! and a request's span arrives carrying the request's id. Run by
//! `cargo test -p agentd --features otlp --test it otlp` (`.ci/run` does).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentd_test_support::Backend;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use reqwest::Method;

use crate::harness::TestApp;

/// What the receiver got: each request's content type and body.
type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

async fn traces(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> &'static str {
    let kind = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    received.lock().unwrap().push((kind, body));
    ""
}

#[tokio::test]
async fn request_spans_are_exported_over_otlp_http() {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().route("/v1/traces", post(traces)).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut server = TestApp::spawn_with(
        Backend::Sqlite,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint), ("OTEL_BSP_SCHEDULE_DELAY", "100")],
    )
    .await;
    let response = server.client().request(Method::GET, "/v1/runtimes").send().await.unwrap();
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let found = received.lock().unwrap().iter().any(|(kind, body)| {
            kind == "application/x-protobuf" && body.windows(request_id.len()).any(|w| w == request_id.as_bytes())
        });
        if found {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no exported span carries {request_id}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let service = received.lock().unwrap().iter().any(|(_, body)| body.windows(6).any(|w| w == b"agentd"));
    assert!(service, "the spans name their service");
    server.stop().await;
}
