//! Human in the loop: an agent asks (`ctx.ask`), the invocation waits holding no slot,
//! an answer resumes it as a new attempt with every answer so far, over any number of
//! rounds; double answers, crashes between rounds, cancels and unanswered questions.

use std::time::Duration;

use agentd_api_types::{InvocationStatus, InvokeRequest};
use agentd_client::{Client, InvokeOptions};
use agentd_test_support::{Backend, on_both_stores};
use serde_json::json;

use crate::harness::{TestApp, TestTenant, invoke_and_wait, poll_invocation};

/// Asks two questions and returns both answers: the example of `examples/agents/python-ask`.
const PYTHON_TWO_QUESTIONS: &str = include_str!("../../../../examples/agents/python-ask/main.py");

const NODE_TWO_QUESTIONS: &str = r#"import { run } from "agentd";

run(async (ctx) => {
  const name = await ctx.ask({ question: "name?" });
  const color = await ctx.ask({ question: `favourite colour, ${name}?` });
  return { name, color };
});
"#;

fn write_agent(dir: &std::path::Path, slug: &str, runtime: &str, entrypoint: &str, code: &str) {
    let manifest = format!("name = \"{slug}\"\nruntime = \"{runtime}\"\nentrypoint = \"{entrypoint}\"\n");
    std::fs::write(dir.join("agent.toml"), manifest).unwrap();
    std::fs::write(dir.join(entrypoint), code).unwrap();
}

async fn deploy(app: &TestApp, tenant: &TestTenant, slug: &str, runtime: &str, entrypoint: &str, code: &str) {
    let dir = tempfile::tempdir().unwrap();
    write_agent(dir.path(), slug, runtime, entrypoint, code);
    app.deploy_dir(tenant, slug, dir.path()).await;
}

/// Starts an invocation and waits (server side) until it settles.
async fn start(tenant: &TestTenant, slug: &str, request: InvokeRequest) -> agentd_api_types::Invocation {
    let options = InvokeOptions { wait_s: Some(30), ..InvokeOptions::default() };
    tenant.client.invoke(slug, &request, &options).await.expect("invoke")
}

async fn answer_both(client: &Client, id: &str) -> agentd_api_types::Invocation {
    let waiting = client.respond(id, json!("Ada"), Some(30)).await.expect("first answer");
    assert_eq!(waiting.status, InvocationStatus::WaitingForInput, "waiting on the second question: {waiting:?}");
    client.respond(id, json!("green"), Some(30)).await.expect("second answer")
}

on_both_stores!(a_python_agent_asks_twice_and_ends_with_both_answers_in_order);
async fn a_python_agent_asks_twice_and_ends_with_both_answers_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("asks").await;
    deploy(&app, &tenant, "asker", "python", "main.py", PYTHON_TWO_QUESTIONS).await;
    let first = start(&tenant, "asker", InvokeRequest::default()).await;
    assert_eq!(first.status, InvocationStatus::WaitingForInput, "{first:?}");
    let asked = tenant.client.interrupts(first.id.as_str()).await.unwrap().data;
    assert_eq!(asked.len(), 1);
    assert_eq!((asked[0].round, &asked[0].value, &asked[0].answer), (1, &json!({"question": "name?"}), &None));

    let done = answer_both(&tenant.client, first.id.as_str()).await;
    assert_eq!(done.status, InvocationStatus::Succeeded, "{done:?}");
    assert_eq!(done.output, Some(json!({"name": "Ada", "color": "green", "attempt": 3})));
    let asked = tenant.client.interrupts(first.id.as_str()).await.unwrap().data;
    assert_eq!(asked.iter().map(|i| i.answer.clone()).collect::<Vec<_>>(), [Some(json!("Ada")), Some(json!("green"))]);
    assert_eq!(asked[1].value, json!({"question": "favourite colour, Ada?"}));
    let key_id = tenant.signup.api_key.key.id.to_string();
    assert!(asked.iter().all(|i| i.answered_by.as_deref() == Some(key_id.as_str())), "{asked:?}");

    let late = tenant.client.respond(first.id.as_str(), json!("again"), None).await.expect_err("nothing to answer");
    assert_eq!((late.status(), late.code()), (Some(409), Some("not_waiting")));
}

on_both_stores!(a_node_agent_asks_twice_and_ends_with_both_answers_in_order);
async fn a_node_agent_asks_twice_and_ends_with_both_answers_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("node").await;
    deploy(&app, &tenant, "node-asker", "node", "main.mjs", NODE_TWO_QUESTIONS).await;
    let first = start(&tenant, "node-asker", InvokeRequest::default()).await;
    assert_eq!(first.status, InvocationStatus::WaitingForInput, "{first:?}");
    let done = answer_both(&tenant.client, first.id.as_str()).await;
    assert_eq!(
        (done.status, done.output),
        (InvocationStatus::Succeeded, Some(json!({"name": "Ada", "color": "green"})))
    );
}

