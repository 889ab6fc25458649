//! Every run calls back with its own `AGENTD_TOKEN` at `AGENTD_API_URL`: it invokes
//! sub-agents (recorded with `parent_id` and `depth`, nested at most the workspace's
//! `max_invocation_depth` deep), reads and cancels those, and is refused everything else,
//! another tenant's resources, and everything once its run has ended. The way back to the
//! API works on the server's own worker and on a remote `agentd worker`.

use std::path::Path;
use std::time::Duration;

use agentd_api_types::{Invocation, InvocationStatus};
use agentd_client::InvocationFilter;
use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, TestTenant, invoke_and_wait, log_messages};

/// An agent that invokes `echo` through the Python SDK and returns what the child returned.
const PYTHON_PARENT: &str = r#"
import agentd

def handle(ctx):
    child = ctx.invoke("echo", {"from": ctx.agent}, wait=30)
    return {"child_id": child["id"], "status": child["status"], "output": child["output"]}

agentd.run(handle)
"#;

/// The same through the Node SDK.
const NODE_PARENT: &str = r#"
import { run } from "agentd";

run(async (ctx) => {
  const child = await ctx.invoke("echo", { from: ctx.agent }, { wait: 30 });
  return { child_id: child.id, status: child.status, output: child.output };
});
"#;

fn write_agent(dir: &Path, name: &str, runtime: &str, entrypoint: &str, code: &str) {
    let manifest = format!("name = \"{name}\"\nruntime = \"{runtime}\"\nentrypoint = \"{entrypoint}\"\n");
    std::fs::write(dir.join("agent.toml"), manifest).unwrap();
    std::fs::write(dir.join(entrypoint), code).unwrap();
}

async fn deploy_python(app: &TestApp, tenant: &TestTenant, slug: &str, code: &str) {
    let dir = tempfile::tempdir().unwrap();
    write_agent(dir.path(), slug, "python", "main.py", code);
    app.deploy_dir(tenant, slug, dir.path()).await;
}

async fn deploy_node(app: &TestApp, tenant: &TestTenant, slug: &str, code: &str) {
    let dir = tempfile::tempdir().unwrap();
    write_agent(dir.path(), slug, "node", "main.mjs", code);
    app.deploy_dir(tenant, slug, dir.path()).await;
}

/// Asserts that a parent's run returned its child's output, and that the child is
/// recorded as the parent's, one level deeper.
async fn assert_parent_and_child(tenant: &TestTenant, parent: &Invocation, slug: &str) -> Invocation {
    assert_eq!(
        parent.status,
        InvocationStatus::Succeeded,
        "{parent:?}: {:?}",
        log_messages(tenant, parent.id.as_str()).await
    );
    let output = parent.output.clone().unwrap_or_default();
    assert_eq!(output["status"], "succeeded", "{output}");
    assert_eq!(output["output"], json!({"echo": {"from": slug}}), "{output}");
    let child = tenant.client.invocation_get(output["child_id"].as_str().unwrap()).await.unwrap();
    assert_eq!((child.parent_id.as_ref(), child.depth), (Some(&parent.id), 1), "{child:?}");
    assert_eq!((parent.parent_id.as_ref(), parent.depth), (None, 0), "{parent:?}");
    child
}

on_both_stores!(a_run_invokes_a_sub_agent_with_its_token_and_returns_its_output);
async fn a_run_invokes_a_sub_agent_with_its_token_and_returns_its_output(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    app.deploy_dir(&alpha, "echo", &crate::harness::examples_dir().join("python-echo")).await;
    deploy_python(&app, &alpha, "py-parent", PYTHON_PARENT).await;
    deploy_node(&app, &alpha, "node-parent", NODE_PARENT).await;

    let parent = invoke_and_wait(&alpha, "py-parent", json!({})).await;
    let child = assert_parent_and_child(&alpha, &parent, "py-parent").await;
    let node_parent = invoke_and_wait(&alpha, "node-parent", json!({})).await;
    assert_parent_and_child(&alpha, &node_parent, "node-parent").await;

    // A parent's sub-invocations are a filter of the list; the parent itself is not in it.
    let filter = InvocationFilter { parent_id: Some(parent.id.to_string()), ..Default::default() };
    let children = alpha.client.invocations_list(&filter).await.unwrap();
    assert_eq!(children.data.iter().map(|i| &i.id).collect::<Vec<_>>(), [&child.id]);
    let response = alpha.client.request(Method::GET, "/v1/invocations?parent_id=not-an-id").send().await.unwrap();
    assert_eq!(response.status(), 400);
    // Another tenant filtering on alpha's invocation sees nothing.
    let beta = app.signup("beta").await;
    assert!(beta.client.invocations_list(&filter).await.unwrap().data.is_empty());
}

