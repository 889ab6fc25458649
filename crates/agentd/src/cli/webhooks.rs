//! `agentd webhooks create | list | show | delete | rotate-secret | deliveries | redeliver`:
//! the workspace's outbound webhook endpoints. A signing secret is printed once, when it
//! is made.

use agentd_api_types::{CreateWebhookRequest, CreatedWebhook, WebhookDelivery};
use clap::{Args, Subcommand};

use super::output::{Failure, or_dash, print_json, print_table, word};
use super::session::{Connection, Session};

#[derive(Debug, Args)]
pub struct WebhooksArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: WebhooksCommand,
}

#[derive(Debug, Subcommand)]
enum WebhooksCommand {
    /// Create an endpoint and print its signing secret, once
    Create {
        /// Where deliveries are POSTed
        url: String,
        /// An event to send (invocation.succeeded, invocation.failed, invocation.cancelled,
        /// invocation.timed_out, invocation.waiting_for_input); repeat for several
        #[arg(long = "event", required = true)]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List the endpoints (never their secrets)
    List,
    /// Show one endpoint
    Show { id: String },
    /// Delete an endpoint; its pending deliveries are dropped
    Delete { id: String },
    /// Replace an endpoint's signing secret and print the new one, once
    RotateSecret { id: String },
    /// The newest deliveries to an endpoint, with their attempts
    Deliveries { id: String },
    /// Send a delivery again, with the same webhook-id and body
    Redeliver { id: String, delivery_id: String },
}

pub async fn run(args: WebhooksArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    let client = &session.client;
    match args.command {
        WebhooksCommand::Create { url, events, description } => {
            let request = CreateWebhookRequest { url, events, description, enabled: None };
            created(&session, &client.webhook_create(&request).await?)
        }
        WebhooksCommand::List => {
            let page = client.webhooks_list().await?;
            if session.json {
                return print_json(&page);
            }
            let rows: Vec<Vec<String>> = page
                .data
                .iter()
                .map(|w| {
                    let events: Vec<String> = w.events.iter().map(word).collect();
                    let state = if w.enabled { "enabled".to_owned() } else { "disabled".to_owned() };
                    vec![w.id.to_string(), w.url.clone(), events.join(","), state, w.consecutive_failures.to_string()]
                })
                .collect();
            print_table(&["ID", "URL", "EVENTS", "STATE", "FAILURES"], &rows);
            Ok(())
        }
        WebhooksCommand::Show { id } => print_json(&client.webhook_get(&id).await?),
        WebhooksCommand::Delete { id } => {
            client.webhook_delete(&id).await?;
            if session.json {
                return print_json(&serde_json::json!({"deleted": id}));
            }
            println!("Deleted webhook endpoint {id}.");
            Ok(())
        }
        WebhooksCommand::RotateSecret { id } => created(&session, &client.webhook_rotate_secret(&id).await?),
        WebhooksCommand::Deliveries { id } => {
            let deliveries = client.webhook_deliveries(&id).await?;
            if session.json {
                return print_json(&deliveries);
            }
            let rows: Vec<Vec<String>> = deliveries.data.iter().map(delivery_row).collect();
            print_table(&["ID", "EVENT", "INVOCATION", "STATUS", "ATTEMPTS", "LAST CODE"], &rows);
            Ok(())
        }
        WebhooksCommand::Redeliver { id, delivery_id } => {
            let delivery = client.webhook_redeliver(&id, &delivery_id).await?;
            if session.json {
                return print_json(&delivery);
            }
            println!("Delivery {} queued again.", delivery.id);
            Ok(())
        }
    }
}

fn created(session: &Session, created: &CreatedWebhook) -> Result<(), Failure> {
    if session.json {
        return print_json(created);
    }
    println!("Webhook endpoint {} -> {}", created.endpoint.id, created.endpoint.url);
    println!("secret: {}", created.secret);
    eprintln!("Verify deliveries with this secret (Standard Webhooks); it is not shown again.");
    Ok(())
}

fn delivery_row(d: &WebhookDelivery) -> Vec<String> {
    let last = d.attempts.last().and_then(|a| a.status_code);
    vec![
        d.id.to_string(),
        word(&d.event),
        d.invocation_id.to_string(),
        word(&d.status),
        d.attempts.len().to_string(),
        or_dash(last),
    ]
}
