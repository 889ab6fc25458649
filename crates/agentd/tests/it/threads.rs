//! Threads: state that carries across runs, a failed run that leaves it as it was, state
//! set by hand, history, metadata, and what each `multitask_strategy` does when a thread
//! already has a run going.

use std::time::Duration;

use agentd_api_types::{CreateThreadRequest, Invocation, InvocationStatus, InvokeRequest, ThreadStatus};
use agentd_client::{InvocationFilter, InvokeOptions, ThreadFilter};
use agentd_test_support::{Backend, on_both_stores};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, TestTenant, poll_invocation};

/// Counts its runs in the thread's state and remembers each word; fails when asked to
/// (after changing its state, which must then not count), sleeps when asked to.
const COUNTER: &str = r#"import time
from agentd import run

def handler(ctx):
    count = ctx.state.get("count", 0) + 1
    ctx.state["count"] = count
    ctx.state["words"] = ctx.state.get("words", []) + [ctx.input.get("word")]
    if ctx.input.get("sleep"):
        ctx.save_state()
        time.sleep(ctx.input["sleep"])
    if ctx.input.get("fail"):
        raise RuntimeError("asked to fail")
    if ctx.input.get("ask"):
        ctx.ask("go on?")
    return {"count": count}

run(handler)
"#;

async fn deploy_counter(app: &TestApp, tenant: &TestTenant, slug: &str) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!("name = \"{slug}\"\nruntime = \"python\"\nentrypoint = \"main.py\"\n");
    std::fs::write(dir.path().join("agent.toml"), manifest).unwrap();
    std::fs::write(dir.path().join("main.py"), COUNTER).unwrap();
    app.deploy_dir(tenant, slug, dir.path()).await;
}

async fn new_thread(tenant: &TestTenant, agent: Option<&str>) -> String {
    let request = CreateThreadRequest { agent: agent.map(str::to_owned), metadata: None };
    tenant.client.thread_create(&request).await.expect("create thread").id.to_string()
}

fn on_thread(thread: &str, input: Value, strategy: Option<&str>) -> InvokeRequest {
    InvokeRequest {
        input,
        thread_id: Some(thread.to_owned()),
        multitask_strategy: strategy.map(str::to_owned),
        max_attempts: Some(1),
        ..InvokeRequest::default()
    }
}

async fn run_on(tenant: &TestTenant, slug: &str, thread: &str, input: Value) -> Invocation {
    let options = InvokeOptions { wait_s: Some(30), ..InvokeOptions::default() };
    tenant.client.invoke(slug, &on_thread(thread, input, None), &options).await.expect("invoke")
}

async fn start_on(tenant: &TestTenant, slug: &str, thread: &str, input: Value, strategy: Option<&str>) -> Invocation {
    let request = on_thread(thread, input, strategy);
    tenant.client.invoke(slug, &request, &InvokeOptions::default()).await.expect("invoke")
}

async fn settle(tenant: &TestTenant, id: &str) -> Invocation {
    poll_invocation(tenant, id, Duration::from_secs(60), |i| i.status.is_terminal()).await
}

/// Waits until the run is running and has sent a `state` event.
async fn wait_for_state_event(tenant: &TestTenant, id: &str) {
    for _ in 0..600 {
        let events = tenant.client.invocation_logs(id, None, None).await.unwrap().data;
        if events.iter().any(|e| e.kind == agentd_api_types::EventKind::State) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} never sent its state");
}

