//! Outbound webhooks end to end: a receiver in the test (a small HTTP server on
//! 127.0.0.1, allowed with `AGENTD_WEBHOOK_ALLOWED_NETWORKS`) gets signed deliveries,
//! verified by the reference Python `standardwebhooks` package; retries until a 2xx;
//! the delivery log; redelivery and rotation; an endpoint disabled after failures; a
//! delivery that survives a kill -9 between the status change and its send; the SSRF
//! refusal; per-invocation `webhook_url`; tenancy.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentd_api_types::{
    CreateWebhookRequest, InvocationStatus, InvokeRequest, PatchWebhookRequest, WebhookDeliveryStatus,
};
use agentd_client::{ClientError, InvokeOptions};
use agentd_test_support::{Backend, on_both_stores};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::{TestApp, TestTenant, invoke_and_wait, poll_invocation};

/// Loopback allowed, quick retries, a quick reconciler: what every test here starts with.
const FAST: &[(&str, &str)] = &[
    ("AGENTD_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8"),
    ("AGENTD_WEBHOOK_BACKOFF_MS", "100"),
    ("AGENTD_WEBHOOK_BACKOFF_MAX_S", "1"),
    ("AGENTD_WEBHOOK_DELIVER_EVERY_MS", "50"),
];

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Captured {
    headers: BTreeMap<String, String>,
    body: String,
}

/// A tiny HTTP/1.1 server: answers each request with the next status of its script
/// (200 once the script is used up) and keeps what it got.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Captured>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(script: &[u16]) -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").await.expect("bind receiver"), script)
    }

    fn on(listener: TcpListener, script: &[u16]) -> Receiver {
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let got: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let script = Arc::new(Mutex::new(script.to_vec()));
        let (kept, next) = (got.clone(), script.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                let (kept, next) = (kept.clone(), next.clone());
                tokio::spawn(async move {
                    let Some(captured) = read_request(&mut stream).await else { return };
                    kept.lock().expect("lock").push(captured);
                    let status = {
                        let mut script = next.lock().expect("lock");
                        if script.is_empty() { 200 } else { script.remove(0) }
                    };
                    let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Receiver { url, got, task }
    }

    fn got(&self) -> Vec<Captured> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits up to 60 s for at least `n` requests.
    async fn wait_for(&self, n: usize) -> Vec<Captured> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.got();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Captured> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: BTreeMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Captured { headers, body: String::from_utf8_lossy(&body).into_owned() })
}

/// The contract venv's python with `standardwebhooks`; `None` (after saying so)
/// outside CI.
fn reference_python() -> Option<PathBuf> {
    let found = std::env::var_os("AGENTD_TEST_PYTHON_CONTRACT").map(PathBuf::from);
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "AGENTD_TEST_PYTHON_CONTRACT is unset (.ci/run sets it)");
        eprintln!("skipping the reference check: AGENTD_TEST_PYTHON_CONTRACT is unset");
    }
    found
}

