//! Inbound triggers: an agent's URLs that another system POSTs signed requests to, with
//! no API key. The tests sign as a sender would, with their own HMAC (the `hmac` and
//! `sha2` crates, not the server's signatures module): GitHub's `X-Hub-Signature-256`
//! and the Standard Webhooks headers. A request without a good signature starts
//! nothing; a good one starts a run whose input is the body (or its envelope); a
//! repeated delivery id starts nothing more, even sent twice at once.

use std::time::Duration;

use agentd_api_types::{CreateTriggerRequest, CreatedTrigger, InvocationStatus, TriggerMode};
use agentd_client::{AuditFilter, InvocationFilter};
use agentd_control::MasterKey;
use agentd_test_support::{Backend, on_both_stores};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::cli::{Shell, json};
use crate::harness::{TestApp, TestTenant, poll_invocation};

/// Outputs the document it was started with, so a test sees the input the run got.
const ECHO: &str = r#"doc=$(cat); printf '{"type":"output","data":%s}\n' "$doc" >&3"#;

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret.as_bytes(), &[body])))
}

/// `webhook-signature` for `id`, `timestamp` and `body` under a `whsec_` secret.
fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = BASE64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let tag = hmac_sha256(&key, &[id.as_bytes(), b".", timestamp.to_string().as_bytes(), b".", body]);
    format!("v1,{}", BASE64.encode(tag))
}

fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn create(tenant: &TestTenant, slug: &str, mode: TriggerMode, envelope: bool) -> CreatedTrigger {
    let request = CreateTriggerRequest { mode, envelope: Some(envelope), description: Some("from CI".into()) };
    tenant.client.trigger_create(slug, &request).await.expect("create trigger")
}

/// POSTs `body` to `url` with `headers` and no credential.
async fn send(url: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url).header("content-type", "application/json").body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn send_github(trigger: &CreatedTrigger, delivery: &str, body: &[u8]) -> (u16, Value) {
    let headers = [
        ("x-hub-signature-256", github_signature(&trigger.secret, body)),
        ("x-github-delivery", delivery.to_owned()),
        ("x-github-event", "push".to_owned()),
    ];
    send(&trigger.trigger.url, &headers, body).await
}

async fn invocation_count(tenant: &TestTenant) -> usize {
    tenant.client.invocations_list(&InvocationFilter::default()).await.unwrap().data.len()
}

async fn settled_output(tenant: &TestTenant, id: &str) -> Value {
    let done = poll_invocation(tenant, id, Duration::from_secs(60), |i| i.status.is_terminal()).await;
    assert_eq!(done.status, InvocationStatus::Succeeded, "{done:?}");
    done.output.expect("an output")
}

on_both_stores!(a_github_trigger_refuses_bad_signatures_and_runs_a_signed_body);
async fn a_github_trigger_refuses_bad_signatures_and_runs_a_signed_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "echo", ECHO).await;
    let trigger = create(&alpha, "echo", TriggerMode::Github, false).await;
    assert!(trigger.trigger.url.starts_with(&format!("{}/v1/triggers/trg_", app.base_url)), "{trigger:?}");
    assert_eq!(trigger.secret.len(), 64, "a hex secret");
    let body = br#"{"ref":"refs/heads/main","commits":[1,2]}"#;

    let wrong = [("x-hub-signature-256", github_signature("not the secret", body))];
    let (status, problem) = send(&trigger.trigger.url, &wrong, body).await;
    assert_eq!((status, problem["code"].as_str()), (401, Some("trigger_signature_invalid")), "{problem}");
    let (status, problem) = send(&trigger.trigger.url, &[], body).await;
    assert_eq!((status, problem["code"].as_str()), (401, Some("trigger_signature_invalid")), "{problem}");
    let tampered = [("x-hub-signature-256", github_signature(&trigger.secret, b"{}"))];
    let (status, _) = send(&trigger.trigger.url, &tampered, body).await;
    assert_eq!(status, 401, "a signature of another body");
    assert_eq!(invocation_count(&alpha).await, 0, "nothing started");

    let (status, accepted) = send_github(&trigger, "72d3162e-cc78-11e3-81ab-4c9367dc0958", body).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["duplicate"], false);
    let id = accepted["id"].as_str().unwrap();
    let invocation = alpha.client.invocation_get(id).await.unwrap();
    let sent: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(invocation.input, sent, "the body is the input");
    assert_eq!(invocation.metadata["trigger_id"], trigger.trigger.id.as_str());
    assert_eq!(invocation.metadata["delivery_id"], "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(settled_output(&alpha, id).await["input"], sent);

    // A signed body that is not JSON starts nothing either.
    let (status, problem) = send_github(&trigger, "not-json", b"ref=main").await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("trigger_body_not_json")), "{problem}");
    assert_eq!(invocation_count(&alpha).await, 1);

    // The secret was shown once: listing and showing never have it.
    let listed = alpha.client.triggers_list("echo").await.unwrap();
    assert_eq!(listed.data, vec![trigger.trigger.clone()]);
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains(&trigger.secret) && !text.contains("secret"), "{text}");
    assert_eq!(alpha.client.trigger_get("echo", trigger.trigger.id.as_str()).await.unwrap(), trigger.trigger);

    // The audit log has the trigger's creation, and the invocation as the trigger's doing.
    let events = alpha.client.audit_list(&AuditFilter::default()).await.unwrap().data;
    let created = events.iter().find(|e| e.action.as_str() == "trigger.create").expect("trigger.create");
    assert_eq!(created.resource_id, trigger.trigger.id.as_str());
    let started = events.iter().find(|e| e.action.as_str() == "invocation.create").expect("invocation.create");
    assert_eq!((started.actor.kind.as_str(), started.actor.id.as_str()), ("trigger", trigger.trigger.id.as_str()));
}