on_both_stores!(state_carries_across_runs_and_a_failed_run_leaves_it_as_it_was);
async fn state_carries_across_runs_and_a_failed_run_leaves_it_as_it_was(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("threads").await;
    deploy_counter(&app, &tenant, "counter").await;
    let thread = new_thread(&tenant, None).await;
    let created = tenant.client.thread_get(&thread).await.unwrap();
    assert_eq!((created.agent, created.status), (None, ThreadStatus::Idle));
    assert_eq!(tenant.client.thread_state(&thread).await.unwrap().state, Value::Null);

    let mut ids = Vec::new();
    for (n, word) in ["one", "two", "three"].iter().enumerate() {
        let done = run_on(&tenant, "counter", &thread, json!({"word": word})).await;
        assert_eq!((done.status, &done.output), (InvocationStatus::Succeeded, &Some(json!({"count": n + 1}))));
        assert_eq!(done.thread_id.as_ref().map(|t| t.to_string()), Some(thread.clone()));
        ids.push(done.id.to_string());
    }
    let state = tenant.client.thread_state(&thread).await.unwrap();
    assert_eq!(state.state, json!({"count": 3, "words": ["one", "two", "three"]}));
    assert_eq!(
        state.checkpoint.as_ref().and_then(|c| c.invocation_id.as_ref()).map(|i| i.to_string()),
        ids.last().cloned()
    );
    let thread_now = tenant.client.thread_get(&thread).await.unwrap();
    assert_eq!(thread_now.agent.as_ref().map(|a| a.as_str()), Some("counter"), "the first run binds the agent");
    assert_eq!(thread_now.status, ThreadStatus::Idle);

    // The agent changed its state and then failed: the thread keeps the state it had.
    let failed = run_on(&tenant, "counter", &thread, json!({"word": "four", "fail": true})).await;
    assert_eq!(failed.status, InvocationStatus::Failed, "{failed:?}");
    let after_failure = tenant.client.thread_state(&thread).await.unwrap();
    assert_eq!(after_failure, state);

    // History: newest first, one checkpoint per settled run, in cursor pages.
    let first_page = tenant.client.thread_history(&thread, Some(2), None).await.unwrap();
    let seqs: Vec<u64> = first_page.data.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, [3, 2]);
    let rest = tenant.client.thread_history(&thread, Some(2), first_page.next_cursor.as_deref()).await.unwrap();
    assert_eq!((rest.data.len(), rest.data[0].state.clone()), (1, json!({"count": 1, "words": ["one"]})));
    assert_eq!(rest.next_cursor, None);
    let runs = tenant
        .client
        .invocations_list(&InvocationFilter { thread_id: Some(thread.clone()), ..InvocationFilter::default() })
        .await
        .unwrap();
    assert_eq!(runs.data.len(), 4);

    // State set by hand is a checkpoint, and the next run starts on it.
    let set = tenant.client.thread_set_state(&thread, json!({"count": 10, "words": []})).await.unwrap();
    assert_eq!(
        (set.checkpoint.as_ref().map(|c| c.seq), set.checkpoint.as_ref().and_then(|c| c.invocation_id.clone())),
        (Some(4), None)
    );
    let next = run_on(&tenant, "counter", &thread, json!({"word": "eleven"})).await;
    assert_eq!(next.output, Some(json!({"count": 11})));

    // A thread holds one agent's conversation.
    app.deploy_script(&tenant, "other", "printf '{\"type\":\"output\",\"data\":1}\\n' >&3").await;
    let request = on_thread(&thread, json!({}), None);
    let err = tenant.client.invoke("other", &request, &InvokeOptions::default()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("thread_agent_mismatch")));
}

