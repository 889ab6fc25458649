//! `agentd triggers create SLUG --mode … | list SLUG | delete SLUG ID`: an agent's
//! inbound trigger URLs. A trigger's signing secret is printed once, at creation.

use agentd_api_types::{CreateTriggerRequest, Trigger, TriggerMode};
use clap::{Args, Subcommand};

use super::output::{Failure, or_dash, print_json, print_table};
use super::session::{Connection, Session};

#[derive(Debug, Args)]
pub struct TriggersArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: TriggersCommand,
}

#[derive(Debug, Subcommand)]
enum TriggersCommand {
    /// Create a trigger URL for an agent and print its signing secret, once
    Create {
        slug: String,
        /// How senders sign: standard_webhooks or github
        #[arg(long, value_parser = parse_mode)]
        mode: TriggerMode,
        /// Give the run `{body, headers}` instead of the body alone
        #[arg(long)]
        envelope: bool,
        #[arg(long)]
        description: Option<String>,
    },
    /// List an agent's triggers (never their secrets)
    List { slug: String },
    /// Delete a trigger; its URL answers 404 from then on
    Delete {
        slug: String,
        /// Trigger id (`trg_…`)
        id: String,
    },
}

fn parse_mode(value: &str) -> Result<TriggerMode, String> {
    TriggerMode::parse(value).map_err(|e| e.to_string())
}

pub async fn run(args: TriggersArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    match args.command {
        TriggersCommand::Create { slug, mode, envelope, description } => {
            let request = CreateTriggerRequest { mode, envelope: Some(envelope), description };
            create(&session, &slug, &request).await
        }
        TriggersCommand::List { slug } => list(&session, &slug).await,
        TriggersCommand::Delete { slug, id } => {
            session.client.trigger_delete(&slug, &id).await?;
            if !session.json {
                println!("Deleted trigger {id} of {slug}.");
            }
            Ok(())
        }
    }
}

async fn create(session: &Session, slug: &str, request: &CreateTriggerRequest) -> Result<(), Failure> {
    let created = session.client.trigger_create(slug, request).await?;
    if session.json {
        return print_json(&created);
    }
    let trigger = &created.trigger;
    println!("Created trigger {} of {slug} ({}).", trigger.id, trigger.mode);
    println!("url:    {}", trigger.url);
    println!("secret: {}", created.secret);
    println!("The secret is shown only now; store it with the sender.");
    Ok(())
}

async fn list(session: &Session, slug: &str) -> Result<(), Failure> {
    let triggers = session.client.triggers_list(slug).await?;
    if session.json {
        return print_json(&triggers);
    }
    let rows: Vec<Vec<String>> = triggers.data.iter().map(trigger_row).collect();
    print_table(&["ID", "MODE", "ENVELOPE", "URL", "DESCRIPTION", "CREATED"], &rows);
    Ok(())
}

fn trigger_row(trigger: &Trigger) -> Vec<String> {
    vec![
        trigger.id.to_string(),
        trigger.mode.to_string(),
        trigger.envelope.to_string(),
        trigger.url.clone(),
        or_dash(trigger.description.as_deref()),
        trigger.created_at.to_string(),
    ]
}