on_both_stores!(a_repeated_delivery_id_starts_one_run_even_sent_twice_at_once);
async fn a_repeated_delivery_id_starts_one_run_even_sent_twice_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "echo", ECHO).await;
    let trigger = create(&alpha, "echo", TriggerMode::Github, false).await;
    let body = br#"{"action":"opened"}"#;

    let (first_status, first) = send_github(&trigger, "delivery-1", body).await;
    let (again_status, again) = send_github(&trigger, "delivery-1", body).await;
    assert_eq!((first_status, again_status), (202, 202), "{first} {again}");
    assert_eq!(first["id"], again["id"], "both answers name the one run");
    assert_eq!((first["duplicate"].as_bool(), again["duplicate"].as_bool()), (Some(false), Some(true)));
    assert_eq!(invocation_count(&alpha).await, 1);

    let (one, two) = tokio::join!(send_github(&trigger, "delivery-2", body), send_github(&trigger, "delivery-2", body));
    assert_eq!((one.0, two.0), (202, 202), "{one:?} {two:?}");
    assert_eq!(one.1["id"], two.1["id"], "concurrent sends of one delivery start one run");
    assert_ne!(one.1["id"], first["id"]);
    assert_eq!(invocation_count(&alpha).await, 2);
}

on_both_stores!(a_standard_webhooks_trigger_checks_signature_and_timestamp_and_can_envelope_the_body);
async fn a_standard_webhooks_trigger_checks_signature_and_timestamp_and_can_envelope_the_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "echo", ECHO).await;
    let trigger = create(&alpha, "echo", TriggerMode::StandardWebhooks, false).await;
    assert!(trigger.secret.starts_with("whsec_"), "{trigger:?}");
    let body = br#"{"type":"invoice.paid","data":{"amount":42}}"#;
    let signed = |id: &str, timestamp: i64, secret: &str| {
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", standard_signature(secret, id, timestamp, body)),
        ]
    };

    let stale = signed("msg_stale", now_s() - 600, &trigger.secret);
    let (status, problem) = send(&trigger.trigger.url, &stale, body).await;
    assert_eq!((status, problem["code"].as_str()), (401, Some("trigger_signature_invalid")), "stale: {problem}");
    let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (status, problem) = send(&trigger.trigger.url, &signed("msg_bad", now_s(), other), body).await;
    assert_eq!((status, problem["code"].as_str()), (401, Some("trigger_signature_invalid")), "bad: {problem}");
    assert_eq!(invocation_count(&alpha).await, 0, "nothing started");

    let (status, accepted) = send(&trigger.trigger.url, &signed("msg_good", now_s(), &trigger.secret), body).await;
    assert_eq!(status, 202, "{accepted}");
    let sent: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(settled_output(&alpha, accepted["id"].as_str().unwrap()).await["input"], sent);
    let (status, again) = send(&trigger.trigger.url, &signed("msg_good", now_s(), &trigger.secret), body).await;
    assert_eq!((status, &again["id"], again["duplicate"].as_bool()), (202, &accepted["id"], Some(true)));

    // With the envelope, the run gets the body and the documented headers, no signature.
    let wrapped = create(&alpha, "echo", TriggerMode::StandardWebhooks, true).await;
    let timestamp = now_s();
    let (status, accepted) = send(&wrapped.trigger.url, &signed("msg_env", timestamp, &wrapped.secret), body).await;
    assert_eq!(status, 202, "{accepted}");
    let input = &settled_output(&alpha, accepted["id"].as_str().unwrap()).await["input"];
    assert_eq!(input["body"], sent);
    let expected_headers = json!({
        "content-type": "application/json",
        "webhook-id": "msg_env",
        "webhook-timestamp": timestamp.to_string(),
    });
    assert_eq!(input["headers"], expected_headers, "{input}");
}

