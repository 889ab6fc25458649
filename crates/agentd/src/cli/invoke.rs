//! `agentd invoke SLUG`: queue a run and, with `--wait` or `--follow`, see it through to
//! the end. The exit code then reflects the run: 0 succeeded, 1 anything else.

use std::path::Path;
use std::time::Duration;

use agentd_api_types::{Invocation, InvocationStatus, InvokeRequest};
use agentd_client::{Client, InvokeOptions};
use clap::Args;
use serde_json::Value;

use super::logs::{OnQuestion, follow_events};
use super::output::{Failure, colour_stderr, print_json, spinner, status_word};
use super::session::Connection;

/// How long the server may hold each `invoke` answer (its cap, DESIGN §4).
const SERVER_WAIT_S: u32 = 60;
/// Re-poll intervals while waiting: start quick for short runs, back off for long ones.
const FIRST_POLL: Duration = Duration::from_millis(200);
const MAX_POLL: Duration = Duration::from_secs(2);
/// How long a run may sit queued before `--wait` says so (nothing may be taking it).
const QUEUED_NOTICE: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct InvokeArgs {
    #[command(flatten)]
    conn: Connection,
    /// Agent slug
    slug: String,
    /// Input as JSON, `@FILE` to read it from a file, or `@-` from stdin [default: {}]
    #[arg(long, value_name = "JSON|@FILE")]
    input: Option<String>,
    /// Wait for the run to end and print its output
    #[arg(long, conflicts_with = "follow")]
    wait: bool,
    /// Print the run's events as they come, until it ends; at a terminal, answer its questions
    #[arg(long)]
    follow: bool,
    /// Kill the run after this many seconds (capped by the agent's and tenant's limits)
    #[arg(long)]
    timeout_s: Option<u32>,
    /// Repeat-safe key: a second invoke with the same key returns the first invocation
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Continue this thread (`agentd threads create` starts one)
    #[arg(long, value_name = "ID")]
    thread: Option<String>,
    /// On a thread with a run going: reject, enqueue (the default), interrupt or rollback
    #[arg(long, requires = "thread", value_name = "STRATEGY")]
    multitask_strategy: Option<String>,
    /// Queue priority, 0 to 9 (higher runs first)
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
    priority: Option<u8>,
    /// Set an environment variable the agent's manifest lists in `overridable_env`
    /// (repeatable)
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env_pair)]
    env: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct RespondArgs {
    #[command(flatten)]
    conn: Connection,
    /// Invocation id
    id: String,
    /// The answer as JSON, `@FILE` to read it from a file, or `@-` from stdin
    #[arg(long, value_name = "JSON|@FILE")]
    answer: String,
    /// Wait for the run to end (or ask again) and print its output
    #[arg(long)]
    wait: bool,
}

/// `agentd respond`: answers the open question; with `--wait`, ends like `invoke --wait`,
/// naming the next question when the agent asks another.
pub async fn respond(args: RespondArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    let answer = read_input(Some(&args.answer), "--answer").await?;
    let wait_s = args.wait.then_some(SERVER_WAIT_S);
    let invocation = session.client.respond(&args.id, answer, wait_s).await?;
    if !args.wait {
        if session.json {
            return print_json(&invocation);
        }
        println!("{} {}", invocation.id, invocation.status);
        return Ok(());
    }
    let finished = wait_for_end(&session.client, invocation).await?;
    if finished.status == InvocationStatus::WaitingForInput && !session.json {
        let asked = session.client.interrupts(finished.id.as_str()).await?;
        if let Some(open) = asked.data.iter().rev().find(|i| i.answer.is_none()) {
            println!("{}", open.value);
        }
    }
    let print = if session.json { Print::Invocation } else { Print::Output };
    report_end(&finished, print)
}

/// `NAME=VALUE` (the value may contain `=`); the server checks the name.
fn parse_env_pair(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("`{raw}` is not NAME=VALUE")),
    }
}

