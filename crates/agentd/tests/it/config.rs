//! An agent's configuration as its runs see it: environment from the manifest, the
//! agent and the invoke (in that order of precedence, names the platform keeps refused
//! everywhere), and the JSON Schemas its input and output are checked against.

use std::time::Duration;

use agentd_api_types::{CreateAgentRequest, EventKind, EventStream, InvocationStatus, InvokeRequest};
use agentd_client::{ClientError, InvokeOptions};
use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, TestTenant, invoke_and_wait, poll_invocation};

/// Prints the variables the tests look at as its output, `null` for an unset one.
const PRINT_ENV: &str = r#"
field() { if [ -n "$(printenv "$1")" ]; then printf '"%s":"%s"' "$1" "$(printenv "$1")"; else printf '"%s":null' "$1"; fi; }
printf '{"type":"output","data":{%s,%s,%s,%s}}\n' "$(field MODEL)" "$(field STYLE)" "$(field GREETING)" "$(field PATH)" >&3
"#;

/// Uploads a shell agent whose `agent.toml` has `manifest_extra` after the required keys.
async fn upload(tenant: &TestTenant, slug: &str, manifest_extra: &str, script: &str) -> Result<(), ClientError> {
    use std::os::unix::fs::PermissionsExt;
    if tenant.client.agent_get(slug).await.is_err() {
        let request = CreateAgentRequest { slug: slug.into(), ..CreateAgentRequest::default() };
        tenant.client.agent_create(&request).await.expect("create agent");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = format!("name = \"{slug}\"\nruntime = \"shell\"\nentrypoint = \"run.sh\"\n{manifest_extra}\n");
    std::fs::write(dir.path().join("agent.toml"), manifest).expect("write manifest");
    let run = dir.path().join("run.sh");
    std::fs::write(&run, format!("#!/bin/sh\n{script}\n")).expect("write script");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bundle = agentd_bundle::pack_dir(dir.path()).expect("pack bundle");
    tenant.client.version_upload(slug, bundle, true).await.map(|_| ())
}

/// Sends `body` and returns the status and the JSON body.
async fn send(tenant: &TestTenant, method: Method, path: &str, body: Value) -> (u16, Value) {
    let response = tenant.client.request(method, path).json(&body).send().await.expect("send");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn invoke_with_env(tenant: &TestTenant, slug: &str, env: &[(&str, &str)]) -> Value {
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let request = InvokeRequest { env: Some(env), ..InvokeRequest::default() };
    let options = InvokeOptions { wait_s: Some(30), ..InvokeOptions::default() };
    let done = tenant.client.invoke(slug, &request, &options).await.expect("invoke");
    assert_eq!(done.status, InvocationStatus::Succeeded, "{done:?}");
    done.output.expect("an output")
}

fn assert_problem(got: &(u16, Value), code: &str, names: &str) {
    let (status, body) = got;
    assert_eq!((*status, body["code"].as_str()), (422, Some(code)), "{body}");
    assert!(body["detail"].as_str().unwrap_or("").contains(names), "the error names `{names}`: {body}");
}

const CONFIGURED: &str = r#"overridable_env = ["STYLE"]
[env]
MODEL = "manifest"
STYLE = "manifest"
GREETING = "manifest""#;

on_both_stores!(env_comes_from_the_manifest_then_the_agent_then_the_invoke);
async fn env_comes_from_the_manifest_then_the_agent_then_the_invoke(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    upload(&alpha, "env", CONFIGURED, PRINT_ENV).await.expect("deploy");
    let platform_path = "/usr/local/bin:/usr/bin:/bin";

    let manifest_only = invoke_with_env(&alpha, "env", &[]).await;
    assert_eq!(
        manifest_only,
        json!({"MODEL": "manifest", "STYLE": "manifest", "GREETING": "manifest", "PATH": platform_path})
    );

    let patched =
        send(&alpha, Method::PATCH, "/v1/agents/env", json!({"config": {"env": {"MODEL": "agent", "STYLE": "agent"}}}))
            .await;
    assert_eq!(patched.0, 200, "{}", patched.1);
    assert_eq!(patched.1["config"]["env"], json!({"MODEL": "agent", "STYLE": "agent"}));
    let shown = alpha.client.agent_get("env").await.unwrap();
    assert_eq!(shown.config.env.get("MODEL").map(String::as_str), Some("agent"));
    let with_agent = invoke_with_env(&alpha, "env", &[]).await;
    assert_eq!(
        (&with_agent["MODEL"], &with_agent["STYLE"], &with_agent["GREETING"]),
        (&json!("agent"), &json!("agent"), &json!("manifest"))
    );

    let with_invoke = invoke_with_env(&alpha, "env", &[("STYLE", "invoke")]).await;
    assert_eq!(
        with_invoke,
        json!({"MODEL": "agent", "STYLE": "invoke", "GREETING": "manifest", "PATH": platform_path})
    );

    // `{}` clears the agent's env; a PATCH without `config` leaves it alone.
    let (status, body) = send(&alpha, Method::PATCH, "/v1/agents/env", json!({"config": {"env": {}}})).await;
    assert_eq!((status, &body["config"]["env"]), (200, &json!({})), "{body}");
    send(&alpha, Method::PATCH, "/v1/agents/env", json!({"config": {"env": {"MODEL": "again"}}})).await;
    let (status, body) = send(&alpha, Method::PATCH, "/v1/agents/env", json!({"description": "d"})).await;
    assert_eq!((status, &body["config"]["env"]), (200, &json!({"MODEL": "again"})), "{body}");
    send(&alpha, Method::PATCH, "/v1/agents/env", json!({"config": {"env": {}}})).await;
    assert_eq!(invoke_with_env(&alpha, "env", &[]).await["MODEL"], "manifest");
}

on_both_stores!(names_the_platform_keeps_are_refused_at_patch_invoke_and_deploy);
async fn names_the_platform_keeps_are_refused_at_patch_invoke_and_deploy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    upload(&alpha, "env", CONFIGURED, PRINT_ENV).await.expect("deploy");

    for name in ["PATH", "LD_PRELOAD", "PYTHONPATH", "AGENTD_TOKEN", "https_proxy", "NODE_OPTIONS"] {
        let patch = send(&alpha, Method::PATCH, "/v1/agents/env", json!({"config": {"env": {name: "x"}}})).await;
        assert_problem(&patch, "invalid_env", name);
        let invoke = send(&alpha, Method::POST, "/v1/agents/env/invoke", json!({"env": {name: "x"}})).await;
        assert_problem(&invoke, "invalid_env", name);
    }
    let malformed =
        send(&alpha, Method::PATCH, "/v1/agents/env", json!({"config": {"env": {"NOT-A-NAME": "x"}}})).await;
    assert_problem(&malformed, "invalid_env", "NOT-A-NAME");
    let control =
        send(&alpha, Method::PATCH, "/v1/agents/env", json!({"config": {"env": {"MODEL": "a\u{1b}[2J"}}})).await;
    assert_problem(&control, "invalid_env", "MODEL");
    let unknown = send(&alpha, Method::PATCH, "/v1/agents/env", json!({"config": {"secrets": {}}})).await;
    assert_problem(&unknown, "invalid_body", "secrets");
    // Nothing changed and nothing ran.
    assert!(alpha.client.agent_get("env").await.unwrap().config.env.is_empty());
    assert!(alpha.client.invocations_list(&Default::default()).await.unwrap().data.is_empty());

    for manifest in ["[env]\nLD_LIBRARY_PATH = \"/x\"", "overridable_env = [\"HOME\"]"] {
        let err = upload(&alpha, "env", manifest, PRINT_ENV).await.expect_err(manifest);
        let ClientError::Api { status, problem } = err else { panic!("{manifest}: {err}") };
        assert_eq!((status, problem.code.as_deref()), (422, Some("manifest_invalid")), "{manifest}: {problem:?}");
        let name = if manifest.contains("HOME") { "HOME" } else { "LD_LIBRARY_PATH" };
        assert!(problem.message().contains(name), "{problem:?}");
    }
    assert_eq!(
        alpha.client.agent_get("env").await.unwrap().active_version,
        Some(1),
        "the refused versions were not made"
    );
}

on_both_stores!(an_invoke_may_set_only_the_names_the_manifest_makes_overridable);
async fn an_invoke_may_set_only_the_names_the_manifest_makes_overridable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    upload(&alpha, "env", CONFIGURED, PRINT_ENV).await.expect("deploy");
    let refused = send(&alpha, Method::POST, "/v1/agents/env/invoke", json!({"env": {"MODEL": "mine"}})).await;
    assert_problem(&refused, "env_not_overridable", "MODEL");
    assert!(refused.1["detail"].as_str().unwrap_or("").contains("STYLE"), "it lists what may be set: {}", refused.1);
    // A name with no default may be overridable too.
    upload(&alpha, "env", "overridable_env = [\"GREETING\"]", PRINT_ENV).await.expect("deploy");
    assert_eq!(invoke_with_env(&alpha, "env", &[("GREETING", "hello")]).await["GREETING"], "hello");
    let refused = send(&alpha, Method::POST, "/v1/agents/env/invoke", json!({"env": {"STYLE": "x"}})).await;
    assert_problem(&refused, "env_not_overridable", "STYLE");
}