on_both_stores!(threads_are_listed_filtered_patched_and_deleted);
async fn threads_are_listed_filtered_patched_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("listing").await;
    deploy_counter(&app, &tenant, "counter").await;
    let request = CreateThreadRequest { agent: Some("counter".into()), metadata: Some(json!({"user": "ada", "n": 1})) };
    let ada = tenant.client.thread_create(&request).await.unwrap();
    let request = CreateThreadRequest { agent: None, metadata: Some(json!({"user": "bob", "n": 2})) };
    let bob = tenant.client.thread_create(&request).await.unwrap();
    assert_eq!(ada.agent.as_ref().map(|a| a.as_str()), Some("counter"));

    let all = tenant.client.threads_list(&ThreadFilter::default()).await.unwrap();
    assert_eq!(all.data.iter().map(|t| t.id.clone()).collect::<Vec<_>>(), [bob.id.clone(), ada.id.clone()]);
    let by_agent = ThreadFilter { agent: Some("counter".into()), ..ThreadFilter::default() };
    assert_eq!(tenant.client.threads_list(&by_agent).await.unwrap().data.len(), 1);
    for (filter, expected) in [
        (json!({"user": "bob"}), vec![bob.id.clone()]),
        (json!({"user": "ada", "n": 1}), vec![ada.id.clone()]),
        (json!({"n": "1"}), vec![]),
        (json!({"user": "carol"}), vec![]),
    ] {
        let query = ThreadFilter { metadata: Some(filter.to_string()), ..ThreadFilter::default() };
        let found = tenant.client.threads_list(&query).await.unwrap();
        assert_eq!(found.data.iter().map(|t| t.id.clone()).collect::<Vec<_>>(), expected, "{filter}");
    }
    let busy = ThreadFilter { status: Some(ThreadStatus::Busy), ..ThreadFilter::default() };
    assert!(tenant.client.threads_list(&busy).await.unwrap().data.is_empty());
    for bad in ["status=asleep", "metadata=notjson", "metadata=%7B%22bad%20name%22%3A1%7D", "agent=Not%20A%20Slug"] {
        let response = tenant.client.request(Method::GET, &format!("/v1/threads?{bad}")).send().await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }

    let patched = tenant.client.thread_patch(ada.id.as_str(), json!({"n": null, "topic": "tea"})).await.unwrap();
    assert_eq!(patched.metadata, json!({"user": "ada", "topic": "tea"}));

    tenant.client.thread_delete(bob.id.as_str()).await.unwrap();
    let gone = tenant.client.thread_get(bob.id.as_str()).await.unwrap_err();
    assert_eq!(gone.status(), Some(404));
    let request = on_thread(bob.id.as_str(), json!({}), None);
    let err = tenant.client.invoke("counter", &request, &InvokeOptions::default()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")));

    // Bad thread fields are refused with what is wrong.
    for (body, code) in [
        (json!({"input": {}, "thread_id": "nope"}), "invalid_thread_id"),
        (json!({"input": {}, "multitask_strategy": "enqueue"}), "invalid_multitask_strategy"),
        (json!({"input": {}, "thread_id": ada.id, "multitask_strategy": "shove"}), "invalid_multitask_strategy"),
    ] {
        let response =
            tenant.client.request(Method::POST, "/v1/agents/counter/invoke").json(&body).send().await.unwrap();
        assert_eq!(response.status(), 422, "{body}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], code, "{problem}");
    }
    let large = json!({"state": "x".repeat(1024 * 1024 + 1)});
    let response = tenant
        .client
        .request(Method::POST, &format!("/v1/threads/{}/state", ada.id))
        .json(&large)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let response =
        tenant.client.request(Method::POST, "/v1/threads").json(&json!({"agent": "missing"})).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

on_both_stores!(a_busy_thread_rejects_enqueues_interrupts_or_rolls_back_as_asked);
async fn a_busy_thread_rejects_enqueues_interrupts_or_rolls_back_as_asked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("multitask").await;
    deploy_counter(&app, &tenant, "counter").await;

    // reject: the second invoke is refused while the first runs.
    let thread = new_thread(&tenant, Some("counter")).await;
    let slow = start_on(&tenant, "counter", &thread, json!({"word": "slow", "sleep": 30}), None).await;
    wait_for_state_event(&tenant, slow.id.as_str()).await;
    assert_eq!(tenant.client.thread_get(&thread).await.unwrap().status, ThreadStatus::Busy);
    let request = on_thread(&thread, json!({"word": "no"}), Some("reject"));
    let err = tenant.client.invoke("counter", &request, &InvokeOptions::default()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("thread_busy")));
    let manual = tenant.client.thread_set_state(&thread, json!({})).await.unwrap_err();
    assert_eq!((manual.status(), manual.code()), (Some(409), Some("thread_busy")));
    let deleted = tenant.client.thread_delete(&thread).await.unwrap_err();
    assert_eq!((deleted.status(), deleted.code()), (Some(409), Some("thread_busy")));

    // interrupt: the running run is stopped, recorded as interrupted, and the new run
    // starts on the state it had sent so far.
    let next = start_on(&tenant, "counter", &thread, json!({"word": "next"}), Some("interrupt")).await;
    let stopped = settle(&tenant, slow.id.as_str()).await;
    assert_eq!(stopped.status, InvocationStatus::Cancelled, "{stopped:?}");
    assert_eq!(stopped.error.as_ref().map(|e| e.code.as_str()), Some("interrupted"), "{stopped:?}");
    let next = settle(&tenant, next.id.as_str()).await;
    assert_eq!(next.output, Some(json!({"count": 2})), "{next:?}");
    assert_eq!(tenant.client.thread_state(&thread).await.unwrap().state["words"], json!(["slow", "next"]));

    // rollback: the running run is cancelled and what it did to the state is discarded.
    let slow = start_on(&tenant, "counter", &thread, json!({"word": "doomed", "sleep": 30}), None).await;
    wait_for_state_event(&tenant, slow.id.as_str()).await;
    let after = start_on(&tenant, "counter", &thread, json!({"word": "after"}), Some("rollback")).await;
    let rolled = settle(&tenant, slow.id.as_str()).await;
    assert_eq!(
        (rolled.status, rolled.error.as_ref().map(|e| e.code.as_str())),
        (InvocationStatus::Cancelled, Some("rolled_back")),
        "{rolled:?}"
    );
    let after = settle(&tenant, after.id.as_str()).await;
    assert_eq!(after.output, Some(json!({"count": 3})), "{after:?}");
    assert_eq!(tenant.client.thread_state(&thread).await.unwrap().state["words"], json!(["slow", "next", "after"]));

    // enqueue (the default): runs wait their turn and run in order, each on the state the
    // one before left.
    let first = start_on(&tenant, "counter", &thread, json!({"word": "a", "sleep": 1}), None).await;
    let second = start_on(&tenant, "counter", &thread, json!({"word": "b"}), None).await;
    let third = start_on(&tenant, "counter", &thread, json!({"word": "c"}), Some("enqueue")).await;
    wait_for_state_event(&tenant, first.id.as_str()).await;
    let waiting = tenant.client.invocation_get(second.id.as_str()).await.unwrap();
    assert_eq!(waiting.status, InvocationStatus::Queued, "the second waits while the first runs");
    let [first, second, third] = [
        settle(&tenant, first.id.as_str()).await,
        settle(&tenant, second.id.as_str()).await,
        settle(&tenant, third.id.as_str()).await,
    ];
    assert_eq!(
        [&first.output, &second.output, &third.output],
        [&Some(json!({"count": 4})), &Some(json!({"count": 5})), &Some(json!({"count": 6}))]
    );
    assert!(second.started_at >= first.finished_at && third.started_at >= second.finished_at);

    // A run waiting for an answer holds its thread too: the thread is interrupted, and a
    // newer run with `interrupt` ends the wait and starts on the state the question left.
    let asking = run_on(&tenant, "counter", &thread, json!({"word": "ask", "ask": true})).await;
    assert_eq!(asking.status, InvocationStatus::WaitingForInput);
    assert_eq!(tenant.client.thread_get(&thread).await.unwrap().status, ThreadStatus::Interrupted);
    let next = start_on(&tenant, "counter", &thread, json!({"word": "instead"}), Some("interrupt")).await;
    let asking = tenant.client.invocation_get(asking.id.as_str()).await.unwrap();
    assert_eq!(
        (asking.status, asking.error.map(|e| e.code)),
        (InvocationStatus::Cancelled, Some("interrupted".into()))
    );
    assert_eq!(settle(&tenant, next.id.as_str()).await.output, Some(json!({"count": 8})));
    assert_eq!(tenant.client.thread_get(&thread).await.unwrap().status, ThreadStatus::Idle);
}

