//! `agentd keys list | create NAME | revoke ID`: the workspace's API keys. A key's secret
//! is printed once, at creation; the server never shows it again.

use agentd_api_types::{ApiKey, CreateApiKeyRequest, Scope};
use clap::{Args, Subcommand};

use super::agents::PageArgs;
use super::output::{Failure, next_page_hint, or_dash, print_json, print_table};
use super::session::{Connection, Session};

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List the workspace's API keys (never their secrets)
    List(PageArgs),
    /// Create a key and print its secret, once
    Create {
        /// What the key is for
        name: String,
        /// Scope to grant (read, invoke, deploy, admin); repeat for several [default: the server's]
        #[arg(long = "scope", value_parser = parse_scope)]
        scopes: Vec<Scope>,
        /// Expire the key after this many days
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke a key; requests with it fail from now on
    Revoke {
        /// Key id (`key_…`)
        id: String,
    },
}

fn parse_scope(value: &str) -> Result<Scope, String> {
    Scope::parse(value).map_err(|e| e.to_string())
}

pub async fn run(args: KeysArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    match args.command {
        KeysCommand::List(page) => list(&session, &page).await,
        KeysCommand::Create { name, scopes, expires_in_days } => {
            let request = CreateApiKeyRequest { name, scopes: (!scopes.is_empty()).then_some(scopes), expires_in_days };
            create(&session, &request).await
        }
        KeysCommand::Revoke { id } => revoke(&session, &id).await,
    }
}

async fn list(session: &Session, page: &PageArgs) -> Result<(), Failure> {
    let keys = session.client.api_keys_list(&page.options()).await?;
    if session.json {
        return print_json(&keys);
    }
    let rows: Vec<Vec<String>> = keys.data.iter().map(key_row).collect();
    print_table(&["ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED", "REVOKED"], &rows);
    next_page_hint(keys.next_cursor.as_deref());
    Ok(())
}

fn key_row(key: &ApiKey) -> Vec<String> {
    vec![
        key.id.to_string(),
        key.name.clone(),
        key.prefix.clone(),
        scopes_text(key),
        key.created_at.to_string(),
        or_dash(key.last_used_at),
        or_dash(key.revoked_at),
    ]
}

fn scopes_text(key: &ApiKey) -> String {
    key.scopes.iter().map(Scope::as_str).collect::<Vec<_>>().join(",")
}

async fn create(session: &Session, request: &CreateApiKeyRequest) -> Result<(), Failure> {
    let created = session.client.api_key_create(request).await?;
    if session.json {
        return print_json(&created);
    }
    println!("{}", created.secret);
    eprintln!(
        "Created key {} ({}, scopes {}). The secret above is shown once: store it now.",
        created.key.id,
        created.key.name,
        scopes_text(&created.key)
    );
    Ok(())
}

async fn revoke(session: &Session, id: &str) -> Result<(), Failure> {
    let key = session.client.api_key_revoke(id).await?;
    if session.json {
        return print_json(&key);
    }
    println!("Revoked {} ({}) at {}.", key.id, key.name, or_dash(key.revoked_at));
    Ok(())
}