const ECHO_INPUT: &str = r#"printf '{"type":"output","data":%s}\n' "$(sed -e 's/.*"input":\({[^}]*}\).*/\1/')" >&3"#;

on_both_stores!(input_that_breaks_the_input_schema_is_refused_with_the_path);
async fn input_that_breaks_the_input_schema_is_refused_with_the_path(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let schema =
        "[input_schema]\ntype = \"object\"\nrequired = [\"text\"]\n[input_schema.properties.text]\ntype = \"string\"";
    upload(&alpha, "typed", schema, ECHO_INPUT).await.expect("deploy");

    let (status, body) = send(&alpha, Method::POST, "/v1/agents/typed/invoke", json!({"input": {"text": 5}})).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("input_invalid")), "{body}");
    assert_eq!(body["errors"][0]["path"], "/text", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap_or("").contains("string"), "{body}");
    assert!(body["detail"].as_str().unwrap_or("").contains("/text"), "{body}");
    let (status, body) = send(&alpha, Method::POST, "/v1/agents/typed/invoke", json!({"input": {}})).await;
    assert_eq!((status, body["errors"][0]["path"].as_str()), (422, Some("")), "{body}");
    assert!(alpha.client.invocations_list(&Default::default()).await.unwrap().data.is_empty());

    let done = invoke_and_wait(&alpha, "typed", json!({"text": "fine"})).await;
    assert_eq!((done.status, done.output), (InvocationStatus::Succeeded, Some(json!({"text": "fine"}))));
}