/// Probes what the run's token may do and returns what each call answered, with the token.
const PROBER: &str = r#"
import os
import agentd

def handle(ctx):
    api = ctx.api
    def ask(method, path, body=None):
        try:
            api.request(method, path, body)
            return [200, None]
        except agentd.ApiError as err:
            return [err.status, err.code]
    other, beta_invocation = ctx.input["other"], ctx.input["beta_invocation"]
    child = ctx.invoke("sleeper", {})
    answers = {
        "me": api.request("GET", "/v1/me"),
        "own child": ask("GET", "/v1/invocations/" + child["id"]),
        "cancel own child": api.request("POST", "/v1/invocations/" + child["id"] + "/cancel")["status"],
        "list keys": ask("GET", "/v1/api-keys"),
        "create key": ask("POST", "/v1/api-keys", {"name": "stolen"}),
        "list invocations": ask("GET", "/v1/invocations"),
        "create agent": ask("POST", "/v1/agents", {"slug": "evil"}),
        "deploy": ask("POST", "/v1/agents/sleeper/versions", {}),
        "patch agent": ask("PATCH", "/v1/agents/sleeper", {"name": "x"}),
        "itself": ask("GET", "/v1/invocations/" + ctx.invocation_id),
        "not its child": ask("GET", "/v1/invocations/" + other),
        "cancel not its child": ask("POST", "/v1/invocations/" + other + "/cancel"),
        "logs of its child": ask("GET", "/v1/invocations/" + child["id"] + "/logs"),
        "another tenant's invocation": ask("GET", "/v1/invocations/" + beta_invocation),
        "another tenant's agent": ask("POST", "/v1/agents/beta-only/invoke", {"input": {}}),
        "worker claim": ask("POST", "/v1/worker/claim", {"worker": "w", "lease_s": 5, "wait_s": 0}),
    }
    return {"answers": answers, "token": os.environ["AGENTD_TOKEN"], "url": os.environ["AGENTD_API_URL"]}

agentd.run(handle)
"#;