/// Verifies a captured request with the reference implementation of the spec.
fn verify_with_reference(python: &PathBuf, secret: &str, request: &Captured) -> Result<(), String> {
    const SCRIPT: &str = "import json, os, sys\n\
        from standardwebhooks.webhooks import Webhook\n\
        headers = json.loads(os.environ['HOOK_HEADERS'])\n\
        Webhook(os.environ['HOOK_SECRET']).verify(sys.stdin.buffer.read(), headers)\n";
    use std::io::Write;
    let headers = serde_json::to_string(&request.headers).expect("headers as JSON");
    let mut child = std::process::Command::new(python)
        .args(["-c", SCRIPT])
        .env("HOOK_HEADERS", headers)
        .env("HOOK_SECRET", secret)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the reference python");
    child.stdin.take().expect("stdin").write_all(request.body.as_bytes()).expect("write body");
    let out = child.wait_with_output().expect("wait for python");
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

fn endpoint_request(url: &str, events: &[&str]) -> CreateWebhookRequest {
    CreateWebhookRequest {
        url: url.to_owned(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        description: Some("test receiver".into()),
        enabled: None,
    }
}

fn api_status(err: &ClientError) -> (Option<u16>, Option<String>) {
    (err.status(), err.code().map(str::to_owned))
}

async fn deploy_echo(app: &TestApp, tenant: &TestTenant) {
    app.deploy_script(tenant, "echo", "true").await;
}

on_both_stores!(a_signed_delivery_verifies_with_the_reference_library_after_two_failures);
async fn a_signed_delivery_verifies_with_the_reference_library_after_two_failures(backend: Backend) {
    let app = TestApp::spawn_with(backend, FAST).await;
    let tenant = app.signup("hooks").await;
    deploy_echo(&app, &tenant).await;
    let receiver = Receiver::start(&[500, 500]).await;
    let created =
        tenant.client.webhook_create(&endpoint_request(&receiver.url, &["invocation.succeeded"])).await.unwrap();
    assert!(created.secret.starts_with("whsec_"), "{}", created.secret);
    // The secret is shown once: reads never carry it.
    let shown = tenant.client.webhook_get(created.endpoint.id.as_str()).await.unwrap();
    assert!(!serde_json::to_string(&shown).unwrap().contains(&created.secret));

    let invocation = invoke_and_wait(&tenant, "echo", serde_json::json!({"n": 1})).await;
    assert_eq!(invocation.status, InvocationStatus::Succeeded);
    let got = receiver.wait_for(3).await;
    assert_eq!(got.len(), 3, "three attempts: {got:?}");
    let ids: std::collections::BTreeSet<_> = got.iter().map(|r| r.headers["webhook-id"].clone()).collect();
    assert_eq!(ids.len(), 1, "every attempt carries the same webhook-id: {ids:?}");
    let last = &got[2];
    assert!(last.headers["webhook-signature"].starts_with("v1,"));
    let body: serde_json::Value = serde_json::from_str(&last.body).unwrap();
    assert_eq!(body["type"], "invocation.succeeded");
    assert_eq!(body["data"]["invocation"]["id"], invocation.id.as_str());
    assert_eq!(body["data"]["invocation"]["status"], "succeeded");
    assert!(body["timestamp"].is_string());
    if let Some(python) = reference_python() {
        verify_with_reference(&python, &created.secret, last).expect("the reference library accepts it");
        let forged = Captured { body: last.body.replace("succeeded", "failed"), ..last.clone() };
        assert!(verify_with_reference(&python, &created.secret, &forged).is_err(), "a changed body is refused");
    }

    // The log shows one delivery: three attempts, one success, with their status codes.
    let id = created.endpoint.id.as_str();
    let delivery = poll_deliveries(&tenant, id, |d| d.status == WebhookDeliveryStatus::Succeeded).await;
    let codes: Vec<_> = delivery.attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(500), Some(200)]);
    assert!(delivery.attempts[0].error.as_deref().is_some_and(|e| e.contains("500")));
    assert_eq!(delivery.attempts[2].error, None);
    assert_eq!(delivery.id.as_str(), got[0].headers["webhook-id"]);

    // Redeliver: the same message again, with the same id.
    tenant.client.webhook_redeliver(id, delivery.id.as_str()).await.unwrap();
    let again = receiver.wait_for(4).await;
    assert_eq!(again.len(), 4);
    assert_eq!(again[3].headers["webhook-id"], delivery.id.as_str());
    assert_eq!(again[3].body, last.body, "a redelivery sends the same body");

    // Rotate: later deliveries are signed with the new secret only.
    let rotated = tenant.client.webhook_rotate_secret(id).await.unwrap();
    assert_ne!(rotated.secret, created.secret);
    invoke_and_wait(&tenant, "echo", serde_json::json!({"n": 2})).await;
    let after = receiver.wait_for(5).await;
    assert_eq!(after.len(), 5);
    if let Some(python) = reference_python() {
        verify_with_reference(&python, &rotated.secret, &after[4]).expect("signed with the new secret");
        assert!(verify_with_reference(&python, &created.secret, &after[4]).is_err(), "not with the old one");
    }
    let actions = audit_actions(&tenant).await;
    for action in ["webhook.create", "webhook.redeliver", "webhook.rotate_secret"] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
}

