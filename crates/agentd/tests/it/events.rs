//! `GET /v1/invocations/{id}/events`: Server-Sent Events, live, resumable with
//! `Last-Event-ID`, and served by any replica.

use std::time::Duration;

use agentd_test_support::{Backend, on_both_stores, on_postgres};
use futures_util::StreamExt;

use crate::harness::{TestApp, TestTenant};

/// One SSE message as sent: `id`, `event` and `data` lines.
#[derive(Debug, Default, Clone)]
pub struct Message {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

/// Reads the stream of `id` until its `end` event (or 60 s), from `base_url`.
async fn read_events(base_url: &str, tenant: &TestTenant, id: &str, last_event_id: Option<u64>) -> Vec<Message> {
    read_stream(base_url, tenant, &format!("/v1/invocations/{id}/events"), last_event_id).await
}

/// Reads the SSE stream at `path` until its `end` event (or 60 s).
pub async fn read_stream(base_url: &str, tenant: &TestTenant, path: &str, last_event_id: Option<u64>) -> Vec<Message> {
    let client = reqwest::Client::new();
    let mut request =
        client.get(format!("{base_url}{path}")).bearer_auth(&tenant.key).header("accept", "text/event-stream");
    if let Some(last) = last_event_id {
        request = request.header("last-event-id", last.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut messages = Vec::new();
    let read = async {
        while let Some(chunk) = body.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            while let Some(at) = buffer.find("\n\n") {
                let block: String = buffer.drain(..at + 2).collect();
                let mut message = Message::default();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ").or_else(|| line.strip_prefix("id:")) {
                        message.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ").or_else(|| line.strip_prefix("event:")) {
                        message.event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ").or_else(|| line.strip_prefix("data:")) {
                        message.data.push_str(v);
                    }
                }
                if message.event.is_empty() && message.data.is_empty() {
                    continue; // keep-alive comment
                }
                let end = message.event == "end";
                messages.push(message);
                if end {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read).await.expect("the stream ended within 60 s");
    messages
}

const TALKER: &str = "echo one\nsleep 0.3\necho two\nprintf '{\"type\":\"output\",\"data\":\"done\"}\\n' >&3";

on_both_stores!(the_event_stream_follows_a_run_live_and_resumes_after_last_event_id);
async fn the_event_stream_follows_a_run_live_and_resumes_after_last_event_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "talker", TALKER).await;
    let queued = alpha.client.invoke("talker", &Default::default(), &Default::default()).await.unwrap();
    let messages = read_events(&app.base_url, &alpha, queued.id.as_str(), None).await;

    let seqs: Vec<u64> = messages.iter().filter_map(|m| m.id.as_deref()).map(|s| s.parse().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, in order, from 1");
    let logs: Vec<String> = messages
        .iter()
        .filter(|m| m.event == "log")
        .map(|m| serde_json::from_str::<serde_json::Value>(&m.data).unwrap()["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(logs.contains(&"one".to_owned()) && logs.contains(&"two".to_owned()), "{logs:?}");
    let end = messages.last().unwrap();
    assert_eq!(end.event, "end");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&end.data).unwrap()["status"], "succeeded");

    let resumed = read_events(&app.base_url, &alpha, queued.id.as_str(), Some(2)).await;
    assert_eq!(resumed.first().and_then(|m| m.id.as_deref()), Some("3"), "resumes after Last-Event-ID");
    assert_eq!(resumed.len(), messages.len() - 2);

    // Another tenant's invocation does not exist; a bad Last-Event-ID is a clear 400.
    let beta = app.signup("beta").await;
    let url = format!("{}/v1/invocations/{}/events", app.base_url, queued.id);
    let foreign = reqwest::Client::new().get(&url).bearer_auth(&beta.key).send().await.unwrap();
    assert_eq!(foreign.status(), 404);
    let bad = reqwest::Client::new().get(&url).bearer_auth(&alpha.key).header("last-event-id", "x").send().await;
    assert_eq!(bad.unwrap().status(), 400);
}

on_postgres!(any_replica_streams_a_run_that_another_replica_executes);
/// The run executes on one replica's worker while a client follows it on another.
async fn any_replica_streams_a_run_that_another_replica_executes() {
    let runner = TestApp::spawn(Backend::Postgres).await;
    let watcher = runner.replica_apart(&[("AGENTD_WORKER_SLOTS", "0")]).await;
    let alpha = runner.signup("alpha").await;
    let script = "echo one\nsleep 1\necho two\nprintf '{\"type\":\"output\",\"data\":\"done\"}\\n' >&3";
    runner.deploy_script(&alpha, "talker", script).await;
    let queued = alpha.client.invoke("talker", &Default::default(), &Default::default()).await.unwrap();
    let messages = read_events(&watcher.base_url, &alpha, queued.id.as_str(), None).await;
    assert!(messages.iter().any(|m| m.event == "log" && m.data.contains("\"two\"")), "{messages:?}");
    assert_eq!(messages.last().unwrap().event, "end");
}

/// A TCP relay to `target` that cuts every connection after `cut_after` bytes from the
/// server: a network that drops mid-stream.
async fn flaky_relay(target: String, cut_after: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else { return };
                let (mut client_read, mut client_write) = client.split();
                let (mut server_read, mut server_write) = server.split();
                let upstream = tokio::io::copy(&mut client_read, &mut server_write);
                let downstream = async {
                    let mut sent = 0;
                    let mut buffer = [0u8; 256];
                    while sent < cut_after {
                        let n = server_read.read(&mut buffer).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        let n = n.min(cut_after - sent);
                        if client_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                        sent += n;
                    }
                };
                tokio::select! { _ = upstream => {}, _ = downstream => {} }
            });
        }
    });
    address
}

on_both_stores!(the_client_follower_reconnects_after_a_drop_without_gaps_or_repeats);
async fn the_client_follower_reconnects_after_a_drop_without_gaps_or_repeats(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "talker", TALKER).await;
    let queued = alpha.client.invoke("talker", &Default::default(), &Default::default()).await.unwrap();
    // Every connection dies partway through the response: the follower must resume.
    let relay = flaky_relay(app.base_url.trim_start_matches("http://").to_owned(), 700).await;
    let client = agentd_client::Client::new(&relay).unwrap().with_token(alpha.key.clone());
    let mut follower = client.follow(queued.id.as_str(), None);
    let mut seqs = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match follower.next().await.expect("follow") {
                Some(agentd_client::Followed::Event(event)) => seqs.push(event.seq),
                Some(agentd_client::Followed::End { status, .. }) => return status,
                None => panic!("ended without an end"),
            }
        }
    })
    .await
    .expect("the follower reached the end");
    assert_eq!(end, agentd_api_types::InvocationStatus::Succeeded);
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event once, in order");
    assert!(seqs.len() >= 4, "{seqs:?}");
}
