//! `agentd logs INV [--follow]` and `agentd cancel INV`. Logs are read page by page with
//! `?after=SEQ`; following re-polls until the invocation is terminal, then reads once
//! more so that no event written before the end is missed.

use std::time::Duration;

use agentd_api_types::{Event, Invocation};
use agentd_client::Client;
use clap::Args;

use super::output::{Failure, print_json};
use super::session::Connection;

/// Pause between polls while following a live invocation.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

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
        follow_events(&session.client, &args.id, session.json).await?;
    } else {
        print_events_after(&session.client, &args.id, None, session.json).await?;
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

/// Prints events as they arrive until the invocation is terminal; returns its final state.
pub async fn follow_events(client: &Client, id: &str, json: bool) -> Result<Invocation, Failure> {
    let mut after = None;
    loop {
        // Read the status first: once it is terminal, the drain below sees every event.
        let invocation = client.invocation_get(id).await?;
        after = print_events_after(client, id, after, json).await?;
        if invocation.status.is_terminal() {
            return Ok(invocation);
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
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
    println!("{} {} {} {}", event.seq, event.ts, event.stream, text);
    Ok(())
}