/// Outputs `{"answer": 5}`.
const ANSWER_FIVE: &str = r#"printf '{"type":"output","data":{"answer":5}}\n' >&3"#;

on_both_stores!(an_output_that_breaks_the_output_schema_is_a_warning_and_the_run_succeeds);
async fn an_output_that_breaks_the_output_schema_is_a_warning_and_the_run_succeeds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let schema = "[output_schema]\ntype = \"object\"\n[output_schema.properties.answer]\ntype = \"string\"";
    upload(&alpha, "answers", schema, ANSWER_FIVE).await.expect("deploy");
    let done = invoke_and_wait(&alpha, "answers", json!({})).await;
    assert_eq!((done.status, done.output.clone()), (InvocationStatus::Succeeded, Some(json!({"answer": 5}))));
    let events = alpha.client.invocation_logs(done.id.as_str(), None, None).await.unwrap().data;
    let warning = events
        .iter()
        .find(|e| e.kind == EventKind::Log && e.level.as_deref() == Some("warn"))
        .unwrap_or_else(|| panic!("no warning among {events:?}"));
    assert_eq!(warning.stream, EventStream::System);
    assert!(warning.message.as_deref().unwrap_or("").contains("/answer"), "{warning:?}");
    assert_eq!(warning.data.as_ref().map(|d| &d["errors"][0]["path"]), Some(&json!("/answer")));
    assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1), "seq counts up by one: {events:?}");
    assert_eq!(events.last().map(|e| e.kind), Some(EventKind::Status), "the status event closes the run");
}