async fn poll_deliveries(
    tenant: &TestTenant,
    endpoint: &str,
    done: impl Fn(&agentd_api_types::WebhookDelivery) -> bool,
) -> agentd_api_types::WebhookDelivery {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let log = tenant.client.webhook_deliveries(endpoint).await.unwrap();
        if let Some(first) = log.data.first()
            && (done(first) || tokio::time::Instant::now() >= deadline)
        {
            return first.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no delivery in the log");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn audit_actions(tenant: &TestTenant) -> Vec<String> {
    let page = tenant.client.audit_list(&Default::default()).await.unwrap();
    page.data.iter().map(|e| e.action.as_str().to_owned()).collect()
}

on_both_stores!(a_webhook_to_loopback_is_refused_unless_its_network_is_allowed);
async fn a_webhook_to_loopback_is_refused_unless_its_network_is_allowed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("ssrf").await;
    deploy_echo(&app, &tenant).await;
    for url in ["http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://169.254.169.254/", "http://[::1]:9/"] {
        let refused = tenant.client.webhook_create(&endpoint_request(url, &["invocation.failed"])).await.unwrap_err();
        assert_eq!(api_status(&refused), (Some(422), Some("invalid_webhook_url".into())), "{url}");
    }
    let refused = tenant.client.webhook_create(&endpoint_request("ftp://example.com/", &["invocation.failed"])).await;
    assert_eq!(api_status(&refused.unwrap_err()).0, Some(422));
    // The same check on invoke's webhook_url.
    let request = InvokeRequest { webhook_url: Some("http://127.0.0.1:9/".into()), ..InvokeRequest::default() };
    let refused = tenant.client.invoke("echo", &request, &InvokeOptions::default()).await.unwrap_err();
    assert_eq!(api_status(&refused), (Some(422), Some("invalid_webhook_url".into())));
    // Unknown events are refused too.
    let unknown = endpoint_request("https://93.184.216.34/hook", &["invocation.exploded"]);
    let refused = tenant.client.webhook_create(&unknown).await.unwrap_err();
    assert_eq!(api_status(&refused), (Some(422), Some("invalid_webhook_events".into())));
    drop(app);

    // With the operator's allow-list the same address is accepted.
    let receiver = Receiver::start(&[]).await;
    let app = TestApp::spawn_with(backend, &[("AGENTD_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")]).await;
    let tenant = app.signup("ssrf").await;
    let created = tenant.client.webhook_create(&endpoint_request(&receiver.url, &["invocation.failed"])).await;
    assert!(created.is_ok(), "{created:?}");
    let v6 = tenant.client.webhook_create(&endpoint_request("http://[::1]:9/", &["invocation.failed"])).await;
    assert_eq!(api_status(&v6.unwrap_err()).0, Some(422), "::1 is outside 127.0.0.0/8");
}

on_both_stores!(a_status_change_committed_before_a_crash_is_delivered_once_after_it);
async fn a_status_change_committed_before_a_crash_is_delivered_once_after_it(backend: Backend) {
    // The reconciler's first pass runs at start; the next would come a minute later, so
    // the run's delivery stays in the outbox, unsent, until the crash.
    let slow: Vec<(&str, &str)> = FAST
        .iter()
        .copied()
        .filter(|(k, _)| *k != "AGENTD_WEBHOOK_DELIVER_EVERY_MS")
        .chain([("AGENTD_WEBHOOK_DELIVER_EVERY_MS", "60000")])
        .collect();
    let mut app = TestApp::spawn_with(backend, &slow).await;
    let tenant = app.signup("crash").await;
    deploy_echo(&app, &tenant).await;
    let receiver = Receiver::start(&[]).await;
    let created =
        tenant.client.webhook_create(&endpoint_request(&receiver.url, &["invocation.succeeded"])).await.unwrap();
    let invocation = invoke_and_wait(&tenant, "echo", serde_json::json!({})).await;
    assert_eq!(invocation.status, InvocationStatus::Succeeded);
    let pending = tenant.client.webhook_deliveries(created.endpoint.id.as_str()).await.unwrap();
    assert_eq!(pending.data.len(), 1, "written with the status change");
    assert_eq!(pending.data[0].status, WebhookDeliveryStatus::Pending);

    app.crash().await;
    app.set_env("AGENTD_WEBHOOK_DELIVER_EVERY_MS", Some("50"));
    app.start_again().await;
    // The server listens on a new port.
    let tenant = TestTenant {
        client: app.client().with_token(tenant.key.clone()),
        key: tenant.key.clone(),
        signup: tenant.signup.clone(),
    };
    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let delivered =
        poll_deliveries(&tenant, created.endpoint.id.as_str(), |d| d.status == WebhookDeliveryStatus::Succeeded).await;
    assert_eq!(delivered.status, WebhookDeliveryStatus::Succeeded);
    // Nothing else arrives: one message, one webhook-id.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids: std::collections::BTreeSet<_> = receiver.got().iter().map(|r| r.headers["webhook-id"].clone()).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids.into_iter().next().as_deref(), Some(delivered.id.as_str()));
}

