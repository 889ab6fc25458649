//! Egress end to end: a manifest that lists a host reaches it through the worker's proxy;
//! everything else (unlisted hosts, the host's loopback services, agents without egress)
//! stays unreachable.

use std::io::{Read, Write};
use std::net::TcpListener;

use agentd_test_support::{Backend, on_both_stores};

use crate::harness::{TestApp, invoke_and_wait, log_messages, write_shell_agent};

/// A one-page HTTP server on `ip`, answering every request with `body`.
fn serve_page(ip: &str, body: &'static str) -> u16 {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request);
            let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    port
}

/// Fetches `url` with curl (which honours the proxy variables) and reports the body, or
/// the failure, as the output.
fn fetcher(url: &str) -> String {
    format!(
        "if body=$(curl -sS --max-time 10 -f {url} 2>&1); then printf '{{\"type\":\"output\",\"data\":\"%s\"}}\\n' \"$body\" >&3; \
         else printf '{{\"type\":\"output\",\"data\":\"refused\"}}\\n' >&3; fi"
    )
}

on_both_stores!(a_listed_host_is_reachable_through_the_proxy_and_nothing_else_is);
async fn a_listed_host_is_reachable_through_the_proxy_and_nothing_else_is(backend: Backend) {
    // 127.0.0.2 stands in for an outside host; the operator exempts it from the deny list,
    // while 127.0.0.1 (the host's own loopback services) stays denied.
    let app = TestApp::spawn_with(backend, &[("AGENTD_EGRESS_ALLOWED_NETWORKS", "127.0.0.2/32")]).await;
    let outside = serve_page("127.0.0.2", "hello-from-outside");
    let host_service = serve_page("127.0.0.1", "host-secret");
    let alpha = app.signup("alpha").await;

    let deploy = |slug: &'static str, egress: &'static str, url: String| {
        let dir = tempfile::tempdir().unwrap();
        write_shell_agent(dir.path(), slug, &fetcher(&url));
        let manifest = std::fs::read_to_string(dir.path().join("agent.toml")).unwrap();
        std::fs::write(dir.path().join("agent.toml"), format!("{manifest}[network]\negress = {egress}\n")).unwrap();
        dir
    };
    let cases = [
        ("listed", r#"["127.0.0.2"]"#, format!("http://127.0.0.2:{outside}/"), "hello-from-outside"),
        ("unlisted", r#"["example.com"]"#, format!("http://127.0.0.2:{outside}/"), "refused"),
        ("loopback", r#"["127.0.0.1", "localhost"]"#, format!("http://127.0.0.1:{host_service}/"), "refused"),
        ("denied", "false", format!("http://127.0.0.2:{outside}/"), "refused"),
    ];
    for (slug, egress, url, expected) in cases {
        let dir = deploy(slug, egress, url);
        app.deploy_dir(&alpha, slug, dir.path()).await;
        let done = invoke_and_wait(&alpha, slug, serde_json::json!({})).await;
        assert_eq!(done.output, Some(serde_json::json!(expected)), "{slug}: {done:?}");
        // The run's own log says what the proxy refused and why. (The loopback case never
        // asks the proxy: `NO_PROXY` sends 127.0.0.1 to the run's own loopback.)
        let said = log_messages(&alpha, done.id.as_str()).await;
        let refusal = said.iter().find(|m| m.starts_with("the egress proxy refused"));
        match slug {
            "unlisted" => assert!(refusal.is_some_and(|m| m.contains("not on this agent's egress list")), "{said:?}"),
            _ => assert!(refusal.is_none(), "{slug}: {said:?}"),
        }
    }
}
