//! Agents' secrets: write-only values, listed by name, set as environment variables of
//! the agent's runs, sealed at rest under the master key, and never shown again: not in
//! a response, a log line, an event, an output or the server's own log, even when the
//! agent prints them. Rotation re-seals them and runs go on getting the values.

use agentd_api_types::{CreateApiKeyRequest, InvocationStatus, Scope};
use agentd_control::MasterKey;
use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, TestTenant, invoke_and_wait};

/// Prints `$API_KEY` everywhere a run records something, and outputs its hash (which
/// proves the run saw it) beside it; with `{"fail": true}` it also fails saying it.
const LEAKY_AGENT: &str = r#"
input=$(cat)
v="$API_KEY"
echo "stdout: $v"
echo "stderr: $v" >&2
printf '{"type":"log","level":"info","message":"log event: %s"}\n' "$v" >&3
printf '{"type":"state","data":{"token":"%s","nested":["%s"]}}\n' "$v" "$v" >&3
case "$input" in *'"fail":true'*) echo "failing with $v" >&2; exit 1;; esac
seen=$(printf %s "$v" | sha256sum | cut -d' ' -f1)
printf '{"type":"output","data":{"seen":"%s","leak":"%s","shared":"%s"}}\n' "$seen" "$v" "$SHARED" >&3
"#;

/// A value no log line could hold by chance.
fn secret_value(tag: &str) -> String {
    format!("sk-{tag}-{}", MasterKey::generate().id())
}

fn sha256_hex(value: &str) -> String {
    agentd_bundle::digest(value.as_bytes()).trim_start_matches("sha256:").to_owned()
}

async fn put(tenant: &TestTenant, slug: &str, name: &str, body: Value) -> (u16, String) {
    let path = format!("/v1/agents/{slug}/secrets/{name}");
    let response = tenant.client.request(Method::PUT, &path).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn get_text(tenant: &TestTenant, path: &str) -> (u16, String) {
    let response = tenant.client.request(Method::GET, path).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn code(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body).ok()?.get("code")?.as_str().map(str::to_owned)
}

on_both_stores!(a_secret_is_set_listed_replaced_and_deleted_and_its_value_is_never_shown);
async fn a_secret_is_set_listed_replaced_and_deleted_and_its_value_is_never_shown(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "leaky", LEAKY_AGENT).await;
    let (first, second) = (secret_value("first"), secret_value("second"));

    let (status, created) = put(&alpha, "leaky", "API_KEY", json!({"value": first})).await;
    assert_eq!(status, 201, "{created}");
    let created: Value = serde_json::from_str(&created).unwrap();
    assert_eq!(created["name"], "API_KEY");
    assert_eq!(created.as_object().unwrap().len(), 3, "name, created_at, updated_at and nothing else: {created}");

    let (status, replaced) = put(&alpha, "leaky", "API_KEY", json!({"value": second})).await;
    assert_eq!(status, 200, "{replaced}");
    let replaced: Value = serde_json::from_str(&replaced).unwrap();
    assert_eq!(replaced["created_at"], created["created_at"]);
    let instant = |v: &Value| serde_json::from_value::<agentd_api_types::Timestamp>(v["updated_at"].clone()).unwrap();
    assert!(instant(&replaced) > instant(&created), "{created} then {replaced}");

    let (set, _) = alpha.client.secret_set("leaky", "OTHER", "another value").await.unwrap();
    assert_eq!(set.name, "OTHER");
    let (status, listed) = get_text(&alpha, "/v1/agents/leaky/secrets").await;
    assert_eq!(status, 200);
    let names: Vec<String> =
        alpha.client.secrets_list("leaky").await.unwrap().data.into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["API_KEY", "OTHER"]);
    let (_, agent) = get_text(&alpha, "/v1/agents/leaky").await;
    for shown in [&listed, &agent] {
        for value in [&first, &second, &"another value".to_owned()] {
            assert!(!shown.contains(value.as_str()), "a value shows: {shown}");
        }
    }

    alpha.client.secret_delete("leaky", "OTHER").await.unwrap();
    let again = alpha.client.secret_delete("leaky", "OTHER").await.unwrap_err();
    assert_eq!((again.status(), again.code()), (Some(404), Some("not_found")));
    assert_eq!(alpha.client.secrets_list("leaky").await.unwrap().data.len(), 1);
}