on_both_stores!(a_waiting_run_holds_no_slot_and_two_answers_to_one_question_get_one_409);
async fn a_waiting_run_holds_no_slot_and_two_answers_to_one_question_get_one_409(backend: Backend) {
    let env = [("AGENTD_WORKER_SLOTS", "1"), ("AGENTD_LIMITS_MAX_CONCURRENT_INVOCATIONS", "1")];
    let app = TestApp::spawn_with(backend, &env).await;
    let tenant = app.signup("slots").await;
    deploy(&app, &tenant, "asker", "python", "main.py", PYTHON_TWO_QUESTIONS).await;
    let waiting = start(&tenant, "asker", InvokeRequest::default()).await;
    assert_eq!(waiting.status, InvocationStatus::WaitingForInput);
    // One worker slot and one concurrency slot: another run gets both meanwhile.
    app.deploy_script(&tenant, "quick", "printf '{\"type\":\"output\",\"data\":\"ran\"}\\n' >&3").await;
    let other = invoke_and_wait(&tenant, "quick", json!({})).await;
    assert_eq!((other.status, other.output), (InvocationStatus::Succeeded, Some(json!("ran"))));

    let id = waiting.id.as_str();
    let (a, b) =
        tokio::join!(tenant.client.respond(id, json!("Ada"), None), tenant.client.respond(id, json!("Bob"), None));
    let codes: Vec<Option<String>> =
        [&a, &b].iter().map(|r| r.as_ref().err().and_then(|e| e.code().map(str::to_owned))).collect();
    assert_eq!(codes.iter().filter(|c| c.is_none()).count(), 1, "exactly one answer wins: {a:?} {b:?}");
    assert!(codes.contains(&Some("not_waiting".to_owned())), "the other is refused: {a:?} {b:?}");
    let winner = if a.is_ok() { "Ada" } else { "Bob" };
    let asked = tenant.client.interrupts(id).await.unwrap().data;
    assert_eq!(asked[0].answer, Some(json!(winner)));
}

on_both_stores!(a_crash_between_rounds_loses_no_answer);
async fn a_crash_between_rounds_loses_no_answer(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let tenant = app.signup("crash").await;
    deploy(&app, &tenant, "asker", "python", "main.py", PYTHON_TWO_QUESTIONS).await;
    let first = start(&tenant, "asker", InvokeRequest::default()).await;
    let id = first.id.as_str().to_owned();
    let waiting = tenant.client.respond(&id, json!("Ada"), Some(30)).await.unwrap();
    assert_eq!(waiting.status, InvocationStatus::WaitingForInput);
    app.crash().await;
    app.start_again().await;
    let client = app.client().with_token(tenant.key.clone());
    let done = client.respond(&id, json!("green"), Some(30)).await.unwrap();
    assert_eq!(done.status, InvocationStatus::Succeeded, "{done:?}");
    assert_eq!(done.output.unwrap()["name"], "Ada", "round 1's answer survived the crash");
}

on_both_stores!(a_waiting_run_can_be_cancelled_and_an_unanswered_one_times_out);
async fn a_waiting_run_can_be_cancelled_and_an_unanswered_one_times_out(backend: Backend) {
    // A short lease makes the reconcilers look every second.
    let app = TestApp::spawn_with(backend, &[("AGENTD_LEASE_S", "2")]).await;
    let tenant = app.signup("ends").await;
    deploy(&app, &tenant, "asker", "python", "main.py", PYTHON_TWO_QUESTIONS).await;
    let waiting = start(&tenant, "asker", InvokeRequest::default()).await;
    let cancelled = tenant.client.invocation_cancel(waiting.id.as_str()).await.unwrap();
    assert_eq!(cancelled.status, InvocationStatus::Cancelled);

    let request = InvokeRequest { input_timeout_s: Some(1), ..InvokeRequest::default() };
    let unanswered = start(&tenant, "asker", request).await;
    assert_eq!(unanswered.status, InvocationStatus::WaitingForInput);
    let ended =
        poll_invocation(&tenant, unanswered.id.as_str(), Duration::from_secs(30), |i| i.status.is_terminal()).await;
    assert_eq!(ended.status, InvocationStatus::TimedOut, "{ended:?}");
    assert_eq!(ended.error.map(|e| e.code).as_deref(), Some("input_timeout"));

    let too_long = InvokeRequest { input_timeout_s: Some(u32::MAX), ..InvokeRequest::default() };
    let err = tenant.client.invoke("asker", &too_long, &InvokeOptions::default()).await.expect_err("over the cap");
    assert_eq!((err.status(), err.code()), (Some(422), Some("invalid_input_timeout")));
}

on_both_stores!(a_failure_after_an_answer_is_retried_with_the_answers_kept);
async fn a_failure_after_an_answer_is_retried_with_the_answers_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("retry").await;
    // Attempt 1 asks; attempt 2 (the resume) fails once; attempt 3 ends. Resumes do not
    // count against max_attempts, so the one failure is retried.
    let code = r#"import sys
from agentd import run

def handle(ctx):
    name = ctx.ask("name?")
    if ctx.attempt == 2:
        sys.exit(3)
    return {"name": name, "attempt": ctx.attempt}

