//! `agentd schedules create | list | show | pause | resume | delete | trigger`: cron
//! schedules that invoke an agent.

use agentd_api_types::{CreateScheduleRequest, Schedule};
use clap::{Args, Subcommand};

use super::agents::PageArgs;
use super::output::{Failure, next_page_hint, or_dash, print_json, print_table};
use super::session::{Connection, Session};

#[derive(Debug, Args)]
pub struct SchedulesArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: SchedulesCommand,
}

#[derive(Debug, Subcommand)]
enum SchedulesCommand {
    /// Create a schedule that invokes an agent at each time a cron pattern names
    Create {
        /// Agent slug
        agent: String,
        /// Five fields (`minute hour day-of-month month day-of-week`) or six with seconds first
        #[arg(long)]
        cron: String,
        /// IANA time zone the cron's times are read in
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Input of every run as JSON, `@FILE` or `@-` (stdin) [default: {}]
        #[arg(long, value_name = "JSON|@FILE")]
        input: Option<String>,
        /// While the previous run goes on: `skip` the occurrence or `allow` it [default: skip]
        #[arg(long)]
        overlap: Option<String>,
        /// Occurrences missed while the platform was down: `latest`, `skip` or `all` [default: latest]
        #[arg(long)]
        catchup: Option<String>,
        /// Create it paused
        #[arg(long)]
        paused: bool,
    },
    /// List the workspace's schedules, newest first
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a schedule
    Show {
        /// Schedule id (`sch_…`)
        id: String,
    },
    /// Pause a schedule: it runs no more occurrences until resumed
    Pause {
        /// Schedule id (`sch_…`)
        id: String,
    },
    /// Resume a paused schedule from its next occurrence after now
    Resume {
        /// Schedule id (`sch_…`)
        id: String,
    },
    /// Delete a schedule (the invocations it made stay)
    Delete {
        /// Schedule id (`sch_…`)
        id: String,
    },
    /// Run a schedule now, and print the invocation it made
    Trigger {
        /// Schedule id (`sch_…`)
        id: String,
    },
}

pub async fn run(args: SchedulesArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    match args.command {
        SchedulesCommand::Create { agent, cron, timezone, input, overlap, catchup, paused } => {
            let request = CreateScheduleRequest {
                agent,
                cron,
                timezone,
                input: super::invoke::read_input(input.as_deref(), "--input").await?,
                enabled: Some(!paused),
                overlap,
                catchup,
                metadata: None,
            };
            let schedule = session.client.schedule_create(&request).await?;
            show_one(&session, &schedule)
        }
        SchedulesCommand::List { page } => list(&session, &page).await,
        SchedulesCommand::Show { id } => show_one(&session, &session.client.schedule_get(&id).await?),
        SchedulesCommand::Pause { id } => show_one(&session, &session.client.schedule_set_enabled(&id, false).await?),
        SchedulesCommand::Resume { id } => show_one(&session, &session.client.schedule_set_enabled(&id, true).await?),
        SchedulesCommand::Delete { id } => {
            session.client.schedule_delete(&id).await?;
            if session.json {
                return print_json(&serde_json::json!({"deleted": id}));
            }
            eprintln!("Deleted schedule {id}.");
            Ok(())
        }
        SchedulesCommand::Trigger { id } => {
            let invocation = session.client.schedule_trigger(&id).await?;
            if session.json {
                return print_json(&invocation);
            }
            println!("{}", invocation.id);
            eprintln!("Follow it with `agentd logs {} --follow`.", invocation.id);
            Ok(())
        }
    }
}

const HEADER: [&str; 8] = ["ID", "AGENT", "CRON", "TIMEZONE", "ENABLED", "NEXT RUN", "LAST RUN", "LAST ERROR"];

fn row(schedule: &Schedule) -> Vec<String> {
    vec![
        schedule.id.to_string(),
        schedule.agent.to_string(),
        schedule.cron.clone(),
        schedule.timezone.clone(),
        schedule.enabled.to_string(),
        or_dash(schedule.next_run_at),
        or_dash(schedule.last_run_at),
        or_dash(schedule.last_error.as_deref().map(|e| super::output::one_line(e, 60))),
    ]
}

fn show_one(session: &Session, schedule: &Schedule) -> Result<(), Failure> {
    if session.json {
        return print_json(schedule);
    }
    print_table(&HEADER, &[row(schedule)]);
    Ok(())
}

async fn list(session: &Session, page: &PageArgs) -> Result<(), Failure> {
    let schedules = session.client.schedules_list(page.limit, page.cursor.as_deref()).await?;
    if session.json {
        return print_json(&schedules);
    }
    let rows: Vec<Vec<String>> = schedules.data.iter().map(row).collect();
    print_table(&HEADER, &rows);
    next_page_hint(schedules.next_cursor.as_deref());
    Ok(())
}