on_both_stores!(a_thread_run_that_asks_resumes_on_the_state_it_started_with);
async fn a_thread_run_that_asks_resumes_on_the_state_it_started_with(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("resume").await;
    deploy_counter(&app, &tenant, "counter").await;
    let thread = new_thread(&tenant, None).await;
    run_on(&tenant, "counter", &thread, json!({"word": "one"})).await;
    let asking = run_on(&tenant, "counter", &thread, json!({"word": "two", "ask": true})).await;
    assert_eq!(asking.status, InvocationStatus::WaitingForInput);
    // While it waits, the state so far shows, and history has the question's checkpoint.
    assert_eq!(tenant.client.thread_state(&thread).await.unwrap().state["count"], 2);
    // The replay starts on the state before the run, so it counts to 2 again, not 3.
    let done = tenant.client.respond(asking.id.as_str(), json!("yes"), Some(30)).await.unwrap();
    assert_eq!((done.status, done.output), (InvocationStatus::Succeeded, Some(json!({"count": 2}))));
    let state = tenant.client.thread_state(&thread).await.unwrap();
    assert_eq!(state.state, json!({"count": 2, "words": ["one", "two"]}));
}

on_both_stores!(threads_are_created_continued_and_inspected_from_the_command_line);
async fn threads_are_created_continued_and_inspected_from_the_command_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = crate::cli::Shell::new(&app.base_url);
    shell.signup().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("agent.toml"),
        "name = \"counter\"\nruntime = \"python\"\nentrypoint = \"main.py\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("main.py"), COUNTER).unwrap();
    shell.ok(&["agents", "deploy", &dir.path().to_string_lossy()]).await;

    let created = shell.ok(&["threads", "create", "--agent", "counter"]).await;
    let thread = created.stdout.trim().to_owned();
    assert!(thread.starts_with("thr_"), "{created:#?}");
    for (word, count) in [("one", 1), ("two", 2)] {
        let input = json!({"word": word}).to_string();
        let run = shell.ok(&["invoke", "counter", "--thread", &thread, "--input", &input, "--wait"]).await;
        assert_eq!(crate::cli::json(&run.stdout), json!({"count": count}));
    }
    let listed = shell.ok(&["threads", "list", "--agent", "counter"]).await;
    assert!(listed.stdout.lines().any(|l| l.starts_with(&thread) && l.contains(" idle ")), "{listed:#?}");
    let shown = shell.ok(&["threads", "show", &thread]).await;
    assert!(shown.stdout.contains("\"count\": 2") && shown.stdout.contains("checkpoint 2"), "{shown:#?}");
    let history = shell.ok(&["threads", "history", &thread, "--json"]).await;
    let page = crate::cli::json(&history.stdout);
    let seqs: Vec<u64> = page["data"].as_array().unwrap().iter().filter_map(|c| c["seq"].as_u64()).collect();
    assert_eq!(seqs, [2, 1]);
    let refused = shell.run(&["invoke", "counter", "--thread", &thread, "--multitask-strategy", "nope"]).await;
    assert_eq!(refused.code, Some(2), "{refused:#?}");
    assert!(refused.stderr.contains("invalid_multitask_strategy"), "{refused:#?}");
}

on_both_stores!(the_notes_example_keeps_its_notes_in_the_thread);
async fn the_notes_example_keeps_its_notes_in_the_thread(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("notes").await;
    app.deploy_example(&tenant, "python-notes").await;
    let thread = new_thread(&tenant, Some("python-notes")).await;
    run_on(&tenant, "python-notes", &thread, json!({"note": "buy tea"})).await;
    let second = run_on(&tenant, "python-notes", &thread, json!({"note": "call Ada"})).await;
    assert_eq!(second.output, Some(json!({"notes": ["buy tea", "call Ada"]})));
    let refused = run_on(&tenant, "python-notes", &thread, json!({})).await;
    assert_eq!(refused.status, InvocationStatus::Failed);
    let state = tenant.client.thread_state(&thread).await.unwrap();
    assert_eq!(state.state, json!({"notes": ["buy tea", "call Ada"]}));
}