on_both_stores!(a_run_gets_its_secrets_as_env_and_nothing_it_records_holds_them);
async fn a_run_gets_its_secrets_as_env_and_nothing_it_records_holds_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "leaky", LEAKY_AGENT).await;
    let (value, shared) = (secret_value("run"), secret_value("shared"));
    alpha.client.secret_set("leaky", "API_KEY", &value).await.unwrap();
    // A secret wins over configuration of the same name.
    let patch = json!({"config": {"env": {"SHARED": "from config"}}});
    let patched = alpha.client.request(Method::PATCH, "/v1/agents/leaky").json(&patch).send().await.unwrap();
    assert_eq!(patched.status(), 200);
    alpha.client.secret_set("leaky", "SHARED", &shared).await.unwrap();

    let done = invoke_and_wait(&alpha, "leaky", json!({})).await;
    assert_eq!(done.status, InvocationStatus::Succeeded, "{done:?}");
    let output = done.output.clone().unwrap();
    assert_eq!(output["seen"], sha256_hex(&value), "the run saw the value");
    assert_eq!(output["leak"], "[redacted:API_KEY]");
    assert_eq!(output["shared"], "[redacted:SHARED]", "the secret, not the configured value, reached the run");

    let failed = invoke_and_wait(&alpha, "leaky", json!({"fail": true})).await;
    assert_eq!(failed.status, InvocationStatus::Failed);
    let error = failed.error.clone().unwrap();
    assert!(error.message.contains("failing with [redacted:API_KEY]"), "{error:?}");

    for id in [done.id.as_str(), failed.id.as_str()] {
        let (_, invocation) = get_text(&alpha, &format!("/v1/invocations/{id}")).await;
        let (_, logs) = get_text(&alpha, &format!("/v1/invocations/{id}/logs")).await;
        let (_, stream) = get_text(&alpha, &format!("/v1/invocations/{id}/events")).await;
        assert!(stream.contains("event: end"), "{stream}");
        for recorded in [&invocation, &logs, &stream] {
            assert!(!recorded.contains(&value) && !recorded.contains(&shared), "a value was recorded: {recorded}");
        }
        for line in ["stdout: [redacted:API_KEY]", "stderr: [redacted:API_KEY]", "log event: [redacted:API_KEY]"] {
            assert!(logs.contains(line), "`{line}` in {logs}");
        }
    }
    let (_, listed) = get_text(&alpha, "/v1/invocations").await;
    assert!(!listed.contains(&value));
    let events = alpha.client.invocation_logs(done.id.as_str(), None, None).await.unwrap();
    let state = events.data.iter().find(|e| e.kind == agentd_api_types::EventKind::State).unwrap();
    assert_eq!(state.data, Some(json!({"token": "[redacted:API_KEY]", "nested": ["[redacted:API_KEY]"]})));

    let log = app.server_log();
    assert!(log.contains("secret set"), "the server's log is captured");
    assert!(!log.contains(&value) && !log.contains(&shared), "the server logged a value");
}