on_both_stores!(a_runs_token_is_refused_beyond_its_grant_and_after_the_run_ends);
async fn a_runs_token_is_refused_beyond_its_grant_and_after_the_run_ends(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    let beta = app.signup("beta").await;
    app.deploy_script(&alpha, "sleeper", "echo started\nsleep 300").await;
    app.deploy_example(&alpha, "shell-wc").await;
    app.deploy_script(&beta, "beta-only", "printf '{\"type\":\"output\",\"data\":1}\\n' >&3").await;
    deploy_python(&app, &alpha, "prober", PROBER).await;
    let other = invoke_and_wait(&alpha, "shell-wc", json!({})).await;
    let beta_invocation = invoke_and_wait(&beta, "beta-only", json!({})).await;

    let input = json!({"other": other.id, "beta_invocation": beta_invocation.id});
    let done = invoke_and_wait(&alpha, "prober", input).await;
    assert_eq!(
        done.status,
        InvocationStatus::Succeeded,
        "{done:?}: {:?}",
        log_messages(&alpha, done.id.as_str()).await
    );
    let output = done.output.unwrap();
    let answers = &output["answers"];
    assert_eq!(output["url"], "http://127.0.0.1:8470");
    let me = &answers["me"];
    assert_eq!(me["actor"], json!({"type": "run", "id": done.id}), "{me}");
    assert_eq!(
        (&me["run"]["invocation_id"], &me["run"]["agent"], &me["run"]["depth"]),
        (&json!(done.id), &json!("prober"), &json!(0))
    );
    assert_eq!((&me["scopes"], &me["tenant"]["slug"]), (&json!([]), &json!("alpha")), "{me}");
    assert_eq!(answers["own child"], json!([200, null]));
    assert_eq!(answers["cancel own child"], "cancelled");
    let not_accepted = json!([401, "run_token_not_accepted"]);
    let not_found = json!([404, "not_found"]);
    for (call, expected) in [
        ("list keys", &not_accepted),
        ("create key", &not_accepted),
        ("list invocations", &not_accepted),
        ("create agent", &not_accepted),
        ("deploy", &not_accepted),
        ("patch agent", &not_accepted),
        ("logs of its child", &not_accepted),
        ("itself", &not_found),
        ("not its child", &not_found),
        ("cancel not its child", &not_found),
        ("another tenant's invocation", &not_found),
        ("another tenant's agent", &not_found),
        ("worker claim", &json!([401, "unauthorized"])),
    ] {
        assert_eq!(&answers[call], expected, "{call}: {answers}");
    }
    // Nothing was made or changed meanwhile.
    assert_eq!(alpha.client.api_keys_list(&Default::default()).await.unwrap().data.len(), 1);
    assert!(alpha.client.agent_get("evil").await.is_err());
    assert_eq!(alpha.client.agent_get("sleeper").await.unwrap().name, "sleeper");

    // The run is over: the token it leaked is refused, saying why; a made-up one is unknown.
    let token = output["token"].as_str().unwrap();
    assert!(token.starts_with("agr_"), "{token}");
    let leaked = app.client().with_token(token);
    for (method, path, body) in [
        (Method::GET, "/v1/me", None),
        (Method::POST, "/v1/agents/shell-wc/invoke", Some(json!({"input": {}}))),
        (Method::GET, "/v1/api-keys", None),
    ] {
        let mut request = leaked.request(method.clone(), path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let problem: Value = response.json().await.unwrap();
        assert_eq!((status, problem["code"].as_str()), (401, Some("run_ended")), "{method} {path}: {problem}");
    }
    let made_up = app.client().with_token("agr_madeup").request(Method::GET, "/v1/me").send().await.unwrap();
    let problem: Value = made_up.json().await.unwrap();
    assert_eq!(problem["code"], "unauthorized", "{problem}");
}

/// Invokes itself one level deeper until the platform refuses, and returns how deep it got
/// and why it stopped.
const NESTER: &str = r#"
import agentd

def handle(ctx):
    depth = ctx.api.request("GET", "/v1/me")["run"]["depth"]
    try:
        child = ctx.invoke("nester", {}, wait=30)
    except agentd.ApiError as err:
        return {"deepest": depth, "refused": err.code, "status": err.status}
    return child["output"]

agentd.run(handle)
"#;

on_both_stores!(sub_agents_nest_up_to_the_depth_limit_and_no_deeper);
async fn sub_agents_nest_up_to_the_depth_limit_and_no_deeper(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_LIMITS_MAX_INVOCATION_DEPTH", "2")]).await;
    let alpha = app.signup("alpha").await;
    assert_eq!(alpha.signup.tenant.limits.max_invocation_depth, 2);
    deploy_python(&app, &alpha, "nester", NESTER).await;
    let top = invoke_and_wait(&alpha, "nester", json!({})).await;
    assert_eq!(top.status, InvocationStatus::Succeeded, "{top:?}");
    assert_eq!(top.output, Some(json!({"deepest": 2, "refused": "invocation_depth_exceeded", "status": 422})));
    // The chain is recorded: each one the child of the one before, one deeper.
    let mut parent = top;
    for depth in 1..=2 {
        let filter = InvocationFilter { parent_id: Some(parent.id.to_string()), ..Default::default() };
        let children = alpha.client.invocations_list(&filter).await.unwrap().data;
        let [child] = &children[..] else { panic!("depth {depth}: {children:?}") };
        assert_eq!((child.depth, child.status), (depth, InvocationStatus::Succeeded), "{child:?}");
        parent = child.clone();
    }
    let filter = InvocationFilter { parent_id: Some(parent.id.to_string()), ..Default::default() };
    assert!(alpha.client.invocations_list(&filter).await.unwrap().data.is_empty());
}

/// Calls `GET /v1/me` until it is refused, and returns the refusal's code.
const SUSPENSION_WATCHER: &str = r#"
import time
import agentd

def handle(ctx):
    ctx.log("started")
    for _ in range(400):
        try:
            ctx.api.request("GET", "/v1/me")
        except agentd.ApiError as err:
            return [err.status, err.code]
        time.sleep(0.05)
    return "never refused"

agentd.run(handle)
"#;

on_both_stores!(a_suspended_workspaces_runs_are_refused_as_its_keys_are);
async fn a_suspended_workspaces_runs_are_refused_as_its_keys_are(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    deploy_python(&app, &alpha, "watcher", SUSPENSION_WATCHER).await;
    let accepted = alpha.client.invoke("watcher", &Default::default(), &Default::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !log_messages(&alpha, accepted.id.as_str()).await.iter().any(|m| m == "started") {
        assert!(tokio::time::Instant::now() < deadline, "the watcher never started");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let tenant = &alpha.signup.tenant.id;
    app.execute_sql(&format!("UPDATE tenants SET status = 'suspended' WHERE id = '{tenant}'")).await;
    // The workspace's own key is refused now too, so the outcome is read behind its back.
    let id = accepted.id.as_str();
    let finished = format!("SELECT output FROM invocations WHERE id = '{id}' AND finished_at IS NOT NULL");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let output = loop {
        if let Some(output) = app.query_text(&finished).await {
            break output;
        }
        assert!(tokio::time::Instant::now() < deadline, "the watcher never finished");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(serde_json::from_str::<Value>(&output).unwrap(), json!([403, "tenant_suspended"]));
    let key = alpha.client.me().await.unwrap_err();
    assert_eq!(key.code(), Some("tenant_suspended"));
}

on_both_stores!(a_run_on_a_remote_worker_reaches_the_api_through_its_forward);
async fn a_run_on_a_remote_worker_reaches_the_api_through_its_forward(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "0")]).await;
    let alpha = app.signup("alpha").await;
    app.deploy_dir(&alpha, "echo", &crate::harness::examples_dir().join("python-echo")).await;
    deploy_python(&app, &alpha, "py-parent", PYTHON_PARENT).await;
    let _worker = app.spawn_worker(&app.create_worker_token(), "remote");
    let parent = invoke_and_wait(&alpha, "py-parent", json!({})).await;
    assert_parent_and_child(&alpha, &parent, "py-parent").await;
}

/// On a thread: reads its thread and its state, writes a checkpoint, uses the memory store
/// (Python SDK), and reports what it was refused.
const PYTHON_THREAD_AND_STORE: &str = r#"
import agentd

def refused(call):
    try:
        call()
        return None
    except agentd.ApiError as err:
        return [err.status, err.code]

def handle(ctx):
    api = ctx.api
    thread = api.request("GET", f"/v1/threads/{ctx.thread_id}")
    before = api.request("GET", f"/v1/threads/{ctx.thread_id}/state")["state"]
    api.request("POST", f"/v1/threads/{ctx.thread_id}/state", body={"state": {"step": "midway"}})
    ctx.store.put(["memories", "ada"], "colour", {"value": "green", "kind": "pref"})
    got = ctx.store.get(["memories", "ada"], "colour")
    found = ctx.store.search(["memories"], filter={"kind": "pref"})
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    return {
        "token": ctx.api.token,
        "thread_status": thread["status"],
        "before": before,
        "got": got["value"],
        "found": [item["key"] for item in found],
        "missing": ctx.store.get(["memories", "ada"], "nothing"),
        "other_thread": refused(lambda: api.request("GET", f"/v1/threads/{ctx.input['other']}/state")),
        "list_threads": refused(lambda: api.request("GET", "/v1/threads")),
        "delete_thread": refused(lambda: api.request("DELETE", f"/v1/threads/{ctx.thread_id}")),
    }

agentd.run(handle)
"#;

on_both_stores!(a_run_reads_its_thread_and_uses_the_store_with_its_token_and_nothing_else);
async fn a_run_reads_its_thread_and_uses_the_store_with_its_token_and_nothing_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    deploy_python(&app, &alpha, "memo", PYTHON_THREAD_AND_STORE).await;
    let thread = alpha.client.thread_create(&Default::default()).await.unwrap().id.to_string();
    let other = alpha.client.thread_create(&Default::default()).await.unwrap().id.to_string();
    alpha.client.thread_set_state(&thread, json!({"runs": 41})).await.unwrap();
    let request = agentd_api_types::InvokeRequest {
        input: json!({"other": other}),
        thread_id: Some(thread.clone()),
        ..Default::default()
    };
    let options = agentd_client::InvokeOptions { wait_s: Some(30), ..Default::default() };
    let done = alpha.client.invoke("memo", &request, &options).await.unwrap();
    assert_eq!(done.status, InvocationStatus::Succeeded, "{:?}", log_messages(&alpha, done.id.as_str()).await);
    let out = done.output.clone().unwrap_or_default();
    assert_eq!(out["thread_status"], "busy", "its own run keeps it busy: {out}");
    assert_eq!(out["before"], json!({"runs": 41}));
    assert_eq!(out["got"], json!({"value": "green", "kind": "pref"}));
    assert_eq!(out["found"], json!(["colour"]));
    assert_eq!(out["missing"], Value::Null);
    assert_eq!(out["other_thread"], json!([404, "not_found"]), "{out}");
    assert_eq!(out["list_threads"], json!([401, "run_token_not_accepted"]), "{out}");
    assert_eq!(out["delete_thread"], json!([401, "run_token_not_accepted"]), "{out}");

    // The checkpoint it wrote mid-run is the run's, and its state when it settled is last.
    let history = alpha.client.thread_history(&thread, None, None).await.unwrap().data;
    let states: Vec<&Value> = history.iter().map(|c| &c.state).collect();
    assert_eq!(states, [&json!({"runs": 42}), &json!({"step": "midway"}), &json!({"runs": 41})]);
    assert_eq!(history[1].invocation_id.as_ref(), Some(&done.id));
    let item = alpha.client.store_item_get(&["memories", "ada"], "colour").await.unwrap();
    assert_eq!(item.value, json!({"value": "green", "kind": "pref"}));

    // Once the run is over its token opens nothing.
    let token = out["token"].as_str().unwrap().to_owned();
    let late = app.client().with_token(token);
    for (method, path) in [
        (Method::GET, "/v1/store/items?namespace=memories.ada&key=colour".to_owned()),
        (Method::GET, format!("/v1/threads/{thread}/state")),
    ] {
        let response = late.request(method, &path).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
}

const NODE_STORE: &str = r#"
import { run } from "agentd";

run(async (ctx) => {
  await ctx.store.put(["notes"], "first", { text: "hello", kind: "note" }, { ttlS: 3600 });
  const got = await ctx.store.get(["notes"], "first");
  const found = await ctx.store.search(["notes"], { filter: { kind: "note" } });
  const namespaces = await ctx.store.namespaces();
  const deleted = await ctx.store.delete(["notes"], "first");
  const again = await ctx.store.delete(["notes"], "first");
  return { got: got.value, expires: got.expires_at !== null, found: found.length, namespaces, deleted, again };
});
"#;

on_both_stores!(the_node_sdk_uses_the_store_with_the_runs_token);
async fn the_node_sdk_uses_the_store_with_the_runs_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    deploy_node(&app, &alpha, "node-memo", NODE_STORE).await;
    let done = invoke_and_wait(&alpha, "node-memo", json!({})).await;
    assert_eq!(done.status, InvocationStatus::Succeeded, "{:?}", log_messages(&alpha, done.id.as_str()).await);
    assert_eq!(
        done.output,
        Some(json!({
            "got": {"text": "hello", "kind": "note"}, "expires": true, "found": 1,
            "namespaces": [["notes"]], "deleted": true, "again": false
        }))
    );
}
