//! `agentd invocations list | show`, `agentd limits` and `agentd usage`: what the
//! workspace ran, what it may use and what it used.

use agentd_api_types::{Invocation, InvocationStatus};
use agentd_client::InvocationFilter;
use clap::{Args, Subcommand};

use super::output::{Failure, colour_stdout, next_page_hint, or_dash, print_json, print_table, status_word};
use super::session::{Connection, Session};

#[derive(Debug, Args)]
pub struct InvocationsArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: InvocationsCommand,
}

#[derive(Debug, Subcommand)]
enum InvocationsCommand {
    /// List invocations, newest first
    List(ListArgs),
    /// Show one invocation: status, attempts, timings, output or error
    Show { id: String },
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only this agent's (slug)
    #[arg(long)]
    agent: Option<String>,
    /// Only those with this status (queued, running, succeeded, failed, …)
    #[arg(long, value_parser = parse_status)]
    status: Option<InvocationStatus>,
    /// Only the runs of this thread (`thr_…`)
    #[arg(long)]
    thread: Option<String>,
    /// Only the sub-invocations of this invocation (`inv_…`)
    #[arg(long)]
    parent: Option<String>,
    /// Most items to fetch
    #[arg(long)]
    limit: Option<u32>,
    /// Continue after a previous page
    #[arg(long)]
    cursor: Option<String>,
}

fn parse_status(value: &str) -> Result<InvocationStatus, String> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|_| format!("`{value}` is not a status (queued, running, succeeded, failed, cancelled, timed_out, waiting_for_input, retrying)"))
}

pub async fn invocations(args: InvocationsArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    match args.command {
        InvocationsCommand::List(list) => {
            let filter = InvocationFilter {
                agent: list.agent,
                status: list.status,
                parent_id: list.parent,
                thread_id: list.thread,
                limit: list.limit,
                cursor: list.cursor,
            };
            let page = session.client.invocations_list(&filter).await?;
            if session.json {
                return print_json(&page);
            }
            let colour = colour_stdout();
            let rows: Vec<Vec<String>> = page
                .data
                .iter()
                .map(|i| {
                    vec![
                        i.id.to_string(),
                        i.agent.to_string(),
                        status_word(i.status, colour),
                        i.attempt.to_string(),
                        i.created_at.to_string(),
                        or_dash(i.finished_at),
                    ]
                })
                .collect();
            print_table(&["ID", "AGENT", "STATUS", "ATTEMPT", "CREATED", "FINISHED"], &rows);
            next_page_hint(page.next_cursor.as_deref());
            Ok(())
        }
        InvocationsCommand::Show { id } => show(&session, &id).await,
    }
}

async fn show(session: &Session, id: &str) -> Result<(), Failure> {
    let invocation: Invocation = session.client.invocation_get(id).await?;
    if session.json {
        return print_json(&invocation);
    }
    let i = &invocation;
    println!("id:        {}", i.id);
    println!("agent:     {} (version {})", i.agent, i.version);
    println!("status:    {}", status_word(i.status, colour_stdout()));
    println!("attempt:   {} of {}", i.attempt, i.max_attempts);
    if let Some(thread) = &i.thread_id {
        println!("thread:    {thread}");
    }
    println!("created:   {}", i.created_at);
    println!("started:   {}", or_dash(i.started_at));
    println!("finished:  {}", or_dash(i.finished_at));
    if let Some(error) = &i.error {
        println!("error:     {} ({})", error.message, error.code);
    }
    if let Some(output) = &i.output {
        println!("output:    {output}");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct LimitsArgs {
    #[command(flatten)]
    conn: Connection,
}

/// `agentd limits`: each limit, where its value comes from, and how much is in use.
pub async fn limits(args: LimitsArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    let report = session.client.limits().await?;
    if session.json {
        return print_json(&report);
    }
    let rows: Vec<Vec<String>> = report
        .limits
        .iter()
        .map(|(name, entry)| vec![name.clone(), entry.value.to_string(), entry.source.clone(), or_dash(entry.used)])
        .collect();
    print_table(&["LIMIT", "VALUE", "SOURCE", "USED"], &rows);
    Ok(())
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    #[command(flatten)]
    conn: Connection,
    /// First day (YYYY-MM-DD, UTC) [default: the server's, 30 days back]
    #[arg(long)]
    from: Option<String>,
    /// Last day (YYYY-MM-DD, UTC) [default: today]
    #[arg(long)]
    to: Option<String>,
    /// Only this agent's (slug)
    #[arg(long)]
    agent: Option<String>,
}

/// `agentd usage`: what finished runs consumed, per day and agent, with the totals.
pub async fn usage(args: UsageArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    let report = session.client.usage(args.from.as_deref(), args.to.as_deref(), args.agent.as_deref()).await?;
    if session.json {
        return print_json(&report);
    }
    let rows: Vec<Vec<String>> = report
        .data
        .iter()
        .map(|d| {
            let f = &d.figures;
            vec![
                d.day.to_string(),
                d.agent.to_string(),
                f.invocations.to_string(),
                f.succeeded.to_string(),
                f.failed.to_string(),
                format!("{:.1}", f.cpu_ms as f64 / 1000.0),
                format!("{:.1}", f.wall_ms as f64 / 1000.0),
            ]
        })
        .collect();
    print_table(&["DAY", "AGENT", "RUNS", "SUCCEEDED", "FAILED", "CPU S", "WALL S"], &rows);
    let t = &report.totals;
    println!(
        "{} to {}: {} runs, {} succeeded, {} failed, {:.1} CPU s",
        report.from,
        report.to,
        t.invocations,
        t.succeeded,
        t.failed,
        t.cpu_ms as f64 / 1000.0
    );
    Ok(())
}