on_both_stores!(an_invocations_own_webhook_url_gets_its_terminal_event_signed_with_the_tenant_secret);
async fn an_invocations_own_webhook_url_gets_its_terminal_event_signed_with_the_tenant_secret(backend: Backend) {
    let app = TestApp::spawn_with(backend, FAST).await;
    let tenant = app.signup("own").await;
    app.deploy_script(&tenant, "fails", "echo broken >&2; exit 3").await;
    let receiver = Receiver::start(&[]).await;
    let request =
        InvokeRequest { webhook_url: Some(receiver.url.clone()), max_attempts: Some(1), ..InvokeRequest::default() };
    let accepted = tenant.client.invoke("fails", &request, &InvokeOptions::default()).await.unwrap();
    let done =
        poll_invocation(&tenant, accepted.id.as_str(), Duration::from_secs(60), |i| i.status.is_terminal()).await;
    assert_eq!(done.status, InvocationStatus::Failed);
    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "invocation.failed");
    assert_eq!(body["data"]["invocation"]["id"], accepted.id.as_str());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let log = loop {
        let log = tenant.client.invocation_webhook_deliveries(accepted.id.as_str()).await.unwrap();
        let done = log.data.first().is_some_and(|d| d.status == WebhookDeliveryStatus::Succeeded);
        if done || tokio::time::Instant::now() >= deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(log.data.len(), 1, "{log:?}");
    assert_eq!(log.data[0].endpoint_id, None);
    assert_eq!(log.data[0].id.as_str(), got[0].headers["webhook-id"]);
    assert_eq!(log.data[0].attempts.len(), 1);
    assert_eq!(log.data[0].attempts[0].status_code, Some(200));
    let secret = tenant.client.webhook_invocation_secret().await.unwrap().secret;
    assert!(secret.starts_with("whsec_"));
    if let Some(python) = reference_python() {
        verify_with_reference(&python, &secret, &got[0]).expect("signed with the tenant's invocation secret");
    }
    // The secret stays the same until rotated.
    assert_eq!(tenant.client.webhook_invocation_secret().await.unwrap().secret, secret);
    let rotated = tenant.client.webhook_rotate_invocation_secret().await.unwrap().secret;
    assert_ne!(rotated, secret);
    assert_eq!(tenant.client.webhook_invocation_secret().await.unwrap().secret, rotated);
}

