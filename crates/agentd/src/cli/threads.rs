//! `agentd threads list | show ID | history ID | create`: conversations with an agent.
//! A thread is continued with `agentd invoke SLUG --thread ID`.

use agentd_api_types::{CreateThreadRequest, Thread, ThreadStatus};
use agentd_client::ThreadFilter;
use clap::{Args, Subcommand};

use super::agents::PageArgs;
use super::output::{Failure, next_page_hint, or_dash, print_json, print_table};
use super::session::{Connection, Session};

#[derive(Debug, Args)]
pub struct ThreadsArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: ThreadsCommand,
}

#[derive(Debug, Subcommand)]
enum ThreadsCommand {
    /// List the workspace's threads, newest first
    List {
        /// Only this agent's threads
        #[arg(long)]
        agent: Option<String>,
        /// Only threads that are idle, busy or interrupted
        #[arg(long, value_parser = parse_status)]
        status: Option<ThreadStatus>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a thread and its current state
    Show {
        /// Thread id (`thr_…`)
        id: String,
    },
    /// Show a thread's checkpoints, newest first
    History {
        /// Thread id (`thr_…`)
        id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Start a thread (`agentd invoke SLUG --thread ID` continues it)
    Create {
        /// The agent whose conversation it holds [default: the first agent invoked on it]
        #[arg(long)]
        agent: Option<String>,
    },
}

fn parse_status(value: &str) -> Result<ThreadStatus, String> {
    ThreadStatus::parse(value).map_err(|e| e.to_string())
}

pub async fn run(args: ThreadsArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    match args.command {
        ThreadsCommand::List { agent, status, page } => {
            let filter =
                ThreadFilter { agent, status, limit: page.limit, cursor: page.cursor, ..ThreadFilter::default() };
            list(&session, &filter).await
        }
        ThreadsCommand::Show { id } => show(&session, &id).await,
        ThreadsCommand::History { id, page } => history(&session, &id, &page).await,
        ThreadsCommand::Create { agent } => create(&session, agent).await,
    }
}

fn thread_row(thread: &Thread) -> Vec<String> {
    vec![
        thread.id.to_string(),
        or_dash(thread.agent.as_ref()),
        thread.status.to_string(),
        thread.created_at.to_string(),
        thread.updated_at.to_string(),
    ]
}

const THREAD_HEADER: [&str; 5] = ["ID", "AGENT", "STATUS", "CREATED", "UPDATED"];

async fn list(session: &Session, filter: &ThreadFilter) -> Result<(), Failure> {
    let threads = session.client.threads_list(filter).await?;
    if session.json {
        return print_json(&threads);
    }
    let rows: Vec<Vec<String>> = threads.data.iter().map(thread_row).collect();
    print_table(&THREAD_HEADER, &rows);
    next_page_hint(threads.next_cursor.as_deref());
    Ok(())
}

async fn show(session: &Session, id: &str) -> Result<(), Failure> {
    let thread = session.client.thread_get(id).await?;
    let state = session.client.thread_state(id).await?;
    if session.json {
        return print_json(&serde_json::json!({"thread": thread, "state": state}));
    }
    print_table(&THREAD_HEADER, &[thread_row(&thread)]);
    println!("metadata: {}", thread.metadata);
    match &state.checkpoint {
        Some(checkpoint) => println!(
            "state (checkpoint {}, {}, {}):",
            checkpoint.seq,
            checkpoint.invocation_id.as_ref().map_or_else(|| "set by hand".to_owned(), |i| format!("by {i}")),
            checkpoint.created_at
        ),
        None => println!("state: none yet"),
    }
    if state.checkpoint.is_some() {
        println!("{}", serde_json::to_string_pretty(&state.state).unwrap_or_else(|_| state.state.to_string()));
    }
    Ok(())
}

async fn history(session: &Session, id: &str, page: &PageArgs) -> Result<(), Failure> {
    let checkpoints = session.client.thread_history(id, page.limit, page.cursor.as_deref()).await?;
    if session.json {
        return print_json(&checkpoints);
    }
    let rows: Vec<Vec<String>> = checkpoints
        .data
        .iter()
        .map(|c| {
            vec![
                c.seq.to_string(),
                c.created_at.to_string(),
                c.invocation_id.as_ref().map_or_else(|| "(set by hand)".to_owned(), ToString::to_string),
                super::output::one_line(&c.state.to_string(), 80),
            ]
        })
        .collect();
    print_table(&["SEQ", "CREATED", "BY", "STATE"], &rows);
    next_page_hint(checkpoints.next_cursor.as_deref());
    Ok(())
}

async fn create(session: &Session, agent: Option<String>) -> Result<(), Failure> {
    let thread = session.client.thread_create(&CreateThreadRequest { agent, metadata: None }).await?;
    if session.json {
        return print_json(&thread);
    }
    println!("{}", thread.id);
    eprintln!("Continue it with `agentd invoke SLUG --thread {}`.", thread.id);
    Ok(())
}