on_both_stores!(names_values_counts_scopes_and_tenants_are_held_to_their_rules);
async fn names_values_counts_scopes_and_tenants_are_held_to_their_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let beta = app.signup("beta").await;
    app.deploy_script(&alpha, "leaky", LEAKY_AGENT).await;
    for name in ["PATH", "AGENTD_TOKEN", "LD_PRELOAD", "https_proxy", "1BAD", "BAD-NAME"] {
        let (status, body) = put(&alpha, "leaky", name, json!({"value": "v-value"})).await;
        assert_eq!((status, code(&body).as_deref()), (422, Some("invalid_secret_name")), "{name}: {body}");
    }
    let too_big = "x".repeat(64 * 1024 + 1);
    let (status, body) = put(&alpha, "leaky", "BIG", json!({"value": too_big})).await;
    assert_eq!((status, code(&body).as_deref()), (422, Some("secret_too_large")), "{body}");
    let (status, _) = put(&alpha, "leaky", "BIG", json!({"value": "x".repeat(64 * 1024)})).await;
    assert_eq!(status, 201);
    for value in ["", "nul\u{0}inside"] {
        let (status, body) = put(&alpha, "leaky", "ODD", json!({"value": value})).await;
        assert_eq!((status, code(&body).as_deref()), (422, Some("invalid_secret_value")), "{value:?}: {body}");
    }
    let (status, body) = put(&alpha, "leaky", "TYPO", json!({"valu": "x"})).await;
    assert_eq!((status, code(&body).as_deref()), (422, Some("invalid_body")), "{body}");
    let (status, body) = put(&alpha, "nobody", "NAME", json!({"value": "value"})).await;
    assert_eq!((status, code(&body).as_deref()), (404, Some("not_found")), "{body}");
    let malformed = alpha.client.secret_delete("leaky", "not-a-name").await.unwrap_err();
    assert_eq!(malformed.status(), Some(404));

    // 100 per agent; replacing one is not one more.
    for i in 1..100 {
        alpha.client.secret_set("leaky", &format!("S{i}"), "value").await.unwrap();
    }
    let (status, body) = put(&alpha, "leaky", "ONE_TOO_MANY", json!({"value": "value"})).await;
    assert_eq!((status, code(&body).as_deref()), (429, Some("secret_limit")), "{body}");
    let (_, created) = alpha.client.secret_set("leaky", "S1", "new value").await.unwrap();
    assert!(!created, "replacing a secret is not one more");

    // A read-only key lists but cannot set or delete.
    let request = CreateApiKeyRequest { name: "reader".into(), scopes: Some(vec![Scope::Read]), expires_in_days: None };
    let reader = alpha.client.api_key_create(&request).await.unwrap();
    let reader = TestTenant {
        client: app.client().with_token(reader.secret.clone()),
        key: reader.secret,
        signup: alpha.signup.clone(),
    };
    assert_eq!(reader.client.secrets_list("leaky").await.unwrap().data.len(), 100);
    let (status, body) = put(&reader, "leaky", "S1", json!({"value": "value"})).await;
    assert_eq!((status, code(&body).as_deref()), (403, Some("insufficient_scope")), "{body}");
    let denied = reader.client.secret_delete("leaky", "S1").await.unwrap_err();
    assert_eq!(denied.code(), Some("insufficient_scope"));

    // Another tenant's agent does not exist for beta.
    assert_eq!(beta.client.secrets_list("leaky").await.unwrap_err().status(), Some(404));
    assert_eq!(beta.client.secret_set("leaky", "S1", "stolen").await.unwrap_err().status(), Some(404));
    assert_eq!(beta.client.secret_delete("leaky", "S1").await.unwrap_err().status(), Some(404));
    assert_eq!(alpha.client.secrets_list("leaky").await.unwrap().data.len(), 100);
}

on_both_stores!(the_database_holds_only_ciphertext_and_a_row_copied_to_another_agent_does_not_open);
async fn the_database_holds_only_ciphertext_and_a_row_copied_to_another_agent_does_not_open(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_MAX_RECOVERIES", "0")]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "leaky", LEAKY_AGENT).await;
    app.deploy_script(&alpha, "other", LEAKY_AGENT).await;
    let value = secret_value("at-rest");
    alpha.client.secret_set("leaky", "API_KEY", &value).await.unwrap();

    let stored = agentd_test_support::query_bytes(app.database_url(), "SELECT ciphertext FROM agent_secrets").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].len(), value.len() + 16, "the value's length plus the Poly1305 tag");
    assert!(!stored[0].windows(value.len()).any(|w| w == value.as_bytes()));
    if let Some(sqlite) = app.sqlite_path() {
        // The whole database as it is on disk, its write-ahead log included.
        let mut bytes = std::fs::read(&sqlite).unwrap();
        bytes.extend(std::fs::read(sqlite.with_extension("db-wal")).unwrap_or_default());
        assert!(bytes.windows(7).any(|w| w == b"API_KEY"), "the files read hold the secret's row");
        assert!(!bytes.windows(value.len()).any(|w| w == value.as_bytes()), "the database file holds the value");
    }
    // Without AGENTD_MASTER_KEY, development made a key file readable by the server alone.
    use std::os::unix::fs::PermissionsExt;
    let key_file = std::fs::metadata(app.data_dir.join("master.key")).unwrap();
    assert_eq!(key_file.permissions().mode() & 0o777, 0o600);

    // The same sealed bytes under another agent: the associated data no longer matches.
    let other = alpha.client.agent_get("other").await.unwrap();
    let copy = format!(
        "INSERT INTO agent_secrets (agent_id, name, tenant_id, ciphertext, nonce, key_id, created_at, updated_at)
         SELECT '{}', name, tenant_id, ciphertext, nonce, key_id, created_at, updated_at FROM agent_secrets",
        other.id
    );
    app.execute_sql(&copy).await;
    let refused = invoke_and_wait(&alpha, "other", json!({})).await;
    assert_eq!(refused.status, InvocationStatus::Failed, "{refused:?}");
    let error = refused.error.unwrap();
    assert_eq!(error.code, "secrets_unavailable", "{error:?}");
    assert!(error.message.contains("`API_KEY`"), "{error:?}");
    let genuine = invoke_and_wait(&alpha, "leaky", json!({})).await;
    assert_eq!(genuine.output.unwrap()["seen"], sha256_hex(&value));
}