on_both_stores!(triggers_are_their_tenants_and_bounded_by_its_limits_and_a_deleted_one_is_gone);
async fn triggers_are_their_tenants_and_bounded_by_its_limits_and_a_deleted_one_is_gone(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_LIMITS_MAX_REQUEST_BODY_BYTES", "2048")]).await;
    let alpha = app.signup("alpha").await;
    let beta = app.signup("beta").await;
    app.deploy_script(&alpha, "echo", ECHO).await;
    app.deploy_script(&beta, "echo", ECHO).await;
    let trigger = create(&alpha, "echo", TriggerMode::Github, false).await;
    let id = trigger.trigger.id.as_str();

    // Another tenant, even with an agent of the same slug, sees no such trigger.
    assert!(beta.client.triggers_list("echo").await.unwrap().data.is_empty());
    assert_eq!(beta.client.trigger_get("echo", id).await.unwrap_err().status(), Some(404));
    assert_eq!(beta.client.trigger_delete("echo", id).await.unwrap_err().status(), Some(404));
    assert_eq!(beta.client.triggers_list("ghost").await.unwrap_err().status(), Some(404));

    // The body is capped at the tenant's max_request_body_bytes.
    let big = serde_json::to_vec(&json!({"pad": "x".repeat(4096)})).unwrap();
    let (status, problem) = send_github(&trigger, "big", &big).await;
    assert_eq!((status, problem["code"].as_str()), (413, Some("max_request_body_bytes")), "{problem}");
    assert_eq!(invocation_count(&alpha).await, 0);

    // A suspended tenant's triggers are refused.
    let tenant_id = alpha.signup.tenant.id.to_string();
    let out = app.admin(&["tenants", "suspend", &tenant_id], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, problem) = send_github(&trigger, "while-suspended", b"{}").await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("tenant_suspended")), "{problem}");
    let out = app.admin(&["tenants", "resume", &tenant_id], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(send_github(&trigger, "resumed", b"{}").await.0, 202);

    // Deleted, its URL is gone; so is one that never was.
    alpha.client.trigger_delete("echo", id).await.unwrap();
    let (status, problem) = send_github(&trigger, "after-delete", b"{}").await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")), "{problem}");
    let unknown = format!("{}/v1/triggers/trg_00000000000000000000000000000000", app.base_url);
    assert_eq!(send(&unknown, &[], b"{}").await.0, 404);
    assert!(alpha.client.triggers_list("echo").await.unwrap().data.is_empty());
    let events = alpha.client.audit_list(&AuditFilter::default()).await.unwrap().data;
    assert!(events.iter().any(|e| e.action.as_str() == "trigger.delete" && e.resource_id == id));
}

on_both_stores!(a_master_key_rotation_re_seals_trigger_secrets_and_their_urls_keep_working);
async fn a_master_key_rotation_re_seals_trigger_secrets_and_their_urls_keep_working(backend: Backend) {
    let (old, new) = (MasterKey::generate(), MasterKey::generate());
    let (old_text, new_text) = (old.to_base64().expose().to_owned(), new.to_base64().expose().to_owned());
    let mut app = TestApp::spawn_with(backend, &[("AGENTD_MASTER_KEY", &old_text)]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "echo", ECHO).await;
    let trigger = create(&alpha, "echo", TriggerMode::Github, false).await;

    let keys = [("AGENTD_MASTER_KEY", new_text.as_str()), ("AGENTD_PREVIOUS_MASTER_KEY", old_text.as_str())];
    let rotated = app.admin(&["secrets", "rotate"], &keys);
    let stdout = String::from_utf8_lossy(&rotated.stdout).into_owned();
    assert!(rotated.status.success(), "{stdout}{}", String::from_utf8_lossy(&rotated.stderr));
    assert!(stdout.contains("re-encrypted 1 secrets"), "{stdout}");
    assert!(stdout.contains(&format!("{}: 1 (current)", new.id())), "{stdout}");

    // Only the new key now: the trigger's secret still opens.
    app.set_env("AGENTD_MASTER_KEY", Some(&new_text));
    app.restart().await;
    let client = app.client().with_token(alpha.key.clone());
    let moved = CreatedTrigger { trigger: client.triggers_list("echo").await.unwrap().data.remove(0), ..trigger };
    assert!(moved.trigger.url.starts_with(&app.base_url), "the URL names the server as it is reached now");
    let (status, accepted) = send_github(&moved, "after-rotation", b"{}").await;
    assert_eq!(status, 202, "{accepted}");
}