pub async fn run(args: InvokeArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    let request = InvokeRequest {
        input: read_input(args.input.as_deref(), "--input").await?,
        thread_id: args.thread,
        multitask_strategy: args.multitask_strategy,
        priority: args.priority,
        timeout_s: args.timeout_s,
        env: (!args.env.is_empty()).then(|| args.env.into_iter().collect()),
        ..InvokeRequest::default()
    };
    let options = InvokeOptions { wait_s: args.wait.then_some(SERVER_WAIT_S), idempotency_key: args.idempotency_key };
    let invocation = session.client.invoke(&args.slug, &request, &options).await?;

    let finished = if args.wait {
        wait_for_end(&session.client, invocation).await?
    } else if args.follow {
        eprintln!("Invocation {} {}.", invocation.id, invocation.status);
        follow_events(&session.client, invocation.id.as_str(), session.json, OnQuestion::for_terminal(session.json))
            .await?
    } else {
        if session.json {
            return print_json(&invocation);
        }
        println!("{} {}", invocation.id, invocation.status);
        eprintln!("Follow it with `agentd logs {} --follow`.", invocation.id);
        return Ok(());
    };
    let print = match (args.wait, session.json) {
        (true, true) => Print::Invocation,
        // With `--follow --json` stdout is JSON Lines of events; the output was one of them.
        (false, true) => Print::Nothing,
        (_, false) => Print::Output,
    };
    report_end(&finished, print)
}

/// What to print on stdout once a run has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Print {
    Invocation,
    Output,
    Nothing,
}

/// A JSON document given as `flag`: inline, `@FILE`, `@-` (stdin), or `{}` when absent.
pub(super) async fn read_input(input: Option<&str>, flag: &str) -> Result<Value, Failure> {
    let (text, source) = match input {
        None => return Ok(Value::Object(Default::default())),
        Some("@-") => {
            let text = tokio::task::spawn_blocking(|| std::io::read_to_string(std::io::stdin()))
                .await
                .map_err(|e| Failure::local(format!("reading stdin stopped: {e}")))?
                .map_err(|e| Failure::local(format!("cannot read the input from stdin: {e}")))?;
            (text, "stdin".to_owned())
        }
        Some(arg) => match arg.strip_prefix('@') {
            Some(file) => {
                let text = tokio::fs::read_to_string(Path::new(file))
                    .await
                    .map_err(|e| Failure::Usage(format!("cannot read the input file {file}: {e}")))?;
                (text, file.to_owned())
            }
            None => (arg.to_owned(), flag.to_owned()),
        },
    };
    serde_json::from_str(&text).map_err(|e| Failure::Usage(format!("{source} is not valid JSON: {e}")))
}

/// Polls the invocation until it is terminal or paused on a question.
async fn wait_for_end(client: &Client, mut invocation: Invocation) -> Result<Invocation, Failure> {
    let spinner = spinner(format!("waiting for {}", invocation.id));
    let mut interval = FIRST_POLL;
    let started = tokio::time::Instant::now();
    let mut told_queued = false;
    while !stops_waiting(invocation.status) {
        spinner.set_message(format!("waiting for {} ({})", invocation.id, invocation.status));
        if !told_queued && invocation.status == InvocationStatus::Queued && started.elapsed() >= QUEUED_NOTICE {
            told_queued = true;
            spinner.suspend(|| {
                eprintln!(
                    "Invocation {} is still queued after {} s: no worker has taken it yet \
                     (is a worker running, or is the workspace at its concurrency limit?).",
                    invocation.id,
                    QUEUED_NOTICE.as_secs()
                )
            });
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(MAX_POLL);
        match client.invocation_get(invocation.id.as_str()).await {
            Ok(latest) => invocation = latest,
            Err(e) => {
                spinner.finish_and_clear();
                return Err(e.into());
            }
        }
    }
    spinner.finish_and_clear();
    Ok(invocation)
}

/// A paused invocation will not end on its own: waiting stops there too.
fn stops_waiting(status: InvocationStatus) -> bool {
    status.is_terminal() || status == InvocationStatus::WaitingForInput
}

/// Prints the end of a run; any end but `succeeded` is a failure (exit 1).
fn report_end(invocation: &Invocation, print: Print) -> Result<(), Failure> {
    if print == Print::Output {
        // The id is what the next command needs (logs, respond); stdout stays the output.
        eprintln!("Invocation {} {}.", invocation.id, status_word(invocation.status, colour_stderr()));
    }
    match (print, &invocation.output) {
        (Print::Invocation, _) => print_json(invocation)?,
        (Print::Output, Some(output)) => print_json(output)?,
        (Print::Output, None) | (Print::Nothing, _) => {}
    }
    match invocation.status {
        InvocationStatus::Succeeded => Ok(()),
        InvocationStatus::WaitingForInput => Err(Failure::Waiting { id: invocation.id.to_string() }),
        status => Err(Failure::RunEnded { id: invocation.id.to_string(), status, error: invocation.error.clone() }),
    }
}
