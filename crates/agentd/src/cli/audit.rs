//! `agentd audit [--action A] [--actor ID] [--resource-type T] [--resource-id ID]
//! [--from T] [--to T]`: the workspace's audit log, newest first (owners and admins).

use agentd_api_types::AuditEvent;
use agentd_client::AuditFilter;
use clap::Args;

use super::agents::PageArgs;
use super::output::{Failure, next_page_hint, print_json, print_table};
use super::session::Connection;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    conn: Connection,
    /// Only this action, e.g. `agent.create`
    #[arg(long)]
    action: Option<String>,
    /// Only what this actor did (`usr_…`, `key_…`, `inv_…`, `opt_…`, `database`)
    #[arg(long)]
    actor: Option<String>,
    /// Only this kind of resource, e.g. `agent`
    #[arg(long)]
    resource_type: Option<String>,
    /// Only this resource
    #[arg(long)]
    resource_id: Option<String>,
    /// Only events at or after this instant (RFC 3339)
    #[arg(long)]
    from: Option<String>,
    /// Only events at or before this instant (RFC 3339)
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

pub async fn run(args: AuditArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    let filter = AuditFilter {
        action: args.action,
        actor: args.actor,
        resource_type: args.resource_type,
        resource_id: args.resource_id,
        from: args.from,
        to: args.to,
        limit: args.page.limit,
        cursor: args.page.cursor,
    };
    let events = session.client.audit_list(&filter).await?;
    if session.json {
        return print_json(&events);
    }
    let rows: Vec<Vec<String>> = events.data.iter().map(event_row).collect();
    print_table(&["WHEN", "ACTOR", "ACTION", "RESOURCE", "CLIENT IP", "REQUEST"], &rows);
    next_page_hint(events.next_cursor.as_deref());
    Ok(())
}

fn event_row(event: &AuditEvent) -> Vec<String> {
    vec![
        event.occurred_at.to_string(),
        format!("{}:{}", event.actor.kind.as_str(), event.actor.id),
        event.action.as_str().to_owned(),
        format!("{}:{}", event.resource_type, event.resource_id),
        event.client_ip.clone().unwrap_or_else(|| "-".to_owned()),
        event.request_id.clone().unwrap_or_else(|| "-".to_owned()),
    ]
}