on_both_stores!(triggers_are_created_listed_and_deleted_from_the_command_line);
async fn triggers_are_created_listed_and_deleted_from_the_command_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;
    let dir = tempfile::tempdir().unwrap();
    crate::harness::write_shell_agent(dir.path(), "echo", ECHO);
    shell.ok(&["agents", "deploy", &dir.path().to_string_lossy(), "--slug", "echo"]).await;

    let made = shell.ok(&["triggers", "create", "echo", "--mode", "github", "--description", "ci"]).await;
    assert!(made.stdout.contains("secret: ") && made.stdout.contains("/v1/triggers/trg_"), "{made:#?}");
    let created = json(
        &shell.ok(&["triggers", "create", "echo", "--mode", "standard_webhooks", "--envelope", "--json"]).await.stdout,
    );
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"), "{created}");
    assert_eq!((created["mode"].as_str(), created["envelope"].as_bool()), (Some("standard_webhooks"), Some(true)));

    let listed = shell.ok(&["triggers", "list", "echo"]).await;
    assert_eq!(listed.stdout.lines().filter(|l| l.starts_with("trg_")).count(), 2, "{listed:#?}");
    assert!(!listed.stdout.contains("whsec_"), "no secret listed: {listed:#?}");
    let id = created["id"].as_str().unwrap();
    shell.ok(&["triggers", "delete", "echo", id]).await;
    let as_json = json(&shell.ok(&["triggers", "list", "echo", "--json"]).await.stdout);
    assert_eq!(as_json["data"].as_array().map(Vec::len), Some(1), "{as_json}");
    let gone = shell.run(&["triggers", "delete", "echo", id]).await;
    assert_eq!(gone.code, Some(4), "not found: {gone:#?}");
    let refused = shell.run(&["triggers", "create", "echo", "--mode", "gitlab"]).await;
    assert_eq!(refused.code, Some(2), "a usage error: {refused:#?}");
}

on_both_stores!(a_triggers_runs_and_requests_count_against_the_tenants_rates);
async fn a_triggers_runs_and_requests_count_against_the_tenants_rates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "echo", ECHO).await;
    let trigger = create(&alpha, "echo", TriggerMode::Github, false).await;

    // One invocation a minute: a second delivery is refused, a repeat of the first is not.
    let set = app.admin(&["limits", "set", "alpha", "invocations_per_minute=1"], &[]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    assert_eq!(send_github(&trigger, "first", b"{}").await.0, 202);
    let (status, problem) = send_github(&trigger, "second", b"{}").await;
    assert_eq!((status, problem["code"].as_str()), (429, Some("invocations_per_minute")), "{problem}");
    let (status, again) = send_github(&trigger, "first", b"{}").await;
    assert_eq!((status, again["duplicate"].as_bool()), (202, Some(true)), "{again}");

    // One request a second for the trigger: sent faster than that, some are refused
    // (however slow this machine, a hundred sends take less than a hundred seconds).
    let set = app.admin(&["limits", "set", "alpha", "requests_per_second=1"], &[]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let mut refused = None;
    for _ in 0..100 {
        let (status, body) = send_github(&trigger, "first", b"{}").await;
        if status == 429 {
            refused = Some(body);
            break;
        }
        assert_eq!(status, 202, "{body}");
    }
    let refused = refused.expect("a 429 within 100 sends at one request a second");
    assert_eq!(refused["code"], "requests_per_second", "{refused}");
    let bad = [("x-hub-signature-256", github_signature("wrong", b"{}"))];
    assert_eq!(send(&trigger.trigger.url, &bad, b"{}").await.0, 401, "the signature is checked before the rate");
    assert_eq!(invocation_count(&alpha).await, 1);
}
