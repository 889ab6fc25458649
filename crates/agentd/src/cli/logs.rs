//! `agentd logs INV [--follow]` and `agentd cancel INV`. Logs are read page by page with
//! `?after=SEQ`; following reads the live event stream (SSE), which reconnects after a
//! network drop with `Last-Event-ID`, until the invocation ends.

use std::io::IsTerminal;

use agentd_api_types::{Event, EventKind, Invocation, InvocationStatus};
use agentd_client::{Client, Followed};
use clap::Args;
use serde_json::Value;

use super::output::{Failure, colour_stdout, print_json};
use super::session::Connection;

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    conn: Connection,
    /// Invocation id
    id: String,
    /// Keep printing new events until the invocation ends
    #[arg(long, short)]
    follow: bool,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    #[command(flatten)]
    conn: Connection,
    /// Invocation id
    id: String,
}

pub async fn logs(args: LogsArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    if args.follow {
        follow_events(&session.client, &args.id, session.json, OnQuestion::KeepFollowing).await?;
    } else if print_events_after(&session.client, &args.id, None, session.json).await?.is_none() {
        // No events: say why, rather than print nothing.
        let invocation = session.client.invocation_get(&args.id).await?;
        if matches!(invocation.status, InvocationStatus::Queued | InvocationStatus::Retrying) {
            eprintln!(
                "Invocation {} is {} (created {}): it has not started, so it has no logs yet. \
                 Follow it with `agentd logs {} --follow`.",
                invocation.id, invocation.status, invocation.created_at, invocation.id
            );
        }
    }
    Ok(())
}

pub async fn cancel(args: CancelArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    let invocation = session.client.invocation_cancel(&args.id).await?;
    if session.json {
        return print_json(&invocation);
    }
    println!("{} {}", invocation.id, invocation.status);
    Ok(())
}

/// What following does when the agent asks a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnQuestion {
    /// Go on following: someone else may answer.
    KeepFollowing,
    /// Stop there and return the waiting invocation.
    Stop,
    /// Show the question on the terminal, read the answer and send it.
    Prompt,
}

impl OnQuestion {
    /// `Prompt` when a person sits at a terminal, else `Stop`.
    pub fn for_terminal(json: bool) -> OnQuestion {
        let interactive = !json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if interactive { OnQuestion::Prompt } else { OnQuestion::Stop }
    }
}

/// Prints events as they arrive until the invocation ends (or asks, per `on_question`);
/// returns its state then.
pub async fn follow_events(
    client: &Client,
    id: &str,
    json: bool,
    on_question: OnQuestion,
) -> Result<Invocation, Failure> {
    let mut follower = client.follow(id, None);
    let mut question = Value::Null;
    while let Some(Followed::Event(event)) = follower.next().await? {
        print_event(&event, json)?;
        if event.kind == EventKind::Interrupt {
            question = event.data.clone().unwrap_or(Value::Null);
        }
        let waiting = event.kind == EventKind::Status
            && event.data.as_ref().and_then(|d| d.get("status")).and_then(Value::as_str) == Some("waiting_for_input");
        if !waiting {
            continue;
        }
        match on_question {
            OnQuestion::KeepFollowing => {}
            OnQuestion::Stop => break,
            OnQuestion::Prompt => {
                let answer = prompt(id, &question).await?;
                client.respond(id, answer, None).await?;
            }
        }
    }
    Ok(client.invocation_get(id).await?)
}

/// Asks the person at the terminal; the answer is read as JSON, or else as text.
async fn prompt(id: &str, question: &Value) -> Result<Value, Failure> {
    let shown = match question {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Option<String>> {
        use std::io::Write;
        let mut err = std::io::stderr();
        writeln!(err, "The agent asks: {shown}")?;
        loop {
            write!(err, "answer> ")?;
            err.flush()?;
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line)? == 0 {
                return Ok(None);
            }
            if !line.trim().is_empty() {
                return Ok(Some(line.trim().to_owned()));
            }
        }
    });
    let line = read
        .await
        .map_err(|e| Failure::local(format!("reading the answer stopped: {e}")))?
        .map_err(|e| Failure::local(format!("cannot read the answer: {e}")))?
        .ok_or_else(|| {
            Failure::local(format!("no answer given; the invocation waits: `agentd respond {id} --answer JSON`"))
        })?;
    Ok(serde_json::from_str(&line).unwrap_or(Value::String(line)))
}

/// Prints every event with `seq > after`; returns the last `seq` printed (or `after`).
async fn print_events_after(
    client: &Client,
    id: &str,
    mut after: Option<u64>,
    json: bool,
) -> Result<Option<u64>, Failure> {
    loop {
        let page = client.invocation_logs(id, after, None).await?;
        for event in &page.data {
            print_event(event, json)?;
            after = Some(event.seq);
        }
        if page.next_cursor.is_none() || page.data.is_empty() {
            return Ok(after);
        }
    }
}

/// One event: a JSON line with `--json`, else `seq ts stream message`.
fn print_event(event: &Event, json: bool) -> Result<(), Failure> {
    if json {
        let line = serde_json::to_string(event).map_err(|e| Failure::local(format!("cannot encode JSON: {e}")))?;
        println!("{line}");
        return Ok(());
    }
    let text = match (&event.message, &event.data) {
        (Some(message), _) => message.clone(),
        (None, Some(data)) => format!("[{}] {data}", event.kind),
        (None, None) => format!("[{}]", event.kind),
    };
    if colour_stdout() {
        // The stream in colour: stderr stands out, the platform's own lines recede.
        let stream = console::style(event.stream.to_string()).force_styling(true);
        let stream = match event.stream.to_string().as_str() {
            "stderr" => stream.red(),
            "system" => stream.dim(),
            "agent" => stream.cyan(),
            _ => stream,
        };
        println!("{} {} {stream} {text}", console::style(event.seq).dim().force_styling(true), event.ts);
    } else {
        println!("{} {} {} {}", event.seq, event.ts, event.stream, text);
    }
    Ok(())
}