on_both_stores!(an_endpoint_that_keeps_failing_is_disabled_with_an_audit_entry);
async fn an_endpoint_that_keeps_failing_is_disabled_with_an_audit_entry(backend: Backend) {
    let mut env = FAST.to_vec();
    env.extend([("AGENTD_WEBHOOK_RETRY_WINDOW_S", "0"), ("AGENTD_WEBHOOK_DISABLE_AFTER", "2")]);
    let app = TestApp::spawn_with(backend, &env).await;
    let tenant = app.signup("failing").await;
    deploy_echo(&app, &tenant).await;
    let receiver = Receiver::start(&[500, 500, 500, 500]).await;
    let created =
        tenant.client.webhook_create(&endpoint_request(&receiver.url, &["invocation.succeeded"])).await.unwrap();
    let id = created.endpoint.id.as_str();
    for n in 0..2 {
        invoke_and_wait(&tenant, "echo", serde_json::json!({"n": n})).await;
        receiver.wait_for(n + 1).await;
        poll_deliveries(&tenant, id, |d| d.status == WebhookDeliveryStatus::Failed).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let endpoint = loop {
        let endpoint = tenant.client.webhook_get(id).await.unwrap();
        if !endpoint.enabled || tokio::time::Instant::now() >= deadline {
            break endpoint;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!endpoint.enabled, "disabled after two failed deliveries: {endpoint:?}");
    assert_eq!(endpoint.consecutive_failures, 2);
    assert!(endpoint.disabled_reason.is_some());
    let page = tenant.client.audit_list(&Default::default()).await.unwrap();
    let disabled = page.data.iter().find(|e| e.action.as_str() == "webhook.disable").expect("an audit entry");
    assert_eq!(disabled.resource_id, id);
    assert_eq!(disabled.actor.id, "platform");

    // Disabled: no more deliveries are made for it.
    let before = receiver.got().len();
    invoke_and_wait(&tenant, "echo", serde_json::json!({"n": 9})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got().len(), before);
    // Enabled again by the tenant, with its failures forgotten.
    let patch = PatchWebhookRequest { enabled: Some(true), ..PatchWebhookRequest::default() };
    let enabled = tenant.client.webhook_patch(id, &patch).await.unwrap();
    assert!(enabled.enabled);
    assert_eq!(enabled.consecutive_failures, 0);
    assert_eq!(enabled.disabled_reason, None);
}

on_both_stores!(another_tenants_webhooks_are_not_found);
async fn another_tenants_webhooks_are_not_found(backend: Backend) {
    let app = TestApp::spawn_with(backend, FAST).await;
    let owner = app.signup("owner").await;
    let other = app.signup("other").await;
    let receiver = Receiver::start(&[]).await;
    let created = owner.client.webhook_create(&endpoint_request(&receiver.url, &["invocation.failed"])).await.unwrap();
    let id = created.endpoint.id.as_str();
    let not_found = |r: Result<(), ClientError>| assert_eq!(r.unwrap_err().status(), Some(404));
    not_found(other.client.webhook_get(id).await.map(drop));
    not_found(other.client.webhook_patch(id, &PatchWebhookRequest::default()).await.map(drop));
    not_found(other.client.webhook_rotate_secret(id).await.map(drop));
    not_found(other.client.webhook_deliveries(id).await.map(drop));
    not_found(other.client.webhook_redeliver(id, "dlv_00000000000000000000000000000000").await.map(drop));
    not_found(other.client.webhook_delete(id).await);
    assert!(other.client.webhooks_list().await.unwrap().data.is_empty());
    assert_eq!(owner.client.webhooks_list().await.unwrap().data.len(), 1);
    owner.client.webhook_delete(id).await.unwrap();
    not_found(owner.client.webhook_get(id).await.map(drop));
}

/// Asks a question, then ends with the answer.
const ASKS: &str = r#"from agentd import run

def handler(ctx):
    return {"answer": ctx.ask("go on?")}

run(handler)
"#;

on_both_stores!(a_question_is_delivered_as_waiting_for_input_and_the_answer_as_succeeded);
async fn a_question_is_delivered_as_waiting_for_input_and_the_answer_as_succeeded(backend: Backend) {
    let app = TestApp::spawn_with(backend, FAST).await;
    let tenant = app.signup("asks").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("agent.toml"), "name = \"asks\"\nruntime = \"python\"\nentrypoint = \"main.py\"\n")
        .unwrap();
    std::fs::write(dir.path().join("main.py"), ASKS).unwrap();
    app.deploy_dir(&tenant, "asks", dir.path()).await;
    let receiver = Receiver::start(&[]).await;
    let events = ["invocation.waiting_for_input", "invocation.succeeded"];
    tenant.client.webhook_create(&endpoint_request(&receiver.url, &events)).await.unwrap();
    let accepted = tenant.client.invoke("asks", &InvokeRequest::default(), &InvokeOptions::default()).await.unwrap();
    let id = accepted.id.as_str();
    let waiting =
        poll_invocation(&tenant, id, Duration::from_secs(60), |i| i.status == InvocationStatus::WaitingForInput).await;
    assert_eq!(waiting.status, InvocationStatus::WaitingForInput);
    let got = receiver.wait_for(1).await;
    let first: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(first["type"], "invocation.waiting_for_input");
    assert_eq!(first["data"]["invocation"]["status"], "waiting_for_input");
    tenant.client.respond(id, serde_json::json!("yes"), None).await.unwrap();
    let got = receiver.wait_for(2).await;
    assert_eq!(got.len(), 2);
    let second: serde_json::Value = serde_json::from_str(&got[1].body).unwrap();
    assert_eq!(second["type"], "invocation.succeeded");
    assert_ne!(got[0].headers["webhook-id"], got[1].headers["webhook-id"], "two events, two messages");
}

on_both_stores!(a_master_key_rotation_re_seals_webhook_secrets_and_deliveries_stay_signed_with_them);
async fn a_master_key_rotation_re_seals_webhook_secrets_and_deliveries_stay_signed_with_them(backend: Backend) {
    use agentd_control::MasterKey;
    let (old, new) = (MasterKey::generate(), MasterKey::generate());
    let (old_text, new_text) = (old.to_base64().expose().to_owned(), new.to_base64().expose().to_owned());
    let mut env = FAST.to_vec();
    env.push(("AGENTD_MASTER_KEY", &old_text));
    let mut app = TestApp::spawn_with(backend, &env).await;
    let tenant = app.signup("hooks").await;
    deploy_echo(&app, &tenant).await;
    let receiver = Receiver::start(&[]).await;
    let created =
        tenant.client.webhook_create(&endpoint_request(&receiver.url, &["invocation.succeeded"])).await.unwrap();
    let invocation_secret = tenant.client.webhook_invocation_secret().await.unwrap();

    let keys = [("AGENTD_MASTER_KEY", new_text.as_str()), ("AGENTD_PREVIOUS_MASTER_KEY", old_text.as_str())];
    let rotated = app.admin(&["secrets", "rotate"], &keys);
    let stdout = String::from_utf8_lossy(&rotated.stdout).into_owned();
    assert!(rotated.status.success(), "{stdout}{}", String::from_utf8_lossy(&rotated.stderr));
    assert!(stdout.contains("re-encrypted 2 secrets"), "the endpoint's and the invocation secret: {stdout}");
    assert!(stdout.contains(&format!("{}: 2 (current)", new.id())), "{stdout}");

    // Only the new key now: deliveries are still signed with the secrets as they were made.
    app.set_env("AGENTD_MASTER_KEY", Some(&new_text));
    app.restart().await;
    let client = app.client().with_token(tenant.key.clone());
    assert_eq!(client.webhook_invocation_secret().await.unwrap().secret, invocation_secret.secret);
    let done = crate::harness::invoke_and_wait(
        &TestTenant { client, key: tenant.key.clone(), signup: tenant.signup.clone() },
        "echo",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(done.status, InvocationStatus::Succeeded);
    let got = receiver.wait_for(1).await;
    if let Some(python) = reference_python() {
        verify_with_reference(&python, &created.secret, &got[0]).expect("signed with the endpoint's own secret");
    }
}

on_both_stores!(webhooks_are_managed_from_the_command_line);
async fn webhooks_are_managed_from_the_command_line(backend: Backend) {
    let app = TestApp::spawn_with(backend, FAST).await;
    let shell = crate::cli::Shell::new(&app.base_url);
    shell.signup().await;
    let dir = tempfile::tempdir().unwrap();
    crate::harness::write_shell_agent(dir.path(), "echo", "printf '{\"type\":\"output\",\"data\":1}\\n' >&3");
    shell.ok(&["agents", "deploy", &dir.path().to_string_lossy(), "--slug", "echo"]).await;
    let receiver = Receiver::start(&[]).await;

    let made = shell.ok(&["webhooks", "create", &receiver.url, "--event", "invocation.succeeded"]).await;
    assert!(made.stdout.contains("secret: whsec_"), "{made:#?}");
    let id = made.stdout.split_whitespace().find(|w| w.starts_with("whk_")).unwrap().to_owned();
    let listed = shell.ok(&["webhooks", "list"]).await;
    assert!(listed.stdout.contains(&id) && !listed.stdout.contains("whsec_"), "{listed:#?}");
    shell.ok(&["invoke", "echo", "--input", "{}", "--wait"]).await;
    receiver.wait_for(1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let deliveries = crate::cli::json(&shell.ok(&["webhooks", "deliveries", &id, "--json"]).await.stdout);
        if deliveries["data"][0]["status"] == "succeeded" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{deliveries}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rotated = shell.ok(&["webhooks", "rotate-secret", &id]).await;
    assert!(rotated.stdout.contains("secret: whsec_") && rotated.stdout != made.stdout, "{rotated:#?}");
    let bad = shell.run(&["webhooks", "create", &receiver.url, "--event", "invocation.exploded"]).await;
    assert_eq!(bad.code, Some(2), "{bad:#?}");
    shell.ok(&["webhooks", "delete", &id]).await;
    let gone = shell.run(&["webhooks", "show", &id]).await;
    assert_eq!(gone.code, Some(4), "{gone:#?}");
}