run(handle)
"#;
    deploy(&app, &tenant, "flaky", "python", "main.py", code).await;
    let request = InvokeRequest { max_attempts: Some(2), ..InvokeRequest::default() };
    let waiting = start(&tenant, "flaky", request).await;
    assert_eq!(waiting.status, InvocationStatus::WaitingForInput);
    let resumed = tenant.client.respond(waiting.id.as_str(), json!("Ada"), None).await.unwrap();
    let done = poll_invocation(&tenant, resumed.id.as_str(), Duration::from_secs(60), |i| i.status.is_terminal()).await;
    assert_eq!(done.status, InvocationStatus::Succeeded, "{done:?}");
    assert_eq!(done.output, Some(json!({"name": "Ada", "attempt": 3})));
}

on_both_stores!(the_cli_answers_a_question_and_shows_the_next_one);
async fn the_cli_answers_a_question_and_shows_the_next_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = crate::cli::Shell::new(&app.base_url);
    shell.signup().await;
    let dir = tempfile::tempdir().unwrap();
    write_agent(dir.path(), "cli-asker", "python", "main.py", PYTHON_TWO_QUESTIONS);
    shell.ok(&["agents", "deploy", dir.path().to_str().unwrap()]).await;
    let started = shell.run(&["invoke", "cli-asker", "--wait", "--json"]).await;
    assert_eq!(started.code, Some(1), "waiting is not success: {started:#?}");
    let id =
        serde_json::from_str::<serde_json::Value>(&started.stdout).expect("JSON")["id"].as_str().unwrap().to_owned();
    let next = shell.run(&["respond", &id, "--answer", "\"Ada\"", "--wait"]).await;
    assert_eq!(next.code, Some(1), "{next:#?}");
    assert!(next.stdout.contains("favourite colour, Ada?"), "the next question is shown: {next:#?}");
    assert!(next.stderr.contains(&format!("agentd respond {id}")), "{next:#?}");
    let done = shell.ok(&["respond", &id, "--answer", "\"green\"", "--wait"]).await;
    assert!(done.stdout.contains("\"color\": \"green\""), "{done:#?}");
    let bad = shell.run(&["respond", &id, "--answer", "not json"]).await;
    assert_eq!(bad.code, Some(2), "{bad:#?}");
    assert!(bad.stderr.contains("--answer is not valid JSON"), "{bad:#?}");
}

/// A terminal session in a private tmux server, driven like a person at the keyboard.
pub(crate) struct Terminal {
    socket: String,
}

impl Terminal {
    /// Starts `command` in a new 200-column terminal; `None` (after a note) when tmux is
    /// missing and this is not CI.
    pub(crate) fn start(command: &str) -> Option<Terminal> {
        let socket = format!("agentd-test-{}-{}", std::process::id(), uuid_like());
        let started = std::process::Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-x", "200", "-y", "50", "sh", "-c"])
            .arg(format!("{command}; echo EXIT=$?; sleep 60"))
            .status();
        match started {
            Ok(status) if status.success() => Some(Terminal { socket }),
            _ if std::env::var_os("CI").is_some() => panic!("tmux is needed for the terminal test and CI is set"),
            _ => {
                eprintln!("skipping the terminal test: tmux cannot start here");
                None
            }
        }
    }

    pub(crate) fn screen(&self) -> String {
        let out = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-J", "-S", "-200"])
            .output()
            .expect("capture the pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text` `times` times (at most 60 s).
    pub(crate) async fn wait_for(&self, text: &str, times: usize) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= times {
                return screen;
            }
            assert!(tokio::time::Instant::now() < deadline, "the terminal never showed {text:?}:\n{screen}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn type_line(&self, line: &str) {
        let status = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "0", "-l", line])
            .status()
            .expect("type");
        assert!(status.success());
        let status =
            std::process::Command::new("tmux").args(["-L", &self.socket, "send-keys", "-t", "0", "Enter"]).status();
        assert!(status.is_ok_and(|s| s.success()));
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos())
}

on_both_stores!(invoke_follow_in_a_terminal_asks_the_person_and_ends_with_the_answers);
async fn invoke_follow_in_a_terminal_asks_the_person_and_ends_with_the_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shell = crate::cli::Shell::new(&app.base_url);
    shell.signup().await;
    let dir = tempfile::tempdir().unwrap();
    write_agent(dir.path(), "tty-asker", "python", "main.py", PYTHON_TWO_QUESTIONS);
    shell.ok(&["agents", "deploy", dir.path().to_str().unwrap()]).await;
    let Some(terminal) = Terminal::start(&shell.command_line(&["invoke", "tty-asker", "--follow"])) else { return };
    terminal.wait_for("answer> ", 1).await;
    assert!(terminal.screen().contains("The agent asks: {\"question\":\"name?\"}"), "{}", terminal.screen());
    // JSON is sent as JSON, anything else as text.
    terminal.type_line("\"Ada\"");
    let screen = terminal.wait_for("answer> ", 2).await;
    assert!(screen.contains("favourite colour, Ada?"), "{screen}");
    terminal.type_line("green");
    let screen = terminal.wait_for("EXIT=", 1).await;
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(screen.contains("\"color\": \"green\""), "the output is printed at the end: {screen}");
}