on_both_stores!(the_agents_schemas_win_over_the_manifests_until_cleared);
async fn the_agents_schemas_win_over_the_manifests_until_cleared(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let schemas = "[input_schema]\nrequired = [\"text\"]\n[output_schema]\ntype = \"object\"";
    upload(&alpha, "typed", schemas, ANSWER_FIVE).await.expect("deploy");
    let invoke = |input: Value| send(&alpha, Method::POST, "/v1/agents/typed/invoke", json!({"input": input}));

    let needs_n = json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}});
    let (status, body) = send(
        &alpha,
        Method::PATCH,
        "/v1/agents/typed",
        json!({"input_schema": needs_n, "output_schema": {"type": "string"}}),
    )
    .await;
    assert_eq!((status, &body["input_schema"]), (200, &needs_n), "{body}");
    assert_eq!(alpha.client.agent_get("typed").await.unwrap().output_schema, Some(json!({"type": "string"})));
    assert_eq!(invoke(json!({"n": 1})).await.0, 202, "the manifest's schema no longer applies");
    let (status, body) = invoke(json!({"n": "one"})).await;
    assert_eq!((status, body["errors"][0]["path"].as_str()), (422, Some("/n")), "{body}");
    let done = invoke_and_wait(&alpha, "typed", json!({"n": 2})).await;
    assert_eq!(done.status, InvocationStatus::Succeeded);
    let events = alpha.client.invocation_logs(done.id.as_str(), None, None).await.unwrap().data;
    assert!(events.iter().any(|e| e.level.as_deref() == Some("warn")), "the agent's output_schema applies: {events:?}");

    let bad = send(&alpha, Method::PATCH, "/v1/agents/typed", json!({"input_schema": {"type": "strnig"}})).await;
    assert_problem(&bad, "invalid_schema", "input_schema");
    let remote = send(
        &alpha,
        Method::PATCH,
        "/v1/agents/typed",
        json!({"output_schema": {"$ref": "http://127.0.0.1:9/s.json"}}),
    )
    .await;
    assert_problem(&remote, "invalid_schema", "output_schema");

    let (status, body) =
        send(&alpha, Method::PATCH, "/v1/agents/typed", json!({"input_schema": null, "output_schema": null})).await;
    assert_eq!((status, &body["input_schema"], &body["output_schema"]), (200, &Value::Null, &Value::Null), "{body}");
    let (status, body) = invoke(json!({"n": 1})).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("input_invalid")), "the manifest's applies again: {body}");
    let done = invoke_and_wait(&alpha, "typed", json!({"text": "x"})).await;
    let events = alpha.client.invocation_logs(done.id.as_str(), None, None).await.unwrap().data;
    assert!(
        !events.iter().any(|e| e.level.as_deref() == Some("warn")),
        "the output matches the manifest's: {events:?}"
    );
}

on_both_stores!(the_env_is_fixed_when_the_invocation_is_accepted_and_reaches_remote_workers);
async fn the_env_is_fixed_when_the_invocation_is_accepted_and_reaches_remote_workers(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "0")]).await;
    let alpha = app.signup("alpha").await;
    upload(&alpha, "env", CONFIGURED, PRINT_ENV).await.expect("deploy");
    send(&alpha, Method::PATCH, "/v1/agents/env", json!({"config": {"env": {"MODEL": "accepted"}}})).await;
    let request = InvokeRequest { env: Some([("STYLE".to_owned(), "invoke".to_owned())].into()), ..Default::default() };
    let queued = alpha.client.invoke("env", &request, &InvokeOptions::default()).await.unwrap();
    assert_eq!(queued.status, InvocationStatus::Queued, "no worker runs it yet");
    // A change after the invocation was accepted does not reach it.
    send(&alpha, Method::PATCH, "/v1/agents/env", json!({"config": {"env": {"MODEL": "later"}}})).await;
    let _worker = app.spawn_worker(&app.create_worker_token(), "remote");
    let done = poll_invocation(&alpha, queued.id.as_str(), Duration::from_secs(30), |i| i.status.is_terminal()).await;
    assert_eq!(done.status, InvocationStatus::Succeeded, "{done:?}");
    let output = done.output.expect("an output");
    assert_eq!((&output["MODEL"], &output["STYLE"]), (&json!("accepted"), &json!("invoke")), "{output}");
}

on_both_stores!(the_cli_passes_overridable_env_to_an_invoke);
async fn the_cli_passes_overridable_env_to_an_invoke(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = crate::cli::Shell::new(&app.base_url);
    shell.signup().await;
    let dir = tempfile::tempdir().expect("temp dir");
    crate::harness::write_shell_agent(dir.path(), "cli-env", PRINT_ENV);
    let manifest = std::fs::read_to_string(dir.path().join("agent.toml")).unwrap();
    std::fs::write(dir.path().join("agent.toml"), format!("{manifest}{CONFIGURED}\n")).unwrap();
    shell.ok(&["agents", "deploy", dir.path().to_str().unwrap()]).await;
    let run = shell.ok(&["invoke", "cli-env", "--env", "STYLE=a=b", "--wait", "--json"]).await;
    let shown: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(shown["output"]["STYLE"], "a=b", "{run:#?}");
    assert_eq!(shown["output"]["MODEL"], "manifest");
    let refused = shell.run(&["invoke", "cli-env", "--env", "MODEL=x", "--wait"]).await;
    assert_eq!(refused.code, Some(2), "{refused:#?}");
    assert!(refused.stderr.contains("env_not_overridable"), "{refused:#?}");
}