on_both_stores!(rotation_re_seals_every_secret_and_runs_still_get_the_values);
async fn rotation_re_seals_every_secret_and_runs_still_get_the_values(backend: Backend) {
    let (old, new) = (MasterKey::generate(), MasterKey::generate());
    let (old_text, new_text) = (old.to_base64().expose().to_owned(), new.to_base64().expose().to_owned());
    let mut app =
        TestApp::spawn_with(backend, &[("AGENTD_MASTER_KEY", &old_text), ("AGENTD_MAX_RECOVERIES", "0")]).await;
    let mut alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "leaky", LEAKY_AGENT).await;
    let value = secret_value("rotated");
    alpha.client.secret_set("leaky", "API_KEY", &value).await.unwrap();
    let seen = |invocation: &agentd_api_types::Invocation| invocation.output.as_ref().map(|o| o["seen"].clone());
    let expected = Some(json!(sha256_hex(&value)));
    assert_eq!(seen(&invoke_and_wait(&alpha, "leaky", json!({})).await), expected);

    // A server given only the new key cannot open what the old one sealed.
    app.set_env("AGENTD_MASTER_KEY", Some(&new_text));
    app.restart().await;
    alpha.client = app.client().with_token(alpha.key.clone());
    let stranded = invoke_and_wait(&alpha, "leaky", json!({})).await;
    assert_eq!(stranded.error.map(|e| e.code).as_deref(), Some("secrets_unavailable"));
    let log = app.server_log();
    let said = log.lines().any(|l| l.contains("secret does not open") && l.contains(old.id()) && l.contains("API_KEY"));
    assert!(said, "the operator's log names the secret and the missing key:\n{log}");

    // With both, it runs while the rotation re-seals.
    app.set_env("AGENTD_PREVIOUS_MASTER_KEY", Some(&old_text));
    app.restart().await;
    alpha.client = app.client().with_token(alpha.key.clone());
    assert_eq!(seen(&invoke_and_wait(&alpha, "leaky", json!({})).await), expected);
    let keys = [("AGENTD_MASTER_KEY", new_text.as_str()), ("AGENTD_PREVIOUS_MASTER_KEY", old_text.as_str())];
    let rotated = app.admin(&["secrets", "rotate"], &keys);
    let stdout = String::from_utf8_lossy(&rotated.stdout).into_owned();
    assert!(rotated.status.success(), "{stdout}{}", String::from_utf8_lossy(&rotated.stderr));
    let moved = format!("re-encrypted 1 secrets from master key {} to {}", old.id(), new.id());
    assert!(stdout.contains(&moved), "{stdout}");
    assert!(stdout.contains(&format!("{}: 1 (current)", new.id())), "{stdout}");
    let again = app.admin(&["secrets", "rotate"], &keys);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("re-encrypted 0 secrets"), "idempotent");

    // The old key can go.
    app.set_env("AGENTD_PREVIOUS_MASTER_KEY", None);
    app.restart().await;
    alpha.client = app.client().with_token(alpha.key.clone());
    assert_eq!(seen(&invoke_and_wait(&alpha, "leaky", json!({})).await), expected);
    assert_eq!(alpha.client.secrets_list("leaky").await.unwrap().data.len(), 1);
    assert!(!app.server_log().contains(&value));
}

on_both_stores!(a_remote_worker_run_gets_the_secret_and_redacts_it);
async fn a_remote_worker_run_gets_the_secret_and_redacts_it(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "0")]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_script(&alpha, "leaky", LEAKY_AGENT).await;
    let value = secret_value("remote");
    alpha.client.secret_set("leaky", "API_KEY", &value).await.unwrap();
    let _worker = app.spawn_worker(&app.create_worker_token(), "remote");
    let done = invoke_and_wait(&alpha, "leaky", json!({})).await;
    assert_eq!(done.status, InvocationStatus::Succeeded, "{done:?}");
    assert_eq!(done.output.as_ref().unwrap()["seen"], sha256_hex(&value));
    let (_, logs) = get_text(&alpha, &format!("/v1/invocations/{}/logs", done.id)).await;
    assert!(logs.contains("stdout: [redacted:API_KEY]") && !logs.contains(&value), "{logs}");
}
